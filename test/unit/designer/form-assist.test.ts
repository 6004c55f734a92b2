import { assistValues, foreignKeysOf, proposeJoins } from '../../../designer/src/formAssist';
import { queryDatabaseNode } from '../../../nodes/query-database';
import { conditionNode } from '../../../nodes/condition';

const schema = queryDatabaseNode.valuesSchema as Record<string, unknown>;
const keys = [{ from: 'registration.customer_numbers.customer_id', to: 'registration.customers.id' }];
const both = ['registration.customer_numbers', 'registration.customers'];

test('listing two related tables proposes their join (short names, the referencing table on the left)', () => {
  const after = assistValues(schema, { tables: ['registration.customer_numbers'] }, { tables: both }, keys);
  expect(after.joins).toEqual([{ leftField: 'customer_numbers.customer_id', operator: 'is', rightField: 'customers.id' }]);
  // listed the other way round, the join is the same
  const reversed = assistValues(schema, { tables: ['registration.customers'] }, { tables: [...both].reverse() }, keys);
  expect(reversed.joins).toEqual(after.joins);
});

test('no proposal when joins exist, when the tables did not change, or when they are not related', () => {
  const joins = [{ leftField: 'a.x', operator: 'is', rightField: 'b.y' }];
  expect(assistValues(schema, { tables: ['registration.customers'] }, { tables: both, joins }, keys).joins).toBe(joins);
  // a document as loaded (tables unchanged, no joins) is left exactly as it is
  const loaded = { tables: both, fetch: 'first' };
  expect(assistValues(schema, { ...loaded }, loaded, keys)).toBe(loaded);
  expect(
    assistValues(schema, { tables: ['registration.customers'] }, { tables: ['registration.customers', 'registration.other'] }, keys).joins,
  ).toBeUndefined();
  expect(proposeJoins(['registration.customers'], keys)).toEqual([]);
});

test('two listed tables with the same short name keep their full names in the join', () => {
  const k = [{ from: 'a.t.ref', to: 'b.t.id' }];
  expect(proposeJoins(['a.t', 'b.t'], k)).toEqual([{ leftField: 'a.t.ref', operator: 'is', rightField: 'b.t.id' }]);
});

test('a condition added to a list gets the operator "is"; existing ones are untouched', () => {
  const s = conditionNode.valuesSchema as Record<string, unknown>;
  const before = { logic: 'any', conditions: [{ variable: 'a', operator: 'exists' }] };
  const after = assistValues(s, before, { logic: 'any', conditions: [{ variable: 'a', operator: 'exists' }, {}] }, []);
  expect(after.conditions).toEqual([{ variable: 'a', operator: 'exists' }, { operator: 'is' }]);
  // the form may add the item as undefined
  expect(assistValues(s, before, { logic: 'any', conditions: [...before.conditions, undefined] }, []).conditions[1]).toEqual({ operator: 'is' });
  // an item whose operator was chosen keeps it
  const chosen = assistValues(s, before, { logic: 'any', conditions: [...before.conditions, { operator: 'matches' }] }, []);
  expect(chosen.conditions[1]).toEqual({ operator: 'matches' });
});

test('foreign keys are read from the schema answer', () => {
  expect(
    foreignKeysOf([
      { name: 'registration.customer_numbers', columns: [{ name: 'id' }, { name: 'customer_id', references: 'registration.customers.id' }] },
      { name: 'registration.customers', columns: [{ name: 'id' }] },
    ]),
  ).toEqual(keys);
});
