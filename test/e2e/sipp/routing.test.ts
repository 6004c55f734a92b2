/**
 * The shipped routing service (flows/routing.slid) end to end: SIPp as the PSTN trunk (UAC) and
 * as the gateways the call is routed to (UAS), a local HTTP routing API (fastify) answering where a
 * number goes (a gateway, a fallback gateway, the carrier), and two `sipflow serve` processes whose
 * calendars start at two instants (`--now`, server/calendar.ts): a Tuesday at 10:00 in Brussels
 * (open: normalised to E.164, the API asked, the call relayed, failing over to the second gateway,
 * the trunk held to one call at a time, a CDR per call in a JSON-lines file) and Christmas Day at
 * 10:00 (a holiday: 480 with a Reason header, the API never asked). The flow file is the shipped
 * one with its settings node edited: the trunk's address, its call limit (1) and the API's URL.
 *
 * SIPp runs and their files: test-artifacts/sipp-routing/ (test/support/sipp.ts).
 */
import Fastify, { type FastifyInstance } from 'fastify';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'fs';
import os from 'os';
import path from 'path';
import { startServe, type ServeProcess } from '../../support/serve';
import {
  configureSipp,
  distinct,
  expectOk,
  freeUdpPort,
  hdr,
  killAll,
  run,
  sipp,
  sippRun,
  startUas,
  traced,
  uasAfter,
  type SippResult,
} from '../../support/sipp';

const ROOT = path.resolve(__dirname, '../../..');
const MAIN = path.join(ROOT, 'dist/cli/main.js');
const ARTIFACTS = path.join(ROOT, 'test-artifacts/sipp-routing');
const HOST = '127.0.0.1';
/** The trunk's source address (the flow's `trunks` setting); 127.0.0.0/8 is all loopback on Linux. */
const TRUNK = '127.0.0.2';
const DOMAIN = 'carrier.example';
const OPEN = '2026-12-01T10:00:00+01:00'; // a Tuesday, business hours in Europe/Brussels
const HOLIDAY = '2026-12-25T10:00:00+01:00'; // Christmas Day, a Friday
const NIGHT = '2026-12-01T22:30:00+01:00';

let dir: string;
let flowFile: string;
let api: FastifyInstance;
let apiPort: number;
/** The numbers the routing API was asked for, in order. */
const asked: string[] = [];
/** Where the API routes numbers of the 020 area: the gateway UAS's port, and the fallback gateway's (set per test). */
let gatewayPort = 0;
let fallbackPort = 0;
/** The open server's CDRs (accounting.file). */
let cdrFile: string;
let open: ServeProcess | undefined;
let holiday: ServeProcess | undefined;

function editedFlow(target: string): void {
  const slid = JSON.parse(readFileSync(path.join(ROOT, 'flows/routing.slid'), 'utf8'));
  type Node = { type: string; values: Record<string, unknown> };
  const logic = Object.values(slid as Record<string, { name: string; nodes: Record<string, Node> }>).find((l) => l.name === 'routing');
  const only = (type: string): Node => {
    const found = Object.values(logic?.nodes ?? {}).filter((n) => n.type === type);
    if (found.length !== 1) throw new Error(`flows/routing.slid: expected one ${type} node in logic "routing", found ${found.length}; update this test`);
    return found[0];
  };
  const trunks = (only('action.setVariables').values.variables as Array<{ variable: string; value: unknown }>).find((v) => v.variable === 'trunks');
  if (!trunks) throw new Error('flows/routing.slid: the settings node no longer sets trunks; update this test');
  trunks.value = TRUNK;
  const maxCalls = (only('action.setVariables').values.variables as Array<{ variable: string; value: unknown }>).find((v) => v.variable === 'maxCalls');
  if (!maxCalls) throw new Error('flows/routing.slid: the settings node no longer sets maxCalls; update this test');
  maxCalls.value = 1;
  const http = only('query.httpRequest');
  http.values.url = String(http.values.url).replace(/^http:\/\/[^/]+/, `http://${HOST}:${apiPort}`);
  writeFileSync(target, JSON.stringify(slid, null, 2));
}

