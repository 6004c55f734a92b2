/**
 * SIP over TLS with node's TLS client and a throwaway CA (test/support/pki.ts), two in-process
 * servers: a registrar (the shipped registration logic) and a relay with client certificates
 * required. Registration with sips: URIs, certificate reload without restart (and a broken
 * replacement kept out), handshakes that never complete or are not TLS, a client that closes
 * mid-message, client-certificate verification, and relays to sips: / transport=tls targets
 * reaching a node TLS server as the callee (SNI, server verification, a callee whose certificate
 * is not trusted → 503).
 */
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { StreamFramer } from '../../../sip/framing';
import { header, headerList, parseVia, type SipRequest } from '../../../sip/message';
import { parseMessage } from '../../../sip/parser';
import { TcpGate } from '../../../sip/tcp-limits';
import { SipTransports, type TcpCloseReason, type TlsSettings } from '../../../sip/transport';
import { openRuntime, type Runtime } from '../../../server/runtime';
import { loadFlows, startSipServer, type SipServer } from '../../../server/sip-server';
import { createPki, type Pki } from '../../support/pki';
import { answerChallenge } from '../../support/sip';
import { TlsUa, UdpUa, rand, sipRequest, sipResponse } from './ua';

const REGISTRATION = path.resolve(__dirname, '../../../flows/registration.slid');
const RELAY = path.join(__dirname, 'tls', 'relay-ruri.slid');
const HANDSHAKE_MS = 1000;

let pki: Pki;
let ca: Buffer;
let certDir: string;
let dataDir: string;
let rt: Runtime;
let registrar: SipServer;
let relay: SipServer;
let serverKeyPem: string;
/** Issued up front: openssl runs synchronously, and the servers share this event loop. */
let certs: Record<'serverB' | 'client' | 'rogue' | 'callee' | 'untrusted', { cert: string; key: string }>;

