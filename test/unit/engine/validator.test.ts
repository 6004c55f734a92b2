import { readFileSync } from 'fs';
import path from 'path';
import { formatProblem, loadSlid, loadSlidText } from '../../../engine/load';
import { OPERATORS } from '../../../engine/operators';
import { runLogic } from '../../../engine/run';
import { testContext } from '../../support/context';
import { FIXTURES, cdOf, compile, docOf, loadFixture, problemsOf, registry, reply, start } from './helpers';

const errorsOf = (name: string) => {
  const r = loadFixture(`invalid/${name}`);
  expect(r.service).toBeUndefined();
  return problemsOf(r);
};

const OPERATOR_LIST = OPERATORS.map((o) => JSON.stringify(o)).join(', ');

describe('formatProblem', () => {
  test('locates file, logic, node and pointer', () => {
    expect(
      formatProblem({
        severity: 'error',
        file: 'f.slid',
        logicId: '24',
        logicName: 'registration',
        nodeId: '3',
        nodeName: 'check',
        pointer: 'values/next',
        message: 'm',
      }),
    ).toBe('f.slid › logic 24 "registration" › node 3 "check" › values/next: m');
    expect(formatProblem({ severity: 'error', file: 'f.slid', logicId: '24', message: 'm' })).toBe('f.slid › logic 24: m');
    expect(formatProblem({ severity: 'warning', file: 'f.slid', message: 'm' })).toBe('f.slid: m');
  });
});

