import { runLogic } from '../../../engine/run';
import { ha1 } from '../../../services/auth';
import { LocationUnavailableError, type LocationPort } from '../../../services/location/types';
import { testContext } from '../../support/context';
import { answerChallenge, sampleRegister } from '../../support/sip';
import { cdOf, compile, docOf, reply, runNodes, setVars, start, type NodeSpec } from './helpers';

// ---------------------------------------------------------------- authenticate

/** start → authStatus is 1 ? 200 : (password := … → authenticate). */
function authLogic(password: string, ha1Flag: unknown = '') {
  return compile(
    docOf([
      start(1),
      [1, 'analysis.sequentialConditions', { conditions: [{ variable: 'authStatus', operator: 'is', value: '1', ifTrue: 9 }], fallback: 2 }],
      setVars(2, [{ variable: 'password', value: password }], 3),
      [3, 'output.nit.registrar.authenticate', { password: 'password', ha1: ha1Flag }],
      reply(9, 200, 'authenticated'),
    ]),
  );
}

const invite = (headers: Record<string, string> = {}) => ({
  requestMethod: 'INVITE',
  requestURI: 'sip:200@nl.netaxis.be',
  headers: {
    From: '<sip:francesco@nl.netaxis.be>;tag=1',
    To: '<sip:200@nl.netaxis.be>',
    'Call-ID': 'inv-1',
    CSeq: '1 INVITE',
    ...headers,
  },
});

describe('output.nit.registrar.authenticate', () => {
  test('REGISTER without credentials → 401 WWW-Authenticate in the From host realm', async () => {
    const r = await runLogic(authLogic('123456'), '1', cdOf(sampleRegister()), testContext());
    expect(r.outcome).toMatchObject({ kind: 'challenge', status: 401, header: 'WWW-Authenticate', realm: 'nl.netaxis.be', stale: false, algorithm: 'MD5' });
    if (r.outcome.kind !== 'challenge') throw new Error('unreachable');
    expect(r.outcome.challenges).toEqual([`Digest realm="nl.netaxis.be", nonce="${r.outcome.nonce}", qop="auth", algorithm=MD5`]);
  });

  test('INVITE without credentials → 407 Proxy-Authenticate', async () => {
    const r = await runLogic(authLogic('123456'), '1', cdOf(invite()), testContext());
    expect(r.outcome).toMatchObject({ kind: 'challenge', status: 407, header: 'Proxy-Authenticate', realm: 'nl.netaxis.be' });
  });

  test('the realm is ctx.realm when configured', async () => {
    const r = await runLogic(authLogic('123456'), '1', cdOf(sampleRegister()), testContext({ realm: 'sip.example.com' }));
    expect(r.outcome).toMatchObject({ kind: 'challenge', realm: 'sip.example.com' });
  });

  async function challengeThenAnswer(
    input: (h: Record<string, string>) => Record<string, unknown>,
    header: string,
    o: { password?: string; storedPassword?: string; ha1Flag?: unknown; realm?: string } = {},
  ) {
    const ctx = testContext({ realm: o.realm });
    const service = authLogic(o.storedPassword ?? '123456', o.ha1Flag);
    const first = await runLogic(service, '1', cdOf(input({})), ctx);
    if (first.outcome.kind !== 'challenge') throw new Error('expected a challenge');
    const method = String((input({}) as { requestMethod: string }).requestMethod);
    const uri = String((input({}) as { requestURI: string }).requestURI);
    const value = answerChallenge(first.outcome.challenges[0], { username: 'francesco', password: o.password ?? '123456', method, uri });
    return runLogic(service, '1', cdOf(input({ [header]: value })), ctx, { trace: true });
  }

  test('REGISTER with a valid Authorization: authStatus 1 and a restart', async () => {
    const r = await challengeThenAnswer((h) => sampleRegister(h), 'Authorization');
    expect(r.outcome).toEqual({ kind: 'reply', status: 200, reason: 'authenticated' });
    expect(r.restarts).toBe(1);
    expect(r.cd.vars.authStatus).toBe(1);
    expect(r.trace!.find((t) => t.exit === 'restart')).toMatchObject({ nodeId: '3', set: { authStatus: 1 } });
  });

  test('INVITE with a valid Proxy-Authorization passes; the same credentials in Authorization do not', async () => {
    const ok = await challengeThenAnswer((h) => invite(h), 'Proxy-Authorization');
    expect(ok.outcome).toMatchObject({ status: 200 });
    const wrongHeader = await challengeThenAnswer((h) => invite(h), 'Authorization');
    expect(wrongHeader.outcome).toMatchObject({ kind: 'challenge', status: 407 });
    expect(wrongHeader.cd.vars.authStatus).toBe(0);
  });

  test('REGISTER credentials in Proxy-Authorization are not used', async () => {
    const r = await challengeThenAnswer((h) => sampleRegister(h), 'Proxy-Authorization');
    expect(r.outcome).toMatchObject({ kind: 'challenge', status: 401 });
  });

  test('a wrong password is challenged again', async () => {
    const r = await challengeThenAnswer((h) => sampleRegister(h), 'Authorization', { password: 'nope' });
    expect(r.outcome).toMatchObject({ kind: 'challenge', status: 401, stale: false });
    expect(r.restarts).toBe(0);
  });

  test('with the ha1 flag the stored password is an HA1', async () => {
    const stored = ha1('MD5', 'francesco', 'nl.netaxis.be', '123456');
    for (const flag of [true, 'true', '1', 1]) {
      const r = await challengeThenAnswer((h) => sampleRegister(h), 'Authorization', { storedPassword: stored, ha1Flag: flag });
      expect(r.outcome).toMatchObject({ status: 200 });
    }
    const clear = await challengeThenAnswer((h) => sampleRegister(h), 'Authorization', { storedPassword: stored, ha1Flag: '' });
    expect(clear.outcome).toMatchObject({ kind: 'challenge' });
  });

  test('credentials for another realm are challenged in the configured realm', async () => {
    const ctx = testContext();
    const service = authLogic('123456');
    const other = testContext({ realm: 'elsewhere.example' });
    const first = await runLogic(service, '1', cdOf(sampleRegister()), other);
    if (first.outcome.kind !== 'challenge') throw new Error('expected a challenge');
    const value = answerChallenge(first.outcome.challenges[0], { username: 'francesco', password: '123456', method: 'REGISTER', uri: 'sip:10.1.10.163' });
    const r = await runLogic(service, '1', cdOf(sampleRegister({ Authorization: value })), ctx);
    expect(r.outcome).toMatchObject({ kind: 'challenge', realm: 'nl.netaxis.be' });
  });

  test('a missing password variable is a challenge, never a pass', async () => {
    const r = await runNodes([start(1), [1, 'output.nit.registrar.authenticate', { password: 'authUsername' }]], sampleRegister());
    expect(r.outcome).toMatchObject({ kind: 'challenge', status: 401 });
  });
});

