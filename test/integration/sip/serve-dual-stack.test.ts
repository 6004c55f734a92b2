/**
 * `sipflow serve --sip-host ::` as a process (built CLI): one dual-stack listener.
 *
 * - Requests arriving over IPv4 are answered, over UDP and TCP (the source, '::ffff:a.b.c.d' on
 *   the socket, is written a.b.c.d; the UDP answer must go back under the mapped form, else the
 *   IPv6 socket refuses it with EINVAL and nothing is answered).
 * - With SIP worker threads, a request sent on a TCP connection opened as soon as the port accepts,
 *   before the workers are up, is answered (it was dropped: TCP clients do not retransmit, they
 *   waited 32 s for nothing).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { TcpUa, UdpUa, rand, sipRequest, type Ua } from './ua';

const MAIN = path.resolve(__dirname, '../../../dist/cli/main.js');
const FLOWS = path.join(__dirname, 'fixtures');

/** A port free for TCP and UDP on the dual-stack wildcard. */
async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen({ host: '::', port: 0 }, () => r()));
  const port = (server.address() as net.AddressInfo).port;
  const udp = dgram.createSocket('udp6');
  try {
    await new Promise<void>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind(port, '::', () => resolve());
    });
  } finally {
    await new Promise<void>((r) => udp.close(() => r()));
    await new Promise<void>((r) => server.close(() => r()));
  }
  return port;
}

interface Served {
  child: ChildProcess;
  dataDir: string;
  /** Resolves once the listening line is printed. */
  listening: Promise<void>;
  isListening(): boolean;
}

function serveDualStack(port: number, workers: number): Served {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'sipflow-dual-'));
  const child = spawn(
    process.execPath,
    [
      MAIN,
      'serve',
      '--data-dir',
      dataDir,
      '--directory-url',
      'memory://',
      '--location-url',
      'memory',
      '--flows',
      FLOWS,
      '--sip-host',
      '::',
      '--sip-port',
      String(port),
      '--workers',
      String(workers),
      '--no-http',
      '--log-level',
      'warn',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  let up = false;
  child.stderr!.on('data', (b) => {
    out += b;
  });
  const listening = new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`not listening: ${out}`)), 60_000);
    child.stdout!.on('data', (b) => {
      out += b;
      if (/SIP default listening on :: udp:\d+ tcp:\d+/.test(out)) {
        clearTimeout(t);
        up = true;
        resolve();
      }
    });
    child.once('exit', (code) => {
      clearTimeout(t);
      reject(new Error(`exited ${code}: ${out}`));
    });
  });
  listening.catch(() => undefined);
  return { child, dataDir, listening, isListening: () => up };
}

async function stop(s: Served | undefined): Promise<void> {
  if (!s) return;
  if (s.child.exitCode === null) {
    const code = await new Promise<number | null>((resolve) => {
      s.child.once('exit', (c) => resolve(c));
      s.child.kill('SIGTERM');
    });
    expect(code).toBe(0);
  }
  rmSync(s.dataDir, { recursive: true, force: true });
}

const options = (ua: Ua) => sipRequest({ method: 'OPTIONS', uri: `sip:${ua.host === '::1' ? '[::1]' : ua.host}`, ua });
const register = (ua: Ua, user: string) =>
  sipRequest({
    method: 'REGISTER',
    uri: 'sip:example.test',
    ua,
    from: `<sip:${user}@example.test>`,
    to: `<sip:${user}@example.test>`,
    headers: { Expires: '60' },
  });

/** IPv4 and IPv6 requests over UDP and TCP to the dual-stack listener: each answered. */
async function answersBothFamilies(port: number): Promise<void> {
  for (const host of ['127.0.0.1', '::1']) {
    const udp = await UdpUa.open(port, host);
    const tcp = await TcpUa.open(port, host);
    try {
      for (const ua of [udp, tcp]) {
        ua.send(options(ua));
        expect((await ua.response()).status).toBe(200);
        ua.send(register(ua, 'dual' + rand()));
        expect((await ua.response()).status).toBe(200);
      }
    } finally {
      await udp.close();
      await tcp.close();
    }
  }
}

describe('sipflow serve --sip-host :: --workers 2', () => {
  let served: Served | undefined;
  let port = 0;
  beforeAll(async () => {
    port = await freePort();
    served = serveDualStack(port, 2);
  });
  afterAll(() => stop(served));

  test('a request on a TCP connection opened as soon as the port accepts (workers still starting) is answered', async () => {
    const s = served!;
    const deadline = Date.now() + 60_000;
    let ua: TcpUa | null = null;
    // poll until the port accepts: the earliest moment a client can send
    while (ua === null) {
      try {
        ua = await TcpUa.open(port, '127.0.0.1');
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ECONNREFUSED' || Date.now() > deadline || s.child.exitCode !== null) throw e;
        await new Promise((r) => setTimeout(r, 5));
      }
    }
    try {
      // the window this test is about: the listening line comes once every worker is ready
      expect(s.isListening()).toBe(false);
      ua.send(options(ua));
      // a TCP client does not retransmit: without the fix no answer ever comes
      expect((await ua.response(200, 30_000)).status).toBe(200);
    } finally {
      await ua.close();
    }
  }, 90_000);

  test('IPv4 and IPv6 requests over UDP and TCP are answered', async () => {
    await served!.listening;
    await answersBothFamilies(port);
  }, 30_000);
});

describe('sipflow serve --sip-host :: --workers 1', () => {
  let served: Served | undefined;
  let port = 0;
  beforeAll(async () => {
    port = await freePort();
    served = serveDualStack(port, 1);
    await served.listening;
  }, 60_000);
  afterAll(() => stop(served));

  test('IPv4 and IPv6 requests over UDP and TCP are answered', async () => {
    await answersBothFamilies(port);
  }, 30_000);
});