describe('validator: one fixture per rule, exact located messages', () => {
  test('malformed JSON names line and column', () => {
    const text = readFileSync(path.join(FIXTURES, 'invalid/malformed-json.slid'), 'utf8');
    const r = loadSlidText(text, 'malformed-json.slid', registry);
    expect(r.service).toBeUndefined();
    expect(r.problems).toHaveLength(1);
    // the missing comma sits before `"values"` on line 5
    const col = text.split('\n')[4].indexOf('"values"') + 1;
    expect(problemsOf(r)[0]).toMatch(new RegExp(`^malformed-json\\.slid: invalid JSON at line 5, column ${col}: `));
  });

  test('truncated JSON points at its end', () => {
    const r = loadSlidText('{ "1": {', 'cut.slid', registry);
    expect(problemsOf(r)).toEqual([expect.stringMatching(/^cut\.slid: invalid JSON at line 1, column 9: /)]);
  });

  test('a document that is not an object', () => {
    expect(errorsOf('not-an-object.slid')).toEqual(['not-an-object.slid: must be a JSON object of service logics keyed by id']);
    expect(problemsOf(loadSlid(null, 'null.slid', registry))).toEqual(['null.slid: must be a JSON object of service logics keyed by id']);
    expect(problemsOf(loadSlid('text', 's.slid', registry))).toEqual(['s.slid: must be a JSON object of service logics keyed by id']);
  });

  test('an empty document has no logic', () => {
    expect(problemsOf(loadSlid({}, 'empty.slid', registry))).toEqual(['empty.slid: must NOT have fewer than 1 properties']);
  });

  test('a logic that is not an object', () => {
    expect(problemsOf(loadSlid({ 5: 'x' }, 'x.slid', registry))).toEqual(['x.slid › logic 5: must be object']);
  });

  test('logic without name', () => {
    expect(errorsOf('logic-missing-name.slid')).toEqual(['logic-missing-name.slid › logic 7 › name: is required']);
  });

  test('logic without nodes', () => {
    expect(errorsOf('logic-missing-nodes.slid')).toEqual(['logic-missing-nodes.slid › logic 7 "empty" › nodes: is required']);
  });

  test('node without type', () => {
    expect(errorsOf('node-missing-type.slid')).toEqual(['node-missing-type.slid › logic 7 "typeless" › node 1 "what am I" › type: is required']);
  });

  test('node without values', () => {
    expect(errorsOf('node-missing-values.slid')).toEqual(['node-missing-values.slid › logic 7 "valueless" › node 1 "reject" › values: is required']);
  });

  test('unknown node type names the type', () => {
    expect(errorsOf('unknown-node-type.slid')).toEqual([
      'unknown-node-type.slid › logic 7 "future" › node 1 "teleport" › type: unknown node type "output.teleport"',
    ]);
  });

  test('unknown operator lists the allowed ones', () => {
    expect(errorsOf('bad-operator.slid')).toEqual([
      `bad-operator.slid › logic 24 "registration" › node 3 "check authUsername" › values/conditions/1/operator: must be one of ${OPERATOR_LIST}`,
    ]);
    expect(OPERATOR_LIST.startsWith('"is", "isNot", "exists", "doesNotExist"')).toBe(true);
  });

  test('values of the wrong type', () => {
    expect(errorsOf('wrong-value-type.slid')).toEqual(['wrong-value-type.slid › logic 7 "types" › node 1 "strip" › values/stripDigits: must be integer']);
  });

  test('no live start node (an archived one does not count)', () => {
    expect(errorsOf('no-start.slid')).toEqual(['no-start.slid › logic 7 "headless": has no live enter.start node']);
  });

  test('two start nodes', () => {
    expect(errorsOf('two-starts.slid')).toEqual([
      'two-starts.slid › logic 7 "two heads" › node 1 "Start again" › type: is a second live enter.start node (a logic has exactly one)',
    ]);
  });

  test('exit to a missing node', () => {
    expect(errorsOf('exit-missing-node.slid')).toEqual([
      'exit-missing-node.slid › logic 7 "dangling" › node 1 "route" › values/conditions/0/ifTrue: points to missing node 9',
    ]);
  });

  test('exit to an archived node', () => {
    expect(errorsOf('exit-archived-node.slid')).toEqual([
      'exit-archived-node.slid › logic 7 "to the attic" › node 0 "Start" › values/next: points to archived node 1',
    ]);
  });

  test('required exits left unset ("" and null); an unset optional exit is fine', () => {
    const r = loadFixture('invalid/required-exit-unset.slid');
    expect(r.problems.filter((p) => p.severity === 'error').map(formatProblem)).toEqual([
      'required-exit-unset.slid › logic 7 "nowhere" › node 0 "Start" › values/next: must point to a node',
      'required-exit-unset.slid › logic 7 "nowhere" › node 1 "route" › values/conditions/0/ifTrue: must point to a node',
    ]);
    // `fallback` is optional: no problem about it
    expect(problemsOf(r).some((m) => m.includes('fallback'))).toBe(false);
  });

  test('node id not matching its key', () => {
    expect(errorsOf('id-key-mismatch.slid')).toEqual([
      'id-key-mismatch.slid › logic 7 "renamed" › node 5 "reject" › id: does not match its key "1"',
      // the start's exit names key 1, but the node's id is 5
      'id-key-mismatch.slid › logic 7 "renamed" › node 0 "Start" › values/next: points to missing node 1',
      'id-key-mismatch.slid › logic 7 "renamed" › node 5 "reject": is unreachable from the start node',
    ]);
  });

  test('duplicate ids (1 and "1" are the same id)', () => {
    expect(errorsOf('duplicate-ids.slid')).toEqual(['duplicate-ids.slid › logic 7 "twins" › node 1 "reject too" › id: is used by another node of this logic']);
  });

  test('bad regex in matches', () => {
    let detail = '';
    try {
      // eslint-disable-next-line no-invalid-regexp -- deliberately invalid: the expected message is the engine's own
      new RegExp('^(00|\\+');
    } catch (e) {
      detail = (e as Error).message;
    }
    expect(detail).not.toBe('');
    expect(errorsOf('bad-regex.slid')).toEqual([
      `bad-regex.slid › logic 7 "regex" › node 1 "screen" › values/conditions/0/value: invalid regular expression: ${detail}`,
    ]);
  });

  test('a regex read from a variable is not checked at load', () => {
    const doc = docOf([
      start(1),
      [1, 'action.setVariables', { variables: [{ variable: 'pattern', value: '(' }], next: 2 }],
      [2, 'analysis.sequentialConditions', { conditions: [{ variable: 'calling', operator: 'matches', value: 'pattern', ifTrue: 3 }], fallback: 3 }],
      reply(3, 404),
    ]);
    expect(loadSlid(doc, 't.slid', registry).problems).toEqual([]);
  });

  test('query field whose table is not among the tables', () => {
    expect(errorsOf('query-unknown-table.slid')).toEqual([
      'query-unknown-table.slid › logic 7 "query" › node 1 "lookup number" › values/fields/0/field: table numbers is not among the query\'s tables (customers)',
    ]);
  });

  test('sub-logic call to a missing logic', () => {
    expect(errorsOf('call-missing-logic.slid')).toEqual([
      'call-missing-logic.slid › logic 7 "caller" › node 1 "screening" › values/logic: names no logic of this file: screening',
    ]);
  });

  test('several problems in one file are all reported, across logics', () => {
    expect(errorsOf('many-problems.slid')).toEqual([
      'many-problems.slid › logic 9 "third" › node 1 › values: is required',
      'many-problems.slid › logic 7 "first" › node 1 "check" › values/logic: must be one of "any", "all", "and", "or"',
      `many-problems.slid › logic 7 "first" › node 1 "check" › values/conditions/0/operator: must be one of ${OPERATOR_LIST}`,
      'many-problems.slid › logic 7 "first" › node 1 "check" › values/ifTrue: points to missing node 8',
      'many-problems.slid › logic 7 "first" › node 2 "teleport" › type: unknown node type "output.teleport"',
      'many-problems.slid › logic 8 "second": has no live enter.start node',
      'many-problems.slid › logic 8 "second" › node 1 "reject" › values/code: must be >= 200',
    ]);
  });
});

