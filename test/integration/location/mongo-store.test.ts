/**
 * MongoDB location store against the real MongoDB-protocol server (FerretDB from globalSetup, or
 * the external MONGODB_URL): the store contract, Kamailio db_mongodb document shape, version
 * documents, indexes, and the note's replica-set URL form.
 */
import { randomUUID } from 'crypto';
import { Double, Int32, MongoClient, ObjectId } from 'mongodb';
import type { Db } from 'mongodb';
import { createMongoLocationStore, fromDocument, KAMAILIO_LOCATION_KEYS, normalizeMongoUrl, toDocument } from '../../../services/location/mongo';
import type { LocationStore } from '../../../services/location/types';
import { mongoUrl } from '../../setup/servers';
import { makeBinding, storeContract } from './fixtures';

let client: MongoClient;
const databases: string[] = [];

/** A database of its own per test, so tests neither see each other's data nor other suites'. */
function freshDbName(): string {
  const name = `sipflow_loc_${randomUUID().slice(0, 8)}`;
  databases.push(name);
  return name;
}

function open(database: string): LocationStore {
  return createMongoLocationStore({ url: mongoUrl(), database });
}

beforeAll(async () => {
  client = new MongoClient(mongoUrl(), { serverSelectionTimeoutMS: 5000 });
  await client.connect();
});

afterAll(async () => {
  for (const d of databases)
    await client
      .db(d)
      .dropDatabase()
      .catch(() => {});
  await client.close();
});

describe('MongoDB location store: contract', () => {
  storeContract(async () => open(freshDbName()));
});

/** The document of the registrar technical note's §7.1 `db.location.find()`, with the BSON types Kamailio writes. */
function noteSample() {
  return {
    _id: new ObjectId('654551b634ce7535954f8da1'),
    username: 'john',
    contact: 'sip:john-kbg8bf86fdlhf@172.18.2.111:5060;transport=tcp',
    expires: new Date('2024-02-22T08:54:06Z'),
    q: new Double(-1),
    callid: '13579672010112023113959@117.114.6.30',
    cseq: new Int32(119577),
    flags: new Int32(0),
    cflags: new Int32(0),
    user_agent: 'n/a',
    received: null,
    path: null,
    socket: 'tcp:172.16.3.82:5061',
    methods: new Int32(7935),
    last_modified: new Date('2024-02-22T08:49:06Z'),
    ruid: 'uloc-649e7b98-3595-2',
    instance: null,
    reg_id: new Int32(0),
    server_id: new Int32(0),
    connection_id: new Int32(776),
    keepalive: new Int32(0),
    partition: new Int32(0),
  };
}

const sampleBinding = {
  ruid: 'uloc-649e7b98-3595-2',
  username: 'john',
  domain: null,
  contact: 'sip:john-kbg8bf86fdlhf@172.18.2.111:5060;transport=tcp',
  received: null,
  path: null,
  expires: new Date('2024-02-22T08:54:06Z'),
  q: -1,
  callid: '13579672010112023113959@117.114.6.30',
  cseq: 119577,
  last_modified: new Date('2024-02-22T08:49:06Z'),
  flags: 0,
  cflags: 0,
  user_agent: 'n/a',
  socket: 'tcp:172.16.3.82:5061',
  methods: 7935,
  instance: null,
  reg_id: 0,
  server_id: 0,
  connection_id: 776,
  keepalive: 0,
  partition: 0,
};

