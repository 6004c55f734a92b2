import { runLogic } from '../../../engine/run';
import type { LogPort } from '../../../engine/ports';
import { NODE_TYPES } from '../../../nodes';
import { testContext } from '../../support/context';
import { cdOf, compile, logicOf, reply, runNodes, setVars, start, type NodeSpec } from './helpers';

describe('the built-in node types', () => {
  test('are exactly the ones these suites cover', () => {
    expect(NODE_TYPES.map((t) => t.type).sort()).toEqual(
      [
        'action.accounting',
        'action.digitsManipulation',
        'action.log',
        'action.setVariables',
        'analysis.condition',
        'analysis.extractSipHeader',
        'analysis.sequentialConditions',
        'enter.start',
        'exit.return',
        'flow.callLogic',
        'output.nit.registrar.authenticate',
        'output.nit.registrar.lookupLocationService',
        'output.nit.registrar.saveLocationService',
        'output.redirect',
        'output.relay',
        'output.reply',
        'query.queryDatabaseGeneric',
        // lists, JSON, JWT and caching: test/unit/nodes/lists.test.ts, jwt-cache.test.ts
        'action.aggregateColumn',
        'action.appendRow',
        'action.cacheSet',
        'action.createList',
        'action.jsonToList',
        'action.jwt',
        'action.listToJson',
        'action.rotateList',
        'flow.forEachRow',
        'query.cacheGet',
        // manipulation: test/unit/nodes/manipulation.test.ts
        'action.normalizeNumber',
        'action.stringManipulation',
        'action.uriManipulation',
        'analysis.regexExtract',
        // date and time: test/unit/nodes/time.test.ts
        'action.setDateTime',
        'analysis.timeCondition',
        // external queries: test/unit/nodes/http-request.test.ts, test/unit/engine/nodes-external-query.test.ts
        'query.httpRequest',
        'query.enum',
        'query.ldap',
        // syslog: test/integration/nodes/syslog.test.ts
        'output.syslog',
        // header manipulation: test/unit/nodes/sip-headers.test.ts, test/integration/sip/header-edits.test.ts
        'action.sipHeaders',
        // call admission control: test/unit/nodes/call-limit.test.ts
        'analysis.callLimit',
      ].sort(),
    );
  });
});

describe('enter.start', () => {
  test('takes its next exit', async () => {
    const r = await runNodes([start(5), reply(5, 404)], {}, undefined, { trace: true });
    expect(r.trace).toEqual([
      { step: 1, logic: '1', nodeId: '0', nodeName: 'n0', type: 'enter.start', exit: 'next' },
      { step: 2, logic: '1', nodeId: '5', nodeName: 'n5', type: 'output.reply', exit: 'reply' },
    ]);
  });
});

describe('action.setVariables', () => {
  test('writes in order: literals, booleans, numbers, references to earlier ones, templates, null', async () => {
    const r = await runNodes(
      [
        start(1),
        setVars(
          1,
          [
            { variable: 'a', value: 'hello' },
            { variable: 'b', value: 'a' },
            { variable: 'c', value: '[a] [called]' },
            { variable: 'd', value: 'True' },
            { variable: 'e', value: 42 },
            { variable: 'f' },
            { variable: 'called', value: '999' },
          ],
          2,
        ),
        reply(2, 404),
      ],
      { called: '100' },
    );
    expect(r.cd.vars).toMatchObject({ a: 'hello', b: 'hello', c: 'hello 100', d: true, e: 42, f: null, called: '999' });
  });

  test('onlyIfNotSet leaves an existing value alone but fills a missing or null one', async () => {
    const r = await runNodes(
      [
        start(1),
        setVars(
          1,
          [
            { variable: 'called', value: '999', onlyIfNotSet: true },
            { variable: 'x', value: 'filled', onlyIfNotSet: 'true' },
            { variable: 'y', value: 'filled', onlyIfNotSet: true },
            { variable: 'z', value: 'overwritten', onlyIfNotSet: '' },
          ],
          2,
        ),
        reply(2, 404),
      ],
      { called: '100', y: null, z: 'old' },
    );
    expect(r.cd.vars).toMatchObject({ called: '100', x: 'filled', y: 'filled', z: 'overwritten' });
  });
});

