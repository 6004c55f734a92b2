/**
 * What the front ends did with their messages, on /metrics (server/front-end-metrics.ts): a real
 * front end given a challenge and its retransmission, shed new work (dropped and 503), an unparsable
 * request, an ACK of nothing, and a request stale in a thread's queue; the exposition says each of
 * them as counted, sums several front ends and several threads' registries (as the main thread sums
 * the workers'), and stops counting a source once it is removed.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadSlidText } from '../../engine/load';
import { builtinRegistry } from '../../nodes';
import { FrontEnd, noFrontEndStats, type FrontEndStats } from '../../sip/front-end';
import type { Peer, SipSender } from '../../sip/transport';
import { createMetrics } from '../../server/metrics';
import { testContext } from '../support/context';

const sent: Buffer[] = [];
const sender: SipSender = { advertised: '10.1.10.163', ports: new Map([['udp', 5060]]), send: (bytes) => void sent.push(bytes) };
const local = { proto: 'udp', address: '10.1.10.163', port: 5060 };
const phone: Peer = { proto: 'udp', address: '10.1.10.89', port: 57806 };

const REGISTER = (branch: string, callId: string): Buffer =>
  Buffer.from(
    'REGISTER sip:10.1.10.163 SIP/2.0\r\n' +
      `Via: SIP/2.0/UDP 10.1.10.89:57806;rport;branch=z9hG4bK${branch}\r\n` +
      'Max-Forwards: 70\r\n' +
      'From: <sip:francesco@nl.netaxis.be>;tag=RHuIK7Em8v\r\n' +
      'To: <sip:francesco@nl.netaxis.be>\r\n' +
      `Call-ID: ${callId}\r\n` +
      'CSeq: 1 REGISTER\r\n' +
      'Contact: <sip:francesco@10.1.10.89:57806;ob>\r\n' +
      'Expires: 300\r\n' +
      'Content-Length: 0\r\n\r\n',
  );
const ACK_OF_NOTHING = Buffer.from(
  'ACK sip:bob@10.1.10.163 SIP/2.0\r\nVia: SIP/2.0/UDP 10.1.10.89:57806;branch=z9hG4bKnothing\r\nMax-Forwards: 70\r\n' +
    'From: <sip:a@x>;tag=1\r\nTo: <sip:bob@10.1.10.163>;tag=2\r\nCall-ID: nothing-of-ours\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n',
);
// a Content-Length past the end: the parser refuses it (answered 400, its headers are readable)
const UNPARSABLE = Buffer.from(
  'OPTIONS sip:x@10.1.10.163 SIP/2.0\r\nVia: SIP/2.0/UDP 10.1.10.89:57806;branch=z9hG4bKbad\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:x@y>\r\n' +
    'Call-ID: bad\r\nCSeq: 1 OPTIONS\r\nContent-Length: 9999\r\n\r\n',
);

const seed = () =>
  loadSlidText(fs.readFileSync(path.join(__dirname, '../../flows/registration.slid'), 'utf8'), 'registration.slid', builtinRegistry()).service!;
const frontEnd = (shedRetryAfterSec = 0) =>
  new FrontEnd(sender, { service: seed(), ctx: testContext(), loopGuard: false, routes: [{ method: 'REGISTER', logic: '24' }], shedRetryAfterSec });

/** The exposition's samples, `name{labels}` → value. */
async function samples(text: Promise<string>): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const line of (await text).split('\n')) {
    const m = /^(sipflow_sip_(?:messages|retransmissions|shed|dropped|errors)_total(?:\{[^}]*\})?) (\S+)$/.exec(line);
    if (m) out.set(m[1], Number(m[2]));
  }
  return out;
}

async function settled(n: number): Promise<void> {
  const until = Date.now() + 5000;
  while (sent.length < n && Date.now() < until) await new Promise((r) => setImmediate(r));
  expect(sent.length).toBeGreaterThanOrEqual(n);
}

afterEach(() => {
  sent.length = 0;
});

