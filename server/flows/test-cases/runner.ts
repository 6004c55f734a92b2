/**
 * Runs a flow's test cases (./format.ts) against a compiled service, never touching real data:
 *
 * - the directory is a throw-away PGlite memory database, migrated like the real one and holding
 *   the note's sample subscriber (services/directory seed), plus the document's fixture rows; a
 *   test's own rows are inserted in a transaction rolled back after the test (PGlite is a single
 *   connection, so the rows are seen by that test only);
 * - the location service is a private in-memory store per test, holding the fixture bindings;
 * - the clock stands still at the test's `now` when it has one;
 * - digest authentication is played server-side: a 401/407 challenge is answered with the test's
 *   `credentials` (MD5, qop=auth, as a UA and the designer's "REGISTER with credentials" sample do)
 *   and the request sent again, CSeq + 1.
 *
 * Work is bounded: at most TEST_LIMITS.maxTests tests of at most two requests each, each run held
 * by the engine's limits (transitions, restarts, call depth), and a wall-clock budget after which
 * the remaining tests fail as "not run".
 */
import { randomBytes } from 'crypto';
import os from 'os';
import type { Knex } from 'knex';
import { buildCallDescriptor } from '../../../engine/cd';
import { parseInstant } from '../../../engine/instant';
import type { CompiledService } from '../../../engine/load';
import { runLogic, type RunResult } from '../../../engine/run';
import { HttpQueryError, ServiceUnavailableError, type Binding, type CallLimitPort, type HttpPort } from '../../../engine/ports';
import type { Outcome, RunContext, RunLimits, TraceStep } from '../../../engine/types';
import { computeResponse, ha1, parseDigestCredentials } from '../../../services/auth';
import { createMemoryCallLimiter } from '../../../services/call-limit';
import { createMemoryLocationStore } from '../../../services/location/memory';
import { createRegistrar, type RegistrarOptions } from '../../../services/location/registrar';
import { splitAor } from '../../../services/location/types';
import { openRuntime, type Runtime } from '../../runtime';
import type { DirectoryFixture, HttpFixture, LocationFixture, TestCase, TestDocument } from './format';

export interface TestResult {
  name: string;
  passed: boolean;
  /** The logic run (id "name"). */
  logic: string;
  actual: { kind: string; status: number | null; path: string[] } | null;
  /** What differed (empty when passed). */
  message: string;
  durationMs: number;
}

export interface TestReport {
  passed: number;
  failed: number;
  results: TestResult[];
}

export interface TestRunOptions {
  limits?: Partial<RunLimits>;
  /** Digest realm (default: the From host, as the engine does). */
  realm?: string;
  registrar?: RegistrarOptions;
  /** Wall-clock budget of the whole run (default 60 s): tests not started by then fail as "not run". */
  budgetMs?: number;
}

const DEFAULT_BUDGET_MS = 60_000;

/** `"Digest realm=\"x\", nonce=\"y\""` → { realm: 'x', nonce: 'y' } */
function challengeParams(header: string): Record<string, string> {
  const out: Record<string, string> = {};
  const re = /([A-Za-z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]+))/g;
  const s = header.replace(/^\s*Digest\s+/i, '');
  for (let m = re.exec(s); m; m = re.exec(s)) out[m[1].toLowerCase()] = m[2] !== undefined ? m[2] : m[3];
  return out;
}

/** The request again with the Authorization (or Proxy-Authorization) a UA answers `challenge` with. */
export function answeredRequest(cd: Record<string, unknown>, challenge: Extract<Outcome, { kind: 'challenge' }>, creds: { username: string; password: string }): Record<string, unknown> {
  const md5 = challenge.challenges.find((c) => /algorithm="?MD5"?(,|$|\s)/i.test(c)) ?? challenge.challenges[0];
  const p = md5 ? challengeParams(md5) : {};
  const realm = p.realm ?? challenge.realm;
  const nonce = p.nonce ?? challenge.nonce;
  const method = String(cd.requestMethod ?? cd.method ?? 'INVITE');
  const uri = String(cd.requestURI ?? cd.requestUri ?? '');
  const cnonce = randomBytes(8).toString('hex');
  const nc = '00000001';
  const response = computeResponse({ algorithm: 'MD5', ha1: ha1('MD5', creds.username, realm, creds.password), nonce, nc, cnonce, qop: 'auth', method, uri });
  const parts = [`username="${creds.username}"`, `realm="${realm}"`, `nonce="${nonce}"`, `uri="${uri}"`, `response="${response}"`, 'algorithm=MD5'];
  if (p.opaque !== undefined) parts.push(`opaque="${p.opaque}"`);
  parts.push('qop=auth', `nc=${nc}`, `cnonce="${cnonce}"`);
  const headers = { ...((cd.headers as Record<string, unknown>) ?? {}) };
  headers[challenge.header === 'Proxy-Authenticate' ? 'Proxy-Authorization' : 'Authorization'] = `Digest ${parts.join(', ')}`;
  const cseqKey = Object.keys(headers).find((k) => k.toLowerCase() === 'cseq');
  const cseq = cseqKey ? /^(\d+)\s+(\S+)/.exec(String(headers[cseqKey])) : null;
  if (cseqKey && cseq) headers[cseqKey] = `${Number(cseq[1]) + 1} ${cseq[2]}`;
  return { ...cd, headers };
}

