/**
 * Failover routing (nodes/failover.ts, sip/proxy.ts RelaySequence) over real UDP sockets: three
 * gateways played by test UAs. 503 from the first → the call completes on the second; 486 is no
 * failover code and goes to the caller; a silent gateway is given up after attemptTimeoutMs;
 * every gateway failing resumes the logic at ifAllFailed with lastCode / lastRequestURI, which
 * may relay again; a CANCEL during the sequence stops it (487, nothing more sent). The call
 * events (sip/call-events.ts) are recorded and checked on the way, and so, for one call, are the
 * message tap and the run tap (sip/message-tap.ts) the call history and HEP capture rely on.
 */
import { formatProblem, loadSlid } from '../../../engine/load';
import type { RunContext } from '../../../engine/types';
import { builtinRegistry } from '../../../nodes';
import { createDigestAuth } from '../../../services/auth';
import { createMemoryDirectory } from '../../../services/directory/memory';
import { createMemoryLocationStore } from '../../../services/location/memory';
import { createRegistrar } from '../../../services/location/registrar';
import { startSipServer, type SipServer } from '../../../server/sip-server';
import type { CallEvents } from '../../../sip/call-events';
import { callIdOf, type LogicRun, type MessageTap, type RunTap } from '../../../sip/message-tap';
import { header, isRequest, type SipRequest, type SipResponse } from '../../../sip/message';
import { slidNode as node } from '../../support/slid';
import { UdpUa, rand, sipRequest, sipResponse, type Received } from './ua';

let server: SipServer;
let caller: UdpUa;
let gw1: UdpUa;
let gw2: UdpUa;
let gw3: UdpUa;
const events: Array<[string, ...unknown[]]> = [];
const recorder: CallEvents = {
  setup: (c) => events.push(['setup', c.callId, c.logic, c.outcome]),
  attempt: (callId, uris) => events.push(['attempt', callId, ...uris]),
  attemptFailed: (callId, uri, status) => events.push(['attemptFailed', callId, uri, status]),
  final: (callId, status, _reason, uri) => events.push(['final', callId, status, uri]),
  inDialog: (callId, method) => events.push(['inDialog', callId, method]),
};
// the taps: every message seen (direction, first line) and the runs of the Call-IDs in `traced`
const seen: Array<{ callId: string | null; dir: 'in' | 'out'; line: string; from: string; to: string }> = [];
const tap: MessageTap = {
  received: (data, peer, local) =>
    seen.push({
      callId: callIdOf(data),
      dir: 'in',
      line: data.toString('latin1', 0, data.indexOf(13)),
      from: `${peer.address}:${peer.port}`,
      to: `${local.address}:${local.port}`,
    }),
  sent: (data, peer, from) =>
    seen.push({
      callId: callIdOf(data),
      dir: 'out',
      line: data.toString('latin1', 0, data.indexOf(13)),
      from: `${from?.host}:${from?.port}`,
      to: `${peer.address}:${peer.port}`,
    }),
};
const traced = new Set<string>();
const runs: Array<{ callId: string; run: LogicRun }> = [];
const wanted: string[] = [];
const runTap: RunTap = {
  wants: (callId, method, vars) => {
    wanted.push(`${callId} ${method} ${String(vars.called)}`);
    return traced.has(callId);
  },
  ran: (callId, run) => runs.push({ callId, run }),
};
const of = (callId: string) => events.filter((e) => e[1] === callId).map(([k, , ...rest]) => [k, ...rest]);

const gw = (ua: UdpUa) => `sip:[called]@127.0.0.1:${ua.port}`;
const uri = (ua: UdpUa, user = 'bob') => `sip:${user}@127.0.0.1:${ua.port}`;

