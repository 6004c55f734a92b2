import { DEFAULT_LIMITS, runLogic } from '../../../engine/run';
import { DirectoryError, type DirectoryPort } from '../../../services/directory/types';
import { acceptingAuth, testContext } from '../../support/context';
import { sampleRegister } from '../../support/sip';
import { cdOf, compile, docOf, logicOf, reply, runNodes, setVars, start, type NodeSpec } from './helpers';

const loop: NodeSpec[] = [start(1), setVars(1, [{ variable: 'a', value: 'A' }], 2), setVars(2, [{ variable: 'b', value: 'B' }], 1)];

describe('limits', () => {
  test('defaults are 1000 transitions, 2 restarts, 16 nested calls', () => {
    expect(DEFAULT_LIMITS).toEqual({ maxTransitions: 1000, maxRestarts: 2, maxCallDepth: 16 });
  });

  test('a loop A → B → A ends with error 500 naming the limit, with the trace when tracing', async () => {
    const r = await runNodes(loop, {}, undefined, { trace: true });
    expect(r.outcome).toEqual({
      kind: 'error',
      status: 500,
      reason: 'Server Internal Error (more than 1000 state transitions)',
      where: 'logic 1 "test" › node 2 "n2"',
    });
    expect(r.trace).toHaveLength(1000);
    expect(r.trace!.slice(0, 3).map((t) => `${t.nodeId}:${t.exit}`)).toEqual(['0:next', '1:next', '2:next']);
    expect(r.trace![999]).toEqual({ step: 1000, logic: '1', nodeId: '1', nodeName: 'n1', type: 'action.setVariables', exit: 'next', set: { a: 'A' } });
  });

  test('the transition limit can be lowered per run; no trace without tracing', async () => {
    const r = await runNodes(loop, {}, undefined, { limits: { maxTransitions: 5 } });
    expect(r.outcome).toMatchObject({ kind: 'error', status: 500, reason: 'Server Internal Error (more than 5 state transitions)' });
    expect('trace' in r).toBe(false);
  });

  test('exactly maxTransitions steps are allowed', async () => {
    const chain: NodeSpec[] = [start(1), setVars(1, [{ variable: 'x', value: 1 }], 2), reply(2, 404)];
    expect((await runNodes(chain, {}, undefined, { limits: { maxTransitions: 3 } })).outcome).toMatchObject({ kind: 'reply' });
    expect((await runNodes(chain, {}, undefined, { limits: { maxTransitions: 2 } })).outcome).toMatchObject({ kind: 'error', status: 500 });
  });

  describe('restarts after authentication', () => {
    const always: NodeSpec[] = [start(1), setVars(1, [{ variable: 'pw', value: 'secret' }], 2), [2, 'output.nit.registrar.authenticate', { password: 'pw' }]];
    const input = sampleRegister({ Authorization: 'Digest username="u"' });

    test('a logic that always authenticates ends with error 500 after maxRestarts', async () => {
      const r = await runNodes(always, input, { ...testContext(), auth: acceptingAuth }, { trace: true });
      expect(r.outcome).toEqual({ kind: 'error', status: 500, reason: 'Server Internal Error (more than 2 restarts)', where: 'logic 1 "test" › node 2 "n2"' });
      expect(r.trace!.filter((t) => t.exit === 'restart')).toHaveLength(3);
      expect(r.trace!.filter((t) => t.nodeId === '0')).toHaveLength(3);
    });

    test('the cap is per run options', async () => {
      const none = await runNodes(always, input, { ...testContext(), auth: acceptingAuth }, { limits: { maxRestarts: 0 } });
      expect(none.outcome).toMatchObject({ kind: 'error', reason: 'Server Internal Error (more than 0 restarts)' });
    });

    test('a restart from inside a sub-logic starts the top-level logic again', async () => {
      const service = compile({
        1: logicOf(
          [
            start(1),
            [1, 'analysis.sequentialConditions', { conditions: [{ variable: 'authStatus', operator: 'is', value: 1, ifTrue: 3 }], fallback: 2 }],
            [2, 'flow.callLogic', { logic: 'auth', next: 4 }],
            reply(3, 200, 'in'),
            reply(4, 500, 'came back'),
          ],
          'main',
        ),
        2: logicOf(always, 'auth'),
      });
      const r = await runLogic(service, 'main', cdOf(input), { ...testContext(), auth: acceptingAuth }, { trace: true });
      expect(r.outcome).toEqual({ kind: 'reply', status: 200, reason: 'in' });
      expect(r.restarts).toBe(1);
      expect(r.trace!.map((t) => `${t.logic}/${t.nodeId}:${t.exit}`)).toEqual([
        '1/0:next',
        '1/1:fallback',
        '1/2:call auth',
        '2/0:next',
        '2/1:next',
        '2/2:restart',
        '1/0:next',
        '1/1:conditions/0/ifTrue',
        '1/3:reply',
      ]);
    });
  });

  test('sub-logic calls nested deeper than maxCallDepth → error 500', async () => {
    const service = compile({ 1: logicOf([start(1), [1, 'flow.callLogic', { logic: 'test', next: 2 }], reply(2, 200)]) });
    const r = await runLogic(service, '1', cdOf({}), testContext(), { trace: true });
    expect(r.outcome).toEqual({
      kind: 'error',
      status: 500,
      reason: 'Server Internal Error (sub-logic calls nested deeper than 16)',
      where: 'logic 1 "test" › node 1 "n1"',
    });
    expect(r.trace!.filter((t) => t.exit === 'call test')).toHaveLength(17);
    const shallow = await runLogic(service, '1', cdOf({}), testContext(), { limits: { maxCallDepth: 2 } });
    expect(shallow.outcome).toMatchObject({ reason: 'Server Internal Error (sub-logic calls nested deeper than 2)' });
  });
});