/** Node ids a run went through: `3` for the tested logic's nodes, `2/5` for node 5 of called logic 2. */
export const pathOf = (trace: TraceStep[], logicId: string): string[] =>
  trace.map((s) => (s.logic === logicId ? s.nodeId : `${s.logic}/${s.nodeId}`));

/** True when `expected` occurs in `actual` in order (other nodes may come between). */
export function pathIncludes(actual: string[], expected: string[]): boolean {
  let i = 0;
  for (const step of actual) if (i < expected.length && step === expected[i]) i++;
  return i === expected.length;
}

function binding(b: LocationFixture[number], i: number, now: number): Binding {
  const { username } = splitAor(b.aor);
  const at = new Date(now);
  return {
    ruid: `test-binding-${i}`,
    username,
    domain: null,
    contact: b.contact,
    received: b.received ?? null,
    path: b.path ?? null,
    expires: new Date(now + (b.expires ?? 3600) * 1000),
    q: b.q ?? -1,
    callid: `test-binding-${i}`,
    cseq: 1,
    last_modified: at,
    flags: 0,
    cflags: 0,
    user_agent: 'sipflow test',
    socket: null,
    methods: null,
    instance: null,
    reg_id: 0,
    server_id: 0,
    connection_id: -1,
    keepalive: 0,
    partition: 0,
  };
}

/** query.httpRequest's answers from the fixture; anything else fails as a connection failure (the runner never reaches the network). */
function fixtureHttp(answers: HttpFixture): HttpPort {
  return {
    async request(q) {
      const a = answers.find((x) => x.url === q.url && (x.method === undefined || x.method.toUpperCase() === q.method.toUpperCase()));
      if (!a) throw new HttpQueryError(`no "http" fixture answers ${q.method} ${q.url}`, 'failure');
      if (a.fail) throw new HttpQueryError(`${q.method} ${q.url}: ${a.fail} (fixture)`, a.fail);
      const body = a.body === undefined ? '' : typeof a.body === 'string' ? a.body : JSON.stringify(a.body);
      const headers = Object.fromEntries(Object.entries(a.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v]));
      if (typeof a.body === 'object' && a.body !== null && !headers['content-type']) headers['content-type'] = 'application/json';
      return { status: a.status ?? 200, headers, body, elapsedMs: 1 };
    },
  };
}

/** analysis.callLimit's limiter as the test says: a limit reached, the rate exceeded, or down. */
function fixtureCallLimit(mode: NonNullable<TestCase['callLimit']>): CallLimitPort {
  return {
    async acquire() {
      if (mode === 'unavailable') throw new ServiceUnavailableError('call limiter unavailable (fixture)');
      return mode === 'full' ? 'concurrent' : 'rate';
    },
    async release() {},
  };
}

async function insertRows(knex: Knex, fixture: DirectoryFixture | undefined): Promise<void> {
  for (const [table, rows] of Object.entries(fixture ?? {})) {
    if (rows.length) await knex(table).insert(rows);
  }
}

/** Explains a database error of a fixture: which table, what went wrong. */
function fixtureError(e: unknown, where: string): Error {
  return new Error(`${where}: the fixture rows cannot be inserted: ${(e as Error).message.split('\n')[0]}`);
}

/** What differed between the outcome and `expect` (empty: nothing). */
export function compareOutcome(t: TestCase, outcome: Outcome, path: string[]): string {
  const diffs: string[] = [];
  const e = t.expect;
  const status = outcome.status;
  const what = `${outcome.kind}${status !== null ? ` ${status}` : ''}${outcome.kind === 'error' ? ` (${outcome.reason})` : ''}`;
  if (outcome.kind !== e.kind || (e.status !== undefined && status !== e.status)) {
    diffs.push(`expected ${e.kind}${e.status !== undefined ? ` ${e.status}` : ''}, got ${what}`);
  }
  if (e.path && !pathIncludes(path, e.path)) diffs.push(`expected the path to go through ${e.path.join(' → ')}, it went ${path.join(' → ') || '(nowhere)'}`);
  return diffs.join('; ');
}

/**
 * A private directory for test runs: PGlite in memory, migrated like the real one and seeded with
 * the note's sample subscriber. Open it once and run any number of documents on it, one at a time
 * (a document's rows live in a transaction rolled back when it is done, a test's own rows in a
 * savepoint rolled back after the test: PGlite is a single connection, so nothing else sees them).
 */
