/**
 * Coherent write-through across instances (services/location/write-through.ts with the change
 * feeds of services/location/sql-changes.ts and mongo-changes.ts).
 *
 *  - Two `sipflow serve` processes, `location.mode: write-through`, one PostgreSQL: the note's
 *    subscriber registers through A, a PSTN call through B reaches its contact; it un-registers
 *    through B, a call through A gets 480. The delay until the other instance knows is measured
 *    and must stay under STATED_DELAY_MS (docs/operations.md states it).
 *  - Store level, PostgreSQL: a write by a third writer (an operator's SQL, as Kamailio would)
 *    is seen too; the notification connection killed (pg_terminate_backend): lookups read the
 *    database meanwhile (nothing missed), and the instance says it lost and regained the feed
 *    and reloads.
 *  - Store level, FerretDB (no change streams): said once in the log, others' changes seen
 *    within the refresh interval.
 */
import knexFactory from 'knex';
import { copyFileSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { header, type SipResponse } from '../../../sip/message';
import { openDirectory } from '../../../services/directory';
import { createMongoLocationStore } from '../../../services/location/mongo';
import { createMongoChangeFeed } from '../../../services/location/mongo-changes';
import { createRegistrar } from '../../../services/location/registrar';
import { createSqlChangeFeed, ensureChangeNotifications } from '../../../services/location/sql-changes';
import { createSqlLocationStore, ensureSchema } from '../../../services/location/sql';
import { createWriteThroughStore, type WriteThroughStore } from '../../../services/location/write-through';
import { applicationNameOf } from '../../../services/directory/knex-internals';
import { mongoUrl, scratchDatabase } from '../../setup/servers';
import { SHIPPED_FLOWS, startServe, type ServeProcess } from '../../support/serve';
import { makeBinding } from './fixtures';
import { UdpUa, rand, registerStatus, sipRequest, sipResponse } from '../sip/ua';

jest.setTimeout(120_000);

/** What docs/operations.md promises: another instance knows of a change within this (PostgreSQL). */
const STATED_DELAY_MS = 1000;
const DOMAIN = 'nl.netaxis.be';

/** Polls `probe` until it returns true; resolves to how long it took, rejects after `ms`. */
async function within(ms: number, probe: () => Promise<boolean>): Promise<number> {
  const t0 = Date.now();
  for (;;) {
    if (await probe()) return Date.now() - t0;
    if (Date.now() - t0 > ms) throw new Error(`not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A live binding of `username` (not tied to a connection). */
const binding = (username: string, contact: string) =>
  makeBinding({ username, contact, expires: new Date(Date.now() + 600_000), last_modified: new Date(), connection_id: -1, keepalive: 0 });

describe('two sipflow serve processes, write-through on one PostgreSQL', () => {
  let db: { url: string; drop(): Promise<void> };
  let dir: string;
  let a: ServeProcess;
  let b: ServeProcess;
  let pbx: UdpUa;
  const ua: UdpUa[] = [];

  beforeAll(async () => {
    db = await scratchDatabase('coherence_processes');
    // the shipped flows, with the PSTN trunk = 127.0.0.2 (the address the trunk's socket binds to)
    dir = mkdtempSync(path.join(os.tmpdir(), 'sipflow-coherence-'));
    for (const f of readdirSync(SHIPPED_FLOWS).filter((x) => x.endsWith('.slid'))) copyFileSync(path.join(SHIPPED_FLOWS, f), path.join(dir, f));
    const doc = JSON.parse(readFileSync(path.join(dir, 'pbx.slid'), 'utf8'));
    const trunks = doc['1'].nodes['1'].values.variables.find((v: { variable: string }) => v.variable === 'pstnTrunks');
    trunks.value = '127.0.0.2';
    writeFileSync(path.join(dir, 'pbx.slid'), JSON.stringify(doc));
    const spec = { directoryUrl: db.url, locationUrl: 'sql', flows: dir, workers: 1, config: { location: { mode: 'write-through' }, sip: { domain: DOMAIN } } };
    a = await startServe(spec);
    b = await startServe(spec);
    pbx = await UdpUa.open(a.sipPort);
  });
  afterAll(async () => {
    for (const u of [pbx, ...ua]) await u?.close();
    await a?.stop();
    await b?.stop();
    await db?.drop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** The PSTN trunk calls the subscriber's number through `via`; the final status (the PBX answers 486 when the INVITE reaches it). */
  async function call(via: ServeProcess): Promise<{ status: number; reachedPbx: boolean }> {
    const trunk = await UdpUa.open(via.sipPort, '127.0.0.1', '127.0.0.2');
    ua.push(trunk);
    const callId = rand();
    trunk.send(
      sipRequest({ method: 'INVITE', uri: `sip:000112233@${DOMAIN}`, ua: trunk, callId, from: '<sip:+3225551234@pstn.test>', to: `<sip:000112233@${DOMAIN}>` }),
    );
    const reached = pbx.request('INVITE', 3000).then(
      (r) => {
        pbx.sendTo(sipResponse(r.msg, 486, 'Busy Here'), r.from.port, r.from.address);
        return true;
      },
      () => false,
    );
    const final = await trunk.next((r) => header(r.msg, 'call-id') === callId && (r.msg as SipResponse).status >= 200, 5000);
    return { status: (final.msg as SipResponse).status, reachedPbx: await reached };
  }

  const registered = async (s: ServeProcess) =>
    ((await (await s.api('/api/v1/registrations?aor=francesco@nl.netaxis.be')).json()) as { total: number }).total > 0;

  test('register on A, call via B; un-register on B, call via A → 480', async () => {
    expect(await registerStatus(pbx, 'francesco', '123456')).toBe(200);
    const seenByB = await within(STATED_DELAY_MS, () => registered(b));
    const viaB = await call(b);
    expect(viaB).toEqual({ status: 486, reachedPbx: true });

    // the un-REGISTER goes to B
    const pbxViaB = await UdpUa.open(b.sipPort);
    ua.push(pbxViaB);
    // the binding's contact: the PBX's socket, registered through A
    const unregister = await registerStatus(pbxViaB, 'francesco', '123456', { expires: 0, contact: `<sip:francesco@127.0.0.1:${pbx.port}>` });
    expect(unregister).toBe(200);
    const goneOnA = await within(STATED_DELAY_MS, async () => !(await registered(a)));
    const viaA = await call(a);
    expect(viaA).toEqual({ status: 480, reachedPbx: false });
    // the figures docs/operations.md states
    console.log(`write-through coherence over PostgreSQL: registration seen by B after ${seenByB} ms, un-registration seen by A after ${goneOnA} ms`);
    expect(a.output()).toMatch(/changes of other instances arrive by PostgreSQL LISTEN sipflow_location/);
  });
});

describe('write-through store coherence, PostgreSQL', () => {
  let db: { url: string; drop(): Promise<void> };
  const open: Array<{ close(): Promise<void> }> = [];
  const logs: string[] = [];

  beforeAll(async () => {
    db = await scratchDatabase('coherence_stores');
  });
  afterAll(async () => {
    for (const o of open.reverse()) await o.close();
    await db?.drop();
  });

  async function instance(name: string): Promise<{ store: WriteThroughStore; registrar: ReturnType<typeof createRegistrar> }> {
    const knex = openDirectory(db.url);
    open.push({ close: () => knex.destroy() });
    await ensureSchema(knex);
    await ensureChangeNotifications(knex);
    const store = createWriteThroughStore(createSqlLocationStore(knex), {
      changes: createSqlChangeFeed({ url: db.url, ownOrigin: applicationNameOf(knex) }),
      log: (level, m) => logs.push(`${name} ${level} ${m}`),
    });
    open.push(store);
    await store.open();
    return { store, registrar: createRegistrar(store) };
  }

  test("another writer's rows (plain SQL, as Kamailio or an operator) are seen by both instances", async () => {
    const a = await instance('A');
    const b = await instance('B');
    const sql = knexFactory({ client: 'pg', connection: db.url, pool: { min: 0, max: 1 } });
    open.push({ close: () => sql.destroy() });
    const row = binding('kam', 'sip:kam@192.0.2.7:5060');
    await sql('location').insert({ ...row, expires: row.expires, last_modified: row.last_modified });
    await within(STATED_DELAY_MS, async () => (await a.store.find('kam', null)).length === 1 && (await b.store.find('kam', null)).length === 1);
    await sql('location').where({ ruid: row.ruid }).delete();
    await within(STATED_DELAY_MS, async () => (await a.store.find('kam', null)).length === 0 && (await b.store.find('kam', null)).length === 0);
    // A writes, B sees; B removes, A sees
    const mine = binding('alice', 'sip:alice@192.0.2.8:5060');
    await a.store.upsert(mine);
    await within(STATED_DELAY_MS, async () => (await b.store.find('alice', null)).length === 1);
    expect(await b.store.remove([mine.ruid])).toBe(1);
    await within(STATED_DELAY_MS, async () => (await a.store.find('alice', null)).length === 0);
  });

  test('the notification connection dropped: lookups read the database meanwhile, then the feed is back and memory reloaded', async () => {
    const a = await instance('C');
    const b = await instance('D');
    const admin = knexFactory({ client: 'pg', connection: db.url, pool: { min: 0, max: 1 } });
    open.push({ close: () => admin.destroy() });
    // D's listening session is killed (a failover, a proxy idle timeout, an operator)
    const killed = await admin.raw<{ rows: unknown[] }>(
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE '%/listen' AND datname = current_database()",
    );
    expect(killed.rows.length).toBeGreaterThanOrEqual(2);
    await within(5000, async () => logs.some((l) => /^D warn .*ended; lookups read the database until changes arrive again/.test(l)));
    // written while D hears nothing: D still finds it (it reads the database now)
    const during = binding('bob', 'sip:bob@192.0.2.9:5060');
    await a.store.upsert(during);
    expect((await b.store.find('bob', null)).map((x) => x.ruid)).toEqual([during.ruid]);
    // back (reconnected after 0.5 s), then reloaded: memory serves again and holds it
    await within(10_000, async () => logs.some((l) => /^D info .*bindings reloaded \(change notifications are back\)/.test(l)));
    expect((await b.store.all()).some((x) => x.ruid === during.ruid)).toBe(true);
    // and it hears changes again
    await a.store.remove([during.ruid]);
    await within(STATED_DELAY_MS, async () => (await b.store.find('bob', null)).length === 0);
  });
});

describe('write-through store coherence, MongoDB without change streams (FerretDB)', () => {
  test("said once; another instance's REGISTER and removal seen within the refresh interval", async () => {
    const database = `coherence_${process.pid}`;
    const logs: string[] = [];
    const make = (name: string) =>
      createWriteThroughStore(createMongoLocationStore({ url: mongoUrl(), database }), {
        changes: createMongoChangeFeed({ url: mongoUrl(), database, collection: 'location', refreshMs: 300, onNote: (m) => logs.push(`${name} ${m}`) }),
        log: (level, m) => logs.push(`${name} ${level} ${m}`),
      });
    const a = make('A');
    const b = make('B');
    try {
      await a.open();
      await b.open();
      expect(logs.filter((l) => /^A the MongoDB server has no change streams .*full reload every 0.3 s \(location.refreshSec\)/.test(l))).toHaveLength(1);
      const ra = createRegistrar(a);
      const rb = createRegistrar(b);
      const mine = binding('carol', 'sip:carol@192.0.2.10:5060');
      await a.upsert(mine);
      const seen = await within(3000, async () => (await rb.lookup('carol', null, new Date())).length === 1);
      await b.remove([mine.ruid]);
      const gone = await within(3000, async () => (await ra.lookup('carol', null, new Date())).length === 0);
      console.log(`write-through coherence over FerretDB (refresh 0.3 s): seen after ${seen} ms, removal after ${gone} ms`);
    } finally {
      await a.close();
      await b.close();
      const { MongoClient } = await import('mongodb');
      const c = await MongoClient.connect(mongoUrl());
      await c.db(database).dropDatabase();
      await c.close();
    }
  });
});
