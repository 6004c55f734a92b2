/** HEP v3 datagrams byte by byte (services/hep/encode.ts) and the collector address (parseHepCollector). */
import { encodeHep, hepIpProtocol, type HepMessage } from '../../../services/hep/encode';
import { parseHepCollector } from '../../../services/hep/sender';

const sip = Buffer.from('REGISTER sip:example.com SIP/2.0\r\nCall-ID: abc@host\r\nContent-Length: 0\r\n\r\n');

const message = (over: Partial<HepMessage> = {}): HepMessage => ({
  proto: 'udp',
  src: { address: '192.0.2.10', port: 5062 },
  dst: { address: '198.51.100.1', port: 5060 },
  at: 1_700_000_000_123.456,
  payload: sip,
  correlationId: 'abc@host',
  remote: 'src',
  ...over,
});

/** The chunks of a datagram in order: [vendor, type, value]. */
function chunks(d: Buffer): Array<[number, number, Buffer]> {
  expect(d.toString('latin1', 0, 4)).toBe('HEP3');
  expect(d.readUInt16BE(4)).toBe(d.length);
  const out: Array<[number, number, Buffer]> = [];
  let o = 6;
  while (o < d.length) {
    const len = d.readUInt16BE(o + 4);
    expect(len).toBeGreaterThanOrEqual(6);
    out.push([d.readUInt16BE(o), d.readUInt16BE(o + 2), d.subarray(o + 6, o + len)]);
    o += len;
  }
  expect(o).toBe(d.length);
  return out;
}

const hex = (b: Buffer) => b.toString('hex');

