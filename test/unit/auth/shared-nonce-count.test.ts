import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import * as ts from 'typescript';
import { createDigestAuth, SharedNonceCounter } from '../../../services/auth';
import type { AuthPort, VerifyRequest } from '../../../services/auth/types';

const T0 = 1_700_000_000_000;
const EXP = T0 + 300_000;
const table = (slots?: number) => new SharedNonceCounter(SharedNonceCounter.create(slots));

describe('SharedNonceCounter: same behaviour as NonceCounter', () => {
  it('accepts strictly increasing nc and refuses repeats or decreases', () => {
    const c = table(64);
    expect(c.check('n', 1, T0)).toBe('fresh');
    expect(c.record('n', 1, T0, EXP, T0)).toBe('fresh');
    expect(c.check('n', 1, T0)).toBe('replay');
    expect(c.check('n', 2, T0)).toBe('fresh');
    expect(c.record('n', 3, T0, EXP, T0)).toBe('fresh');
    expect(c.check('n', 2, T0)).toBe('replay');
    expect(c.check('n', 3, T0)).toBe('replay');
    expect(c.check('n', 4, T0)).toBe('fresh');
    expect(c.check('other', 1, T0)).toBe('fresh');
  });

  it('keeps nc above 2^31 (8 hex digits) exact', () => {
    const c = table(64);
    c.record('n', 0xfffffffe, T0, EXP, T0);
    expect(c.check('n', 0xfffffffe, T0)).toBe('replay');
    expect(c.check('n', 0xffffffff, T0)).toBe('fresh');
  });

  it('treats a no-qop use as single use', () => {
    const c = table(64);
    expect(c.check('n', null, T0)).toBe('fresh');
    expect(c.record('n', null, T0, T0 + 1000, T0)).toBe('fresh');
    expect(c.check('n', null, T0)).toBe('replay');
    expect(c.check('n', 99, T0)).toBe('replay');
    expect(c.check('n', 0xffffffff, T0)).toBe('replay');
    c.record('q', 5, T0, EXP, T0);
    expect(c.check('q', null, T0)).toBe('replay'); // counted with qop: no no-qop use afterwards
  });

  it('record is check-and-set: a use that is no longer fresh is refused and not recorded', () => {
    const c = table(64);
    expect(c.record('n', 5, T0, EXP, T0)).toBe('fresh');
    expect(c.record('n', 5, T0, EXP, T0)).toBe('replay');
    expect(c.record('n', 3, T0, EXP, T0)).toBe('replay');
    expect(c.record('n', null, T0, EXP, T0)).toBe('replay');
    expect(c.check('n', 6, T0)).toBe('fresh'); // the refused no-qop use did not consume the key
  });

  it('reuses the slots of expired nonces without evicting (no forgotten counts)', () => {
    const c = table(8); // one bucket of 8 slots: every key shares it
    expect(c.capacity).toBe(8);
    for (let i = 0; i < 8; i++) c.record(`old${i}`, 1, T0, T0 + 1000, T0);
    expect(c.size).toBe(8);
    for (let i = 0; i < 8; i++) expect(c.record(`new${i}`, 1, T0 + 5000, T0 + 6000, T0 + 5000)).toBe('fresh');
    expect(c.size).toBe(8);
    expect(c.evictedUpTo).toBe(-Infinity);
    for (let i = 0; i < 8; i++) expect(c.check(`new${i}`, 1, T0 + 5000)).toBe('replay');
    expect(c.check('unseen', 1, T0)).toBe('fresh'); // nothing live was evicted
  });

  it('prefers dropping expired entries to evicting live ones', () => {
    const c = table(8);
    for (let i = 0; i < 7; i++) c.record(`live${i}`, 1, T0 + 10 + i, T0 + 100_000, T0 + 10);
    c.record('dead', 1, T0, T0 + 1000, T0 + 20);
    expect(c.record('new', 1, T0 + 2000, T0 + 100_000, T0 + 2000)).toBe('fresh');
    for (let i = 0; i < 7; i++) expect(c.check(`live${i}`, 1, T0 + 10 + i)).toBe('replay'); // still tracked
    expect(c.check('new', 1, T0 + 2000)).toBe('replay');
    expect(c.evictedUpTo).toBe(-Infinity);
  });

  it('evicts the oldest live entry of a full bucket and reports evicted counts as forgotten', () => {
    const c = table(8);
    for (let i = 0; i < 8; i++) c.record(`k${i}`, 1, T0 + i, EXP, T0 + i);
    expect(c.record('k8', 1, T0 + 8, EXP, T0 + 8)).toBe('fresh'); // evicts k0 (issued first)
    expect(c.size).toBe(8);
    expect(c.evictedUpTo).toBe(T0);
    expect(c.check('k0', 2, T0)).toBe('forgotten'); // count unknown: never accept a possible replay
    expect(c.record('k0', 2, T0, EXP, T0 + 9)).toBe('forgotten'); // and never recorded as fresh
    expect(c.check('k1', 1, T0 + 1)).toBe('replay');
    expect(c.check('k8', 2, T0 + 8)).toBe('fresh');
    expect(c.check('other', 1, T0 - 50)).toBe('forgotten'); // issued before an evicted one
    expect(c.check('d', 1, T0 + 9)).toBe('fresh'); // newer than anything evicted
  });

  it('spreads keys over the buckets of a larger table', () => {
    const c = table(16384); // 2048 buckets: 1000 keys overflow none of them (at 4096 slots, about one run in 8 did)
    for (let i = 0; i < 1000; i++) expect(c.record(`nonce-${i} alice`, 1, T0, EXP, T0)).toBe('fresh');
    expect(c.size).toBe(1000);
    expect(c.evictedUpTo).toBe(-Infinity);
    for (let i = 0; i < 1000; i++) expect(c.check(`nonce-${i} alice`, 1, T0)).toBe('replay');
  });

  it('instances attached to one buffer share the table; create() sizes and validates', () => {
    const buffer = SharedNonceCounter.create(100);
    const a = new SharedNonceCounter(buffer),
      b = new SharedNonceCounter(buffer);
    a.record('n', 1, T0, EXP, T0);
    expect(b.check('n', 1, T0)).toBe('replay');
    expect(b.capacity).toBe(128); // 16 buckets of 8
    expect(SharedNonceCounter.create().byteLength).toBeGreaterThan(10_000_000);
    expect(() => SharedNonceCounter.create(0)).toThrow();
    expect(() => new SharedNonceCounter(new ArrayBuffer(1024) as unknown as SharedArrayBuffer)).toThrow(/SharedArrayBuffer/);
    expect(() => new SharedNonceCounter(new SharedArrayBuffer(1024))).toThrow(/not a nonce-count table/);
  });
});

