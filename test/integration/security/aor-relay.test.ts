/**
 * Attacks on a real `sipflow serve` (shipped flows, the note's subscriber francesco plus bob):
 * AoR hijack with another subscriber's valid credentials, contacts flood, open relay through
 * a made-up To tag, a preloaded Route or a stray ACK, and the challenge amplification. Each with
 * its control case: the legitimate subscriber, from another loopback source, still registers.
 */
import { header, headerList, type SipResponse } from '../../../sip/message';
import { startServe, type ServeProcess } from '../../support/serve';
import { answerChallenge } from '../../support/sip';
import { TcpUa, UdpUa, rand, sipRequest, type Ua } from '../sip/ua';

let server: ServeProcess;
/** Stands for a gateway that trusts sipflow's address: nothing may reach it unless a logic sends it. */
let gateway: UdpUa;

beforeAll(async () => {
  server = await startServe();
  const r = await server.api('/api/v1/customers', {
    method: 'POST',
    body: JSON.stringify({ name: 'Bob BV', username: 'bob', password: 'b0b-secret', aor: 'bob@nl.netaxis.be' }),
  });
  expect(r.status).toBe(201);
  gateway = await UdpUa.open(server.sipPort, '127.0.0.1', '127.0.0.5');
}, 90_000);

afterAll(async () => {
  await gateway?.close();
  const stopped = await server?.stop();
  expect(stopped?.code).toBe(0);
});

interface Creds {
  username: string;
  password: string;
}
const FRANCESCO: Creds = { username: 'francesco', password: '123456' };
const BOB: Creds = { username: 'bob', password: 'b0b-secret' };

/** REGISTER for `aor` (To/From), challenged, then answered with `creds`: the final response. */
async function register(ua: Ua, aor: string, creds: Creds, o: { contacts?: string[]; expires?: number } = {}): Promise<SipResponse> {
  const callId = rand();
  const contact = (
    o.contacts ?? [`<sip:${aor}@${ua.proto === 'tcp' ? '127.0.0.1' : '127.0.0.1'}:${ua.port}${ua.proto === 'tcp' ? ';transport=tcp' : ''}>`]
  ).join(', ');
  const base = {
    method: 'REGISTER',
    uri: 'sip:nl.netaxis.be',
    ua,
    callId,
    from: `<sip:${aor}@nl.netaxis.be>`,
    to: `<sip:${aor}@nl.netaxis.be>`,
    contact,
  };
  ua.send(sipRequest({ ...base, cseq: 1, headers: { Expires: String(o.expires ?? 300) } }));
  const challenge = header(await ua.response(401), 'www-authenticate')!;
  const authorization = answerChallenge(challenge, { ...creds, method: 'REGISTER', uri: 'sip:nl.netaxis.be' });
  ua.send(sipRequest({ ...base, cseq: 2, headers: { Expires: String(o.expires ?? 300), Authorization: authorization } }));
  return ua.response();
}

async function bindings(aor: string): Promise<string[]> {
  const r = await server.api(`/api/v1/registrations?aor=${aor}`);
  expect(r.status).toBe(200);
  return ((await r.json()) as { rows: Array<{ contact: string }> }).rows.map((b) => b.contact).sort();
}

