/**
 * Call limits shared through the database (`callLimit.store: database`), against the real
 * PostgreSQL and MongoDB-protocol server of globalSetup, and PGlite: two limiters on one database
 * (as two sipflow instances) share a key's limit, racing acquires never pass it, release frees,
 * slots expire, and a database that cannot be reached rejects with a ServiceUnavailableError.
 */
import { randomUUID } from 'crypto';
import knexFactory, { type Knex } from 'knex';
import { MongoClient } from 'mongodb';
import { ServiceUnavailableError, type CallLimitPort } from '../../../engine/ports';
import { openDirectory } from '../../../services/directory';
import { openCallLimiter } from '../../../services/call-limit';
import { createMongoCallLimiter } from '../../../services/call-limit/mongo';
import { createSqlCallLimiter, ensureCallLimitSchema, openCallLimitDatabase } from '../../../services/call-limit/sql';
import { mongoUrl, pgUrl } from '../../setup/servers';

const T0 = Date.UTC(2026, 0, 1, 12, 0, 0);
const SLOT_SEC = 60;

interface Pair {
  a: CallLimitPort;
  b: CallLimitPort;
  done(): Promise<void>;
}

/** Two limiters on one fresh database (PostgreSQL: a schema of its own, two pools). */
async function openPair(target: 'postgres' | 'pglite' | 'mongodb'): Promise<Pair> {
  if (target === 'mongodb') {
    const database = `sipflow_cl_${randomUUID().slice(0, 8)}`;
    const a = createMongoCallLimiter({ url: mongoUrl(), database, slotTimeoutSec: SLOT_SEC });
    const b = createMongoCallLimiter({ url: mongoUrl(), database, slotTimeoutSec: SLOT_SEC });
    return {
      a,
      b,
      async done() {
        await a.close();
        await b.close();
        const c = new MongoClient(mongoUrl());
        await c.db(database).dropDatabase();
        await c.close();
      },
    };
  }
  if (target === 'pglite') {
    const knex = openDirectory('memory://');
    await ensureCallLimitSchema(knex);
    return {
      a: createSqlCallLimiter(knex, { slotTimeoutSec: SLOT_SEC }),
      b: createSqlCallLimiter(knex, { slotTimeoutSec: SLOT_SEC }),
      done: () => knex.destroy(),
    };
  }
  const schema = `cl_${randomUUID().slice(0, 8)}`;
  const admin = knexFactory({ client: 'pg', connection: pgUrl(), pool: { min: 0, max: 1 } });
  await admin.raw(`create schema "${schema}"`);
  const pool = (): Knex => knexFactory({ client: 'pg', connection: pgUrl(), searchPath: [schema], pool: { min: 0, max: 8 }, acquireConnectionTimeout: 5000 });
  const ka = pool();
  const kb = pool();
  await ensureCallLimitSchema(ka);
  await ensureCallLimitSchema(kb);
  return {
    a: createSqlCallLimiter(ka, { slotTimeoutSec: SLOT_SEC }),
    b: createSqlCallLimiter(kb, { slotTimeoutSec: SLOT_SEC }),
    async done() {
      await ka.destroy();
      await kb.destroy();
      await admin.raw(`drop schema "${schema}" cascade`);
      await admin.destroy();
    },
  };
}

