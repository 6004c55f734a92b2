/**
 * Write-through location store (services/location/write-through.ts, Kamailio usrloc db_mode 1)
 * over the SQL store on the real PostgreSQL (globalSetup's server, a schema of its own) and on
 * PGlite: loads at open, serves find/list/count from memory without SQL, writes the database
 * before memory and before resolving, leaves memory unchanged when a write fails, and the
 * registrar over it answers as over the plain store. Failures: injected into a memory inner
 * store, and a private PostgreSQL that is stopped.
 */
import { randomUUID } from 'crypto';
import { mkdtempSync } from 'fs';
import os from 'os';
import path from 'path';
import knexFactory from 'knex';
import { MongoClient } from 'mongodb';
import { parseConfig } from '../../../server/config';
import { openRuntime, runtimeOptionsFromConfig } from '../../../server/runtime';
import type { Knex } from 'knex';
import { createMemoryLocationStore } from '../../../services/location/memory';
import { createMongoLocationStore } from '../../../services/location/mongo';
import { createRegistrar, type Registrar } from '../../../services/location/registrar';
import { createSqlLocationStore, ensureSchema } from '../../../services/location/sql';
import { LocationUnavailableError, type Binding, type LocationStore, type RegisterRequest } from '../../../services/location/types';
import { createWriteThroughStore } from '../../../services/location/write-through';
import { mongoUrl, scratchDatabase, type PrivateServer } from '../../setup/servers';
import { useFaultyPostgres, sleep, watchUnhandledRejections } from './faults';
import { makeBinding, openTarget, type Target } from './fixtures';

/** Every statement knex sends while installed. */
function recordStatements(knex: Knex) {
  const seen: string[] = [];
  const onQuery = (q: { sql?: string }) => {
    seen.push(String(q.sql ?? ''));
  };
  knex.on('query', onQuery);
  return {
    seen,
    stop: () => {
      knex.removeListener('query', onQuery);
    },
  };
}

const byRuid = (a: { ruid: string }, b: { ruid: string }) => (a.ruid < b.ruid ? -1 : a.ruid > b.ruid ? 1 : 0);
const T0 = new Date('2024-02-22T08:49:06.000Z');

/** What the database holds, as Bindings. */
async function dbRows(knex: Knex): Promise<Binding[]> {
  return (await createSqlLocationStore(knex).all!()).sort(byRuid);
}

// ------------------------------------------------------------------ registrar scenarios

function req(over: Partial<RegisterRequest> = {}): RegisterRequest {
  return {
    username: 'john',
    domain: null,
    contacts: ['<sip:john@10.0.9.166:5060>'],
    expiresHeader: '3600',
    callId: 'call-1',
    cseq: 1,
    userAgent: 'X-Lite',
    received: '10.0.9.166:5060',
    socket: 'udp:10.0.12.26:5060',
    path: null,
    now: T0,
    ...over,
  };
}
const at = (s: number) => new Date(T0.getTime() + s * 1000);

