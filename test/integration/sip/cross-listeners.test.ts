/**
 * Relays that change transport or address family, through `serve()` as `sipflow serve` runs it
 * (one SIP thread, and two worker threads): an IPv4 listener (127.0.0.1, UDP and TCP) and an IPv6
 * one (::1, UDP and TCP).
 *
 * - The relay leaves from the socket of the destination's family, any listener's: an INVITE from
 *   an IPv6 trunk reaches a phone registered over IPv4 (it failed with 503, `send EINVAL`, from
 *   the receiving listener's IPv6 socket), and the answers come back through the other listener.
 * - Record-Route: two entries when transport or family change (Kamailio's double routing), the
 *   top one naming the callee's side, so a UDP-only caller sends its ACK and BYE over UDP (with one
 *   `;transport=tcp` entry it was pushed onto TCP); one entry when nothing changes; both entries
 *   consumed and both signatures checked.
 * - No socket of the destination's family: 503 and a log line saying so.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import type { RunContext } from '../../../engine/types';
import { createDigestAuth } from '../../../services/auth';
import { createMemoryDirectory } from '../../../services/directory/memory';
import { createMemoryLocationStore } from '../../../services/location/memory';
import { createRegistrar } from '../../../services/location/registrar';
import { parseConfig } from '../../../server/config';
import { createLogger, logPort } from '../../../server/logger';
import { serve, type ListeningInfo, type ServeHandle } from '../../../server/serve';
import { loadFlows, startSipServer } from '../../../server/sip-server';
import { header, headerList, parseVia, type SipRequest } from '../../../sip/message';
import { TcpUa, UdpUa, hostPart, rand, sipRequest, sipResponse, type Ua } from './ua';

const FIXTURES = path.join(__dirname, 'fixtures');

type Side = 'udp4' | 'tcp4' | 'udp6' | 'tcp6';

describe.each([1, 2])('serve() with %d SIP thread(s), listeners on 127.0.0.1 and ::1', (workers) => {
  let handle: ServeHandle;
  let dataDir = '';
  const port = { 4: 0, 6: 0 };

  beforeAll(async () => {
    dataDir = mkdtempSync(path.join(os.tmpdir(), 'sipflow-families-'));
    const config = parseConfig(
      JSON.stringify({
        dataDir,
        flows: FIXTURES,
        directory: { url: 'memory://' },
        location: { url: 'memory' },
        http: { enabled: false },
        log: { level: 'error' },
        sip: {
          workers,
          recordRoute: true,
          listeners: [
            { name: 'v4', host: '127.0.0.1', port: 0 },
            { name: 'v6', host: '::1', port: 0 },
          ],
        },
      }),
      'test',
    );
    let info: ListeningInfo[] = [];
    handle = await serve({ config, logger: createLogger({ level: 'error' }), onListening: (l) => (info = l) });
    port[4] = info.find((l) => l.name === 'v4')!.udpPort;
    port[6] = info.find((l) => l.name === 'v6')!.udpPort;
    expect(info.every((l) => l.udpPort === l.tcpPort)).toBe(true);
  }, 60_000);
  afterAll(async () => {
    await handle?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  const open = (side: Side): Promise<Ua> => {
    const v6 = side.endsWith('6');
    const host = v6 ? '::1' : '127.0.0.1';
    const p = port[v6 ? 6 : 4];
    return side.startsWith('udp') ? UdpUa.open(p, host) : TcpUa.open(p, host);
  };
  const contactOf = (ua: Ua, user: string) => `<sip:${user}@${hostPart(ua.host)}:${ua.port}${ua.proto === 'tcp' ? ';transport=tcp' : ''}>`;
  /** Our Record-Route entry for a listener and transport, with its signature. */
  const ours = (v: 4 | 6, proto: 'udp' | 'tcp') =>
    new RegExp(`^<sip:${v === 4 ? '127\\.0\\.0\\.1' : '\\[::1\\]'}:${port[v]}${proto === 'tcp' ? ';transport=tcp' : ''};lr;sfr=[\\w-]{22}>$`);

  async function register(ua: Ua, user: string): Promise<void> {
    const contact = contactOf(ua, user);
    ua.send(
      sipRequest({
        method: 'REGISTER',
        uri: 'sip:example.test',
        ua,
        from: `<sip:${user}@example.test>`,
        to: `<sip:${user}@example.test>`,
        contact,
        headers: { Expires: '300' },
      }),
    );
    expect((await ua.response()).status).toBe(200);
  }

  /** A call from `caller` to `callee` through sipflow, answered 200 and acknowledged: what each side saw. */
  async function call(caller: Ua, callee: Ua, user: string, calleeContact = contactOf(callee, user)) {
    const callId = rand();
    const callerTag = 'c' + rand();
    const calleeTag = 'e' + rand();
    caller.send(sipRequest({ method: 'INVITE', uri: `sip:${user}@example.test`, ua: caller, callId, fromTag: callerTag, to: `<sip:${user}@example.test>` }));
    const { msg: invite } = await callee.request('INVITE');
    const rr = headerList(invite, 'record-route');
    callee.send(sipResponse(invite, 200, 'OK', { toTag: calleeTag, headers: { Contact: calleeContact, 'Record-Route': rr.join(', ') } }));
    const ok = await caller.response(200);
    const routeSet = headerList(ok, 'record-route');
    const calleeUri = calleeContact.slice(1, -1);
    const callerUri = contactOf(caller, 'alice').slice(1, -1);
    const fromCaller = (method: string, cseq: number) =>
      sipRequest({
        method,
        uri: calleeUri,
        ua: caller,
        callId,
        cseq,
        fromTag: callerTag,
        to: `<sip:${user}@example.test>;tag=${calleeTag}`,
        headers: { Route: [...routeSet].reverse().join(', ') },
      });
    const fromCallee = (method: string, cseq: number) =>
      sipRequest({
        method,
        uri: callerUri,
        ua: callee,
        callId,
        cseq,
        from: `<sip:${user}@example.test>`,
        fromTag: calleeTag,
        to: `<sip:alice@example.test>;tag=${callerTag}`,
        headers: { Route: rr.join(', ') },
      });
    caller.send(fromCaller('ACK', 1));
    const { msg: ack } = await callee.request('ACK');
    return { invite, rr, routeSet, ack, fromCaller, fromCallee };
  }

  /** The BYE of one party reaches the other, and its 200 comes back. */
  async function bye(from: Ua, to: Ua, text: string): Promise<SipRequest> {
    from.send(text);
    const { msg } = await to.request('BYE');
    to.send(sipResponse(msg, 200, 'OK'));
    expect((await from.response(200)).status).toBe(200);
    return msg;
  }

  test.each<[string, Side, Side, Array<[4 | 6, 'udp' | 'tcp']>]>([
    [
      'an IPv6 trunk → a phone registered over IPv4',
      'udp6',
      'udp4',
      [
        [4, 'udp'],
        [6, 'udp'],
      ],
    ],
    [
      'a UDP caller → a TCP callee',
      'udp4',
      'tcp4',
      [
        [4, 'tcp'],
        [4, 'udp'],
      ],
    ],
    [
      'an IPv4 caller → an IPv6 callee',
      'udp4',
      'udp6',
      [
        [6, 'udp'],
        [4, 'udp'],
      ],
    ],
    [
      'a TCP IPv6 caller → a UDP IPv4 callee',
      'tcp6',
      'udp4',
      [
        [4, 'udp'],
        [6, 'tcp'],
      ],
    ],
    ['nothing changes (UDP IPv4 both)', 'udp4', 'udp4', [[4, 'udp']]],
  ])(
    '%s: Record-Route names each side; ACK and both BYEs go through over each side’s own transport',
    async (_, callerSide, calleeSide, expected) => {
      const caller = await open(callerSide);
      const callee = await open(calleeSide);
      try {
        const user = 'u' + rand();
        await register(callee, user);

        // 1st call: the caller acknowledges and hangs up
        const first = await call(caller, callee, user);
        // the relay leaves from the callee's side: its Via names that socket, responses come back there
        const top = parseVia(headerList(first.invite, 'via')[0])!;
        expect(top.transport).toBe(callee.proto.toUpperCase());
        expect(top.host).toBe(hostPart(callee.host));
        expect(top.port).toBe(port[calleeSide.endsWith('6') ? 6 : 4]);
        expect(first.rr).toHaveLength(expected.length);
        expected.forEach(([v, proto], i) => expect(first.rr[i]).toMatch(ours(v, proto)));
        expect(first.routeSet).toEqual(first.rr);
        // our entries are consumed: the callee sees the caller's ACK without a Route
        expect(header(first.ack, 'route')).toBeUndefined();
        const byCaller = await bye(caller, callee, first.fromCaller('BYE', 2));
        expect(header(byCaller, 'route')).toBeUndefined();

        // 2nd call: the callee hangs up
        const second = await call(caller, callee, user);
        await bye(callee, caller, second.fromCallee('BYE', 1));
      } finally {
        await caller.close();
        await callee.close();
      }
    },
    20_000,
  );

  test('a TCP callee whose Contact omits ;transport=tcp is still reached over TCP: the second entry consumed names the transport', async () => {
    const caller = await open('udp4');
    const callee = await open('tcp4');
    try {
      const user = 't' + rand();
      await register(callee, user);
      const c = await call(caller, callee, user, `<sip:${user}@127.0.0.1:${callee.port}>`);
      expect(header(c.ack, 'cseq')).toBe('1 ACK');
      await bye(caller, callee, c.fromCaller('BYE', 2));
    } finally {
      await caller.close();
      await callee.close();
    }
  }, 20_000);

  test('both entries of a double Record-Route must carry the dialog signature: a forged second one gets 404, not relayed', async () => {
    const caller = await open('udp4');
    const callee = await open('tcp4');
    try {
      const user = 'f' + rand();
      await register(callee, user);
      // a call that fails: the route entries are signed for its Call-ID, but no dialog is remembered
      const callId = rand();
      caller.send(sipRequest({ method: 'INVITE', uri: `sip:${user}@example.test`, ua: caller, callId, fromTag: 'ff', to: `<sip:${user}@example.test>` }));
      const { msg: invite } = await callee.request('INVITE');
      const [out, inn] = headerList(invite, 'record-route');
      callee.send(sipResponse(invite, 486, 'Busy Here', { toTag: 'busy' }));
      expect((await caller.response(486)).status).toBe(486);
      const byeWith = (route: string) =>
        sipRequest({
          method: 'BYE',
          uri: contactOf(callee, user).slice(1, -1),
          ua: caller,
          callId,
          cseq: 2,
          fromTag: 'ff',
          to: `<sip:${user}@example.test>;tag=busy`,
          headers: { Route: route },
        });
      caller.send(byeWith(`${inn}, ${out.replace(/sfr=[\w-]+/, 'sfr=' + 'A'.repeat(22))}`));
      expect((await caller.response(404)).status).toBe(404);
      // control: both signed → relayed
      await bye(caller, callee, byeWith(`${inn}, ${out}`));
      expect(callee.inbox.filter((r) => r.raw.startsWith('BYE'))).toHaveLength(0);
    } finally {
      await caller.close();
      await callee.close();
    }
  }, 20_000);
});

