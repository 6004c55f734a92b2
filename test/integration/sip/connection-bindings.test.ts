/**
 * Bindings tied to their connection, NAT keepalives and Path, through `sipflow serve` (built CLI)
 * over real sockets: a phone registers over TCP with a Contact whose port is another listener's
 * (which must never see a connection), a call to it arrives over the phone's own TCP connection;
 * when that connection closes the binding is removed (or, with removal off, the call gets 480);
 * keepalives reach the phone (CRLFCRLF on TCP, OPTIONS to a NATed UDP phone) and never a binding
 * of another server_id; a REGISTER with Path makes the call go through the edge proxy.
 *
 * Single process on the memory store, two SIP worker threads on PostgreSQL (the location table
 * shared with a row of another instance).
 */
import net from 'node:net';
import knexFactory, { type Knex } from 'knex';
import { header, isRequest, type SipResponse } from '../../../sip/message';
import { startServe, type ServeProcess } from '../../support/serve';
import { scratchDatabase } from '../../setup/servers';
import { TcpUa, UdpUa, rand, sipRequest, sipResponse } from './ua';
import path from 'node:path';

const FLOWS = path.join(__dirname, 'fixtures');

/** A TCP listener that counts the connections it gets (the Contact's port: must stay at 0). */
async function contactListener(): Promise<{ port: number; connections: () => number; close(): Promise<void> }> {
  let n = 0;
  const server = net.createServer((s) => {
    n++;
    s.destroy();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { port: (server.address() as net.AddressInfo).port, connections: () => n, close: () => new Promise((r) => server.close(() => r())) };
}

async function bindingsOf(sip: ServeProcess, user: string): Promise<Array<Record<string, unknown>>> {
  const res = await sip.api(`/api/v1/registrations?aor=${user}`);
  return ((await res.json()) as { rows: Array<Record<string, unknown>> }).rows;
}

/** Polls until `f` holds (each poll is an API round trip; bounded). */
async function until(f: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await f()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`never: ${what}`);
}

function registerText(ua: TcpUa | UdpUa, user: string, contact: string, extra: Record<string, string> = {}): string {
  return sipRequest({
    method: 'REGISTER',
    uri: 'sip:example.test',
    ua,
    rport: true,
    from: `<sip:${user}@example.test>`,
    to: `<sip:${user}@example.test>`,
    contact,
    headers: { Expires: '300', ...extra },
  });
}

/** The final response of the caller's transaction (100 Trying skipped). */
async function finalStatus(ua: UdpUa): Promise<number> {
  const r = await ua.next((m) => !isRequest(m.msg) && (m.msg as SipResponse).status >= 200);
  return (r.msg as SipResponse).status;
}

function invite(caller: UdpUa, user: string, sipPort: number, callId = rand()): string {
  return sipRequest({ method: 'INVITE', uri: `sip:${user}@127.0.0.1:${sipPort}`, ua: caller, callId, to: `<sip:${user}@example.test>` });
}

describe.each([
  { name: 'single process, memory store', workers: 1, pg: false },
  { name: 'two SIP worker threads, PostgreSQL store', workers: 2, pg: true },
])('bindings tied to their connection: $name', ({ workers, pg }) => {
  let sip: ServeProcess;
  let db: { url: string; drop(): Promise<void> } | null = null;
  let knex: Knex | null = null;

  beforeAll(async () => {
    if (pg) {
      db = await scratchDatabase(`sipflow_conn_${process.pid}`);
      knex = knexFactory({ client: 'pg', connection: db.url, pool: { min: 0, max: 1 } });
    }
    sip = await startServe({
      flows: FLOWS,
      workers,
      locationUrl: db?.url ?? 'memory',
      logLevel: 'warn',
      config: { defaultLogic: 'proxy-test', location: { serverId: 1 }, registrar: { keepalive: { intervalSec: 1 } } },
    });
  }, 90_000);

  afterAll(async () => {
    await sip?.stop();
    await knex?.destroy();
    await db?.drop();
  });

  test('a call to a TCP-registered phone goes over its connection, not to its Contact; closed → binding removed', async () => {
    const contact = await contactListener();
    const phone = await TcpUa.open(sip.tcpPort);
    const caller = await UdpUa.open(sip.sipPort);
    const crlf = new Promise<void>((resolve) => phone.sock.on('data', (b) => b.toString() === '\r\n\r\n' && resolve()));
    try {
      const user = `tcp${rand()}`;
      phone.send(registerText(phone, user, `<sip:${user}@127.0.0.1:${contact.port};transport=tcp>`));
      expect((await phone.response(200)).status).toBe(200);
      const [b] = await bindingsOf(sip, user);
      expect(b).toMatchObject({ received: null });

      // the keepalive: CRLFCRLF over the phone's connection (interval 1 s)
      await crlf;

      const callId = rand();
      caller.send(invite(caller, user, sip.sipPort, callId));
      const inv = await phone.request('INVITE');
      expect(header(inv.msg, 'call-id')).toBe(callId);
      phone.send(sipResponse(inv.msg, 486, 'Busy Here', { toTag: 'b1' }));
      expect((await caller.response(486)).status).toBe(486);
      expect(contact.connections()).toBe(0);

      await phone.close();
      await until(async () => (await bindingsOf(sip, user)).length === 0, 'the binding of the closed connection removed');
      if (knex) expect((await knex('location').where({ username: user })).length).toBe(0);
      caller.send(invite(caller, user, sip.sipPort));
      expect(await finalStatus(caller)).toBe(404); // proxy-test: lookup not found
      expect(contact.connections()).toBe(0);
    } finally {
      await caller.close();
      await contact.close();
    }
  });

  test('a NATed UDP phone gets OPTIONS keepalives at its source; a binding of another server_id gets none', async () => {
    const phone = await UdpUa.open(sip.sipPort);
    const foreign = await UdpUa.open(sip.sipPort);
    try {
      const user = `udp${rand()}`;
      // the Via says 5060, the packets come from another port: NAT (nat_uac_test 16)
      phone.send(registerText(phone, user, `<sip:${user}@127.0.0.1:5060>`).replace(`127.0.0.1:${phone.port};branch`, '127.0.0.1:5060;branch'));
      expect((await phone.response(200)).status).toBe(200);
      const [b] = await bindingsOf(sip, user);
      expect(b).toMatchObject({ received: `sip:127.0.0.1:${phone.port}` });
      if (knex) {
        // another instance's NATed binding in the shared table: not ours to keep alive
        const [row] = await knex('location').where({ username: user });
        await knex('location').insert({ ...row, id: undefined, ruid: `other-${rand()}`, server_id: 2, received: `sip:127.0.0.1:${foreign.port}` });
      }
      const ping = await phone.request('OPTIONS', 5000);
      expect(header(ping.msg, 'call-id')).toMatch(/^sfka\./);
      phone.send(sipResponse(ping.msg, 200, 'OK'));
      // two rounds for us, none for the other server's binding
      await phone.request('OPTIONS', 5000);
      await foreign.silence(300, (r) => r.raw.startsWith('OPTIONS'));
    } finally {
      await phone.close();
      await foreign.close();
    }
  });

  test('Path (RFC 3327): a REGISTER through an edge proxy stores its Path; the call reaches the edge with Route, not the PBX', async () => {
    const sbc = await UdpUa.open(sip.sipPort, '127.0.0.1', '127.0.0.5');
    const pbx = await UdpUa.open(sip.sipPort, '127.0.0.1', '127.0.0.6');
    const caller = await UdpUa.open(sip.sipPort);
    try {
      const user = `pbx${rand()}`;
      const route = `<sip:127.0.0.5:${sbc.port};lr>`;
      // the SBC forwards the PBX's REGISTER: its own Via (matching its source), the PBX's Contact
      sbc.send(
        registerText(sbc, user, `<sip:${user}@127.0.0.6:${pbx.port}>`, { Path: route }).replace(
          /Via: SIP\/2\.0\/UDP 127\.0\.0\.1:/,
          'Via: SIP/2.0/UDP 127.0.0.5:',
        ),
      );
      const ok = await sbc.response(200);
      expect(header(ok, 'path')).toBe(route);
      const [b] = await bindingsOf(sip, user);
      expect(b).toMatchObject({ received: null });
      caller.send(invite(caller, user, sip.sipPort));
      const inv = await sbc.request('INVITE');
      expect(header(inv.msg, 'route')).toBe(route);
      expect(inv.msg.uri).toBe(`sip:${user}@127.0.0.6:${pbx.port}`);
      sbc.send(sipResponse(inv.msg, 486, 'Busy Here', { toTag: 'p1' }));
      expect((await caller.response(486)).status).toBe(486);
      await pbx.silence(200);
    } finally {
      await sbc.close();
      await pbx.close();
      await caller.close();
    }
  });
});

describe('bindings tied to their connection: removal off (handle_lost_tcp = 0)', () => {
  let sip: ServeProcess;
  beforeAll(async () => {
    sip = await startServe({
      flows: FLOWS,
      workers: 1,
      logLevel: 'warn',
      config: { defaultLogic: 'proxy-test', registrar: { connections: { removeOnClose: false }, keepalive: { intervalSec: 0 } } },
    });
  }, 90_000);
  afterAll(() => sip?.stop());

  test('the binding stays but is not used: 480, and no connection is opened to its Contact', async () => {
    const contact = await contactListener();
    const phone = await TcpUa.open(sip.tcpPort);
    const caller = await UdpUa.open(sip.sipPort);
    try {
      const user = `kept${rand()}`;
      phone.send(registerText(phone, user, `<sip:${user}@127.0.0.1:${contact.port};transport=tcp>`));
      expect((await phone.response(200)).status).toBe(200);
      // closed from both ends (the server's FIN seen) before the call
      const closed = new Promise((r) => phone.sock.once('close', r));
      phone.sock.end();
      await closed;
      caller.send(invite(caller, user, sip.sipPort));
      expect(await finalStatus(caller)).toBe(480);
      expect(await bindingsOf(sip, user)).toHaveLength(1);
      expect(contact.connections()).toBe(0);
    } finally {
      await caller.close();
      await contact.close();
    }
  });
});
