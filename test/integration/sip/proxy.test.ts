/**
 * Stateful relay over real sockets: a UAS socket registers a binding, a caller INVITEs it through
 * sipflow; provisional/final responses, ACK/BYE by Record-Route, CANCEL, unreachable bindings,
 * store failures, and the other outcomes (exit, redirect, reply).
 */
import path from 'path';
import type { RunContext } from '../../../engine/types';
import { createDigestAuth } from '../../../services/auth';
import { createMemoryDirectory } from '../../../services/directory/memory';
import { createMemoryLocationStore } from '../../../services/location/memory';
import { createRegistrar } from '../../../services/location/registrar';
import { LocationUnavailableError, type LocationPort } from '../../../services/location/types';
import { header, headerList, parseVia } from '../../../sip/message';
import { loadFlows, startSipServer, type SipServer } from '../../../server/sip-server';
import { TcpUa, UdpUa, rand, sipRequest, sipResponse } from './ua';

const FLOWS = path.join(__dirname, 'fixtures', 'test-flows.slid');
const T1 = 50; // fast timers: Timer B/F = 64·T1 = 3.2 s

function memoryCtx(location?: LocationPort): RunContext {
  return {
    directory: createMemoryDirectory({}),
    location: location ?? createRegistrar(createMemoryLocationStore()),
    auth: createDigestAuth({ secret: 'sipflow-proxy-test-secret-0123456789' }),
    clock: { now: Date.now },
  };
}

let server: SipServer;
beforeAll(async () => {
  server = await startSipServer({
    service: loadFlows(FLOWS).service,
    ctx: memoryCtx(),
    host: '127.0.0.1',
    port: 0,
    defaultLogic: 'proxy-test',
    recordRoute: true,
    timers: { t1: T1 },
    routes: [
      { method: 'MESSAGE', logic: 'exit-only' },
      { method: 'SUBSCRIBE', logic: 'redirect-test' },
      { method: 'PUBLISH', logic: 'reply-test' },
    ],
  });
});
afterAll(() => server?.close(100));

/** Registers `user` → contact from the UAS's own socket (so no NAT `received` is stored). */
async function registerBinding(uas: UdpUa | TcpUa, user: string, contact?: string): Promise<void> {
  uas.send(
    sipRequest({
      method: 'REGISTER',
      uri: 'sip:example.test',
      ua: uas,
      from: `<sip:${user}@example.test>`,
      to: `<sip:${user}@example.test>`,
      contact: contact ?? `<sip:${user}@127.0.0.1:${uas.port}${uas.proto === 'tcp' ? ';transport=tcp' : ''}>`,
      headers: { Expires: '300' },
    }),
  );
  expect((await uas.response()).status).toBe(200);
}

