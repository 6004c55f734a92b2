/** /simulate and /execute: the seed's three passes, dry runs, the execute contract, bad bodies. */
import { AUTH, answerChallenge, apiFixture, sampleRegister, type Fixture } from './support';

let f: Fixture;
beforeAll(async () => {
  f = await apiFixture({ location: 'sql' });
});
afterAll(async () => {
  await f.close();
});

const UA = { username: 'francesco', password: '123456', method: 'REGISTER', uri: 'sip:10.1.10.163' };
const post = (url: string, payload: unknown) => f.call({ method: 'POST', url, payload: payload as Record<string, unknown> });
const bindingsOf = async (aor: string) => (await f.call({ method: 'GET', url: `/api/v1/registrations?aor=${aor}` })).json();

describe('simulate the seed registration (three passes: challenge → credentials → register)', () => {
  test('dry run (default): challenge, then authenticate + restart + save, with the trace; nothing written', async () => {
    const first = await post('/api/v1/simulate', { flow: 'registration', logic: 'registration', cd: sampleRegister() });
    expect(first.statusCode).toBe(200);
    const a = first.json();
    expect(a.outcome).toMatchObject({ kind: 'challenge', status: 401, header: 'WWW-Authenticate', realm: 'nl.netaxis.be' });
    expect(a.dryRun).toBe(true);
    expect(a.logic).toEqual({ flow: 'registration', version: 1, id: '24', name: 'registration' });
    expect(a.trace.length).toBeGreaterThan(2);
    expect(a.trace[0]).toMatchObject({ step: 1, logic: '24', type: 'enter.start' });
    expect(a.trace[a.trace.length - 1].exit).toBe('challenge');
    expect(a.cd.callId).toBe('X-by3boX112NeNE11ay4K5dFUHXy3f3F');

    const authorization = answerChallenge(a.outcome.challenges[0], UA);
    const second = await post('/api/v1/simulate', {
      flow: 'registration',
      logic: '24',
      cd: sampleRegister({ CSeq: '62651 REGISTER', Authorization: authorization }),
    });
    expect(second.statusCode).toBe(200);
    const b = second.json();
    expect(b.outcome).toMatchObject({ kind: 'register', status: 200, reason: 'OK', aor: expect.stringContaining('francesco') });
    expect(b.outcome.bindings).toEqual([expect.objectContaining({ contact: 'sip:francesco@10.1.10.89:57806;ob', expires: 300 })]);
    expect(b.restarts).toBe(1);
    expect(b.trace.some((t: { exit: string }) => t.exit === 'restart')).toBe(true);
    expect(b.trace[b.trace.length - 1]).toMatchObject({ type: 'output.nit.registrar.saveLocationService', exit: 'register' });
    expect(b.cd.authStatus).toBe(1);
    expect(b.cd.customer_name).toBe('Netaxis NL');
    // dry run: the real location service has no binding
    expect((await bindingsOf('francesco')).total).toBe(0);
  });

  test('dryRun=false writes the binding for real; trace=false leaves the trace out', async () => {
    const first = (await post('/api/v1/simulate', { logic: 'registration', cd: sampleRegister({ 'Call-ID': 'sim-real-1' }), dryRun: false })).json();
    const authorization = answerChallenge(first.outcome.challenges[0], UA);
    const r = await post('/api/v1/simulate', {
      logic: 'registration',
      cd: sampleRegister({ 'Call-ID': 'sim-real-1', CSeq: '62651 REGISTER', Authorization: authorization }),
      dryRun: false,
      trace: false,
    });
    expect(r.statusCode).toBe(200);
    expect(r.json().outcome).toMatchObject({ kind: 'register', status: 200 });
    expect(r.json().trace).toBeUndefined();
    expect(r.json().dryRun).toBe(false);
    const list = await bindingsOf('francesco');
    expect(list.total).toBe(1);
    expect(list.rows[0]).toMatchObject({ aor: 'francesco', contact: 'sip:francesco@10.1.10.89:57806;ob', callid: 'sim-real-1' });
  });

  test('a dry run sees the real bindings but does not change them', async () => {
    const first = (await post('/api/v1/simulate', { logic: 'registration', cd: sampleRegister({ 'Call-ID': 'dry-2' }) })).json();
    const authorization = answerChallenge(first.outcome.challenges[0], UA);
    const r = (
      await post('/api/v1/simulate', {
        logic: 'registration',
        cd: sampleRegister({ 'Call-ID': 'dry-2', CSeq: '7 REGISTER', Authorization: authorization, Contact: '<sip:francesco@10.9.9.9:5060>' }),
      })
    ).json();
    expect(r.outcome.bindings.map((b: { contact: string }) => b.contact).sort()).toEqual(['sip:francesco@10.1.10.89:57806;ob', 'sip:francesco@10.9.9.9:5060']);
    expect((await bindingsOf('francesco')).total).toBe(1);
  });

  test('inline slid and development copies run too; unknown logic → 400 listing the logics', async () => {
    const slid = JSON.parse((await f.call({ method: 'GET', url: '/api/v1/flows/registration/export' })).body);
    const r = await post('/api/v1/simulate', { slid, logic: 'registration', cd: sampleRegister() });
    expect(r.json().outcome.kind).toBe('challenge');
    expect(r.json().logic).toMatchObject({ flow: null, id: '24' });
    const dev = await post('/api/v1/simulate', { flow: 'registration', version: 'development', logic: '24', cd: sampleRegister() });
    expect(dev.json().logic).toMatchObject({ flow: 'registration', version: 'development' });
    const nope = await post('/api/v1/simulate', { flow: 'registration', logic: 'nope', cd: sampleRegister() });
    expect(nope.statusCode).toBe(400);
    expect(nope.json().message).toBe('body/logic: no logic "nope" here (logics: 24 "registration")');
    const broken = await post('/api/v1/simulate', { slid: { 1: { name: 'x', nodes: {} } }, logic: 'x', cd: {} });
    expect(broken.statusCode).toBe(400);
    expect(broken.json().problems[0].text).toBe('slid › logic 1 "x": has no live enter.start node');
  });

  test('bad bodies → 400 naming the field', async () => {
    const cases: Array<[unknown, RegExp]> = [
      [{ cd: {} }, /^body\/logic: is required$/],
      [{ logic: 'x' }, /^body\/cd: is required$/],
      [{ logic: 'x', cd: {}, bogus: 1 }, /^body\/bogus: is not a known field$/],
      [{ logic: 'x', cd: { headers: 'From: x' } }, /^body\/cd\/headers: must be object$/],
      [{ logic: 'x', cd: { headers: { From: { a: 1 } } } }, /body\/cd\/headers\/From: must be string/],
      [{ logic: 'x', cd: {}, trace: 'sometimes' }, /^body\/trace: must be boolean$/],
      [{ logic: 'x', cd: {}, flow: 'a b' }, /^body\/flow: must match pattern/],
      [{ logic: 'x', cd: {}, flow: 'pbx', slid: {} }, /^body\/flow, body\/slid: give one of them/],
      [{ logic: 'x', cd: {}, version: 2 }, /^body\/version: needs body\/flow$/],
    ];
    for (const [payload, message] of cases) {
      const r = await post('/api/v1/simulate', payload);
      expect({ payload, status: r.statusCode }).toEqual({ payload, status: 400 });
      expect({ payload, message: r.json().message }).toEqual({ payload, message: expect.stringMatching(message) });
    }
    const notJson = await f.call({ method: 'POST', url: '/api/v1/simulate', payload: '{"logic":', headers: { 'content-type': 'application/json' } });
    expect(notJson.statusCode).toBe(400);
    expect(notJson.json().message).toMatch(/JSON/);
  });
});

