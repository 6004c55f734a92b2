/**
 * A real softphone over TLS: Debian's baresip (1.0) registers through `sipflow serve` over TLS
 * (digest challenge, the shipped registration logic) and calls a second baresip registered over
 * UDP; the call is established on both sides and hung up.
 *
 * sipflow: the built CLI with `--tls-port 0 --tls-cert --tls-key` (a throwaway CA, test/support/
 * pki.ts; baresip trusts it through `sip_cafile`), two SIP worker threads, the shipped
 * registration logic for REGISTER and the test relay logic (`proxy-test`: REGISTER saved without
 * a challenge, other requests relayed to the Request-URI user's bindings) for the callee, whose
 * REGISTER comes from 127.0.0.2 (a route by source) and for the INVITE.
 *
 * baresip runs headless: `-f <confdir>` with `config` (modules: g711, ausine as the audio source,
 * aufile, account, menu, ctrl_tcp) and `accounts`; the test drives it through ctrl_tcp (JSON in
 * netstrings: commands `dial` / `hangup`, events CALL_ESTABLISHED / CALL_CLOSED) and reads its
 * registration result from stdout. Every process is stopped by its pid, in afterAll whatever
 * happened.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createPki, type Pki } from '../../support/pki';
import { startServe, type ServeProcess } from '../../support/serve';

const ROOT = path.resolve(__dirname, '../../..');
const INSTALL = path.join(ROOT, 'scripts/install-system-deps.sh');
const DOMAIN = 'nl.netaxis.be';

const which = (cmd: string): string | null => {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
};

/** baresip, installed by the project's script when missing (CI); the suite fails (never skips) without it. */
function ensureBaresip(): string {
  const found = which('baresip');
  if (found) return found;
  const r = spawnSync('bash', [INSTALL], { env: { ...process.env, SIPFLOW_SYSTEM_DEPS: 'baresip' }, encoding: 'utf8', timeout: 600_000 });
  const after = which('baresip');
  if (!after) throw new Error(`baresip is not installed and scripts/install-system-deps.sh failed (${r.status}): ${r.stderr || r.stdout}`);
  return after;
}

/** A port free for TCP and UDP on `host` (baresip binds both), and `port + 1` for TCP when `tlsToo` (its TLS socket). */
async function freePort(host: string, tlsToo = false): Promise<number> {
  for (;;) {
    const tcp = net.createServer();
    await new Promise<void>((r) => tcp.listen(0, host, () => r()));
    const port = (tcp.address() as net.AddressInfo).port;
    const probes = [
      new Promise<boolean>((resolve) => {
        const u = dgram.createSocket('udp4');
        u.once('error', () => resolve(false));
        u.bind(port, host, () => u.close(() => resolve(true)));
      }),
      ...(tlsToo
        ? [
            new Promise<boolean>((resolve) => {
              const t = net.createServer();
              t.once('error', () => resolve(false));
              t.listen(port + 1, host, () => t.close(() => resolve(true)));
            }),
          ]
        : []),
    ];
    const ok = (await Promise.all(probes)).every(Boolean);
    await new Promise<void>((r) => tcp.close(() => r()));
    if (ok) return port;
  }
}

interface BaresipEvent {
  type: string;
  accountaor?: string;
  param?: string;
}

/** One headless baresip: its output, and its ctrl_tcp connection (commands, events). */
class Baresip {
  private out = '';
  private readonly events: BaresipEvent[] = [];
  private waiters: Array<() => void> = [];
  private ctrl: net.Socket | null = null;
  private seq = 0;
  private readonly responses = new Map<string, (ok: boolean) => void>();
  readonly exited: Promise<void>;

  constructor(
    readonly child: ChildProcess,
    private readonly ctrlPort: number,
  ) {
    child.stdout!.on('data', (b) => this.add(String(b)));
    child.stderr!.on('data', (b) => this.add(String(b)));
    this.exited = new Promise((r) => child.once('exit', () => r()));
  }

  output(): string {
    return this.out;
  }