/** Add, second contact, refresh, out-of-order CSeq, remove, query, expiry + new Call-ID, `*`; lookups along the way. */
async function scenario(reg: Registrar) {
  const out: unknown[] = [];
  const view = (r: { status: number; reason: string; bindings: Binding[] }) => ({
    status: r.status,
    reason: r.reason,
    bindings: r.bindings.map((b) => ({ contact: b.contact, cseq: b.cseq, expires: b.expires.toISOString(), q: b.q })),
  });
  const look = async (now: Date) => (await reg.lookup('john', null, now)).map((b) => b.contact);
  out.push(view(await reg.register(req()))); // add
  out.push(view(await reg.register(req({ cseq: 2, contacts: ['<sip:john@10.0.9.167:5060>;q=0.5'] })))); // second contact
  out.push(await look(at(1)));
  out.push(view(await reg.register(req({ cseq: 3, expiresHeader: '600', now: at(10) })))); // refresh the first
  out.push(view(await reg.register(req({ cseq: 3, now: at(11) })))); // out of order (CSeq not higher)
  out.push(view(await reg.register(req({ cseq: 4, contacts: ['<sip:john@10.0.9.167:5060>'], expiresHeader: '0', now: at(12) })))); // remove
  out.push(view(await reg.register(req({ cseq: 5, contacts: [], now: at(13) })))); // query
  out.push(await look(at(13)));
  out.push(view(await reg.register(req({ callId: 'call-2', cseq: 1, contacts: ['<sip:john@10.0.9.169:5060>'], now: at(700) })))); // first expired
  out.push(await look(at(701)));
  out.push(view(await reg.register(req({ username: 'jane', callId: 'jane-1', contacts: ['<sip:jane@10.0.9.170:5060>'], now: at(702) }))));
  out.push(view(await reg.register(req({ callId: 'call-2', cseq: 2, contacts: ['*'], expiresHeader: '0', now: at(703) })))); // remove all
  out.push(await look(at(704)));
  out.push((await reg.lookup('jane', null, at(704))).map((b) => b.contact));
  return out;
}

const statusesOf = (out: unknown[]) => out.filter((x): x is { status: number } => typeof x === 'object' && x !== null && 'status' in x).map((x) => x.status);

// ------------------------------------------------------------------ over the SQL store