describe('action.digitsManipulation', () => {
  const digits = (values: Record<string, unknown>): NodeSpec[] => [start(1), [1, 'action.digitsManipulation', { ...values, next: 2 }], reply(2, 404)];

  test('strips leading digits and adds a prefix, in place', async () => {
    const r = await runNodes(digits({ variable: 'called', stripDigits: 2, addPrefix: '+' }), { called: '003225551234' });
    expect(r.cd.vars.called).toBe('+3225551234');
  });

  test('strips a prefix only when present, adds a suffix, stores elsewhere', async () => {
    const r1 = await runNodes(digits({ variable: 'called', stripPrefix: '00', addPrefix: '+', addSuffix: '#', storeInto: 'e164' }), { called: '0032' });
    expect(r1.cd.vars).toMatchObject({ called: '0032', e164: '+32#' });
    const r2 = await runNodes(digits({ variable: 'called', stripPrefix: '00', addPrefix: '+', storeInto: 'e164' }), { called: '32' });
    expect(r2.cd.vars.e164).toBe('+32');
  });

  test('reads a variable only the call descriptor brings', async () => {
    const r = await runNodes(digits({ variable: 'extension', addPrefix: '32', storeInto: 'full' }), { extension: '1234' });
    expect(r.cd.vars.full).toBe('321234');
  });

  test('a missing variable writes nothing', async () => {
    const r = await runNodes(digits({ variable: 'nothing', addPrefix: '+', storeInto: 'out' }), {});
    expect('out' in r.cd.vars).toBe(false);
  });
});

describe('output.reply', () => {
  test('code, default reason from RFC 3261', async () => {
    expect((await runNodes([start(1), reply(1, 486)])).outcome).toEqual({ kind: 'reply', status: 486, reason: 'Busy Here' });
    expect((await runNodes([start(1), reply(1, 499)])).outcome).toEqual({ kind: 'reply', status: 499, reason: 'Unknown' });
  });

  test('code as a string, [name] in the reason, headers with references and templates', async () => {
    const r = await runNodes(
      [
        start(1),
        [
          1,
          'output.reply',
          {
            code: '480',
            reason: '[called] is away',
            headers: { 'Retry-After': '60', 'X-Called': 'called', 'X-Who': 'by [calling]' },
          },
        ],
      ],
      { called: '100', calling: '200' },
    );
    expect(r.outcome).toEqual({
      kind: 'reply',
      status: 480,
      reason: '100 is away',
      headers: { 'Retry-After': '60', 'X-Called': '100', 'X-Who': 'by 200' },
    });
  });
});

describe('output.relay', () => {
  const relay = (destination: string, before: NodeSpec[] = []): NodeSpec[] => [start(before.length ? 5 : 1), ...before, [1, 'output.relay', { destination }]];

  test('a template destination', async () => {
    const r = await runNodes(relay('sip:[called]@gw.example.com:5060'), { called: '0032' });
    expect(r.outcome).toEqual({ kind: 'relay', status: null, targets: [{ uri: 'sip:0032@gw.example.com:5060' }] });
  });

  test('a destination without scheme gets sip:', async () => {
    const r = await runNodes(relay('gw.example.com'));
    expect(r.outcome).toEqual({ kind: 'relay', status: null, targets: [{ uri: 'sip:gw.example.com' }] });
  });

  test('a destination read from a variable', async () => {
    const r = await runNodes(relay('target', [setVars(5, [{ variable: 'target', value: 'tel:+3225551234' }], 1)]));
    expect(r.outcome).toEqual({ kind: 'relay', status: null, targets: [{ uri: 'tel:+3225551234' }] });
  });

  test('an empty destination is an error 500 naming the node', async () => {
    const r = await runNodes(relay('target', [setVars(5, [{ variable: 'target', value: '' }], 1)]));
    expect(r.outcome).toEqual({ kind: 'error', status: 500, reason: 'Server Internal Error (empty relay destination)', where: 'logic 1 "test" › node 1 "n1"' });
  });
});

describe('output.redirect', () => {
  test('302 by default, contacts from literals and from a variable holding a list', async () => {
    const r = await runNodes(
      [
        start(5),
        setVars(5, [{ variable: 'more', value: '<sip:b@y.example>, <sip:c@z.example>' }], 1),
        [1, 'output.redirect', { contacts: ['sip:a@x.example', 'more', 'sip:[called]@w.example'] }],
      ],
      { called: '100' },
    );
    expect(r.outcome).toEqual({
      kind: 'redirect',
      status: 302,
      reason: 'Moved Temporarily',
      contacts: ['sip:a@x.example', '<sip:b@y.example>', '<sip:c@z.example>', 'sip:100@w.example'],
    });
  });

  test('a given code and reason, contacts as one string', async () => {
    const r = await runNodes([start(1), [1, 'output.redirect', { code: 301, reason: 'Gone Elsewhere', contacts: 'sip:new@example.com' }]]);
    expect(r.outcome).toEqual({ kind: 'redirect', status: 301, reason: 'Gone Elsewhere', contacts: ['sip:new@example.com'] });
  });
});

