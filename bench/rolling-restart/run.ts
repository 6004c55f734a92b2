/**
 * Rolling restart of two sipflow instances on one PostgreSQL (issue 18, point 5): while SIPp keeps
 * N PBXs registered and places calls through either instance, instance A is stopped (SIGTERM),
 * started again and waited for, then B. Checks that no acknowledged binding was lost and that
 * every call that reached a live instance completed; prints one table per instance.
 *
 *   npm run bench:rolling [-- --pbxs 200] [--record-route] [--mode write-through]
 *   node dist/bench/rolling-restart/run.js --pbxs 200 --pg-url postgres://… (a database it may fill)
 *
 * What runs (all on loopback; docs/rolling-restart.md):
 *  - one embedded PostgreSQL (scripts/test-servers, as bench/location), or --pg-url: directory
 *    and location (`location.url: sql`, db-only unless --mode write-through);
 *  - instances A (127.0.0.11) and B (127.0.0.12): `sipflow serve` on the same database, the same
 *    nonce secret (a challenge of one verifies on the other), their own location.serverId;
 *  - the PBXs pbx0001…: customers with one number each; one SIPp UAS (uas.xml, 127.0.0.3) answers
 *    the calls of all of them (every PBX's Contact points there);
 *  - one SIPp register client per instance (register.xml, 127.0.0.3): each PBX refreshes its
 *    binding (Expires 60, the registrar's minimum) through A, then half a period later through B;
 *  - one SIPp caller per instance (caller.xml, 127.0.0.2 = the PSTN trunk of pbx.slid): calls to
 *    random PBX numbers, 100 ms long.
 * A separate SIPp per instance: the ICMP "port unreachable" of a stopped instance surfaces as a
 * send error on the socket that sent to it, never on the other instance's.
 *
 * Classes, per instance (from the SIPp log lines each scenario writes):
 *  - registrations: 200 (acknowledged), 503 (stopping), no answer (down), failed (anything else);
 *  - calls: completed; 503; not reached (no response at all: the instance was down); failed
 *    after reaching a live one (a 100 came back, or any other response, and the call did not
 *    complete: the figure that must be 0).
 * Lost bindings: at the end, each PBX's last acknowledged REGISTER must be in the location table
 * with an expiry at least the one granted (±2 s: the SIPp log's clock).
 * Exit code 1 when a binding was lost or a call that reached a live instance failed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import knexFactory from 'knex';
import { freeUdpPort, udpBound } from '../../test/support/sipp';

/** The repository (holds package.json and flows/), from source (ts-jest) or dist/. */
function repoRoot(): string {
  for (let dir = __dirname; dir !== path.dirname(dir); dir = path.dirname(dir))
    if (existsSync(path.join(dir, 'flows', 'pbx.slid')) && existsSync(path.join(dir, 'package.json'))) return dir;
  throw new Error(`no repository (flows/pbx.slid) above ${__dirname}`);
}
const ROOT = repoRoot();
const MAIN = path.join(ROOT, 'dist/cli/main.js');
const SCENARIOS = path.join(ROOT, 'bench/rolling-restart');
const DOMAIN = 'rolling.example.net';
const TRUNK = '127.0.0.2';
const PBX_HOST = '127.0.0.3';
/** The registrar's default minimum (registrar.minExpires): refreshes happen every few seconds anyway. */
const EXPIRES = 60;
/** A binding's expiry read back may differ from the SIPp log's clock + the granted seconds by this much. */
const CLOCK_SLACK_MS = 2000;

export interface RollingOptions {
  /** PBXs kept registered (default 200). */
  pbxs: number;
  recordRoute: boolean;
  mode: 'db-only' | 'write-through';
  /** A PostgreSQL database the run may fill (migrated by the first start); none: an embedded cluster is started. */
  pgUrl?: string;
  /** Each PBX refreshes through each instance once per period (so every period/2 s) (default 20 s). */
  refreshPeriodSec: number;
  /** Calls per second through each instance (default 4). */
  callRate: number;
  /** Quiet time before the first restart and between / after the restarts (default 5 s). */
  settleSec: number;
  /** SIP worker threads of each instance (default 2). */
  workers: number;
  /** Where the SIPp files and the instances' logs go. */
  artifacts: string;
  /** Every SIP message of the callers and the UAS kept too (SIPp -trace_msg), for diagnosis. */
  trace?: boolean;
  log: (line: string) => void;
}