/**
 * Real threads. A worker cannot load TypeScript through ts-jest, so the module under test is
 * transpiled (typescript.transpileModule, as ts-jest does) into a temporary .js file the workers
 * require; it has only type imports, so it needs nothing else.
 */
describe('SharedNonceCounter across worker_threads', () => {
  let dir: string;
  let modulePath: string;
  const started = new Set<Worker>();

  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'sipflow-shared-nc-'));
    const source = readFileSync(path.join(__dirname, '../../../services/auth/shared-nonce-count.ts'), 'utf8');
    const out = ts.transpileModule(source, {
      compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, isolatedModules: true },
    });
    expect(out.outputText).not.toMatch(/require\("\.\//); // self-contained
    modulePath = path.join(dir, 'shared-nonce-count.js');
    writeFileSync(modulePath, out.outputText);
  });

  afterEach(async () => {
    await Promise.all([...started].map((w) => w.terminate()));
    started.clear();
  });

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** Worker: attaches to the table, says ready, waits for the start signal, runs its task. */
  const WORKER = `
    const { workerData: d, parentPort } = require('node:worker_threads');
    const { SharedNonceCounter } = require(d.modulePath);
    const table = new SharedNonceCounter(d.buffer);
    const start = new Int32Array(d.start);
    parentPort.postMessage('ready');
    Atomics.wait(start, 0, 0); // both threads begin together
    const exp = d.t0 + 300000;
    const accepted = d.accepted ? new Int32Array(d.accepted) : null;
    const out = { fresh: 0, replay: 0, forgotten: 0, lost: 0, results: [] };
    switch (d.task) {
      case 'record': out.results.push(table.record(d.key, d.nc, d.t0, exp, d.t0)); break;
      case 'check': out.results.push(table.check(d.key, d.nc, d.t0)); break;
      case 'interleave': // nc = parity, parity + 2, ...: the two threads alternate on one key
        for (let i = 0; i < d.n; i++) {
          const nc = 2 * i + d.parity;
          out[table.record('hot', nc, d.t0, exp, d.t0)]++;
          // Fresh or not, the count is now >= nc, and stays so whatever the other thread does.
          if (table.check('hot', nc, d.t0) !== 'replay') out.lost++;
        }
        break;
      case 'same': // check, then record, like verify(): both threads try nc 1..n on one key
        for (let nc = 1; nc <= d.n; nc++) {
          const c = table.check('same', nc, d.t0);
          const r = c === 'fresh' ? table.record('same', nc, d.t0, exp, d.t0) : c;
          out[r]++;
          if (r === 'fresh') Atomics.add(accepted, nc, 1);
        }
        break;
      case 'keys': // check, then record nc 1 of many keys (spread over the buckets)
        for (let i = 0; i < d.n; i++) {
          const key = 'nonce-' + i + ' alice';
          const c = table.check(key, 1, d.t0);
          out[c === 'fresh' ? table.record(key, 1, d.t0, exp, d.t0) : c]++;
        }
        break;
    }
    parentPort.postMessage(out);
  `;

  interface Out {
    fresh: number;
    replay: number;
    forgotten: number;
    lost: number;
    results: string[];
  }

  /** Starts one worker per task, releases them at once, returns their results. */
  async function run(buffer: SharedArrayBuffer, tasks: Array<Record<string, unknown>>): Promise<Out[]> {
    const start = new SharedArrayBuffer(4);
    const workers = tasks.map((t) => {
      const w = new Worker(WORKER, { eval: true, workerData: { modulePath, buffer, start, t0: T0, ...t } });
      started.add(w);
      return w;
    });
    const runs = workers.map((w) => {
      let onReady = () => undefined as void;
      const ready = new Promise<void>((resolve) => {
        onReady = resolve;
      });
      const result = new Promise<Out>((resolve, reject) => {
        w.on('message', (m: unknown) => {
          if (m === 'ready') onReady();
          else resolve(m as Out);
        });
        w.on('error', reject);
        w.on('exit', (code) => reject(new Error(`worker exited with ${code} before answering`)));
      });
      return { ready: Promise.race([ready, result.then(() => undefined)]), result };
    });
    await Promise.all(runs.map((r) => r.ready));
    Atomics.store(new Int32Array(start), 0, 1);
    Atomics.notify(new Int32Array(start), 0);
    return Promise.all(runs.map((r) => r.result));
  }

  it('a (key, nc) recorded in one thread is a replay in another (and in this one)', async () => {
    const buffer = SharedNonceCounter.create(1024);
    const [rec] = await run(buffer, [{ task: 'record', key: 'n alice', nc: 5 }]);
    expect(rec.results).toEqual(['fresh']);
    const [same, higher, other] = await Promise.all([
      run(buffer, [{ task: 'check', key: 'n alice', nc: 5 }]),
      run(buffer, [{ task: 'check', key: 'n alice', nc: 6 }]),
      run(buffer, [{ task: 'check', key: 'n bob', nc: 1 }]),
    ]);
    expect(same[0].results).toEqual(['replay']);
    expect(higher[0].results).toEqual(['fresh']);
    expect(other[0].results).toEqual(['fresh']);
    const here = new SharedNonceCounter(buffer);
    expect(here.check('n alice', 5, T0)).toBe('replay');
    here.record('n alice', 9, T0, EXP, T0);
    const [after] = await run(buffer, [{ task: 'check', key: 'n alice', nc: 8 }]);
    expect(after.results).toEqual(['replay']);
  });

  it('concurrent records of one key from two threads never lose the higher nc', async () => {
    const buffer = SharedNonceCounter.create(1024);
    const n = 200_000;
    const [odd, even] = await run(buffer, [
      { task: 'interleave', parity: 1, n },
      { task: 'interleave', parity: 2, n },
    ]);
    expect(odd.lost + even.lost).toBe(0); // the count never went back below a recorded nc
    expect(odd.fresh + odd.replay).toBe(n);
    expect(even.fresh + even.replay).toBe(n);
    expect(odd.forgotten + even.forgotten).toBe(0);
    const here = new SharedNonceCounter(buffer);
    expect(here.check('hot', 2 * n, T0)).toBe('replay'); // the highest, recorded by 'even'
    expect(here.check('hot', 2 * n + 1, T0)).toBe('fresh');
  });

  it('the same (key, nc) verified by two threads at once is accepted exactly once', async () => {
    const buffer = SharedNonceCounter.create(1024);
    const n = 200_000;
    const accepted = new SharedArrayBuffer((n + 1) * 4);
    const [a, b] = await run(buffer, [
      { task: 'same', n, accepted },
      { task: 'same', n, accepted },
    ]);
    const counts = new Int32Array(accepted);
    let twice = 0,
      never = 0;
    for (let nc = 1; nc <= n; nc++) {
      if (counts[nc] > 1) twice++;
      else if (counts[nc] === 0) never++;
    }
    expect({ twice, never }).toEqual({ twice: 0, never: 0 }); // each nc: one thread won, the other saw a replay
    expect(a.fresh + b.fresh).toBe(n);
    expect(a.forgotten + b.forgotten).toBe(0);
  });

  it('two threads verifying nc 1 of many keys: one acceptance per key', async () => {
    const buffer = SharedNonceCounter.create(1 << 16);
    const n = 5000;
    const [a, b] = await run(buffer, [
      { task: 'keys', n },
      { task: 'keys', n },
    ]);
    expect(a.forgotten + b.forgotten).toBe(0);
    expect(a.fresh + b.fresh).toBe(n);
    expect(a.replay + b.replay).toBe(n);
  });
});

