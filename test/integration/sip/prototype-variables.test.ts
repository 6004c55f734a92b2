/**
 * One call-descriptor builder (engine/cd.ts `callDescriptorFrom`): the same .slid answers the same
 * request the same way over SIP (real UDP to a started SIP server), through the engine path of the
 * CLI, the API and the simulator (`buildCallDescriptor` + `runLogic`) and through the drachtio
 * front end's engine runner, also for variables named after Object.prototype members
 * (`constructor`, `__proto__`, `toString`): none of them exists unless the request gives it.
 */
import { buildCallDescriptor } from '../../../engine/cd';
import { loadSlid, type CompiledService } from '../../../engine/load';
import { runLogic } from '../../../engine/run';
import type { Outcome } from '../../../engine/types';
import { builtinRegistry } from '../../../nodes';
import { parseDigestCredentials } from '../../../services/auth';
import { startSipServer, type SipServer } from '../../../server/sip-server';
import { applyOutcome, callDescriptorOf, engineRunner, type DrachtioRequest, type DrachtioResponse } from '../../../sip/drachtio/front-end';
import { testContext } from '../../support/context';
import { UdpUa, rand, sipRequest } from './ua';
import { slidNode as node } from '../../support/slid';

const PROBED = ['constructor', '__proto__', 'toString', 'valueOf', 'hasOwnProperty'];

/**
 * start → one condition per probed variable, in turn (`exists` → reply 600 + i) → 299 "none":
 * the status tells which variable, if any, the logic saw.
 */
function probeDoc(): Record<string, unknown> {
  const nodes: Record<string, unknown> = { 0: node(0, 'enter.start', { next: 10 }) };
  PROBED.forEach((variable, i) => {
    nodes[10 + i] = node(10 + i, 'analysis.condition', {
      logic: 'all',
      conditions: [{ variable, operator: 'exists' }],
      ifTrue: 600 + i,
      ifFalse: i + 1 < PROBED.length ? 11 + i : 299,
    });
    nodes[600 + i] = node(600 + i, 'output.reply', { code: 600 + i, reason: `${variable} exists` });
  });
  nodes[299] = node(299, 'output.reply', { code: 299, reason: 'none' });
  return { 1: { name: 'probe', description: '', nodes } };
}

let service: CompiledService;
let server: SipServer;
const ctx = testContext();

beforeAll(async () => {
  const r = loadSlid(probeDoc(), 'probe.slid', builtinRegistry());
  if (!r.service) throw new Error(r.problems.map((p) => p.message).join('\n'));
  service = r.service;
  server = await startSipServer({ service, ctx, host: '127.0.0.1', port: 0, loopGuard: false });
});

afterAll(async () => {
  await server?.close(100);
});

/** The request as the CLI / API / simulator take it (what `sipflow run` reads from JSON). */
const cliInput = (extra: Record<string, unknown> = {}) => ({
  method: 'MESSAGE',
  requestUri: 'sip:bob@example.test',
  sourceAddress: '127.0.0.1',
  sourcePort: 5999,
  transport: 'udp',
  headers: { From: '<sip:alice@example.test>;tag=a1', To: '<sip:bob@example.test>', 'Call-ID': 'proto-1', CSeq: '1 MESSAGE' },
  ...extra,
});

async function viaEngine(input: unknown): Promise<Outcome> {
  const cd = buildCallDescriptor(input, { credentials: parseDigestCredentials });
  return (await runLogic(service, '1', cd, ctx)).outcome;
}

test('no prototype member is a variable: SIP, the engine path (CLI/API/simulator) and drachtio all answer 299', async () => {
  // SIP over real UDP
  const ua = await UdpUa.open(server.udpPort);
  try {
    ua.send(sipRequest({ method: 'MESSAGE', uri: 'sip:bob@example.test', ua, callId: rand(), cseq: 1, contact: null }));
    const res = await ua.response();
    expect({ status: res.status, reason: res.reason }).toEqual({ status: 299, reason: 'none' });
  } finally {
    await ua.close();
  }

  // the engine path of the CLI, the API and the simulator
  expect(await viaEngine(cliInput())).toMatchObject({ kind: 'reply', status: 299, reason: 'none' });

  // the drachtio front end (its request → execute contract → the same builder)
  const req: DrachtioRequest = {
    method: 'MESSAGE',
    uri: 'sip:bob@example.test',
    source_address: '127.0.0.1',
    source_port: 5999,
    protocol: 'udp',
    headers: { from: '<sip:alice@example.test>;tag=a1', to: '<sip:bob@example.test>', 'call-id': 'proto-2', cseq: '1 MESSAGE' },
    get(name) {
      const v = this.headers[name.toLowerCase()];
      return typeof v === 'string' ? v : undefined;
    },
    has(name) {
      return this.headers[name.toLowerCase()] !== undefined;
    },
  };
  const r = await engineRunner({ service, logic: '1', ctx }).run(callDescriptorOf(req));
  const sent: Array<{ status: number; reason?: string }> = [];
  const res: DrachtioResponse = {
    send: (status, reason) => {
      sent.push({ status, reason });
    },
  };
  await applyOutcome({ proxyRequest: async () => undefined }, req, res, r.outcome);
  expect(sent).toEqual([{ status: 299, reason: 'none' }]);
});

test('a prototype-named variable the input gives is an ordinary variable', async () => {
  for (const [i, name] of PROBED.entries()) {
    expect(await viaEngine(cliInput({ [name]: 'given' }))).toMatchObject({ kind: 'reply', status: 600 + i });
  }
  // __proto__ as a JSON key (what the CLI and the API parse) is an own property too
  expect(await viaEngine(JSON.parse(JSON.stringify(cliInput()).replace(/^\{/, '{"__proto__":"given",')))).toMatchObject({ kind: 'reply', status: 601 });
});
