/**
 * A browser phone end to end (issue 13, "a browser phone"): JsSIP in Debian's Chromium (driven by
 * playwright-core; no browser is ever downloaded) registers over WSS to a real `sipflow serve`
 * (the built CLI, two SIP worker threads, the shipped flows) and answers a call that a SIPp UAC,
 * standing for the PSTN trunk, places through sipflow to the subscriber's number.
 *
 * Layout: one sipflow for the suite with a UDP socket (SIPp) and a WSS socket (a throwaway
 * self-signed certificate made by openssl); pbx.slid's `pstnTrunks` set to 127.0.0.2, the address
 * SIPp binds to, so the trunk's INVITE needs no authentication; the note's sample subscriber
 * (francesco / 123456, number 000112233) provisioned by `serve` in a scratch database on the test
 * run's PostgreSQL (PGlite's start alone takes half a minute on a loaded machine); memory location. The page (phone.html) is served by
 * a node:http server of the test with JsSIP bundled by esbuild (node_modules/jssip has no prebuilt
 * bundle). Each page reports its UA and session events to the test through an exposed function.
 *
 * SIPp keeps its -trace_err / -trace_msg files under test-artifacts/browser-phone/ (wiped at the
 * start). Chromium, SIPp and sipflow are stopped by handle / pid in afterAll.
 *
 * Limits: signalling only. SIPp has no ICE agent, so no media flows; the offer is a WebRTC-style
 * one (ICE credentials, DTLS fingerprint, rtcp-mux) because Chromium refuses a plain RTP/AVP offer.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { buildSync } from 'esbuild';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { createPki, type Pki } from '../../support/pki';
import { SHIPPED_FLOWS, startServe, type ServeProcess } from '../../support/serve';
import { freeUdpPort } from '../../support/sipp';
import { scratchDatabase } from '../../setup/servers';

const ROOT = path.resolve(__dirname, '../../..');
const ARTIFACTS = path.join(ROOT, 'test-artifacts/browser-phone');
const CHROMIUM = process.env.SIPFLOW_CHROMIUM ?? '/usr/bin/chromium';
const DOMAIN = 'nl.netaxis.be';
const HOST = '127.0.0.1';
/** The PSTN trunk's source address (pbx.slid's pstnTrunks in the test's flow copy). */
const TRUNK = '127.0.0.2';
/** The sample subscriber `serve` provisions in a memory directory. */
const USER = { username: 'francesco', password: '123456', number: '000112233' };
const CALLER = '0049301234567';
/** How long a page may take to register, or a call to be reported, on a loaded machine. */
const PAGE_WAIT_MS = 20_000;

jest.setTimeout(60_000);

// ---------------------------------------------------------------- the page, seen from the test

interface PhoneEvent {
  event: string;
  [detail: string]: unknown;
}

/** One browser context with phone.html: its events, and waits on them that fail with what was seen. */
class Phone {
  readonly events: PhoneEvent[] = [];
  private waiters: Array<{ pass(e: PhoneEvent): boolean; fail(e: PhoneEvent): boolean; resolve(e: PhoneEvent): void; reject(err: Error): void }> = [];
  private constructor(
    readonly name: string,
    readonly context: BrowserContext,
    readonly page: Page,
  ) {}

  static async open(name: string, o: { password: string }): Promise<Phone> {
    const context = await browser.newContext({ ignoreHTTPSErrors: true });
    const page = await context.newPage();
    const phone = new Phone(name, context, page);
    page.on('pageerror', (e) => phone.push({ event: 'pageerror', message: String(e) }));
    await page.exposeFunction('phoneEvent', (e: PhoneEvent) => phone.push(e));
    await page.goto(`${pageUrl}/phone.html`);
    phone.jssipVersion = await page.evaluate((c) => (globalThis as unknown as { startPhone(c: unknown): string }).startPhone(c), {
      wsUrl: `wss://${HOST}:${wssPort}`,
      uri: `sip:${USER.username}@${DOMAIN}`,
      password: o.password,
    });
    return phone;
  }

  jssipVersion = '';

  private push(e: PhoneEvent): void {
    this.events.push(e);
    for (const w of [...this.waiters]) {
      if (w.pass(e)) w.resolve(e);
      else if (w.fail(e)) w.reject(new Error(`${this.name}: ${e.event} ${JSON.stringify(e)} while waiting; events so far: ${this.seen()}`));
      else continue;
      this.waiters.splice(this.waiters.indexOf(w), 1);
    }
  }

  seen(): string {
    return this.events.map((e) => e.event).join(', ') || 'none';
  }