describe('encodeHep', () => {
  it('writes every chunk of an IPv4 UDP message in siptrace order, vendor 0, big-endian', () => {
    const d = encodeHep(message(), { captureId: 2001, password: null });
    if (typeof d === 'string') throw new Error(d);
    const c = chunks(d);
    expect(c.every(([vendor]) => vendor === 0)).toBe(true);
    expect(c.map(([, type, v]) => [type, hex(v)])).toEqual([
      [0x0001, '02'], // AF_INET
      [0x0002, '11'], // UDP
      [0x0003, 'c000020a'], // 192.0.2.10
      [0x0004, 'c6336401'], // 198.51.100.1
      [0x0007, '13c6'], // 5062
      [0x0008, '13c4'], // 5060
      [0x0009, (1_700_000_000).toString(16).padStart(8, '0')],
      [0x000a, (123_456).toString(16).padStart(8, '0')],
      [0x000b, '01'], // SIP
      [0x000c, '000007d1'], // 2001
      [0x0011, hex(Buffer.from('abc@host'))],
      [0x000f, hex(sip)],
    ]);
  });

  it('writes IPv6 addresses in chunks 0x0005/0x0006 with family 10, and the auth key when set', () => {
    const d = encodeHep(
      message({ proto: 'tcp', src: { address: '2001:db8::1', port: 5060 }, dst: { address: '2001:db8:0:0:1::2', port: 40000 }, remote: 'dst' }),
      { captureId: 7, password: 'k3y' },
    );
    if (typeof d === 'string') throw new Error(d);
    const c = new Map(chunks(d).map(([, t, v]) => [t, hex(v)]));
    expect(c.get(0x0001)).toBe('0a');
    expect(c.get(0x0002)).toBe('06');
    expect(c.get(0x0005)).toBe('20010db8000000000000000000000001');
    expect(c.get(0x0006)).toBe('20010db8000000000001000000000002');
    expect(c.has(0x0003)).toBe(false);
    expect(c.get(0x0007)).toBe('13c4');
    expect(c.get(0x0008)).toBe('9c40');
    expect(c.get(0x000c)).toBe('00000007');
    expect(c.get(0x000e)).toBe(hex(Buffer.from('k3y')));
    expect(chunks(d).map(([, t]) => t)).toEqual([1, 2, 5, 6, 7, 8, 9, 10, 11, 12, 0x11, 0x0e, 0x0f]);
  });

  it('reads full and compressed IPv6 forms and IPv4-mapped peers as IPv4', () => {
    const v6 = (a: string) => {
      const d = encodeHep(message({ src: { address: a, port: 1 }, dst: { address: '::1', port: 2 } }), { captureId: 1, password: null });
      if (typeof d === 'string') throw new Error(d);
      return new Map(chunks(d).map(([, t, v]) => [t, hex(v)]));
    };
    expect(v6('fe80:0:0:0:0:0:0:abcd').get(0x0005)).toBe('fe80000000000000000000000000abcd');
    expect(v6('[::1]').get(0x0005)).toBe('00000000000000000000000000000001');
    expect(v6('fe80::1%eth0').get(0x0005)).toBe('fe800000000000000000000000000001');
    expect(v6('::ffff:192.0.2.1').get(0x0005)).toBeUndefined();
    expect(v6('::ffff:192.0.2.1').get(0x0003)).toBe('c0000201');
    expect(v6('::ffff:192.0.2.1').get(0x0004)).toBe('00000000'); // ::1 is of the other family: unspecified
    expect(v6('64:ff9b::192.0.2.33').get(0x0005)).toBe('0064ff9b0000000000000000c0000221');
  });

  it('maps transports to IP protocols as siptrace does (TLS and WebSocket: 22)', () => {
    expect(['udp', 'tcp', 'tls', 'ws', 'wss', 'sctp', 'UDP', 'other'].map(hepIpProtocol)).toEqual([17, 6, 22, 22, 22, 132, 17, 6]);
    const d = encodeHep(message({ proto: 'wss' }), { captureId: 1, password: null });
    if (typeof d === 'string') throw new Error(d);
    expect(chunks(d)[1]).toEqual([0, 2, Buffer.from([22])]);
  });

  it('writes the local side as the unspecified address when it is a host name, never resolving it', () => {
    const d = encodeHep(message({ src: { address: 'sip.example.com', port: 5060 }, dst: { address: '192.0.2.7', port: 5070 }, remote: 'dst' }), {
      captureId: 1,
      password: null,
    });
    if (typeof d === 'string') throw new Error(d);
    const c = new Map(chunks(d).map(([, t, v]) => [t, hex(v)]));
    expect([c.get(3), c.get(4), c.get(7)]).toEqual(['00000000', 'c0000207', '13c4']);
  });

  it('gives no datagram for a peer that is not an IP address, or one over 65,535 bytes', () => {
    expect(encodeHep(message({ src: { address: 'evil.example', port: 1 } }), { captureId: 1, password: null })).toBe('address');
    expect(encodeHep(message({ payload: Buffer.alloc(65_500) }), { captureId: 1, password: null })).toBe('too_large');
    const fits = encodeHep(message({ payload: Buffer.alloc(65_400), correlationId: null }), { captureId: 1, password: null });
    expect(Buffer.isBuffer(fits) && fits.length).toBe(65_400 + 6 + 7 + 7 + 20 + 16 + 20 + 7 + 10 + 6);
  });

  it('leaves out the correlation id and key when empty, and keeps binary payloads byte for byte', () => {
    const payload = Buffer.from([0x49, 0x4e, 0xff, 0x00, 0xc3, 0x28, 0x0d, 0x0a]);
    const d = encodeHep(message({ correlationId: '', payload }), { captureId: 0, password: '' });
    if (typeof d === 'string') throw new Error(d);
    const c = chunks(d);
    expect(c.map(([, t]) => t)).toEqual([1, 2, 3, 4, 7, 8, 9, 10, 11, 12, 15]);
    expect(c[c.length - 1][2].equals(payload)).toBe(true);
  });

  it('splits the time into seconds and microseconds', () => {
    const at = (ms: number) => {
      const d = encodeHep(message({ at: ms }), { captureId: 1, password: null });
      if (typeof d === 'string') throw new Error(d);
      const c = new Map(chunks(d).map(([, t, v]) => [t, v]));
      return [c.get(9)?.readUInt32BE(0), c.get(10)?.readUInt32BE(0)];
    };
    expect(at(0)).toEqual([0, 0]);
    expect(at(1_000_999)).toEqual([1000, 999_000]);
    expect(at(5_999.9999)).toEqual([5, 999_999]);
  });
});

describe('parseHepCollector', () => {
  it('reads host:port, [v6]:port, a bare v6 and a host alone (port 9060)', () => {
    expect(parseHepCollector('homer.example.com:9061')).toEqual({ host: 'homer.example.com', port: 9061 });
    expect(parseHepCollector('homer.example.com')).toEqual({ host: 'homer.example.com', port: 9060 });
    expect(parseHepCollector('127.0.0.1')).toEqual({ host: '127.0.0.1', port: 9060 });
    expect(parseHepCollector('[2001:db8::5]:9000')).toEqual({ host: '2001:db8::5', port: 9000 });
    expect(parseHepCollector('[::1]')).toEqual({ host: '::1', port: 9060 });
    expect(parseHepCollector('2001:db8::5')).toEqual({ host: '2001:db8::5', port: 9060 });
  });

  it('refuses what is not one', () => {
    for (const bad of ['', 'host:0', 'host:65536', 'host:x', '[not-v6]:9060', 'a b:1', 'udp://host:9060', 'host:9060:1']) {
      expect(() => parseHepCollector(bad)).toThrow(/is not host:port/);
    }
  });
});