describe('validator: what loads', () => {
  test('an unreachable node is a warning, not an error, and the logic still compiles and runs', async () => {
    const r = loadFixture('valid/unreachable-node.slid');
    expect(r.problems.map((p) => [p.severity, formatProblem(p)])).toEqual([
      ['warning', 'unreachable-node.slid › logic 7 "island" › node 2 "forgotten": is unreachable from the start node'],
    ]);
    expect(r.service).toBeDefined();
    const out = await runLogic(r.service!, '7', cdOf({}), testContext());
    expect(out.outcome).toEqual({ kind: 'reply', status: 404, reason: 'Not Found' });
  });

  test('archived nodes are not validated as live and never executed', async () => {
    const r = loadFixture('valid/archived-nodes.slid');
    expect(r.problems).toEqual([]);
    const logic = r.service!.find('attic')!;
    expect([...logic.nodes.keys()].sort()).toEqual(['0', '2']);
    const out = await runLogic(r.service!, 'attic', cdOf({}), testContext(), { trace: true });
    expect(out.outcome).toMatchObject({ kind: 'reply', status: 486 });
    expect(out.trace!.map((t) => t.nodeId)).toEqual(['0', '2']);
  });

  test('nodes given as an array, with string and number ids', async () => {
    const r = loadFixture('valid/nodes-array.slid');
    expect(r.problems).toEqual([]);
    const service = r.service!;
    expect(service.find('array form')).toBe(service.find('route'));
    const hit = await runLogic(service, 'route', cdOf({ called: '100' }), testContext(), { trace: true });
    expect(hit.outcome).toEqual({ kind: 'reply', status: 200, reason: 'Found 100' });
    expect(hit.trace!.map((t) => t.nodeId)).toEqual(['start', 'check', '7']);
    const miss = await runLogic(service, 'route', cdOf({ called: '101' }), testContext());
    expect(miss.outcome).toEqual({ kind: 'reply', status: 404, reason: 'Not Found' });
  });

  test('an exit may name a numeric id as a string and vice versa', () => {
    const doc = docOf([start('1'), [1, 'action.log', { message: 'x', next: 2 }], ['2', 'output.reply', { code: 404 }]]);
    expect(compile(doc).find('1')!.start.id).toBe('0');
  });
});