describe.each<Target>(['postgres', 'pglite'])('write-through over the SQL store on %s', (target) => {
  let knex: Knex;
  let done: () => Promise<void>;
  beforeAll(async () => {
    ({ knex, done } = await openTarget(target, 'wt'));
    await ensureSchema(knex);
  });
  afterAll(() => done());
  beforeEach(async () => {
    await knex('location').truncate();
  });

  test('open loads every binding (expired and permanent ones too); find, list, count then send no SQL', async () => {
    const plain = createSqlLocationStore(knex);
    const live = [0, 1, 2].map((i) => makeBinding({ contact: `sip:john@10.1.0.${i}`, expires: new Date(Date.now() + 3600_000) }));
    const expired = makeBinding({ username: 'jane', expires: new Date(Date.now() - 60_000) });
    const permanent = makeBinding({ username: 'perm', expires: new Date(0) });
    const inDomain = makeBinding({ domain: 'a.example', expires: new Date(Date.now() + 3600_000) });
    for (const b of [...live, expired, permanent, inDomain]) await plain.upsert(b);

    const wt = createWriteThroughStore(createSqlLocationStore(knex));
    expect(await wt.open()).toBe(6);
    const rec = recordStatements(knex);
    try {
      expect((await wt.find('john', null)).sort(byRuid)).toEqual([...live].sort(byRuid));
      expect(await wt.find('jane', null)).toEqual([expired]);
      expect(await wt.find('perm', null)).toEqual([permanent]);
      expect(await wt.find('john', 'a.example')).toEqual([inDomain]);
      expect(await wt.find('nobody', null)).toEqual([]);
      const now = new Date();
      expect(await wt.count(now)).toBe(4);
      const page = await wt.list({ limit: 2, offset: 0, now });
      expect(page.total).toBe(4);
      expect(page.rows).toHaveLength(2);
      expect((await wt.list({ limit: 10, offset: 0, now, expired: true })).total).toBe(6);
      expect((await wt.all()).sort(byRuid)).toEqual([...live, expired, permanent, inDomain].sort(byRuid));
      // Returned rows are copies: altering them does not alter memory.
      (await wt.find('jane', null))[0].contact = 'sip:changed@x';
      expect((await wt.find('jane', null))[0].contact).toBe(expired.contact);
      expect(await wt.open()).toBe(6); // open again: the same load, not a second one
    } finally {
      rec.stop();
    }
    expect(rec.seen).toEqual([]);
  });

  test('an upsert is in the database before it resolves, and in memory only once the database has it', async () => {
    const wt = createWriteThroughStore(createSqlLocationStore(knex));
    await wt.open();
    const old = makeBinding({ contact: 'sip:john@10.2.0.1' });
    await wt.upsert(old);
    expect(await dbRows(knex)).toEqual([old]);
    const refreshed = { ...old, cseq: old.cseq + 1 };
    const added = makeBinding({ contact: 'sip:john@10.2.0.2' });
    // Hold the write: on PostgreSQL a transaction locks the row; on PGlite it holds the only connection.
    const trx = await knex.transaction();
    await trx('location').where({ ruid: old.ruid }).update({ user_agent: 'held' });
    let p: Promise<unknown>;
    try {
      p = Promise.all([wt.upsert(refreshed), wt.upsert(added)]);
      await sleep(100);
      // Not acknowledged yet, and memory still has the old state.
      let settled = false;
      void p.then(
        () => {
          settled = true;
        },
        () => {
          settled = true;
        },
      );
      await sleep(20);
      expect(settled).toBe(false);
      expect(await wt.find('john', null)).toEqual([old]);
    } finally {
      await trx.rollback();
    }
    await p;
    expect(await dbRows(knex)).toEqual([refreshed, added].sort(byRuid));
    expect((await wt.find('john', null)).sort(byRuid)).toEqual([refreshed, added].sort(byRuid));
  });

  test('remove: the database first, its count returned, then memory', async () => {
    const plain = createSqlLocationStore(knex);
    const other = makeBinding({ contact: 'sip:john@10.3.0.9' }); // written by "another instance"
    await plain.upsert(other);
    const wt = createWriteThroughStore(createSqlLocationStore(knex));
    await wt.open();
    const [a, b] = [1, 2].map((i) => makeBinding({ contact: `sip:john@10.3.0.${i}` }));
    await wt.upsert(a);
    await wt.upsert(b);
    expect(await wt.remove([a.ruid, 'uloc-missing', other.ruid])).toBe(2);
    expect(await dbRows(knex)).toEqual([b]);
    expect(await wt.find('john', null)).toEqual([b]);
    expect(await wt.remove([])).toBe(0);
  });

  test("purgeExpired purges the database and memory alike; Kamailio's permanent contacts stay", async () => {
    const wt = createWriteThroughStore(createSqlLocationStore(knex));
    await wt.open();
    const now = new Date('2024-02-22T09:00:00.000Z');
    const expired = makeBinding({ expires: new Date(now.getTime() - 1000) });
    const atNow = makeBinding({ expires: now });
    const live = makeBinding({ expires: new Date(now.getTime() + 1000) });
    const permanent = makeBinding({ username: 'perm', expires: new Date(0) });
    for (const b of [expired, atNow, live, permanent]) await wt.upsert(b);
    expect(await wt.purgeExpired(now)).toBe(2);
    expect(await dbRows(knex)).toEqual([live, permanent].sort(byRuid));
    expect((await wt.all()).sort(byRuid)).toEqual([live, permanent].sort(byRuid));
  });

  test("db_mode 1 trade-off: another instance's bindings are unseen until reopening, which loads what the database holds", async () => {
    const wt = createWriteThroughStore(createSqlLocationStore(knex));
    await wt.open();
    const mine = makeBinding({ contact: 'sip:john@10.4.0.1' });
    await wt.upsert(mine);
    const theirs = makeBinding({ contact: 'sip:john@10.4.0.2' });
    await createSqlLocationStore(knex).upsert(theirs); // another instance
    expect(await wt.find('john', null)).toEqual([mine]);

    const reopened = createWriteThroughStore(createSqlLocationStore(knex));
    await reopened.open();
    expect((await reopened.find('john', null)).sort(byRuid)).toEqual([mine, theirs].sort(byRuid));
    expect((await reopened.all()).sort(byRuid)).toEqual(await dbRows(knex));
  });

  test('the registrar over write-through answers as over the plain store, writes the same rows, and reads no SQL', async () => {
    const plainReg = createRegistrar(createSqlLocationStore(knex), { ruidPrefix: 'uloc-wt-test' });
    const plainOut = await scenario(plainReg);
    const plainRows = await dbRows(knex);

    await knex('location').truncate();
    const wt = createWriteThroughStore(createSqlLocationStore(knex));
    await wt.open();
    const rec = recordStatements(knex);
    let wtOut: unknown[];
    try {
      wtOut = await scenario(createRegistrar(wt, { ruidPrefix: 'uloc-wt-test' }));
    } finally {
      rec.stop();
    }
    const wtRows = await dbRows(knex);

    expect(statusesOf(plainOut)).toEqual([200, 200, 200, 400, 200, 200, 200, 200, 200]);
    expect(wtOut).toEqual(plainOut);
    expect(wtRows).toEqual(plainRows);
    expect(wtRows.map((b) => [b.username, b.contact])).toEqual([['jane', 'sip:jane@10.0.9.170:5060']]);
    // Memory and database agree, and no REGISTER or lookup read the database.
    expect((await wt.all()).sort(byRuid)).toEqual(wtRows);
    expect(rec.seen.filter((s) => /^\s*select\b/i.test(s))).toEqual([]);
    expect(rec.seen.length).toBeGreaterThan(0);
  });
});

