/**
 * Issue 16, call history on a real SIP server (startSipServer over UDP) with the recorder wired as
 * serve wires it (server/message-consumers.ts) and the store on PGlite:
 *  - mode all: a relayed INVITE is recorded with its relayed branch (the INVITE sipflow sends to
 *    the gateway, the gateway's 486, the ACK to it) besides the caller's side, one run with its path;
 *  - a scanner: junk datagrams open nothing, and an OPTIONS flood with a new Call-ID per request
 *    records at most history.maxOpenCalls calls (the rest counted), so storage does not grow
 *    with the flood.
 */
import { formatProblem, loadSlid } from '../../../engine/load';
import type { RunContext } from '../../../engine/types';
import { builtinRegistry } from '../../../nodes';
import { createDigestAuth } from '../../../services/auth';
import { migrate, openDirectory } from '../../../services/directory';
import { createMemoryDirectory } from '../../../services/directory/memory';
import { HistoryStore } from '../../../services/history';
import { createMemoryLocationStore } from '../../../services/location/memory';
import { createRegistrar } from '../../../services/location/registrar';
import { parseConfig } from '../../../server/config';
import { messageConsumers, type MessageConsumers } from '../../../server/message-consumers';
import { createMetrics, type Metrics } from '../../../server/metrics';
import { startSipServer, type SipServer } from '../../../server/sip-server';
import { header, isRequest, type SipRequest } from '../../../sip/message';
import { slidNode as node } from '../../support/slid';
import { UdpUa, rand, sipRequest, sipResponse } from '../sip/ua';
import type { Knex } from 'knex';

const MAX_OPEN = 5;
let knex: Knex;
let store: HistoryStore;
let observers: MessageConsumers;
let metrics: Metrics;
let server: SipServer;
let caller: UdpUa;
let gw: UdpUa;

beforeAll(async () => {
  knex = openDirectory('memory://');
  await migrate(knex);
  store = new HistoryStore(
    knex,
    { maxAgeDays: 7, maxBytes: 1 << 30, purgeEverySec: 300, batchSize: 50, flushMs: 5, backlogMax: 1000, maxWriteShare: 1 },
    { timer: false },
  );
  gw = await UdpUa.open(0);
  const loaded = loadSlid(
    {
      1: {
        name: 'relay',
        description: 'every INVITE to the gateway',
        nodes: { 0: node(0, 'enter.start', { next: 1 }), 1: node(1, 'output.relay', { destination: `sip:[called]@127.0.0.1:${gw.port}` }) },
      },
      2: { name: 'options', description: '200', nodes: { 0: node(0, 'enter.start', { next: 1 }), 1: node(1, 'output.reply', { code: 200, reason: 'OK' }) } },
    },
    'history.slid',
    builtinRegistry(),
  );
  expect(loaded.problems.filter((p) => p.severity === 'error').map(formatProblem)).toEqual([]);
  const ctx: RunContext = {
    directory: createMemoryDirectory({}),
    location: createRegistrar(createMemoryLocationStore()),
    auth: createDigestAuth({ secret: 'sipflow-history-test-0123456789abcdef' }),
    clock: { now: Date.now },
  };
  // idleFlushSec long: nothing is flushed during a test; the test flushes (close)
  const config = parseConfig(JSON.stringify({ history: { mode: 'all', maxOpenCalls: MAX_OPEN, idleFlushSec: 3600 } }), 'test');
  metrics = createMetrics({ defaultMetrics: false });
  observers = messageConsumers(config, undefined, { metrics, history: { sink: store.accept, debugNumbers: [], window: 5000 } });
  server = await startSipServer({
    service: loaded.service!,
    ctx,
    host: '127.0.0.1',
    port: 0,
    defaultLogic: 'relay',
    routes: [{ method: 'OPTIONS', logic: 'options' }],
    timers: { t1: 50 },
    tap: observers.tap,
    runs: observers.runs,
  });
  caller = await UdpUa.open(server.udpPort);
}, 60_000);
afterAll(async () => {
  await caller?.close();
  await gw?.close();
  await server?.close(100);
  await observers?.close();
  await store?.close();
  await knex?.destroy();
});

/** Every open call written now (as if idleFlushSec had passed). */
const flushAll = () => observers.history!.sweep(Date.now() + 7200_000);

const counter = async (name: string, labels: Record<string, string> = {}) => {
  const m = (await metrics.registry.getMetricsAsJSON()).find((x) => x.name === name);
  const v = (m?.values ?? []).find((x) => Object.entries(labels).every(([k, val]) => (x.labels as Record<string, string>)[k] === val));
  return v?.value ?? 0;
};