export interface InstanceFigures {
  name: string;
  address: string;
  registrations: { attempted: number; ok: number; refused: number; noAnswer: number; failed: number };
  calls: { attempted: number; completed: number; refused: number; notReached: number; failed: number };
  restart: { exitMs: number; exitCode: number | null; readyMs: number };
}

export interface RollingResult {
  instances: InstanceFigures[];
  /** PBXs whose last acknowledged binding is not in the database (or expires earlier than granted). */
  lostBindings: string[];
  /** Calls that reached a live instance and did not complete: Call-ID and what happened. */
  failedCalls: string[];
  /** PBXs that never got a 200 (nothing to check for them). */
  neverRegistered: number;
  ok: boolean;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A TCP port free on `host` whose UDP twin is free too (sipflow binds both). */
async function freeSipPort(host: string): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const port = await freeUdpPort(host);
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.createServer();
      s.once('error', () => resolve(false));
      s.listen(port, host, () => s.close(() => resolve(true)));
    });
    if (ok) return port;
  }
  throw new Error(`no free SIP port on ${host}`);
}

async function freeTcpPort(host: string): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.listen(0, host, () => resolve());
  });
  const { port } = s.address() as net.AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

function run(cmd: string, args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (out += d));
    const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.once('exit', (code) => {
      clearTimeout(t);
      if (code === 0) resolve(out);
      else reject(new Error(`${path.basename(args[0] ?? cmd)} ${args.slice(1, 3).join(' ')} exited ${code}:\n${out}`));
    });
  });
}

// ---------------------------------------------------------------- sipflow instances

class Instance {
  child: ChildProcess | null = null;
  private out = '';
  private exited: Promise<number | null> = Promise.resolve(null);
  private starts = 0;

  constructor(
    readonly name: string,
    readonly host: string,
    readonly sipPort: number,
    readonly httpPort: number,
    private readonly config: string,
    private readonly dataDir: string,
    private readonly artifacts: string,
    private readonly workers: number,
  ) {}

  get address(): string {
    return `${this.host}:${this.sipPort}`;
  }

  /** Starts the process; resolves when it is ready: its listening line printed (SIP up) and /health/ready 200. */
  async start(timeoutMs = 120_000): Promise<void> {
    this.out = '';
    this.starts++;
    const args = [
      MAIN,
      'serve',
      '--config',
      this.config,
      '--data-dir',
      this.dataDir,
      '--sip-host',
      this.host,
      '--sip-port',
      String(this.sipPort),
      '--http-host',
      this.host,
      '--http-port',
      String(this.httpPort),
      '--workers',
      String(this.workers),
      '--log-level',
      'warn',
    ];
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    child.stdout!.on('data', (d) => (this.out += d));
    child.stderr!.on('data', (d) => (this.out += d));
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
    let gone = false;
    void this.exited.then(() => {
      gone = true;
      writeFileSync(path.join(this.artifacts, `sipflow-${this.name}-${this.starts}.log`), this.out);
    });
    const until = Date.now() + timeoutMs;
    while (!/SIP \S+ listening on/.test(this.out)) {
      if (gone) throw new Error(`instance ${this.name} exited before listening:\n${this.out.slice(-3000)}`);
      if (Date.now() > until) throw new Error(`instance ${this.name} not listening within ${timeoutMs} ms:\n${this.out.slice(-3000)}`);
      await sleep(20);
    }
    while (!(await this.ready())) {
      if (gone || Date.now() > until) throw new Error(`instance ${this.name} not ready:\n${this.out.slice(-3000)}`);
      await sleep(20);
    }
  }

  private async ready(): Promise<boolean> {
    try {
      const r = await fetch(`http://${this.host}:${this.httpPort}/health/ready`, { signal: AbortSignal.timeout(2000) });
      return r.status === 200;
    } catch {
      return false;
    }
  }

