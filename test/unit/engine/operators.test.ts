import { OPERATORS, type Operator } from '../../../engine/operators';
import { createMemoryDirectory } from '../../../services/directory/memory';
import { testContext } from '../../support/context';
import { reply, runNodes, setVars, start, type NodeSpec } from './helpers';

interface Cond {
  variable: string;
  operator: Operator | string;
  value?: unknown;
}

/**
 * Runs start → [before…] → analysis.condition(logic, conds) → 200 | 404 and tells which exit was taken.
 * `before` nodes are chained with ids 10, 11, …
 */
async function holds(
  conds: Cond | Cond[],
  input: Record<string, unknown> = {},
  opts: { logic?: string; before?: NodeSpec[]; ctx?: ReturnType<typeof testContext> } = {},
): Promise<boolean> {
  const before = opts.before ?? [];
  const chain: NodeSpec[] = before.map(([, type, values], i) => [
    10 + i,
    type,
    {
      ...values,
      ...(type === 'query.queryDatabaseGeneric'
        ? { ifRecordFound: i + 1 < before.length ? 11 + i : 1, ifnoRecordFound: 404 }
        : { next: i + 1 < before.length ? 11 + i : 1 }),
    },
  ]);
  const r = await runNodes(
    [
      start(chain.length ? 10 : 1),
      ...chain,
      [1, 'analysis.condition', { logic: opts.logic ?? 'all', conditions: Array.isArray(conds) ? conds : [conds], ifTrue: 200, ifFalse: 404 }],
      reply(200, 200),
      reply(404, 404),
    ],
    input,
    opts.ctx,
  );
  if (r.outcome.kind !== 'reply') throw new Error(`unexpected outcome ${JSON.stringify(r.outcome)}`);
  return r.outcome.status === 200;
}

const c = (variable: string, operator: Operator, value?: unknown): Cond => (value === undefined ? { variable, operator } : { variable, operator, value });

describe('is / isNot', () => {
  test.each([
    ['number 1 vs "1"', 1, '1', true],
    ['"1" vs number 1', '1', 1, true],
    ['"1.50" vs 1.5 (a decimal is a number)', '1.50', 1.5, true],
    ['"1e3" vs 1000 (exponent forms are text)', '1e3', 1000, false],
    ['"0x10" vs 16', '0x10', 16, false],
    ['"1.5" vs 1.5', '1.5', 1.5, true],
    ['"-3" vs -3', '-3', -3, true],
    ['"000112233" vs "112233" (phone numbers are not numbers)', '000112233', '112233', false],
    ['"000112233" vs number 112233', '000112233', 112233, false],
    ['"0032" vs "0032"', '0032', '0032', true],
    ['"abc" vs "abc"', 'abc', 'abc', true],
    ['"abc" vs "ABC" (case-sensitive)', 'abc', 'ABC', false],
    ['true vs "True"', true, 'True', true],
    ['false vs "False"', false, 'False', true],
    ['true vs "False"', true, 'False', false],
    ['"true" vs "True"', 'true', 'True', true],
    ['"False" vs false', 'False', false, true],
    ['"yes" vs "True"', 'yes', 'True', false],
    ['"" vs ""', '', '', true],
  ])('%s', async (_name, actual, value, expected) => {
    expect(await holds(c('x', 'is', value), { x: actual })).toBe(expected);
    expect(await holds(c('x', 'isNot', value), { x: actual })).toBe(!expected);
  });

  test('authStatus 0 (filled by default) is not "1"', async () => {
    expect(await holds(c('authStatus', 'is', '1'))).toBe(false);
    expect(await holds(c('authStatus', 'is', 0))).toBe(true);
  });
});

