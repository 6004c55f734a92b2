/**
 * Group commit in the SQL location store (services/location/batcher.ts, services/location/sql.ts):
 * concurrent upserts and removes share one statement and one commit, each caller resolves with
 * its batch and only after it committed, the last upsert of a ruid wins, and a failed batch
 * rejects every caller in it with LocationUnavailableError. Against the real PostgreSQL
 * (globalSetup's server, a schema of its own), PGlite, and a private PostgreSQL that is stopped.
 */
import { randomUUID } from 'crypto';
import knexFactory from 'knex';
import type { Knex } from 'knex';
import { Collection, Db, MongoClient } from 'mongodb';
import { createBatcher } from '../../../services/location/batcher';
import { createMongoLocationStore, writeDefaults } from '../../../services/location/mongo';
import { createSqlLocationStore, ensureSchema } from '../../../services/location/sql';
import { LocationUnavailableError, type Binding } from '../../../services/location/types';
import { BINDING_WIDTHS } from '../../../services/location/widths';
import { mongoUrl, pgUrl, type PrivateServer } from '../../setup/servers';
import { useFaultyPostgres, rejection, sleep, watchUnhandledRejections } from './faults';
import { makeBinding, openTarget, type Target } from './fixtures';

const tick = () => new Promise((r) => setImmediate(r));

// ------------------------------------------------------------------ the batcher alone

describe('batcher policy', () => {
  /** A batcher whose batches complete when the test says so; records each batch. */
  function controlled(o: { maxInFlight?: number; maxBatch?: number; key?: (n: number) => string; lingerMs?: number } = {}) {
    const batches: number[][] = [];
    const gates: Array<{ resolve: () => void; reject: (e: unknown) => void }> = [];
    const b = createBatcher<number, number>({
      ...o,
      run: (items) => {
        batches.push(items);
        return new Promise<number[]>((resolve, reject) => {
          gates.push({ resolve: () => resolve(items.map((i) => i * 10)), reject });
        });
      },
    });
    return { b, batches, gates };
  }

  test('an idle batcher sends at once; calls of the same tick share one batch', async () => {
    const { b, batches, gates } = controlled();
    const ps = [1, 2, 3].map((i) => b.submit(i));
    await tick();
    expect(batches).toEqual([[1, 2, 3]]);
    gates[0].resolve();
    expect(await Promise.all(ps)).toEqual([10, 20, 30]);
  });

  test('below maxInFlight each tick sends; at maxInFlight calls queue and go out together when a batch completes', async () => {
    const { b, batches, gates } = controlled({ maxInFlight: 2 });
    const p1 = b.submit(1);
    await tick();
    const p2 = b.submit(2);
    await tick();
    expect(batches).toEqual([[1], [2]]);
    const later = [3, 4, 5].map((i) => b.submit(i));
    await tick();
    await tick();
    b.submit(6).catch(() => undefined);
    await tick();
    expect(batches).toEqual([[1], [2]]); // two running: nothing more is sent
    expect(b.inFlight).toBe(2);
    expect(b.queued).toBe(4);
    gates[1].resolve(); // the second completes first
    expect(await p2).toBe(20);
    await tick();
    expect(batches).toEqual([[1], [2], [3, 4, 5, 6]]);
    let firstSettled = false;
    void p1.then(() => {
      firstSettled = true;
    });
    await tick();
    expect(firstSettled).toBe(false); // each caller waits for ITS batch
    gates[0].resolve();
    gates[2].resolve();
    expect(await p1).toBe(10);
    expect(await Promise.all(later)).toEqual([30, 40, 50]);
  });

  test('maxBatch caps a batch; the rest go in further batches', async () => {
    const { b, batches, gates } = controlled({ maxBatch: 3, maxInFlight: 10 });
    const ps = Array.from({ length: 8 }, (_, i) => b.submit(i));
    await tick();
    expect(batches).toEqual([
      [0, 1, 2],
      [3, 4, 5],
      [6, 7],
    ]);
    for (const g of gates) g.resolve();
    expect(await Promise.all(ps)).toEqual([0, 10, 20, 30, 40, 50, 60, 70]);
  });

  test('a failed batch rejects every caller in it, and only them; the next batch still goes', async () => {
    const { b, batches, gates } = controlled({ maxInFlight: 1 });
    const first = [1, 2].map((i) => b.submit(i));
    await tick();
    const second = [3, 4].map((i) => b.submit(i));
    await tick();
    const boom = new Error('boom');
    gates[0].reject(boom);
    const settled = await Promise.allSettled(first);
    expect(settled).toEqual([
      { status: 'rejected', reason: boom },
      { status: 'rejected', reason: boom },
    ]);
    await tick();
    expect(batches).toEqual([
      [1, 2],
      [3, 4],
    ]);
    gates[1].resolve();
    expect(await Promise.all(second)).toEqual([30, 40]);
  });

  test('a batch function that throws synchronously or returns the wrong count rejects, never hangs', async () => {
    const sync = createBatcher<number, number>({
      run: () => {
        throw new Error('sync');
      },
    });
    await expect(sync.submit(1)).rejects.toThrow('sync');
    const short = createBatcher<number, number>({ run: async () => [1] });
    const r = await Promise.allSettled([short.submit(1), short.submit(2)]);
    expect(r.map((x) => x.status)).toEqual(['rejected', 'rejected']);
    expect(await short.submit(5)).toBe(1); // still usable
  });

  test('with a key, a call never runs alongside nor overtakes an earlier call with the same key', async () => {
    const { b, batches, gates } = controlled({ maxInFlight: 4, maxBatch: 2, key: (n) => String(n % 10) });
    // 1 and 11 share key "1"; 2 has its own.
    const ps = [1, 11, 2, 21].map((i) => b.submit(i));
    await tick();
    // [1, 11] fills the first batch; 2 goes next; 21 (key 1) waits for the first batch.
    expect(batches).toEqual([[1, 11], [2]]);
    gates[1].resolve();
    await tick();
    expect(batches).toEqual([[1, 11], [2]]);
    gates[0].resolve();
    await tick();
    expect(batches).toEqual([[1, 11], [2], [21]]);
    gates[2].resolve();
    expect(await Promise.all(ps)).toEqual([10, 110, 20, 210]);
  });
});