describe('MongoDB location store: Kamailio db_mongodb shape', () => {
  let db: Db;
  let store: LocationStore;
  beforeEach(() => {
    const name = freshDbName();
    db = client.db(name);
    store = open(name);
  });
  afterEach(() => store.close());

  test("the note's sample document, inserted raw as Kamailio would, reads back as a Binding", async () => {
    await db.collection('location').insertOne(noteSample());
    expect(await store.find('john', null)).toEqual([sampleBinding]);
    expect(fromDocument(noteSample())).toEqual(sampleBinding);
  });

  test("a written single-domain binding has exactly Kamailio's keys, in order, nulls present", async () => {
    const b = makeBinding({ received: null, path: null, instance: null });
    await store.upsert(b);
    const raw = await db.collection('location').findOne({ ruid: b.ruid });
    expect(raw).not.toBeNull();
    const { _id, ...doc } = raw!;
    expect(_id).toBeInstanceOf(ObjectId);
    expect(Object.keys(doc)).toEqual([...KAMAILIO_LOCATION_KEYS]);
    expect(doc.received).toBeNull();
    expect(doc.path).toBeNull();
    expect(doc.instance).toBeNull();
    expect(doc.expires).toBeInstanceOf(Date);
    expect(doc.last_modified).toBeInstanceOf(Date);
    expect(doc).not.toHaveProperty('domain');
  });

  test("the note's sample, written by sipflow, is the same document with the same BSON types", async () => {
    await store.upsert(sampleBinding);
    const raw = await db.collection('location').findOne({ ruid: sampleBinding.ruid }, { promoteValues: false, projection: { _id: 0 } });
    const { _id, ...expected } = noteSample();
    expect(raw).toEqual(expected);
    // And the server agrees on the types Kamailio uses (its queries compare them).
    const typed = await db.collection('location').countDocuments({
      ruid: sampleBinding.ruid,
      expires: { $type: 'date' },
      last_modified: { $type: 'date' },
      q: { $type: 'double' },
      cseq: { $type: 'int' },
      connection_id: { $type: 'int' },
      received: { $type: 'null' },
      instance: { $type: 'null' },
    });
    expect(typed).toBe(1);
  });

  test('a multi-domain binding adds `domain` (last, as usrloc appends it) and nothing else', async () => {
    const b = makeBinding({ domain: 'netaxis.be' });
    await store.upsert(b);
    const { _id, ...doc } = (await db.collection('location').findOne({ ruid: b.ruid }))!;
    expect(Object.keys(doc)).toEqual([...KAMAILIO_LOCATION_KEYS, 'domain']);
    expect(doc.domain).toBe('netaxis.be');
    expect(Object.keys(toDocument(makeBinding()))).toEqual([...KAMAILIO_LOCATION_KEYS]);
  });

  test('version documents location=9, location_attrs=1 (NumberInt) are created on first use', async () => {
    await store.find('john', null);
    const version = db.collection('version');
    const docs = await version
      .find({}, { promoteValues: false, projection: { _id: 0 } })
      .sort({ table_name: 1 })
      .toArray();
    expect(docs).toEqual([
      { table_name: 'location', table_version: new Int32(9) },
      { table_name: 'location_attrs', table_version: new Int32(1) },
    ]);
    // A second store (another sipflow instance) neither duplicates nor rewrites them.
    const again = open(db.databaseName);
    await again.find('john', null);
    await again.close();
    expect(await version.countDocuments()).toBe(2);
  });

  test('an existing version document is left alone', async () => {
    await db.collection('version').insertOne({ table_name: 'location', table_version: new Int32(9), note: 'set by ops' });
    await store.find('john', null);
    expect(await db.collection('version').countDocuments({ table_name: 'location' })).toBe(1);
    expect(await db.collection('version').findOne({ table_name: 'location' })).toMatchObject({ note: 'set by ops' });
  });

  test('indexes: username+domain, unique ruid (enforced), expires', async () => {
    await store.find('john', null);
    const indexes = await db.collection('location').listIndexes().toArray();
    const byName = Object.fromEntries(indexes.map((i) => [i.name, i]));
    expect(byName.username_1_domain_1.key).toEqual({ username: 1, domain: 1 });
    expect(byName.ruid_1).toMatchObject({ key: { ruid: 1 }, unique: true });
    expect(byName.expires_1.key).toEqual({ expires: 1 });
    const b = makeBinding();
    await store.upsert(b);
    await expect(db.collection('location').insertOne(toDocument({ ...b, contact: 'sip:dup@x' }))).rejects.toMatchObject({ code: 11000 });
  });
});

