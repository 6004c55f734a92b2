import { createHash } from 'node:crypto';
import { createDigestAuth } from '../../../services/auth';
import type { AuthPort, DigestAlgorithm, VerifyRequest } from '../../../services/auth/types';

const SECRET = 'test secret, not for production';
const REALM = 'nl.netaxis.be';
const T0 = 1_700_000_000_000;
const H = (alg: string, s: string) =>
  createHash(alg.startsWith('SHA-256') ? 'sha256' : 'md5')
    .update(s)
    .digest('hex');

/** What a SIP UA does on a 401: parse the challenge, pick the first algorithm, build Authorization. */
function uaAnswer(
  challengeHeader: string,
  o: {
    username: string;
    password: string;
    method: string;
    uri: string;
    nc?: number;
    cnonce?: string;
    qop?: boolean;
  },
): string {
  const get = (k: string) => new RegExp(`${k}="?([^",]*)"?`).exec(challengeHeader)![1];
  const realm = get('realm'),
    nonce = get('nonce'),
    algorithm = get('algorithm');
  const cnonce = o.cnonce ?? '0a4f113b';
  const nc = (o.nc ?? 1).toString(16).padStart(8, '0');
  let ha1 = H(algorithm, `${o.username}:${realm}:${o.password}`);
  if (algorithm.endsWith('-sess')) ha1 = H(algorithm, `${ha1}:${nonce}:${cnonce}`);
  const ha2 = H(algorithm, `${o.method}:${o.uri}`);
  const useQop = o.qop ?? true;
  const response = useQop ? H(algorithm, `${ha1}:${nonce}:${nc}:${cnonce}:auth:${ha2}`) : H(algorithm, `${ha1}:${nonce}:${ha2}`);
  return (
    `Digest username="${o.username}", realm="${realm}", nonce="${nonce}", uri="${o.uri}", ` +
    `response="${response}", algorithm=${algorithm}` +
    (useQop ? `, cnonce="${cnonce}", nc=${nc}, qop=auth` : '')
  );
}

function request(auth: AuthPort, header: string, extra: Partial<VerifyRequest> = {}): VerifyRequest {
  const credentials = auth.parseCredentials(header);
  if (!credentials) throw new Error(`unparsable: ${header}`);
  return { credentials, method: 'REGISTER', password: 'alicepw', isHa1: false, realm: REALM, requestUri: `sip:${REALM}`, now: T0 + 1000, ...extra };
}

