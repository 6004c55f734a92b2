/**
 * Digest hardening (issue 11, point 4): the digest uri must designate the Request-URI of the
 * received message; credentials holding a NUL, a control character or an invalid byte are refused
 * at parse time; nonces issued before the process's boot epoch are answered stale (the one replay
 * a restart allowed), while instances sharing the secret accept each other's later nonces.
 */
import { createHash, createHmac } from 'node:crypto';
import { runLogic } from '../../../engine/run';
import { createDigestAuth, digestUriMatches, localClockDomain, parseDigestCredentials, SharedNonceCounter, StatelessNonces } from '../../../services/auth';
import type { AuthPort, VerifyRequest } from '../../../services/auth/types';
import { cdBuilder } from '../../../sip/call-descriptor';
import { parseMessage } from '../../../sip/parser';
import type { SipRequest } from '../../../sip/message';
import { testContext } from '../../support/context';
import { answerChallenge, sampleRegister } from '../../support/sip';
import { cdOf, compile, docOf, reply, setVars, start } from '../engine/helpers';

const SECRET = 'hardening test secret 0123456789';
const REALM = 'nl.netaxis.be';
const RURI = `sip:${REALM}`;
const T0 = 1_800_000_000_000;
const md5 = (s: string) => createHash('md5').update(s).digest('hex');

/** The UA's Authorization (MD5, qop=auth) for a challenge, with any digest uri and username. */
function answer(auth: AuthPort, now: number, o: { uri?: string; username?: string; password?: string; nc?: number } = {}): string {
  const ch = auth.challenge(REALM, false, now);
  return answerChallenge(ch.headerValues[0], {
    username: o.username ?? 'alice',
    password: o.password ?? 'alicepw',
    method: 'REGISTER',
    uri: o.uri ?? RURI,
    nc: o.nc,
  });
}

function verify(auth: AuthPort, header: string, extra: Partial<VerifyRequest> = {}): string {
  const credentials = auth.parseCredentials(header);
  if (!credentials) return 'unparsable';
  return auth.verify({ credentials, method: 'REGISTER', password: 'alicepw', isHa1: false, realm: REALM, requestUri: RURI, now: T0 + 1000, ...extra });
}

// ---------------------------------------------------------------- digest uri = Request-URI