describe('exists / doesNotExist and missing variables', () => {
  test('a missing variable and a null one do not exist; exists ignores its value', async () => {
    expect(await holds(c('nobody', 'doesNotExist'))).toBe(true);
    expect(await holds(c('nobody', 'exists', 'True'))).toBe(false);
    expect(await holds(c('x', 'doesNotExist', 'whatever'), { x: null })).toBe(true);
    expect(await holds(c('x', 'exists'), { x: null })).toBe(false);
    expect(await holds(c('x', 'exists', 'False'), { x: '' })).toBe(true);
    expect(await holds(c('x', 'exists', 'null'), { x: 0 })).toBe(true);
    expect(await holds(c('x', 'doesNotExist'), { x: false })).toBe(false);
  });

  test('predefined variables the front end left empty do not exist (authUsername)', async () => {
    expect(await holds(c('authUsername', 'doesNotExist'))).toBe(true);
    expect(await holds(c('authUsername', 'exists'))).toBe(false);
  });

  const valueFor: Record<Operator, unknown> = {
    is: 'x',
    isNot: 'x',
    exists: 'True',
    doesNotExist: 'True',
    contains: 'x',
    doesNotContain: 'x',
    startsWith: 'x',
    endsWith: 'x',
    matches: '.*',
    greaterThan: 0,
    greaterOrEqual: 0,
    lessThan: 0,
    lessOrEqual: 0,
    in: 'x,y',
  };
  test.each(OPERATORS.map((o) => [o]))('on a missing variable, %s holds only if it is doesNotExist', async (op) => {
    expect(await holds(c('nobody', op, valueFor[op]))).toBe(op === 'doesNotExist');
    expect(await holds(c('x', op, valueFor[op]), { x: null })).toBe(op === 'doesNotExist');
  });
});

describe('text operators', () => {
  test('contains / doesNotContain', async () => {
    expect(await holds(c('x', 'contains', 'lo w'), { x: 'hello world' })).toBe(true);
    expect(await holds(c('x', 'contains', 'xyz'), { x: 'hello world' })).toBe(false);
    expect(await holds(c('x', 'doesNotContain', 'xyz'), { x: 'hello world' })).toBe(true);
    expect(await holds(c('x', 'doesNotContain', 'hello'), { x: 'hello world' })).toBe(false);
    expect(await holds(c('x', 'contains', 234), { x: 12345 })).toBe(true);
  });

  test('startsWith / endsWith', async () => {
    expect(await holds(c('called', 'startsWith', '0032'), { called: '003225551234' })).toBe(true);
    expect(await holds(c('called', 'startsWith', '0033'), { called: '003225551234' })).toBe(false);
    expect(await holds(c('called', 'endsWith', '1234'), { called: '003225551234' })).toBe(true);
    expect(await holds(c('called', 'endsWith', '0032'), { called: '003225551234' })).toBe(false);
  });

  test('matches a literal regex (with and without a character class)', async () => {
    expect(await holds(c('called', 'matches', '^00\\d+$'), { called: '0032' })).toBe(true);
    expect(await holds(c('called', 'matches', '^00\\d+$'), { called: '+32' })).toBe(false);
    expect(await holds(c('called', 'matches', '^00[0-9]+$'), { called: '0032' })).toBe(true);
    expect(await holds(c('called', 'matches', '^00[0-9]+$'), { called: '00a' })).toBe(false);
    expect(await holds(c('x', 'matches', '^[a-z]+$'), { x: 'abc' })).toBe(true);
    expect(await holds(c('x', 'matches', '^[a-z]+$'), { x: 'ABC' })).toBe(false);
  });

  test('matches a regex read from a variable', async () => {
    const before: NodeSpec[] = [setVars(0, [{ variable: 'pattern', value: '^(00|\\+)32' }])];
    expect(await holds(c('calling', 'matches', 'pattern'), { calling: '+3225551234' }, { before })).toBe(true);
    expect(await holds(c('calling', 'matches', 'pattern'), { calling: '0033' }, { before })).toBe(false);
    // a pattern variable holding an invalid regex matches nothing (and does not throw)
    const bad: NodeSpec[] = [setVars(0, [{ variable: 'pattern', value: '(' }])];
    expect(await holds(c('calling', 'matches', 'pattern'), { calling: '(' }, { before: bad })).toBe(false);
  });
});

