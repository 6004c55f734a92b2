/**
 * action.jwt (jose v5) and the instance cache (action.cacheSet, query.cacheGet, services/cache):
 * signatures, the run clock for exp / nbf, refused algorithms, keys that never reach a trace or
 * an API answer; TTLs on a controllable clock, size caps, keys built from a SIP sender's values.
 */
import { generateKeyPairSync } from 'node:crypto';
import { redactTrace } from '../../../engine/secrets';
import { runLogic } from '../../../engine/run';
import { createInstanceCache } from '../../../services/cache';
import { testContext } from '../../support/context';
import { cdOf, compile, docOf, reply, setVars, start, type NodeSpec } from '../engine/helpers';

const SECRET = 'a-shared-secret-of-at-least-32-bytes!';
const NOW = Date.UTC(2026, 0, 1, 12, 0, 0);

/** start → key into `jwtKey` → sign (claims, 60 s) into `token` → verify into sub/tenant → 200; ifInvalid → 401. */
function signThenVerify(sign: Record<string, unknown>, verify: Record<string, unknown>): NodeSpec[] {
  return [
    start(1),
    setVars(
      1,
      ['jwtKey', 'verifyKey', 'token', 'oldToken'].map((variable) => ({ variable, onlyIfNotSet: true })),
      2,
    ),
    [
      2,
      'action.jwt',
      {
        operation: 'sign',
        key: 'jwtKey',
        claims: [
          { name: 'sub', value: '[calling]' },
          { name: 'n', value: 7 },
        ],
        tokenInto: 'token',
        errorInto: 'err',
        next: 3,
        ifInvalid: 9,
        ...sign,
      },
    ],
    [
      3,
      'action.jwt',
      {
        operation: 'verify',
        key: 'jwtKey',
        token: 'token',
        storeClaims: [
          { claim: 'sub', variable: 'sub' },
          { claim: 'n', variable: 'n' },
          { claim: 'none', variable: 'none' },
        ],
        errorInto: 'err',
        next: 4,
        ifInvalid: 9,
        ...verify,
      },
    ],
    reply(4, 200),
    reply(9, 401, '[err]'),
  ];
}

async function run(nodes: NodeSpec[], input: Record<string, unknown>, now = NOW) {
  const service = compile(docOf(nodes));
  const ctx = testContext();
  ctx.clockMs.value = now;
  return { service, result: await runLogic(service, '1', cdOf(input), ctx, { trace: true }) };
}

