/**
 * SIP over WebSocket (RFC 7118) over real sockets: a `ws` client speaks as JsSIP does (Via WS with
 * an `.invalid` host, Contact `sip:…@….invalid;transport=ws`), registers with digest credentials
 * and receives a call a UDP caller places through sipflow; the same over WSS with a throwaway
 * self-signed certificate; and the bad input of the issue: no `sip` subprotocol, a 10 MB frame, a
 * frame that is not SIP, a client closing mid-transaction. One server for the suite.
 */
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { header, headerList } from '../../../sip/message';
import { TcpGate } from '../../../sip/tcp-limits';
import { forwardedSource } from '../../../sip/transports';
import { openRuntime, type Runtime } from '../../../server/runtime';
import { loadFlows, startSipServer, type SipServer } from '../../../server/sip-server';
import { createPki, type Pki } from '../../support/pki';
import { answerChallenge } from '../../support/sip';
import { UdpUa, Ua, rand, sipRequest, sipResponse } from './ua';

const ROOT = path.resolve(__dirname, '../../..');
const DOMAIN = 'nl.netaxis.be';

/** A browser phone's WebSocket: one SIP message per WebSocket message. */
class WsUa extends Ua {
  readonly port: number;
  readonly closed: Promise<{ code: number; reason: string }>;
  private constructor(
    readonly proto: 'ws' | 'wss',
    readonly socket: WebSocket,
  ) {
    super();
    this.port = (socket as unknown as { _socket: { localPort: number } })._socket.localPort;
    socket.on('message', (data: Buffer) => this.deliver(data, { address: '127.0.0.1', port: 0 }));
    socket.on('error', () => undefined);
    this.closed = new Promise((resolve) => socket.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  }
  static open(url: string, protocols: string[] = ['sip']): Promise<WsUa> {
    const socket = new WebSocket(url, protocols, { rejectUnauthorized: false });
    return new Promise((resolve, reject) => {
      socket.once('open', () => resolve(new WsUa(url.startsWith('wss:') ? 'wss' : 'ws', socket)));
      socket.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
      socket.once('error', reject);
    });
  }
  send(text: string | Buffer): void {
    this.socket.send(text);
  }
  close(): Promise<void> {
    this.socket.terminate();
    return this.closed.then(() => undefined);
  }
}

/** JsSIP's REGISTER: Via WS/WSS with an `.invalid` sent-by, Contact `…@….invalid;transport=ws`. */
function jssipRegister(ua: WsUa, o: { callId: string; cseq: number; contactUser: string; authorization?: string }): string {
  return [
    `REGISTER sip:${DOMAIN} SIP/2.0`,
    `Via: SIP/2.0/${ua.proto.toUpperCase()} ${o.contactUser}.invalid;branch=z9hG4bK${rand()}`,
    'Max-Forwards: 69',
    `To: <sip:francesco@${DOMAIN}>`,
    `From: <sip:francesco@${DOMAIN}>;tag=${o.callId.slice(0, 6)}`,
    `Call-ID: ${o.callId}`,
    `CSeq: ${o.cseq} REGISTER`,
    `Contact: <sip:${o.contactUser}@${o.contactUser}.invalid;transport=ws>;+sip.ice;expires=300`,
    'Expires: 300',
    ...(o.authorization ? [`Authorization: ${o.authorization}`] : []),
    'User-Agent: JsSIP 3.13.8',
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n');
}

/** REGISTER → 401 → REGISTER with credentials → the final response. */
async function registerOver(ua: WsUa, contactUser: string) {
  const callId = rand();
  ua.send(jssipRegister(ua, { callId, cseq: 1, contactUser }));
  const challenge = await ua.response(401);
  const authorization = answerChallenge(header(challenge, 'www-authenticate')!, {
    username: 'francesco',
    password: '123456',
    method: 'REGISTER',
    uri: `sip:${DOMAIN}`,
  });
  ua.send(jssipRegister(ua, { callId, cseq: 2, contactUser, authorization }));
  return ua.response();
}

let rt: Runtime;
let server: SipServer;
let dir: string;
let pki: Pki;
const warnings: string[] = [];
const waiters: Array<{ re: RegExp; resolve: (line: string) => void }> = [];
/** The next warning matching `re` (or one logged already since the last call for it). */
function warning(re: RegExp): Promise<string> {
  const i = warnings.findIndex((w) => re.test(w));
  if (i >= 0) return Promise.resolve(warnings.splice(i, 1)[0]);
  return new Promise((resolve) => waiters.push({ re, resolve }));
}
let wsUrl: string;
let wssUrl: string;

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'sipflow-ws-'));
  // a throwaway self-signed certificate for WSS (test/support/pki.ts)
  pki = createPki();
  const cert = pki.selfSigned('wss', 'localhost');
  // REGISTER: the shipped registration logic (digest); anything else: relayed to the user's bindings
  const flows = path.join(dir, 'flows');
  mkdirSync(flows);
  copyFileSync(path.join(ROOT, 'flows/registration.slid'), path.join(flows, 'registration.slid'));
  copyFileSync(path.join(__dirname, 'fixtures/test-flows.slid'), path.join(flows, 'test-flows.slid'));
  const loaded = loadFlows(flows);
  rt = await openRuntime({ dataDir: dir, directoryUrl: 'memory://', provision: true, nonceSecret: 'sipflow-websocket-test-secret' });
  server = await startSipServer({
    service: loaded.service,
    resolve: loaded.resolve,
    ctx: rt.ctx,
    host: '127.0.0.1',
    port: 0,
    sockets: [{ transport: 'udp' }, { transport: 'ws' }, { transport: 'wss' }],
    routes: [{ method: 'REGISTER', logic: 'registration' }],
    defaultLogic: 'proxy-test',
    recordRoute: true,
    tls: { certFile: cert.cert, keyFile: cert.key, verifyClient: 'off', verifyServer: true, handshakeTimeoutMs: 5000 },
    tcpGate: new TcpGate({ maxConnections: 100, maxPerSource: 50 }),
    log: {
      log: (level: string, message: string) => {
        if (level !== 'warn') return;
        const i = waiters.findIndex((w) => w.re.test(message));
        if (i >= 0) waiters.splice(i, 1)[0].resolve(message);
        else warnings.push(message);
      },
    },
  });
  wsUrl = `ws://127.0.0.1:${server.ports.get('ws')}`;
  wssUrl = `wss://127.0.0.1:${server.ports.get('wss')}`;
}, 60_000);

