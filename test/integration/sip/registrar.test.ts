/**
 * The SIP front end over real UDP and TCP sockets, with the seed registration logic on the
 * embedded directory (PGlite in memory, the note's sample subscriber francesco / 123456).
 */
import { mkdtempSync, rmSync } from 'fs';
import os from 'os';
import path from 'path';
import { header, headerList } from '../../../sip/message';
import { openRuntime, type Runtime } from '../../../server/runtime';
import { loadFlows, startSipServer, type SipServer } from '../../../server/sip-server';
import { answerChallenge } from '../../support/sip';
import { TcpUa, UdpUa, rand, sipRequest, type Ua } from './ua';

const FLOW = path.resolve(__dirname, '../../../flows/registration.slid');

let rt: Runtime;
let server: SipServer;
let dataDir: string;

beforeAll(async () => {
  dataDir = mkdtempSync(path.join(os.tmpdir(), 'sipflow-fe-'));
  rt = await openRuntime({ dataDir, directoryUrl: 'memory://', provision: true, nonceSecret: 'sipflow-front-end-test-secret' });
  server = await startSipServer({
    service: loadFlows(FLOW).service,
    ctx: rt.ctx,
    host: '127.0.0.1',
    port: 0,
    loopGuard: { maxPerCallId: 3, windowSec: 5 },
  });
}, 60_000);

