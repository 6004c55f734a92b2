/**
 * The seed's three-pass REGISTER on the production stores: the directory on a real PostgreSQL
 * (migrated and seeded through `sipflow db seed --directory-url postgres://…`) and the location
 * service on the MongoDB-protocol server, where the binding must land in Kamailio's shape.
 */
import { readFileSync } from 'fs';
import path from 'path';
import knexFactory from 'knex';
import { MongoClient } from 'mongodb';
import { main } from '../../cli/main';
import { buildCallDescriptor } from '../../engine/cd';
import { loadSlidText } from '../../engine/load';
import { runLogic } from '../../engine/run';
import { builtinRegistry } from '../../nodes';
import { parseDigestCredentials } from '../../services/auth';
import { KAMAILIO_LOCATION_KEYS } from '../../services/location/mongo';
import { openRuntime, type Runtime } from '../../server/runtime';
import { mongoUrl, pgUrl } from '../setup/servers';
import { answerChallenge, sampleRegister } from '../support/sip';

const database = `sipflow_seed_${process.pid}`;
const mongoDb = `kamailio_seed_${process.pid}`;
let directoryUrl: string;
let rt: Runtime;

beforeAll(async () => {
  const admin = knexFactory({ client: 'pg', connection: pgUrl() });
  await admin.raw('DROP DATABASE IF EXISTS ??', [database]);
  await admin.raw('CREATE DATABASE ??', [database]);
  await admin.destroy();
  const u = new URL(pgUrl());
  u.pathname = `/${database}`;
  directoryUrl = u.toString();
  const log = jest.spyOn(console, 'log').mockImplementation(() => undefined);
  try {
    expect(await main(['node', 'sipflow', 'db', 'seed', '--directory-url', directoryUrl])).toBe(0);
  } finally {
    log.mockRestore();
  }
  rt = await openRuntime({ dataDir: '/tmp', directoryUrl, nonceSecret: 'seed-production-secret-0123', locationUrl: mongoUrl(), mongo: { database: mongoDb } });
});

afterAll(async () => {
  await rt?.close();
  const client = new MongoClient(mongoUrl());
  await client
    .db(mongoDb)
    .dropDatabase()
    .catch(() => undefined);
  await client.close();
  const admin = knexFactory({ client: 'pg', connection: pgUrl() });
  await admin.raw('DROP DATABASE IF EXISTS ?? WITH (FORCE)', [database]).catch(() => undefined);
  await admin.destroy();
});

test('REGISTER → 401 → REGISTER with credentials → 200, binding stored in MongoDB in the Kamailio shape', async () => {
  const text = readFileSync(path.join(__dirname, '../../flows/registration.slid'), 'utf8');
  const service = loadSlidText(text, 'registration.slid', builtinRegistry()).service!;
  const cdOf = (input: unknown) => buildCallDescriptor(input, { credentials: parseDigestCredentials });

  const first = await runLogic(service, '24', cdOf(sampleRegister()), rt.ctx);
  if (first.outcome.kind !== 'challenge') throw new Error(`expected a challenge, got ${JSON.stringify(first.outcome)}`);
  const authorization = answerChallenge(first.outcome.challenges[0], { username: 'francesco', password: '123456', method: 'REGISTER', uri: 'sip:10.1.10.163' });
  const second = await runLogic(service, '24', cdOf(sampleRegister({ Authorization: authorization, CSeq: '62651 REGISTER' })), rt.ctx);
  expect(second.outcome).toMatchObject({ kind: 'register', status: 200, bindings: [{ contact: 'sip:francesco@10.1.10.89:57806;ob', expires: 300 }] });
  expect(second.cd.vars.customer_name).toBe('Netaxis NL');

  const client = new MongoClient(mongoUrl());
  try {
    const docs = await client.db(mongoDb).collection('location').find({ username: 'francesco' }).toArray();
    expect(docs).toHaveLength(1);
    const { _id, ...doc } = docs[0];
    expect(_id).toBeDefined();
    expect(Object.keys(doc).sort()).toEqual([...KAMAILIO_LOCATION_KEYS].sort());
    expect(doc).toMatchObject({
      username: 'francesco',
      contact: 'sip:francesco@10.1.10.89:57806;ob',
      q: -1,
      callid: 'X-by3boX112NeNE11ay4K5dFUHXy3f3F',
      cseq: 62651,
      flags: 0,
      cflags: 0,
      user_agent: 'Telephone 1.0',
      path: null,
      instance: null,
      reg_id: 0,
      server_id: 0,
      connection_id: -1,
      keepalive: 0,
      partition: 0,
    });
    expect(doc.expires).toBeInstanceOf(Date);
    expect(doc.last_modified).toBeInstanceOf(Date);
    expect((doc.expires as Date).getTime() - (doc.last_modified as Date).getTime()).toBe(300_000);
    expect(String(doc.ruid)).toMatch(/^uloc-/);
    const versions = await client
      .db(mongoDb)
      .collection('version')
      .find({}, { projection: { _id: 0 } })
      .toArray();
    expect(versions).toEqual(
      expect.arrayContaining([
        { table_name: 'location', table_version: 9 },
        { table_name: 'location_attrs', table_version: 1 },
      ]),
    );
  } finally {
    await client.close();
  }
});
