/**
 * Digest hardening (issue 11, point 4) against a real `sipflow serve` (shipped flows, the note's
 * subscriber francesco / 123456, two SIP worker threads):
 * - credentials whose digest uri is not the Request-URI → 401, even with the right password;
 * - a NUL, a control character or an invalid UTF-8 byte in the credentials → 401, never 500, and
 *   no error log line; a NUL reaching a directory query through another variable → no 500 either;
 * - a REGISTER captured (with its valid Authorization) before a restart → 401 stale=true after it,
 *   while a fresh registration after the restart succeeds;
 * - two instances sharing `auth.nonceSecret` accept each other's nonces issued after their start.
 * Every attack has its control: the subscriber registering from another loopback source.
 *
 * Sources: .2 attacker (wrong uri, NUL, replay), .1 legitimate UA.
 */
import { header, isRequest, type SipResponse } from '../../../sip/message';
import { startServe, type ServeProcess } from '../../support/serve';
import { answerChallenge } from '../../support/sip';
import { UdpUa, rand, sipRequest, type Ua } from '../sip/ua';

const DOMAIN = 'nl.netaxis.be';
const RURI = `sip:${DOMAIN}`;
const SECRET = 'digest-hardening-test-secret-0123456789';
const CONFIG = { auth: { nonceSecret: SECRET } };
const ATTACKER = '127.0.0.2';
const ERROR_LINE = /"level":("error"|"fatal"|50|60)/;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function register(ua: Ua, o: { callId: string; cseq: number; uri?: string; authorization?: string | Buffer }): string {
  return sipRequest({
    method: 'REGISTER',
    uri: o.uri ?? RURI,
    ua,
    callId: o.callId,
    cseq: o.cseq,
    fromTag: 'dg',
    from: `<sip:francesco@${DOMAIN}>`,
    to: `<sip:francesco@${DOMAIN}>`,
    contact: `<sip:francesco@127.0.0.1:${ua.port}>`,
    headers: { Expires: '300', 'User-Agent': 'Telephone 1.0', ...(typeof o.authorization === 'string' ? { Authorization: o.authorization } : {}) },
  });
}

/** The final response to `callId` (null when none comes). */
const final = (ua: Ua, callId: string, ms = 3000): Promise<SipResponse | null> =>
  ua
    .next((r) => !isRequest(r.msg) && header(r.msg, 'call-id') === callId && (r.msg as SipResponse).status >= 200, ms)
    .then(
      (r) => r.msg as SipResponse,
      () => null,
    );

/** REGISTER without credentials → the WWW-Authenticate of the 401. */
async function challenge(ua: Ua, callId: string): Promise<string> {
  ua.send(register(ua, { callId, cseq: 1 }));
  const r = await final(ua, callId);
  expect(r?.status).toBe(401);
  return header(r!, 'www-authenticate')!;
}

const answer = (ch: string, o: { uri?: string; username?: string; password?: string } = {}) =>
  answerChallenge(ch, { username: o.username ?? 'francesco', password: o.password ?? '123456', method: 'REGISTER', uri: o.uri ?? RURI });

/** The whole registration of the note's subscriber from `local`: the final status. */
async function registers(srv: ServeProcess, local = '127.0.0.1'): Promise<number | undefined> {
  const ua = await UdpUa.open(srv.sipPort, '127.0.0.1', local);
  try {
    const callId = rand();
    const ch = await challenge(ua, callId);
    ua.send(register(ua, { callId, cseq: 2, authorization: answer(ch) }));
    return (await final(ua, callId))?.status;
  } finally {
    await ua.close();
  }
}

/** A registration's second REGISTER as sent on the wire, with its valid Authorization. */
interface Captured {
  text: string;
  callId: string;
  challenge: string;
}

let first: ServeProcess;
let second: ServeProcess | undefined;
let attacker: UdpUa;

beforeAll(async () => {
  first = await startServe({ config: CONFIG });
}, 90_000);
afterAll(async () => {
  await attacker?.close();
  await second?.stop();
  await first?.stop();
});