describe('relay', () => {
  let caller: UdpUa;
  let uas: UdpUa;
  beforeEach(async () => {
    caller = await UdpUa.open(server.udpPort);
    uas = await UdpUa.open(server.udpPort);
  });
  afterEach(async () => {
    await caller.close();
    await uas.close();
  });

  test('INVITE reaches the binding with a new top Via and Max-Forwards - 1; 180/200 reach the caller; ACK and BYE follow the Record-Route', async () => {
    const user = 'bob' + rand();
    await registerBinding(uas, user);
    const callId = rand();
    caller.send(
      sipRequest({
        method: 'INVITE',
        uri: `sip:${user}@example.test`,
        ua: caller,
        callId,
        to: `<sip:${user}@example.test>`,
        fromTag: 'caller1',
        body: 'v=0\r\n',
        headers: { 'Content-Type': 'application/sdp' },
      }),
    );
    expect((await caller.response(100)).status).toBe(100);

    const { msg: inv } = await uas.request('INVITE');
    expect(inv.uri).toBe(`sip:${user}@127.0.0.1:${uas.port}`);
    const vias = headerList(inv, 'via');
    expect(vias).toHaveLength(2);
    const top = parseVia(vias[0])!;
    expect(top.branch).toMatch(/^z9hG4bK/);
    expect(top.port).toBe(server.udpPort);
    expect(vias[1]).toContain(`127.0.0.1:${caller.port}`);
    expect(header(inv, 'max-forwards')).toBe('69');
    // our Record-Route carries the dialog signature (sfr) that lets ACK and BYE through later
    expect(header(inv, 'record-route')).toMatch(new RegExp(`^<sip:127\\.0\\.0\\.1:${server.udpPort};lr;sfr=[\\w-]{22}>$`));
    expect(inv.body.toString()).toBe('v=0\r\n');

    uas.send(sipResponse(inv, 180, 'Ringing', { toTag: 'uas1' }));
    const ringing = await caller.response(180);
    expect(headerList(ringing, 'via')).toHaveLength(1);
    expect(header(ringing, 'to')).toContain('tag=uas1');
    uas.send(
      sipResponse(inv, 200, 'OK', { toTag: 'uas1', headers: { Contact: `<sip:${user}@127.0.0.1:${uas.port}>`, 'Record-Route': header(inv, 'record-route')! } }),
    );
    const ok = await caller.response(200);
    expect(headerList(ok, 'via')).toHaveLength(1);

    // ACK and BYE: Request-URI = the UAS contact, Route = our Record-Route
    const route = header(ok, 'record-route')!;
    const inDialog = (method: string, cseq: number) =>
      sipRequest({
        method,
        uri: `sip:${user}@127.0.0.1:${uas.port}`,
        ua: caller,
        callId,
        cseq,
        fromTag: 'caller1',
        to: `<sip:${user}@example.test>;tag=uas1`,
        headers: { Route: route },
      });
    caller.send(inDialog('ACK', 1));
    const { msg: ack } = await uas.request('ACK');
    expect(ack.headers.route).toBeUndefined();
    expect(headerList(ack, 'via')).toHaveLength(2);
    caller.send(inDialog('BYE', 2));
    const { msg: bye } = await uas.request('BYE');
    uas.send(sipResponse(bye, 200, 'OK'));
    expect(header(await caller.response(200), 'cseq')).toBe('2 BYE');
  });

  test('Proxy-Authorization for our realm (the From host) is consumed, not passed on to the binding', async () => {
    const user = 'pa' + rand();
    await registerBinding(uas, user);
    caller.send(
      sipRequest({
        method: 'INVITE',
        uri: `sip:${user}@example.test`,
        ua: caller,
        to: `<sip:${user}@example.test>`,
        headers: {
          'Proxy-Authorization':
            'Digest username="alice", realm="example.test", nonce="n", uri="sip:x@example.test", response="00000000000000000000000000000000"',
          'X-Kept': 'yes',
        },
      }),
    );
    const { msg: inv } = await uas.request('INVITE');
    expect(header(inv, 'proxy-authorization')).toBeUndefined();
    expect(header(inv, 'x-kept')).toBe('yes');
    uas.send(sipResponse(inv, 486, 'Busy Here', { toTag: 'busy' }));
    expect((await caller.response(486)).status).toBe(486);
  });

  test('in-dialog requests sent to sipflow without a Route reach the other party (dialog table), and only it', async () => {
    const user = 'dlg' + rand();
    await registerBinding(uas, user);
    const callId = rand();
    caller.send(sipRequest({ method: 'INVITE', uri: `sip:${user}@example.test`, ua: caller, callId, to: `<sip:${user}@example.test>`, fromTag: 'c2' }));
    const { msg: inv } = await uas.request('INVITE');
    uas.send(sipResponse(inv, 200, 'OK', { toTag: 'u2', headers: { Contact: `<sip:${user}@127.0.0.1:${uas.port}>` } }));
    await caller.response(200);
    const inDialog = (method: string, cseq: number) =>
      sipRequest({
        method,
        uri: `sip:${user}@127.0.0.1:${server.udpPort}`,
        ua: caller,
        callId,
        cseq,
        fromTag: 'c2',
        to: `<sip:${user}@example.test>;tag=u2`,
      });
    caller.send(inDialog('ACK', 1));
    await uas.request('ACK');
    // a UA that sends everything to its outbound proxy: addressed to the callee's own Contact
    const toContact = (uri: string, cseq: number) =>
      sipRequest({
        method: 'INFO',
        uri,
        ua: caller,
        callId,
        cseq,
        fromTag: 'c2',
        to: `<sip:${user}@example.test>;tag=u2`,
      });
    caller.send(toContact(`sip:${user}@127.0.0.1:${uas.port}`, 2));
    const { msg: info } = await uas.request('INFO');
    uas.send(sipResponse(info, 200, 'OK'));
    expect(header(await caller.response(200), 'cseq')).toBe('2 INFO');
    // …but never to a target of its choosing, even inside the dialog (no open relay)
    caller.send(toContact('sip:gateway@127.0.0.1:9', 3));
    expect((await caller.response(404)).status).toBe(404);
    caller.send(inDialog('BYE', 4));
    const { msg: bye } = await uas.request('BYE');
    uas.send(sipResponse(bye, 200, 'OK'));
    expect((await caller.response(200)).status).toBe(200);
  });

  test('CANCEL → 200 to the CANCEL, CANCEL forwarded to the branch, 487 to the INVITE, ACK for the 487 generated', async () => {
    const user = 'carol' + rand();
    await registerBinding(uas, user);
    const callId = rand();
    const branch = 'z9hG4bK' + rand();
    const spec = { uri: `sip:${user}@example.test`, ua: caller, callId, branch, to: `<sip:${user}@example.test>`, fromTag: 'c3' };
    caller.send(sipRequest({ method: 'INVITE', ...spec }));
    const { msg: inv } = await uas.request('INVITE');
    uas.send(sipResponse(inv, 180, 'Ringing', { toTag: 'u3' }));
    await caller.response(180);
    caller.send(sipRequest({ method: 'CANCEL', ...spec, contact: null }));
    expect(header(await caller.response(200), 'cseq')).toBe('1 CANCEL');
    const { msg: cancel } = await uas.request('CANCEL');
    expect(parseVia(headerList(cancel, 'via')[0])!.branch).toBe(parseVia(headerList(inv, 'via')[0])!.branch);
    uas.send(sipResponse(cancel, 200, 'OK', { toTag: 'u3' }));
    uas.send(sipResponse(inv, 487, 'Request Terminated', { toTag: 'u3' }));
    expect((await caller.response(487)).status).toBe(487);
    const { msg: ack } = await uas.request('ACK');
    expect(header(ack, 'cseq')).toBe('1 ACK');
  });

  test('a UAS that never answers → 408 after Timer B', async () => {
    const user = 'mute' + rand();
    await registerBinding(uas, user);
    caller.send(sipRequest({ method: 'INVITE', uri: `sip:${user}@example.test`, ua: caller, to: `<sip:${user}@example.test>` }));
    await uas.request('INVITE');
    await uas.request('INVITE', 1000); // Timer A retransmission
    const t0 = Date.now();
    expect((await caller.response(408, 5000)).status).toBe(408);
    expect(Date.now() - t0).toBeLessThan(4000);
  });

  test('a binding whose TCP connection closed → 480, no new connection (bindings tied to their connection)', async () => {
    // registered over a TCP connection that is then closed: the binding is tied to it
    const reg = await TcpUa.open(server.tcpPort);
    const user = 'gone' + rand();
    await registerBinding(reg, user);
    await reg.close();
    await new Promise((r) => setTimeout(r, 50));
    caller.send(sipRequest({ method: 'INVITE', uri: `sip:${user}@example.test`, ua: caller, to: `<sip:${user}@example.test>` }));
    expect((await caller.response(480, 3000)).status).toBe(480);
  });

  test('no binding → 404 from the lookup node', async () => {
    caller.send(sipRequest({ method: 'INVITE', uri: 'sip:nobody@example.test', ua: caller, to: '<sip:nobody@example.test>' }));
    expect((await caller.response(404)).status).toBe(404);
  });

  test('non-INVITE relay: MESSAGE-like OPTIONS to a user is relayed and answered', async () => {
    const user = 'opt' + rand();
    await registerBinding(uas, user);
    caller.send(sipRequest({ method: 'OPTIONS', uri: `sip:${user}@example.test`, ua: caller, to: `<sip:${user}@example.test>` }));
    const { msg } = await uas.request('OPTIONS');
    expect(header(msg, 'record-route')).toBeUndefined();
    uas.send(sipResponse(msg, 200, 'OK', { toTag: 'x' }));
    expect((await caller.response(200)).status).toBe(200);
  });
});

