/** The same API over a real socket (app.listen on port 0 + fetch), and the MongoDB bindings admin. */
import type { AddressInfo } from 'net';
import { createLocationAdmin } from '../../../server/http';
import { createMongoLocationStore } from '../../../services/location/mongo';
import type { Binding } from '../../../services/location/types';
import { AUTH, FLOWS_DIR, apiFixture, sampleRegister, type Fixture } from './support';
import { readFileSync } from 'fs';
import path from 'path';

describe('over real HTTP', () => {
  let f: Fixture;
  let base: string;
  beforeAll(async () => {
    f = await apiFixture();
    await f.app.listen({ port: 0, host: '127.0.0.1' });
    base = `http://127.0.0.1:${(f.app.server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await f.close();
  });

  test('health without a token; 401 + WWW-Authenticate without one elsewhere', async () => {
    expect((await fetch(`${base}/health/live`)).status).toBe(200);
    const r = await fetch(`${base}/api/v1/flows`);
    expect(r.status).toBe(401);
    expect(r.headers.get('www-authenticate')).toBe('Bearer realm="sipflow"');
  });

  test('execute over HTTP answers the challenge for a REGISTER', async () => {
    const r = await fetch(`${base}/api/v1/execute`, {
      method: 'POST',
      headers: { ...AUTH, 'content-type': 'application/json' },
      body: JSON.stringify({ cd: sampleRegister(), logic: 'registration' }),
    });
    expect(r.status).toBe(200);
    const body = (await r.json()) as { outcome: { kind: string; status: number } };
    expect(body.outcome).toMatchObject({ kind: 'challenge', status: 401 });
  });

  test('export downloads the seed byte for byte; import over HTTP keeps the bytes', async () => {
    const seedText = readFileSync(path.join(FLOWS_DIR, 'registration.slid'), 'utf8');
    const r = await fetch(`${base}/api/v1/flows/registration/export`, { headers: AUTH });
    expect(r.headers.get('content-disposition')).toBe('attachment; filename="registration-v1.slid"');
    expect(await r.text()).toBe(seedText);
    const text = seedText.replace(/\n/g, '\r\n');
    const imp = await fetch(`${base}/api/v1/flows/import?name=crlf`, { method: 'POST', headers: { ...AUTH, 'content-type': 'text/plain' }, body: text });
    expect(imp.status).toBe(201);
    const back = await fetch(`${base}/api/v1/flows/crlf/export?version=development`, { headers: AUTH });
    expect(await back.text()).toBe(text);
  });

  test('a bad JSON body is a 400 naming the field', async () => {
    const r = await fetch(`${base}/api/v1/customers`, {
      method: 'POST',
      headers: { ...AUTH, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 42, aor: [] }),
    });
    expect(r.status).toBe(400);
    const body = (await r.json()) as { message: string };
    expect(body.message).toMatch(/body\/aor: must be string or null/);
  });
});

describe('MongoDB bindings admin (Kamailio db_mongodb layout)', () => {
  test('lists, counts and deletes what the Mongo store wrote', async () => {
    const url = process.env.MONGODB_URL!;
    const collection = `location_api_${process.pid}_${Date.now()}`;
    const store = createMongoLocationStore({ url, database: 'sipflow_api_test', collection, writeConcern: { w: 1 } });
    const admin = createLocationAdmin(store);
    const now = new Date();
    const binding = (ruid: string, username: string, secs: number): Binding => ({
      ruid,
      username,
      domain: null,
      contact: `sip:${username}@10.0.0.1`,
      received: null,
      path: null,
      expires: new Date(now.getTime() + secs * 1000),
      q: -1,
      callid: 'c',
      cseq: 1,
      last_modified: now,
      flags: 0,
      cflags: 0,
      user_agent: 'ua',
      socket: null,
      methods: null,
      instance: null,
      reg_id: 0,
      server_id: 0,
      connection_id: -1,
      keepalive: 0,
      partition: 0,
    });
    try {
      await store.upsert(binding('r1', 'alice', 60));
      await store.upsert(binding('r2', 'bob', 60));
      await store.upsert(binding('r3', 'alice', -60)); // expired
      expect(await admin.count(now)).toBe(2);
      const live = await admin.list({ aor: 'alice', limit: 10, offset: 0, now });
      expect(live.rows.map((b) => b.ruid)).toEqual(['r1']);
      expect((await admin.list({ aor: 'alice', limit: 10, offset: 0, now, expired: true })).total).toBe(2);
      expect((await admin.list({ search: 'LI', limit: 10, offset: 0, now })).rows.map((b) => b.username)).toEqual(['alice']);
      expect(await admin.remove('r2')).toBe(true);
      expect(await admin.remove('r2')).toBe(false);
      expect(await admin.count(now)).toBe(1);
    } finally {
      await store.remove(['r1', 'r2', 'r3']).catch(() => undefined);
      await store.close();
    }
  });
});