describe.each(['postgres', 'pglite', 'mongodb'] as const)('call limits shared on %s', (target) => {
  let p: Pair;
  beforeAll(async () => {
    p = await openPair(target);
  });
  afterAll(() => p.done());

  test('two instances share a key: one reaches the limit the other filled; release on either frees', async () => {
    const rule = { maxConcurrent: 2 };
    expect(await p.a.acquire('h1', 'shared', rule, T0)).toBe('allowed');
    expect(await p.b.acquire('h2', 'shared', rule, T0)).toBe('allowed');
    expect(await p.b.acquire('h3', 'shared', rule, T0)).toBe('concurrent');
    expect(await p.a.acquire('h3', 'shared', rule, T0)).toBe('concurrent');
    // a holder acquiring again (restart, challenge) keeps its one slot
    expect(await p.b.acquire('h1', 'shared', rule, T0)).toBe('allowed');
    expect(await p.a.acquire('h3', 'shared', rule, T0)).toBe('concurrent');
    await p.b.release('h1', ['shared']);
    await p.b.release('h1', ['shared']);
    await p.a.release('nobody', ['shared', 'unknown']);
    expect(await p.a.acquire('h3', 'shared', rule, T0)).toBe('allowed');
    expect(await p.b.acquire('h4', 'shared', rule, T0)).toBe('concurrent');
  });

  test('20 acquires racing on one key from both instances, limit 5 → exactly 5 allowed', async () => {
    const rule = { maxConcurrent: 5 };
    const verdicts = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? p.a : p.b).acquire(`r${i}`, 'race', rule, T0)));
    expect(verdicts.filter((v) => v === 'allowed')).toHaveLength(5);
    expect(verdicts.filter((v) => v === 'concurrent')).toHaveLength(15);
  });

  test('new calls per second: 10 racing at one instant, rate 3 → exactly 3; the window slides', async () => {
    const rule = { maxPerSecond: 3 };
    const verdicts = await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 ? p.a : p.b).acquire(`s${i}`, 'rate', rule, T0)));
    expect(verdicts.filter((v) => v === 'allowed')).toHaveLength(3);
    expect(verdicts.filter((v) => v === 'rate')).toHaveLength(7);
    expect(await p.a.acquire('t1', 'rate', rule, T0 + 999)).toBe('rate');
    expect(await p.b.acquire('t1', 'rate', rule, T0 + 1000)).toBe('allowed');
  });

  test('both limits on a key: a call over the concurrency limit is not charged to the rate', async () => {
    const rule = { maxConcurrent: 1, maxPerSecond: 2 };
    expect(await p.a.acquire('x1', 'both', rule, T0)).toBe('allowed');
    expect(await p.b.acquire('x2', 'both', rule, T0)).toBe('concurrent');
    await p.a.release('x1', ['both']);
    expect(await p.b.acquire('x3', 'both', rule, T0)).toBe('allowed');
    await p.b.release('x3', ['both']);
    expect(await p.a.acquire('x4', 'both', rule, T0)).toBe('rate');
  });

  test('a slot of a call never ended expires after slotTimeoutSec', async () => {
    const rule = { maxConcurrent: 1 };
    expect(await p.a.acquire('e1', 'expiry', rule, T0)).toBe('allowed');
    expect(await p.b.acquire('e2', 'expiry', rule, T0 + SLOT_SEC * 1000 - 1)).toBe('concurrent');
    expect(await p.b.acquire('e2', 'expiry', rule, T0 + SLOT_SEC * 1000)).toBe('allowed');
    // the expired holder comes back: a new slot, counted
    expect(await p.a.acquire('e1', 'expiry', rule, T0 + SLOT_SEC * 1000)).toBe('concurrent');
  });

  test('maxConcurrent 0 admits none; keys with quotes and non-ASCII are plain data', async () => {
    expect(await p.a.acquire('z', 'zero', { maxConcurrent: 0 }, T0)).toBe('concurrent');
    const odd = `k'; drop table x; --"$ne"{é}`;
    expect(await p.a.acquire('q1', odd, { maxConcurrent: 1 }, T0)).toBe('allowed');
    expect(await p.b.acquire('q2', odd, { maxConcurrent: 1 }, T0)).toBe('concurrent');
  });
});

describe('call limit database unreachable', () => {
  test('PostgreSQL: acquire and release reject with ServiceUnavailableError', async () => {
    const knex = openCallLimitDatabase('postgres://sipflow@127.0.0.1:1/none', 500, 1);
    const l = createSqlCallLimiter(knex);
    await expect(l.acquire('h', 'k', { maxConcurrent: 1 }, T0)).rejects.toBeInstanceOf(ServiceUnavailableError);
    await expect(l.release('h', ['k'])).rejects.toBeInstanceOf(ServiceUnavailableError);
    await knex.destroy();
  });

  test('MongoDB: acquire and release reject with ServiceUnavailableError', async () => {
    const l = createMongoCallLimiter({ url: 'mongodb://127.0.0.1:1/?directConnection=true', timeoutMs: 300 });
    await expect(l.acquire('h', 'k', { maxConcurrent: 1 }, T0)).rejects.toBeInstanceOf(ServiceUnavailableError);
    await expect(l.release('h', ['k'])).rejects.toBeInstanceOf(ServiceUnavailableError);
    await l.close();
  });
});

describe('openCallLimiter', () => {
  test('database store: the MongoDB location, else a PostgreSQL location, else the directory', async () => {
    const directoryKnex = openDirectory('memory://');
    try {
      const mongo = await openCallLimiter({ store: 'database' }, { locationUrl: mongoUrl(), mongoDatabase: 'x', directoryUrl: 'memory://', directoryKnex });
      expect(mongo.where).toBe('mongodb (location database)');
      await mongo.close();
      const pg = await openCallLimiter({ store: 'database' }, { locationUrl: 'sql', directoryUrl: pgUrl(), directoryKnex });
      expect(pg.where).toBe('postgresql (directory database)');
      const [h, k] = [`h-${randomUUID()}`, `k-${randomUUID()}`];
      expect(await pg.limiter.acquire(h, k, { maxConcurrent: 1 }, T0)).toBe('allowed');
      await pg.limiter.release(h, [k]);
      await pg.close();
      const embedded = await openCallLimiter({ store: 'database' }, { locationUrl: 'memory', directoryUrl: 'memory://', directoryKnex });
      expect(embedded.where).toBe('directory database (embedded)');
      const instance = await openCallLimiter({ store: 'instance' }, { directoryUrl: 'memory://', directoryKnex });
      expect(instance.where).toBe('instance');
    } finally {
      await directoryKnex.destroy();
    }
  });
});
