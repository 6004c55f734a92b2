/**
 * `sipflow serve --tls-port --tls-cert --tls-key` (the built CLI, two SIP worker threads: the TLS
 * connections live in the dispatcher): a TLS socket beside UDP and TCP on the first listener's
 * host, printed in the listening line; REGISTER over TLS challenged then accepted; an INVITE to a
 * sips: target relayed by a worker goes out over the dispatcher's TLS with the target's name as
 * SNI (the thread protocol carries it); SIGHUP reloads the certificate without stopping;
 * --tls-port without a certificate refuses to start, naming the keys.
 */
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { StreamFramer } from '../../../sip/framing';
import { header } from '../../../sip/message';
import { parseMessage } from '../../../sip/parser';
import { SHIPPED_FLOWS, startServe, type ServeProcess } from '../../support/serve';
import { createPki, type Pki } from '../../support/pki';
import { TlsUa, UdpUa, rand, registerStatus, sipRequest, sipResponse } from './ua';

let pki: Pki;
let serve: ServeProcess;
let tlsPort: number;
let flows: string;
let callee: tls.Server;
const sni: Array<string | false> = [];

beforeAll(async () => {
  pki = createPki();
  const cert = pki.issue('server', 'sipflow-cli');
  const calleeCert = pki.issue('callee', 'callee');
  // a TLS callee answering every INVITE 486, noting the name the connection asked for
  callee = tls.createServer({ cert: readFileSync(calleeCert.cert), key: readFileSync(calleeCert.key) }, (socket) => {
    const framer = new StreamFramer();
    socket.on('error', () => undefined);
    socket.on('data', (chunk: Buffer) => {
      for (const m of framer.push(chunk).messages) {
        const p = parseMessage(m);
        if (!p.ok || !('method' in p.message) || p.message.method !== 'INVITE') continue;
        sni.push(socket.servername ?? false);
        socket.write(sipResponse(p.message, 486, 'Busy Here', { toTag: 'callee' }));
      }
    });
  });
  await new Promise<void>((r) => callee.listen(0, '127.0.0.1', () => r()));
  flows = mkdtempSync(path.join(os.tmpdir(), 'sipflow-tls-flows-'));
  mkdirSync(flows, { recursive: true });
  copyFileSync(path.join(SHIPPED_FLOWS, 'registration.slid'), path.join(flows, 'registration.slid'));
  copyFileSync(path.join(__dirname, 'tls', 'relay-ruri.slid'), path.join(flows, 'relay-ruri.slid'));
  serve = await startServe({
    workers: 2,
    logLevel: 'info',
    flows,
    config: { defaultLogic: 'relay-ruri', routes: [{ method: 'REGISTER', logic: 'registration' }], sip: { tls: { caFile: pki.ca } } },
    args: ['--tls-port', '0', '--tls-cert', cert.cert, '--tls-key', cert.key],
  });
  tlsPort = Number(/ tls:(\d+)/.exec(serve.output())![1]);
}, 90_000);

afterAll(async () => {
  if (serve) expect((await serve.stop()).code).toBe(0);
  if (callee) await new Promise((r) => callee.close(r));
  if (flows) rmSync(flows, { recursive: true, force: true });
  pki?.remove();
});

test('the TLS socket is on the first listener, beside UDP and TCP', () => {
  expect(serve.output()).toMatch(/SIP default listening on 127\.0\.0\.1 udp:\d+ tcp:\d+ tls:\d+ \(2 SIP threads\)/);
  expect(tlsPort).toBeGreaterThan(0);
});

test('REGISTER over TLS: 401, then 200 (through a worker thread and back over the connection)', async () => {
  const ua = await TlsUa.open(tlsPort, { ca: readFileSync(pki.ca), servername: 'localhost' });
  try {
    expect(await registerStatus(ua, 'francesco', '123456')).toBe(200);
  } finally {
    await ua.close();
  }
});

test('an INVITE to a sips: target, relayed by a worker thread: over TLS with SNI = the target name, the callee verified against caFile', async () => {
  const caller = await UdpUa.open(serve.sipPort);
  try {
    const port = (callee.address() as net.AddressInfo).port;
    const uri = `sips:callee@localhost:${port}`;
    const callId = rand();
    caller.send(sipRequest({ method: 'INVITE', uri, ua: caller, callId, to: `<${uri}>`, body: 'v=0\r\n', headers: { 'Content-Type': 'application/sdp' } }));
    const final = await caller.next((r) => !('method' in r.msg) && header(r.msg, 'call-id') === callId && r.msg.status >= 200, 10_000);
    expect((final.msg as { status: number }).status).toBe(486);
    expect(sni).toEqual(['localhost']);
  } finally {
    await caller.close();
  }
});

test('SIGHUP reloads the certificate; the server keeps running', async () => {
  const before = serve.output().length;
  serve.child.kill('SIGHUP');
  await new Promise<void>((resolve) => {
    const check = () => {
      if (/TLS certificate reloaded from sip\.tls\.certFile .*CN=sipflow-cli/.test(serve.output().slice(before))) {
        serve.child.stdout!.off('data', check);
        resolve();
      }
    };
    serve.child.stdout!.on('data', check);
    check();
  });
  const ua = await TlsUa.open(tlsPort, { ca: readFileSync(pki.ca), servername: 'localhost' });
  expect(await registerStatus(ua, 'francesco', '123456')).toBe(200);
  await ua.close();
});

test('--tls-port without a certificate: does not start, and says which keys to set', async () => {
  await expect(startServe({ workers: 1, args: ['--tls-port', '0'] })).rejects.toThrow(
    /command line: invalid configuration\n {2}- listener "default" has a tls socket on port 0: set sip\.tls\.certFile \(--tls-cert\) and sip\.tls\.keyFile \(--tls-key\)/,
  );
}, 60_000);