describe('digest uri against the Request-URI', () => {
  it.each([
    ['sip:nl.netaxis.be', 'sip:nl.netaxis.be'],
    ['sip:NL.Netaxis.BE', 'sip:nl.netaxis.be'], // host case-insensitive
    ['SIP:nl.netaxis.be', 'sip:nl.netaxis.be'], // scheme case-insensitive
    ['sip:alice@nl.netaxis.be;transport=UDP;lr', 'sip:alice@nl.netaxis.be;lr;transport=udp'], // parameter order and case
    ['sip:%61lice@nl.netaxis.be', 'sip:alice@nl.netaxis.be'], // escaped user
    ['sip:nl.netaxis.be;foo=1', 'sip:nl.netaxis.be'], // another param on one side only
    ['sips:[2001:DB8::1]:5061', 'sips:[2001:db8::1]:5061'],
    ['tel:+3225551234', 'tel:+3225551234'],
  ])('%s designates %s', (a, b) => {
    expect(digestUriMatches(a, b)).toBe(true);
    expect(digestUriMatches(b, a)).toBe(true);
  });

  it.each([
    ['sip:evil.example', 'sip:nl.netaxis.be'],
    ['sip:bob@nl.netaxis.be', 'sip:alice@nl.netaxis.be'],
    ['sip:Alice@nl.netaxis.be', 'sip:alice@nl.netaxis.be'], // user case-sensitive
    ['sip:nl.netaxis.be:5060', 'sip:nl.netaxis.be'], // an explicit default port is another URI
    ['sip:nl.netaxis.be;transport=tcp', 'sip:nl.netaxis.be'], // transport present on one side
    ['sips:nl.netaxis.be', 'sip:nl.netaxis.be'],
    ['sip:nl.netaxis.be?subject=x', 'sip:nl.netaxis.be'],
    ['*', 'sip:nl.netaxis.be'],
    ['', 'sip:nl.netaxis.be'],
    ['garbage', 'other garbage'],
  ])('%s does not designate %s', (a, b) => {
    expect(digestUriMatches(a, b)).toBe(false);
  });

  it('right password, digest uri of another Request-URI → bad (never stale), challenged again', () => {
    const auth = createDigestAuth({ secret: SECRET });
    const header = answer(auth, T0, { uri: 'sip:evil.example' });
    expect(verify(auth, header, { requestUri: 'sip:evil.example' })).toBe('ok'); // the same credentials are valid for their own URI
    const again = answer(auth, T0, { uri: 'sip:evil.example' });
    expect(verify(auth, again)).toBe('bad');
    // an expired nonce with a mismatched uri: bad, not stale (stale would tell the response was right)
    expect(verify(auth, answer(auth, T0, { uri: 'sip:evil.example' }), { now: T0 + 400_000 })).toBe('bad');
    // no Request-URI known: nothing can match
    expect(verify(auth, answer(auth, T0), { requestUri: null })).toBe('bad');
  });

  it("an equivalent spelling of the Request-URI verifies (the response hashes the credentials' text)", () => {
    const auth = createDigestAuth({ secret: SECRET });
    expect(verify(auth, answer(auth, T0, { uri: 'sip:NL.NETAXIS.BE' }))).toBe('ok');
  });

  it('authenticate node: the Request-URI received, not the requestURI variable a logic rewrote', async () => {
    // start → authStatus 1 ? 200 : requestURI := sip:evil.example, password := 123456 → authenticate
    const service = compile(
      docOf([
        start(1),
        [1, 'analysis.sequentialConditions', { conditions: [{ variable: 'authStatus', operator: 'is', value: '1', ifTrue: 9 }], fallback: 2 }],
        setVars(
          2,
          [
            { variable: 'requestURI', value: 'sip:evil.example' },
            { variable: 'password', value: '123456' },
          ],
          3,
        ),
        [3, 'output.nit.registrar.authenticate', { password: 'password' }],
        reply(9, 200, 'authenticated'),
      ]),
    );
    const ctx = testContext();
    const first = await runLogic(service, '1', cdOf(sampleRegister()), ctx);
    if (first.outcome.kind !== 'challenge') throw new Error('expected a challenge');
    const creds = (uri: string) =>
      answerChallenge((first.outcome as { challenges: string[] }).challenges[0], { username: 'francesco', password: '123456', method: 'REGISTER', uri });
    // credentials for the received Request-URI (sampleRegister: sip:10.1.10.163) pass
    const ok = await runLogic(service, '1', cdOf(sampleRegister({ Authorization: creds('sip:10.1.10.163') })), ctx);
    expect(ok.outcome).toEqual({ kind: 'reply', status: 200, reason: 'authenticated' });
    // credentials for the URI the logic wrote into the variable do not
    const rewritten = await runLogic(service, '1', cdOf(sampleRegister({ Authorization: creds('sip:evil.example') })), ctx);
    expect(rewritten.outcome).toMatchObject({ kind: 'challenge', status: 401, stale: false });
  });

  it('the SIP front end CD keeps the received Request-URI apart from the variable', () => {
    const raw =
      'REGISTER sip:nl.netaxis.be SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\nFrom: <sip:alice@nl.netaxis.be>;tag=1\r\n' +
      'To: <sip:alice@nl.netaxis.be>\r\nCall-ID: c1\r\nCSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n';
    const p = parseMessage(Buffer.from(raw));
    if (!p.ok) throw new Error('unparsable');
    const cd = cdBuilder(createDigestAuth({ secret: SECRET }))(
      p.message as SipRequest,
      { proto: 'udp', address: '127.0.0.1', port: 5070 },
      { proto: 'udp', address: '127.0.0.1', port: 5060 },
    );
    expect(cd.requestUri).toBe('sip:nl.netaxis.be');
    expect(cd.vars.requestURI).toBe('sip:nl.netaxis.be');
    expect(cdOf({ requestMethod: 'REGISTER', ruri: 'sip:x.example', headers: {} }).requestUri).toBe('sip:x.example');
  });
});