describe.each([['UDP'], ['TCP']])('AoR hijack over %s', (proto) => {
  const open = (source: string) => (proto === 'UDP' ? UdpUa.open(server.sipPort, '127.0.0.1', source) : TcpUa.open(server.tcpPort, '127.0.0.1', source));

  test("francesco's credentials cannot add, refresh or remove bob's bindings (403, nothing changes); bob still registers", async () => {
    const bob = await open('127.0.0.3');
    const mallory = await open('127.0.0.2');
    try {
      // control: bob registers his own AoR
      expect((await register(bob, 'bob', BOB)).status).toBe(200);
      const before = await bindings('bob');
      expect(before).toHaveLength(1);
      // add a contact of francesco's to bob's AoR
      const add = await register(mallory, 'bob', FRANCESCO);
      expect(add.status).toBe(403);
      expect(headerList(add, 'contact')).toEqual([]);
      // refresh bob's own contact, and wipe every binding with Contact: *
      expect((await register(mallory, 'bob', FRANCESCO, { contacts: [before[0].includes('<') ? before[0] : `<${before[0]}>`], expires: 3600 })).status).toBe(
        403,
      );
      expect((await register(mallory, 'bob', FRANCESCO, { contacts: ['*'], expires: 0 })).status).toBe(403);
      expect(await bindings('bob')).toEqual(before);
      // an AoR that exists nowhere
      expect((await register(mallory, `ghost-${rand()}`, FRANCESCO)).status).toBe(403);
      // control, during and after: francesco registers his own AoR, bob refreshes his
      expect((await register(mallory, 'francesco', FRANCESCO)).status).toBe(200);
      expect((await register(bob, 'bob', BOB)).status).toBe(200);
      // cleanup: bob un-registers (his own credentials may remove his bindings)
      expect((await register(bob, 'bob', BOB, { contacts: ['*'], expires: 0 })).status).toBe(200);
      expect(await bindings('bob')).toEqual([]);
    } finally {
      await bob.close();
      await mallory.close();
    }
  });
});

test('contacts per AoR are capped (registrar.maxContacts, 10 by default): 1,000 contacts in one REGISTER → 403, nothing stored', async () => {
  const ua = await UdpUa.open(server.sipPort, '127.0.0.1', '127.0.0.2');
  try {
    const many = Array.from({ length: 11 }, (_, i) => `<sip:francesco@127.0.0.2:${20000 + i}>`);
    expect((await register(ua, 'francesco', FRANCESCO, { contacts: many })).status).toBe(403);
    // a datagram cannot hold 1,000 contacts: over TCP
    const tcp = await TcpUa.open(server.tcpPort, '127.0.0.1', '127.0.0.2');
    try {
      const thousand = Array.from({ length: 1000 }, (_, i) => `<sip:f@10.${i >> 8}.${i & 255}.1;transport=tcp>`);
      const r = await register(tcp, 'francesco', FRANCESCO, { contacts: thousand });
      expect([403, 400, 413, 513]).toContain(r.status);
    } finally {
      await tcp.close();
    }
    expect((await bindings('francesco')).filter((c) => c.includes(':200') || c.includes('sip:f@10.'))).toEqual([]);
    // control: two contacts are fine
    expect((await register(ua, 'francesco', FRANCESCO, { contacts: many.slice(0, 2) })).status).toBe(200);
    expect((await register(ua, 'francesco', FRANCESCO, { contacts: ['*'], expires: 0 })).status).toBe(200);
  } finally {
    await ua.close();
  }
});