  /** SIGTERM (or `signal`); resolves with the exit code and how long the exit took (SIGKILL after 30 s). */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<{ code: number | null; ms: number }> {
    const t0 = Date.now();
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return { code: child?.exitCode ?? null, ms: 0 };
    child.kill(signal);
    const killer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    const code = await this.exited;
    clearTimeout(killer);
    return { code, ms: Date.now() - t0 };
  }

  output(): string {
    return this.out;
  }
}

// ---------------------------------------------------------------- SIPp

interface Sipp {
  name: string;
  proc: ChildProcess;
  logFile: string;
  errFile: string;
  exited: Promise<number | null>;
  screen(): string;
}

function startSipp(
  artifacts: string,
  name: string,
  scenario: string,
  args: string[],
  o: { localIp: string; localPort: number; remote?: string; csv?: { order: 'SEQUENTIAL' | 'RANDOM'; lines: string[] }; trace?: boolean },
): Sipp {
  const prefix = path.join(artifacts, name);
  const logFile = `${prefix}-logs.log`;
  const errFile = `${prefix}-errors.log`;
  const all = ['-sf', path.join(SCENARIOS, scenario), '-i', o.localIp, '-p', String(o.localPort), '-nostdin', '-trace_logs', '-log_file', logFile];
  all.push('-trace_err', '-error_file', errFile, '-trace_screen', '-screen_file', `${prefix}-screen.log`, '-buff_size', '1048576');
  if (o.trace) all.push('-trace_msg', '-message_file', `${prefix}-messages.log`);
  if (o.csv) {
    const csv = `${prefix}-injection.csv`;
    writeFileSync(csv, [o.csv.order, ...o.csv.lines, ''].join('\n'));
    all.push('-inf', csv);
  }
  all.push(...args);
  if (o.remote) all.push(o.remote);
  const proc = spawn('sipp', all, { cwd: artifacts, stdio: ['ignore', 'pipe', 'pipe'] });
  let screen = '';
  proc.stdout!.on('data', (d) => (screen = (screen + d).slice(-20_000)));
  proc.stderr!.on('data', (d) => (screen = (screen + d).slice(-20_000)));
  const exited = new Promise<number | null>((resolve) => {
    proc.once('error', (e) => {
      screen += `\ncould not start sipp (${e.message}): scripts/install-system-deps.sh installs it`;
      resolve(-1);
    });
    proc.once('exit', (code) => resolve(code));
  });
  writeFileSync(`${prefix}-command.txt`, `sipp ${all.join(' ')}\n`);
  return { name, proc, logFile, errFile, exited, screen: () => screen };
}

/** SIGUSR1: SIPp stops placing calls and exits once those in progress ended; SIGKILL after `ms`. */
async function stopSipp(s: Sipp, ms: number): Promise<void> {
  if (s.proc.exitCode !== null || s.proc.signalCode !== null) return;
  s.proc.kill('SIGUSR1');
  const t = setTimeout(() => s.proc.kill('SIGKILL'), ms);
  await s.exited;
  clearTimeout(t);
}

const readOr = (f: string) => (existsSync(f) ? readFileSync(f, 'utf8') : '');

/** Log lines of a scenario: kind (REG / CALL), then fields; the last three are date, time, epoch seconds. */
function logLines(file: string, kind: string): string[][] {
  return readOr(file)
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f[0] === kind);
}

/**
 * Call-IDs SIPp aborted, with the first line of its entry and its time (ms) (-trace_err: "Aborting
 * call on unexpected message for Call-Id 'X': while expecting '200' (index 8), received 'SIP/2.0
 * 404 Not Here", "Call-Id: X, receive timeout on message …: aborting call"). Entries are not
 * always on lines of their own: split at each timestamp.
 */
function aborted(file: string): Map<string, { reason: string; at: number }> {
  const m = new Map<string, { reason: string; at: number }>();
  for (const entry of readOr(file).split(/(?=\d{4}-\d\d-\d\d\t\d\d:\d\d:\d\d\.\d+\t)/)) {
    const id = /Call-I[dD]:? '?([^\s',]+)/.exec(entry)?.[1];
    if (id === undefined || m.has(id) || /jumping to label/.test(entry)) continue;
    const at = Number(/^\S+\t\S+\t(\d+\.\d+):/.exec(entry)?.[1] ?? 0) * 1000;
    m.set(id, {
      reason: entry
        .split('\n')[0]
        .replace(/^[\d\s:.-]+:\s*/, '')
        .slice(0, 200),
      at,
    });
  }
  return m;
}