describe('action.jwt', () => {
  test('HS256: signs claims with iat (and exp) from the run clock; verifies and writes the claims', async () => {
    const { result } = await run(signThenVerify({ expiresInSec: 60, issuer: 'sipflow' }, { issuer: 'sipflow' }), { jwtKey: SECRET, calling: '3212345' });
    expect(result.outcome).toMatchObject({ kind: 'reply', status: 200 });
    expect(result.cd.vars).toMatchObject({ sub: '3212345', n: 7, none: null });
    const [, payload] = String(result.cd.vars.token).split('.');
    expect(JSON.parse(Buffer.from(payload, 'base64url').toString())).toEqual({ sub: '3212345', n: 7, iat: NOW / 1000, exp: NOW / 1000 + 60, iss: 'sipflow' });
  });

  test('verify: expired or not yet valid by the run clock, wrong issuer or audience, wrong secret → ifInvalid with the reason', async () => {
    // a token signed an hour ago with 60 s of life
    const signed = await run(signThenVerify({ expiresInSec: 60 }, {}), { jwtKey: SECRET, calling: '1' }, NOW - 3600_000);
    const token = signed.result.cd.vars.token;
    const verifyOnly = (verify: Record<string, unknown>, input: Record<string, unknown>, now = NOW) =>
      run(signThenVerify({}, verify), { jwtKey: SECRET, calling: '1', ...input }, now).then((r) => r.result);
    // node 2 signs a fresh token first: verify the old one by giving node 3 another token variable
    const old = (verify: Record<string, unknown>, now = NOW) => verifyOnly({ token: 'oldToken', ...verify }, { oldToken: token }, now);
    const refused = async (r: Awaited<ReturnType<typeof old>>) => {
      expect(r.outcome).toMatchObject({ kind: 'reply', status: 401 });
      return String(r.cd.vars.err);
    };
    expect(await refused(await old({}))).toBe('ERR_JWT_EXPIRED: "exp" claim timestamp check failed');
    expect((await old({}, NOW - 3600_000 + 30_000)).outcome).toMatchObject({ status: 200 });
    expect((await old({ clockToleranceSec: 3600 })).outcome).toMatchObject({ status: 200 });
    expect(await refused(await old({ issuer: 'someone' }, NOW - 3600_000))).toBe('ERR_JWT_CLAIM_VALIDATION_FAILED: missing required "iss" claim');
    expect(await refused(await old({ audience: 'x' }, NOW - 3600_000))).toMatch(/^ERR_JWT_CLAIM_VALIDATION_FAILED: .*"aud"/);
    const otherSecret = await verifyOnly(
      { token: 'oldToken', key: 'verifyKey' },
      { oldToken: token, verifyKey: 'another-secret-of-at-least-32-bytes!!' },
      NOW - 3600_000,
    );
    expect(await refused(otherSecret)).toBe('ERR_JWS_SIGNATURE_VERIFICATION_FAILED: signature verification failed');
  });

  test('an unsigned token (alg none), another algorithm, garbage or an oversized token is refused', async () => {
    const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const none = `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ sub: 'admin' })}.`;
    const verify = (token: string) =>
      run(
        [
          start(1),
          setVars(
            1,
            [
              { variable: 'jwtKey', onlyIfNotSet: true },
              { variable: 'in', onlyIfNotSet: true },
            ],
            2,
          ),
          [
            2,
            'action.jwt',
            { operation: 'verify', key: 'jwtKey', token: 'in', storeClaims: [{ claim: 'sub', variable: 'sub' }], errorInto: 'err', next: 3, ifInvalid: 4 },
          ],
          reply(3, 200),
          reply(4, 401),
        ],
        { jwtKey: SECRET, in: token },
      ).then((r) => r.result);
    for (const token of [none, 'garbage', 'a.b.c', 'x'.repeat(20_000)]) {
      const r = await verify(token);
      expect(r.outcome).toMatchObject({ status: 401 });
      expect(r.cd.vars.sub).toBeUndefined();
    }
    expect((await verify('x'.repeat(20_000))).cd.vars.err).toBe('token longer than 16384 characters');
    // an HS384 token presented to an HS256 node
    const hs384 = await run(signThenVerify({ algorithm: 'HS384', key: 'jwtKey' }, {}), { jwtKey: SECRET.repeat(2), calling: '1' });
    const r = await verify(String(hs384.result.cd.vars.token));
    expect(r.cd.vars.err).toBe('ERR_JOSE_ALG_NOT_ALLOWED: "alg" (Algorithm) Header Parameter value not allowed');
  });

  test('an HS secret shorter than the hash is refused (RFC 7518 §3.2)', async () => {
    const { result } = await run(signThenVerify({}, {}), { jwtKey: 'short', calling: '1' });
    expect(result.outcome).toMatchObject({ status: 401 });
    expect(result.cd.vars.err).toBe('invalid key: an HS256 secret needs at least 32 bytes');
  });

  test('RS256 and ES256 with PEM keys: private to sign, public to verify; a wrong PEM is refused without quoting it', async () => {
    for (const [alg, type, opts] of [
      ['RS256', 'rsa', { modulusLength: 2048 }],
      ['ES256', 'ec', { namedCurve: 'P-256' }],
    ] as const) {
      const pair = generateKeyPairSync(type as 'rsa', opts as { modulusLength: number });
      const priv = pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
      const pub = pair.publicKey.export({ type: 'spki', format: 'pem' }).toString();
      const nodes = signThenVerify({ algorithm: alg }, { algorithm: alg, key: 'verifyKey' });
      const ok = await run(nodes, { jwtKey: priv, verifyKey: pub, calling: '42' });
      expect(ok.result.outcome).toMatchObject({ status: 200 });
      expect(ok.result.cd.vars.sub).toBe('42');
      const bad = await run(nodes, { jwtKey: priv, verifyKey: priv, calling: '42' });
      expect(bad.result.cd.vars.err).toBe(`invalid key: a PEM SPKI public key or X.509 certificate for ${alg} expected`);
      expect(String(bad.result.cd.vars.err)).not.toContain('PRIVATE');
    }
  });

  test('decode writes the claims without any check (a forged token decodes)', async () => {
    const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const forged = `${b64({ alg: 'HS256' })}.${b64({ sub: 'admin', tenant: { id: 1 } })}.AAAA`;
    const { result } = await run(
      [
        start(1),
        setVars(1, [{ variable: 'in', onlyIfNotSet: true }], 2),
        [
          2,
          'action.jwt',
          {
            operation: 'decode',
            token: 'in',
            storeClaims: [
              { claim: 'sub', variable: 'sub' },
              { claim: 'tenant', variable: 'tenant' },
            ],
            next: 3,
            ifInvalid: 4,
          },
        ],
        reply(3, 200),
        reply(4, 400),
      ],
      { in: forged },
    );
    expect(result.outcome).toMatchObject({ status: 200 });
    expect(result.cd.vars).toMatchObject({ sub: 'admin', tenant: '{"id":1}' });
  });

  test('the key variable and the signed token are secrets: redacted from the trace an API answers; never in a reason', async () => {
    const { service, result } = await run(signThenVerify({}, {}), { jwtKey: SECRET, calling: '1' });
    expect([...service.secrets!]).toEqual(expect.arrayContaining(['jwtKey', 'token']));
    const shown = JSON.stringify(redactTrace(result.trace!, service.secrets));
    expect(shown).not.toContain(SECRET);
    expect(shown).not.toContain(String(result.cd.vars.token));
    const wrong = await run(signThenVerify({}, { key: 'verifyKey' }), { jwtKey: SECRET, verifyKey: 'Zsecret-that-is-long-enough-32-bytes', calling: '1' });
    expect(JSON.stringify(wrong.result.cd.vars.err)).not.toMatch(/secret/);
  });

  test('sign without key or tokenInto, verify without token: located validation errors', () => {
    const problems = compileProblems([start(1), [1, 'action.jwt', { operation: 'sign' }], [2, 'action.jwt', { operation: 'verify', key: 'k' }]]);
    expect(problems).toEqual([
      't.slid › logic 1 "test" › node 1 "n1" › values/key: is required to sign',
      't.slid › logic 1 "test" › node 1 "n1" › values/tokenInto: is required to sign',
      't.slid › logic 1 "test" › node 2 "n2" › values/token: is required to verify',
    ]);
  });
});

