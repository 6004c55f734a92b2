/**
 * TCP defences of the transports: the admission gate (caps in total and per source, trusted
 * sources exempt), the open-file clamp, the message timeout (slowloris) and the idle timeout,
 * against real sockets on loopback.
 */
import net from 'node:net';
import { TcpGate, effectiveMaxConnections, openFileLimit } from '../../../sip/tcp-limits';
import { SipTransports, type TcpCloseReason } from '../../../sip/transport';

const OPTIONS =
  'OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:5555;branch=z9hG4bKx\r\nMax-Forwards: 70\r\n' +
  'From: <sip:a@example.test>;tag=1\r\nTo: <sip:b@example.test>\r\nCall-ID: c1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n';

test('gate: total and per-source caps, release frees the slot, trusted sources exempt from the per-source cap only', () => {
  const refused: string[] = [];
  const opens: number[] = [];
  const gate = new TcpGate({
    maxConnections: 4,
    maxPerSource: 2,
    isTrusted: (a) => a === '10.0.0.9',
    onRefused: (reason, a) => refused.push(`${reason} ${a}`),
    onChange: (n) => opens.push(n),
  });
  expect(gate.admit('10.0.0.1')).toBeNull();
  expect(gate.admit('10.0.0.1')).toBeNull();
  expect(gate.admit('10.0.0.1')).toBe('max_per_source');
  expect(gate.admit('10.0.0.9')).toBeNull();
  expect(gate.admit('10.0.0.9')).toBeNull();
  expect(gate.admit('10.0.0.9')).toBe('max_connections'); // trusted: no per-source cap, the total still holds
  expect(gate.open).toBe(4);
  gate.release('10.0.0.1');
  expect(gate.from('10.0.0.1')).toBe(1);
  expect(gate.admit('10.0.0.2')).toBeNull();
  gate.release('192.0.2.1'); // never admitted: ignored
  expect(gate.open).toBe(4);
  expect(refused).toEqual(['max_per_source 10.0.0.1', 'max_connections 10.0.0.9']);
  expect(opens).toEqual([1, 2, 3, 4, 3, 4]);
});

test('open-file limit: parsed from /proc/self/limits; the cap is at most half of it', () => {
  const text =
    'Limit                     Soft Limit           Hard Limit           Units\nMax open files            1024                 524288               files\n';
  expect(openFileLimit(text)).toBe(1024);
  expect(openFileLimit('Max open files            unlimited            unlimited            files\n')).toBeNull();
  expect(openFileLimit('')).toBeNull();
  expect(effectiveMaxConnections(4096, 1024)).toBe(512);
  expect(effectiveMaxConnections(4096, 20000)).toBe(4096);
  expect(effectiveMaxConnections(4096, null)).toBe(4096);
  expect(effectiveMaxConnections(10, 1)).toBe(1);
  if (process.platform === 'linux') expect(openFileLimit()).toBeGreaterThan(0);
});

async function server(o: { messageMs?: number; idleMs?: number; gate?: TcpGate } = {}) {
  const got: string[] = [];
  const closed: TcpCloseReason[] = [];
  const t = new SipTransports({
    host: '127.0.0.1',
    port: 0,
    udp: false,
    tcpMessageTimeoutMs: o.messageMs,
    tcpIdleTimeoutMs: o.idleMs,
    tcpGate: o.gate,
    onMessage: (d) => got.push(d.toString('latin1').split('\r\n')[0]),
    onTcpClosed: (r) => closed.push(r),
  });
  await t.start();
  return { t, got, closed };
}

/** A client socket; `ended` resolves with the ms from connect to close (a reset may come before 'connect' is seen). */
function open(port: number, localAddress = '127.0.0.1'): net.Socket & { ended: Promise<number> } {
  const s = net.connect({ host: '127.0.0.1', port, localAddress }) as net.Socket & { ended: Promise<number> };
  const t0 = Date.now();
  s.ended = new Promise((r) => s.once('close', () => r(Date.now() - t0)));
  s.on('error', () => undefined);
  return s;
}