describe('batcher policy with lingerMs (a commit delay)', () => {
  // the linger timer is faked; the microtasks and turns of the event loop the batcher and `tick` use are not
  beforeEach(() => jest.useFakeTimers({ doNotFake: ['queueMicrotask', 'setImmediate', 'nextTick'] }));
  afterEach(() => jest.useRealTimers());

  function controlled(o: { maxInFlight?: number; maxBatch?: number; lingerMs: number }) {
    const batches: number[][] = [];
    const gates: Array<() => void> = [];
    const b = createBatcher<number, number>({
      ...o,
      run: (items) => {
        batches.push(items);
        return new Promise<number[]>((resolve) => gates.push(() => resolve(items.map((i) => i * 10))));
      },
    });
    return { b, batches, gates };
  }

  test('the first call of a quiet spell waits lingerMs for company; the calls meanwhile share its batch', async () => {
    const { b, batches, gates } = controlled({ lingerMs: 10 });
    const ps = [b.submit(1)];
    await tick();
    expect(batches).toEqual([]); // not at once
    jest.advanceTimersByTime(6);
    ps.push(b.submit(2), b.submit(3));
    await tick();
    expect(batches).toEqual([]); // the delay runs from the first call, not the last
    jest.advanceTimersByTime(4);
    await tick();
    expect(batches).toEqual([[1, 2, 3]]);
    gates[0]();
    expect(await Promise.all(ps)).toEqual([10, 20, 30]);
    // a call after the queue emptied lingers again
    const next = b.submit(4);
    await tick();
    expect(batches).toHaveLength(1);
    jest.advanceTimersByTime(10);
    await tick();
    expect(batches).toEqual([[1, 2, 3], [4]]);
    gates[1]();
    expect(await next).toBe(40);
  });

  test('a full batch goes at once, and with a batch running nothing lingers: the rest goes too', async () => {
    const { b, batches, gates } = controlled({ lingerMs: 50, maxBatch: 3, maxInFlight: 4 });
    const ps = [1, 2, 3, 4].map((i) => b.submit(i));
    await tick();
    expect(batches).toEqual([[1, 2, 3], [4]]);
    // a call while those run goes at once as well
    ps.push(b.submit(5));
    await tick();
    expect(batches).toEqual([[1, 2, 3], [4], [5]]);
    for (const g of gates) g();
    expect(await Promise.all(ps)).toEqual([10, 20, 30, 40, 50]);
  });

  test('calls queued while a batch runs go as soon as it completes, with no delay of their own', async () => {
    const { b, batches, gates } = controlled({ lingerMs: 10, maxInFlight: 1 });
    const p1 = b.submit(1);
    jest.advanceTimersByTime(10);
    await tick();
    expect(batches).toEqual([[1]]);
    // 2 and 3 arrive while 1 runs (maxInFlight 1 holds them): the store is busy, they do not linger
    const later = [b.submit(2), b.submit(3)];
    await tick();
    expect(batches).toEqual([[1]]);
    gates[0]();
    expect(await p1).toBe(10);
    await tick();
    expect(batches).toEqual([[1], [2, 3]]);
    gates[1]();
    expect(await Promise.all(later)).toEqual([20, 30]);
    // idle again: the next call lingers
    const next = b.submit(4);
    await tick();
    expect(batches).toHaveLength(2);
    jest.advanceTimersByTime(10);
    await tick();
    expect(batches).toEqual([[1], [2, 3], [4]]);
    gates[2]();
    expect(await next).toBe(40);
  });

  test('a lingerMs outside 0 to 60000 is refused, naming it', () => {
    for (const lingerMs of [-1, Number.NaN, 60_001])
      expect(() => createBatcher<number, number>({ lingerMs, run: async (x) => x })).toThrow(/lingerMs must be 0 to 60000/);
  });
});

