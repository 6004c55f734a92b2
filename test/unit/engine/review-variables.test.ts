/**
 * Review warnings at the field (engine/review-variables.ts, called by the loader): variables no
 * node sets, literal marks on known variables, unconnected exits. The shipped flows stay clean
 * (test/integration/flows/shipped-files.test.ts).
 */
import { readFileSync } from 'fs';
import path from 'path';
import { loadSlid, loadSlidText } from '../../../engine/load';
import { nearMiss, reviewExits } from '../../../engine/review-variables';
import { docOf, problemsOf, registry, reply, start, type NodeSpec } from './helpers';

const warningsOf = (nodes: NodeSpec[]) => {
  const r = loadSlid(docOf(nodes), 't.slid', registry);
  expect(r.problems.filter((p) => p.severity === 'error')).toEqual([]);
  expect(r.service).toBeDefined();
  return problemsOf(r);
};

const condition = (variable: string, value: unknown, extra?: Record<string, unknown>): NodeSpec => [
  1,
  'analysis.condition',
  { logic: 'all', conditions: [{ variable, operator: 'is', value }], ifTrue: 2, ifFalse: 3 },
  extra,
];

describe('variables no node sets', () => {
  test('a known variable or a literal on the value side gives no warning', () => {
    for (const value of ['INVITE', 'True', 'False', '000112233', 42, null, 'sip:alice@example.com', 'called', 'hello world'])
      expect(warningsOf([start(1), condition('requestMethod', value), reply(2, 200), reply(3, 404)])).toEqual([]);
  });

  test('a misspelt tested variable: always unset, with the near miss', () => {
    expect(warningsOf([start(1), condition('caled', '000112233'), reply(2, 200), reply(3, 404)])).toEqual([
      't.slid › logic 1 "test" › node 1 "n1" › values/conditions/0/variable: caled is no predefined variable and no node of this file sets it (did you mean called?): the engine reads it as a variable that is always unset (null)',
    ]);
  });

  test('an unknown identifier as the tested variable warns even with no near miss', () => {
    expect(warningsOf([start(1), condition('customerTier', 'gold'), reply(2, 200), reply(3, 404)])[0]).toMatch(
      /values\/conditions\/0\/variable: customerTier is no predefined variable .*always unset/,
    );
  });

  test('a variable written by a node of the file is known', () => {
    const set: NodeSpec = [4, 'action.setVariables', { variables: [{ variable: 'customerTier', value: 'gold' }], next: 1 }];
    expect(warningsOf([start(4), set, condition('customerTier', 'gold'), reply(2, 200), reply(3, 404)])).toEqual([]);
  });

  test('a near miss on the value side reads as literal text', () => {
    expect(warningsOf([start(1), condition('called', 'caled'), reply(2, 200), reply(3, 404)])).toEqual([
      't.slid › logic 1 "test" › node 1 "n1" › values/conditions/0/value: caled is no predefined variable and no node of this file sets it (did you mean called?): the engine will read it as the literal text "caled"',
    ]);
  });

  test('the registrar aor: `aorr` is flagged, a written `aor` is not', () => {
    const query = (storeInto: string): NodeSpec => [1, 'action.setVariables', { variables: [{ variable: storeInto, value: 'alice' }], next: 2 }];
    const lookup = (aor: string): NodeSpec => [2, 'output.nit.registrar.lookupLocationService', { aor }];
    expect(warningsOf([start(1), query('aor'), lookup('aor')])).toEqual([]);
    expect(warningsOf([start(1), query('aor'), lookup('aorr')])).toEqual([
      't.slid › logic 1 "test" › node 2 "n2" › values/aor: aorr is no predefined variable and no node of this file sets it (did you mean aor?): the engine will read it as the literal text "aorr"',
    ]);
  });

  test('an explicit var mark flags a value naming no variable', () => {
    const marked = condition('called', 'gold', { 'x-sipflow': { vars: ['conditions/0/value'] } });
    expect(warningsOf([start(1), marked, reply(2, 200), reply(3, 404)])).toEqual([
      't.slid › logic 1 "test" › node 1 "n1" › values/conditions/0/value: gold is no predefined variable and no node of this file sets it: the engine will read it as the literal text "gold"',
    ]);
  });

  test('an explicit literal mark silences a near miss, and warns when the value names a known variable', () => {
    const silenced = condition('called', 'caled', { 'x-sipflow': { literals: ['conditions/0/value'] } });
    expect(warningsOf([start(1), silenced, reply(2, 200), reply(3, 404)])).toEqual([]);
    const misread = condition('requestMethod', 'called', { 'x-sipflow': { literals: ['conditions/0/value'] } });
    expect(warningsOf([start(1), misread, reply(2, 200), reply(3, 404)])).toEqual([
      't.slid › logic 1 "test" › node 1 "n1" › values/conditions/0/value: is marked literal but names the variable called: the engine reads the variable, not the text "called"',
    ]);
  });

  test("the note's incoming call with `caled` in place of `called` is flagged at the field", () => {
    const text = readFileSync(path.join(__dirname, '../../../flows/incoming-call.slid'), 'utf8');
    const r = loadSlidText(text.replace('"value": "called"', '"value": "caled"'), 'incoming-call.slid', registry);
    expect(r.problems.map((p) => [p.nodeId, p.pointer, p.severity])).toEqual([['1', 'values/conditions/0/value', 'warning']]);
  });

  test('a misspelt [name] placeholder stays literal text: flagged with the near miss', () => {
    const relay: NodeSpec = [1, 'output.relay', { destination: 'sip:[caled]@gw.example' }];
    expect(warningsOf([start(1), relay])).toEqual([
      't.slid › logic 1 "test" › node 1 "n1" › values/destination: placeholder [caled] names no variable (did you mean called?): it stays as the text "[caled]"',
    ]);
    expect(warningsOf([start(1), [1, 'output.relay', { destination: 'sip:[called]@gw.example' }]])).toEqual([]);
    // a regex character class is no near miss
    expect(warningsOf([start(1), condition('called', '^[0-9]+$'), reply(2, 200), reply(3, 404)])).toEqual([]);
  });

  test('nearMiss: one edit away, four characters or more', () => {
    const known = new Set(['called', 'calling', 'aor', 'requestMethod']);
    expect(nearMiss('caled', known)).toBe('called');
    expect(nearMiss('callled', known)).toBe('called');
    expect(nearMiss('requestmethod', known)).toBe('requestMethod');
    expect(nearMiss('aorr', known)).toBe('aor');
    expect(nearMiss('INVITE', known)).toBeUndefined();
    expect(nearMiss('cal', known)).toBeUndefined();
    expect(nearMiss('called', known)).toBeUndefined();
  });
});