// ---------------------------------------------------------------- NUL and invalid bytes

describe('credentials with a NUL, a control character or an invalid byte are refused at parse time', () => {
  const BASE: Record<string, string> = {
    username: 'francesco',
    realm: REALM,
    nonce: 'n',
    uri: RURI,
    response: '0123456789abcdef0123456789abcdef',
    cnonce: 'c0ffee',
    opaque: 'o',
  };
  const header = (over: Record<string, string>) =>
    'Digest ' +
    Object.entries({ ...BASE, ...over })
      .map(([k, v]) => `${k}="${v}"`)
      .join(', ') +
    ', nc=00000001, qop=auth';

  it('the base header parses', () => {
    expect(parseDigestCredentials(header({}))?.username).toBe('francesco');
  });

  it.each(Object.keys(BASE))('a NUL in %s → refused', (name) => {
    expect(parseDigestCredentials(header({ [name]: `${BASE[name].slice(0, 3)}\u0000${BASE[name].slice(3)}` }))).toBeNull();
    expect(parseDigestCredentials(header({ [name]: `\u0000` }))).toBeNull();
  });

  it.each([
    ['SOH', '\u0001'],
    ['TAB', '\t'],
    ['CR', '\r'],
    ['LF', '\n'],
    ['ESC', '\u001b'],
    ['DEL', '\u007f'],
    ['C1 NEL', '\u0085'],
    ['U+FFFD (an invalid UTF-8 byte decoded)', '\ufffd'],
    ['lone high surrogate', '\ud800'],
    ['lone low surrogate', '\udc00'],
  ])('%s in the username → refused', (_name, ch) => {
    expect(parseDigestCredentials(header({ username: `fran${ch}cesco` }))).toBeNull();
  });

  it('a NUL in an unquoted value (nc, algorithm) or escaped as a quoted-pair → refused', () => {
    expect(parseDigestCredentials(header({}).replace('nc=00000001', 'nc=0000\u00000001'))).toBeNull();
    expect(parseDigestCredentials(`${header({})}, algorithm=MD\u00005`)).toBeNull();
    expect(parseDigestCredentials(header({ username: 'fran\\\u0000cesco' }))).toBeNull();
  });

  it('an invalid UTF-8 byte on the wire (the SIP parser decodes it to U+FFFD) → refused', () => {
    const bytes = Buffer.concat([
      Buffer.from('Digest username="fran'),
      Buffer.from([0xc3, 0x28]),
      Buffer.from(`cesco", realm="${REALM}", nonce="n", uri="${RURI}", response="r"`),
    ]);
    expect(parseDigestCredentials(bytes.toString('utf8'))).toBeNull();
  });

  it('valid non-ASCII text still parses (é, a surrogate pair), whitespace between parameters too', () => {
    expect(parseDigestCredentials(header({ username: 'frédéric😀' }))?.username).toBe('frédéric😀');
    expect(parseDigestCredentials(header({}).replace(/, /g, ',\t '))?.username).toBe('francesco');
  });

  it('the CD gets no authUsername from such credentials, so it reaches no variable and no query', () => {
    const auth = createDigestAuth({ secret: SECRET });
    const value = header({ username: 'franc\u0000esco' });
    expect(auth.parseCredentials(value)).toBeNull();
    const raw =
      `REGISTER sip:nl.netaxis.be SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\nFrom: <sip:francesco@nl.netaxis.be>;tag=1\r\n` +
      `To: <sip:francesco@nl.netaxis.be>\r\nCall-ID: c1\r\nCSeq: 2 REGISTER\r\nAuthorization: ${value}\r\nContent-Length: 0\r\n\r\n`;
    const p = parseMessage(Buffer.from(raw));
    if (!p.ok) throw new Error(`unparsable: ${JSON.stringify(p)}`);
    const cd = cdBuilder(auth)(p.message as SipRequest, { proto: 'udp', address: '127.0.0.1', port: 5070 }, { proto: 'udp', address: '127.0.0.1', port: 5060 });
    expect(cd.vars.authUsername).toBeUndefined();
  });
});

