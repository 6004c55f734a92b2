/**
 * `sipflow serve --tls-port --tls-cert --tls-key` (the built CLI, two SIP worker threads: the TLS
 * connections live in the dispatcher): a TLS socket beside UDP and TCP on the first listener's
 * host, printed in the listening line; REGISTER over TLS challenged then accepted; SIGHUP reloads
 * the certificate without stopping; --tls-port without a certificate refuses to start, naming the
 * keys.
 */
import { readFileSync } from 'node:fs';
import { startServe, type ServeProcess } from '../../support/serve';
import { createPki, type Pki } from '../../support/pki';
import { TlsUa, registerStatus } from './ua';

let pki: Pki;
let serve: ServeProcess;
let tlsPort: number;

beforeAll(async () => {
  pki = createPki();
  const cert = pki.issue('server', 'sipflow-cli');
  serve = await startServe({ workers: 2, logLevel: 'info', args: ['--tls-port', '0', '--tls-cert', cert.cert, '--tls-key', cert.key] });
  tlsPort = Number(/ tls:(\d+)/.exec(serve.output())![1]);
}, 90_000);

afterAll(async () => {
  if (serve) expect((await serve.stop()).code).toBe(0);
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
