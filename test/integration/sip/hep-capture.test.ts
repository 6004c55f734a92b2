/**
 * HEP v3 capture (services/hep) over real sockets: a SIP server registers a UA and relays an
 * INVITE to it; every message in and out reaches a UDP collector, decoded by sipcapture's own
 * decoder (hep-js): addresses, ports, protocol, capture id, auth key, Call-ID correlation and
 * the payload byte for byte. Then the failures (collector unresolvable, port closed) and the
 * security properties (only the configured collector, the key never logged).
 */
import dgram from 'node:dgram';
import path from 'node:path';
import type { LogPort } from '../../../engine/ports';
import type { RunContext } from '../../../engine/types';
import { createDigestAuth } from '../../../services/auth';
import { createMemoryDirectory } from '../../../services/directory/memory';
import { createHepSender } from '../../../services/hep/sender';
import { createMemoryLocationStore } from '../../../services/location/memory';
import { createRegistrar } from '../../../services/location/registrar';
import { header } from '../../../sip/message';
import { parseMessage } from '../../../sip/parser';
import { configSchema } from '../../../server/config';
import { hepTap, messageConsumers, type MessageConsumers } from '../../../server/message-consumers';
import { createMetrics } from '../../../server/metrics';
import { loadFlows, startSipServer, type SipServer } from '../../../server/sip-server';
import { UdpUa, rand, sipRequest, sipResponse, type Ua } from './ua';

// eslint-disable-next-line @typescript-eslint/no-require-imports -- sipcapture's decoder, CommonJS without types
const hepjs = require('hep-js') as { decapsulate(b: Buffer): { rcinfo: Record<string, unknown>; payload: string } | false };

const FLOWS = path.join(__dirname, 'fixtures', 'test-flows.slid');
const PASSWORD = 'hep-key-' + rand();

const ctx = (): RunContext => ({
  directory: createMemoryDirectory({}),
  location: createRegistrar(createMemoryLocationStore()),
  auth: createDigestAuth({ secret: 'sipflow-hep-test-secret-0123456789' }),
  clock: { now: Date.now },
});

/** A UDP socket collecting datagrams; `until` resolves when the predicate holds over what arrived. */
async function collector() {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', r));
  const got: Buffer[] = [];
  let check = () => {};
  socket.on('message', (m) => {
    got.push(m);
    check();
  });
  return {
    port: socket.address().port,
    got,
    until: (pred: (got: Buffer[]) => boolean) =>
      new Promise<void>((resolve) => {
        check = () => pred(got) && resolve();
        check();
      }),
    close: () => new Promise<void>((r) => socket.close(() => r())),
  };
}

/** Every datagram a UA sends and receives, as it saw them. */
function recordTraffic(ua: Ua) {
  const seen: Array<{ dir: 'out' | 'in'; data: Buffer }> = [];
  const send = ua.send.bind(ua);
  ua.send = (text) => {
    seen.push({ dir: 'out', data: Buffer.from(text) });
    send(text);
  };
  const u = ua as unknown as { deliver(b: Buffer, f: unknown): void };
  const deliver = u.deliver.bind(ua);
  u.deliver = (b, f) => {
    seen.push({ dir: 'in', data: Buffer.from(b) });
    deliver(b, f);
  };
  return seen;
}

const logLines: string[] = [];
const log: LogPort = { log: (level, message, fields) => logLines.push(`${level} ${message} ${JSON.stringify(fields ?? {})}`) };

