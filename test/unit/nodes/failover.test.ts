/**
 * Failover of the relaying nodes (nodes/failover.ts) and the engine's resume (engine/run.ts
 * RunResult.resume): codes, validation of literal alternatives, alternatives built from
 * placeholders and a list of records (empty, invalid and excess ones skipped), the location
 * lookup's failover, and a logic that relays again after every attempt failed staying within
 * the run's transition budget.
 */
import { formatProblem, loadSlid } from '../../../engine/load';
import type { RelayOutcome } from '../../../engine/types';
import { DEFAULT_FAILOVER_CODES, MAX_ATTEMPTS, failoverCodeTable } from '../../../nodes/failover';
import { compile, cdOf, docOf, registry, reply, runNodes, start, type NodeSpec } from '../engine/helpers';
import { runLogic } from '../../../engine/run';
import { testContext } from '../../support/context';

const problems = (nodes: NodeSpec[]): string[] =>
  loadSlid(docOf(nodes), 'test.slid', registry)
    .problems.filter((p) => p.severity === 'error')
    .map(formatProblem);

describe('failover codes', () => {
  test('the default: 408, 5xx, 6xx but not 486, 600, 603', () => {
    const codes = failoverCodeTable(DEFAULT_FAILOVER_CODES);
    expect([408, 500, 502, 503, 504, 599, 604, 606].every(codes)).toBe(true);
    expect([180, 200, 302, 404, 480, 486, 487, 600, 603, 700, -1].some(codes)).toBe(false);
  });
  test('exclusions apply after every inclusion, whatever the order', () => {
    const codes = failoverCodeTable(['!503', '5xx', '486']);
    expect(codes(503)).toBe(false);
    expect(codes(502)).toBe(true);
    expect(codes(486)).toBe(true);
    expect(codes(408)).toBe(false);
  });
  test.each([['5x'], ['700'], ['2xx'], ['!'], ['5xx,6xx']])('"%s" is refused at validation, located', (code) => {
    expect(problems([start(1), [1, 'output.relay', { destination: 'sip:gw1.example', failoverCodes: ['503', code] }]])).toEqual([
      expect.stringMatching(/node 1 "n1" › values\/failoverCodes\/1: must match pattern/),
    ]);
  });
});

describe('validation', () => {
  test('a literal alternative that is no SIP URI is located; placeholders are checked when filled', () => {
    expect(
      problems([
        start(1),
        [1, 'output.relay', { destination: 'sip:gw1.example', alternatives: ['sip:gw2.example', 'tel:+3225551234', 'sip:[called]@gw3.example'] }],
      ]),
    ).toEqual([expect.stringMatching(/values\/alternatives\/1: not a SIP URI: tel:\+3225551234/)]);
  });
  test(`more than ${MAX_ATTEMPTS} literal alternatives are refused`, () => {
    const many = Array.from({ length: MAX_ATTEMPTS + 1 }, (_, i) => `sip:gw${i}.example`);
    expect(problems([start(1), [1, 'output.relay', { destination: 'sip:gw1.example', alternatives: many }]])).toEqual([
      expect.stringMatching(/values\/alternatives: must NOT have more than 16 items/),
    ]);
  });
  test('ifAllFailed must name a node of the logic', () => {
    expect(problems([start(1), [1, 'output.relay', { destination: 'sip:gw1.example', ifAllFailed: 9 }]]).join()).toMatch(/ifAllFailed/);
  });
});