// ------------------------------------------------------------------ injected failures

/** A memory store whose writes fail on demand; `commitThenFail` writes and then fails (ambiguous failure). */
function faulty() {
  const inner = createMemoryLocationStore();
  const state = { fail: false as false | 'before' | 'after', finds: 0, loads: 0, failLoad: false };
  const boom = () => new LocationUnavailableError('injected');
  const store: LocationStore = {
    ...inner,
    find: async (u, d) => {
      state.finds++;
      return inner.find(u, d);
    },
    upsert: async (b) => {
      if (state.fail === 'before') throw boom();
      await inner.upsert(b);
      if (state.fail === 'after') throw boom();
    },
    remove: async (ruids) => {
      if (state.fail === 'before') throw boom();
      const n = await inner.remove(ruids);
      if (state.fail === 'after') throw boom();
      return n;
    },
    all: async () => {
      state.loads++;
      if (state.failLoad) throw boom();
      return inner.all();
    },
  };
  return { inner, store, state };
}

describe('write-through with a failing inner store', () => {
  test('a failed upsert or remove rejects and leaves memory unchanged', async () => {
    const { store, state } = faulty();
    const wt = createWriteThroughStore(store);
    await wt.open();
    const a = makeBinding({ contact: 'sip:john@10.5.0.1' });
    await wt.upsert(a);
    state.fail = 'before';
    await expect(wt.upsert({ ...a, cseq: 99 })).rejects.toBeInstanceOf(LocationUnavailableError);
    await expect(wt.upsert(makeBinding({ contact: 'sip:john@10.5.0.2' }))).rejects.toBeInstanceOf(LocationUnavailableError);
    await expect(wt.remove([a.ruid])).rejects.toBeInstanceOf(LocationUnavailableError);
    expect(await wt.all()).toEqual([a]);
    expect(await wt.find('john', null)).toEqual([a]);
    state.fail = false;
    await wt.upsert({ ...a, cseq: 100 });
    expect(await wt.find('john', null)).toEqual([{ ...a, cseq: 100 }]);
  });

  test('a fresh write reaches the inner store marked fresh; a refresh does not', async () => {
    const inner = createMemoryLocationStore();
    const seen: Array<boolean | undefined> = [];
    const wt = createWriteThroughStore({ ...inner, upsert: (b, fresh) => (seen.push(fresh), inner.upsert(b, fresh)) });
    await wt.open();
    const a = makeBinding({ contact: 'sip:john@10.7.0.1' });
    await wt.upsert(a, true);
    await wt.upsert({ ...a, cseq: 2 });
    expect(seen).toEqual([true, undefined]);
    expect(await inner.find('john', null)).toEqual([{ ...a, cseq: 2 }]);
  });

  test('a write that failed but committed anyway: the next find of that AoR re-reads the inner store', async () => {
    const { store, state } = faulty();
    const wt = createWriteThroughStore(store);
    await wt.open();
    const a = makeBinding({ contact: 'sip:john@10.6.0.1' });
    const other = makeBinding({ username: 'jane' });
    await wt.upsert(a);
    await wt.upsert(other);
    state.fail = 'after';
    const b = makeBinding({ contact: 'sip:john@10.6.0.2' });
    await expect(wt.upsert(b)).rejects.toBeInstanceOf(LocationUnavailableError);
    await expect(wt.remove([a.ruid])).rejects.toBeInstanceOf(LocationUnavailableError);
    expect(await wt.all()).toEqual(expect.arrayContaining([a, other])); // memory untouched by the failures
    expect(await wt.all()).toHaveLength(2);
    state.fail = false;
    const findsBefore = state.finds;
    expect(await wt.find('john', null)).toEqual([b]); // what the inner store holds
    expect(state.finds).toBe(findsBefore + 1);
    expect(await wt.find('john', null)).toEqual([b]); // resynced: memory again
    expect(await wt.find('jane', null)).toEqual([other]); // other AoRs never re-read
    expect(state.finds).toBe(findsBefore + 1);
  });

  test('operations wait for the load; a failed load rejects and is retried by the next operation', async () => {
    const { inner, store, state } = faulty();
    const a = makeBinding();
    await inner.upsert(a);
    state.failLoad = true;
    const wt = createWriteThroughStore(store);
    await expect(wt.open()).rejects.toBeInstanceOf(LocationUnavailableError);
    await expect(wt.find('john', null)).rejects.toBeInstanceOf(LocationUnavailableError);
    state.failLoad = false;
    const b = makeBinding({ contact: 'sip:john@10.7.0.2' });
    // Before any open: the write waits for the load, so the loaded row cannot overwrite it.
    await wt.upsert(b);
    expect((await wt.find('john', null)).sort(byRuid)).toEqual([a, b].sort(byRuid));
    expect(state.loads).toBe(3);
  });

  test('without all() on the inner store, open pages through list (expired and permanent bindings included)', async () => {
    const inner = createMemoryLocationStore();
    const bs = Array.from({ length: 7 }, (_, i) => makeBinding({ username: `u${i}`, expires: new Date(i === 0 ? 0 : 1000 * i) }));
    for (const b of bs) await inner.upsert(b);
    const { all: _all, ...noAll } = inner;
    let pages = 0;
    const wt = createWriteThroughStore(
      {
        ...noAll,
        list: (q) => {
          pages++;
          return inner.list(q);
        },
      },
      { loadPageSize: 3 },
    );
    expect(await wt.open()).toBe(7);
    expect(pages).toBe(3);
    expect((await wt.all()).sort(byRuid)).toEqual([...bs].sort(byRuid));
  });

  test('writes to one AoR reach memory in the order the inner store applied them', async () => {
    const inner = createMemoryLocationStore();
    // The first write is slow: without ordering, the second would land first and be overwritten.
    let delays = [80, 0];
    const slow: LocationStore = {
      ...inner,
      upsert: async (b) => {
        await sleep(delays.shift() ?? 0);
        await inner.upsert(b);
      },
    };
    const wt = createWriteThroughStore(slow);
    await wt.open();
    const a = makeBinding();
    await Promise.all([wt.upsert({ ...a, cseq: 1 }), wt.upsert({ ...a, cseq: 2 })]);
    expect((await inner.find('john', null))[0].cseq).toBe(2);
    expect((await wt.find('john', null))[0].cseq).toBe(2);
    delays = [80, 0];
    await Promise.all([wt.upsert({ ...a, cseq: 3 }), wt.remove([a.ruid])]);
    expect(await inner.find('john', null)).toEqual([]);
    expect(await wt.find('john', null)).toEqual([]);
  });
});