describe('HEP capture of a registration and a relayed call', () => {
  let hep: Awaited<ReturnType<typeof collector>>;
  let consumers: MessageConsumers;
  let server: SipServer;
  const metrics = createMetrics();
  beforeAll(async () => {
    hep = await collector();
    const config = configSchema.parse({ hep: { collector: `127.0.0.1:${hep.port}`, captureId: 4242, password: PASSWORD } });
    consumers = messageConsumers(config, log, { metrics });
    server = await startSipServer({
      service: loadFlows(FLOWS).service,
      ctx: ctx(),
      host: '127.0.0.1',
      port: 0,
      defaultLogic: 'proxy-test',
      recordRoute: true,
      tap: consumers.tap,
    });
  });
  afterAll(async () => {
    await server?.close(100);
    await consumers?.close();
    await hep?.close();
  });

  test('every message in and out is one datagram that hep-js decodes to the message, its addresses and its Call-ID', async () => {
    const caller = await UdpUa.open(server.udpPort);
    const uas = await UdpUa.open(server.udpPort);
    const traffic = [recordTraffic(caller), recordTraffic(uas)];
    const t0 = Math.floor(Date.now() / 1000);
    try {
      const user = 'bob' + rand();
      const regCallId = rand();
      uas.send(
        sipRequest({
          method: 'REGISTER',
          uri: 'sip:example.test',
          ua: uas,
          callId: regCallId,
          from: `<sip:${user}@example.test>`,
          to: `<sip:${user}@example.test>`,
          contact: `<sip:${user}@127.0.0.1:${uas.port}>`,
          headers: { Expires: '300' },
        }),
      );
      expect((await uas.response(200)).status).toBe(200);

      const callId = rand();
      caller.send(sipRequest({ method: 'INVITE', uri: `sip:${user}@example.test`, ua: caller, callId, to: `<sip:${user}@example.test>`, fromTag: 'c1' }));
      const { msg: inv } = await uas.request('INVITE');
      uas.send(sipResponse(inv, 180, 'Ringing', { toTag: 'u1' }));
      await caller.response(180);
      uas.send(sipResponse(inv, 486, 'Busy Here', { toTag: 'u1' }));
      expect((await caller.response(486)).status).toBe(486);
      await uas.next((r) => r.raw.startsWith('ACK ')); // the proxy's hop-by-hop ACK of the 486

      // what each UA sent the server received, and what it received the server sent
      const expected = traffic.flatMap((seen, i) => seen.map((s) => ({ ...s, ua: i === 0 ? caller : uas })));
      expect(expected.length).toBeGreaterThanOrEqual(10); // REGISTER, 200; INVITE, 100, 180, 486; INVITE, 180, 486, ACK (and any retransmission)
      const decoded = () => hep.got.map((d) => hepjs.decapsulate(d));
      const matches = (e: (typeof expected)[number], d: ReturnType<typeof hepjs.decapsulate>) =>
        d !== false &&
        d.payload === e.data.toString('utf8') &&
        (e.dir === 'out'
          ? d.rcinfo.srcPort === e.ua.port && d.rcinfo.dstPort === server.udpPort
          : d.rcinfo.srcPort === server.udpPort && d.rcinfo.dstPort === e.ua.port);
      await hep.until(() => {
        const ds = decoded();
        return expected.every((e) => ds.some((d) => matches(e, d)));
      });

      for (const d of decoded()) {
        if (d === false) throw new Error('a datagram hep-js cannot decode');
        const e = expected.find((x) => matches(x, d));
        expect(e).toBeDefined(); // nothing but the UAs' traffic
        expect(d.rcinfo).toMatchObject({
          protocolFamily: 2,
          protocol: 17,
          srcIp: '127.0.0.1',
          dstIp: '127.0.0.1',
          payloadType: 1,
          captureId: 4242,
          capturePass: PASSWORD,
        });
        const sip = parseMessage(Buffer.from(d.payload));
        expect(sip.ok && header(sip.message, 'call-id')).toBe(d.rcinfo.correlation_id);
        expect([regCallId, callId]).toContain(d.rcinfo.correlation_id);
        expect(d.rcinfo.timeSeconds as number).toBeGreaterThanOrEqual(t0);
        expect(d.rcinfo.timeSeconds as number).toBeLessThanOrEqual(Math.ceil(Date.now() / 1000));
        expect(d.rcinfo.timeUseconds as number).toBeLessThan(1_000_000);
      }
      // the payload byte for byte, read from the datagram's last chunk (0x000f)
      for (const e of expected) {
        const d = hep.got.find((g) => g.subarray(g.length - e.data.length).equals(e.data) && g.readUInt16BE(g.length - e.data.length - 4) === 0x000f);
        expect(d).toBeDefined();
      }
      expect(await metrics.registry.getSingleMetricAsString('sipflow_hep_sent_total')).toMatch(new RegExp(`sipflow_hep_sent_total ${hep.got.length}\\b`));
    } finally {
      await caller.close();
      await uas.close();
    }
  });

  test('a SIP message naming another address (Via, Contact, Route) does not move the copies: they go to the collector only', async () => {
    const decoy = await collector();
    const ua = await UdpUa.open(server.udpPort);
    try {
      const before = hep.got.length;
      const callId = rand();
      ua.send(
        [
          `OPTIONS sip:x@127.0.0.1:${decoy.port} SIP/2.0`,
          `Via: SIP/2.0/UDP 127.0.0.1:${ua.port};rport;branch=z9hG4bK${rand()}`,
          `Route: <sip:127.0.0.1:${decoy.port};lr>`,
          `From: <sip:a@example.test>;tag=${rand()}`,
          `To: <sip:x@example.test>`,
          `Call-ID: ${callId}`,
          'CSeq: 1 OPTIONS',
          `Contact: <sip:a@127.0.0.1:${decoy.port}>`,
          'Max-Forwards: 70',
          'Content-Length: 0',
          '',
          '',
        ].join('\r\n'),
      );
      await hep.until((got) => got.slice(before).some((d) => (hepjs.decapsulate(d) || { payload: '' }).payload.startsWith('OPTIONS ')));
      expect(decoy.got.filter((d) => d.subarray(0, 4).toString() === 'HEP3')).toEqual([]);
    } finally {
      await ua.close();
      await decoy.close();
    }
  });
});