// ---------------------------------------------------------------- save location

const saveLogic = (): NodeSpec[] => [start(1), [1, 'output.nit.registrar.saveLocationService', {}]];

describe('output.nit.registrar.saveLocationService', () => {
  test('REGISTER → 200 with the bindings of the To user', async () => {
    const ctx = testContext();
    const r = await runNodes(saveLogic(), sampleRegister(), ctx);
    expect(r.outcome).toEqual({
      kind: 'register',
      status: 200,
      reason: 'OK',
      aor: 'francesco',
      bindings: [{ contact: 'sip:francesco@10.1.10.89:57806;ob', expires: 300, q: -1 }],
    });
    const [b] = await ctx.location.lookup('francesco', null, new Date(ctx.clock.now()));
    expect(b).toMatchObject({ callid: 'X-by3boX112NeNE11ay4K5dFUHXy3f3F', cseq: 62650, user_agent: 'Telephone 1.0', socket: 'udp:10.1.10.163:5060' });
  });

  test('Contact * with Expires 0 removes every binding', async () => {
    const ctx = testContext();
    await runNodes(saveLogic(), sampleRegister(), ctx);
    const r = await runNodes(saveLogic(), sampleRegister({ Contact: '*', Expires: '0', CSeq: '62651 REGISTER' }), ctx);
    expect(r.outcome).toMatchObject({ kind: 'register', status: 200, bindings: [] });
    expect(await ctx.location.lookup('francesco', null, new Date(ctx.clock.now()))).toEqual([]);
  });

  test('a REGISTER without Contact lists the current bindings', async () => {
    const ctx = testContext();
    await runNodes(saveLogic(), sampleRegister(), ctx);
    ctx.clockMs.value += 100_000;
    const input = sampleRegister({ CSeq: '62652 REGISTER' }) as { headers: Record<string, string> };
    delete input.headers.Contact;
    const r = await runNodes(saveLogic(), input, ctx);
    expect(r.outcome).toMatchObject({ status: 200, bindings: [{ contact: 'sip:francesco@10.1.10.89:57806;ob', expires: 200 }] });
  });

  test('the AoR may come from another variable', async () => {
    const r = await runNodes([start(1), [1, 'output.nit.registrar.saveLocationService', { aor: 'authUsername' }]], {
      ...sampleRegister(),
      authUsername: 'alice',
    });
    expect(r.outcome).toMatchObject({ kind: 'register', status: 200, aor: 'alice' });
  });

  test('a location port that throws LocationUnavailableError → error 503 with its retryAfter', async () => {
    const down: LocationPort = {
      register: async () => {
        throw new LocationUnavailableError('mongodb down', 7);
      },
      lookup: async () => {
        throw new LocationUnavailableError('mongodb down', 7);
      },
    };
    const r = await runNodes(saveLogic(), sampleRegister(), testContext({ location: down }));
    expect(r.outcome).toEqual({ kind: 'error', status: 503, reason: 'Service Unavailable', retryAfter: 7, where: 'logic 1 "test" › node 1 "n1"' });
  });
});

