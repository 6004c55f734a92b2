/** Bindings and a store contract shared by the MongoDB and SQL location store suites. */
import { randomUUID } from 'crypto';
import knexFactory, { type Knex } from 'knex';
import { openDirectory } from '../../../services/directory';
import type { Binding, LocationStore } from '../../../services/location/types';
import { pgUrl } from '../../setup/servers';

/** A fully populated binding (every nullable field set), unique ruid; override what a test needs. */
export function makeBinding(over: Partial<Binding> = {}): Binding {
  const now = Date.parse('2024-02-22T08:49:06.000Z');
  return {
    ruid: `uloc-${randomUUID()}`,
    username: 'john',
    domain: null,
    contact: 'sip:john-kbg8bf86fdlhf@172.18.2.111:5060;transport=tcp',
    received: 'sip:198.51.100.7:41234;transport=tcp',
    path: '<sip:edge1.example.net;lr>',
    expires: new Date(now + 300_000),
    q: 0.8,
    callid: '13579672010112023113959@117.114.6.30',
    cseq: 119577,
    last_modified: new Date(now),
    flags: 0,
    cflags: 64,
    user_agent: 'X-Lite release 5.4.0 stamp 94385',
    socket: 'tcp:172.16.3.82:5061',
    methods: 7935,
    instance: '<urn:uuid:00000000-0000-1000-8000-000A95A0E128>',
    reg_id: 1,
    server_id: 0,
    connection_id: 776,
    keepalive: 1,
    partition: 0,
    ...over,
  };
}

const byRuid = (a: Binding, b: Binding) => a.ruid.localeCompare(b.ruid);