/** One log line of a call (caller.xml): reached, done, 503, noanswer, byelost; `at`: the SIPp log's clock (ms). */
export interface CallEvent {
  event: string;
  at: number;
}

/** How long caller.xml waits for the final response of its INVITE (its noanswer timeout). */
const INVITE_WAIT_MS = 8000;
/** SIPp's -recv_timeout of the callers: a wait no scenario timeout covers aborts the call. */
const CALLER_RECV_TIMEOUT_MS = 20_000;

/**
 * What became of one call. Not reached: no response at all, and the INVITE was sent while its
 * instance was down (within one of `down`, SIGTERM → ready, ±1 s); a live instance always answers,
 * 100 Trying or 503, so silence outside those windows is a failure. Failed: anything else that
 * did not complete (a response other than 503, a BYE without its 200, SIPp aborting it).
 */
export function classifyCall(
  events: readonly CallEvent[],
  abortedAs: { reason: string; at: number } | undefined,
  down: ReadonlyArray<readonly [number, number]>,
): 'completed' | 'refused' | 'notReached' | 'failed' {
  const has = (e: string) => events.some((x) => x.event === e);
  if (has('done')) return 'completed';
  if (has('503')) return 'refused';
  if (has('reached') || has('byelost')) return 'failed';
  const wasDown = (silentAt: number, waitedMs: number) => down.some(([from, to]) => silentAt - waitedMs <= to + 1000 && silentAt >= from - 1000);
  const silent = events.find((x) => x.event === 'noanswer');
  if (silent) return wasDown(silent.at, INVITE_WAIT_MS) ? 'notReached' : 'failed';
  if (abortedAs === undefined || /received|unexpected/i.test(abortedAs.reason)) return 'failed';
  // aborted on silence (SIPp's -recv_timeout) or on a send error (the instance's port closed): no response
  return wasDown(abortedAs.at, /receive timeout/i.test(abortedAs.reason) ? CALLER_RECV_TIMEOUT_MS : 0) ? 'notReached' : 'failed';
}

/**
 * PBXs whose last acknowledged REGISTER is not in the database: no row for the AoR and contact
 * with an expiry at least the one granted (the 200's time + its expires, less CLOCK_SLACK_MS).
 */
export function lostBindingsOf(
  lastOk: ReadonlyMap<string, { at: number; granted: number }>,
  stored: ReadonlyMap<string, readonly Date[]>,
  contactOf: (user: string) => string,
): string[] {
  const lost: string[] = [];
  for (const [user, ok] of lastOk) {
    const want = ok.at + ok.granted * 1000 - CLOCK_SLACK_MS;
    const have = stored.get(`${user} ${contactOf(user)}`) ?? [];
    if (!have.some((e) => e.getTime() >= want))
      lost.push(`${user}: 200 at ${new Date(ok.at).toISOString()} for ${ok.granted} s; stored: ${have.map((e) => e.toISOString()).join(', ') || 'nothing'}`);
  }
  return lost;
}

// ---------------------------------------------------------------- the run