export interface TestEnvironment {
  /** Runs `fn` alone on the environment (runs are serialized). */
  exclusive<T>(fn: (rt: Runtime) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

export async function openTestEnvironment(o: TestRunOptions = {}): Promise<TestEnvironment> {
  const rt = await openRuntime({
    dataDir: os.tmpdir(),
    directoryUrl: 'memory://',
    locationUrl: 'memory',
    provision: true,
    nonceSecret: randomBytes(32).toString('hex'),
    realm: o.realm,
    registrar: o.registrar,
    limits: o.limits,
  });
  let queue: Promise<unknown> = Promise.resolve();
  let closed = false;
  return {
    exclusive(fn) {
      const next = queue.then(() => {
        if (closed) throw new Error('the test environment is closed');
        return fn(rt);
      });
      queue = next.catch(() => undefined);
      return next;
    },
    async close() {
      await queue;
      closed = true;
      await rt.close();
    },
  };
}

/**
 * Runs every test of `doc` on `service`, the flow's first logic when a test names none. Never throws
 * for a test that fails: each result says what differed (fixture rows that do not fit fail their
 * tests). `env`: a shared environment (./openTestEnvironment); default: one opened and closed here.
 */
export async function runTestCases(service: CompiledService, doc: TestDocument, o: TestRunOptions = {}, env?: TestEnvironment): Promise<TestReport> {
  const results: TestResult[] = [];
  const budget = o.budgetMs ?? DEFAULT_BUDGET_MS;
  const deadline = Date.now() + budget;
  const firstLogic = [...service.logics.values()][0];
  const own = env ?? (doc.tests.length ? await openTestEnvironment(o) : null);
  try {
    await own?.exclusive(async (rt) => {
      await rt.knex.raw('BEGIN');
      try {
        let docRows: string | null = null;
        try {
          await insertRows(rt.knex, doc.directory);
        } catch (e) {
          docRows = fixtureError(e, '/directory').message;
        }
        for (const [i, t] of doc.tests.entries()) {
          const t0 = Date.now();
          const logic = t.logic === undefined ? firstLogic : service.find(t.logic);
          const label = logic ? `${logic.id} "${logic.name}"` : String(t.logic);
          const fail = (message: string): TestResult => ({ name: t.name, passed: false, logic: label, actual: null, message, durationMs: Date.now() - t0 });
          if (!logic) results.push(fail(`no logic "${t.logic}" in this flow`));
          else if (docRows !== null) results.push(fail(docRows));
          else if (Date.now() > deadline) results.push(fail(`not run: the run's time budget (${budget} ms) is spent`));
          else {
            try {
              const r = await runOne(rt, service, logic.id, t, i, doc, o);
              const path = pathOf(r.trace ?? [], logic.id);
              const message = compareOutcome(t, r.outcome, path);
              results.push({ name: t.name, passed: message === '', logic: label, actual: { kind: r.outcome.kind, status: r.outcome.status, path }, message, durationMs: Date.now() - t0 });
            } catch (e) {
              results.push(fail((e as Error).message));
            }
          }
        }
      } finally {
        await rt.knex.raw('ROLLBACK');
      }
    });
  } finally {
    if (!env) await own?.close();
  }
  const passed = results.filter((r) => r.passed).length;
  return { passed, failed: results.length - passed, results };
}

async function runOne(rt: Runtime, service: CompiledService, logicId: string, t: TestCase, i: number, doc: TestDocument, o: TestRunOptions): Promise<RunResult> {
  const now = t.now === undefined ? undefined : (parseInstant(t.now) as number);
  const clockNow = () => now ?? Date.now();
  const store = createMemoryLocationStore();
  const bindings = [...(doc.location ?? []), ...(t.location ?? [])];
  for (const [n, b] of bindings.entries()) await store.upsert(binding(b, n, clockNow()));
  const ctx: RunContext = {
    ...rt.ctx,
    ...(now === undefined ? {} : { clock: { now: () => now }, calendar: { now: () => now } }),
    location: createRegistrar(store, o.registrar),
    callLimits: t.callLimit ? fixtureCallLimit(t.callLimit) : createMemoryCallLimiter(),
    http: fixtureHttp([...(t.http ?? []), ...(doc.http ?? [])]),
    log: undefined,
  };
  const cdOf = (input: unknown) => buildCallDescriptor(input, { credentials: parseDigestCredentials });
  await rt.knex.raw('SAVEPOINT sipflow_test');
  try {
    try {
      await insertRows(rt.knex, t.directory);
    } catch (e) {
      throw fixtureError(e, `/tests/${i}/directory`);
    }
    let r = await runLogic(service, logicId, cdOf(t.cd), ctx, { trace: true, limits: o.limits });
    if (t.credentials && r.outcome.kind === 'challenge') {
      r = await runLogic(service, logicId, cdOf(answeredRequest(t.cd, r.outcome, t.credentials)), ctx, { trace: true, limits: o.limits });
    }
    if (t.relayFailed !== undefined && r.outcome.kind === 'relay' && r.resume) {
      // the front end tried every attempt: each answered relayFailed; the logic goes on at ifAllFailed
      const attempts = [r.outcome.targets, ...(r.outcome.failover?.alternatives ?? [])];
      const last = attempts[attempts.length - 1];
      r.cd.vars.lastCode = t.relayFailed;
      r.cd.vars.lastRequestURI = last?.[0]?.uri ?? null;
      // the run goes on with the same call descriptor and trace (engine/run.ts)
      r = await r.resume();
    }
    return r;
  } finally {
    await rt.knex.raw('ROLLBACK TO SAVEPOINT sipflow_test');
  }
}