describe('MongoDB location store: fresh bindings are inserted', () => {
  test('a fresh binding is stored; a fresh one whose ruid is stored after all replaces it (E11000 retried as an upsert); a batch mixes both', async () => {
    const database = freshDbName();
    const store = open(database);
    const location = client.db(database).collection('location');
    const a = makeBinding({ username: 'fresh-a' });
    await store.upsert(a, true);
    expect((await store.find('fresh-a', null)).map((b) => b.contact)).toEqual([a.contact]);
    // the same ruid again, marked fresh (another writer stored it first): one document, the new contact
    await store.upsert({ ...a, contact: 'sip:fresh-a@10.9.9.9:5060' }, true);
    expect(await location.countDocuments({ ruid: a.ruid })).toBe(1);
    expect((await store.find('fresh-a', null)).map((b) => b.contact)).toEqual(['sip:fresh-a@10.9.9.9:5060']);
    // concurrent writes go out as one batch: fresh inserts, a refresh and a stale "fresh" together
    const news = [1, 2, 3].map((i) => makeBinding({ username: 'fresh-b', contact: `sip:b${i}@10.0.0.${i}:5060` }));
    await Promise.all([
      ...news.map((b) => store.upsert(b, true)),
      store.upsert({ ...a, cseq: 7 }),
      store.upsert({ ...a, cseq: 8, contact: 'sip:fresh-a@10.8.8.8:5060' }, true),
    ]);
    expect((await store.find('fresh-b', null)).map((b) => b.contact).sort()).toEqual(news.map((b) => b.contact).sort());
    expect(await location.countDocuments({ ruid: a.ruid })).toBe(1);
    expect((await store.find('fresh-a', null))[0]).toMatchObject({ cseq: 8, contact: 'sip:fresh-a@10.8.8.8:5060' });
    await store.close();
  });
});

describe("MongoDB location store: the note's DBURL", () => {
  test('normalizeMongoUrl drops slaveOk, keeps replicaSet/readPreference, takes the database from the path', () => {
    const n = normalizeMongoUrl('mongodb://10.0.12.146,10.0.12.147,10.0.12.148/kamailio?replicaSet=sre_location&slaveOk=true&readPreference=primaryPreferred');
    expect(n).toEqual({
      url: 'mongodb://10.0.12.146,10.0.12.147,10.0.12.148/kamailio?replicaSet=sre_location&readPreference=primaryPreferred',
      database: 'kamailio',
      notes: [expect.stringMatching(/slaveOk/)],
    });
    expect(normalizeMongoUrl('mongodb://h1/kamailio?slaveOk=true').url).toBe('mongodb://h1/kamailio?readPreference=primaryPreferred');
    expect(normalizeMongoUrl('mongodb://h1:27017')).toEqual({ url: 'mongodb://h1:27017/', database: null, notes: [] });
  });

  test("a URL shaped like the note's (replicaSet, slaveOk, readPreference, db in path) works against the server", async () => {
    const hello = await client.db('admin').command({ hello: 1 });
    const name = freshDbName();
    const host = /^mongodb:\/\/([^/?]+)/.exec(mongoUrl())![1];
    const params = [hello.setName ? `replicaSet=${hello.setName}` : '', 'slaveOk=true', 'readPreference=primaryPreferred'].filter(Boolean);
    const notes: string[] = [];
    const store = createMongoLocationStore({ url: `mongodb://${host}/${name}?${params.join('&')}`, onNote: (m) => notes.push(m) });
    try {
      const b = makeBinding();
      await store.upsert(b);
      expect(await store.find('john', null)).toEqual([b]);
      expect(await client.db(name).collection('location').countDocuments()).toBe(1);
      // the URL's one note (on FerretDB a second one tells the write batches chosen for it)
      expect(notes.filter((n) => !/^the server is FerretDB/.test(n))).toEqual([expect.stringMatching(/^dropped legacy slaveOk/)]);
    } finally {
      await store.close();
    }
  });
});
