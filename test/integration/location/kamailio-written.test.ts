/**
 * Bindings Kamailio wrote, read by sipflow (services/location/tolerant.ts, dedupe.ts): Kamailio 5.6
 * itself writes them, through its own db_mongodb and db_postgres modules
 * (test/integration/location/kamailio-mongodb.cfg: usrloc, no authentication).
 *
 *  - MongoDB (the FerretDB of the test run): Kamailio's db_mongodb leaves the empty fields out of
 *    its documents, then cannot read them back ("field [received] not found in result
 *    iterator"), so in db_mode 3 every REGISTER of one contact inserts one more document with a
 *    new ruid. A `sipflow serve` on that collection lists the contact once in its 200 OK, forks
 *    an INVITE to it once (a garbage document beside them changes nothing), and its REGISTER
 *    removes the copies. The store says which document it skipped.
 *  - MongoDB, a collection already holding two documents with one ruid: the unique ruid index
 *    cannot be built, the store falls back to ruid_1_not_unique and says so; a refresh leaves one.
 *  - PostgreSQL: two Kamailio instances in db_mode 1 (write-through, each with its own cache)
 *    register one contact, each inserts its row (NULL received, path, instance, methods); the
 *    registrar over the SQL store lists it once and a REGISTER removes the other row.
 */
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import knexFactory from 'knex';
import { MongoClient, type Document } from 'mongodb';
import { header, headerList, type SipResponse } from '../../../sip/message';
import { createMongoLocationStore } from '../../../services/location/mongo';
import { createRegistrar } from '../../../services/location/registrar';
import { createSqlLocationStore, ensureSchema } from '../../../services/location/sql';
import type { LocationStore, RegisterRequest } from '../../../services/location/types';
import { mongoUrl, scratchDatabase } from '../../setup/servers';
import { answerChallenge } from '../../support/sip';
import { ensureKamailio, startKamailio, type Kamailio } from '../../support/kamailio';
import { SHIPPED_FLOWS, startServe, type ServeProcess } from '../../support/serve';
import { UdpUa, rand, sipRequest, sipResponse } from '../sip/ua';

jest.setTimeout(120_000);

const CFG = path.join(__dirname, 'kamailio-mongodb.cfg');
const DOMAIN = 'nl.netaxis.be';
/** Kamailio on kamailio-mongodb.cfg: usrloc in `dbMode` on db_mongodb, or db_postgres with `postgres`. */
function startWriter(o: { dbUrl: string; dbMode: 1 | 3; postgres?: boolean; dir: string }): Promise<Kamailio> {
  return startKamailio({ cfg: CFG, dir: o.dir, defines: [`DBURL="${o.dbUrl}"`, `DB_MODE=${o.dbMode}`, ...(o.postgres ? ['WITH_POSTGRES'] : [])] });
}

/** One REGISTER through Kamailio (no authentication there): its final response. */
async function registerAt(ua: UdpUa, o: { callId: string; cseq: number; contact: string }): Promise<SipResponse> {
  ua.send(
    sipRequest({
      method: 'REGISTER',
      uri: `sip:${DOMAIN}`,
      ua,
      callId: o.callId,
      cseq: o.cseq,
      from: `<sip:francesco@${DOMAIN}>`,
      to: `<sip:francesco@${DOMAIN}>`,
      contact: o.contact,
      headers: { Expires: '600' },
    }),
  );
  const r = await ua.next((m) => header(m.msg, 'call-id') === o.callId && (m.msg as SipResponse).status >= 200, 3000);
  return r.msg as SipResponse;
}

/** The URL with `db` as its database (the path), its query kept. */
function withDatabase(url: string, db: string): string {
  const m = /^(mongodb(?:\+srv)?:\/\/[^/?]*)(?:\/[^?]*)?(\?.*)?$/.exec(url)!;
  return `${m[1]}/${db}${m[2] ?? ''}`;
}

const CONTACT_KEYS_KAMAILIO_LEAVES_OUT = ['received', 'path', 'methods', 'instance', 'domain'];