afterAll(async () => {
  await server?.close(100);
  await rt?.close();
  rmSync(dir, { recursive: true, force: true });
  pki?.remove();
});

/** A UDP caller INVITEs francesco through sipflow; the INVITE must arrive on `phone`, which answers 200. */
async function callReaches(phone: WsUa, contactUser: string): Promise<void> {
  const caller = await UdpUa.open(server.udpPort);
  try {
    const callId = rand();
    caller.send(
      sipRequest({
        method: 'INVITE',
        uri: `sip:francesco@${DOMAIN}`,
        ua: caller,
        callId,
        to: `<sip:francesco@${DOMAIN}>`,
        fromTag: 'caller1',
        body: 'v=0\r\n',
        headers: { 'Content-Type': 'application/sdp' },
      }),
    );
    const { msg: invite } = await phone.request('INVITE');
    expect(invite.uri).toBe(`sip:${contactUser}@${contactUser}.invalid;transport=ws`);
    const vias = headerList(invite, 'via');
    // the Contact says transport=ws over WSS too (RFC 7118 §5.2): the relay's Via names WS then, the message goes over the WSS connection
    expect(vias[0]).toMatch(/^SIP\/2\.0\/WSS? 127\.0\.0\.1:\d+;/);
    // two Record-Routes (RFC 5658 double routing) or one: the phone's side names the WebSocket transport
    expect(headerList(invite, 'record-route').join(',')).toMatch(/;transport=wss?;/);
    phone.send(sipResponse(invite, 200, 'OK', { toTag: 'phone1', headers: { Contact: `<sip:${contactUser}@${contactUser}.invalid;transport=ws>` } }));
    const ok = await caller.response(200);
    expect(header(ok, 'call-id')).toBe(callId);
  } finally {
    await caller.close();
  }
}

describe('SIP over WebSocket', () => {
  test('REGISTER over WS → 401 → 200 with the .invalid contact; an INVITE from a UDP caller arrives over that WebSocket', async () => {
    const phone = await WsUa.open(wsUrl);
    try {
      const ok = await registerOver(phone, 'wsphone');
      expect(ok.status).toBe(200);
      expect(header(ok, 'contact')).toContain('@wsphone.invalid;transport=ws>');
      // the response came back over the connection, with the Via's received naming the source
      expect(headerList(ok, 'via')[0]).toContain('received=127.0.0.1');
      await callReaches(phone, 'wsphone');
    } finally {
      await phone.close();
      // unregister-free: the next test's binding replaces nothing, the relay tries every binding
    }
  });

  test('over WSS (self-signed certificate): register, then a call arrives over the TLS WebSocket', async () => {
    const phone = await WsUa.open(wssUrl);
    try {
      expect((await registerOver(phone, 'wssphone')).status).toBe(200);
      await callReaches(phone, 'wssphone');
    } finally {
      await phone.close();
    }
  });

  test('a call to a user whose WebSocket closed fails upstream (no outgoing WebSocket is opened)', async () => {
    const phone = await WsUa.open(wsUrl);
    const ok = await registerOver(phone, 'gonephone');
    expect(ok.status).toBe(200);
    // a browser closing its tab: close frame, answered (the server knows it is closed once this resolves)
    phone.socket.close(1001);
    await phone.closed;
    const caller = await UdpUa.open(server.udpPort);
    try {
      caller.send(
        sipRequest({
          method: 'INVITE',
          uri: `sip:francesco@${DOMAIN}`,
          ua: caller,
          to: `<sip:francesco@${DOMAIN}>`,
          body: 'v=0\r\n',
          headers: { 'Content-Type': 'application/sdp' },
        }),
      );
      // every earlier phone is gone too: each branch fails at once
      const final = await caller.next((r) => 'status' in r.msg && r.msg.status >= 300);
      expect([480, 503]).toContain((final.msg as { status: number }).status);
    } finally {
      await caller.close();
    }
  });
});