describe('relay over TCP', () => {
  test('INVITE from a UDP caller reaches a TCP-registered UAS over its connection; responses come back', async () => {
    const caller = await UdpUa.open(server.udpPort);
    const uas = await TcpUa.open(server.tcpPort);
    try {
      const user = 'tcp' + rand();
      // registered over the UAS's own connection
      uas.send(
        sipRequest({
          method: 'REGISTER',
          uri: 'sip:example.test',
          ua: uas,
          from: `<sip:${user}@example.test>`,
          to: `<sip:${user}@example.test>`,
          headers: { Expires: '300' },
        }),
      );
      expect((await uas.response()).status).toBe(200);
      caller.send(sipRequest({ method: 'INVITE', uri: `sip:${user}@example.test`, ua: caller, to: `<sip:${user}@example.test>` }));
      const { msg: inv } = await uas.request('INVITE');
      expect(headerList(inv, 'via')[0]).toMatch(/^SIP\/2\.0\/TCP /);
      uas.send(sipResponse(inv, 486, 'Busy Here', { toTag: 't' }));
      expect((await caller.response(486)).status).toBe(486);
      expect(header((await uas.request('ACK')).msg, 'cseq')).toBe('1 ACK');
    } finally {
      await caller.close();
      await uas.close();
    }
  });
});