describe('node failures', () => {
  const queryNodes: NodeSpec[] = [
    start(1),
    [
      1,
      'query.queryDatabaseGeneric',
      { tables: ['registration.customers'], fields: [{ field: 'customers.password', storeInto: 'password' }], ifRecordFound: 2, ifnoRecordFound: 2 },
    ],
    reply(2, 200),
  ];
  const failing = (err: unknown): DirectoryPort => ({
    query: async () => {
      throw err;
    },
    schema: async () => ({}),
  });

  test('a node that throws → error 500 naming the logic and node', async () => {
    const r = await runNodes(queryNodes, {}, testContext({ directory: failing(new Error('boom')) }), { trace: true });
    expect(r.outcome).toEqual({ kind: 'error', status: 500, reason: 'Server Internal Error (node failed: boom)', where: 'logic 1 "test" › node 1 "n1"' });
    expect(r.trace!.map((t) => `${t.nodeId}:${t.exit}`)).toEqual(['0:next', '1:error']);
  });

  test('a synchronous throw is caught the same way', async () => {
    const directory: DirectoryPort = {
      query: () => {
        throw new TypeError('sync');
      },
      schema: async () => ({}),
    };
    const r = await runNodes(queryNodes, {}, testContext({ directory }));
    expect(r.outcome).toMatchObject({ kind: 'error', status: 500, reason: 'Server Internal Error (node failed: sync)' });
  });

  test('DirectoryError unavailable → 503 with Retry-After; invalid → 500 with its message', async () => {
    const down = await runNodes(queryNodes, {}, testContext({ directory: failing(new DirectoryError('connection refused', 'unavailable')) }));
    expect(down.outcome).toEqual({ kind: 'error', status: 503, reason: 'Service Unavailable', retryAfter: 5, where: 'logic 1 "test" › node 1 "n1"' });
    const invalid = await runNodes(queryNodes, {}, testContext({ directory: failing(new DirectoryError('unknown column x', 'invalid')) }));
    expect(invalid.outcome).toEqual({ kind: 'error', status: 500, reason: 'Server Internal Error (unknown column x)', where: 'logic 1 "test" › node 1 "n1"' });
  });

  test('a logic that is not in the service is a programming error', async () => {
    const service = compile(docOf([start(1), reply(1, 404)]));
    await expect(runLogic(service, 'nope', cdOf({}), testContext())).rejects.toThrow('no logic "nope" in this service');
  });
});

describe('trace', () => {
  const nodes: NodeSpec[] = [
    start(1),
    setVars(
      1,
      [
        { variable: 'a', value: 'x' },
        { variable: 'b', value: 'a' },
      ],
      2,
    ),
    [2, 'action.log', { message: 'no write', next: 3 }],
    setVars(3, [{ variable: 'a', value: 'y' }], 4),
    reply(4, 404),
  ];

  test('off: no trace key at all', async () => {
    const r = await runNodes(nodes);
    expect(Object.keys(r).sort()).toEqual(['cd', 'outcome', 'restarts']);
    expect(r.cd.vars).toMatchObject({ a: 'y', b: 'x' });
  });

  test('on: one step per node with the exit taken and the variables it wrote', async () => {
    const r = await runNodes(nodes, {}, undefined, { trace: true });
    expect(r.trace).toEqual([
      { step: 1, logic: '1', nodeId: '0', nodeName: 'n0', type: 'enter.start', exit: 'next' },
      { step: 2, logic: '1', nodeId: '1', nodeName: 'n1', type: 'action.setVariables', exit: 'next', set: { a: 'x', b: 'x' } },
      { step: 3, logic: '1', nodeId: '2', nodeName: 'n2', type: 'action.log', exit: 'next' },
      { step: 4, logic: '1', nodeId: '3', nodeName: 'n3', type: 'action.setVariables', exit: 'next', set: { a: 'y' } },
      { step: 5, logic: '1', nodeId: '4', nodeName: 'n4', type: 'output.reply', exit: 'reply' },
    ]);
  });

  test('the run writes into the call descriptor it was given', async () => {
    const cd = cdOf({ called: '1' });
    const service = compile(docOf(nodes));
    const r = await runLogic(service, '1', cd, testContext());
    expect(r.cd).toBe(cd);
    expect(cd.vars.a).toBe('y');
  });
});