// ------------------------------------------------------------------ SQL store on PostgreSQL and PGlite

/**
 * Every statement sent on a connection of knex's pool while counting, whether knex's runner sends
 * it or the store runs it on the connection itself (the batched upsert, services/directory/execute.ts).
 */
type Queryable = { query: (...args: unknown[]) => unknown };
const counted = new WeakSet<object>();
let recording: string[] | null = null;
function countStatements(knex: Knex) {
  const seen: string[] = [];
  recording = seen;
  const client = knex.client as { acquireConnection(): Promise<Queryable> };
  const acquire = client.acquireConnection;
  client.acquireConnection = async function (this: unknown) {
    const connection = await acquire.call(client);
    if (!counted.has(connection)) {
      counted.add(connection);
      const query = connection.query;
      connection.query = function (this: unknown, ...args: unknown[]) {
        const first = args[0] as string | { text?: string };
        recording?.push(typeof first === 'string' ? first : String(first?.text ?? ''));
        return query.apply(this, args);
      };
    }
    return connection;
  };
  return {
    seen,
    inserts: () => seen.filter((s) => /^\s*insert\s+into\s+location\b/i.test(s)).length,
    deletes: () => seen.filter((s) => /^\s*delete\s+from\s+location\b/i.test(s)).length,
    stop: () => {
      client.acquireConnection = acquire;
      recording = null;
    },
  };
}

const byRuid = (a: { ruid: string }, b: { ruid: string }) => (a.ruid < b.ruid ? -1 : a.ruid > b.ruid ? 1 : 0);