// ------------------------------------------------------------------ a server that goes away

describe('write-through when PostgreSQL goes away', () => {
  let server: PrivateServer;
  let knex: Knex;

  useFaultyPostgres((pg) => ({ server, knex } = pg));

  test('REGISTER fails with LocationUnavailableError (no 200), memory unchanged, lookups still answered; back up → it works', async () => {
    const unhandled = watchUnhandledRejections();
    try {
      const wt = createWriteThroughStore(createSqlLocationStore(knex));
      await wt.open();
      const reg = createRegistrar(wt, { ruidPrefix: 'uloc-wt-fault' });
      expect((await reg.register(req())).status).toBe(200);
      const before = await wt.all();
      expect(before).toHaveLength(1);

      await server.stop({ crash: true });
      const t0 = Date.now();
      await expect(reg.register(req({ cseq: 2, contacts: ['<sip:john@10.0.9.200:5060>'], now: at(5) }))).rejects.toBeInstanceOf(LocationUnavailableError);
      await expect(reg.register(req({ cseq: 3, expiresHeader: '0', now: at(6) }))).rejects.toBeInstanceOf(LocationUnavailableError);
      expect(Date.now() - t0).toBeLessThan(10_000);
      expect(await wt.all()).toEqual(before);
      // Lookups are answered from memory while the database is down.
      expect((await reg.lookup('john', null, at(7))).map((b) => b.contact)).toEqual(['sip:john@10.0.9.166:5060']);

      await server.start();
      const res = await reg.register(req({ cseq: 4, contacts: ['<sip:john@10.0.9.201:5060>'], now: at(8) }));
      expect(res.status).toBe(200);
      expect(res.bindings.map((b) => b.contact).sort()).toEqual(['sip:john@10.0.9.166:5060', 'sip:john@10.0.9.201:5060']);
      expect((await dbRows(knex)).map((b) => b.contact).sort()).toEqual(['sip:john@10.0.9.166:5060', 'sip:john@10.0.9.201:5060']);
      await sleep(100);
      expect(unhandled.seen).toEqual([]);
    } finally {
      unhandled.stop();
    }
  }, 60_000);
});