/** Changes the last hex digit of the response, keeping its length. */
const tamper = (h: string) => h.replace(/([0-9a-f])"(, algorithm)/, (_m, d: string, rest: string) => `${d === '0' ? '1' : '0'}"${rest}`);

const ALICE = { username: 'alice', password: 'alicepw', method: 'REGISTER', uri: `sip:${REALM}` };

describe('createDigestAuth: challenge', () => {
  it('formats one header per algorithm, SHA-256 first, sharing one nonce', () => {
    const auth = createDigestAuth({ secret: SECRET, algorithms: ['MD5', 'SHA-256'] });
    const ch = auth.challenge(REALM, false, T0);
    expect(ch.algorithms).toEqual(['SHA-256', 'MD5']);
    expect(ch.qop).toBe('auth');
    expect(ch.stale).toBe(false);
    expect(ch.headerValues).toEqual([
      `Digest realm="nl.netaxis.be", nonce="${ch.nonce}", qop="auth", algorithm=SHA-256`,
      `Digest realm="nl.netaxis.be", nonce="${ch.nonce}", qop="auth", algorithm=MD5`,
    ]);
  });

  it('defaults to MD5 only and appends stale=true when stale', () => {
    const ch = createDigestAuth({ secret: SECRET }).challenge(REALM, true, T0);
    expect(ch.headerValues).toEqual([`Digest realm="nl.netaxis.be", nonce="${ch.nonce}", qop="auth", algorithm=MD5, stale=true`]);
  });

  it('escapes quotes and backslashes in the realm; a UA echoing it back verifies', () => {
    const auth = createDigestAuth({ secret: SECRET });
    const realm = 'we "quote" \\ here';
    const ch = auth.challenge(realm, false, T0);
    const quoted = String.raw`"we \"quote\" \\ here"`;
    expect(ch.headerValues[0]).toBe(`Digest realm=${quoted}, nonce="${ch.nonce}", qop="auth", algorithm=MD5`);
    const ha1 = H('MD5', `alice:${realm}:alicepw`);
    const response = H('MD5', `${ha1}:${ch.nonce}:00000001:c:auth:${H('MD5', 'REGISTER:sip:x')}`);
    const header = `Digest username="alice", realm=${quoted}, nonce="${ch.nonce}", uri="sip:x", response="${response}", cnonce="c", nc=00000001, qop=auth`;
    expect(auth.verify(request(auth, header, { realm, requestUri: 'sip:x' }))).toBe('ok');
  });

  it('refuses unknown or empty algorithm configuration', () => {
    expect(() => createDigestAuth({ secret: SECRET, algorithms: [] })).toThrow();
    expect(() => createDigestAuth({ secret: SECRET, algorithms: ['SHA-512' as DigestAlgorithm] })).toThrow();
  });
});

describe('createDigestAuth: verify', () => {
  it('completes a SIP REGISTER round trip (challenge → UA response → ok)', () => {
    const auth = createDigestAuth({ secret: SECRET });
    const ch = auth.challenge(REALM, false, T0);
    const header = uaAnswer(ch.headerValues[0], ALICE);
    expect(auth.verify(request(auth, header))).toBe('ok');
  });

  it('verifies on another instance sharing the secret (stateless nonces)', () => {
    const a = createDigestAuth({ secret: SECRET });
    const b = createDigestAuth({ secret: SECRET });
    const header = uaAnswer(a.challenge(REALM, false, T0).headerValues[0], ALICE);
    expect(b.verify(request(b, header))).toBe('ok');
    const c = createDigestAuth({ secret: 'a different secret entirely' });
    expect(c.verify(request(c, header))).toBe('bad');
  });

  it.each<DigestAlgorithm>(['MD5', 'MD5-sess', 'SHA-256', 'SHA-256-sess'])('round trips with %s', (alg) => {
    const auth = createDigestAuth({ secret: SECRET, algorithms: [alg] });
    const header = uaAnswer(auth.challenge(REALM, false, T0).headerValues[0], ALICE);
    expect(header).toContain(`algorithm=${alg}`);
    expect(auth.verify(request(auth, header))).toBe('ok');
    const tampered = uaAnswer(auth.challenge(REALM, false, T0).headerValues[0], ALICE);
    expect(tamper(tampered)).not.toBe(tampered);
    expect(auth.verify(request(auth, tamper(tampered)))).toBe('bad');
  });

  it('accepts a stored HA1 (MD5 of username:realm:password) for MD5 and MD5-sess', () => {
    const storedHa1 = createHash('md5').update(`alice:${REALM}:alicepw`).digest('hex');
    for (const alg of ['MD5', 'MD5-sess'] as const) {
      const auth = createDigestAuth({ secret: SECRET, algorithms: [alg] });
      const header = uaAnswer(auth.challenge(REALM, false, T0).headerValues[0], ALICE);
      expect(auth.verify(request(auth, header, { password: storedHa1, isHa1: true }))).toBe('ok');
      const next = uaAnswer(auth.challenge(REALM, false, T0 + 5).headerValues[0], ALICE);
      const otherHa1 = createHash('md5').update(`alice:${REALM}:other`).digest('hex');
      expect(auth.verify(request(auth, next, { password: otherHa1, isHa1: true }))).toBe('bad');
      expect(auth.verify(request(auth, next, { password: storedHa1.toUpperCase(), isHa1: true }))).toBe('ok');
    }
  });

  it('cannot use an MD5 HA1 for SHA-256 (the SHA-256 HA1 needs the password): bad', () => {
    const auth = createDigestAuth({ secret: SECRET, algorithms: ['SHA-256'] });
    const header = uaAnswer(auth.challenge(REALM, false, T0).headerValues[0], ALICE);
    const md5Ha1 = createHash('md5').update(`alice:${REALM}:alicepw`).digest('hex');
    expect(auth.verify(request(auth, header, { password: md5Ha1, isHa1: true }))).toBe('bad');
    expect(auth.verify(request(auth, header))).toBe('ok'); // same header with the clear password
  });

  it('rejects a malformed stored HA1', () => {
    const auth = createDigestAuth({ secret: SECRET });
    const header = uaAnswer(auth.challenge(REALM, false, T0).headerValues[0], ALICE);
    expect(auth.verify(request(auth, header, { password: 'alicepw', isHa1: true }))).toBe('bad');
  });

  it('supports clients that send no qop, once per nonce', () => {
    const auth = createDigestAuth({ secret: SECRET });
    const header = uaAnswer(auth.challenge(REALM, false, T0).headerValues[0], { ...ALICE, qop: false });
    expect(header).not.toContain('qop');
    expect(auth.verify(request(auth, header))).toBe('ok');
    expect(auth.verify(request(auth, header))).toBe('bad');
  });

  it('verifies qop=auth-int over the body', () => {
    const auth = createDigestAuth({ secret: SECRET });
    const nonce = auth.challenge(REALM, false, T0).nonce;
    const ha1 = H('MD5', `alice:${REALM}:alicepw`);
    const body = 'v=0\r\n';
    const ha2 = H('MD5', `INVITE:sip:bob@${REALM}:${H('MD5', body)}`);
    const response = H('MD5', `${ha1}:${nonce}:00000001:c1:auth-int:${ha2}`);
    const header = `Digest username="alice", realm="${REALM}", nonce="${nonce}", uri="sip:bob@${REALM}", response="${response}", cnonce="c1", nc=00000001, qop=auth-int`;
    expect(auth.verify(request(auth, header, { method: 'INVITE', body, requestUri: `sip:bob@${REALM}` }))).toBe('ok');
    expect(
      auth.verify(request(auth, header.replace('nc=00000001', 'nc=00000002'), { method: 'INVITE', body: 'v=1\r\n', requestUri: `sip:bob@${REALM}` })),
    ).toBe('bad');
  });

  it('wrong password → bad', () => {
    const auth = createDigestAuth({ secret: SECRET });
    const header = uaAnswer(auth.challenge(REALM, false, T0).headerValues[0], { ...ALICE, password: 'guess' });
    expect(auth.verify(request(auth, header))).toBe('bad');
  });

  it('wrong realm → bad, even with a correct response for that realm', () => {
    const auth = createDigestAuth({ secret: SECRET });
    const other = 'other.example';
    const header = uaAnswer(auth.challenge(other, false, T0).headerValues[0], ALICE);
    expect(auth.verify(request(auth, header, { realm: other }))).toBe('ok'); // valid for its own realm
    const header2 = uaAnswer(auth.challenge(other, false, T0).headerValues[0], ALICE);
    expect(auth.verify(request(auth, header2))).toBe('bad'); // expected realm differs
  });

  it('tampered nonce → bad', () => {
    const auth = createDigestAuth({ secret: SECRET });
    const ch = auth.challenge(REALM, false, T0);
    const flipped = ch.nonce.slice(0, 10) + (ch.nonce[10] === 'A' ? 'B' : 'A') + ch.nonce.slice(11);
    const header = uaAnswer(ch.headerValues[0].replace(ch.nonce, flipped), ALICE); // response right for that nonce
    expect(auth.verify(request(auth, header))).toBe('bad');
  });

  it('expired nonce with the right response → stale; with a wrong one → bad', () => {
    const auth = createDigestAuth({ secret: SECRET, nonceLifetimeSec: 60 });
    const ch = auth.challenge(REALM, false, T0);
    const later = T0 + 61_000;
    expect(auth.verify(request(auth, uaAnswer(ch.headerValues[0], ALICE), { now: later }))).toBe('stale');
    expect(auth.verify(request(auth, uaAnswer(ch.headerValues[0], { ...ALICE, password: 'x' }), { now: later }))).toBe('bad');
  });

  it('replayed nc → bad; increasing nc → ok', () => {
    const auth = createDigestAuth({ secret: SECRET });
    const chal = auth.challenge(REALM, false, T0).headerValues[0];
    expect(auth.verify(request(auth, uaAnswer(chal, { ...ALICE, nc: 1 })))).toBe('ok');
    expect(auth.verify(request(auth, uaAnswer(chal, { ...ALICE, nc: 1 })))).toBe('bad');
    expect(auth.verify(request(auth, uaAnswer(chal, { ...ALICE, nc: 2 })))).toBe('ok');
    expect(auth.verify(request(auth, uaAnswer(chal, { ...ALICE, nc: 5, cnonce: 'other' })))).toBe('ok');
    expect(auth.verify(request(auth, uaAnswer(chal, { ...ALICE, nc: 4 })))).toBe('bad');
  });

  it('UAs challenged in the same millisecond get their own nonces and counts', () => {
    const auth = createDigestAuth({ secret: SECRET });
    const a = auth.challenge(REALM, false, T0);
    const b = auth.challenge(REALM, false, T0);
    expect(b.nonce).not.toBe(a.nonce);
    const bob = { ...ALICE, username: 'bob', password: 'bobpw' };
    expect(auth.verify(request(auth, uaAnswer(a.headerValues[0], ALICE)))).toBe('ok');
    expect(auth.verify(request(auth, uaAnswer(b.headerValues[0], bob), { password: 'bobpw' }))).toBe('ok');
    expect(auth.verify(request(auth, uaAnswer(b.headerValues[0], bob), { password: 'bobpw' }))).toBe('bad'); // bob's replay
    expect(auth.verify(request(auth, uaAnswer(a.headerValues[0], ALICE)))).toBe('bad'); // alice's replay
  });

  it("a wrong guess does not burn the legitimate client's nc", () => {
    const auth = createDigestAuth({ secret: SECRET });
    const chal = auth.challenge(REALM, false, T0).headerValues[0];
    expect(auth.verify(request(auth, uaAnswer(chal, { ...ALICE, password: 'guess', nc: 9 })))).toBe('bad');
    expect(auth.verify(request(auth, uaAnswer(chal, { ...ALICE, nc: 1 })))).toBe('ok');
  });

  it('unknown or unconfigured algorithm → bad', () => {
    const auth = createDigestAuth({ secret: SECRET }); // MD5 only
    const chal = auth.challenge(REALM, false, T0).headerValues[0];
    const md5 = uaAnswer(chal, ALICE);
    expect(auth.verify(request(auth, md5.replace('algorithm=MD5', 'algorithm=SHA-512-256')))).toBe('bad');
    const sha = uaAnswer(chal.replace('algorithm=MD5', 'algorithm=SHA-256'), ALICE);
    expect(auth.verify(request(auth, sha))).toBe('bad');
    expect(auth.verify(request(auth, md5))).toBe('ok');
  });

  it('accepts an absent algorithm as MD5 and a lower-case one', () => {
    const auth = createDigestAuth({ secret: SECRET });
    const chal = auth.challenge(REALM, false, T0).headerValues[0];
    expect(auth.verify(request(auth, uaAnswer(chal, { ...ALICE, nc: 1 }).replace(', algorithm=MD5', '')))).toBe('ok');
    expect(auth.verify(request(auth, uaAnswer(chal, { ...ALICE, nc: 2 }).replace('algorithm=MD5', 'algorithm=md5')))).toBe('ok');
  });

  it.each([
    ['a non-hex nc', (h: string) => h.replace('nc=00000001', 'nc=0000000g')],
    ['a short nc', (h: string) => h.replace('nc=00000001', 'nc=1')],
    ['qop without nc', (h: string) => h.replace(', nc=00000001', '')],
    ['qop without cnonce', (h: string) => h.replace(/, cnonce="[^"]*"/, '')],
    ['an unknown qop', (h: string) => h.replace('qop=auth', 'qop=auth-conf')],
  ])('rejects %s', (_label, mutate) => {
    const auth = createDigestAuth({ secret: SECRET });
    const good = uaAnswer(auth.challenge(REALM, false, T0).headerValues[0], ALICE);
    const bad = mutate(good);
    expect(bad).not.toBe(good);
    expect(auth.verify(request(auth, bad))).toBe('bad');
    expect(auth.verify(request(auth, good))).toBe('ok'); // the rejection did not burn nc 1
  });

  it('rejects nc 00000000 even with a correct response for it', () => {
    const auth = createDigestAuth({ secret: SECRET });
    const header = uaAnswer(auth.challenge(REALM, false, T0).headerValues[0], { ...ALICE, nc: 0 });
    expect(header).toContain('nc=00000000');
    expect(auth.verify(request(auth, header))).toBe('bad');
  });

  it('answers stale instead of risking a replay when the count was evicted by the cap', () => {
    const auth = createDigestAuth({ secret: SECRET, maxTrackedNonces: 1 });
    const first = auth.challenge(REALM, false, T0).headerValues[0];
    const second = auth.challenge(REALM, false, T0 + 1).headerValues[0];
    expect(auth.verify(request(auth, uaAnswer(first, ALICE)))).toBe('ok');
    expect(auth.verify(request(auth, uaAnswer(second, ALICE)))).toBe('ok'); // evicts first
    expect(auth.verify(request(auth, uaAnswer(first, ALICE)))).toBe('stale');
  });
});