  /** The first event named `event` (already seen or to come); rejects on one of `failOn` or after `ms`. */
  waitFor(event: string, what: string, failOn: string[] = [], ms = PAGE_WAIT_MS): Promise<PhoneEvent> {
    const seen = this.events.find((e) => e.event === event);
    if (seen) return Promise.resolve(seen);
    const failed = this.events.find((e) => failOn.includes(e.event));
    if (failed) return Promise.reject(new Error(`${this.name}: ${failed.event} ${JSON.stringify(failed)}; events so far: ${this.seen()}`));
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        reject(new Error(`${this.name}: ${what} within ${ms / 1000} s (no "${event}" event); events so far: ${this.seen()}`));
      }, ms);
      const w = {
        pass: (e: PhoneEvent) => e.event === event,
        fail: (e: PhoneEvent) => failOn.includes(e.event),
        resolve: (e: PhoneEvent) => {
          clearTimeout(t);
          resolve(e);
        },
        reject: (err: Error) => {
          clearTimeout(t);
          reject(err);
        },
      };
      this.waiters.push(w);
    });
  }

  registered(): Promise<PhoneEvent> {
    return this.waitFor('registered', 'not registered over WSS', ['registrationFailed', 'disconnected', 'pageerror']);
  }

  close(): Promise<void> {
    return this.context.close();
  }
}

// ---------------------------------------------------------------- SIPp (killed by pid, always)

const live = new Set<ChildProcess>();
let sippBin = 'sipp';
let runSeq = 0;

interface SippResult {
  code: number | null;
  screen: string;
  messages: string;
  errors: string;
}

const readOr = (file: string) => (existsSync(file) ? readFileSync(file, 'utf8') : '');