/** Round trips every LocationStore must pass; `fresh()` gives a store on empty storage. */
export function storeContract(fresh: () => Promise<LocationStore>): void {
  let store: LocationStore;
  beforeEach(async () => {
    store = await fresh();
  });
  afterEach(async () => {
    await store.close();
  });

  test('upsert then find returns the binding field for field', async () => {
    const b = makeBinding();
    await store.upsert(b);
    expect(await store.find('john', null)).toEqual([b]);
  });

  test('removeByConnection removes the bindings of one server and connection only; keepalive pages our keepalive bindings by ruid', async () => {
    const mine = makeBinding({ ruid: 'uloc-a1', server_id: 3, connection_id: 40 });
    const sameIdOtherServer = makeBinding({ ruid: 'uloc-a2', server_id: 4, connection_id: 40 });
    const otherConn = makeBinding({ ruid: 'uloc-a3', server_id: 3, connection_id: 41 });
    const udpNated = makeBinding({ ruid: 'uloc-a4', server_id: 3, connection_id: -1, keepalive: 1 });
    const plain = makeBinding({ ruid: 'uloc-a5', server_id: 3, connection_id: -1, keepalive: 0 });
    const expired = makeBinding({ ruid: 'uloc-a6', server_id: 3, connection_id: -1, keepalive: 1, expires: new Date(Date.parse('2024-02-22T08:00:00.000Z')) });
    for (const b of [mine, sameIdOtherServer, otherConn, udpNated, plain, expired]) await store.upsert(b);
    const now = new Date('2024-02-22T08:49:06.000Z');
    expect((await store.keepalive(3, now, '', 10)).map((b) => b.ruid)).toEqual(['uloc-a1', 'uloc-a3', 'uloc-a4']);
    expect((await store.keepalive(3, now, 'uloc-a1', 1)).map((b) => b.ruid)).toEqual(['uloc-a3']);
    expect(await store.removeByConnection(3, 40)).toBe(1);
    expect((await store.find('john', null)).map((b) => b.ruid).sort()).toEqual(['uloc-a2', 'uloc-a3', 'uloc-a4', 'uloc-a5', 'uloc-a6']);
  });

  test('nullable fields round-trip as null, q = -1 (unspecified) survives', async () => {
    const b = makeBinding({ received: null, path: null, socket: null, methods: null, instance: null, q: -1 });
    await store.upsert(b);
    expect(await store.find('john', null)).toEqual([b]);
  });

  test('upsert with the same ruid replaces (refresh), not duplicates', async () => {
    const b = makeBinding();
    await store.upsert(b);
    const refreshed = { ...b, cseq: b.cseq + 1, expires: new Date(b.expires.getTime() + 60_000), q: 0.5 };
    await store.upsert(refreshed);
    expect(await store.find('john', null)).toEqual([refreshed]);
  });

  test('find separates AoRs: username, single- vs multi-domain', async () => {
    const single = makeBinding();
    const inA = makeBinding({ domain: 'a.example' });
    const inB = makeBinding({ domain: 'b.example' });
    const other = makeBinding({ username: 'jane' });
    for (const b of [single, inA, inB, other]) await store.upsert(b);
    expect(await store.find('john', null)).toEqual([single]);
    expect(await store.find('john', 'a.example')).toEqual([inA]);
    expect(await store.find('john', 'b.example')).toEqual([inB]);
    expect(await store.find('jane', null)).toEqual([other]);
    expect(await store.find('nobody', null)).toEqual([]);
  });

  test('several contacts of one AoR are all found', async () => {
    const bs = [0, 1, 2].map((i) => makeBinding({ contact: `sip:john@10.0.0.${i}:5060` }));
    for (const b of bs) await store.upsert(b);
    expect((await store.find('john', null)).sort(byRuid)).toEqual([...bs].sort(byRuid));
  });

  test('remove deletes exactly the given ruids; empty list is a no-op', async () => {
    const [a, b, c] = [0, 1, 2].map((i) => makeBinding({ contact: `sip:john@10.0.0.${i}` }));
    for (const x of [a, b, c]) await store.upsert(x);
    await store.remove([]);
    await store.remove([a.ruid, c.ruid, 'uloc-unknown']);
    expect(await store.find('john', null)).toEqual([b]);
  });

  test('purgeExpired deletes bindings with expires <= now and counts them', async () => {
    const now = new Date('2024-02-22T09:00:00.000Z');
    const expired = makeBinding({ expires: new Date(now.getTime() - 1000) });
    const atNow = makeBinding({ expires: new Date(now.getTime()) });
    const live = makeBinding({ expires: new Date(now.getTime() + 1000) });
    const otherAor = makeBinding({ username: 'jane', expires: new Date(now.getTime() - 5000) });
    for (const b of [expired, atNow, live, otherAor]) await store.upsert(b);
    expect(await store.purgeExpired(now)).toBe(3);
    expect(await store.find('john', null)).toEqual([live]);
    expect(await store.find('jane', null)).toEqual([]);
    expect(await store.purgeExpired(now)).toBe(0);
  });

  test('concurrent upserts of distinct bindings all land', async () => {
    const bs = Array.from({ length: 50 }, (_, i) => makeBinding({ contact: `sip:john@10.1.0.${i}` }));
    await Promise.all(bs.map((b) => store.upsert(b)));
    expect((await store.find('john', null)).sort(byRuid)).toEqual([...bs].sort(byRuid));
  });
}

export type Target = 'postgres' | 'pglite';

/**
 * A knex for the SQL location store's suites: PGlite in memory, or on PostgreSQL a schema of the
 * suite's own (first on the search_path), so tables named like Kamailio's (`version`, `location`)
 * cannot meet other suites' on the shared database.
 */
export async function openTarget(target: Target, prefix: string, acquireConnectionTimeout = 5000): Promise<{ knex: Knex; done: () => Promise<void> }> {
  if (target === 'pglite') {
    const knex = openDirectory('memory://');
    return { knex, done: () => knex.destroy() };
  }
  const schema = `${prefix}_${randomUUID().slice(0, 8)}`;
  const admin = knexFactory({ client: 'pg', connection: pgUrl(), pool: { min: 0, max: 1 } });
  await admin.raw(`CREATE SCHEMA "${schema}"`);
  const knex = knexFactory({
    client: 'pg',
    connection: pgUrl(),
    searchPath: [schema],
    pool: { min: 0, max: 8 },
    acquireConnectionTimeout,
  });
  return {
    knex,
    done: async () => {
      await knex.destroy();
      await admin.raw(`DROP SCHEMA "${schema}" CASCADE`);
      await admin.destroy();
    },
  };
}