// ------------------------------------------------------------------ configuration and runtime

describe('location.mode in the configuration and the runtime', () => {
  let locationUrl: string;
  let db: Awaited<ReturnType<typeof scratchDatabase>>;

  beforeAll(async () => {
    db = await scratchDatabase(`sipflow_wt_${process.pid}`);
    locationUrl = db.url;
  });
  afterAll(async () => {
    await db?.drop();
  });

  test('config: db-only by default on a shared database, write-through on the embedded one or on request, anything else refused', () => {
    expect(parseConfig('', 'defaults').location.mode).toBeUndefined();
    expect(runtimeOptionsFromConfig(parseConfig('', 'defaults')).locationMode).toBe('write-through');
    expect(runtimeOptionsFromConfig(parseConfig('directory: {url: "postgres://h/db"}', 'a.yaml')).locationMode).toBe('db-only');
    const c = parseConfig('location: {url: "postgres://h/db", mode: write-through}', 'a.yaml');
    expect(runtimeOptionsFromConfig(c).locationMode).toBe('write-through');
    expect(parseConfig('', 'env', { SIPFLOW_LOCATION_MODE: 'write-through' }).location.mode).toBe('write-through');
    expect(() => parseConfig('location: {mode: write-back}', 'b.yaml')).toThrow(/location\.mode/);
  });

  test.each(['write-through', 'db-only'] as const)(
    "postgres:// location in %s mode: registers durably; other instances' bindings seen per the mode, all of them after a restart",
    async (mode) => {
      const db = knexFactory({ client: 'pg', connection: locationUrl, pool: { min: 0, max: 1 } });
      const dataDir = mkdtempSync(path.join(os.tmpdir(), 'sipflow-wt-'));
      const open = () =>
        openRuntime({
          dataDir,
          directoryUrl: 'memory://',
          locationUrl,
          locationMode: mode,
          nonceSecret: 'write-through-secret-0123456789',
        });
      await ensureSchema(db);
      await db('location').truncate();
      let rt = await open();
      try {
        const res = await rt.registrar.register(req({ username: `rt-${mode}` }));
        expect(res.status).toBe(200);
        expect(
          await db('location')
            .where({ username: `rt-${mode}` })
            .pluck('contact'),
        ).toEqual(['sip:john@10.0.9.166:5060']);
        // Another instance registers directly in the table.
        await createSqlLocationStore(db).upsert(
          makeBinding({ username: `rt-${mode}`, contact: 'sip:other@10.9.9.9', expires: new Date(T0.getTime() + 3600_000) }),
        );
        const seen = async () => (await rt.registrar.lookup(`rt-${mode}`, null, at(1))).map((b) => b.contact).sort();
        if (mode === 'db-only') expect(await seen()).toEqual(['sip:john@10.0.9.166:5060', 'sip:other@10.9.9.9']);
        else {
          // served from memory: the other writer's binding arrives with its change notification
          // (services/location/sql-changes.ts), which may come before or after this lookup
          expect(await seen()).toContain('sip:john@10.0.9.166:5060');
          for (const until = Date.now() + 5000; (await seen()).length < 2 && Date.now() < until;) await sleep(20);
          expect(await seen()).toEqual(['sip:john@10.0.9.166:5060', 'sip:other@10.9.9.9']);
        }
        await rt.close();
        rt = await open(); // a restart loads what the table holds
        expect((await rt.registrar.lookup(`rt-${mode}`, null, at(1))).map((b) => b.contact).sort()).toEqual(['sip:john@10.0.9.166:5060', 'sip:other@10.9.9.9']);
        expect(await rt.store.count(at(1))).toBe(2);
      } finally {
        await rt.close();
        await db.destroy();
      }
    },
  );
});