test('no socket of the destination’s family: 503, and the log line says which', async () => {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  const location = createRegistrar(createMemoryLocationStore());
  const ctx: RunContext = {
    directory: createMemoryDirectory({}),
    location,
    auth: createDigestAuth({ secret: 'sipflow-families-test-secret-0123456789' }),
    clock: { now: Date.now },
  };
  // an IPv6-only listener, and a binding at an IPv4 address
  const server = await startSipServer({
    service: loadFlows(path.join(FIXTURES, 'test-flows.slid')).service,
    ctx,
    log: logPort(createLogger({ level: 'warn', destination })),
    host: '::1',
    port: 0,
    defaultLogic: 'proxy-test',
    recordRoute: true,
  });
  const trunk = await UdpUa.open(server.udpPort, '::1');
  try {
    const user = 'v4only' + rand();
    const r = await location.register({
      username: user,
      domain: 'example.test',
      contacts: [`<sip:${user}@127.0.0.1:5999>`],
      expiresHeader: '300',
      callId: rand(),
      cseq: 1,
      userAgent: 'test',
      received: null,
      socket: null,
      path: null,
      now: new Date(),
    });
    expect(r.status).toBe(200);
    trunk.send(sipRequest({ method: 'INVITE', uri: `sip:${user}@example.test`, ua: trunk, to: `<sip:${user}@example.test>` }));
    expect((await trunk.response(503)).status).toBe(503);
    expect(lines.join('')).toMatch(/relay to 127\.0\.0\.1:5999\/udp: no UDP socket reaches IPv4 address 127\.0\.0\.1/);
  } finally {
    await trunk.close();
    await server.close(0);
  }
});