describe('WebSocket bad input', () => {
  test('a handshake without the "sip" subprotocol is refused (400) with a log line', async () => {
    await expect(WsUa.open(wsUrl, ['chat'])).rejects.toThrow('HTTP 400');
    expect(await warning(/without the "sip" subprotocol/)).toMatch(/^ws 127\.0\.0\.1:\d+: WebSocket handshake without the "sip" subprotocol/);
    await expect(WsUa.open(wsUrl, [])).rejects.toThrow('HTTP 400');
  });

  test('a 10 MB frame closes the connection with 1009 and one log line naming the source; the server still serves another client', async () => {
    const big = await WsUa.open(wsUrl);
    big.send(Buffer.alloc(10 * 1024 * 1024, 0x41));
    expect((await big.closed).code).toBe(1009);
    expect(await warning(/Max payload size exceeded/)).toMatch(new RegExp(`^ws 127\\.0\\.0\\.1:${big.port}: .*limited to 65535 bytes`));
    const other = await WsUa.open(wsUrl);
    try {
      other.send(jssipRegister(other, { callId: rand(), cseq: 1, contactUser: 'after' }));
      expect((await other.response(401)).status).toBe(401);
    } finally {
      await other.close();
    }
  });

  test('a message that is not SIP closes the connection (1008) with a log line', async () => {
    const ua = await WsUa.open(wsUrl);
    ua.send('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    expect((await ua.closed).code).toBe(1008);
    expect(await warning(/is not a SIP message/)).toMatch(
      new RegExp(`^ws 127\\.0\\.0\\.1:${ua.port}: text message of \\d+ bytes is not a SIP message \\(starts "GET / HTTP`),
    );
  });

  test('invalid UTF-8 in a text frame closes the connection (1007)', async () => {
    const ua = await WsUa.open(wsUrl);
    ua.socket.send(Buffer.from([0x49, 0x4e, 0xff, 0xfe]), { binary: false });
    expect((await ua.closed).code).toBe(1007);
  });

  test('a keep-alive (CRLFCRLF) is answered with CRLF', async () => {
    const ua = await WsUa.open(wsUrl);
    try {
      const pong = new Promise<string>((resolve) => ua.socket.once('message', (d: Buffer) => resolve(d.toString())));
      ua.send('\r\n\r\n');
      expect(await pong).toBe('\r\n');
    } finally {
      await ua.close();
    }
  });

  test('a client that closes mid-transaction (INVITE relayed, no answer yet) crashes nothing; the server serves the next client', async () => {
    const phone = await WsUa.open(wsUrl);
    expect((await registerOver(phone, 'midphone')).status).toBe(200);
    const caller = await UdpUa.open(server.udpPort);
    try {
      caller.send(sipRequest({ method: 'INVITE', uri: `sip:francesco@${DOMAIN}`, ua: caller, to: `<sip:francesco@${DOMAIN}>`, body: 'v=0\r\n' }));
      await phone.request('INVITE');
      // half a SIP message in flight, then the connection drops (no close frame)
      // a masked text frame announcing 256 bytes, 2 of them sent
      (phone.socket as unknown as { _socket: { write(b: Buffer): void } })._socket.write(Buffer.from([0x81, 0xfe, 0x01, 0x00, 0, 0, 0, 0, 0x53, 0x49]));
      await phone.close();
      const after = await WsUa.open(wsUrl);
      try {
        after.send(jssipRegister(after, { callId: rand(), cseq: 1, contactUser: 'x' }));
        expect((await after.response(401)).status).toBe(401);
      } finally {
        await after.close();
      }
    } finally {
      await caller.close();
    }
  });

  test('X-Forwarded-For is believed only from a trusted proxy, nearest untrusted hop first', () => {
    const trusted = (a: string) => a === '127.0.0.1' || a === '10.0.0.2';
    expect(forwardedSource('127.0.0.1', '198.51.100.7', trusted)).toBe('198.51.100.7');
    expect(forwardedSource('127.0.0.1', '203.0.113.1, 198.51.100.7, 10.0.0.2', trusted)).toBe('198.51.100.7');
    expect(forwardedSource('192.0.2.1', '198.51.100.7', trusted)).toBe('192.0.2.1');
    expect(forwardedSource('127.0.0.1', 'unknown', trusted)).toBe('127.0.0.1');
    expect(forwardedSource('127.0.0.1', '198.51.100.7', undefined)).toBe('127.0.0.1');
  });
});