import { loadSlid } from '../../../engine/load';
import { problemsOf, registry } from '../engine/helpers';
const compileProblems = (nodes: NodeSpec[]) =>
  problemsOf(loadSlid(docOf(nodes), 't.slid', registry)).filter((p) => !p.includes('unreachable') && !p.includes('is not connected'));

describe('services/cache', () => {
  test('a value lives its TTL by the cache clock, then is gone', async () => {
    const clock = { t: 1_000_000 };
    const cache = createInstanceCache({ now: () => clock.t });
    expect(await cache.set('k', 'v', 10)).toBe(true);
    clock.t += 10_000;
    expect(await cache.get('k')).toBe('v');
    clock.t += 1; // more than ttlSec after it was set
    expect(await cache.get('k')).toBeUndefined();
  });

  test('a value over maxValueBytes is not stored and removes the older value; a key over 1024 bytes too', async () => {
    const cache = createInstanceCache({ maxValueBytes: 10 });
    expect(await cache.set('k', 'short', 60)).toBe(true);
    expect(await cache.set('k', 'é'.repeat(6), 60)).toBe(false); // 12 bytes
    expect(await cache.get('k')).toBeUndefined();
    expect(await cache.set('x'.repeat(1025), 1, 60)).toBe(false);
  });

  test('bounded by entries and by total bytes: least recently used dropped first', async () => {
    const cache = createInstanceCache({ maxEntries: 3 });
    for (const k of ['a', 'b', 'c']) await cache.set(k, k, 60);
    await cache.get('a');
    await cache.set('d', 'd', 60);
    expect([await cache.get('a'), await cache.get('b'), await cache.get('d')]).toEqual(['a', undefined, 'd']);
    const bytes = createInstanceCache({ maxTotalBytes: 4096, maxValueBytes: 1000 });
    for (let i = 0; i < 100; i++) await bytes.set(`k${i}`, 'v'.repeat(900), 60);
    expect(bytes.size).toBeLessThanOrEqual(4);
    expect(await bytes.get('k99')).toBe('v'.repeat(900));
  });
});