describe.each<Target>(['postgres', 'pglite'])('SQL location store batching on %s', (target) => {
  let knex: Knex;
  let done: () => Promise<void>;
  beforeAll(async () => {
    ({ knex, done } = await openTarget(target, 'batch'));
    await ensureSchema(knex);
  });
  afterAll(() => done());
  beforeEach(async () => {
    await knex('location').truncate();
  });

  test('300 concurrent upserts with duplicate ruids: one row per ruid with the last value, a handful of statements', async () => {
    const store = createSqlLocationStore(knex);
    const base = Array.from({ length: 100 }, (_, i) => makeBinding({ username: `u${i % 37}`, contact: `sip:u@10.9.0.${i}` }));
    // Each ruid three times, interleaved; cseq says which call came last for that ruid.
    const calls: Binding[] = [];
    for (let round = 1; round <= 3; round++) {
      for (const b of base) calls.push({ ...b, cseq: round, user_agent: `round ${round}` });
    }
    const count = countStatements(knex);
    try {
      await Promise.all(calls.map((b) => store.upsert(b)));
    } finally {
      count.stop();
    }
    const rows = await knex('location').select('ruid', 'cseq', 'user_agent');
    expect(rows).toHaveLength(100);
    expect(rows.every((r) => r.cseq === 3 && r.user_agent === 'round 3')).toBe(true);
    expect(count.inserts()).toBeGreaterThanOrEqual(1);
    expect(count.inserts()).toBeLessThanOrEqual(4); // vs 300 statements without batching
    for (const b of base) expect(await store.find(b.username, null)).toContainEqual({ ...b, cseq: 3, user_agent: 'round 3' });
  });

  test('with a commit delay (location.commitDelayMs), writes a turn of the event loop apart share one statement; without, they do not', async () => {
    const spaced = async (store: ReturnType<typeof createSqlLocationStore>, net: number) => {
      const bindings = Array.from({ length: 5 }, (_, i) => makeBinding({ contact: `sip:john@10.6.${net}.${i}` }));
      const count = countStatements(knex);
      try {
        const ps = [];
        for (const b of bindings) {
          ps.push(store.upsert(b));
          await tick();
        }
        await Promise.all(ps);
      } finally {
        count.stop();
      }
      for (const b of bindings) expect(await knex('location').where({ ruid: b.ruid }).first()).toMatchObject({ contact: b.contact });
      return count.inserts();
    };
    expect(await spaced(createSqlLocationStore(knex), 1)).toBeGreaterThan(1);
    expect(await spaced(createSqlLocationStore(knex, { commitDelayMs: 100 }), 2)).toBe(1);
  });

  test('small batches (maxBatchRows 40): duplicates split across batches still end with the last value', async () => {
    const store = createSqlLocationStore(knex, { maxBatchRows: 40, maxInFlight: 3 });
    const base = Array.from({ length: 60 }, (_, i) => makeBinding({ contact: `sip:john@10.8.0.${i}` }));
    const calls: Binding[] = [];
    for (let round = 1; round <= 5; round++) for (const b of base) calls.push({ ...b, cseq: round });
    const count = countStatements(knex);
    try {
      await Promise.all(calls.map((b) => store.upsert(b)));
    } finally {
      count.stop();
    }
    const rows = await knex('location').select('ruid', 'cseq');
    expect(rows).toHaveLength(60);
    expect(rows.filter((r) => r.cseq !== 5)).toEqual([]);
    expect(count.inserts()).toBeGreaterThanOrEqual(Math.ceil(300 / 40));
    expect(count.inserts()).toBeLessThan(300 / 10);
  });

  test('while a batch is running, later upserts queue and go out as ONE next batch (maxInFlight 1)', async () => {
    const store = createSqlLocationStore(knex, { maxInFlight: 1 });
    const first = makeBinding({ contact: 'sip:john@10.7.0.1' });
    const later = Array.from({ length: 20 }, (_, i) => makeBinding({ contact: `sip:john@10.7.1.${i}` }));
    // Hold the first batch: on PostgreSQL an open transaction has the same ruid inserted (row
    // lock on the unique key); on PGlite the transaction holds the only connection.
    const trx = await knex.transaction();
    await trx('location').insert({ ruid: first.ruid, username: 'held' });
    const count = countStatements(knex);
    try {
      const p0 = store.upsert(first);
      await sleep(50);
      const ps = [];
      for (const b of later) {
        ps.push(store.upsert(b));
        await tick();
      } // one per event-loop turn
      let settled = false;
      void p0.then(
        () => {
          settled = true;
        },
        () => {
          settled = true;
        },
      );
      await sleep(50);
      expect(settled).toBe(false);
      await trx.rollback();
      await p0;
      await Promise.all(ps);
      expect(count.inserts()).toBe(2);
    } finally {
      count.stop();
      if (!trx.isCompleted()) await trx.rollback();
    }
    expect((await store.find('john', null)).sort(byRuid)).toEqual([first, ...later].sort(byRuid));
  });

  test('a batch carries every value as written: quotes, commas, braces, backslashes, the text NULL, nulls, non-ASCII', async () => {
    // The batch binds each column as one array (services/location/sql.ts UPSERT): every element
    // goes through the driver's array literal, where these are the characters with a meaning.
    const store = createSqlLocationStore(knex);
    const odd = ['"quoted", with commas', '{braces}', 'back\\slash\\', 'NULL', '', ' spaced ', 'üñí €😀', "it's\nnewline"];
    const bindings = odd.map((text, i) =>
      makeBinding({
        username: `odd${i}`,
        contact: `sip:odd${i}@10.6.0.${i}`,
        user_agent: text,
        path: i % 2 ? null : text || null, // the reader takes an empty path or socket as none
        socket: i % 3 ? text || null : null,
        instance: text || null,
        methods: i % 2 ? null : 8191,
        q: i % 2 ? -1 : 0.5,
      }),
    );
    const count = countStatements(knex);
    try {
      await Promise.all(bindings.map((b) => store.upsert(b)));
    } finally {
      count.stop();
    }
    expect(count.inserts()).toBeLessThanOrEqual(2);
    for (const b of bindings) expect(await store.find(b.username, null)).toEqual([b]);
    // one at a time: on PGlite a batch of a few rows takes the VALUES form instead
    const again = bindings.map((b, i) => ({ ...b, cseq: b.cseq + 1, user_agent: odd[odd.length - 1 - i] }));
    for (const b of again) await store.upsert(b);
    for (const b of again) expect(await store.find(b.username, null)).toEqual([b]);
  });

  test('a later upsert of a ruid never overtakes an earlier one whose batch is still running', async () => {
    const store = createSqlLocationStore(knex, { maxInFlight: 4 });
    const x = makeBinding({ ruid: `uloc-a-${randomUUID()}`, contact: 'sip:john@10.7.5.1' });
    const y = makeBinding({ ruid: `uloc-b-${randomUUID()}`, contact: 'sip:john@10.7.5.2' });
    await store.upsert(x);
    // Batch A = [x, y(cseq 1)] blocks on x's row lock (rows go in ruid order: x first, y untouched
    // yet). y(cseq 2), submitted later, must wait for A although slots are free; had it run
    // alongside, it would commit first and A would then overwrite it with cseq 1.
    const trx = await knex.transaction();
    await trx('location').where({ ruid: x.ruid }).update({ cseq: 0 });
    try {
      const a = [store.upsert({ ...x, cseq: 1 }), store.upsert({ ...y, cseq: 1 })];
      await sleep(50);
      const later = store.upsert({ ...y, cseq: 2 });
      await sleep(100);
      await trx.rollback();
      await Promise.all([...a, later]);
    } finally {
      if (!trx.isCompleted()) await trx.rollback();
    }
    const rows = await knex('location').select('ruid', 'cseq').orderBy('ruid');
    expect(rows).toEqual([
      { ruid: x.ruid, cseq: 1 },
      { ruid: y.ruid, cseq: 2 },
    ]);
  });

  test('an upsert resolves only once its row is committed (visible to another connection)', async () => {
    const store = createSqlLocationStore(knex);
    const other =
      target === 'postgres'
        ? knexFactory({ client: 'pg', connection: pgUrl(), searchPath: [(await knex.raw('SELECT current_schema() AS s')).rows[0].s], pool: { min: 0, max: 1 } })
        : knex; // PGlite: one connection, so what the store wrote is committed once the next query runs
    try {
      const bs = Array.from({ length: 30 }, (_, i) => makeBinding({ contact: `sip:john@10.6.0.${i}` }));
      await Promise.all(
        bs.map(async (b) => {
          await store.upsert(b);
          const seen = await other('location').where({ ruid: b.ruid }).first();
          expect(seen?.ruid).toBe(b.ruid);
        }),
      );
    } finally {
      if (other !== knex) await other.destroy();
    }
  });

  test('concurrent removes share one DELETE and each caller gets its own count', async () => {
    const store = createSqlLocationStore(knex);
    const bs = Array.from({ length: 10 }, (_, i) => makeBinding({ contact: `sip:john@10.5.0.${i}` }));
    for (const b of bs) await store.upsert(b);
    const r = bs.map((b) => b.ruid);
    const count = countStatements(knex);
    let counts: number[];
    try {
      counts = await Promise.all([
        store.remove([r[0], r[1], 'uloc-missing']), // 2
        store.remove([r[1], r[2]]), // r[1] already counted by the first: 1
        store.remove([r[3], r[3], r[4]]), // a ruid twice in one call counts once: 2
        store.remove(['uloc-missing-too']), // 0
        store.remove([]), // no statement at all: 0
        store.remove([r[5], r[6], r[7], r[8]]), // 4
      ]);
    } finally {
      count.stop();
    }
    expect(counts).toEqual([2, 1, 2, 0, 0, 4]);
    expect(count.deletes()).toBe(1);
    expect(await store.find('john', null)).toEqual([bs[9]]);
    expect(await store.remove([r[0], r[9]])).toBe(1);
  });

  test.each([
    ['a few rows (the VALUES form on PGlite)', 4],
    ['many rows (the unnest form)', 12],
  ])('a row the table refuses fails its own caller only, in %s; the others are stored', async (_, size) => {
    const store = createSqlLocationStore(knex);
    const good = Array.from({ length: size - 3 }, (_, i) => makeBinding({ contact: `sip:john@10.4.0.${i}` }));
    const badAor = makeBinding({ username: 'x'.repeat(100) }); // VARCHAR(64)
    const badContact = makeBinding({ contact: `sip:john@10.4.1.1;x=${'y'.repeat(600)}` }); // VARCHAR(512)
    const badText = makeBinding({ contact: 'sip:john@10.4.1.2', user_agent: 'phone\0yyyy' }); // text holds no NUL
    const count = countStatements(knex);
    let results: PromiseSettledResult<void>[];
    try {
      results = await Promise.allSettled([badAor, ...good, badText, badContact].map((b) => store.upsert(b)));
    } finally {
      count.stop();
    }
    const [aor, ...rest] = results;
    const contact = rest.pop()!;
    const text = rest.pop()!;
    expect(rest.map((r) => r.status)).toEqual(good.map(() => 'fulfilled'));
    for (const [r, why] of [
      [aor, /too long/i],
      [contact, /too long/i],
      [text, /0x00/],
    ] as const) {
      expect(r.status).toBe('rejected');
      const reason = (r as PromiseRejectedResult).reason as Error;
      expect(reason).not.toBeInstanceOf(LocationUnavailableError);
      expect(reason.message).toMatch(/^location upsert: /);
      expect(reason.message).toMatch(why);
      expect(reason.message).not.toContain('yyyy'); // the value is not in the message
    }
    expect(count.inserts()).toBe(1 + size); // the batch, then each of its rows alone
    expect((await store.find('john', null)).sort(byRuid)).toEqual([...good].sort(byRuid));
    expect(await store.find(badAor.username, null)).toEqual([]);
  });

  test("the registrar's widths are the table's (services/location/widths.ts)", async () => {
    const res = await knex.raw<{ rows: { column_name: string; character_maximum_length: number | null }[] }>(
      `SELECT column_name, character_maximum_length FROM information_schema.columns
        WHERE table_name = 'location' AND table_schema = current_schema() AND data_type = 'character varying'`,
    );
    const table = Object.fromEntries(res.rows.map((r) => [r.column_name, Number(r.character_maximum_length)]));
    expect(table).toEqual(BINDING_WIDTHS);
  });
});