describe('other outcomes', () => {
  let ua: UdpUa;
  beforeEach(async () => {
    ua = await UdpUa.open(server.udpPort);
  });
  afterEach(() => ua.close());

  test('exit at top level → 404 Not Found (default route)', async () => {
    ua.send(sipRequest({ method: 'MESSAGE', uri: 'sip:x@example.test', ua }));
    const r = await ua.response();
    expect([r.status, r.reason]).toEqual([404, 'Not Found']);
  });

  test('redirect → 302 with one Contact per target', async () => {
    ua.send(sipRequest({ method: 'SUBSCRIBE', uri: 'sip:x@example.test', ua, headers: { Event: 'presence' } }));
    const r = await ua.response(302);
    expect(headerList(r, 'contact')).toEqual(['<sip:a@192.0.2.1>', '<sip:b@192.0.2.2:5070>']);
  });

  test('reply → the code, reason and headers of the node', async () => {
    ua.send(sipRequest({ method: 'PUBLISH', uri: 'sip:dave@example.test', ua, headers: { Event: 'presence' } }));
    const r = await ua.response(486);
    expect(r.reason).toBe('Busy dave');
    expect(header(r, 'x-why')).toBe('test');
  });
});

describe('store failure', () => {
  test('location store down → 503 + Retry-After', async () => {
    const failing: LocationPort = {
      register: () => Promise.reject(new LocationUnavailableError('down', 7)),
      lookup: () => Promise.reject(new LocationUnavailableError('down', 7)),
    };
    const s = await startSipServer({ service: loadFlows(FLOWS).service, ctx: memoryCtx(failing), host: '127.0.0.1', port: 0, defaultLogic: 'proxy-test' });
    const ua = await UdpUa.open(s.udpPort);
    try {
      ua.send(sipRequest({ method: 'REGISTER', uri: 'sip:example.test', ua, to: '<sip:alice@example.test>', from: '<sip:alice@example.test>' }));
      const r = await ua.response();
      expect(r.status).toBe(503);
      expect(header(r, 'retry-after')).toBe('7');
    } finally {
      await ua.close();
      await s.close(50);
    }
  });

  test('an exception in a node → 500, and the server keeps serving', async () => {
    const throwing: LocationPort = {
      register: () => {
        throw new TypeError('boom');
      },
      lookup: () => Promise.resolve([]),
    };
    const lines: Array<{ level: string; message: string; fields?: Record<string, unknown> }> = [];
    const log = {
      log: (level: string, message: string, fields?: Record<string, unknown>) => {
        lines.push({ level, message, fields });
      },
    };
    const s = await startSipServer({
      service: loadFlows(FLOWS).service,
      ctx: memoryCtx(throwing),
      host: '127.0.0.1',
      port: 0,
      defaultLogic: 'proxy-test',
      log,
    });
    const ua = await UdpUa.open(s.udpPort);
    try {
      ua.send(
        sipRequest({ method: 'REGISTER', uri: 'sip:example.test', ua, callId: 'boom-call', to: '<sip:alice@example.test>', from: '<sip:alice@example.test>' }),
      );
      expect((await ua.response()).status).toBe(500);
      // the log line names the Call-ID as a field (structured), the cause in the message
      expect(lines.find((l) => l.level === 'error')).toMatchObject({
        message: expect.stringContaining('boom'),
        fields: { callId: 'boom-call', method: 'REGISTER' },
      });
      ua.send(sipRequest({ method: 'OPTIONS', uri: 'sip:127.0.0.1', ua }));
      expect((await ua.response()).status).toBe(200);
    } finally {
      await ua.close();
      await s.close(50);
    }
  });
});

test('a request for our domain (an alias, no port) is local whatever port we listen on: in-dialog BYE → 404, not relayed', async () => {
  const s2 = await startSipServer({
    service: loadFlows(FLOWS).service,
    ctx: memoryCtx(),
    host: '127.0.0.1',
    port: 0,
    defaultLogic: 'proxy-test',
    aliases: ['nl.netaxis.be'],
  });
  const ua = await UdpUa.open(s2.udpPort);
  try {
    ua.send(sipRequest({ method: 'BYE', uri: 'sip:nobody@nl.netaxis.be', ua, to: '<sip:nobody@nl.netaxis.be>;tag=gone' }));
    expect((await ua.response()).status).toBe(404);
  } finally {
    await ua.close();
    await s2.close(100);
  }
});