describe('digest uri must designate the Request-URI', () => {
  beforeAll(async () => {
    attacker = await UdpUa.open(first.sipPort, '127.0.0.1', ATTACKER);
  });

  test('right password, digest uri of another resource → 401 (no stale), challenged again; control registers', async () => {
    const callId = rand();
    const ch = await challenge(attacker, callId);
    attacker.send(register(attacker, { callId, cseq: 2, authorization: answer(ch, { uri: 'sip:evil.example' }) }));
    const r = await final(attacker, callId);
    expect(r?.status).toBe(401);
    expect(header(r!, 'www-authenticate')).not.toMatch(/stale=true/);

    // the same credentials the other way round: computed for the registrar, sent to another Request-URI
    const other = rand();
    const ch2 = await challenge(attacker, other);
    attacker.send(register(attacker, { callId: other, cseq: 2, uri: `sip:${DOMAIN}:5080`, authorization: answer(ch2) }));
    expect((await final(attacker, other))?.status).toBe(401);

    // control: the same subscriber, digest uri = Request-URI (an equivalent spelling too)
    expect(await registers(first)).toBe(200);
    const ua = await UdpUa.open(first.sipPort);
    try {
      const c = rand();
      const ch3 = await challenge(ua, c);
      ua.send(register(ua, { callId: c, cseq: 2, authorization: answer(ch3, { uri: `SIP:${DOMAIN.toUpperCase()}` }) }));
      expect((await final(ua, c))?.status).toBe(200);
    } finally {
      await ua.close();
    }
  });
});

describe('NUL and invalid bytes in credentials: 401, never 500', () => {
  test.each([
    ['a NUL in the username', (ch: string) => answer(ch, { username: 'franc\u0000esco' })],
    ['a lone NUL as the username', (ch: string) => answer(ch, { username: '\u0000' })],
    ['a NUL in the digest uri', (ch: string) => answer(ch, { uri: `sip:${DOMAIN}\u0000` })],
    ['a NUL in the cnonce', (ch: string) => answer(ch).replace('cnonce="c0ffee"', 'cnonce="c0\u0000ffee"')],
    ['a NUL in the realm', (ch: string) => answer(ch).replace(`realm="${DOMAIN}"`, `realm="${DOMAIN}\u0000"`)],
    ['control characters in the username', (ch: string) => answer(ch, { username: 'fran\u0001\u001b[2Jcesco' })],
  ])('%s → 401, no error line', async (_name, make) => {
    const before = first.output().length;
    const callId = rand();
    const ch = await challenge(attacker, callId);
    attacker.send(register(attacker, { callId, cseq: 2, authorization: make(ch) }));
    expect((await final(attacker, callId))?.status).toBe(401);
    await sleep(100);
    expect(first.output().slice(before)).not.toMatch(ERROR_LINE);
  });

  test('an invalid UTF-8 byte in the username → 401, no error line', async () => {
    const before = first.output().length;
    const callId = rand();
    const ch = await challenge(attacker, callId);
    const text = register(attacker, { callId, cseq: 2, authorization: answer(ch, { username: 'franc#esco' }) });
    const at = text.indexOf('franc#esco');
    const bytes = Buffer.concat([Buffer.from(text.slice(0, at + 5)), Buffer.from([0xff]), Buffer.from(text.slice(at + 6))]);
    attacker.send(bytes);
    expect((await final(attacker, callId))?.status).toBe(401);
    await sleep(100);
    expect(first.output().slice(before)).not.toMatch(ERROR_LINE);
  });

  test('a NUL reaching a directory query by another variable (an authenticated INVITE, P-Asserted-Identity user %00) → 403, not 500', async () => {
    const before = first.output().length;
    const ua = await UdpUa.open(first.sipPort);
    try {
      const callId = rand();
      const ruri = `sip:0031201555@${DOMAIN}`;
      const invite = (cseq: number, extra: Record<string, string> = {}) =>
        sipRequest({
          method: 'INVITE',
          uri: ruri,
          ua,
          callId,
          cseq,
          fromTag: 'nulcli',
          from: `<sip:francesco@${DOMAIN}>`,
          to: `<sip:0031201555@${DOMAIN}>`,
          headers: { 'P-Asserted-Identity': `<sip:%00@${DOMAIN}>`, ...extra },
        });
      ua.send(invite(1));
      const ch = await ua.next((r) => !isRequest(r.msg) && header(r.msg, 'call-id') === callId && (r.msg as SipResponse).status === 407);
      const pa = header(ch.msg as SipResponse, 'proxy-authenticate')!;
      const auth = answerChallenge(pa, { username: 'francesco', password: '123456', method: 'INVITE', uri: ruri });
      ua.send(invite(2, { 'Proxy-Authorization': auth }));
      // call screening: the CLI (a NUL) is no number of the subscriber → 403 (before: 500 "invalid byte sequence")
      expect((await final(ua, callId))?.status).toBe(403);
      await sleep(100);
      expect(first.output().slice(before)).not.toMatch(ERROR_LINE);
    } finally {
      await ua.close();
    }
  });

  test('control: the subscriber registers, from another source', async () => {
    expect(await registers(first)).toBe(200);
  });
});