test('each thing a front end does with a message is counted once, under its name', async () => {
  const fe = frontEnd();
  const metrics = createMetrics({ defaultMetrics: false });
  metrics.frontEnds.add(() => [fe.stats]);

  fe.onMessage(REGISTER('first', 'c1'), phone, local); // challenged: its logic runs
  await settled(1);
  fe.onMessage(REGISTER('first', 'c1'), phone, local); // the same branch: a retransmission, answered again
  fe.onMessage(REGISTER('fresh', 'c2'), phone, local, true); // new work while behind: shed, dropped
  fe.onMessage(UNPARSABLE, phone, local); // 400
  fe.onMessage(ACK_OF_NOTHING, phone, local); // dropped
  fe.stats.stale += 2; // what server/sip-threads/sip-thread.ts counts for requests queued past sip.maxQueueMs
  await settled(3);
  // the challenge, the same bytes again for its retransmission, the 400; nothing for the shed one or the ACK
  expect(sent.map((b) => b.toString().split('\r\n')[0])).toEqual([
    expect.stringMatching(/^SIP\/2\.0 401 /),
    expect.stringMatching(/^SIP\/2\.0 401 /),
    expect.stringMatching(/^SIP\/2\.0 400 /),
  ]);
  expect(sent[1].equals(sent[0])).toBe(true);

  const s = await samples(metrics.text());
  expect(Object.fromEntries(s)).toEqual({
    'sipflow_sip_messages_total{kind="request"}': 4, // the challenged one, its retransmission, the shed one, the ACK
    'sipflow_sip_messages_total{kind="response"}': 0,
    sipflow_sip_retransmissions_total: 1,
    'sipflow_sip_shed_total{answer="none"}': 1,
    'sipflow_sip_shed_total{answer="503"}': 0,
    'sipflow_sip_dropped_total{reason="stale"}': 2,
    'sipflow_sip_dropped_total{reason="unparsable"}': 1,
    'sipflow_sip_dropped_total{reason="unmatched"}': 1,
    sipflow_sip_errors_total: 0,
  });
  // a scrape reads the counts, it does not add them up again
  expect(await samples(metrics.text())).toEqual(s);
  fe.close();
});

test('shed with shedRetryAfterSec: counted as answered 503, not as dropped', async () => {
  const fe = frontEnd(5);
  const metrics = createMetrics({ defaultMetrics: false });
  metrics.frontEnds.add(() => [fe.stats]);
  for (let i = 0; i < 3; i++) fe.onMessage(REGISTER(`refused${i}`, `r${i}`), phone, local, true);
  expect(sent.map((b) => b.toString().split('\r\n')[0])).toEqual(Array(3).fill('SIP/2.0 503 Service Unavailable'));
  const s = await samples(metrics.text());
  expect(s.get('sipflow_sip_shed_total{answer="503"}')).toBe(3);
  expect(s.get('sipflow_sip_shed_total{answer="none"}')).toBe(0);
  expect(s.get('sipflow_sip_dropped_total{reason="unparsable"}')).toBe(0);
  fe.close();
});

test("several front ends and several threads' registries are summed; a removed source no longer counts", async () => {
  const stats = (o: Partial<FrontEndStats>): FrontEndStats => ({ ...noFrontEndStats(), ...o });
  // the main thread: two listeners' front ends (in process)
  const main = createMetrics({ defaultMetrics: false });
  const remove = main.frontEnds.add(() => [stats({ requests: 10, retransmissions: 2 }), stats({ requests: 5, responses: 7, errors: 1 })]);
  // a worker's registry, summed by the main thread as host.ts does (addSource)
  const worker = createMetrics({ defaultMetrics: false });
  worker.frontEnds.add(() => [stats({ requests: 100, shed: 30, shedAnswered: 10, stale: 4 })]);
  main.addSource(async () => [await worker.registry.getMetricsAsJSON()]);

  let s = await samples(main.text());
  expect(s.get('sipflow_sip_messages_total{kind="request"}')).toBe(115);
  expect(s.get('sipflow_sip_messages_total{kind="response"}')).toBe(7);
  expect(s.get('sipflow_sip_retransmissions_total')).toBe(2);
  expect(s.get('sipflow_sip_shed_total{answer="none"}')).toBe(20);
  expect(s.get('sipflow_sip_shed_total{answer="503"}')).toBe(10);
  expect(s.get('sipflow_sip_dropped_total{reason="stale"}')).toBe(4);
  expect(s.get('sipflow_sip_errors_total')).toBe(1);

  remove();
  s = await samples(main.text());
  expect(s.get('sipflow_sip_messages_total{kind="request"}')).toBe(100);
  expect(s.get('sipflow_sip_errors_total')).toBe(0);

  // a registry with no front end at all (an HTTP-only process): no labelled series
  expect([...(await samples(createMetrics({ defaultMetrics: false }).text())).keys()].filter((k) => k.includes('{'))).toEqual([]);
});