describe('createDigestAuth with a SharedNonceCounter', () => {
  const SECRET = 'test secret, not for production';
  const REALM = 'nl.netaxis.be';
  const md5 = (s: string) => createHash('md5').update(s).digest('hex');

  /** The UA's Authorization for a challenge (MD5, as in verify.test.ts). */
  function answer(nonce: string, nc: number | null): string {
    const ha1 = md5(`alice:${REALM}:alicepw`),
      ha2 = md5(`REGISTER:sip:${REALM}`);
    const ncHex = (nc ?? 0).toString(16).padStart(8, '0');
    const response = nc === null ? md5(`${ha1}:${nonce}:${ha2}`) : md5(`${ha1}:${nonce}:${ncHex}:c0ffee:auth:${ha2}`);
    return (
      `Digest username="alice", realm="${REALM}", nonce="${nonce}", uri="sip:${REALM}", response="${response}", algorithm=MD5` +
      (nc === null ? '' : `, cnonce="c0ffee", nc=${ncHex}, qop=auth`)
    );
  }
  const request = (auth: AuthPort, header: string): VerifyRequest => ({
    credentials: auth.parseCredentials(header)!,
    method: 'REGISTER',
    password: 'alicepw',
    isHa1: false,
    realm: REALM,
    requestUri: `sip:${REALM}`,
    now: T0 + 1000,
  });

  /** Two auth instances as two SIP threads would have them: one secret, one shared buffer. */
  function twoThreads(): [AuthPort, AuthPort] {
    const buffer = SharedNonceCounter.create(1024);
    return [
      createDigestAuth({ secret: SECRET, nonceCounts: new SharedNonceCounter(buffer) }),
      createDigestAuth({ secret: SECRET, nonceCounts: new SharedNonceCounter(buffer) }),
    ];
  }

  it('a response verified by instance A is a replay for instance B', () => {
    const [a, b] = twoThreads();
    const nonce = a.challenge(REALM, false, T0).nonce;
    expect(a.verify(request(a, answer(nonce, 1)))).toBe('ok');
    expect(b.verify(request(b, answer(nonce, 1)))).toBe('bad'); // replay sent to the other thread
    expect(b.verify(request(b, answer(nonce, 2)))).toBe('ok');
    expect(a.verify(request(a, answer(nonce, 2)))).toBe('bad');
    expect(a.verify(request(a, answer(nonce, 3)))).toBe('ok');
  });

  it('a no-qop response is usable once across instances', () => {
    const [a, b] = twoThreads();
    const nonce = b.challenge(REALM, false, T0).nonce;
    expect(b.verify(request(b, answer(nonce, null)))).toBe('ok');
    expect(a.verify(request(a, answer(nonce, null)))).toBe('bad');
  });

  it('without the shared table the other instance would accept the replay (why it exists)', () => {
    const a = createDigestAuth({ secret: SECRET }),
      b = createDigestAuth({ secret: SECRET });
    const nonce = a.challenge(REALM, false, T0).nonce;
    expect(a.verify(request(a, answer(nonce, 1)))).toBe('ok');
    expect(b.verify(request(b, answer(nonce, 1)))).toBe('ok');
  });

  it('answers stale when the count was evicted from the shared table', () => {
    const buffer = SharedNonceCounter.create(8); // one bucket of 8
    const a = createDigestAuth({ secret: SECRET, nonceCounts: new SharedNonceCounter(buffer) });
    const b = createDigestAuth({ secret: SECRET, nonceCounts: new SharedNonceCounter(buffer) });
    const first = a.challenge(REALM, false, T0).nonce;
    expect(a.verify(request(a, answer(first, 1)))).toBe('ok');
    for (let i = 1; i <= 8; i++) {
      const nonce = a.challenge(REALM, false, T0 + i).nonce;
      expect(a.verify(request(a, answer(nonce, 1)))).toBe('ok'); // the 8th evicts `first`
    }
    expect(b.verify(request(b, answer(first, 2)))).toBe('stale');
  });
});