describe('HEP capture failures never reach the SIP path', () => {
  const register = async (server: SipServer) => {
    const ua = await UdpUa.open(server.udpPort);
    try {
      const user = 'u' + rand();
      ua.send(
        sipRequest({
          method: 'REGISTER',
          uri: 'sip:example.test',
          ua,
          from: `<sip:${user}@example.test>`,
          to: `<sip:${user}@example.test>`,
          contact: `<sip:${user}@127.0.0.1:${ua.port}>`,
          headers: { Expires: '60' },
        }),
      );
      return (await ua.response()).status;
    } finally {
      await ua.close();
    }
  };

  test('a collector name that does not resolve: SIP answered, copies dropped and counted, one log line without the key', async () => {
    const lines: string[] = [];
    const sender = createHepSender({
      collector: `hep-${rand()}.invalid:9060`,
      captureId: 1,
      password: PASSWORD,
      log: { log: (level, message) => lines.push(`${level} ${message}`) },
    });
    await sender.ready;
    const server = await startSipServer({
      service: loadFlows(FLOWS).service,
      ctx: ctx(),
      host: '127.0.0.1',
      port: 0,
      defaultLogic: 'proxy-test',
      tap: hepTap(sender),
    });
    try {
      expect(await register(server)).toBe(200);
      expect(await register(server)).toBe(200);
      expect(sender.stats.dropped.unresolved).toBe(4); // two REGISTERs in, two 200s out
      expect(sender.stats.sent).toBe(0);
      expect(lines).toHaveLength(1); // once per minute, not per message
      expect(lines[0]).toMatch(/^warn hep: cannot send to collector hep-\w+\.invalid:9060 \(unresolved/);
      expect(lines.join('\n')).not.toContain(PASSWORD);
      expect(logLines.join('\n')).not.toContain(PASSWORD);
    } finally {
      await server.close(100);
      await sender.close();
    }
  });

  test('a collector port that is closed (ICMP port unreachable): SIP answered, nothing thrown', async () => {
    const closed = await collector();
    const port = closed.port;
    await closed.close();
    const sender = createHepSender({ collector: `127.0.0.1:${port}`, captureId: 1, password: null });
    const errors: unknown[] = [];
    const onError = (e: unknown) => errors.push(e);
    process.on('uncaughtException', onError);
    const server = await startSipServer({
      service: loadFlows(FLOWS).service,
      ctx: ctx(),
      host: '127.0.0.1',
      port: 0,
      defaultLogic: 'proxy-test',
      tap: hepTap(sender),
    });
    try {
      for (let i = 0; i < 3; i++) expect(await register(server)).toBe(200);
      // each copy handed to the kernel (or refused) is settled: its callback ran
      await new Promise<void>((resolve) => {
        const settled = () => (sender.stats.sent + sender.stats.dropped.send_error >= 6 ? resolve() : setImmediate(settled));
        settled();
      });
      expect(errors).toEqual([]);
    } finally {
      process.off('uncaughtException', onError);
      await server.close(100);
      await sender.close();
    }
  });

  test('beyond maxInFlight pending datagrams, copies are dropped and counted at once, never queued', async () => {
    const hep = await collector();
    const sender = createHepSender({ collector: `127.0.0.1:${hep.port}`, captureId: 1, password: null, maxInFlight: 2 });
    try {
      const m = { proto: 'udp', src: { address: '127.0.0.1', port: 5060 }, dst: { address: '127.0.0.1', port: 5070 }, at: Date.now(), correlationId: 'x' };
      for (let i = 0; i < 50; i++) sender.capture({ ...m, payload: Buffer.from(`OPTIONS sip:${i}@x SIP/2.0\r\n\r\n`), remote: 'dst' });
      expect(sender.stats.dropped.overload).toBe(48);
      await hep.until((got) => got.length === 2);
      expect(hep.got.map((d) => (hepjs.decapsulate(d) || { payload: '' }).payload.split(' ')[1])).toEqual(['sip:0@x', 'sip:1@x']);
    } finally {
      await sender.close();
      await hep.close();
    }
  });
});