beforeAll(async () => {
  [gw1, gw2, gw3] = [await UdpUa.open(0), await UdpUa.open(0), await UdpUa.open(0)];
  const flows = {
    1: {
      name: 'failover',
      description: 'gw1, then gw2; all failed → announcement on gw3',
      nodes: {
        0: node(0, 'enter.start', { next: 1 }),
        1: node(1, 'output.relay', { destination: gw(gw1), alternatives: [gw(gw2)], attemptTimeoutMs: 400, ifAllFailed: 2 }),
        2: node(2, 'action.sipHeaders', { operations: [{ op: 'add', header: 'X-Last', value: '[lastCode] [lastRequestURI]' }], next: 3 }),
        3: node(3, 'output.relay', { destination: `sip:announcement@127.0.0.1:${gw3.port}` }),
      },
    },
    2: {
      name: 'no-exit',
      description: 'failover without ifAllFailed: the last response goes to the caller',
      nodes: {
        0: node(0, 'enter.start', { next: 1 }),
        1: node(1, 'output.relay', { destination: gw(gw1), alternatives: ['[nothingHere]', 'not a uri [called]', gw(gw2)], failoverCodes: ['5xx'] }),
      },
    },
  };
  const loaded = loadSlid(flows, 'failover.slid', builtinRegistry());
  expect(loaded.problems.filter((p) => p.severity === 'error').map(formatProblem)).toEqual([]);
  const ctx: RunContext = {
    directory: createMemoryDirectory({}),
    location: createRegistrar(createMemoryLocationStore()),
    auth: createDigestAuth({ secret: 'sipflow-failover-test-0123456789abcdef' }),
    clock: { now: Date.now },
  };
  server = await startSipServer({
    service: loaded.service!,
    ctx,
    host: '127.0.0.1',
    port: 0,
    defaultLogic: 'failover',
    routes: [{ method: 'MESSAGE', logic: 'no-exit' }],
    timers: { t1: 50 },
    calls: recorder,
    tap,
    runs: runTap,
  });
  caller = await UdpUa.open(server.udpPort);
});
afterAll(async () => {
  for (const ua of [caller, gw1, gw2, gw3]) await ua?.close();
  await server?.close(100);
});

/** The next `method` request of this call a gateway receives (retransmissions of earlier calls left aside). */
const request = (ua: UdpUa, method: string, callId: string) =>
  ua.next((r) => isRequest(r.msg) && r.msg.method === method && header(r.msg, 'call-id') === callId, 2000) as Promise<Received & { msg: SipRequest }>;

/** A gateway's response, sent to the server. */
const answer = (ua: UdpUa, text: string) => ua.sendTo(text, server.udpPort);

function invite(callId: string): void {
  caller.send(sipRequest({ method: 'INVITE', uri: `sip:bob@127.0.0.1:${server.udpPort}`, ua: caller, callId, branch: 'z9hG4bK' + callId }));
}

test('503 from the first gateway → the second answers, the caller gets its 200; the first got an ACK for its 503', async () => {
  const callId = rand();
  invite(callId);
  const { msg: first } = await request(gw1, 'INVITE', callId);
  expect(first.uri).toBe(uri(gw1));
  answer(gw1, sipResponse(first, 503, 'Service Unavailable', { toTag: 'g1' }));
  expect((await request(gw1, 'ACK', callId)).msg.uri).toBe(uri(gw1));
  const { msg: second } = await request(gw2, 'INVITE', callId);
  expect(second.uri).toBe(uri(gw2));
  // a new branch: the next hop sees a new transaction
  expect(second.headers.via[0]).not.toBe(first.headers.via[0]);
  answer(gw2, sipResponse(second, 200, 'OK', { toTag: 'g2', headers: { Contact: `<${uri(gw2)}>` } }));
  const ok = await caller.response(200);
  expect(header(ok, 'call-id')).toBe(callId);
  expect(of(callId)).toEqual([
    ['setup', 'failover', 'relay'],
    ['attempt', uri(gw1)],
    ['attemptFailed', uri(gw1), 503],
    ['attempt', uri(gw2)],
    ['final', 200, uri(gw2)],
  ]);
});

test('486 is no failover code: the caller gets it, the second gateway nothing', async () => {
  const callId = rand();
  invite(callId);
  const { msg } = await request(gw1, 'INVITE', callId);
  answer(gw1, sipResponse(msg, 486, 'Busy Here', { toTag: 'g1' }));
  expect((await caller.response(486)).reason).toBe('Busy Here');
  await gw2.silence(300, (r) => r.raw.includes(callId));
  expect(of(callId).at(-1)).toEqual(['final', 486, uri(gw1)]);
});

test('a silent gateway is given up after attemptTimeoutMs; the next one answers', async () => {
  const callId = rand();
  invite(callId);
  await request(gw1, 'INVITE', callId);
  const { msg } = await request(gw2, 'INVITE', callId);
  answer(gw2, sipResponse(msg, 200, 'OK', { toTag: 'g2', headers: { Contact: `<${uri(gw2)}>` } }));
  await caller.response(200);
  expect(of(callId)).toContainEqual(['attemptFailed', uri(gw1), 408]);
});