  private add(text: string): void {
    this.out += text;
    this.wake();
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Resolves when `ok()` holds (checked on every output and event); rejects after `ms` or when baresip exits. */
  private until(ok: () => boolean, what: string, ms = 15_000): Promise<void> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`baresip: ${what} not seen within ${ms} ms; output:\n${this.out}`)), ms);
      const check = () => {
        if (ok()) {
          clearTimeout(t);
          resolve();
        } else if (this.child.exitCode !== null || this.child.signalCode !== null) {
          clearTimeout(t);
          reject(new Error(`baresip exited (${this.child.exitCode ?? this.child.signalCode}) before ${what}; output:\n${this.out}`));
        } else this.waiters.push(check);
      };
      check();
    });
  }

  printed(re: RegExp): Promise<void> {
    return this.until(() => re.test(this.out), String(re));
  }

  event(type: string): Promise<void> {
    return this.until(() => this.events.some((e) => e.type === type), `event ${type}`);
  }

  /** Connects to ctrl_tcp (retried while baresip opens it). */
  async connect(): Promise<void> {
    for (;;) {
      const s = net.connect(this.ctrlPort, '127.0.0.1');
      const ok = await new Promise<boolean>((resolve) => {
        s.once('connect', () => resolve(true));
        s.once('error', () => resolve(false));
      });
      if (ok) {
        this.ctrl = s;
        break;
      }
      if (this.child.exitCode !== null) throw new Error(`baresip exited; output:\n${this.out}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    let buf = Buffer.alloc(0);
    this.ctrl.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      for (;;) {
        const colon = buf.indexOf(0x3a);
        if (colon < 0) return;
        const len = Number(buf.subarray(0, colon).toString());
        if (buf.length < colon + 1 + len + 1) return;
        const msg = JSON.parse(buf.subarray(colon + 1, colon + 1 + len).toString()) as {
          event?: boolean;
          response?: boolean;
          ok?: boolean;
          token?: string;
        } & BaresipEvent;
        buf = buf.subarray(colon + 1 + len + 1);
        if (msg.event) this.events.push(msg);
        if (msg.response && msg.token) this.responses.get(msg.token)?.(msg.ok === true);
        this.wake();
      }
    });
  }

  /** A ctrl_tcp command; resolves with its `ok`. */
  command(command: string, params = ''): Promise<boolean> {
    const token = String(++this.seq);
    const json = JSON.stringify({ command, params, token });
    return new Promise((resolve) => {
      this.responses.set(token, resolve);
      this.ctrl!.write(`${Buffer.byteLength(json)}:${json},`);
    });
  }

  /** SIGTERM by pid, SIGKILL after 3 s. */
  async stop(): Promise<void> {
    this.ctrl?.destroy();
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill('SIGTERM');
      const t = setTimeout(() => this.child.kill('SIGKILL'), 3000);
      await this.exited;
      clearTimeout(t);
    }
  }
}

const SIPFLOW_HOST = '127.0.0.1';
const CALLEE_HOST = '127.0.0.2';

let pki: Pki;
let work: string;
let serve: ServeProcess;
let tlsPort: number;
const phones: Baresip[] = [];

function config(o: { listen: string; ctrlPort: number; cafile?: string }): string {
  return [
    'poll_method\t\tepoll',
    `sip_listen\t\t${o.listen}`,
    ...(o.cafile ? [`sip_cafile\t\t${o.cafile}`] : []),
    // no sound card: a sine source (48 kHz stereo only), nothing played
    'audio_player\t\taufile,/dev/null',
    'audio_source\t\tausine,440',
    'audio_alert\t\taufile,/dev/null',
    'ausrc_srate\t\t48000',
    'auplay_srate\t\t48000',
    'ausrc_channels\t\t2',
    'auplay_channels\t\t2',
    `ctrl_tcp_listen\t\t127.0.0.1:${o.ctrlPort}`,
    'module_path\t\t/usr/lib/baresip/modules',
    'module\t\t\tg711.so',
    'module\t\t\tausine.so',
    'module\t\t\taufile.so',
    'module_app\t\taccount.so',
    'module_app\t\tmenu.so',
    'module_app\t\tctrl_tcp.so',
    '',
  ].join('\n');
}

async function startPhone(name: string, cfg: { listen: string; cafile?: string }, account: string): Promise<Baresip> {
  const dir = path.join(work, name);
  mkdirSync(dir);
  const ctrlPort = await freePort('127.0.0.1');
  writeFileSync(path.join(dir, 'config'), config({ ...cfg, ctrlPort }));
  writeFileSync(path.join(dir, 'accounts'), account + '\n');
  const child = spawn(ensureBaresip(), ['-f', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
  const phone = new Baresip(child, ctrlPort);
  phones.push(phone);
  await phone.connect();
  return phone;
}

beforeAll(async () => {
  ensureBaresip();
  pki = createPki();
  const cert = pki.issue('sipflow', 'sipflow');
  work = mkdtempSync(path.join(os.tmpdir(), 'sipflow-baresip-'));
  const flows = path.join(work, 'flows');
  mkdirSync(flows);
  copyFileSync(path.join(ROOT, 'flows/registration.slid'), path.join(flows, 'registration.slid'));
  copyFileSync(path.join(ROOT, 'test/integration/sip/fixtures/test-flows.slid'), path.join(flows, 'test-flows.slid'));
  serve = await startServe({
    workers: 2,
    flows,
    config: {
      defaultLogic: 'proxy-test',
      routes: [
        { method: 'REGISTER', source: CALLEE_HOST, logic: 'proxy-test' },
        { method: 'REGISTER', logic: 'registration' },
      ],
    },
    args: ['--tls-port', '0', '--tls-cert', cert.cert, '--tls-key', cert.key],
  });
  tlsPort = Number(/ tls:(\d+)/.exec(serve.output())![1]);
}, 90_000);

afterAll(async () => {
  await Promise.all(phones.map((p) => p.stop()));
  if (serve) await serve.stop();
  pki?.remove();
  if (work) rmSync(work, { recursive: true, force: true });
});

test('baresip registers over TLS (challenged, then 200) and calls a baresip registered over UDP through sipflow', async () => {
  const callee = await startPhone(
    'callee',
    { listen: `${CALLEE_HOST}:${await freePort(CALLEE_HOST)}` },
    `<sip:bob@${DOMAIN};transport=udp>;outbound="sip:${SIPFLOW_HOST}:${serve.sipPort};transport=udp";regint=300;answermode=auto;mediaaddr=${CALLEE_HOST}`,
  );
  await callee.printed(/bob@nl\.netaxis\.be: \{0\/UDP\/v4\} 200 OK/);

  const caller = await startPhone(
    'caller',
    { listen: `127.0.0.1:${await freePort('127.0.0.1', true)}`, cafile: pki.ca },
    `<sip:francesco@${DOMAIN};transport=tls>;auth_pass=123456;outbound="sip:${SIPFLOW_HOST}:${tlsPort};transport=tls";regint=300`,
  );
  await caller.printed(/francesco@nl\.netaxis\.be: \{0\/TLS\/v4\} 200 OK/);

  expect(await caller.command('dial', `sip:bob@${DOMAIN}`)).toBe(true);
  await Promise.all([caller.event('CALL_ESTABLISHED'), callee.event('CALL_ESTABLISHED')]);
  // the INVITE went out over TLS (the caller's Via) and reached the callee through sipflow over UDP
  expect(caller.output()).toMatch(/call: SIP Progress: 180 Ringing/);

  expect(await caller.command('hangup')).toBe(true);
  await Promise.all([caller.event('CALL_CLOSED'), callee.event('CALL_CLOSED')]);
  // the REGISTER over TLS was challenged first (the registration logic), then accepted
  expect(await serve.metric('sipflow_requests_total', 'method="REGISTER",status="401"')).toBeGreaterThan(0);
  expect(await serve.metric('sipflow_requests_total', 'method="REGISTER",status="200"')).toBeGreaterThan(0);
}, 60_000);