export async function rollingRestart(o: RollingOptions): Promise<RollingResult> {
  const log = o.log;
  // a previous run's SIPp logs would be read as this run's until SIPp truncates them
  rmSync(o.artifacts, { recursive: true, force: true });
  mkdirSync(o.artifacts, { recursive: true });
  const work = mkdtempSync(path.join(os.tmpdir(), 'sipflow-rolling-'));
  const cleanups: Array<() => Promise<void> | void> = [() => rmSync(work, { recursive: true, force: true })];
  const sipps: Sipp[] = [];
  const instances: Instance[] = [];
  try {
    // ------------------------------------------------ database
    let pgUrl = o.pgUrl;
    if (!pgUrl) {
      const { servers } = await import('../../test/setup/servers');
      const root = servers.makeRoot('sipflow-rolling-pg-');
      const pg = await servers.createPostgres({ root, name: 'rolling' });
      cleanups.push(async () => {
        await servers.destroy(pg);
        rmSync(root, { recursive: true, force: true });
      });
      pgUrl = pg.url;
      log(`PostgreSQL (embedded) on port ${pg.port}`);
    }

    // ------------------------------------------------ the shipped flows, the PSTN trunk = TRUNK
    const flowsDir = path.join(work, 'flows');
    mkdirSync(flowsDir);
    for (const f of readdirSync(path.join(ROOT, 'flows')).filter((x) => x.endsWith('.slid'))) copyFileSync(path.join(ROOT, 'flows', f), path.join(flowsDir, f));
    const pbxFlow = JSON.parse(readFileSync(path.join(flowsDir, 'pbx.slid'), 'utf8'));
    const trunks = pbxFlow['1']?.nodes?.['1']?.values?.variables?.find((v: { variable: string }) => v.variable === 'pstnTrunks');
    if (!trunks) throw new Error('flows/pbx.slid: logic 1 node 1 no longer sets pstnTrunks; update bench/rolling-restart/run.ts');
    trunks.value = TRUNK;
    writeFileSync(path.join(flowsDir, 'pbx.slid'), JSON.stringify(pbxFlow, null, 2));

    // ------------------------------------------------ directory: migrated, PBXs provisioned
    const pbxs = Array.from({ length: o.pbxs }, (_, i) => {
      const n = String(i + 1).padStart(4, '0');
      return { username: `pbx${n}`, password: `pw-${n}-${randomBytes(4).toString('hex')}`, number: `003155${n}` };
    });
    await run(process.execPath, [MAIN, 'db', 'migrate', '--directory-url', pgUrl], 120_000);
    const customers = path.join(work, 'customers.csv');
    const numbers = path.join(work, 'numbers.csv');
    writeFileSync(
      customers,
      ['name,username,password,aor', ...pbxs.map((p) => `PBX ${p.username},${p.username},${p.password},${p.username}@${DOMAIN}`), ''].join('\n'),
    );
    writeFileSync(numbers, ['number,is_range,customer', ...pbxs.map((p) => `${p.number},false,PBX ${p.username}`), ''].join('\n'));
    await run(
      process.execPath,
      [MAIN, 'import', '--data-dir', path.join(work, 'import'), '--directory-url', pgUrl, '--customers', customers, '--numbers', numbers],
      120_000,
    );
    log(`${o.pbxs} PBXs provisioned`);

    // ------------------------------------------------ instances A and B
    const nonceSecret = randomBytes(24).toString('hex');
    for (const [i, name] of ['A', 'B'].entries()) {
      const host = `127.0.0.${11 + i}`;
      const dataDir = path.join(work, `data-${name}`);
      mkdirSync(dataDir);
      const config = path.join(work, `sipflow-${name}.json`);
      writeFileSync(
        config,
        JSON.stringify({
          flows: flowsDir,
          directory: { url: pgUrl },
          location: { url: 'sql', mode: o.mode, serverId: i + 1 },
          auth: { nonceSecret },
          sip: { domain: DOMAIN, recordRoute: o.recordRoute },
        }),
      );
      instances.push(new Instance(name, host, await freeSipPort(host), await freeTcpPort(host), config, dataDir, o.artifacts, o.workers));
    }
    cleanups.push(async () => {
      for (const i of instances) await i.stop('SIGKILL');
    });
    await Promise.all(instances.map((i) => i.start()));
    log(`instances ready: ${instances.map((i) => `${i.name} ${i.address}`).join(', ')} (location ${o.mode}${o.recordRoute ? ', Record-Route' : ''})`);

    // ------------------------------------------------ SIPp: the PBXs' UAS, register clients, callers
    const uasPort = await freeUdpPort(PBX_HOST);
    const uas = startSipp(o.artifacts, 'uas', 'uas.xml', ['-m', '100000000'], { localIp: PBX_HOST, localPort: uasPort, trace: o.trace });
    sipps.push(uas);
    const bindUntil = Date.now() + 15_000;
    while (!udpBound(PBX_HOST, uasPort)) {
      if (Date.now() > bindUntil || uas.proc.exitCode !== null) throw new Error(`SIPp UAS did not bind ${PBX_HOST}:${uasPort}:\n${uas.screen()}`);
      await sleep(20);
    }
    const regRate = o.pbxs / o.refreshPeriodSec;
    const credentials = pbxs.map((p) => `${p.username};[authentication username=${p.username} password=${p.password}]`);
    const half = Math.floor(o.pbxs / 2);
    const registers = await Promise.all(
      instances.map(async (inst, i) =>
        startSipp(
          o.artifacts,
          `register-${inst.name}`,
          'register.xml',
          ['-m', '100000000', '-r', String(regRate), '-rp', '1000', '-l', String(o.pbxs), '-recv_timeout', '10000']
            .concat(['-key', 'domain', DOMAIN, '-key', 'expires', String(EXPIRES), '-key', 'contact', `${PBX_HOST}:${uasPort}`])
            .concat(['-auth_uri', DOMAIN]),
          {
            localIp: PBX_HOST,
            localPort: await freeUdpPort(PBX_HOST),
            remote: inst.address,
            // B's list starts half-way: each PBX refreshes through A, then half a period later through B
            csv: { order: 'SEQUENTIAL', lines: i === 0 ? credentials : [...credentials.slice(half), ...credentials.slice(0, half)] },
          },
        ),
      ),
    );
    sipps.push(...registers);
    // every PBX registered before the first call
    const regUntil = Date.now() + (o.refreshPeriodSec + 15) * 1000;
    const registered = () =>
      new Set(
        registers.flatMap((r) =>
          logLines(r.logFile, 'REG')
            .filter((f) => f[3] === 'ok')
            .map((f) => f[1]),
        ),
      ).size;
    while (registered() < o.pbxs) {
      if (Date.now() > regUntil) throw new Error(`only ${registered()} of ${o.pbxs} PBXs registered within ${o.refreshPeriodSec + 15} s`);
      await sleep(200);
    }
    log(`all ${o.pbxs} PBXs registered; calls start`);
    const callers = await Promise.all(
      instances.map(async (inst) =>
        startSipp(
          o.artifacts,
          `caller-${inst.name}`,
          'caller.xml',
          ['-m', '100000000', '-r', String(o.callRate), '-d', '100', '-l', '200', '-recv_timeout', String(CALLER_RECV_TIMEOUT_MS), '-key', 'domain', DOMAIN],
          {
            localIp: TRUNK,
            localPort: await freeUdpPort(TRUNK),
            remote: inst.address,
            csv: { order: 'RANDOM', lines: pbxs.map((p) => p.number) },
            trace: o.trace,
          },
        ),
      ),
    );
    sipps.push(...callers);

    // ------------------------------------------------ A, then B
    const restarts = new Map<string, InstanceFigures['restart']>();
    /** When each instance was not answering: SIGTERM → ready again. */
    const downWindows = new Map<string, Array<[number, number]>>();
    await sleep(o.settleSec * 1000);
    for (const inst of instances) {
      const t0 = Date.now();
      const exit = await inst.stop('SIGTERM');
      log(`${inst.name}: SIGTERM → exit ${exit.code} in ${exit.ms} ms`);
      await inst.start();
      const readyMs = Date.now() - t0;
      log(`${inst.name}: SIGTERM → ready again in ${readyMs} ms`);
      restarts.set(inst.name, { exitMs: exit.ms, exitCode: exit.code, readyMs });
      downWindows.set(inst.name, [[t0, t0 + readyMs]]);
      await sleep(o.settleSec * 1000);
    }
    // a last refresh of every PBX through the restarted instances
    await sleep((o.refreshPeriodSec / 2) * 1000);

    // ------------------------------------------------ stop the load, then check
    await Promise.all(callers.map((c) => stopSipp(c, 30_000)));
    await Promise.all(registers.map((r) => stopSipp(r, 30_000)));
    await stopSipp(uas, 5_000);
    log('load stopped; checking');

    const knex = knexFactory({ client: 'pg', connection: pgUrl, pool: { min: 0, max: 1 } });
    let rows: Array<{ username: string; contact: string; expires: Date }>;
    try {
      rows = await knex('location').select('username', 'contact', 'expires');
    } finally {
      await knex.destroy();
    }
    const stored = new Map<string, Date[]>();
    for (const r of rows) {
      const k = `${r.username} ${r.contact}`;
      stored.set(k, [...(stored.get(k) ?? []), new Date(r.expires)]);
    }
    // each PBX's last acknowledged REGISTER, through either instance
    const lastOk = new Map<string, { at: number; granted: number }>();
    for (const r of registers)
      for (const f of logLines(r.logFile, 'REG'))
        if (f[3] === 'ok') {
          const at = Number(f[f.length - 1]) * 1000;
          const prev = lastOk.get(f[1]);
          if (!prev || prev.at < at) lastOk.set(f[1], { at, granted: Number(f[4]) });
        }
    const lostBindings = lostBindingsOf(lastOk, stored, (user) => `sip:${user}@${PBX_HOST}:${uasPort}`);

    // ------------------------------------------------ figures per instance
    const failedCalls: string[] = [];
    const figures: InstanceFigures[] = instances.map((inst, i) => {
      const reg = logLines(registers[i].logFile, 'REG');
      const regAborted = aborted(registers[i].errFile);
      const regStats = { attempted: 0, ok: 0, refused: 0, noAnswer: 0, failed: 0 };
      const regSeen = new Set<string>();
      for (const f of reg) {
        regSeen.add(f[2]);
        if (f[3] === 'ok') regStats.ok++;
        else if (f[3] === '503') regStats.refused++;
        else regStats.noAnswer++;
      }
      for (const [id, a] of regAborted)
        if (regSeen.has(id)) continue;
        else if (/receive timeout/i.test(a.reason)) regStats.noAnswer++;
        else regStats.failed++;
      regStats.attempted = regStats.ok + regStats.refused + regStats.noAnswer + regStats.failed;

      const byCall = new Map<string, CallEvent[]>();
      for (const f of logLines(callers[i].logFile, 'CALL'))
        byCall.set(f[1], [...(byCall.get(f[1]) ?? []), { event: f[2], at: Number(f[f.length - 1]) * 1000 }]);
      const callAborted = aborted(callers[i].errFile);
      for (const id of callAborted.keys()) if (!byCall.has(id)) byCall.set(id, []);
      const calls = { attempted: byCall.size, completed: 0, refused: 0, notReached: 0, failed: 0 };
      const down = downWindows.get(inst.name) ?? [];
      for (const [id, events] of byCall) {
        const c = classifyCall(events, callAborted.get(id), down);
        calls[c]++;
        if (c === 'failed')
          failedCalls.push(
            `${inst.name} ${id}: ${events.map((e) => e.event).join(' ') || 'aborted'}${callAborted.has(id) ? ` — ${callAborted.get(id)!.reason}` : ''}`,
          );
      }
      return { name: inst.name, address: inst.address, registrations: regStats, calls, restart: restarts.get(inst.name)! };
    });
    const ok = lostBindings.length === 0 && failedCalls.length === 0 && figures.every((f) => f.restart.exitCode === 0);
    return { instances: figures, lostBindings, failedCalls, neverRegistered: o.pbxs - lastOk.size, ok };
  } finally {
    for (const s of sipps) if (s.proc.exitCode === null && s.proc.signalCode === null) s.proc.kill('SIGKILL');
    for (const c of cleanups.reverse()) await c();
  }
}