describe('unconnected exits', () => {
  test('an unset exit warns, saying what the front end answers', () => {
    expect(
      warningsOf([start(1), [1, 'analysis.condition', { logic: 'all', conditions: [{ variable: 'called', operator: 'exists' }], ifTrue: 2 }], reply(2, 200)]),
    ).toEqual([
      't.slid › logic 1 "test" › node 1 "n1" › values/ifFalse: exit ifFalse is not connected: a call taking it ends this logic with no answer of its own, as an exit node does; the front end answers its default route (sip.defaultRoute: 404 Not Found unless configured); in a sub-logic the caller goes on at its call node’s next',
    ]);
  });

  test('x-optional exits (unset has a meaning of their own) do not warn', () => {
    expect(warningsOf([start(1), [1, 'output.relay', { destination: 'sip:[called]@gw.example' }]])).toEqual([]);
    expect(warningsOf([start(1), [1, 'output.nit.registrar.lookupLocationService', {}]])).toEqual([]);
  });

  test('reviewExits skips connected, required and optional exits', () => {
    expect(
      reviewExits([
        { pointer: 'a', target: 3, required: false },
        { pointer: 'b', target: null, required: true },
        { pointer: 'c', target: '', required: false, optional: true },
        { pointer: 'd', target: undefined, required: false },
      ]).map((w) => w.pointer),
    ).toEqual(['values/d']);
  });

  test('an unreachable node is not reviewed (it has its own warning)', () => {
    expect(
      warningsOf([start(2), reply(2, 200), [1, 'analysis.condition', { logic: 'all', conditions: [{ variable: 'caled', operator: 'is', value: 'x' }] }]]),
    ).toEqual(['t.slid › logic 1 "test" › node 1 "n1": is unreachable from the start node']);
  });
});