// ---------------------------------------------------------------- boot epoch

describe('boot epoch: nonces issued before the process started are answered stale', () => {
  const BOOT = T0;

  it('same machine: a nonce issued before the boot → stale with the right password, bad with a wrong one', () => {
    const before = createDigestAuth({ secret: SECRET }); // the process that ran before the restart
    const after = createDigestAuth({ secret: SECRET, bootEpoch: BOOT });
    const captured = answer(before, BOOT - 1); // 1 ms before the new process started
    expect(verify(after, captured, { now: BOOT + 2000 })).toBe('stale');
    expect(verify(after, answer(before, BOOT - 60_000, { password: 'guess' }), { now: BOOT + 2000 })).toBe('bad');
    expect(verify(after, answer(before, BOOT - 1, { password: 'guess' }), { now: BOOT + 2000 })).toBe('bad');
    // stays stale: the new process never records it, so it can never be replayed here
    expect(verify(after, captured, { now: BOOT + 3000 })).toBe('stale');
  });

  it('a nonce issued at or after the boot → ok, once per nc (the control case)', () => {
    const auth = createDigestAuth({ secret: SECRET, bootEpoch: BOOT });
    const header = answer(auth, BOOT);
    expect(verify(auth, header, { now: BOOT + 10 })).toBe('ok');
    expect(verify(auth, header, { now: BOOT + 20 })).toBe('bad'); // replay
    expect(verify(auth, answer(auth, BOOT + 5000), { now: BOOT + 6000 })).toBe('ok');
  });

  it('StatelessNonces.check says predates-boot; expiry still wins for old nonces', () => {
    const plain = new StatelessNonces(Buffer.from(SECRET));
    const booted = new StatelessNonces(Buffer.from(SECRET), { bootEpoch: BOOT });
    expect(booted.bootEpoch).toBe(BOOT);
    expect(plain.bootEpoch).toBeNull();
    expect(booted.check(plain.issue(REALM, BOOT - 1), REALM, BOOT + 1)).toBe('predates-boot');
    expect(booted.check(plain.issue(REALM, BOOT), REALM, BOOT + 1)).toBe('valid');
    expect(booted.check(plain.issue(REALM, BOOT - 400_000), REALM, BOOT + 1)).toBe('expired');
    expect(plain.check(plain.issue(REALM, BOOT - 1), REALM, BOOT + 1)).toBe('valid'); // no boot epoch, no check
  });

  it('a second instance with the same secret and an earlier boot accepts the nonces of a later one', () => {
    const early = createDigestAuth({ secret: SECRET, bootEpoch: BOOT - 3_600_000 });
    const late = createDigestAuth({ secret: SECRET, bootEpoch: BOOT });
    expect(verify(early, answer(late, BOOT + 100), { now: BOOT + 200 })).toBe('ok');
    // and the later one accepts the earlier one's nonces issued after its own start
    expect(verify(late, answer(early, BOOT + 100), { now: BOOT + 200 })).toBe('ok');
    // but not those issued before it started (on this machine's clock): stale
    expect(verify(late, answer(early, BOOT - 100), { now: BOOT + 200 })).toBe('stale');
  });

  it('another machine (its own clock): nonces issued up to maxSkewMs before the boot still pass, older ones are stale', () => {
    const peer = createDigestAuth({ secret: SECRET, clockDomain: 'another machine', bootEpoch: BOOT - 3_600_000 });
    const late = createDigestAuth({ secret: SECRET, bootEpoch: BOOT, maxSkewMs: 5000 });
    expect(verify(late, answer(peer, BOOT - 4000), { now: BOOT + 200 })).toBe('ok'); // a peer whose clock lags 4 s
    expect(verify(late, answer(peer, BOOT - 6000), { now: BOOT + 200 })).toBe('stale');
    // while this machine's own nonces get the exact rule
    const sameMachine = createDigestAuth({ secret: SECRET, clockDomain: localClockDomain() });
    expect(verify(late, answer(sameMachine, BOOT - 4000), { now: BOOT + 200 })).toBe('stale');
    expect(verify(late, answer(sameMachine, BOOT - 4000, { password: 'guess' }), { now: BOOT + 200 })).toBe('bad');
  });

  it("threads of one process share the boot epoch: a restarted thread accepts its predecessor's nonces", () => {
    const buffer = SharedNonceCounter.create(1024);
    const thread = () => createDigestAuth({ secret: SECRET, bootEpoch: BOOT, nonceCounts: new SharedNonceCounter(buffer) });
    const a = thread();
    const header = answer(a, BOOT + 1000);
    const restarted = thread(); // created later (its own start would be after the nonce), same epoch
    expect(verify(restarted, header, { now: BOOT + 60_000 })).toBe('ok');
    expect(verify(a, header, { now: BOOT + 60_001 })).toBe('bad'); // one table: the replay is seen by the other thread
  });

  it("a clock stepped back before the boot epoch: the process's own nonces stay acceptable", () => {
    const auth = createDigestAuth({ secret: SECRET, bootEpoch: BOOT });
    const stepped = BOOT - 30_000; // NTP moved the clock 30 s back just after the start
    const header = answer(auth, stepped);
    expect(verify(auth, header, { now: stepped + 100 })).toBe('ok');
  });

  it('refuses a boot epoch that is not a time', () => {
    expect(() => createDigestAuth({ secret: SECRET, bootEpoch: Number.NaN })).toThrow(/boot epoch/);
  });

  it('wrong-password guesses on a pre-boot nonce learn nothing: bad, as on any nonce', () => {
    const auth = createDigestAuth({ secret: SECRET, bootEpoch: BOOT });
    const old = new StatelessNonces(Buffer.from(SECRET)).issue(REALM, BOOT - 10);
    const ha1 = md5(`alice:${REALM}:guess`);
    const response = md5(`${ha1}:${old}:00000001:c:auth:${md5(`REGISTER:${RURI}`)}`);
    const h = `Digest username="alice", realm="${REALM}", nonce="${old}", uri="${RURI}", response="${response}", cnonce="c", nc=00000001, qop=auth`;
    expect(verify(auth, h, { now: BOOT + 10 })).toBe('bad');
  });
});