describe('action.cacheSet and query.cacheGet', () => {
  /** SET when `op` is set: value under `user:[fromUsername]`; else GET it into `cached`. */
  const nodes: NodeSpec[] = [
    start(1),
    setVars(
      1,
      [
        { variable: 'op', onlyIfNotSet: true },
        { variable: 'val', onlyIfNotSet: true },
      ],
      2,
    ),
    [2, 'analysis.condition', { logic: 'all', conditions: [{ variable: 'op', operator: 'is', value: 'set' }], ifTrue: 3, ifFalse: 5 }],
    [3, 'action.cacheSet', { key: 'user:[fromUsername]', value: 'val', ttlSec: 30, next: 4, ifNotStored: 8 }],
    reply(4, 200, 'stored'),
    [5, 'query.cacheGet', { key: 'user:[fromUsername]', storeInto: 'cached', ifFound: 6, ifNotFound: 7 }],
    reply(6, 200, '[cached]'),
    reply(7, 404),
    reply(8, 413, 'not stored'),
  ];
  const service = compile(docOf(nodes));
  const clock = { t: 1_000_000 };
  const ctx = { ...testContext(), cache: createInstanceCache({ maxValueBytes: 64, now: () => clock.t }) };
  const send = (fromUsername: string, input: Record<string, unknown> = {}) =>
    runLogic(service, '1', cdOf({ fromUsername, ...input }), ctx).then((r) => r.outcome);

  test('set then get; expired after ttlSec; another key finds nothing', async () => {
    expect(await send('alice', { op: 'set', val: 'sip:alice@10.0.0.1' })).toMatchObject({ status: 200, reason: 'stored' });
    expect(await send('alice')).toMatchObject({ status: 200, reason: 'sip:alice@10.0.0.1' });
    expect(await send('bob')).toMatchObject({ status: 404 });
    clock.t += 30_001;
    expect(await send('alice')).toMatchObject({ status: 404 });
  });

  test('a value over maxValueBytes takes ifNotStored and the older value is gone', async () => {
    await send('carol', { op: 'set', val: 'old' });
    expect(await send('carol', { op: 'set', val: 'x'.repeat(65) })).toMatchObject({ status: 413 });
    expect(await send('carol')).toMatchObject({ status: 404 });
  });

  test('a key from a SIP sender value is substituted once: placeholders in it are text, not other keys', async () => {
    await send('dave', { op: 'set', val: 'dave-secret-route' });
    // a sender naming itself "[calling]" with calling "dave" does not reach user:dave
    expect(await send('[calling]', { calling: 'dave' })).toMatchObject({ status: 404 });
    expect(await send('dave]')).toMatchObject({ status: 404 });
  });

  test('without a cache: get takes ifNotFound, set takes ifNotStored', async () => {
    const bare = testContext();
    expect((await runLogic(service, '1', cdOf({ fromUsername: 'x', op: 'set', val: 'v' }), bare)).outcome).toMatchObject({ status: 413 });
    expect((await runLogic(service, '1', cdOf({ fromUsername: 'x' }), bare)).outcome).toMatchObject({ status: 404 });
  });

  test('a list value is stored as its JSON text', async () => {
    await send('erin', { op: 'set', val: [{ a: 1 }] });
    expect(await send('erin')).toMatchObject({ status: 200, reason: '[{"a":1}]' });
  });
});