describe('execute (the contract for an external SIP front end)', () => {
  test('REGISTER through the default logic (pbx): challenge, then 200 with the binding written', async () => {
    const first = await post('/api/v1/execute', { cd: sampleRegister({ 'Call-ID': 'exec-1', Contact: '<sip:francesco@10.1.10.90:5062>' }) });
    expect(first.statusCode).toBe(200);
    const a = first.json();
    expect(a.outcome).toMatchObject({ kind: 'challenge', status: 401 });
    expect(a.logic).toMatchObject({ flow: 'pbx', name: 'pbx' });
    expect(a.trace).toBeUndefined();
    const authorization = answerChallenge(a.outcome.challenges[0], UA);
    const b = (
      await post('/api/v1/execute', {
        cd: sampleRegister({ 'Call-ID': 'exec-1', CSeq: '62651 REGISTER', Authorization: authorization, Contact: '<sip:francesco@10.1.10.90:5062>' }),
      })
    ).json();
    expect(b.outcome).toMatchObject({ kind: 'register', status: 200 });
    expect(b.cd.authStatus).toBe(1);
    expect((await bindingsOf('francesco')).rows.map((r: { contact: string }) => r.contact)).toContain('sip:francesco@10.1.10.90:5062');
    const metrics = (await f.call({ method: 'GET', url: '/metrics' })).body;
    expect(metrics).toMatch(/sipflow_requests_total\{method="REGISTER",outcome="register",status="200"\} 1/);
    expect(metrics).toMatch(/sipflow_location_seconds_count\{op="register",result="ok"\} [1-9]/);
    expect(metrics).toMatch(/sipflow_directory_query_seconds_count\{result="ok"\} [1-9]/);
    expect(metrics).toMatch(/sipflow_bindings [1-9]/);
  });

  test('wrong credentials: challenged again and counted as a SIP auth failure; log lines carry the Call-ID', async () => {
    const a = (await post('/api/v1/execute', { cd: sampleRegister({ 'Call-ID': 'exec-bad-pw' }), logic: 'registration' })).json();
    const authorization = answerChallenge(a.outcome.challenges[0], { ...UA, password: 'wrong' });
    const b = (
      await post('/api/v1/execute', {
        cd: sampleRegister({ 'Call-ID': 'exec-bad-pw', CSeq: '62651 REGISTER', Authorization: authorization }),
        logic: 'registration',
      })
    ).json();
    expect(b.outcome.kind).toBe('challenge');
    expect((await f.call({ method: 'GET', url: '/metrics' })).body).toMatch(/sipflow_auth_failures_total\{kind="sip"\} 1/);
    const lines = f.logs.map((l) => JSON.parse(l)).filter((l) => l.callId === 'exec-bad-pw');
    expect(lines.length).toBeGreaterThan(0);
    expect(f.logs.join('')).not.toContain('response=');
  });

  test('explicit logic by flow/logic; an unknown logic → 404; a bad cd → 400', async () => {
    const r = await post('/api/v1/execute', { cd: sampleRegister(), logic: 'registration/24' });
    expect(r.json().logic).toMatchObject({ flow: 'registration', id: '24' });
    const nf = await post('/api/v1/execute', { cd: {}, logic: 'nope' });
    expect(nf.statusCode).toBe(404);
    expect(nf.json().message).toMatch(/no active logic "nope"/);
    const bad = await post('/api/v1/execute', { cd: { callId: { nested: true } } });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().message).toMatch(/^body\/cd\/callId: /);
    const missing = await f.app.inject({ method: 'POST', url: '/api/v1/execute', headers: AUTH });
    expect(missing.statusCode).toBe(400);
  });
});