const serveAt = (now: string) =>
  startServe({
    flows: path.dirname(flowFile),
    args: ['--now', now, '--domain', DOMAIN],
    // the BYE passes through sipflow (the stop CDR); start CDRs too; CDRs with the customer, written within 100 ms
    config: {
      routes: [{ logic: 'routing' }],
      sip: { recordRoute: true },
      accounting: { enabled: true, database: false, file: now === OPEN ? cdrFile : null, start: true, variables: ['customer'], flushMs: 100 },
    },
    workers: 2,
  });

interface Cdr {
  kind: string;
  callId: string;
  destination: string | null;
  status: number | null;
  reason: string | null;
  duration: number | null;
  connectAt: number | null;
  called: string | null;
  variables: Record<string, unknown>;
  fields: Record<string, unknown>;
}

/** The CDRs of the open server's file, once `count` of them satisfy `pred` (bounded wait: the writer flushes every 100 ms). */
async function cdrs(pred: (c: Cdr) => boolean, count: number): Promise<Cdr[]> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const all = existsSync(cdrFile)
      ? readFileSync(cdrFile, 'utf8')
          .split('\n')
          .filter((l) => l.trim() !== '')
          .map((l) => JSON.parse(l) as Cdr)
      : [];
    const found = all.filter(pred);
    if (found.length >= count || Date.now() > deadline) return found;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The Call-IDs of the INVITEs a SIPp run sent. */
const callIdsOf = (r: SippResult) => [
  ...new Set(
    traced(r.messages)
      .filter((m) => m.dir === 'sent' && m.firstLine.startsWith('INVITE'))
      .map((m) => m.callId),
  ),
];

beforeAll(async () => {
  rmSync(ARTIFACTS, { recursive: true, force: true });
  mkdirSync(ARTIFACTS, { recursive: true });
  configureSipp({ host: HOST, artifacts: ARTIFACTS, scenarios: __dirname, serverLog: () => `${open?.output() ?? ''}\n${holiday?.output() ?? ''}` });
  await freeUdpPort(TRUNK); // fails clearly where 127.0.0.2 is not local

  api = Fastify();
  api.get<{ Querystring: { number?: string } }>('/route', async (req, reply) => {
    const number = req.query.number ?? '';
    asked.push(number);
    if (number.startsWith('+3120'))
      return { destination: `sip:${number}@${HOST}:${gatewayPort}`, fallback: `sip:${number}@${HOST}:${fallbackPort}`, carrier: 'gw-ams' };
    if (number.startsWith('+3130')) return reply.code(500).send({ error: 'routing database down' });
    return reply.code(404).send({ error: 'no route' });
  });
  await api.listen({ host: HOST, port: 0 });
  apiPort = (api.server.address() as { port: number }).port;

  dir = mkdtempSync(path.join(os.tmpdir(), 'sipflow-routing-'));
  mkdirSync(path.join(dir, 'flows'));
  flowFile = path.join(dir, 'flows', 'routing.slid');
  cdrFile = path.join(dir, 'cdrs.jsonl');
  editedFlow(flowFile);
  [open, holiday] = await Promise.all([serveAt(OPEN), serveAt(HOLIDAY)]);
}, 120_000);

afterAll(async () => {
  for (const s of [open, holiday]) if (s) writeFileSync(path.join(ARTIFACTS, `sipflow-${s === open ? 'open' : 'holiday'}.log`), s.output());
  await Promise.all([open?.stop(), holiday?.stop()]);
  await killAll();
  await api?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
}, 60_000);