// ------------------------------------------------------------------ MongoDB (unordered bulkWrite per batch)

describe('MongoDB location store batching', () => {
  const database = `sipflow_batch_${randomUUID().slice(0, 8)}`;
  afterAll(async () => {
    const client = new MongoClient(mongoUrl());
    await client
      .db(database)
      .dropDatabase()
      .catch(() => undefined);
    await client.close();
  });

  /** Calls a spied Collection method got on the named collection (the store also writes `version`). */
  const callsOn = (spy: { mock: { contexts: unknown[] } }, collection: string) =>
    spy.mock.contexts.filter((c) => (c as Collection).collectionName === collection).length;

  test('concurrent upserts with duplicate ruids: one document per ruid with the last value', async () => {
    // batches set (location.writeBatch 500): on FerretDB, the suite's server, "auto" would send one write a command
    const store = createMongoLocationStore({ url: mongoUrl(), database, writeConcern: { w: 1 }, maxBatch: 500, maxInFlight: 4 });
    const bulk = jest.spyOn(Collection.prototype, 'bulkWrite');
    try {
      const base = Array.from({ length: 60 }, (_, i) => makeBinding({ username: `u${i % 7}`, contact: `sip:u@10.9.1.${i}` }));
      const calls: Binding[] = [];
      for (let round = 1; round <= 3; round++) for (const b of base) calls.push({ ...b, cseq: round });
      await Promise.all(calls.map((b) => store.upsert(b)));
      const rows = await store.list({ limit: 1000, offset: 0, expired: true, now: new Date() });
      expect(rows.total).toBe(60);
      expect(rows.rows.filter((b) => b.cseq !== 3)).toEqual([]);
      expect(rows.rows.sort(byRuid)).toEqual(base.map((b) => ({ ...b, cseq: 3 })).sort(byRuid));
      expect(callsOn(bulk, 'location')).toBeGreaterThan(0);
    } finally {
      bulk.mockRestore();
      await store.close();
    }
  });

  test('write batches by server (location.writeBatch and writesInFlight "auto"): FerretDB, told by its buildInfo, gets one write a command, noted once', async () => {
    expect(writeDefaults({ version: '7.0.14', ok: 1 })).toEqual({ maxBatch: 500, maxInFlight: 4, ferretdb: null });
    expect(writeDefaults(null)).toEqual({ maxBatch: 500, maxInFlight: 4, ferretdb: null });
    expect(writeDefaults({ version: '7.0.42', ferretdbVersion: 'v1.24.2' })).toEqual({ maxBatch: 1, maxInFlight: 16, ferretdb: 'v1.24.2' });
    const notes: string[] = [];
    const store = createMongoLocationStore({ url: mongoUrl(), database, collection: 'auto_writes', writeConcern: { w: 1 }, onNote: (m) => notes.push(m) });
    const bulk = jest.spyOn(Collection.prototype, 'bulkWrite');
    const commands = jest.spyOn(Db.prototype, 'command');
    try {
      const base = Array.from({ length: 30 }, (_, i) => makeBinding({ username: `a${i % 4}`, contact: `sip:a@10.9.3.${i}` }));
      await Promise.all(base.map((b) => store.upsert(b)));
      await Promise.all(base.map((b) => store.upsert({ ...b, cseq: 7 })));
      const rows = await store.list({ limit: 1000, offset: 0, expired: true, now: new Date() });
      expect(rows.rows.sort(byRuid)).toEqual(base.map((b) => ({ ...b, cseq: 7 })).sort(byRuid));
      expect(callsOn(bulk, 'auto_writes')).toBe(0);
      expect(notes).toEqual([expect.stringMatching(/^the server is FerretDB v\d+\.\d+\.\d+: 1 write\(s\) a command, 16 commands at once/)]);
      // 30 first upserts at once asked the server what it is once
      expect(commands.mock.calls.filter(([c]) => 'buildInfo' in c)).toHaveLength(1);
    } finally {
      commands.mockRestore();
      bulk.mockRestore();
      await store.close();
    }
  });

  test('one write a command (location.writeBatch 1, for FerretDB): the same documents, fresh inserts that collide retried as upserts', async () => {
    const store = createMongoLocationStore({ url: mongoUrl(), database, collection: 'single_writes', writeConcern: { w: 1 }, maxBatch: 1, maxInFlight: 3 });
    // a batch of one is an insertOne or a replaceOne, never a bulkWrite (services/location/mongo.ts writeOne)
    const bulk = jest.spyOn(Collection.prototype, 'bulkWrite');
    const inserts = jest.spyOn(Collection.prototype, 'insertOne');
    const replaces = jest.spyOn(Collection.prototype, 'replaceOne');
    try {
      const base = Array.from({ length: 40 }, (_, i) => makeBinding({ username: `s${i % 5}`, contact: `sip:s@10.9.2.${i}` }));
      await Promise.all(base.map((b) => store.upsert(b, true)));
      // a second "fresh" insert of the same ruids: E11000 each, retried as a replacing upsert
      await Promise.all(base.map((b) => store.upsert({ ...b, cseq: 5 }, true)));
      await Promise.all(base.map((b) => store.upsert({ ...b, cseq: 6 })));
      const rows = await store.list({ limit: 1000, offset: 0, expired: true, now: new Date() });
      expect(rows.rows.sort(byRuid)).toEqual(base.map((b) => ({ ...b, cseq: 6 })).sort(byRuid));
      // 80 fresh inserts (40 of them collide), 40 retries and 40 refreshes as replacing upserts
      expect(callsOn(bulk, 'single_writes')).toBe(0);
      expect(callsOn(inserts, 'single_writes')).toBe(80);
      expect(callsOn(replaces, 'single_writes')).toBe(80);
    } finally {
      bulk.mockRestore();
      inserts.mockRestore();
      replaces.mockRestore();
      await store.close();
    }
  });
});