test('every gateway failed → the logic resumes at ifAllFailed with lastCode and lastRequestURI, and relays again', async () => {
  const callId = rand();
  invite(callId);
  answer(gw1, sipResponse((await request(gw1, 'INVITE', callId)).msg, 500, 'Server Internal Error', { toTag: 'g1' }));
  answer(gw2, sipResponse((await request(gw2, 'INVITE', callId)).msg, 603, 'Decline', { toTag: 'g2' }).replace('603 Decline', '502 Bad Gateway'));
  const { msg: announcement } = await request(gw3, 'INVITE', callId);
  expect(announcement.uri).toBe(`sip:announcement@127.0.0.1:${gw3.port}`);
  expect(announcement.headers['x-last']).toEqual([`502 ${uri(gw2)}`]);
  answer(gw3, sipResponse(announcement, 200, 'OK', { toTag: 'g3', headers: { Contact: `<sip:announcement@127.0.0.1:${gw3.port}>` } }));
  await caller.response(200);
  expect(of(callId).map((e) => e[0])).toEqual(['setup', 'attempt', 'attemptFailed', 'attempt', 'attemptFailed', 'attempt', 'final']);
});

test('CANCEL during the sequence stops it: the ringing gateway is cancelled, the caller gets 487, and its late 503 tries no other gateway', async () => {
  const callId = rand();
  invite(callId);
  const { msg: first } = await request(gw1, 'INVITE', callId);
  answer(gw1, sipResponse(first, 180, 'Ringing', { toTag: 'g1' }));
  await caller.response(180);
  caller.send(sipRequest({ method: 'CANCEL', uri: `sip:bob@127.0.0.1:${server.udpPort}`, ua: caller, callId, branch: 'z9hG4bK' + callId }));
  expect((await caller.response(200)).headers.cseq[0]).toBe('1 CANCEL');
  const { msg: cancel } = await request(gw1, 'CANCEL', callId);
  answer(gw1, sipResponse(cancel, 200, 'OK', { toTag: 'g1' }));
  // a gateway answering the cancelled INVITE with a failover code
  answer(gw1, sipResponse(first, 503, 'Service Unavailable', { toTag: 'g1' }));
  expect((await caller.response(487)).status).toBe(487);
  await gw2.silence(300, (r) => r.raw.includes(callId));
  await gw3.silence(10, (r) => r.raw.includes(callId));
  expect(of(callId).map((e) => e[0])).toEqual(['setup', 'attempt', 'final']);
  expect(of(callId).at(-1)).toEqual(['final', 487, null]);
});

test('without ifAllFailed, the last attempt’s response goes to the caller; empty and invalid alternatives are skipped', async () => {
  const callId = rand();
  caller.send(sipRequest({ method: 'MESSAGE', uri: `sip:bob@127.0.0.1:${server.udpPort}`, ua: caller, callId }));
  answer(gw1, sipResponse((await request(gw1, 'MESSAGE', callId)).msg, 500, 'Server Internal Error', { toTag: 'g1' }));
  answer(gw2, sipResponse((await request(gw2, 'MESSAGE', callId)).msg, 504, 'Server Time-out', { toTag: 'g2' }));
  expect((await caller.response(504)).reason).toBe('Server Time-out');
});

test('after the 200, the BYE and a re-INVITE are reported as in-dialog requests, never as a new call', async () => {
  const callId = rand();
  const proxyUri = `sip:bob@127.0.0.1:${server.udpPort}`;
  caller.send(sipRequest({ method: 'INVITE', uri: proxyUri, ua: caller, callId, fromTag: 'caller' }));
  const { msg } = await request(gw1, 'INVITE', callId);
  answer(gw1, sipResponse(msg, 200, 'OK', { toTag: 'g1', headers: { Contact: `<${uri(gw1)}>` } }));
  await caller.response(200);
  // no Record-Route came back (the test gateway does not copy it): the proxy's dialog table routes them
  const inDialog = (method: string, cseq: number) =>
    caller.send(sipRequest({ method, uri: proxyUri, ua: caller, callId, cseq, fromTag: 'caller', to: '<sip:bob@example.test>;tag=g1' }));
  const answered = (cseq: string) => caller.next((r) => !isRequest(r.msg) && (r.msg as SipResponse).status === 200 && header(r.msg, 'cseq') === cseq);
  inDialog('INVITE', 2);
  const reinvite = await request(gw1, 'INVITE', callId);
  answer(gw1, sipResponse(reinvite.msg, 200, 'OK', { headers: { Contact: `<${uri(gw1)}>` } }));
  await answered('2 INVITE');
  inDialog('BYE', 3);
  const bye = await request(gw1, 'BYE', callId);
  answer(gw1, sipResponse(bye.msg, 200, 'OK'));
  await answered('3 BYE');
  expect(of(callId)).toEqual([
    ['setup', 'failover', 'relay'],
    ['attempt', uri(gw1)],
    ['final', 200, uri(gw1)],
    ['inDialog', 'INVITE'],
    ['inDialog', 'BYE'],
  ]);
});

