/**
 * Issue 15, accounting: GET /api/v1/cdrs and /api/v1/cdrs.csv over a real runtime (PGlite) —
 * the bearer token required (401 without), filters, paging, CSV quoting and the formula guard,
 * a bad query answered 400 naming the field, both routes in the OpenAPI document.
 */
import { databaseSink, type CdrRecord } from '../../../services/accounting';
import { apiFixture, type Fixture } from './support';

const T0 = Date.UTC(2026, 11, 3, 12, 0, 0);
const EVIL = '"Evil, Inc"\r\n=cmd|\' /C calc\'!A0';

const record = (i: number, over: Partial<CdrRecord> = {}): CdrRecord => ({
  kind: 'stop',
  callId: `call-${i}`,
  at: T0 + i * 1000 + 60_000,
  setupAt: T0 + i * 1000,
  connectAt: T0 + i * 1000 + 500,
  endAt: T0 + i * 1000 + 60_000,
  duration: 59.5,
  calling: `+3225550${i}`,
  called: '+3225559999',
  source: '192.0.2.7:5060',
  destination: 'sip:gw1.example.com',
  status: 200,
  reason: 'OK',
  logic: 'route',
  variables: { customer: i % 2 === 0 ? 'acme' : 'globex' },
  fields: {},
  ...over,
});

let f: Fixture;
beforeAll(async () => {
  f = await apiFixture({ config: { accounting: { enabled: true, variables: ['customer'] } } });
  await databaseSink(f.runtime.knex).write([
    record(1),
    record(2),
    record(3, { kind: 'reject', connectAt: null, duration: null, status: 486, reason: 'Busy Here', calling: EVIL, fields: { note: '=1+1' } }),
    record(4, { kind: 'reject', connectAt: null, duration: null, status: 487, reason: 'Request Terminated' }),
  ]);
}, 60_000);
afterAll(async () => {
  await f?.close();
});

const get = async (url: string) => {
  const r = await f.call({ method: 'GET', url });
  return { status: r.statusCode, json: r.statusCode < 300 && url.includes('.csv') ? null : r.json(), text: r.body, headers: r.headers };
};
const callIds = async (query: string) => ((await get(`/api/v1/cdrs?${query}`)).json as { rows: Array<{ callId: string }> }).rows.map((r) => r.callId);

test('without the bearer token: 401 on both routes', async () => {
  for (const url of ['/api/v1/cdrs', '/api/v1/cdrs.csv']) {
    const r = await f.app.inject({ method: 'GET', url });
    expect(r.statusCode).toBe(401);
    const bad = await f.app.inject({ method: 'GET', url, headers: { authorization: 'Bearer wrong' } });
    expect(bad.statusCode).toBe(401);
  }
});

test('search: newest first, filters on time, number, customer, outcome, code, kind, Call-ID; paging', async () => {
  const all = await get('/api/v1/cdrs');
  expect(all.status).toBe(200);
  expect(all.json).toMatchObject({ total: 4, limit: 100, offset: 0 });
  expect(all.json.rows.map((r: { callId: string }) => r.callId)).toEqual(['call-4', 'call-3', 'call-2', 'call-1']);
  expect(all.json.rows[3]).toEqual({
    id: expect.any(Number),
    kind: 'stop',
    callId: 'call-1',
    at: new Date(T0 + 61_000).toISOString(),
    setupAt: new Date(T0 + 1000).toISOString(),
    connectAt: new Date(T0 + 1500).toISOString(),
    endAt: new Date(T0 + 61_000).toISOString(),
    duration: 59.5,
    calling: '+32255501',
    called: '+3225559999',
    source: '192.0.2.7:5060',
    destination: 'sip:gw1.example.com',
    status: 200,
    reason: 'OK',
    logic: 'route',
    variables: { customer: 'globex' },
    fields: {},
  });
  expect(await callIds(`from=${encodeURIComponent(new Date(T0 + 2000).toISOString())}&to=${encodeURIComponent(new Date(T0 + 4000).toISOString())}`)).toEqual([
    'call-3',
    'call-2',
  ]);
  expect(await callIds('number=%2B32255502')).toEqual(['call-2']);
  expect(await callIds('customer=acme')).toEqual(['call-4', 'call-2']);
  expect(await callIds('outcome=answered')).toEqual(['call-2', 'call-1']);
  expect(await callIds('outcome=rejected')).toEqual(['call-3']);
  expect(await callIds('outcome=cancelled')).toEqual(['call-4']);
  expect(await callIds('outcome=486')).toEqual(['call-3']);
  expect(await callIds('kind=stop&customer=globex')).toEqual(['call-1']);
  expect(await callIds('callId=call-2')).toEqual(['call-2']);
  const p2 = await get('/api/v1/cdrs?limit=2&offset=2');
  expect(p2.json).toMatchObject({ total: 4, limit: 2, offset: 2 });
  expect(p2.json.rows.map((r: { callId: string }) => r.callId)).toEqual(['call-2', 'call-1']);
  expect((await get('/api/v1/cdrs?callId=call-3')).json.rows[0]).toMatchObject({ calling: EVIL, fields: { note: '=1+1' } });
});

test('CSV: the same filters, RFC 4180 quoting, formula cells prefixed with a quote', async () => {
  const r = await get('/api/v1/cdrs.csv?outcome=rejected');
  expect(r.status).toBe(200);
  expect(r.headers['content-type']).toMatch(/^text\/csv/);
  const lines = r.text.split('\r\n');
  expect(lines[0]).toBe(
    'id,kind,callId,at,setupAt,connectAt,endAt,duration,calling,called,source,destination,status,reason,logic,variables.customer,fields.note',
  );
  expect(r.text).toContain(`,reject,call-3,`);
  expect(r.text).toContain(`,"""Evil, Inc""\r\n=cmd|' /C calc'!A0",'+3225559999,192.0.2.7:5060,`);
  expect(r.text).toContain(`,486,Busy Here,route,globex,'=1+1\r\n`);
  expect(r.text).not.toContain('call-1');
  const all = await get('/api/v1/cdrs.csv');
  expect(all.text.trim().split('\r\n').length).toBeGreaterThanOrEqual(5);
});

test('a bad query → 400 naming the field', async () => {
  for (const [query, field] of [
    ['outcome=bogus', 'outcome'],
    ['from=yesterday', 'from'],
    ['limit=0', 'limit'],
    ['limit=5000', 'limit'],
    ['kind=other', 'kind'],
    ['unknown=1', 'unknown'],
    [`number=${'9'.repeat(300)}`, 'number'],
  ]) {
    const r = await get(`/api/v1/cdrs?${query}`);
    expect(r.status).toBe(400);
    expect(r.json.message).toContain(`querystring/${field}`);
  }
  const csv = await f.call({ method: 'GET', url: '/api/v1/cdrs.csv?outcome=700' });
  expect(csv.statusCode).toBe(400);
  expect(csv.json().message).toContain('querystring/outcome');
});

test('both routes are in the OpenAPI document', async () => {
  const doc = (await get('/api/openapi.json')).json as { paths: Record<string, unknown> };
  expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/api/v1/cdrs', '/api/v1/cdrs.csv']));
});