describe("MongoDB: documents Kamailio's db_mongodb wrote", () => {
  const dbName = `kamailio_written_${rand()}`;
  let url: string;
  let client: MongoClient;
  let dir: string;
  let kamailio: Kamailio;
  let pbx: UdpUa;
  let serve: ServeProcess;
  const uas: UdpUa[] = [];
  const notes: string[] = [];
  let store: LocationStore;
  const contact = () => `sip:francesco@127.0.0.1:${pbx.port}`;
  const docs = async () => client.db(dbName).collection('location').find({ username: 'francesco' }).toArray();

  beforeAll(async () => {
    ensureKamailio({ modules: ['db_mongodb.so', 'db_postgres.so'] });
    url = withDatabase(mongoUrl(), dbName);
    client = new MongoClient(mongoUrl());
    await client.connect();
    dir = mkdtempSync(path.join(os.tmpdir(), 'sipflow-kamailio-written-'));
    // sipflow's store prepares the collection (version documents Kamailio checks, indexes)
    store = createMongoLocationStore({ url, onNote: (m) => notes.push(m) });
    await store.count(new Date());
    kamailio = await startWriter({ dbUrl: url, dbMode: 3, dir });
    pbx = await UdpUa.open(kamailio.port);
  });
  afterAll(async () => {
    for (const u of [pbx, ...uas]) await u?.close();
    await serve?.stop();
    await kamailio?.stop();
    await store?.close();
    await client?.db(dbName).dropDatabase();
    await client?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('Kamailio in db_mode 3: three REGISTERs of one contact (a refresh), three documents, empty fields left out', async () => {
    const callId = rand();
    for (let cseq = 1; cseq <= 3; cseq++) {
      const r = await registerAt(pbx, { callId, cseq, contact: `<${contact()}>` });
      expect(r.status).toBe(200);
    }
    const written = await docs();
    // the duplicates, as Kamailio makes them: one contact, a new ruid each time
    expect(written.map((d) => d.contact)).toEqual([contact(), contact(), contact()]);
    expect(new Set(written.map((d) => d.ruid)).size).toBe(3);
    for (const d of written) for (const k of CONTACT_KEYS_KAMAILIO_LEAVES_OUT) expect(Object.keys(d)).not.toContain(k);
    // why: Kamailio cannot read back what it wrote
    expect(kamailio.log()).toMatch(/field \[received\] not found in result iterator/);
  });

  test('the store reads them without a note; the registrar lists the contact once', async () => {
    const found = await store.find('francesco', null);
    expect(found).toHaveLength(3); // the control: three bindings stored
    expect(found.every((b) => b.received === null && b.methods === null && b.instance === null)).toBe(true);
    const reg = createRegistrar(store);
    expect((await reg.lookup('francesco', null, new Date())).map((b) => b.contact)).toEqual([contact()]);
    expect(notes.filter((n) => n.startsWith('skipped'))).toEqual([]);
  });

  test('a garbage document beside them is skipped with a note naming it; the others are read', async () => {
    const { insertedId } = await client
      .db(dbName)
      .collection('location')
      .insertOne({
        username: 'francesco',
        contact: { uri: 'sip:francesco@198.51.100.1', where: 'a nested document' },
        expires: 'never',
        ruid: ['x'],
        q: new Array(10_000).fill(1),
      });
    const found = await store.find('francesco', null);
    expect(found).toHaveLength(3);
    expect(notes).toContain(`skipped location document _id "${insertedId.toHexString()}": contact is not a string`);
  });

  test('sipflow serve on the collection: an INVITE is forked to the contact once; its 200 OK lists it once; its REGISTER removes the copies', async () => {
    expect(await docs()).toHaveLength(4); // three copies of the contact and the garbage document
    // the shipped flows, with the PSTN trunk = 127.0.0.2 (the address the trunk's socket binds to)
    const flows = path.join(dir, 'flows');
    mkdirSync(flows);
    for (const f of readdirSync(SHIPPED_FLOWS).filter((x) => x.endsWith('.slid'))) copyFileSync(path.join(SHIPPED_FLOWS, f), path.join(flows, f));
    const doc = JSON.parse(readFileSync(path.join(flows, 'pbx.slid'), 'utf8'));
    doc['1'].nodes['1'].values.variables.find((v: { variable: string }) => v.variable === 'pstnTrunks').value = '127.0.0.2';
    writeFileSync(path.join(flows, 'pbx.slid'), JSON.stringify(doc));
    serve = await startServe({ locationUrl: url, flows, workers: 1, config: { sip: { domain: DOMAIN } } });

    // the PSTN trunk calls francesco's number; the PBX answers every INVITE it gets 486
    const trunk = await UdpUa.open(serve.sipPort, '127.0.0.1', '127.0.0.2');
    uas.push(trunk);
    let invites = 0;
    let calling = true;
    const answering = (async () => {
      while (calling) {
        const r = await pbx.request('INVITE', 200).catch(() => null);
        if (!r) continue;
        invites++;
        pbx.sendTo(sipResponse(r.msg, 486, 'Busy Here'), r.from.port, r.from.address);
      }
    })();
    const callId = rand();
    trunk.send(
      sipRequest({ method: 'INVITE', uri: `sip:000112233@${DOMAIN}`, ua: trunk, callId, from: '<sip:+3225551234@pstn.test>', to: `<sip:000112233@${DOMAIN}>` }),
    );
    const final = await trunk.next((r) => header(r.msg, 'call-id') === callId && (r.msg as SipResponse).status >= 200, 8000);
    // the proxy answers upstream only once every branch has its final response: all forks are in
    calling = false;
    await answering;
    expect((final.msg as SipResponse).status).toBe(486);
    expect(invites).toBe(1);

    // the PBX refreshes its registration through sipflow (digest, the note's subscriber)
    const viaSipflow = await UdpUa.open(serve.sipPort);
    uas.push(viaSipflow);
    const regCall = rand();
    const send = (cseq: number, authorization?: string) =>
      viaSipflow.send(
        sipRequest({
          method: 'REGISTER',
          uri: `sip:${DOMAIN}`,
          ua: viaSipflow,
          callId: regCall,
          cseq,
          from: `<sip:francesco@${DOMAIN}>`,
          to: `<sip:francesco@${DOMAIN}>`,
          contact: `<${contact()}>`,
          headers: { Expires: '600', ...(authorization ? { Authorization: authorization } : {}) },
        }),
      );
    const finalOf = () =>
      viaSipflow.next((r) => header(r.msg, 'call-id') === regCall && (r.msg as SipResponse).status >= 200, 3000).then((r) => r.msg as SipResponse);
    send(1);
    const challenge = await finalOf();
    expect(challenge.status).toBe(401);
    send(2, answerChallenge(header(challenge, 'www-authenticate')!, { username: 'francesco', password: '123456', method: 'REGISTER', uri: `sip:${DOMAIN}` }));
    const ok = await finalOf();
    expect(ok.status).toBe(200);
    const listed = headerList(ok, 'contact').filter((c) => c.includes(`<${contact()}>`));
    expect(listed).toHaveLength(1);
    // the copies are gone, the garbage document is left alone (it is nobody's binding)
    const left = await docs();
    expect(left.filter((d: Document) => d.contact === contact())).toHaveLength(1);
    expect(left).toHaveLength(2);
    // the store's notes reach the operator's log (server/runtime.ts wires onNote)
    expect(serve.output()).toMatch(/skipped location document _id \\"[0-9a-f]{24}\\": contact is not a string/); // JSON log line
  });
});

describe('MongoDB: a collection that already holds copies of one ruid', () => {
  const dbName = `kamailio_ruid_copies_${rand()}`;
  let client: MongoClient;
  let store: LocationStore | undefined;

  beforeAll(async () => {
    client = new MongoClient(mongoUrl());
    await client.connect();
  });
  afterAll(async () => {
    await store?.close();
    await client.db(dbName).dropDatabase();
    await client.close();
  });

  test('the unique ruid index falls back to a non-unique one, said in a note; a refresh leaves one document', async () => {
    const now = Date.now();
    // as Kamailio's db_mongodb writes a binding (empty fields left out), twice with one ruid
    const kamailioDoc = () => ({
      username: 'francesco',
      contact: 'sip:francesco@127.0.0.1:7000',
      expires: new Date(now + 600_000),
      q: -1,
      callid: 'kam-1',
      cseq: 1,
      flags: 0,
      cflags: 0,
      user_agent: 'n/a',
      socket: 'udp:127.0.0.1:5060',
      last_modified: new Date(now - 1000),
      ruid: 'uloc-6b128d08-527c-1',
      reg_id: 0,
      server_id: 0,
      connection_id: -1,
      keepalive: 0,
      partition: 0,
    });
    await client.db(dbName).collection('location').insertMany([kamailioDoc(), kamailioDoc()]);
    const notes: string[] = [];
    store = createMongoLocationStore({ url: withDatabase(mongoUrl(), dbName), onNote: (m) => notes.push(m) });
    await store.count(new Date());
    const names = (await client.db(dbName).collection('location').listIndexes().toArray()).map((i) => i.name);
    expect(names).toContain('ruid_1_not_unique');
    expect(names).not.toContain('ruid_1');
    expect(names).toEqual(expect.arrayContaining(['username_1_domain_1', 'expires_1']));
    expect(notes.join('\n')).toMatch(/holds duplicate ruids: the unique ruid index cannot be built, using a non-unique one \(ruid_1_not_unique\)/);

    const reg = createRegistrar(store);
    expect(await reg.lookup('francesco', null, new Date())).toHaveLength(1);
    const req: RegisterRequest = {
      username: 'francesco',
      domain: null,
      contacts: ['<sip:francesco@127.0.0.1:7000>'],
      expiresHeader: '600',
      callId: 'sipflow-1',
      cseq: 1,
      userAgent: 'test',
      received: null,
      socket: null,
      path: null,
      now: new Date(),
    };
    expect((await reg.register(req)).bindings).toHaveLength(1);
    expect(await client.db(dbName).collection('location').countDocuments({ ruid: 'uloc-6b128d08-527c-1' })).toBe(1);

    // a second start finds the fallback index and keeps it, without a note
    await store.close();
    notes.length = 0;
    store = createMongoLocationStore({ url: withDatabase(mongoUrl(), dbName), onNote: (m) => notes.push(m) });
    await store.count(new Date());
    expect(notes).toEqual([]);
  });
});

describe("PostgreSQL: rows Kamailio's db_postgres wrote (two write-through instances)", () => {
  let db: { url: string; drop(): Promise<void> };
  let knex: ReturnType<typeof knexFactory>;
  const kamailios: Kamailio[] = [];
  const uas: UdpUa[] = [];
  let dir: string;

  beforeAll(async () => {
    ensureKamailio({ modules: ['db_mongodb.so', 'db_postgres.so'] });
    db = await scratchDatabase(`kamailio_written_${rand()}`);
    knex = knexFactory({ client: 'pg', connection: db.url, pool: { min: 0, max: 2 } });
    await ensureSchema(knex); // Kamailio's own DDL (services/location/sql.ts)
    dir = mkdtempSync(path.join(os.tmpdir(), 'sipflow-kamailio-written-pg-'));
    const kamailioUrl = db.url.replace(/^postgres(ql)?:/, 'postgres:');
    for (let i = 0; i < 2; i++) kamailios.push(await startWriter({ dbUrl: kamailioUrl, dbMode: 1, postgres: true, dir }));
  });
  afterAll(async () => {
    for (const u of uas) await u.close();
    for (const k of kamailios) await k.stop();
    await knex?.destroy();
    await db?.drop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('one contact registered through both: two rows with NULLs; listed once; a REGISTER through sipflow removes the other row', async () => {
    const phone = await UdpUa.open(kamailios[0].port);
    uas.push(phone);
    const contact = `sip:francesco@127.0.0.1:${phone.port}`;
    const callId = rand();
    expect((await registerAt(phone, { callId, cseq: 1, contact: `<${contact}>` })).status).toBe(200);
    // the same phone, its next refresh sent to the other instance (a DNS SRV failover)
    const phoneViaB = await UdpUa.open(kamailios[1].port);
    uas.push(phoneViaB);
    expect((await registerAt(phoneViaB, { callId, cseq: 2, contact: `<${contact}>` })).status).toBe(200);

    const rows = (await knex('location').where({ username: 'francesco' })) as Array<Record<string, unknown>>;
    expect(rows.map((r) => r.contact)).toEqual([contact, contact]); // the control: two rows, one contact
    expect(new Set(rows.map((r) => r.ruid)).size).toBe(2);
    for (const r of rows) expect([r.received, r.path, r.instance, r.methods, r.domain]).toEqual([null, null, null, null, null]);

    const notes: string[] = [];
    const store = createSqlLocationStore(knex, { onNote: (m) => notes.push(m) });
    const reg = createRegistrar(store);
    const live = await reg.lookup('francesco', null, new Date());
    expect(live.map((b) => [b.contact, b.cseq])).toEqual([[contact, 2]]); // the newest: B's
    const res = await reg.register({
      username: 'francesco',
      domain: null,
      contacts: [`<${contact}>`],
      expiresHeader: '600',
      callId,
      cseq: 3,
      userAgent: 'test',
      received: null,
      socket: null,
      path: null,
      now: new Date(),
    });
    expect(res.status).toBe(200);
    expect(res.bindings).toHaveLength(1);
    expect(await knex('location').where({ username: 'francesco' }).count({ n: '*' })).toEqual([{ n: '1' }]);
    expect(notes).toEqual([]);
  });

  test("a row with what Kamailio's schema lets through but no binding can be (an empty contact) is skipped with a note; the others are read", async () => {
    // the columns' defaults: contact '' (NOT NULL DEFAULT ''), callid 'Default-Call-ID', expires 2030
    await knex('location').insert({ ruid: 'uloc-by-hand', username: 'francesco' });
    const notes: string[] = [];
    const store = createSqlLocationStore(knex, { onNote: (m) => notes.push(m) });
    const found = await store.find('francesco', null);
    expect(found).toHaveLength(1);
    expect(found[0].ruid).not.toBe('uloc-by-hand');
    expect(notes).toEqual(['skipped location row ruid "uloc-by-hand": no contact']);
  });

  test('100,000 copies of one contact: a lookup reads the newest 5,000 and gives one binding; a REGISTER removes the 4,999 it superseded', async () => {
    await knex.raw(
      `INSERT INTO location (ruid, username, contact, expires, callid, cseq, last_modified)
       SELECT 'uloc-flood-' || i, 'flooded', 'sip:flooded@192.0.2.1:5060', now() + interval '1 hour', 'flood', i, now() - (i || ' seconds')::interval
       FROM generate_series(1, 100000) AS i`,
    );
    const store = createSqlLocationStore(knex);
    const reg = createRegistrar(store);
    const t0 = performance.now();
    const live = await reg.lookup('flooded', null, new Date());
    const lookupMs = performance.now() - t0;
    expect(live.map((b) => b.ruid)).toEqual(['uloc-flood-1']); // the newest
    expect(await store.find('flooded', null)).toHaveLength(5000);
    const res = await reg.register({
      username: 'flooded',
      domain: null,
      contacts: ['<sip:flooded@192.0.2.1:5060>'],
      expiresHeader: '600',
      callId: 'flood',
      cseq: 100_001,
      userAgent: 'test',
      received: null,
      socket: null,
      path: null,
      now: new Date(),
    });
    expect(res.bindings).toHaveLength(1);
    expect(await knex('location').where({ username: 'flooded' }).count({ n: '*' })).toEqual([{ n: String(100_000 - 4_999) }]);
    console.log(`PostgreSQL, 100,000 copies of one contact: lookup ${lookupMs.toFixed(0)} ms`);
  });
});
