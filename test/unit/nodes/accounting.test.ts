/**
 * Issue 15, accounting: action.accounting — names checked at validation (identifier-like, not a
 * standard CDR field, not a secret, not twice), literal control characters refused, placeholders,
 * a sender's CR/LF replaced at run time, values capped, the field count bounded, secrets masked.
 */
import { formatProblem, loadSlid } from '../../../engine/load';
import { FIELD_VALUE_MAX, MAX_FIELDS } from '../../../nodes/accounting';
import { docOf, registry, reply, runNodes, setVars, start, type NodeSpec } from '../engine/helpers';

const graph = (values: Record<string, unknown>, before: NodeSpec[] = []): NodeSpec[] => [
  start(before.length ? 10 : 1),
  ...before,
  [1, 'action.accounting', { next: 2, ...values }],
  reply(2, 404),
];

const problems = (values: Record<string, unknown>): string[] =>
  loadSlid(docOf(graph(values)), 'test.slid', registry)
    .problems.filter((p) => p.severity === 'error')
    .map(formatProblem);

describe('action.accounting: validation', () => {
  test('names: identifier-like, not standard fields, not secrets, not twice; literal values one line', () => {
    expect(
      problems({
        fields: [
          { name: 'plan', value: 'gold' },
          { name: 'route_id', value: 7 },
        ],
      }),
    ).toEqual([]);
    expect(problems({ fields: [{ name: 'bad name', value: '1' }] }).join('\n')).toMatch(/fields\/0\/name/);
    expect(problems({ fields: [{ name: '__proto__', value: '1' }] }).join('\n')).toMatch(/fields\/0\/name/);
    expect(problems({ fields: [{ name: '1x', value: '1' }] }).join('\n')).toMatch(/fields\/0\/name/);
    expect(problems({ fields: [{ name: 'x'.repeat(65), value: '1' }] }).join('\n')).toMatch(/fields\/0\/name/);
    for (const std of ['calling', 'called', 'status', 'duration', 'callId', 'call_id', 'variables', 'fields'])
      expect(problems({ fields: [{ name: std, value: '1' }] }).join('\n')).toMatch(/fields\/0\/name.*standard CDR field/);
    expect(problems({ fields: [{ name: 'sipPassword', value: '1' }] }).join('\n')).toMatch(/fields\/0\/name.*secret/);
    expect(
      problems({
        fields: [
          { name: 'a', value: '1' },
          { name: 'a', value: '2' },
        ],
      }).join('\n'),
    ).toMatch(/fields\/1\/name.*twice/);
    expect(problems({ fields: [{ name: 'a', value: 'x\r\ny' }] }).join('\n')).toMatch(/fields\/0\/value.*control character/);
    expect(problems({ fields: [] }).join('\n')).toMatch(/fields/);
    const many = Array.from({ length: MAX_FIELDS + 1 }, (_, i) => ({ name: `f${i}`, value: '1' }));
    expect(problems({ fields: many }).join('\n')).toMatch(/fields/);
  });
});

describe('action.accounting: run', () => {
  test('fields with placeholders, variables and literals land in cd.cdrFields, not in the variables', async () => {
    const r = await runNodes(
      graph({
        fields: [
          { name: 'plan', value: 'gold-[calling]' },
          { name: 'who', value: 'calling' },
          { name: 'n', value: 7 },
          { name: 'b', value: true },
        ],
      }),
      { calling: '+3225551234' },
    );
    expect(r.cd.cdrFields).toEqual({ plan: 'gold-+3225551234', who: '+3225551234', n: 7, b: true });
    expect(r.cd.vars.plan).toBeUndefined();
    expect(r.outcome).toMatchObject({ kind: 'reply', status: 404 });
  });

  test("a sender's CR LF and other control characters become spaces; values cut; quotes, commas, =cmd kept as data", async () => {
    const evil = '"Evil, Inc"\r\nX-Injected: 1\u0000=cmd';
    const r = await runNodes(
      graph({
        fields: [
          { name: 'from', value: '[calling]' },
          { name: 'long', value: '[called]' },
        ],
      }),
      {
        calling: evil,
        called: 'x'.repeat(5000),
      },
    );
    expect(r.cd.cdrFields?.from).toBe('"Evil, Inc"  X-Injected: 1 =cmd');
    expect(r.cd.cdrFields?.long).toBe('x'.repeat(FIELD_VALUE_MAX));
  });

  test('a later node replaces a field; at most MAX_FIELDS fields per call', async () => {
    const first = Array.from({ length: MAX_FIELDS }, (_, i) => ({ name: `f${i}`, value: 'a' }));
    const r = await runNodes([
      start(1),
      [1, 'action.accounting', { fields: first, next: 3 }],
      [
        3,
        'action.accounting',
        {
          fields: [
            { name: 'f0', value: 'b' },
            { name: 'extra', value: 'c' },
          ],
          next: 2,
        },
      ],
      reply(2, 404),
    ]);
    expect(Object.keys(r.cd.cdrFields ?? {})).toHaveLength(MAX_FIELDS);
    expect(r.cd.cdrFields?.f0).toBe('b');
    expect(r.cd.cdrFields?.extra).toBeUndefined();
  });

  test('a value reading a secret variable records [redacted]', async () => {
    const r = await runNodes(
      graph({ fields: [{ name: 'copy', value: 'pw=[customerPassword]' }] }, [setVars(10, [{ variable: 'customerPassword', value: 'hunter2' }], 1)]),
    );
    expect(r.cd.cdrFields?.copy).toBe('pw=[redacted]');
  });
});