test('a relayed INVITE: both legs, in order, with the run and its path', async () => {
  const callId = `${rand()}@relay`;
  caller.send(sipRequest({ method: 'INVITE', uri: 'sip:+3225550100@127.0.0.1', ua: caller, callId, to: '<sip:+3225550100@127.0.0.1>' }));
  const invite = (await gw.request('INVITE')) as { msg: SipRequest };
  gw.sendTo(sipResponse(invite.msg, 486, 'Busy Here', { toTag: 'gw1' }), server.udpPort);
  await gw.request('ACK'); // sipflow acknowledges the gateway's 486
  const busy = await caller.response(486);
  caller.send(
    sipRequest({
      method: 'ACK',
      uri: 'sip:+3225550100@127.0.0.1',
      ua: caller,
      callId,
      to: `${header(busy, 'to')}`,
      cseq: 1,
      branch: busy.headers.via[0].split('branch=')[1],
    }),
  );
  // an OPTIONS from the same socket after the ACK: once answered, the ACK has been handled
  caller.send(sipRequest({ method: 'OPTIONS', uri: 'sip:marker@127.0.0.1', ua: caller, callId: `marker-${rand()}` }));
  await caller.response(200);
  flushAll();
  await store.idle();
  const call = await store.get(callId);
  expect(call).toMatchObject({ callId, method: 'INVITE', called: '+3225550100', outcome: 'failed', status: 486, logic: 'relay', runCount: 1 });
  const gwAt = `127.0.0.1:${gw.port}`;
  const callerAt = `127.0.0.1:${caller.port}`;
  const ladder = call!.messages.map((m) => `${m.direction} ${m.firstLine.split(' ').slice(0, 2).join(' ')} ${m.direction === 'in' ? m.src : m.dst}`);
  expect(ladder).toEqual(
    expect.arrayContaining([
      `in INVITE sip:+3225550100@127.0.0.1 ${callerAt}`,
      `out SIP/2.0 100 ${callerAt}`,
      `out INVITE sip:+3225550100@127.0.0.1:${gw.port} ${gwAt}`,
      `in SIP/2.0 486 ${gwAt}`,
      `out ACK sip:+3225550100@127.0.0.1:${gw.port} ${gwAt}`,
      `out SIP/2.0 486 ${callerAt}`,
    ]),
  );
  expect(ladder[0]).toBe(`in INVITE sip:+3225550100@127.0.0.1 ${callerAt}`);
  expect(ladder.indexOf(`in SIP/2.0 486 ${gwAt}`)).toBeLessThan(ladder.indexOf(`out SIP/2.0 486 ${callerAt}`));
  expect(call!.runs[0]).toMatchObject({ outcome: 'relay', status: null, path: [{ nodeId: '0' }, { nodeId: '1', type: 'output.relay' }] });
  expect(await counter('sipflow_history_recorded_total')).toBe(2); // and the marker OPTIONS
});

test('a scanner: junk opens nothing; an OPTIONS flood records at most maxOpenCalls calls, the rest counted', async () => {
  expect(observers.history!.openCalls).toBe(0);
  const before = (await store.list({ limit: 500 })).length;
  for (let i = 0; i < 50; i++) caller.send(Buffer.from(`\x16\x03\x01junk ${i} Call-ID: junk-${i}\r\n\r\n`));
  // OPTIONS pings of the server itself are answered by the front end: no logic, nothing opened
  for (let i = 0; i < 20; i++) caller.send(sipRequest({ method: 'OPTIONS', uri: 'sip:127.0.0.1', ua: caller, callId: `ping-${i}-${rand()}` }));
  for (let i = 0; i < 20; i++) await caller.next((r) => !isRequest(r.msg) && header(r.msg, 'call-id')!.startsWith('ping-'));
  expect(observers.history!.openCalls).toBe(0);
  // OPTIONS probing users (sipvicious' svwar): each reaches the logic
  const FLOOD = 60;
  for (let i = 0; i < FLOOD; i++) caller.send(sipRequest({ method: 'OPTIONS', uri: `sip:${100 + i}@127.0.0.1`, ua: caller, callId: `scan-${i}-${rand()}` }));
  for (let i = 0; i < FLOOD; i++) await caller.next((r) => !isRequest(r.msg) && header(r.msg, 'call-id')!.startsWith('scan-'));
  expect(observers.history!.openCalls).toBe(MAX_OPEN);
  expect(await counter('sipflow_history_dropped_total', { reason: 'open_calls' })).toBe(FLOOD - MAX_OPEN);
  flushAll();
  await store.idle();
  const after = await store.list({ limit: 500 });
  expect(after.length - before).toBe(MAX_OPEN);
  expect(after.every((c) => !c.callId.startsWith('junk'))).toBe(true);
});