describe('the relay outcome', () => {
  const relay = (values: Record<string, unknown>, input: Record<string, unknown> = {}, extra: NodeSpec[] = []) =>
    runNodes([start(1), [1, 'output.relay', { destination: 'sip:[called]@gw1.example', ...values }], ...extra], { called: '3225551234', ...input });

  test('without failover fields: one attempt, no failover, no resume (as before)', async () => {
    const r = await relay({});
    expect(r.outcome).toEqual({ kind: 'relay', status: null, targets: [{ uri: 'sip:3225551234@gw1.example' }] });
    expect(r.resume).toBeUndefined();
  });

  test('alternatives from placeholders then from a list of records; empty, invalid and excess ones skipped', async () => {
    const rows = [{ uri: 'sip:gw3.example;transport=tcp' }, { uri: '' }, { other: 'x' }, { uri: 'gw4.example:5080' }];
    const r = await relay(
      {
        alternatives: ['sip:[called]@gw2.example', '[missing]', 'not a uri [called]'],
        alternativesList: 'routes',
        alternativesColumn: 'uri',
        attemptTimeoutMs: 1500,
      },
      { routes: rows },
    );
    const o = r.outcome as RelayOutcome;
    expect(o.failover!.alternatives).toEqual([
      [{ uri: 'sip:3225551234@gw2.example' }],
      [{ uri: 'sip:gw3.example;transport=tcp' }],
      [{ uri: 'sip:gw4.example:5080' }],
    ]);
    expect(o.failover!.attemptTimeoutMs).toBe(1500);
    expect(o.failover!.codes(503)).toBe(true);
    expect(o.failover!.codes(486)).toBe(false);
  });

  test(`a list of 40 routes gives ${MAX_ATTEMPTS} alternatives`, async () => {
    const routes = Array.from({ length: 40 }, (_, i) => ({ uri: `sip:gw${i}.example` }));
    const r = await relay({ alternativesList: 'routes' }, { routes });
    expect((r.outcome as RelayOutcome).failover!.alternatives).toHaveLength(MAX_ATTEMPTS);
  });

  test('a sender’s CR LF in a placeholder makes no alternative (no URI holds a control character)', async () => {
    const r = await relay({ alternatives: ['sip:[called]@gw2.example'] }, { called: '1\r\nVia: SIP/2.0/UDP evil' });
    expect((r.outcome as RelayOutcome).failover!.alternatives).toEqual([]);
  });

  test('resume continues at ifAllFailed with lastCode / lastRequestURI as the front end set them', async () => {
    const r = await relay({ ifAllFailed: 2 }, {}, [[2, 'output.reply', { code: 480, reason: 'Unavailable after [lastCode] from [lastRequestURI]' }]]);
    expect(r.resume).toBeDefined();
    r.cd.vars.lastCode = 503;
    r.cd.vars.lastRequestURI = 'sip:3225551234@gw1.example';
    const next = await r.resume!();
    expect(next.outcome).toEqual({ kind: 'reply', status: 480, reason: 'Unavailable after 503 from sip:3225551234@gw1.example' });
  });
});

test('the location lookup fails over to voicemail after its bindings', async () => {
  const ctx = testContext();
  const reg = await ctx.location.register({
    username: 'alice',
    domain: null,
    contacts: ['<sip:alice@192.0.2.10:5060>'],
    expiresHeader: '3600',
    callId: 'c1',
    cseq: 1,
    userAgent: 'test',
    received: null,
    socket: null,
    path: null,
    now: new Date(),
  });
  expect(reg.status).toBe(200);
  const service = compile(
    docOf([
      start(1),
      [1, 'output.nit.registrar.lookupLocationService', { aor: 'alice', alternatives: ['sip:vm-[requestUsername]@voicemail.example'], ifNotFound: 2 }],
      reply(2, 404),
    ]),
  );
  const r = await runLogic(service, '1', cdOf({ requestUsername: 'alice' }), ctx);
  const o = r.outcome as RelayOutcome;
  expect(o.targets.map((t) => t.uri)).toEqual(['sip:alice@192.0.2.10:5060']);
  expect(o.failover!.alternatives).toEqual([[{ uri: 'sip:vm-alice@voicemail.example' }]]);
});

test('relay → all failed → relay again, forever: the transition budget ends it with a 500 naming the node', async () => {
  const service = compile(docOf([start(1), [1, 'output.relay', { destination: 'sip:gw1.example', ifAllFailed: 1 }]]));
  let r = await runLogic(service, '1', cdOf({}), testContext(), { limits: { maxTransitions: 50 } });
  let resumes = 0;
  while (r.resume && resumes < 100) {
    r = await r.resume();
    resumes++;
  }
  expect(resumes).toBe(49);
  expect(r.outcome).toMatchObject({
    kind: 'error',
    status: 500,
    reason: expect.stringMatching(/more than 50 state transitions/),
    where: expect.stringMatching(/node 1/),
  });
});