describe("a nonce of an earlier version (HMAC-SHA256 MAC, same secret): a rolling upgrade's peer", () => {
  /** A nonce as sipflow issued it before its keyed-hash MAC (services/auth/nonce.ts header). */
  function earlierNonce(now: number): string {
    const head = Buffer.from(new StatelessNonces(Buffer.from(SECRET)).issue(REALM, now), 'base64url').subarray(0, 17);
    const mac = createHmac('sha256', Buffer.from(SECRET)).update(head).update(REALM, 'utf8').digest().subarray(0, 16);
    return Buffer.concat([head, mac]).toString('base64url');
  }
  function answerWith(nonce: string, password: string): string {
    return answerChallenge(`Digest realm="${REALM}", nonce="${nonce}", qop="auth", algorithm=MD5`, {
      username: 'alice',
      password,
      method: 'REGISTER',
      uri: RURI,
    });
  }

  it('right password → stale (the UA retries with a fresh nonce, no failure counted); wrong password → bad', () => {
    const auth = createDigestAuth({ secret: SECRET });
    const nonce = earlierNonce(T0);
    expect(verify(auth, answerWith(nonce, 'alicepw'))).toBe('stale');
    expect(verify(auth, answerWith(nonce, 'guess'))).toBe('bad');
  });

  it('the same MAC under another secret is forged: bad whatever the password', () => {
    const auth = createDigestAuth({ secret: 'another secret, 16 bytes or more' });
    expect(verify(auth, answerWith(earlierNonce(T0), 'alicepw'))).toBe('bad');
  });
});