/** Calls `numbers` from the trunk (or `from`) and returns each number's final status and Reason header. */
async function refused(name: string, s: ServeProcess, numbers: string[], from = TRUNK): Promise<Record<string, { status: number; reason?: string }>> {
  const r = await sippRun({
    name,
    scenario: 'routing-refused.xml',
    csv: numbers,
    keys: { domain: DOMAIN },
    localIp: from,
    localPort: await freeUdpPort(from),
    calls: numbers.length,
    remote: `${HOST}:${s.sipPort}`,
  });
  expectOk(r, numbers.length, name);
  const msgs = traced(r.messages);
  const out: Record<string, { status: number; reason?: string }> = {};
  for (const m of msgs) {
    if (m.dir !== 'received' || /^SIP\/2\.0 1\d\d/.test(m.firstLine)) continue;
    const invite = msgs.find((x) => x.dir === 'sent' && x.callId === m.callId && x.firstLine.startsWith('INVITE'))!;
    const reason = hdr(m.text, 'Reason');
    out[/^INVITE sip:([^@]+)@/.exec(invite.firstLine)![1]] = { status: Number(m.firstLine.split(' ')[1]), ...(reason ? { reason } : {}) };
  }
  return out;
}

describe('flows/routing.slid with SIPp, a local routing API and the calendar at two instants', () => {
  test('open (Tuesday 10:00): the national number is normalised to E.164, the API asked, the call relayed to the gateway it names; 180, 200, ACK, BYE', async () => {
    gatewayPort = await freeUdpPort();
    asked.length = 0;
    const gateway = await startUas('gateway', '+31201234567', gatewayPort);
    const trunk: SippResult = await sippRun({
      name: 'open-call',
      scenario: 'pstn-call.xml',
      service: '0201234567',
      keys: { domain: DOMAIN },
      localIp: TRUNK,
      localPort: await freeUdpPort(TRUNK),
      calls: 1,
      remote: `${HOST}:${open!.sipPort}`,
    });
    const gw = await uasAfter(gateway, trunk, 'call at opening hours');
    expectOk(trunk, 1, 'call at opening hours');
    expectOk(gw, 1, 'gateway UAS');
    expect(asked).toEqual(['+31201234567']);
    const got = distinct(traced(trunk.messages))
      .filter((m) => m.dir === 'received' && !m.firstLine.startsWith('SIP/2.0 100'))
      .map((m) => m.firstLine);
    expect(got).toEqual(['SIP/2.0 180 Ringing', 'SIP/2.0 200 OK', 'SIP/2.0 200 OK']);
    const seen = distinct(traced(gw.messages)).filter((m) => m.dir === 'received');
    expect(seen.map((m) => m.firstLine.split(' ')[0])).toEqual(['INVITE', 'ACK', 'BYE']);
    expect(seen[0].firstLine).toBe(`INVITE sip:+31201234567@${HOST}:${gatewayPort} SIP/2.0`);
    expect(hdr(seen[0].text, 'Via')).toMatch(new RegExp(`^SIP/2\\.0/UDP ${HOST}:${open!.sipPort};`));
  }, 90_000);

  test('holiday (Christmas Day 10:00): 480 with a Reason header, the API never asked', async () => {
    asked.length = 0;
    const r = await refused('holiday', holiday!, ['0201234567']);
    expect(r['0201234567'].status).toBe(480);
    expect(r['0201234567'].reason).toMatch(/^SIP;cause=480;text=".*holiday.*"$/i);
    expect(asked).toEqual([]);
  }, 60_000);

  test('open: an invalid number gets 484, a route the API cannot give 503, a sender that is not a trunk 403; nothing reaches the gateway', async () => {
    asked.length = 0;
    // 0301234567: the API fails (500); 0101234567: it has no route (404); 0991234567: no such Dutch number
    const noRoute = { status: 503, reason: 'SIP;cause=503;text="No route"' };
    expect(await refused('open-refusals', open!, ['12', '0301234567', '0101234567', '0991234567'])).toEqual({
      '12': { status: 484 },
      '0301234567': noRoute,
      '0101234567': noRoute,
      '0991234567': { status: 484 },
    });
    expect(asked).toEqual(['+31301234567', '+31101234567']);
    expect(await refused('not-a-trunk', open!, ['0201234567'], HOST)).toEqual({ '0201234567': { status: 403 } });
    expect(asked).toHaveLength(2);
  }, 60_000);

  test('gateway 1 answers 503 → the call completes on gateway 2; one recurse and one stop CDR with the final gateway, the duration, the customer and the carrier', async () => {
    [gatewayPort, fallbackPort] = [await freeUdpPort(), await freeUdpPort()];
    const down = await startUas('gateway-503', '+31201234567', gatewayPort, 'uas-503.xml');
    const second = await startUas('gateway-2', '+31201234567', fallbackPort);
    const trunk = await sippRun({
      name: 'failover-call',
      scenario: 'routing-call.xml',
      service: '0201234567',
      keys: { domain: DOMAIN },
      localIp: TRUNK,
      localPort: await freeUdpPort(TRUNK),
      calls: 1,
      remote: `${HOST}:${open!.sipPort}`,
    });
    expectOk(trunk, 1, 'call failing over');
    expectOk(await uasAfter(down, trunk, 'gateway 1'), 1, 'gateway 1 (503)');
    expectOk(await uasAfter(second, trunk, 'gateway 2'), 1, 'gateway 2');
    const got = distinct(traced(trunk.messages))
      .filter((m) => m.dir === 'received' && !m.firstLine.startsWith('SIP/2.0 100'))
      .map((m) => m.firstLine);
    expect(got).toEqual(['SIP/2.0 180 Ringing', 'SIP/2.0 200 OK', 'SIP/2.0 200 OK']);
    const [callId] = callIdsOf(trunk);
    const records = await cdrs((c) => c.callId === callId, 3);
    expect(records.map((c) => c.kind)).toEqual(['recurse', 'start', 'stop']);
    const [recurse, start, stop] = records;
    expect(start).toMatchObject({ status: 200, duration: 0, destination: `sip:+31201234567@${HOST}:${fallbackPort}` });
    expect(recurse).toMatchObject({ status: 503, destination: `sip:+31201234567@${HOST}:${gatewayPort}` });
    expect(stop).toMatchObject({
      status: 200,
      destination: `sip:+31201234567@${HOST}:${fallbackPort}`,
      variables: { customer: `trunk ${TRUNK}` },
      fields: { carrier: 'gw-ams' },
    });
    // the call was held 1.5 s between the ACK and the BYE
    expect(stop.duration).toBeGreaterThanOrEqual(1.4);
    expect(stop.duration).toBeLessThan(10);
  }, 90_000);

  test('the trunk’s call limit (1) reached: a second call at once gets 503 "Call limit reached" and a reject CDR; the first completes', async () => {
    gatewayPort = await freeUdpPort();
    const gateway = await startUas('gateway-held', '+31201234567', gatewayPort);
    const startsBefore = (await cdrs((c) => c.kind === 'start', 0)).length;
    const rejectsBefore = (await cdrs((c) => c.kind === 'reject' && c.status === 503, 0)).length;
    const first = sipp({
      name: 'held-call',
      scenario: 'routing-call.xml',
      service: '0201234567',
      keys: { domain: DOMAIN },
      localIp: TRUNK,
      localPort: await freeUdpPort(TRUNK),
      calls: 1,
      remote: `${HOST}:${open!.sipPort}`,
    });
    // the first call holds the slot: its start CDR says it is connected
    expect((await cdrs((c) => c.kind === 'start', startsBefore + 1)).length).toBe(startsBefore + 1);
    const second = await refused('over-the-limit', open!, ['0201234567']);
    expect(second['0201234567']).toEqual({ status: 503, reason: 'SIP;cause=503;text="Call limit reached"' });
    const held = await first.done;
    expectOk(held, 1, 'the held call');
    expectOk(await uasAfter(gateway, held, 'gateway'), 1, 'gateway');
    const rejected = await cdrs((c) => c.kind === 'reject' && c.status === 503, rejectsBefore + 1);
    expect(rejected).toHaveLength(rejectsBefore + 1);
    expect(rejected.at(-1)).toMatchObject({ destination: null, connectAt: null, called: '0201234567', variables: { customer: `trunk ${TRUNK}` } });
    // the slot is free again: the next call goes through the API
    asked.length = 0;
    await refused('after-the-limit', open!, ['0101234567']);
    expect(asked).toEqual(['+31101234567']);
  }, 90_000);

  test('CANCEL while the second gateway rings: 487 to the caller, the gateway gets CANCEL and ACK and nothing more; a reject CDR with 487', async () => {
    [gatewayPort, fallbackPort] = [await freeUdpPort(), await freeUdpPort()];
    const down = await startUas('gateway-503-cancel', '+31201234567', gatewayPort, 'uas-503.xml');
    const ringing = await startUas('gateway-ringing', '+31201234567', fallbackPort, 'uas-ringing.xml');
    const trunk = await sippRun({
      name: 'cancelled-call',
      scenario: 'routing-cancel.xml',
      service: '0201234567',
      keys: { domain: DOMAIN },
      localIp: TRUNK,
      localPort: await freeUdpPort(TRUNK),
      calls: 1,
      remote: `${HOST}:${open!.sipPort}`,
    });
    expectOk(trunk, 1, 'cancelled call');
    expectOk(await uasAfter(down, trunk, 'gateway 1'), 1, 'gateway 1 (503)');
    const gw2 = await uasAfter(ringing, trunk, 'gateway 2');
    expectOk(gw2, 1, 'gateway 2 (ringing, cancelled)');
    const seen = distinct(traced(gw2.messages)).filter((m) => m.dir === 'received');
    expect(seen.map((m) => m.firstLine.split(' ')[0])).toEqual(['INVITE', 'CANCEL', 'ACK']);
    const got = distinct(traced(trunk.messages)).filter((m) => m.dir === 'received' && !m.firstLine.startsWith('SIP/2.0 100'));
    expect(got.map((m) => m.firstLine)).toEqual(['SIP/2.0 180 Ringing', 'SIP/2.0 200 OK', 'SIP/2.0 487 Request Terminated']);
    const [callId] = callIdsOf(trunk);
    const records = await cdrs((c) => c.callId === callId, 2);
    expect(records.map((c) => [c.kind, c.status])).toEqual([
      ['recurse', 503],
      ['reject', 487],
    ]);
  }, 90_000);

  test('sipflow run --now: the same logic at night answers 480 (closed), at opening hours reaches the API', async () => {
    const cd = path.join(dir, 'invite.json');
    writeFileSync(
      cd,
      JSON.stringify({
        requestMethod: 'INVITE',
        requestURI: `sip:0201234567@${DOMAIN}`,
        sourceAddress: TRUNK,
        sourcePort: 5060,
        transport: 'udp',
        headers: { From: `<sip:+3222222222@${TRUNK}>;tag=1`, To: `<sip:0201234567@${DOMAIN}>`, 'Call-ID': 'run-now', CSeq: '1 INVITE' },
      }),
    );
    const at = async (now: string) =>
      JSON.parse(
        await run(process.execPath, [MAIN, 'run', flowFile, '--logic', 'routing', '--cd', cd, '--now', now, '--directory-url', 'memory://'], 30_000),
      ) as {
        outcome: { kind: string; status: number | null; headers?: Record<string, string>; targets?: Array<{ uri: string }> };
      };
    asked.length = 0;
    gatewayPort = 5099;
    const night = await at(NIGHT);
    expect(night.outcome).toMatchObject({ kind: 'reply', status: 480 });
    expect(night.outcome.headers?.Reason).toMatch(/closed/i);
    const day = await at(OPEN);
    expect(day.outcome).toMatchObject({ kind: 'relay', targets: [{ uri: `sip:+31201234567@${HOST}:5099` }] });
    expect(asked).toEqual(['+31201234567']);
  }, 60_000);
});
