import { MessageChannel } from 'node:worker_threads';
import type { Binding, RegisterRequest, RegisterResult } from '../../../engine/ports';
import {
  packBindings,
  packRegisterRequest,
  packRegisterResult,
  unpackBindings,
  unpackRegisterRequest,
  unpackRegisterResult,
  type PackedRequest,
} from '../../../server/sip-threads/location-codec';

const now = new Date(1_765_000_000_000);

/** Every field a RegisterRequest declares, each with a value no other field has. */
const fullRequest: Required<RegisterRequest> = {
  username: 'francesco',
  domain: 'example.test',
  contacts: ['<sip:francesco@192.0.2.10:5062>;expires=600', '*'],
  expiresHeader: '3600',
  callId: 'call-1@192.0.2.10',
  cseq: 7,
  userAgent: 'softphone 1.0',
  received: 'sip:198.51.100.4:40000',
  socket: 'udp:127.0.0.1:5060',
  via: 'SIP/2.0/UDP 192.0.2.10:5062;branch=z9hG4bK-1',
  connectionId: 42,
  path: '<sip:edge.example.test;lr>',
  now,
  allow: 'INVITE, ACK, BYE',
};

/** A binding whose every field holds a value no other field has (for an odd i; an even i has some nulls). */
const binding = (i: number): Binding => ({
  ruid: `uloc-${i}`,
  username: 'francesco',
  domain: 'example.test',
  contact: `sip:francesco@192.0.2.${i}:5062`,
  received: i % 2 ? 'sip:198.51.100.4:40000' : null,
  path: i % 2 ? '<sip:edge.example.test;lr>' : null,
  expires: new Date(now.getTime() + 3_600_000 + i),
  q: i % 2 ? 0.5 : -1,
  callid: `call-${i}@192.0.2.10`,
  cseq: 100 + i,
  last_modified: new Date(now.getTime() + i),
  flags: 11,
  cflags: 12,
  user_agent: 'softphone 1.0',
  socket: 'udp:127.0.0.1:5060',
  methods: 31,
  instance: i % 2 ? '<urn:uuid:00000000-0000-0000-0000-000000000001>' : null,
  reg_id: 20 + i,
  server_id: 13,
  connection_id: 40 + i,
  keepalive: 14,
  partition: 15,
});

/** What a port between two threads delivers of a value (structured clone, as protocol.ts's batches). */
async function cloned<P>(v: P): Promise<P> {
  const { port1, port2 } = new MessageChannel();
  try {
    return await new Promise<P>((resolve) => {
      port2.once('message', resolve);
      port1.postMessage(v);
    });
  } finally {
    port1.close();
  }
}

/**
 * A value as plain JSON, keys sorted, Dates as ISO text, undefined properties left out (absent and
 * undefined are one to the port's readers): what arrives over a port is built in Node's own realm,
 * not the test's (its Dates fail toStrictEqual and instanceof here).
 */
const plain = (v: unknown): string =>
  JSON.stringify(v, function (this: Record<string, unknown>, key, value: unknown) {
    const raw = key === '' ? value : this[key];
    if (Object.prototype.toString.call(raw) === '[object Date]') return { date: (raw as Date).toISOString() };
    if (value !== null && typeof value === 'object' && !Array.isArray(value))
      return Object.fromEntries(Object.entries(value).sort(([a], [b]) => a.localeCompare(b)));
    return value;
  });

/** As between two threads: packed, posted, unpacked. */
const across = async <T, P>(v: T, pack: (v: T) => P, unpack: (p: P) => T): Promise<T> => unpack(await cloned(pack(v)));

describe('location values packed for the crossing between threads (server/sip-threads/location-codec.ts)', () => {
  it('a RegisterRequest with every field comes back equal, Date included', async () => {
    const back = await across<RegisterRequest, PackedRequest>(fullRequest, packRegisterRequest, unpackRegisterRequest);
    expect(plain(back)).toBe(plain(fullRequest));
    expect(Object.prototype.toString.call(back.now)).toBe('[object Date]');
  });

  it('optional fields a request lacks come back undefined, the others as they were', async () => {
    const { via: _via, connectionId: _connectionId, allow: _allow, ...minimal } = fullRequest;
    const back = await across<RegisterRequest, PackedRequest>(minimal, packRegisterRequest, unpackRegisterRequest);
    expect(plain(back)).toBe(plain(minimal));
    expect([back.via, back.connectionId, back.allow]).toEqual([undefined, undefined, undefined]);
  });

  it('a RegisterResult with headers and several bindings comes back equal, and so does one without headers', async () => {
    const withHeaders: RegisterResult = { status: 200, reason: 'OK', headers: { date: 'Sat, 06 Dec 2026 05:00:00 GMT' }, bindings: [binding(1), binding(2)] };
    expect(plain(await across(withHeaders, packRegisterResult, unpackRegisterResult))).toBe(plain(withHeaders));
    const refused: RegisterResult = { status: 423, reason: 'Interval Too Brief', bindings: [] };
    const back = await across(refused, packRegisterResult, unpackRegisterResult);
    expect(plain(back)).toBe(plain(refused));
    expect(back.headers).toBeUndefined();
  });

  it("a lookup's bindings come back equal and in order", async () => {
    const bindings = [binding(3), binding(1), binding(2)];
    const back = await across(bindings, packBindings, unpackBindings);
    expect(plain(back)).toBe(plain(bindings));
    expect(Object.prototype.toString.call(back[0].expires)).toBe('[object Date]');
  });

  it('carries no field a port does not declare, and its packed form holds no object keys', async () => {
    const extra = { ...binding(1), secret: 'not for the other thread' } as Binding;
    const packed = packBindings([extra]);
    expect(JSON.stringify(packed)).not.toContain('secret');
    expect(plain(unpackBindings(await cloned(packed))[0])).toBe(plain(binding(1)));
    expect(Array.isArray(packRegisterRequest(fullRequest))).toBe(true);
  });
});