describe('action.log', () => {
  test('writes the message with placeholders through ctx.log and goes on', async () => {
    const lines: Array<[string, string, Record<string, unknown> | undefined]> = [];
    const log: LogPort = {
      log: (level, message, fields) => {
        lines.push([level, message, fields]);
      },
    };
    const ctx = { ...testContext(), log };
    const r = await runNodes(
      [
        start(1),
        [1, 'action.log', { level: 'warn', message: 'REGISTER from [fromUsername]', next: 2 }],
        [2, 'action.log', { message: 'plain', next: 3 }],
        reply(3, 404),
      ],
      { fromUsername: 'francesco', callId: 'abc' },
      ctx,
    );
    expect(r.outcome.status).toBe(404);
    expect(lines).toEqual([
      ['warn', 'REGISTER from francesco', { callId: 'abc', node: 'logic 1 "test" › node 1 "n1"' }],
      ['info', 'plain', { callId: 'abc', node: 'logic 1 "test" › node 2 "n2"' }],
    ]);
  });

  test('without a log port it is a no-op', async () => {
    const r = await runNodes([start(1), [1, 'action.log', { message: 'x', next: 2 }], reply(2, 404)]);
    expect(r.outcome.status).toBe(404);
  });
});

describe('flow.callLogic and exit.return', () => {
  const service = () =>
    compile({
      1: logicOf(
        [
          start(1),
          [1, 'flow.callLogic', { logic: 'screening', next: 2 }],
          [2, 'analysis.sequentialConditions', { conditions: [{ variable: 'verdict', operator: 'is', value: 'ok', ifTrue: 3 }], fallback: 4 }],
          reply(3, 200, 'passed'),
          reply(4, 403, 'screened'),
        ],
        'main',
      ),
      2: logicOf(
        [
          start(1),
          [1, 'analysis.sequentialConditions', { conditions: [{ variable: 'calling', operator: 'startsWith', value: '900', ifTrue: 3 }], fallback: 2 }],
          setVars(2, [{ variable: 'verdict', value: 'ok' }], 9),
          reply(3, 603, 'premium numbers are refused'),
          [9, 'exit.return', {}],
        ],
        'screening',
      ),
      3: logicOf([start(1), [1, 'flow.callLogic', { logic: 2 }]], 'wrapper'),
      4: logicOf([start(1), [1, 'flow.callLogic', { logic: 'wrapper', next: 2 }], reply(2, 202, 'after wrapper')], 'outer'),
    });

  test("the sub-logic exit returns to the caller's next exit, with the variables it wrote", async () => {
    const r = await runLogic(service(), 'main', cdOf({ calling: '100' }), testContext(), { trace: true });
    expect(r.outcome).toEqual({ kind: 'reply', status: 200, reason: 'passed' });
    expect(r.trace!.map((t) => `${t.logic}/${t.nodeId}:${t.exit}`)).toEqual([
      '1/0:next',
      '1/1:call screening',
      '2/0:next',
      '2/1:fallback',
      '2/2:next',
      '2/9:exit',
      '1/2:conditions/0/ifTrue',
      '1/3:reply',
    ]);
  });

  test('an outcome inside the sub-logic ends the whole run', async () => {
    const r = await runLogic(service(), 'main', cdOf({ calling: '900123' }), testContext());
    expect(r.outcome).toEqual({ kind: 'reply', status: 603, reason: 'premium numbers are refused' });
  });

  test('exit at top level is the outcome exit', async () => {
    const r = await runLogic(service(), 'screening', cdOf({ calling: '100' }), testContext());
    expect(r.outcome).toEqual({ kind: 'exit', status: null });
  });

  test('a logic called by id; a call whose next is unset ends that logic and returns to its own caller', async () => {
    const r = await runLogic(service(), 'outer', cdOf({ calling: '100' }), testContext(), { trace: true });
    expect(r.outcome).toEqual({ kind: 'reply', status: 202, reason: 'after wrapper' });
    expect(r.trace!.map((t) => `${t.logic}/${t.nodeId}`)).toEqual(['4/0', '4/1', '3/0', '3/1', '2/0', '2/1', '2/2', '2/9', '4/2']);
    // at top level, the same wrapper ends with exit
    expect((await runLogic(service(), 'wrapper', cdOf({ calling: '100' }), testContext())).outcome).toEqual({ kind: 'exit', status: null });
  });

  test('an unset exit inside a sub-logic returns like an exit node', async () => {
    const s = compile({
      1: logicOf([start(1), [1, 'flow.callLogic', { logic: 'sub', next: 2 }], reply(2, 200, 'back')], 'main'),
      2: logicOf([start(1), setVars(1, [{ variable: 'x', value: 1 }])], 'sub'),
    });
    expect((await runLogic(s, 'main', cdOf({}), testContext())).outcome).toEqual({ kind: 'reply', status: 200, reason: 'back' });
  });
});