describe('nonces across a restart and across instances sharing the secret', () => {
  let captured: Captured;
  let early: { challenge: string; callId: string };
  let ua: UdpUa;

  beforeAll(async () => {
    ua = await UdpUa.open(first.sipPort);
  });
  afterAll(async () => {
    await ua?.close();
  });

  test('a REGISTER with a valid Authorization is captured before anything else starts', async () => {
    const callId = rand();
    const ch = await challenge(ua, callId);
    const text = register(ua, { callId, cseq: 2, authorization: answer(ch) });
    ua.send(text);
    expect((await final(ua, callId))?.status).toBe(200);
    captured = { text, callId, challenge: ch };
    // a challenge of the first instance, answered only once a second instance runs
    const c2 = rand();
    early = { challenge: await challenge(ua, c2), callId: c2 };
  });

  test("two instances sharing the secret accept each other's nonces issued after their own start", async () => {
    await sleep(20); // the early nonce predates the second instance's start by some ms at least
    second = await startServe({ config: CONFIG });
    const other = await UdpUa.open(second.sipPort);
    try {
      // issued by the second, answered to the first (started earlier)
      const a = rand();
      const chA = await challenge(other, a);
      ua.send(register(ua, { callId: a, cseq: 2, authorization: answer(chA) }));
      expect((await final(ua, a))?.status).toBe(200);
      // issued by the first after the second started, answered to the second
      const b = rand();
      const chB = await challenge(ua, b);
      other.send(register(other, { callId: b, cseq: 2, authorization: answer(chB) }));
      expect((await final(other, b))?.status).toBe(200);
      // issued by the first before the second started: the second cannot know its uses → stale
      other.send(register(other, { callId: early.callId, cseq: 2, authorization: answer(early.challenge) }));
      const r = await final(other, early.callId);
      expect(r?.status).toBe(401);
      expect(header(r!, 'www-authenticate')).toMatch(/stale=true/);
    } finally {
      await other.close();
    }
  }, 90_000);

  test('after a restart, the captured REGISTER is answered 401 stale=true; a fresh registration succeeds', async () => {
    await second?.stop();
    second = undefined;
    await first.stop();
    first = await startServe({ config: CONFIG }); // same auth.nonceSecret: the old nonce's MAC still verifies
    // byte for byte (same Call-ID, CSeq, branch, nonce, nc, response), from the socket its Via names
    ua.sendTo(captured.text, first.sipPort);
    const r = await final(ua, captured.callId);
    expect(r?.status).toBe(401);
    expect(header(r!, 'www-authenticate')).toMatch(/stale=true/);
    const replayer = await UdpUa.open(first.sipPort, '127.0.0.1', ATTACKER);
    try {
      // a wrong password on the old nonce: a plain challenge (stale only tells a right response)
      const wrong = rand();
      replayer.send(register(replayer, { callId: wrong, cseq: 2, authorization: answer(captured.challenge, { password: 'guess' }) }));
      const w = await final(replayer, wrong);
      expect(w?.status).toBe(401);
      expect(header(w!, 'www-authenticate')).not.toMatch(/stale=true/);
    } finally {
      await replayer.close();
    }
    // control: the subscriber registers after the restart
    expect(await registers(first)).toBe(200);
  }, 90_000);
});