/** The table the bench prints (docs/rolling-restart.md shows it). */
export function table(r: RollingResult): string {
  const rows: Array<[string, ...string[]]> = [
    ['', ...r.instances.map((i) => `${i.name} (${i.address})`)],
    ['registrations attempted', ...r.instances.map((i) => String(i.registrations.attempted))],
    ['  200 OK', ...r.instances.map((i) => String(i.registrations.ok))],
    ['  503 (stopping)', ...r.instances.map((i) => String(i.registrations.refused))],
    ['  no answer (down)', ...r.instances.map((i) => String(i.registrations.noAnswer))],
    ['  failed', ...r.instances.map((i) => String(i.registrations.failed))],
    ['calls attempted', ...r.instances.map((i) => String(i.calls.attempted))],
    ['  completed', ...r.instances.map((i) => String(i.calls.completed))],
    ['  503 (stopping)', ...r.instances.map((i) => String(i.calls.refused))],
    ['  not reached (down)', ...r.instances.map((i) => String(i.calls.notReached))],
    ['  failed after reaching a live instance', ...r.instances.map((i) => String(i.calls.failed))],
    ['restart: SIGTERM → exit (ms)', ...r.instances.map((i) => `${i.restart.exitMs} (code ${i.restart.exitCode})`)],
    ['restart: SIGTERM → ready (ms)', ...r.instances.map((i) => String(i.restart.readyMs))],
  ];
  const w0 = Math.max(...rows.map((x) => x[0].length));
  const ws = r.instances.map((_, c) => Math.max(...rows.map((x) => x[c + 1].length)));
  const lines = rows.map(
    (x) =>
      `| ${x[0].padEnd(w0)} | ${x
        .slice(1)
        .map((v, c) => v.padStart(ws[c]))
        .join(' | ')} |`,
  );
  lines.splice(1, 0, `|${'-'.repeat(w0 + 2)}|${ws.map((w) => '-'.repeat(w + 1) + ':').join('|')}|`);
  lines.push('', `bindings lost: ${r.lostBindings.length}; calls failed after reaching a live instance: ${r.failedCalls.length}`);
  if (r.neverRegistered) lines.push(`PBXs never acknowledged (nothing to check): ${r.neverRegistered}`);
  for (const l of r.lostBindings.slice(0, 20)) lines.push(`  lost: ${l}`);
  for (const c of r.failedCalls.slice(0, 20)) lines.push(`  failed: ${c}`);
  return lines.join('\n');
}