describe('simulate and the instance cache (action.cacheSet, query.cacheGet)', () => {
  /** Sets `sim:route` when `set` is given (a literal: the node's value), then reads it back into `got`. */
  const slid = (set: string | null) => ({
    7: {
      name: 'cache',
      nodes: {
        0: { id: 0, name: 'Start', type: 'enter.start', values: { next: set === null ? 2 : 1 } },
        1: { id: 1, name: 'set', type: 'action.cacheSet', values: { key: 'sim:route', value: set ?? '', ttlSec: 60, next: 2 } },
        2: { id: 2, name: 'get', type: 'query.cacheGet', values: { key: 'sim:route', storeInto: 'got', ifFound: 3, ifNotFound: 4 } },
        3: { id: 3, name: 'found', type: 'output.reply', values: { code: 200, reason: 'found [got]' } },
        4: { id: 4, name: 'not found', type: 'output.reply', values: { code: 404 } },
      },
    },
  });
  const sim = async (set: string | null, dryRun?: boolean) =>
    (await post('/api/v1/simulate', { slid: slid(set), logic: 'cache', cd: sampleRegister(), ...(dryRun === undefined ? {} : { dryRun }) })).json().outcome;

  test('a dry run reads its own sets, but never writes the instance cache that live calls read; dryRun=false does', async () => {
    expect(await sim('dry')).toMatchObject({ status: 200, reason: 'found dry' });
    expect(await sim(null)).toMatchObject({ status: 404 });
    expect(await sim('real', false)).toMatchObject({ status: 200, reason: 'found real' });
    expect(await sim(null)).toMatchObject({ status: 200, reason: 'found real' });
    // a dry run over a live value sees its own value, and the live one stays
    expect(await sim('dry again')).toMatchObject({ status: 200, reason: 'found dry again' });
    expect(await sim(null, false)).toMatchObject({ status: 200, reason: 'found real' });
  });
});