test('the taps: every message in and out of a traced call, its first run and the resumed one with their own steps; an untraced call reports no run', async () => {
  const callId = rand();
  traced.add(callId);
  invite(callId);
  answer(gw1, sipResponse((await request(gw1, 'INVITE', callId)).msg, 500, 'Server Internal Error', { toTag: 'g1' }));
  answer(gw2, sipResponse((await request(gw2, 'INVITE', callId)).msg, 502, 'Bad Gateway', { toTag: 'g2' }));
  const { msg: announcement } = await request(gw3, 'INVITE', callId);
  answer(gw3, sipResponse(announcement, 200, 'OK', { toTag: 'g3', headers: { Contact: `<sip:announcement@127.0.0.1:${gw3.port}>` } }));
  await caller.response(200);
  const ours = seen.filter((m) => m.callId === callId);
  const lines = ours.map((m) => `${m.dir} ${m.line}`);
  // the order of a received response and the send it causes is fixed; ACKs to the failed gateways follow their responses
  expect(lines).toEqual(
    expect.arrayContaining([
      `in INVITE sip:bob@127.0.0.1:${server.udpPort} SIP/2.0`,
      'out SIP/2.0 100 Trying',
      `out INVITE ${uri(gw1)} SIP/2.0`,
      'in SIP/2.0 500 Server Internal Error',
      `out ACK ${uri(gw1)} SIP/2.0`,
      `out INVITE ${uri(gw2)} SIP/2.0`,
      'in SIP/2.0 502 Bad Gateway',
      `out ACK ${uri(gw2)} SIP/2.0`,
      `out INVITE sip:announcement@127.0.0.1:${gw3.port} SIP/2.0`,
      'in SIP/2.0 200 OK',
      'out SIP/2.0 200 OK',
    ]),
  );
  expect(lines[0]).toBe(`in INVITE sip:bob@127.0.0.1:${server.udpPort} SIP/2.0`);
  expect(lines.at(-1)).toBe('out SIP/2.0 200 OK');
  // addresses: the caller's INVITE came from the caller to the server; the relayed one left the server for gw1
  expect(ours[0]).toMatchObject({ from: `127.0.0.1:${caller.port}`, to: `127.0.0.1:${server.udpPort}` });
  expect(ours.find((m) => m.line.startsWith(`INVITE ${uri(gw1)}`))).toMatchObject({ from: `127.0.0.1:${server.udpPort}`, to: `127.0.0.1:${gw1.port}` });

  const mine = runs.filter((r) => r.callId === callId).map((r) => r.run);
  expect(mine.map((r) => [r.method, r.logic, r.outcome, r.trace.map((s) => `${s.nodeId}>${s.exit}`)])).toEqual([
    ['INVITE', 'failover', 'relay', ['0>next', '1>relay']],
    ['INVITE', 'failover', 'relay', ['2>next', '3>relay']],
  ]);
  // the variables before each part: the resumed one sees lastCode / lastRequestURI
  expect(mine[0].input).toMatchObject({ called: 'bob', callId });
  expect(mine[0].input.lastCode).toBeUndefined();
  expect(mine[1].input).toMatchObject({ lastCode: 502, lastRequestURI: uri(gw2) });
  expect(mine[0].durationMs).toBeGreaterThanOrEqual(0);

  // a call the run tap does not want: asked, no run reported, messages still seen
  const other = rand();
  invite(other);
  answer(gw1, sipResponse((await request(gw1, 'INVITE', other)).msg, 486, 'Busy Here', { toTag: 'g1' }));
  await caller.response(486);
  expect(wanted).toContain(`${other} INVITE bob`);
  expect(runs.filter((r) => r.callId === other)).toEqual([]);
  expect(seen.filter((m) => m.callId === other).map((m) => m.dir)).toEqual(expect.arrayContaining(['in', 'out']));
});