afterAll(async () => {
  await server?.close(100);
  await rt?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

/** The registrar technical note's REGISTER (§6.3), sent from the UA's own address. */
function register(
  ua: Ua,
  o: { callId: string; cseq: number; authorization?: string; branch?: string; rport?: boolean; path?: string; contact?: string },
): string {
  return sipRequest({
    method: 'REGISTER',
    uri: 'sip:10.1.10.163',
    ua,
    branch: o.branch,
    callId: o.callId,
    cseq: o.cseq,
    rport: o.rport,
    from: '"Francesco" <sip:francesco@nl.netaxis.be>',
    fromTag: 'RHuIK7Em8vPmIAFR8XdsAKf8cZIDZL',
    to: '"Francesco" <sip:francesco@nl.netaxis.be>',
    contact: o.contact ?? `"Francesco" <sip:francesco@127.0.0.1:${ua.port};ob>`,
    headers: {
      'User-Agent': 'Telephone 1.0',
      Expires: '300',
      ...(o.authorization ? { Authorization: o.authorization } : {}),
      ...(o.path ? { Path: o.path } : {}),
    },
  });
}

async function registerWithAuth(ua: Ua, password: string): Promise<{ challenge: string; final: Awaited<ReturnType<Ua['response']>> }> {
  const callId = rand();
  ua.send(register(ua, { callId, cseq: 62650, rport: true }));
  const r401 = await ua.response(401);
  const challenge = header(r401, 'www-authenticate')!;
  const authorization = answerChallenge(challenge, { username: 'francesco', password, method: 'REGISTER', uri: 'sip:10.1.10.163' });
  ua.send(register(ua, { callId, cseq: 62651, authorization }));
  return { challenge, final: await ua.response() };
}

describe('registrar over UDP', () => {
  let ua: UdpUa;
  beforeEach(async () => {
    ua = await UdpUa.open(server.udpPort);
  });
  afterEach(() => ua.close());

  test('REGISTER → 401 (realm nl.netaxis.be, qop auth) → REGISTER with credentials → 200 with Contact, expires and Date', async () => {
    const { challenge, final } = await registerWithAuth(ua, '123456');
    expect(challenge).toMatch(/^Digest realm="nl\.netaxis\.be", nonce="[^"]+", qop="auth"/);
    expect(final.status).toBe(200);
    const contacts = headerList(final, 'contact');
    expect(contacts).toContain(`<sip:francesco@127.0.0.1:${ua.port};ob>;expires=300`);
    expect(header(final, 'date')).toMatch(/^\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT$/);
    expect(header(final, 'to')).toMatch(/;tag=/);
    expect(header(final, 'cseq')).toBe('62651 REGISTER');
  });

  test('Path inserted by an edge proxy is stored with the binding and echoed in the 200 (RFC 3327)', async () => {
    const callId = rand();
    const path = '<sip:sbc.example.net;lr>';
    ua.send(register(ua, { callId, cseq: 1, path }));
    const challenge = header(await ua.response(401), 'www-authenticate')!;
    const authorization = answerChallenge(challenge, { username: 'francesco', password: '123456', method: 'REGISTER', uri: 'sip:10.1.10.163' });
    ua.send(register(ua, { callId, cseq: 2, authorization, path }));
    const ok = await ua.response();
    expect(ok.status).toBe(200);
    expect(header(ok, 'path')).toBe(path);
    const bindings = await rt.ctx.location.lookup('francesco', null, new Date());
    expect(bindings.map((b) => b.path)).toContain(path);
  });

  test('an authenticated Contact wider than usrloc stores gets 400 naming it; a REGISTER sent alongside it is stored', async () => {
    // Before services/location/widths.ts the bindings of concurrent REGISTERs shared one INSERT,
    // which PostgreSQL refused whole for the one value over varchar(512): every REGISTER in it failed.
    const other = await UdpUa.open(server.udpPort);
    try {
      const wide = `<sip:francesco@127.0.0.1:${ua.port};x=${'w'.repeat(600)}>`;
      const challenged = async (u: Ua, contact?: string) => {
        const callId = rand();
        u.send(register(u, { callId, cseq: 1, contact }));
        const challenge = header(await u.response(401), 'www-authenticate')!;
        const authorization = answerChallenge(challenge, { username: 'francesco', password: '123456', method: 'REGISTER', uri: 'sip:10.1.10.163' });
        return register(u, { callId, cseq: 2, authorization, contact });
      };
      const [wideRegister, goodRegister] = [await challenged(ua, wide), await challenged(other)];
      ua.send(wideRegister);
      other.send(goodRegister);
      const [refused, stored] = await Promise.all([ua.response(), other.response()]);
      expect([refused.status, refused.reason]).toEqual([400, 'Contact too long (at most 512 characters)']);
      expect(stored.status).toBe(200);
      const contacts = (await rt.ctx.location.lookup('francesco', null, new Date())).map((b) => b.contact);
      expect(contacts).toContain(`sip:francesco@127.0.0.1:${other.port};ob`);
      expect(contacts.some((c) => c.includes('wwww'))).toBe(false);
    } finally {
      other.close();
    }
  });

  test('the 401 carries received and rport on the Via when rport was asked (RFC 3581)', async () => {
    ua.send(register(ua, { callId: rand(), cseq: 1, rport: true }));
    const r = await ua.response(401);
    expect(header(r, 'via')).toContain(`;rport=${ua.port}`);
    expect(header(r, 'via')).toContain(';received=127.0.0.1');
  });

  test('wrong password → 401 again', async () => {
    const { final } = await registerWithAuth(ua, 'not-the-password');
    expect(final.status).toBe(401);
    expect(header(final, 'www-authenticate')).toMatch(/realm="nl\.netaxis\.be"/);
  });

  test('a retransmitted authenticated REGISTER gets the identical cached 200 without running the logic again', async () => {
    const callId = rand();
    ua.send(register(ua, { callId, cseq: 7 }));
    const challenge = header(await ua.response(401), 'www-authenticate')!;
    const authorization = answerChallenge(challenge, { username: 'francesco', password: '123456', method: 'REGISTER', uri: 'sip:10.1.10.163' });
    const text = register(ua, { callId, cseq: 8, authorization });
    const runs = server.frontEnd.stats.runs;
    ua.send(text);
    const first = await ua.next();
    expect((first.msg as { status?: number }).status).toBe(200);
    ua.send(text);
    const second = await ua.next();
    expect(second.raw).toBe(first.raw);
    expect(server.frontEnd.stats.runs).toBe(runs + 1);
  });

  test('a challenge keeps no transaction: a retransmitted unauthenticated REGISTER gets the same 401 again, the logic runs once, nothing is retransmitted', async () => {
    const text = register(ua, { callId: rand(), cseq: 9 });
    const runs = server.frontEnd.stats.runs;
    const kept = server.frontEnd.servers.size;
    ua.send(text);
    const first = await ua.next();
    expect((first.msg as { status?: number }).status).toBe(401);
    expect(server.frontEnd.servers.size).toBe(kept);
    ua.send(text);
    const second = await ua.next();
    expect(second.raw).toBe(first.raw); // same nonce, same To tag: a client that took the first one is not confused
    expect(server.frontEnd.stats.runs).toBe(runs + 1);
    // control: the same request with a new branch is a new request, challenged afresh
    ua.send(text.replace(/branch=([^\s;]+)/, 'branch=$1x'));
    const third = await ua.next();
    expect((third.msg as { status?: number }).status).toBe(401);
    expect(third.raw).not.toBe(first.raw);
    expect(server.frontEnd.stats.runs).toBe(runs + 2);
    await ua.silence(700);
  });

  test('INVITE gets 100 Trying at once, then one 407 with Proxy-Authenticate, sent statelessly (at most 2 packets per request)', async () => {
    const branch = 'z9hG4bK' + rand();
    const callId = rand();
    const invite = sipRequest({
      method: 'INVITE',
      uri: 'sip:000112233@nl.netaxis.be',
      ua,
      branch,
      callId,
      fromTag: 'inv1',
      from: '<sip:francesco@nl.netaxis.be>',
    });
    ua.send(invite);
    const trying = await ua.response();
    expect(trying.status).toBe(100);
    expect(header(trying, 'to')).not.toMatch(/tag=/);
    const r = await ua.response();
    expect(r.status).toBe(407);
    expect(header(r, 'proxy-authenticate')).toMatch(/^Digest realm="nl\.netaxis\.be"/);
    // no retransmission of the 407 (Timer G would resend it after T1 = 500 ms), no transaction left
    await ua.silence(1200);
    // the ACK for the 407 matches nothing: absorbed silently, never relayed
    ua.send(
      sipRequest({
        method: 'ACK',
        uri: 'sip:000112233@nl.netaxis.be',
        ua,
        branch,
        callId,
        fromTag: 'inv1',
        from: '<sip:francesco@nl.netaxis.be>',
        to: header(r, 'to'),
        contact: null,
      }),
    );
    await ua.silence(300);
    // a retransmitted INVITE gets the same 407 once more (one packet per packet), without a run
    const runs = server.frontEnd.stats.runs;
    ua.send(invite);
    const again = await ua.next();
    expect((again.msg as { status?: number }).status).toBe(407);
    expect(header(again.msg, 'to')).toBe(header(r, 'to'));
    expect(server.frontEnd.stats.runs).toBe(runs);
    await ua.silence(300);
  });

  test('OPTIONS to the server → 200 with Allow', async () => {
    ua.send(sipRequest({ method: 'OPTIONS', uri: 'sip:127.0.0.1', ua }));
    const r = await ua.response();
    expect(r.status).toBe(200);
    expect(headerList(r, 'allow')).toEqual(expect.arrayContaining(['INVITE', 'REGISTER', 'OPTIONS']));
  });

  test('Max-Forwards 0 → 483 (OPTIONS with Max-Forwards 0 → 200)', async () => {
    ua.send(sipRequest({ method: 'INVITE', uri: 'sip:bob@example.test', ua, maxForwards: 0 }));
    expect((await ua.response(100)).status).toBe(100);
    expect((await ua.response(483)).reason).toBe('Too Many Hops');
    ua.send(sipRequest({ method: 'OPTIONS', uri: 'sip:bob@example.test', ua, maxForwards: 0 }));
    expect((await ua.response()).status).toBe(200);
  });

  test('garbage: no crash; 400 with a reason when answerable', async () => {
    ua.send(Buffer.from([0, 1, 2, 3, 255, 254]));
    ua.send('NOT SIP AT ALL\r\n\r\n');
    await ua.silence(200);
    // parsable headers, broken start line → 400
    const bad = sipRequest({ method: 'REGISTER', uri: 'sip:10.1.10.163', ua }).replace('SIP/2.0\r\n', 'SIP/2.0 extra\r\n');
    ua.send(bad);
    const r = await ua.response(400);
    expect(r.reason).toMatch(/^Bad Request/);
    // missing Call-ID: still answerable (Via present) → 400 naming the header
    ua.send(sipRequest({ method: 'OPTIONS', uri: 'sip:127.0.0.1', ua }).replace(/Call-ID: [^\r]*\r\n/, ''));
    expect((await ua.response(400)).reason).toBe('Missing Call-ID header');
    // no Via: nowhere to answer → dropped
    ua.send(sipRequest({ method: 'OPTIONS', uri: 'sip:127.0.0.1', ua }).replace(/Via: [^\r]*\r\n/, ''));
    await ua.silence(200);
    // CSeq method mismatch → 400 with the reason
    ua.send(sipRequest({ method: 'OPTIONS', uri: 'sip:127.0.0.1', ua }).replace('1 OPTIONS', '1 INVITE'));
    expect((await ua.response(400)).reason).toMatch(/CSeq/);
    // still serving
    ua.send(sipRequest({ method: 'OPTIONS', uri: 'sip:127.0.0.1', ua }));
    expect((await ua.response()).status).toBe(200);
  });

  test('loop guard: more than N occurrences of the same calling/called/call-id → 482', async () => {
    const callId = rand();
    const statuses: number[] = [];
    for (let i = 1; i <= 4; i++) {
      ua.send(
        sipRequest({
          method: 'REGISTER',
          uri: 'sip:nl.netaxis.be',
          ua,
          callId,
          cseq: i,
          fromTag: 'same',
          from: '<sip:francesco@nl.netaxis.be>',
          to: '<sip:francesco@nl.netaxis.be>',
        }),
      );
      statuses.push((await ua.response()).status);
    }
    expect(statuses).toEqual([401, 401, 401, 482]);
  });

  test('three-pass authentication is not a loop', async () => {
    // N = 3 here: the two REGISTERs of an authentication count 2, the restarts do not count
    const { final } = await registerWithAuth(ua, '123456');
    expect(final.status).toBe(200);
  });
});

describe('registrar over TCP', () => {
  let ua: TcpUa;
  beforeEach(async () => {
    ua = await TcpUa.open(server.tcpPort);
  });
  afterEach(() => ua.close());

  test('REGISTER → 401 → 200 over one connection', async () => {
    const { final } = await registerWithAuth(ua, '123456');
    expect(final.status).toBe(200);
    expect(headerList(final, 'contact')[0]).toMatch(/;expires=300$/);
  });

  test('two messages in one write get two answers', async () => {
    const a = sipRequest({ method: 'OPTIONS', uri: 'sip:127.0.0.1', ua, callId: 'one-' + rand() });
    const b = sipRequest({ method: 'OPTIONS', uri: 'sip:127.0.0.1', ua, callId: 'two-' + rand() });
    ua.send(a + b);
    const r1 = await ua.response();
    const r2 = await ua.response();
    expect(header(r1, 'call-id')).toMatch(/^one-/);
    expect(header(r2, 'call-id')).toMatch(/^two-/);
  });

  test('one message split across writes', async () => {
    const text = Buffer.from(register(ua, { callId: rand(), cseq: 1 }));
    const cut1 = 17;
    const cut2 = text.length - 5;
    ua.send(text.subarray(0, cut1));
    await new Promise((r) => setTimeout(r, 30));
    ua.send(text.subarray(cut1, cut2));
    await new Promise((r) => setTimeout(r, 30));
    ua.send(text.subarray(cut2));
    expect((await ua.response()).status).toBe(401);
  });

  test('CRLFCRLF keep-alive gets a CRLF pong and the connection stays usable', async () => {
    const got: Buffer[] = [];
    ua.sock.on('data', (b) => got.push(b));
    ua.send('\r\n\r\n');
    await new Promise((r) => setTimeout(r, 100));
    expect(Buffer.concat(got).toString()).toBe('\r\n');
    ua.send(sipRequest({ method: 'OPTIONS', uri: 'sip:127.0.0.1', ua }));
    expect((await ua.response()).status).toBe(200);
  });
});