function connect(port: number, localAddress = '127.0.0.1'): Promise<net.Socket & { ended: Promise<number> }> {
  const s = open(port, localAddress);
  return new Promise((resolve, reject) => {
    s.once('connect', () => resolve(s));
    s.once('close', () => reject(new Error('closed before connect')));
  });
}

test('message timeout: a message trickled byte by byte is cut off; complete messages and keep-alives are not', async () => {
  const { t, got, closed } = await server({ messageMs: 300, idleMs: 5000 });
  const slow = await connect(t.tcpPort);
  const fine = await connect(t.tcpPort);
  try {
    // slowloris: a byte every 50 ms keeps the connection busy but never completes a message
    let i = 0;
    const trickle = setInterval(() => {
      if (!slow.destroyed) slow.write(OPTIONS[i++ % 20]);
    }, 50);
    // a well-behaved client: a complete message, CRLF pings, then another message, over 600 ms
    fine.write(OPTIONS);
    await new Promise((r) => setTimeout(r, 250));
    fine.write('\r\n\r\n');
    await new Promise((r) => setTimeout(r, 250));
    // a message split in two chunks, completed within the timeout
    fine.write(OPTIONS.slice(0, 40));
    await new Promise((r) => setTimeout(r, 100));
    fine.write(OPTIONS.slice(40));
    const ms = await slow.ended;
    clearInterval(trickle);
    expect(ms).toBeGreaterThanOrEqual(250);
    expect(ms).toBeLessThan(1500);
    await new Promise((r) => setTimeout(r, 100));
    expect(fine.destroyed).toBe(false);
    expect(got).toEqual(['OPTIONS sip:127.0.0.1 SIP/2.0', 'OPTIONS sip:127.0.0.1 SIP/2.0']);
    expect(closed).toEqual(['message_timeout']);
  } finally {
    slow.destroy();
    fine.destroy();
    await t.close();
  }
});

test('idle timeout: a silent connection is closed, counted as idle_timeout', async () => {
  const { t, closed } = await server({ messageMs: 5000, idleMs: 200 });
  const s = await connect(t.tcpPort);
  try {
    const ms = await s.ended;
    expect(ms).toBeGreaterThanOrEqual(150);
    expect(ms).toBeLessThan(2000);
    expect(closed).toEqual(['idle_timeout']);
  } finally {
    s.destroy();
    await t.close();
  }
});

test('gate: connections past the per-source cap are reset at once, another source still served; slots freed on close', async () => {
  const gate = new TcpGate({ maxConnections: 100, maxPerSource: 2 });
  const { t, got } = await server({ gate });
  const socks: Array<net.Socket & { ended: Promise<number> }> = [];
  try {
    socks.push(await connect(t.tcpPort, '127.0.0.2'), await connect(t.tcpPort, '127.0.0.2'));
    const third = open(t.tcpPort, '127.0.0.2');
    socks.push(third);
    expect(await third.ended).toBeLessThan(1000);
    const other = await connect(t.tcpPort, '127.0.0.3');
    socks.push(other);
    other.write(OPTIONS);
    for (let i = 0; i < 50 && got.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(got).toHaveLength(1);
    expect(gate.from('127.0.0.2')).toBe(2);
    socks[0].destroy();
    for (let i = 0; i < 50 && gate.from('127.0.0.2') !== 1; i++) await new Promise((r) => setTimeout(r, 20));
    expect(gate.from('127.0.0.2')).toBe(1);
    const again = await connect(t.tcpPort, '127.0.0.2');
    socks.push(again);
    await new Promise((r) => setTimeout(r, 100));
    expect(again.destroyed).toBe(false);
    expect(gate.open).toBe(3);
  } finally {
    for (const s of socks) s.destroy();
    await t.close();
  }
  for (let i = 0; i < 50 && gate.open !== 0; i++) await new Promise((r) => setTimeout(r, 20));
  expect(gate.open).toBe(0);
});