describe('write-through over the MongoDB store', () => {
  const database = `sipflow_wt_${randomUUID().slice(0, 8)}`;
  afterAll(async () => {
    const client = new MongoClient(mongoUrl());
    await client
      .db(database)
      .dropDatabase()
      .catch(() => undefined);
    await client.close();
  });

  test('loads the collection (all()), writes through, serves find from memory', async () => {
    const plain = createMongoLocationStore({ url: mongoUrl(), database, writeConcern: { w: 1 } });
    const before = [makeBinding({ contact: 'sip:john@10.8.0.1' }), makeBinding({ username: 'perm', expires: new Date(0) })];
    try {
      for (const b of before) await plain.upsert(b);
      const wt = createWriteThroughStore(createMongoLocationStore({ url: mongoUrl(), database, writeConcern: { w: 1 } }));
      try {
        expect(await wt.open()).toBe(2);
        const added = makeBinding({ contact: 'sip:john@10.8.0.2' });
        await wt.upsert(added);
        expect((await plain.find('john', null)).sort(byRuid)).toEqual([before[0], added].sort(byRuid));
        const theirs = makeBinding({ contact: 'sip:john@10.8.0.3' });
        await plain.upsert(theirs);
        expect((await wt.find('john', null)).sort(byRuid)).toEqual([before[0], added].sort(byRuid));
        expect(await wt.find('perm', null)).toEqual([before[1]]);
        expect(await wt.remove([added.ruid, theirs.ruid])).toBe(2);
        expect(await plain.find('john', null)).toEqual([before[0]]);
      } finally {
        await wt.close();
      }
    } finally {
      await plain.close();
    }
  });
});