describe('ordering operators', () => {
  test('numbers compare as numbers, also when given as numeric strings', async () => {
    expect(await holds(c('x', 'greaterThan', '9'), { x: '10' })).toBe(true);
    expect(await holds(c('x', 'greaterThan', 9), { x: 10 })).toBe(true);
    expect(await holds(c('x', 'lessThan', '9'), { x: '10' })).toBe(false);
    expect(await holds(c('x', 'greaterOrEqual', 10), { x: '10' })).toBe(true);
    expect(await holds(c('x', 'lessOrEqual', '10'), { x: 10 })).toBe(true);
    expect(await holds(c('x', 'lessThan', 0), { x: -1.5 })).toBe(true);
    expect(await holds(c('x', 'greaterThan', 10), { x: 10 })).toBe(false);
    // non-canonical numeric spellings are text, as for `is`
    expect(await holds(c('x', 'greaterOrEqual', 16), { x: '0x10' })).toBe(false);
  });

  test('strings compare as text', async () => {
    expect(await holds(c('x', 'greaterThan', 'apple'), { x: 'banana' })).toBe(true);
    expect(await holds(c('x', 'lessThan', 'apple'), { x: 'banana' })).toBe(false);
    expect(await holds(c('x', 'greaterOrEqual', 'b'), { x: 'b' })).toBe(true);
  });

  test('ordering agrees with equality: a phone number is not ≥ and ≤ a number it is not equal to', async () => {
    const vars = { x: '000112233' };
    const ge = await holds(c('x', 'greaterOrEqual', '112233'), vars);
    const le = await holds(c('x', 'lessOrEqual', '112233'), vars);
    expect(await holds(c('x', 'is', '112233'), vars)).toBe(false);
    expect(ge && le).toBe(false);
    // as text, "000112233" sorts before "112233"
    expect(await holds(c('x', 'lessThan', '112233'), vars)).toBe(true);
  });
});

describe('in', () => {
  test('a comma list (spaces trimmed)', async () => {
    expect(await holds(c('x', 'in', 'INVITE, REGISTER ,OPTIONS'), { x: 'REGISTER' })).toBe(true);
    expect(await holds(c('x', 'in', 'INVITE,OPTIONS'), { x: 'REGISTER' })).toBe(false);
    expect(await holds(c('x', 'in', '1,2,3'), { x: 2 })).toBe(true);
  });

  test('a JSON array literal, as text or as an array', async () => {
    expect(await holds(c('x', 'in', '[1, 2, 3]'), { x: '2' })).toBe(true);
    expect(await holds(c('x', 'in', '["a", "b"]'), { x: 'b' })).toBe(true);
    expect(await holds(c('x', 'in', '["a", "b"]'), { x: 'c' })).toBe(false);
    expect(await holds(c('x', 'in', ['a', 'b']), { x: 'a' })).toBe(true);
    expect(await holds(c('x', 'in', ['a', 'b']), { x: 'ab' })).toBe(false);
  });

  test('a list-of-records variable (rows of a query)', async () => {
    const ctx = testContext({ directory: createMemoryDirectory({ 'routing.allowed': [{ number: '100' }, { number: '200' }] }) });
    const before: NodeSpec[] = [
      [
        0,
        'query.queryDatabaseGeneric',
        {
          tables: ['routing.allowed'],
          fields: [{ field: 'allowed.number', storeInto: 'firstAllowed' }],
          fetch: 'all',
          storeIntoRecordsList: 'allowed',
        },
      ],
    ];
    expect(await holds(c('called', 'in', 'allowed'), { called: '200' }, { before, ctx })).toBe(true);
    expect(await holds(c('called', 'in', 'allowed'), { called: '300' }, { before, ctx })).toBe(false);
    expect(await holds(c('allowed', 'contains', '100'), {}, { before, ctx })).toBe(true);
    expect(await holds(c('allowed', 'contains', '1'), {}, { before, ctx })).toBe(false);
  });
});

