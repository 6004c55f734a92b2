/**
 * The designer's pure form and logic helpers: labels (designer/src/formSchema.ts), pointers of form
 * fields, column pickers limited to a node's tables, the var/abc initial state
 * (designer/src/VarWidget.tsx's rule), and adding, renaming and deleting logics (designer/src/logics.ts).
 */
import { formSchema, formUiSchema, humanise, itemLabel, nodePickers, pointerOfId, type Pickers } from '../../../designer/src/formSchema';
import { addLogic, callersOf, deleteLogic, newLogicId, renameLogic } from '../../../designer/src/logics';
import type { NodeTypeInfo } from '../../../designer/src/api';
import type { SlidDoc } from '../../../designer/src/model';
import { builtinRegistry } from '../../../nodes';

const registry = builtinRegistry();
const types = new Map<string, NodeTypeInfo>(
  registry
    .list()
    .map((t) => [t.type, { type: t.type, title: t.title, category: t.category, description: t.description, valuesSchema: t.valuesSchema } as NodeTypeInfo]),
);
const schemaOf = (type: string) => registry.get(type)!.valuesSchema;

describe('labels', () => {
  test('humanise: internal names read as words', () => {
    expect(humanise('storeIntoRecordsList')).toBe('Store into records list');
    expect(humanise('joinType')).toBe('Join type');
    expect(humanise('requestURI')).toBe('Request URI');
    expect(humanise('timeoutMs')).toBe('Timeout ms');
    expect(humanise('aor')).toBe('AOR');
  });

  test('itemLabel: array items numbered from 1, singular', () => {
    expect(itemLabel('Tables-1')).toBe('Table 1');
    expect(itemLabel('Conditions-7')).toBe('Condition 7');
    expect(itemLabel('Entries-2')).toBe('Entry 2');
    expect(itemLabel('Store into')).toBe('Store into');
  });

  test('the query form titles its fields; exits are not fields', () => {
    const form = formSchema(schemaOf('query.queryDatabaseGeneric'), {}, { variables: [], tables: [], columns: [], logics: [] });
    expect(form.properties.storeIntoRecordsList.title).toBe('Store into records list');
    expect(form.properties.joinType.title).toBe('Join type');
    expect(form.properties.tables.title).toBe('Tables');
    expect(form.properties.tables.items.title).toBeUndefined();
    expect(form.properties.ifRecordFound).toBeUndefined();
  });
});

describe('value fields', () => {
  const schema = schemaOf('analysis.condition');
  const values = { logic: 'all', conditions: [{ variable: 'called', operator: 'is', value: 'caled' }] };
  const form = formSchema(schema, values, { variables: [], tables: [], columns: [], logics: [] });

  test('value fields get the var/abc widget in the uiSchema', () => {
    const ui = formUiSchema(schema, form);
    expect(ui.conditions.items.value['ui:widget']).toBe('VarWidget');
    expect(ui.conditions.items.variable['ui:widget']).toBe('VarWidget');
    expect(ui.conditions.items.operator).toBeUndefined();
  });

  test('pointerOfId follows the schema (names holding _ are not split)', () => {
    expect(pointerOfId(form, 'root_conditions_0_value')).toBe('conditions/0/value');
    expect(pointerOfId(form, 'root_logic')).toBe('logic');
    expect(pointerOfId(form, 'root_nothing')).toBeUndefined();
    const odd = { type: 'object', properties: { my_field: { type: 'array', items: { type: 'object', properties: { a_b: { type: 'string' } } } } } };
    expect(pointerOfId(odd, 'root_my_field_3_a_b')).toBe('my_field/3/a_b');
  });
});

describe('column pickers', () => {
  const p: Pickers = {
    variables: [],
    tables: ['registration.customers', 'registration.customer_numbers'],
    columns: ['customers.id', 'customers.name', 'customer_numbers.number'],
    logics: [],
    tableColumns: { 'registration.customers': ['customers.id', 'customers.name'], 'registration.customer_numbers': ['customer_numbers.number'] },
  };
  test('only the columns of the tables the node lists (full or short name)', () => {
    expect(nodePickers(p, { tables: ['registration.customers'] }).columns).toEqual(['customers.id', 'customers.name']);
    expect(nodePickers(p, { tables: ['customer_numbers'] }).columns).toEqual(['customer_numbers.number']);
    expect(nodePickers(p, { tables: [] }).columns).toEqual([]);
    // a node with no tables field keeps the directory's columns
    expect(nodePickers(p, { code: 200 }).columns).toHaveLength(3);
  });
});

describe('logics of a file', () => {
  const start = { id: 0, name: 'Start', type: 'enter.start', values: { next: 1 } };
  const doc: SlidDoc = {
    '1': {
      name: 'main',
      nodes: {
        '0': start,
        '1': { id: 1, name: 'go', type: 'flow.callLogic', values: { logic: 'screening', next: 2 } },
        '2': { id: 2, name: 'by id', type: 'flow.callLogic', values: { logic: '7' } },
      },
    },
    '3': { name: 'screening', nodes: { '0': { ...start, values: { next: null } } } },
    '7': { name: 'other', nodes: { '0': { ...start, values: { next: null } } } },
  };

  test('add: the next numeric id, a start node', () => {
    expect(newLogicId(doc)).toBe('8');
    const { doc: out, id } = addLogic(doc, 'night');
    expect(id).toBe('8');
    expect(out['8']).toEqual({
      name: 'night',
      description: '',
      nodes: { '0': { id: 0, name: 'Start', type: 'enter.start', description: '', values: { next: null }, archived: false, x: 0, y: 0 } },
    });
    expect(out['1']).toBe(doc['1']);
  });

  test('rename: calls by the old name follow, calls by id untouched', () => {
    const out = renameLogic(doc, '3', 'screen calls', types);
    expect(out['3'].name).toBe('screen calls');
    expect((out['1'].nodes as Record<string, { values: Record<string, unknown> }>)['1'].values.logic).toBe('screen calls');
    expect((out['1'].nodes as Record<string, { values: Record<string, unknown> }>)['2']).toBe((doc['1'].nodes as Record<string, unknown>)['2']);
    expect(renameLogic(doc, '3', 'screening', types)).toBe(doc);
  });

  test('delete: refused while called (by name or id), else gone', () => {
    expect(callersOf(doc, '3', types).map((c) => c.node.name)).toEqual(['go']);
    expect(deleteLogic(doc, '3', types)).toMatch(/is called by node 1 “go” of logic 1 “main”/);
    expect(deleteLogic(doc, '7', types)).toMatch(/is called by node 2 “by id”/);
    const out = deleteLogic(doc, '1', types);
    expect(typeof out).toBe('object');
    expect(Object.keys(out as SlidDoc)).toEqual(['3', '7']);
    expect(deleteLogic({ '1': doc['1'] }, '1', types)).toBe('a file keeps at least one logic');
  });
});