// ------------------------------------------------------------------ a server that goes away

describe('SQL location store batching when PostgreSQL goes away', () => {
  const FAST_MS = 4500;
  let server: PrivateServer;
  let knex: Knex;

  useFaultyPostgres((pg) => ({ server, knex } = pg));

  test('server down: every caller of every batch rejects with LocationUnavailableError, fast; then it works again', async () => {
    const unhandled = watchUnhandledRejections();
    try {
      await knex('location').truncate();
      const store = createSqlLocationStore(knex, { maxInFlight: 2, maxBatchRows: 10 });
      const kept = Array.from({ length: 10 }, (_, i) => makeBinding({ contact: `sip:john@10.3.0.${i}` }));
      await Promise.all(kept.map((b) => store.upsert(b)));

      await server.stop();
      const t0 = Date.now();
      const ups = Array.from({ length: 45 }, (_, i) => store.upsert(makeBinding({ contact: `sip:jane@10.3.1.${i}` })));
      const rms = [store.remove([kept[0].ruid]), store.remove([kept[1].ruid, kept[2].ruid])];
      const settled = await Promise.allSettled([...ups, ...rms]);
      const reasons = settled.map((s) => (s.status === 'rejected' ? s.reason : 'resolved'));
      expect(reasons.filter((r) => !(r instanceof LocationUnavailableError))).toEqual([]);
      // 45 upserts in batches of 10, two at a time: three rounds of ~2 s acquire timeouts at most.
      expect(Date.now() - t0).toBeLessThan(3 * FAST_MS);
      const single = await rejection(store.upsert(makeBinding()));
      expect(single.error).toBeInstanceOf(LocationUnavailableError);
      expect(single.ms).toBeLessThan(FAST_MS);

      await server.start();
      const after = makeBinding({ contact: 'sip:john@10.3.2.1' });
      await store.upsert(after);
      expect((await store.find('john', null)).sort(byRuid)).toEqual([...kept, after].sort(byRuid));
      expect(await store.find('jane', null)).toEqual([]);
      await sleep(100);
      expect(unhandled.seen).toEqual([]);
    } finally {
      unhandled.stop();
    }
  }, 60_000);

  test('server crashes while a batch is running and others are queued: all reject, nothing hangs', async () => {
    const unhandled = watchUnhandledRejections();
    try {
      await knex('location').truncate();
      const store = createSqlLocationStore(knex, { maxInFlight: 1 });
      const first = makeBinding({ contact: 'sip:john@10.2.0.1' });
      await store.upsert(first);
      // The next upsert and remove of that row block on its lock, held by an open transaction;
      // further upserts queue behind the running batch.
      const trx = await knex.transaction();
      await trx('location').where({ ruid: first.ruid }).update({ cseq: 7 });
      const trxDone = trx.executionPromise.catch(() => undefined);
      const inFlight = store.upsert({ ...first, cseq: first.cseq + 1 });
      await sleep(100);
      const queued = Array.from({ length: 25 }, (_, i) => store.upsert(makeBinding({ contact: `sip:john@10.2.1.${i}` })));
      const removal = store.remove([first.ruid]);
      await sleep(50);

      await server.stop({ crash: true });
      const t0 = Date.now();
      const settled = await Promise.allSettled([inFlight, ...queued, removal]);
      expect(Date.now() - t0).toBeLessThan(3 * FAST_MS);
      const reasons = settled.map((s) => (s.status === 'rejected' ? s.reason : 'resolved'));
      expect(reasons.filter((r) => !(r instanceof LocationUnavailableError))).toEqual([]);
      await trx.rollback().catch(() => undefined);
      await trxDone;

      await server.start();
      const after = makeBinding({ contact: 'sip:john@10.2.2.1' });
      await store.upsert(after);
      // The crash rolled the transaction back; nothing of the failed batches landed.
      expect((await store.find('john', null)).sort(byRuid)).toEqual([first, after].sort(byRuid));
      await sleep(100);
      expect(unhandled.seen).toEqual([]);
    } finally {
      unhandled.stop();
    }
  }, 60_000);
});