// ------------------------------------------------------------------ log lines, awaited
const logs: string[] = [];
let logWaiters: Array<{ re: RegExp; from: number; resolve: (l: string) => void }> = [];
const log = {
  log(_level: string, message: string) {
    logs.push(message);
    logWaiters = logWaiters.filter((w) => {
      if (logs.length - 1 < w.from || !w.re.test(message)) return true;
      w.resolve(message);
      return false;
    });
  },
};
/** The first log line matching `re` from index `from` on (already there or coming); rejects after 5 s. */
function logged(re: RegExp, from = 0): Promise<string> {
  const found = logs.slice(from).find((l) => re.test(l));
  if (found !== undefined) return Promise.resolve(found);
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no log line ${re} within 5 s; got:\n${logs.slice(from).join('\n')}`)), 5000);
    logWaiters.push({
      re,
      from,
      resolve: (l) => {
        clearTimeout(t);
        resolve(l);
      },
    });
  });
}

/** Replaces a file the way certbot and editors do: a new file renamed over the old one. */
function replace(file: string, content: string | Buffer): void {
  writeFileSync(file + '.new', content);
  renameSync(file + '.new', file);
}

const settings = (o: Partial<TlsSettings>): TlsSettings => ({
  verifyClient: 'off',
  verifyServer: true,
  handshakeTimeoutMs: HANDSHAKE_MS,
  reloadCheckSec: 1,
  ...o,
});
const tlsPort = (s: SipServer) => s.ports.get('tls')!;

beforeAll(async () => {
  pki = createPki();
  ca = readFileSync(pki.ca);
  const a = pki.issue('server-a', 'sipflow-a');
  certs = {
    serverB: pki.issue('server-b', 'sipflow-b'),
    client: pki.issue('client', 'alice', { client: true }),
    rogue: pki.selfSigned('rogue-client', 'rogue'),
    callee: pki.issue('callee', 'callee'),
    untrusted: pki.selfSigned('untrusted-callee', 'untrusted'),
  };
  certDir = mkdtempSync(path.join(os.tmpdir(), 'sipflow-certs-'));
  writeFileSync(path.join(certDir, 'sip.pem'), readFileSync(a.cert));
  serverKeyPem = readFileSync(a.key, 'utf8');
  writeFileSync(path.join(certDir, 'sip.key'), serverKeyPem);
  dataDir = mkdtempSync(path.join(os.tmpdir(), 'sipflow-tls-'));
  rt = await openRuntime({ dataDir, directoryUrl: 'memory://', provision: true, nonceSecret: 'sipflow-tls-test-secret' });
  registrar = await startSipServer({
    service: loadFlows(REGISTRATION).service,
    ctx: rt.ctx,
    log,
    host: '127.0.0.1',
    port: 0,
    sockets: [{ transport: 'udp' }, { transport: 'tls' }],
    tls: settings({ certFile: path.join(certDir, 'sip.pem'), keyFile: path.join(certDir, 'sip.key') }),
  });
  relay = await startSipServer({
    service: loadFlows(RELAY).service,
    ctx: rt.ctx,
    log,
    host: '127.0.0.1',
    port: 0,
    defaultLogic: 'relay-ruri',
    recordRoute: true,
    sockets: [{ transport: 'udp' }, { transport: 'tls' }],
    tls: settings({ certFile: a.cert, keyFile: a.key, caFile: pki.ca, verifyClient: 'required' }),
  });
}, 60_000);

afterAll(async () => {
  await registrar?.close(100);
  await relay?.close(100);
  await rt?.close();
  for (const d of [dataDir, certDir]) if (d) rmSync(d, { recursive: true, force: true });
  pki?.remove();
});

afterAll(() => {
  // whatever a test did, no log line ever carries the private key
  const body = serverKeyPem.split('\n')[1];
  expect(logs.join('\n')).not.toContain(body);
  expect(logs.join('\n')).not.toContain('PRIVATE KEY');
});

const trustCa = () => ({ ca, servername: 'localhost' });
const subjectOf = (ua: TlsUa) => ua.sock.getPeerCertificate().subject.CN;

async function options(ua: TlsUa): Promise<number> {
  ua.send(sipRequest({ method: 'OPTIONS', uri: 'sip:127.0.0.1', ua, contact: null }));
  return (await ua.response()).status;
}

/** Raw TCP to a TLS port: `closed` resolves when the server closed it (a reset may come before the connect is seen). */
function rawConnect(port: number, send?: string): Promise<{ localPort: number; closed: Promise<void> }> {
  const s = net.connect({ host: '127.0.0.1', port });
  s.on('error', () => undefined);
  const closed = new Promise<void>((r) => s.once('close', () => r()));
  return new Promise((resolve) => {
    s.once('connect', () => {
      if (send !== undefined) s.write(send);
      resolve({ localPort: s.localPort!, closed });
    });
    void closed.then(() => resolve({ localPort: 0, closed }));
  });
}

test('REGISTER over TLS with sips: URIs: 401, then 200 with the sips: contact stored as it is; Via TLS', async () => {
  const ua = await TlsUa.open(tlsPort(registrar), trustCa());
  try {
    expect(ua.sock.authorized).toBe(true);
    const callId = rand();
    const contact = `<sips:francesco@127.0.0.1:${ua.port}>`;
    const register = (cseq: number, authorization?: string) =>
      sipRequest({
        method: 'REGISTER',
        uri: 'sips:nl.netaxis.be',
        ua,
        callId,
        cseq,
        from: '<sips:francesco@nl.netaxis.be>',
        to: '<sips:francesco@nl.netaxis.be>',
        contact,
        headers: { Expires: '300', ...(authorization ? { Authorization: authorization } : {}) },
      });
    ua.send(register(1));
    const challenge = await ua.response(401);
    expect(headerList(challenge, 'via')[0]).toMatch(/^SIP\/2\.0\/TLS /);
    const authorization = answerChallenge(header(challenge, 'www-authenticate')!, {
      username: 'francesco',
      password: '123456',
      method: 'REGISTER',
      uri: 'sips:nl.netaxis.be',
    });
    ua.send(register(2, authorization));
    const ok = await ua.response(200);
    expect(header(ok, 'contact')).toContain(`sips:francesco@127.0.0.1:${ua.port}`);
    const found = await rt.ctx.location.lookup('francesco', 'nl.netaxis.be', new Date());
    expect(found.map((b) => b.contact)).toContain(`sips:francesco@127.0.0.1:${ua.port}`);
  } finally {
    await ua.close();
  }
});

test('certificate files replaced: new connections get the new certificate without a restart; a broken replacement keeps it and warns', async () => {
  const before = await TlsUa.open(tlsPort(registrar), trustCa());
  expect(subjectOf(before)).toBe('sipflow-a');

  const b = certs.serverB;
  let mark = logs.length;
  replace(path.join(certDir, 'sip.key'), readFileSync(b.key));
  replace(path.join(certDir, 'sip.pem'), readFileSync(b.cert));
  expect(await logged(/TLS certificate reloaded .*CN=sipflow-b, valid until \d{4}-/, mark)).toBeTruthy();
  const after = await TlsUa.open(tlsPort(registrar), trustCa());
  expect(subjectOf(after)).toBe('sipflow-b');
  // the connection made before keeps working with the old certificate
  expect(await options(before)).toBe(200);

  mark = logs.length;
  replace(path.join(certDir, 'sip.pem'), 'not a certificate\n');
  expect(
    await logged(/TLS certificate not reloaded, the previous one stays in use: sip\.tls\.certFile \(.*sip\.pem\): not a PEM certificate/, mark),
  ).toBeTruthy();
  const third = await TlsUa.open(tlsPort(registrar), trustCa());
  expect(subjectOf(third)).toBe('sipflow-b');
  expect(await options(third)).toBe(200);
  for (const ua of [before, after, third]) await ua.close();
});

test('a handshake that never completes (nothing sent, or plain SIP) is closed within the timeout and logged; others keep being served', async () => {
  const mark = logs.length;
  const silent = await rawConnect(tlsPort(registrar));
  const plain = await rawConnect(tlsPort(registrar), 'OPTIONS sip:127.0.0.1 SIP/2.0\r\nContent-Length: 0\r\n\r\n');
  await Promise.all([silent.closed, plain.closed]);
  await logged(new RegExp(`^tls 127\\.0\\.0\\.1:${silent.localPort}: handshake not complete within ${HANDSHAKE_MS} ms; closing$`), mark);
  await logged(new RegExp(`^tls 127\\.0\\.0\\.1:${plain.localPort}: handshake failed \\(\\w+\\); closing$`), mark);
  const ua = await TlsUa.open(tlsPort(registrar), trustCa());
  expect(await options(ua)).toBe(200);
  await ua.close();
});

test('a client that closes mid-message: logged with the bytes discarded; the server keeps serving', async () => {
  const mark = logs.length;
  const ua = await TlsUa.open(tlsPort(registrar), trustCa());
  const half = sipRequest({ method: 'OPTIONS', uri: 'sip:127.0.0.1', ua, contact: null }).slice(0, 60);
  await new Promise<void>((r) => ua.sock.write(half, () => r()));
  ua.sock.end();
  await logged(new RegExp(`^tls 127\\.0\\.0\\.1:${ua.port}: closed mid-message \\(60 bytes of an incomplete message discarded\\)$`), mark);
  const next = await TlsUa.open(tlsPort(registrar), trustCa());
  expect(await options(next)).toBe(200);
  await next.close();
});

test('admission by the TcpGate comes before the handshake: a source over its cap is reset while its first handshake is still pending', async () => {
  const gate = new TcpGate({ maxConnections: 10, maxPerSource: 1 });
  const closed: TcpCloseReason[] = [];
  const t = new SipTransports({
    host: '127.0.0.1',
    port: 0,
    sockets: [{ transport: 'tls' }],
    tls: settings({ certFile: certs.serverB.cert, keyFile: certs.serverB.key }),
    tcpGate: gate,
    onMessage: () => undefined,
    onTcpClosed: (r) => closed.push(r),
  });
  await t.start();
  try {
    const pending = await rawConnect(t.portOf('tls')); // holds the source's one slot, sends nothing
    expect(gate.from('127.0.0.1')).toBe(1);
    const refused = await rawConnect(t.portOf('tls'));
    await refused.closed;
    await pending.closed; // the handshake timeout, then the slot is free again
    expect(closed).toEqual(['tls_handshake']);
    await new Promise((r) => setImmediate(r));
    expect(gate.from('127.0.0.1')).toBe(0);
  } finally {
    await t.close();
  }
});

describe('client certificates required (sip.tls.verifyClient)', () => {
  test('no client certificate: closed, logged', async () => {
    const mark = logs.length;
    const ua = await TlsUa.open(tlsPort(relay), trustCa()).catch(() => null);
    if (ua) await ua.closed();
    await logged(/^tls 127\.0\.0\.1:\d+: no client certificate \(sip\.tls\.verifyClient is required\); closing$/, mark);
  });

  test('a certificate not from the CA: closed, logged', async () => {
    const mark = logs.length;
    const rogue = certs.rogue;
    const ua = await TlsUa.open(tlsPort(relay), { ...trustCa(), cert: readFileSync(rogue.cert), key: readFileSync(rogue.key) }).catch(() => null);
    if (ua) await ua.closed();
    await logged(/^tls 127\.0\.0\.1:\d+: client certificate not valid \(\w+\); closing$/, mark);
  });

  test('a certificate from the CA: served', async () => {
    const client = certs.client;
    const ua = await TlsUa.open(tlsPort(relay), { ...trustCa(), cert: readFileSync(client.cert), key: readFileSync(client.key) });
    expect(await options(ua)).toBe(200);
    await ua.close();
  });
});

// ------------------------------------------------------------------ a callee behind TLS
interface Callee {
  port: number;
  /** INVITEs received, with the SNI the connection asked for. */
  next(): Promise<{ req: SipRequest; serverName: string | false }>;
  close(): Promise<void>;
}

async function startCallee(cert: { cert: string; key: string }): Promise<Callee> {
  const queue: Array<{ req: SipRequest; serverName: string | false }> = [];
  const waiters: Array<(x: { req: SipRequest; serverName: string | false }) => void> = [];
  const sockets = new Set<tls.TLSSocket>();
  const server = tls.createServer({ cert: readFileSync(cert.cert), key: readFileSync(cert.key) }, (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    const framer = new StreamFramer();
    socket.on('error', () => undefined);
    socket.on('data', (chunk: Buffer) => {
      for (const m of framer.push(chunk).messages) {
        const p = parseMessage(m);
        if (!p.ok || !('method' in p.message)) continue;
        const req = p.message;
        if (req.method === 'INVITE') socket.write(sipResponse(req, 486, 'Busy Here', { toTag: 'callee' }));
        else if (req.method !== 'ACK') socket.write(sipResponse(req, 200, 'OK'));
        if (req.method !== 'INVITE') continue;
        const item = { req, serverName: socket.servername ?? false };
        const w = waiters.shift();
        if (w) w(item);
        else queue.push(item);
      }
    });
  });
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as net.AddressInfo).port,
    next: () => (queue.length ? Promise.resolve(queue.shift()!) : new Promise((r) => waiters.push(r))),
    close: () =>
      new Promise((r) => {
        server.close(() => r());
        for (const s of sockets) s.destroy();
      }),
  };
}

describe('relay to TLS targets', () => {
  let callee: Callee;
  let byAddress: Callee;
  let caller: UdpUa;
  beforeAll(async () => {
    const cert = certs.callee;
    callee = await startCallee(cert);
    // another callee: sipflow reuses the connection it opened to the first
    byAddress = await startCallee(cert);
    caller = await UdpUa.open(relay.udpPort);
  });
  afterAll(async () => {
    await caller?.close();
    await callee?.close();
    await byAddress?.close();
  });

  async function call(uri: string): Promise<number> {
    const callId = rand();
    caller.send(sipRequest({ method: 'INVITE', uri, ua: caller, callId, to: `<${uri}>`, body: 'v=0\r\n', headers: { 'Content-Type': 'application/sdp' } }));
    const final = await caller.next((r) => !('method' in r.msg) && header(r.msg, 'call-id') === callId && r.msg.status >= 200, 5000);
    return (final.msg as { status: number }).status;
  }

  test('sips: Request-URI with a host name: over TLS, SNI = the name, the callee verified against caFile; Via and Record-Route name TLS', async () => {
    const status = call(`sips:callee@localhost:${callee.port}`);
    const { req, serverName } = await callee.next();
    expect(serverName).toBe('localhost');
    expect(req.uri).toBe(`sips:callee@localhost:${callee.port}`);
    const top = parseVia(headerList(req, 'via')[0])!;
    expect(top.transport).toBe('TLS');
    expect(top.port).toBe(tlsPort(relay));
    expect(headerList(req, 'record-route').join(',')).toContain(`<sip:127.0.0.1:${tlsPort(relay)};transport=tls;lr;`);
    expect(await status).toBe(486);
  });

  test('transport=tls to an IP address: over TLS without SNI, the certificate checked against the IP', async () => {
    const status = call(`sip:callee@127.0.0.1:${byAddress.port};transport=tls`);
    const { req, serverName } = await byAddress.next();
    expect(serverName).toBe(false);
    expect(parseVia(headerList(req, 'via')[0])!.transport).toBe('TLS');
    expect(await status).toBe(486);
  });

  test('a callee whose certificate is not trusted: 503, and a log line saying why', async () => {
    const untrusted = await startCallee(certs.untrusted);
    try {
      const mark = logs.length;
      expect(await call(`sips:callee@localhost:${untrusted.port}`)).toBe(503);
      await logged(new RegExp(`^relay to 127\\.0\\.0\\.1:${untrusted.port}/tls: .*self[- ]signed certificate`), mark);
    } finally {
      await untrusted.close();
    }
  });
});