function parseArgs(argv: string[]): Partial<RollingOptions> {
  const o: Partial<RollingOptions> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    const count = (min: number, max: number): number => {
      const v = value();
      const n = Number(v);
      if (!Number.isFinite(n) || n < min || n > max) throw new Error(`${a}: ${JSON.stringify(v)} is not a number from ${min} to ${max}`);
      return n;
    };
    if (a === '--pbxs') o.pbxs = Math.round(count(2, 9999));
    else if (a === '--record-route') o.recordRoute = true;
    else if (a === '--mode') {
      const m = value();
      if (m !== 'db-only' && m !== 'write-through') throw new Error(`--mode: ${JSON.stringify(m)} is not db-only or write-through`);
      o.mode = m;
    } else if (a === '--pg-url') o.pgUrl = value();
    else if (a === '--call-rate') o.callRate = count(0.1, 200);
    else if (a === '--refresh-period') o.refreshPeriodSec = count(2, 50);
    else if (a === '--settle') o.settleSec = count(0, 600);
    else if (a === '--workers') o.workers = Math.round(count(1, 64));
    else if (a === '--artifacts') o.artifacts = value();
    else if (a === '--trace') o.trace = true;
    else
      throw new Error(
        `unknown option ${a} (--pbxs N, --record-route, --mode db-only|write-through, --pg-url URL, --call-rate N, --refresh-period S, --settle S, --workers N, --artifacts DIR, --trace)`,
      );
  }
  return o;
}