/** Runs one SIPp UAC call from the trunk's address to sipflow's UDP socket; bounded by -timeout (and a kill after it). */
async function sipp(name: string, scenario: string, o: { service?: string; csv?: string[] } = {}): Promise<SippResult> {
  const prefix = path.join(ARTIFACTS, `${String(++runSeq).padStart(2, '0')}-${name}`);
  const files = { err: `${prefix}-errors.log`, msg: `${prefix}-messages.log`, csv: `${prefix}-injection.csv` };
  const args = [
    '-sf',
    scenario,
    '-i',
    TRUNK,
    '-p',
    String(await freeUdpPort(TRUNK)),
    '-m',
    '1',
    '-nostdin',
    '-timeout',
    '20s',
    '-timeout_error',
    '-recv_timeout',
    '15000',
    '-trace_err',
    '-error_file',
    files.err,
    '-trace_msg',
    '-message_file',
    files.msg,
    '-key',
    'domain',
    DOMAIN,
  ];
  if (o.service) args.push('-s', o.service);
  if (o.csv) {
    writeFileSync(files.csv, ['SEQUENTIAL', ...o.csv, ''].join('\n'));
    args.push('-inf', files.csv);
  }
  args.push(`${HOST}:${serve.sipPort}`);
  const proc = spawn(sippBin, args, { cwd: ARTIFACTS, stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(proc);
  let screen = `$ sipp ${args.join(' ')}\n\n`;
  proc.stdout.on('data', (d) => (screen += d));
  proc.stderr.on('data', (d) => (screen += d));
  const code = await new Promise<number | null>((resolve) => {
    const guard = setTimeout(() => proc.kill('SIGKILL'), 35_000);
    proc.once('error', (e) => {
      screen += `\ncould not start sipp: ${e.message}`;
      resolve(-1);
    });
    proc.once('exit', (c) => {
      clearTimeout(guard);
      live.delete(proc);
      resolve(c);
    });
  });
  writeFileSync(`${prefix}-screen.log`, screen);
  return { code, screen, messages: readOr(files.msg), errors: readOr(files.err) };
}

/** Messages SIPp traced as `dir` (retransmissions included), in order. */
function traced(r: SippResult, dir: 'sent' | 'received'): string[] {
  return r.messages
    .split(/^-{10,} .*$/m)
    .map((block) => new RegExp(`^\\s*UDP message ${dir}[^\\n]*\\n\\s*\\n([\\s\\S]*)$`).exec(block)?.[1])
    .filter((text): text is string => text !== undefined);
}
const firstLines = (r: SippResult, dir: 'sent' | 'received') => traced(r, dir).map((text) => text.split(/\r?\n/)[0].trim());

function explain(r: SippResult, what: string): string {
  return `${what}: sipp exited ${r.code}\n--- errors\n${r.errors.slice(-2000)}\n--- screen\n${r.screen.slice(-2000)}\n--- sipflow\n${serve.output().slice(-3000)}`;
}

// ---------------------------------------------------------------- fixture

interface Binding {
  username: string;
  contact: string;
  received: string | null;
  socket: string | null;
  connection_id: number;
  user_agent: string | null;
}

async function bindings(): Promise<Binding[]> {
  const r = await serve.api(`/api/v1/registrations?aor=${USER.username}@${DOMAIN}`);
  if (r.status !== 200) throw new Error(`GET /api/v1/registrations: ${r.status} ${await r.text()}`);
  return ((await r.json()) as { rows: Binding[] }).rows;
}

let dir: string;
let pki: Pki | undefined;
let serve: ServeProcess;
let directory: { url: string; drop(): Promise<void> } | undefined;
let wssPort: number;
let pageServer: http.Server;
let pageUrl: string;
let browser: Browser;
let phone: Phone;

beforeAll(async () => {
  if (!existsSync(CHROMIUM))
    throw new Error(`no Chromium at ${CHROMIUM}: apt-get install -y chromium (scripts/install-system-deps.sh) or set SIPFLOW_CHROMIUM`);
  const found = spawnSync('sh', ['-c', 'command -v sipp'], { encoding: 'utf8' });
  if (found.status !== 0) throw new Error('sipp is not installed: scripts/install-system-deps.sh (SIPFLOW_SYSTEM_DEPS=sipp)');
  sippBin = found.stdout.trim();
  rmSync(ARTIFACTS, { recursive: true, force: true });
  mkdirSync(ARTIFACTS, { recursive: true });
  dir = mkdtempSync(path.join(os.tmpdir(), 'sipflow-phone-'));

  // a throwaway self-signed certificate for WSS (test/support/pki.ts; Chromium is told to ignore certificate errors)
  pki = createPki();
  const { cert, key } = pki.selfSigned('wss', 'localhost');

  // the shipped flows, with the PSTN trunk = the address SIPp binds to
  const flows = path.join(dir, 'flows');
  mkdirSync(flows);
  for (const f of readdirSync(SHIPPED_FLOWS).filter((x) => x.endsWith('.slid'))) copyFileSync(path.join(SHIPPED_FLOWS, f), path.join(flows, f));
  const pbx = JSON.parse(readFileSync(path.join(flows, 'pbx.slid'), 'utf8'));
  const trunks = pbx['1']?.nodes?.['1']?.values?.variables?.find((v: { variable: string }) => v.variable === 'pstnTrunks');
  if (!trunks) throw new Error('flows/pbx.slid: logic 1 node 1 no longer sets pstnTrunks; update this test');
  trunks.value = TRUNK;
  writeFileSync(path.join(flows, 'pbx.slid'), JSON.stringify(pbx, null, 2));

  // JsSIP as one browser script, and the page, from a server of the test
  const jssip = buildSync({ entryPoints: [require.resolve('jssip/lib/JsSIP.js')], bundle: true, format: 'iife', globalName: 'JsSIP', write: false })
    .outputFiles[0].text;
  const html = readFileSync(path.join(__dirname, 'phone.html'), 'utf8');
  pageServer = http.createServer((req, res) => {
    if (req.url === '/phone.html') res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(html);
    else if (req.url === '/jssip.js') res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8' }).end(jssip);
    else res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => pageServer.listen(0, HOST, resolve));
  pageUrl = `http://${HOST}:${(pageServer.address() as { port: number }).port}`;

  const [started, launched] = await Promise.allSettled([
    (async () => {
      directory = await scratchDatabase('sipflow_browser_phone');
      return startServe({ directoryUrl: directory.url, flows, args: ['--wss-port', '0', '--tls-cert', cert, '--tls-key', key] });
    })(),
    chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--ignore-certificate-errors', '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream'],
    }),
  ]);
  if (started.status === 'fulfilled') serve = started.value;
  if (launched.status === 'fulfilled') browser = launched.value;
  if (started.status === 'rejected') throw started.reason;
  if (launched.status === 'rejected') throw launched.reason;
  const wss = / wss:(\d+)/.exec(serve.output());
  if (!wss) throw new Error(`no wss socket in the listening line:\n${serve.output()}`);
  wssPort = Number(wss[1]);
  phone = await Phone.open('the phone', { password: USER.password });
}, 90_000);

afterAll(async () => {
  for (const p of live) p.kill('SIGKILL');
  await browser?.close().catch(() => undefined);
  await new Promise((r) => (pageServer ? pageServer.close(r) : r(undefined)));
  const stopped = await serve?.stop();
  if (serve) writeFileSync(path.join(ARTIFACTS, 'sipflow.log'), serve.output());
  await directory?.drop();
  if (dir) rmSync(dir, { recursive: true, force: true });
  pki?.remove();
  if (stopped && stopped.code !== 0) throw new Error(`sipflow serve exited ${stopped.code} on SIGTERM`);
}, 30_000);

// ---------------------------------------------------------------- tests

describe('a JsSIP browser phone over WSS', () => {
  test('registers; the binding is its .invalid contact, tied to its WSS connection', async () => {
    await phone.registered();
    expect(phone.jssipVersion).toMatch(/^3\./);
    const rows = (await bindings()).filter((b) => /\.invalid;transport=ws\b/.test(b.contact));
    expect(rows).toHaveLength(1);
    const [b] = rows;
    expect(b.contact).toMatch(/^sip:\w+@\w+\.invalid;transport=ws$/);
    expect(b.connection_id).toBeGreaterThanOrEqual(1);
    expect(b.socket).toBe(`wss:${HOST}:${wssPort}`);
    expect(b.received).toMatch(new RegExp(`^sip:${HOST.replace(/\./g, '\\.')}:\\d+;transport=wss$`));
    expect(b.user_agent).toBe(`JsSIP ${phone.jssipVersion}`);
  });

  test('a call from the PSTN trunk reaches the page over its WebSocket; answered (200), ACK, BYE answered', async () => {
    await phone.registered();
    const r = await sipp('call', path.join(__dirname, 'webrtc-call.xml'), { service: USER.number });
    if (r.code !== 0) throw new Error(explain(r, 'call to the browser phone'));
    // 180 (JsSIP rings), 200 (the page answered), 200 (its answer to BYE)
    expect([...new Set(firstLines(r, 'received'))].filter((l) => !l.startsWith('SIP/2.0 100'))).toEqual(['SIP/2.0 180 Ringing', 'SIP/2.0 200 OK']);
    expect(firstLines(r, 'received').filter((l) => l === 'SIP/2.0 200 OK').length).toBeGreaterThanOrEqual(2);
    const sent = [...new Set(firstLines(r, 'sent').map((l) => l.split(' ')[0]))];
    expect(sent).toEqual(['INVITE', 'ACK', 'BYE']);
    // the answer is the browser's own SDP: DTLS-SRTP (it takes the active role), its ICE credentials and candidates
    const answer = traced(r, 'received').find((t) => t.startsWith('SIP/2.0 200') && /^CSeq: 1 INVITE/m.test(t))!;
    expect(answer).toMatch(/^Content-Type: application\/sdp/m);
    expect(answer).toMatch(/^m=audio \d+ UDP\/TLS\/RTP\/SAVPF /m);
    expect(answer).toMatch(/^a=setup:active/m);
    expect(answer).toMatch(/^a=fingerprint:sha-256 /m);
    expect(answer).toMatch(/^a=candidate:/m);
    expect(answer).not.toContain('SIPpUfrg');

    const incoming = await phone.waitFor('incoming', 'no incoming call reported');
    expect(incoming).toMatchObject({ from: CALLER, displayName: 'PSTN caller', to: USER.number });
    await phone.waitFor('accepted', 'the call was not answered', ['failed']);
    const ended = await phone.waitFor('ended', 'the end of the call was not reported', ['failed']);
    expect(ended).toMatchObject({ originator: 'remote', cause: 'Terminated' });
  });

  test('a wrong password is refused: the registered wait fails with a clear message, no binding is added', async () => {
    const intruder = await Phone.open('the phone with a wrong password', { password: `not-${USER.password}` });
    try {
      await expect(intruder.registered()).rejects.toThrow(/the phone with a wrong password: registrationFailed .*"cause":"Authentication Error"/);
      expect((await bindings()).filter((b) => /\.invalid;/.test(b.contact))).toHaveLength(1); // the first phone's only
      expect(serve.output()).not.toContain(`not-${USER.password}`);
    } finally {
      await intruder.close();
    }
  });

  test('once the browser closed, its binding is removed and a call to the user gets 480', async () => {
    await phone.close();
    // the binding goes when sipflow sees the WebSocket close (registrar.connections.removeOnClose)
    const deadline = Date.now() + PAGE_WAIT_MS;
    while ((await bindings()).some((b) => /\.invalid;/.test(b.contact))) {
      if (Date.now() > deadline)
        throw new Error(`the closed phone's binding is still listed after ${PAGE_WAIT_MS / 1000} s: ${JSON.stringify(await bindings())}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const r = await sipp('call-after-close', path.join(ROOT, 'test/e2e/sipp/pstn-rejected.xml'), { csv: [USER.number] });
    if (r.code !== 0) throw new Error(explain(r, 'call after the phone closed'));
    expect(firstLines(r, 'received').filter((l) => !l.startsWith('SIP/2.0 100'))[0]).toMatch(/^SIP\/2\.0 480 /);
  });
});
