import dgram from 'node:dgram';
import net from 'node:net';
import { SipTransports, literalFirstLookup } from '../../../sip/transport';

const noop = () => undefined;

test('reuseAddr never takes a UDP port another socket already holds (even one bound with SO_REUSEADDR)', async () => {
  const other = dgram.createSocket({ type: 'udp4', reuseAddr: true });
  await new Promise<void>((r) => other.bind({ address: '127.0.0.1', port: 0 }, () => r()));
  const port = other.address().port;
  try {
    const t = new SipTransports({ host: '127.0.0.1', port, tcp: false, reuseAddr: true, onMessage: noop });
    await expect(t.start()).rejects.toThrow(/EADDRINUSE/);
    await t.close();
  } finally {
    other.close();
  }
});

test('reuseAddr: a free port is bound, a second socket can send from it, rebindUdp takes reception back', async () => {
  const got: string[] = [];
  const t = new SipTransports({ host: '127.0.0.1', port: 0, tcp: false, reuseAddr: true, onMessage: (d) => got.push(d.toString()) });
  await t.start();
  const sender = dgram.createSocket({ type: 'udp4', reuseAddr: true });
  await new Promise<void>((r) => sender.bind({ address: '127.0.0.1', port: t.udpPort }, () => r()));
  expect(sender.address().port).toBe(t.udpPort);
  await t.rebindUdp();
  const client = dgram.createSocket('udp4');
  try {
    for (let i = 0; i < 5; i++) client.send(`m${i}`, t.udpPort, '127.0.0.1');
    await new Promise((r) => setTimeout(r, 200));
    expect(got).toEqual(['m0', 'm1', 'm2', 'm3', 'm4']);
  } finally {
    client.close();
    sender.close();
    await t.close();
  }
});

test('send lookup: IP literals answered synchronously, names through DNS', async () => {
  const got: unknown[] = [];
  literalFirstLookup('127.0.0.1', 4, (err, address, family) => got.push([err, address, family]));
  literalFirstLookup('::1', 6, (err, address, family) => got.push([err, address, family]));
  expect(got).toEqual([
    [null, '127.0.0.1', 4],
    [null, '::1', 6],
  ]);
  const named = await new Promise<[Error | null, string]>((resolve) => literalFirstLookup('localhost', 4, (err, address) => resolve([err, address])));
  expect(named).toEqual([null, '127.0.0.1']);
});

describe('flow-only sends (a binding tied to its connection)', () => {
  const MSG = 'OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nContent-Length: 0\r\n\r\n';

  test('over the binding connection only while its remote end is the binding’s; never to another peer, never a new connection', async () => {
    const ids: number[] = [];
    const t = new SipTransports({ host: '127.0.0.1', port: 0, udp: false, onMessage: (_d, peer) => ids.push(peer.conn!.id) });
    await t.start();
    const client = net.connect({ host: '127.0.0.1', port: t.portOf('tcp') });
    await new Promise((r) => client.once('connect', r));
    const received: string[] = [];
    client.on('data', (b) => received.push(b.toString()));
    client.write(MSG);
    while (ids.length === 0) await new Promise((r) => setTimeout(r, 5));
    const connId = ids[0];
    const send = (address: string, port: number) =>
      new Promise<Error | null>((r) => t.send(Buffer.from(MSG), { proto: 'tcp', address, port, connId, flowOnly: true }, r));

    // control: the binding's own address and port → delivered over the connection
    expect(await send('127.0.0.1', client.localPort!)).toBeNull();
    while (received.length === 0) await new Promise((r) => setTimeout(r, 5));
    expect(received.join('')).toContain('OPTIONS sip:x@127.0.0.1');
    // the id now names a connection of another peer (reuse after a restart or wrap): refused
    const other = await send('127.0.0.9', 5060);
    expect(other?.message).toMatch(/is now 127\.0\.0\.1:\d+'s, not the binding's 127\.0\.0\.9:5060/);
    // the connection closed: refused, and no connection is opened instead
    client.destroy();
    while (t.connection('tcp', connId) !== undefined) await new Promise((r) => setTimeout(r, 5));
    expect((await send('127.0.0.1', client.localPort!))?.message).toMatch(/connection \d+ is closed/);
    expect(t.connections).toBe(0);
    await t.close();
  });
});