export const DEFAULTS: Omit<RollingOptions, 'log'> = {
  pbxs: 200,
  recordRoute: false,
  mode: 'db-only',
  refreshPeriodSec: 20,
  callRate: 4,
  settleSec: 5,
  workers: 2,
  artifacts: path.join(ROOT, 'test-artifacts/rolling-restart'),
};

if (require.main === module) {
  let options: RollingOptions;
  try {
    options = { ...DEFAULTS, ...parseArgs(process.argv.slice(2)), log: (l) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${l}`) };
  } catch (e) {
    console.error(`bench:rolling: ${(e as Error).message}`);
    process.exit(2);
  }
  rmSync(options.artifacts, { recursive: true, force: true });
  const started = Date.now();
  rollingRestart(options).then(
    (r) => {
      console.log(
        `\nRolling restart: ${options.pbxs} PBXs, location ${options.mode}${options.recordRoute ? ', Record-Route' : ''}, ${options.callRate} calls/s per instance, ${Math.round((Date.now() - started) / 1000)} s, load ${os.loadavg()[0].toFixed(1)}\n`,
      );
      console.log(table(r));
      console.log(`\nSIPp files and instance logs: ${options.artifacts}`);
      process.exit(r.ok ? 0 : 1);
    },
    (e) => {
      console.error(`bench:rolling failed: ${(e as Error)?.stack ?? String(e)}`);
      process.exit(1);
    },
  );
}