describe('no open relay', () => {
  let ua: UdpUa;
  beforeEach(async () => {
    ua = await UdpUa.open(server.sipPort, '127.0.0.1', '127.0.0.2');
  });
  afterEach(() => ua.close());
  const target = () => `sip:0900123456@127.0.0.5:${gateway.port}`;

  test('an unauthenticated INVITE with a made-up To tag → 404, nothing reaches the target', async () => {
    ua.send(
      sipRequest({ method: 'INVITE', uri: target(), ua, to: `<${target()}>;tag=made-up`, body: 'v=0\r\n', headers: { 'Content-Type': 'application/sdp' } }),
    );
    expect((await ua.response(404)).reason).toBe('Not Here');
    await gateway.silence(400);
  });

  test('an in-dialog BYE with a Route of ours that sipflow never signed → 404', async () => {
    ua.send(
      sipRequest({
        method: 'BYE',
        uri: target(),
        ua,
        to: `<${target()}>;tag=t${rand()}`,
        headers: { Route: `<sip:127.0.0.1:${server.sipPort};lr>, <sip:127.0.0.5:${gateway.port};lr>` },
      }),
    );
    expect((await ua.response(404)).status).toBe(404);
    // and with a forged signature
    ua.send(
      sipRequest({
        method: 'BYE',
        uri: target(),
        ua,
        to: `<${target()}>;tag=t${rand()}`,
        headers: { Route: `<sip:127.0.0.1:${server.sipPort};lr;sfr=AAAAAAAAAAAAAAAAAAAAAA>` },
      }),
    );
    expect((await ua.response(404)).status).toBe(404);
    await gateway.silence(300);
  });

  test('an initial INVITE with a preloaded Route through sipflow to the target runs the logic (407), nothing reaches the target', async () => {
    ua.send(
      sipRequest({
        method: 'INVITE',
        uri: target(),
        ua,
        body: 'v=0\r\n',
        headers: { Route: `<sip:127.0.0.1:${server.sipPort};lr>, <sip:127.0.0.5:${gateway.port};lr>`, 'Content-Type': 'application/sdp' },
      }),
    );
    expect((await ua.response(407)).status).toBe(407);
    await gateway.silence(400);
  });

  test('an ACK matching no transaction or dialog is dropped, even with a Route to the target', async () => {
    ua.send(sipRequest({ method: 'ACK', uri: target(), ua, to: `<${target()}>;tag=x${rand()}`, contact: null }));
    ua.send(
      sipRequest({
        method: 'ACK',
        uri: target(),
        ua,
        contact: null,
        headers: { Route: `<sip:127.0.0.1:${server.sipPort};lr>, <sip:127.0.0.5:${gateway.port};lr>` },
      }),
    );
    await gateway.silence(400);
    await ua.silence(100);
  });

  test('a CANCEL matching no INVITE transaction → 481, nothing forwarded', async () => {
    ua.send(sipRequest({ method: 'CANCEL', uri: target(), ua, contact: null }));
    expect((await ua.response(481)).status).toBe(481);
    await gateway.silence(300);
  });

  test('control: an authenticated INVITE goes where the logic sends it (the Request-URI for an outgoing call)', async () => {
    const callId = rand();
    const invite = (cseq: number, extra: Record<string, string>) =>
      sipRequest({
        method: 'INVITE',
        uri: target(),
        ua,
        callId,
        cseq,
        fromTag: 'f1',
        from: '<sip:000112233@nl.netaxis.be>',
        body: 'v=0\r\n',
        headers: { 'Content-Type': 'application/sdp', ...extra },
      });
    ua.send(invite(1, {}));
    const challenge = header(await ua.response(407), 'proxy-authenticate')!;
    ua.send(invite(2, { 'Proxy-Authorization': answerChallenge(challenge, { ...FRANCESCO, method: 'INVITE', uri: target() }) }));
    const got = await gateway.request('INVITE');
    expect(got.msg.uri).toBe(target());
    expect(header(got.msg, 'proxy-authorization')).toBeUndefined();
  });
});

test('amplification: an unauthenticated INVITE brings back 2 packets (100 Trying, one 407), a REGISTER 1', async () => {
  const ua = await UdpUa.open(server.sipPort, '127.0.0.1', '127.0.0.4');
  try {
    ua.send(
      sipRequest({
        method: 'INVITE',
        uri: 'sip:000112233@nl.netaxis.be',
        ua,
        from: '<sip:francesco@nl.netaxis.be>',
        body: 'v=0\r\n',
        headers: { 'Content-Type': 'application/sdp' },
      }),
    );
    ua.send(sipRequest({ method: 'REGISTER', uri: 'sip:nl.netaxis.be', ua, from: '<sip:francesco@nl.netaxis.be>', to: '<sip:francesco@nl.netaxis.be>' }));
    // Timer G would have resent the 407 after 500 ms and 1.5 s
    await new Promise((r) => setTimeout(r, 2000));
    const statuses = ua.inbox.map((r) => (r.msg as SipResponse).status).sort();
    expect(statuses).toEqual([100, 401, 407]);
  } finally {
    await ua.close();
  }
});