// ---------------------------------------------------------------- lookup location

describe('output.nit.registrar.lookupLocationService', () => {
  async function registered() {
    const ctx = testContext();
    const r = await runNodes(
      saveLogic(),
      sampleRegister({ Contact: '<sip:francesco@10.0.0.1:5060>;q=0.5, <sip:francesco@10.0.0.2:5060>;q=1.0, <sip:francesco@10.0.0.3:5060>;q=0.7' }),
      ctx,
    );
    expect(r.outcome).toMatchObject({ status: 200 });
    return ctx;
  }
  const call = (to = 'francesco') => ({
    requestMethod: 'INVITE',
    requestURI: `sip:${to}@nl.netaxis.be`,
    headers: { From: '<sip:bob@x>;tag=1', To: `<sip:${to}@nl.netaxis.be>`, CSeq: '1 INVITE' },
  });

  test('relays to the bindings of the Request-URI user, highest q first', async () => {
    const ctx = await registered();
    const r = await runNodes([start(1), [1, 'output.nit.registrar.lookupLocationService', {}]], call(), ctx);
    if (r.outcome.kind !== 'relay') throw new Error(`expected relay, got ${JSON.stringify(r.outcome)}`);
    expect(r.outcome.targets.map((t) => [t.uri, t.q])).toEqual([
      ['sip:francesco@10.0.0.2:5060', 1],
      ['sip:francesco@10.0.0.3:5060', 0.7],
      ['sip:francesco@10.0.0.1:5060', 0.5],
    ]);
    expect(r.outcome.targets[0]).toMatchObject({ path: null });
  });

  test('the AoR may be given (user@domain, sip: URI or a variable)', async () => {
    const ctx = await registered();
    for (const aor of ['francesco@nl.netaxis.be', 'sip:francesco@nl.netaxis.be', 'toUsername']) {
      const r = await runNodes([start(1), [1, 'output.nit.registrar.lookupLocationService', { aor }]], call('nobody'), ctx);
      expect({ aor, kind: r.outcome.kind }).toEqual({ aor, kind: aor === 'toUsername' ? 'reply' : 'relay' });
    }
  });

  test('not registered: the ifNotFound exit when set, else 404 (or the configured code)', async () => {
    const ctx = await registered();
    const withExit = await runNodes(
      [start(1), [1, 'output.nit.registrar.lookupLocationService', { ifNotFound: 2 }], reply(2, 486, 'voicemail later')],
      call('nobody'),
      ctx,
    );
    expect(withExit.outcome).toEqual({ kind: 'reply', status: 486, reason: 'voicemail later' });
    const bare = await runNodes([start(1), [1, 'output.nit.registrar.lookupLocationService', {}]], call('nobody'), ctx);
    expect(bare.outcome).toEqual({ kind: 'reply', status: 404, reason: 'Not Found' });
    const coded = await runNodes([start(1), [1, 'output.nit.registrar.lookupLocationService', { notFoundCode: 480 }]], call('nobody'), ctx);
    expect(coded.outcome).toEqual({ kind: 'reply', status: 480, reason: 'Temporarily Unavailable' });
  });

  test('expired bindings are not found', async () => {
    const ctx = await registered();
    ctx.clockMs.value += 301_000;
    const r = await runNodes([start(1), [1, 'output.nit.registrar.lookupLocationService', {}]], call(), ctx);
    expect(r.outcome).toEqual({ kind: 'reply', status: 404, reason: 'Not Found' });
  });

  test('a location store that is down → 503', async () => {
    const down: LocationPort = {
      register: async () => {
        throw new LocationUnavailableError('down');
      },
      lookup: async () => {
        throw new LocationUnavailableError('down');
      },
    };
    const r = await runNodes([start(1), [1, 'output.nit.registrar.lookupLocationService', {}]], call(), testContext({ location: down }));
    expect(r.outcome).toMatchObject({ kind: 'error', status: 503, retryAfter: 5 });
  });
});
