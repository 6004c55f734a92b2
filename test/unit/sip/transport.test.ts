import dgram from 'node:dgram';
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
