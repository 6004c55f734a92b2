/** Registrations (bindings): list, search by AoR, delete by ruid; over the SQL and the in-memory location stores. */
import { apiFixture, answerChallenge, sampleRegister, type Fixture } from './support';

const UA = { username: 'francesco', password: '123456', method: 'REGISTER', uri: 'sip:10.1.10.163' };

async function register(f: Fixture, callId: string, contact: string) {
  const a = (await f.call({ method: 'POST', url: '/api/v1/execute', payload: { cd: sampleRegister({ 'Call-ID': callId, Contact: contact }) } })).json();
  const authorization = answerChallenge(a.outcome.challenges[0], UA);
  const b = (
    await f.call({
      method: 'POST',
      url: '/api/v1/execute',
      payload: { cd: sampleRegister({ 'Call-ID': callId, CSeq: '62651 REGISTER', Authorization: authorization, Contact: contact }) },
    })
  ).json();
  expect(b.outcome).toMatchObject({ kind: 'register', status: 200 });
}

describe.each(['sql', 'memory'] as const)('over the %s location store', (location) => {
  let f: Fixture;
  beforeAll(async () => {
    f = await apiFixture({ location });
  });
  afterAll(async () => {
    await f.close();
  });

  test('list, search by AoR and username, page, delete by ruid', async () => {
    await register(f, 'reg-a', '<sip:francesco@10.0.0.1:5060>');
    await register(f, 'reg-b', '<sip:francesco@10.0.0.2:5060>;expires=120');

    const all = await f.call({ method: 'GET', url: '/api/v1/registrations' });
    expect(all.statusCode).toBe(200);
    const body = all.json();
    expect(body).toMatchObject({ total: 2, limit: 100, offset: 0 });
    const b = body.rows.find((r: { contact: string }) => r.contact === 'sip:francesco@10.0.0.2:5060');
    expect(b).toMatchObject({ aor: 'francesco', username: 'francesco', domain: null, callid: 'reg-b', cseq: 62651, user_agent: 'Telephone 1.0' });
    expect(b.expiresIn).toBeGreaterThan(100);
    expect(b.expiresIn).toBeLessThanOrEqual(120);
    expect(new Date(b.expires).getTime()).toBeGreaterThan(Date.now());

    expect((await f.call({ method: 'GET', url: '/api/v1/registrations?aor=francesco@nl.netaxis.be' })).json().total).toBe(2);
    expect((await f.call({ method: 'GET', url: '/api/v1/registrations?aor=sip:francesco' })).json().total).toBe(2);
    expect((await f.call({ method: 'GET', url: '/api/v1/registrations?aor=franc' })).json().total).toBe(0);
    expect((await f.call({ method: 'GET', url: '/api/v1/registrations?search=RANC' })).json().total).toBe(2);
    const page = (await f.call({ method: 'GET', url: '/api/v1/registrations?limit=1&offset=1' })).json();
    expect(page.rows).toHaveLength(1);
    expect(page.total).toBe(2);

    const del = await f.call({ method: 'DELETE', url: `/api/v1/registrations/${encodeURIComponent(b.ruid)}` });
    expect(del.statusCode).toBe(204);
    const left = (await f.call({ method: 'GET', url: '/api/v1/registrations' })).json();
    expect(left.rows.map((r: { contact: string }) => r.contact)).toEqual(['sip:francesco@10.0.0.1:5060']);
    const again = await f.call({ method: 'DELETE', url: `/api/v1/registrations/${encodeURIComponent(b.ruid)}` });
    expect(again.statusCode).toBe(404);
    expect(again.json().message).toBe(`no binding with ruid "${b.ruid}"`);
    expect((await f.call({ method: 'GET', url: '/metrics' })).body).toMatch(/\nsipflow_bindings [12]\n/);
  });

  test('bad query → 400 naming the parameter', async () => {
    const r = await f.call({ method: 'GET', url: '/api/v1/registrations?limit=0' });
    expect(r.statusCode).toBe(400);
    expect(r.json().message).toBe('querystring/limit: must be >= 1');
    expect((await f.call({ method: 'GET', url: '/api/v1/registrations?user=x' })).json().message).toBe('querystring/user: is not a known field');
  });
});