describe('values: variable or literal', () => {
  test('a value naming a variable written by a node of the logic is a reference', async () => {
    const before: NodeSpec[] = [setVars(0, [{ variable: 'greeting', value: 'hello' }])];
    expect(await holds(c('x', 'is', 'greeting'), { x: 'hello' }, { before })).toBe(true);
    expect(await holds(c('x', 'is', 'greeting'), { x: 'greeting' }, { before })).toBe(false);
  });

  test('a value naming a predefined variable is a reference', async () => {
    expect(await holds(c('called', 'is', 'calling'), { called: '100', calling: '100' })).toBe(true);
    expect(await holds(c('called', 'is', 'calling'), { called: 'calling', calling: '100' })).toBe(false);
  });

  test('a referenced variable that is missing reads as null', async () => {
    // `maybe` is known to the logic (a set-variables node writes it) but that write is skipped
    const before: NodeSpec[] = [
      setVars(0, [
        { variable: 'maybe', value: 'set', onlyIfNotSet: true },
        { variable: 'maybe', value: null },
      ]),
    ];
    expect(await holds(c('x', 'is', 'maybe'), { x: 'maybe' }, { before })).toBe(false);
    expect(await holds(c('x', 'isNot', 'maybe'), { x: 'y' }, { before })).toBe(true);
    expect(await holds(c('maybe', 'doesNotExist'), {}, { before })).toBe(true);
    expect(await holds(c('x', 'is', 'authUsername'), { x: 'authUsername' })).toBe(false);
    expect(await holds(c('x', 'isNot', 'authUsername'), { x: 'y' })).toBe(true);
  });

  test('an unknown name is a literal, even if the call descriptor has such a variable', async () => {
    expect(await holds(c('x', 'is', 'stranger'), { x: 'stranger', stranger: 'zzz' })).toBe(true);
    expect(await holds(c('x', 'is', 'stranger'), { x: 'zzz', stranger: 'zzz' })).toBe(false);
  });

  test('[name] placeholders are substituted in values; unknown ones are kept', async () => {
    expect(await holds(c('x', 'is', 'sip:[called]@example.com'), { x: 'sip:100@example.com', called: '100' })).toBe(true);
    expect(await holds(c('x', 'is', '[calling]-[called]'), { x: '7-8', calling: '7', called: '8' })).toBe(true);
    expect(await holds(c('x', 'is', '[calling]-[nobody]'), { x: '7-[nobody]', calling: '7' })).toBe(true);
    expect(await holds(c('x', 'is', '[callId]x'), { x: 'x' })).toBe(true); // missing → empty
  });
});

describe('combined conditions: logic any / all / and / or', () => {
  const one = c('called', 'is', '100');
  const other = c('called', 'is', '200');
  test.each([
    ['any', true],
    ['or', true],
    ['all', false],
    ['and', false],
  ])('one true and one false with logic %s → %s', async (logic, expected) => {
    expect(await holds([one, other], { called: '100' }, { logic })).toBe(expected);
    expect(await holds([other, one], { called: '100' }, { logic })).toBe(expected);
  });

  test.each([['any'], ['or'], ['all'], ['and']])('all true with %s → true, all false → false', async (logic) => {
    expect(await holds([one, c('called', 'startsWith', '1')], { called: '100' }, { logic })).toBe(true);
    expect(await holds([other, c('called', 'startsWith', '3')], { called: '100' }, { logic })).toBe(false);
  });

  test('no conditions at all is false', async () => {
    expect(await holds([], {}, { logic: 'all' })).toBe(false);
    expect(await holds([], {}, { logic: 'any' })).toBe(false);
  });
});

describe('sequential conditions', () => {
  const seq = (fallback?: number): NodeSpec[] => [
    start(1),
    [
      1,
      'analysis.sequentialConditions',
      {
        conditions: [
          { variable: 'called', operator: 'startsWith', value: '00', ifTrue: 10 },
          { variable: 'called', operator: 'startsWith', value: '0', ifTrue: 11 },
          { variable: 'called', operator: 'exists', ifTrue: 12 },
        ],
        ...(fallback === undefined ? {} : { fallback }),
      },
    ],
    reply(10, 480, 'international'),
    reply(11, 480, 'national'),
    reply(12, 480, 'local'),
    reply(13, 404),
  ];

  test('the first true condition wins', async () => {
    expect((await runNodes(seq(13), { called: '0032' }, undefined, { trace: true })).trace!.map((t) => t.exit)).toEqual([
      'next',
      'conditions/0/ifTrue',
      'reply',
    ]);
    expect((await runNodes(seq(13), { called: '0032' })).outcome).toMatchObject({ reason: 'international' });
    expect((await runNodes(seq(13), { called: '032' })).outcome).toMatchObject({ reason: 'national' });
    expect((await runNodes(seq(13), { called: '32' })).outcome).toMatchObject({ reason: 'local' });
  });

  test('none true → fallback; no fallback → the logic ends with exit', async () => {
    const r = await runNodes(seq(13), {}, undefined, { trace: true });
    expect(r.outcome).toEqual({ kind: 'reply', status: 404, reason: 'Not Found' });
    expect(r.trace![1].exit).toBe('fallback');
    const unset = await runNodes(
      seq().filter((n) => n[0] !== 13),
      {},
    );
    expect(unset.outcome).toEqual({ kind: 'exit', status: null });
  });
});
