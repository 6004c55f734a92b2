/** The node essence and exit labels the canvas shows, from the node types' declared templates. */
import { builtinRegistry } from '../../../nodes';
import { essenceOf, exitMeaning, operatorWords, renderTemplate } from '../../../designer/src/essence';

const reg = builtinRegistry();
const t = (type: string) => reg.get(type)!;

test('the template language: values, filters, each, if/else, index', () => {
  expect(renderTemplate('{a} {b|op}', { a: 'x', b: 'doesNotContain' })).toBe('x does not contain');
  expect(renderTemplate('{each l ", "}{#}:{v}{end}', { l: [{ v: 1 }, { v: 2 }] })).toBe('1:1, 2:2');
  expect(renderTemplate('{if r}{r}{else}{c|reason}{end}', { c: 480 })).toBe('Temporarily Unavailable');
  expect(renderTemplate('{missing|default:none} {list}', { list: ['a', 'b'] })).toBe('none a, b');
  expect(renderTemplate('{unclosed', {})).toBe('{unclosed');
  expect(operatorWords('greaterOrEqual')).toBe('≥');
});

test('the essence of the note nodes', () => {
  expect(essenceOf(t('analysis.condition'), { logic: 'any', conditions: [{ variable: 'authStatus', operator: 'is', value: 1 }] })).toBe('authStatus is 1');
  expect(
    essenceOf(t('query.queryDatabaseGeneric'), {
      tables: ['registration.customers'],
      // (tables shown by their name, without the schema)
      conditions: [{ field: 'customers.username', operator: 'is', value: 'authUsername' }],
    }),
  ).toBe('customers where username = authUsername');
  expect(essenceOf(t('output.reply'), { code: 480, reason: 'Temporarily Unavailable' })).toBe('480 Temporarily Unavailable');
  expect(essenceOf(t('output.reply'), { code: 404 })).toBe('404 Not Found');
  expect(essenceOf(t('flow.callLogic'), { logic: 31 }, { logics: { 31: 'incoming call' } })).toBe('→ incoming call');
  expect(essenceOf(t('output.relay'), { destination: 'destination' })).toBe('→ destination');
  expect(essenceOf(t('action.setVariables'), { variables: [{ variable: 'pstnTrunks', value: '192.0.2.10,192.0.2.11' }] })).toBe(
    'pstnTrunks = 192.0.2.10,192.0.2.11',
  );
  expect(essenceOf(t('analysis.condition'), { conditions: [{ variable: 'x', operator: 'exists', value: 'ignored' }] })).toBe('x exists');
});

test('a type without a summary gets a generic line', () => {
  const plugin = {
    type: 'acme.x',
    title: 'X',
    category: 'action' as const,
    description: '',
    valuesSchema: { type: 'object', properties: { url: {}, next: { 'x-exit': true } } },
  };
  expect(essenceOf(plugin, { url: 'http://a', next: 3 })).toBe('url: http://a');
});

test('exits labelled by meaning', () => {
  const seq = t('analysis.sequentialConditions');
  const values = { conditions: [{ variable: 'method', operator: 'is', value: 'REGISTER', ifTrue: 2 }], fallback: 3 };
  expect(exitMeaning(seq, values, 'conditions/0/ifTrue')).toBe('method is REGISTER');
  expect(exitMeaning(seq, values, 'fallback')).toBe('otherwise');
  expect(exitMeaning(t('query.queryDatabaseGeneric'), {}, 'ifRecordFound')).toBe('found');
  expect(exitMeaning(t('query.queryDatabaseGeneric'), {}, 'ifnoRecordFound')).toBe('not found');
  expect(exitMeaning(t('analysis.condition'), {}, 'ifFalse')).toBe('false');
  expect(exitMeaning(t('output.nit.registrar.lookupLocationService'), {}, 'ifNotFound')).toBe('not found');
  expect(exitMeaning(t('output.relay'), {}, 'ifAllFailed')).toBe('all failed');
  expect(exitMeaning(t('analysis.timeCondition'), { rules: [{ weekdays: ['mon', 'tue'], times: [{ from: '09:00', to: '17:00' }] }] }, 'rules/0/ifMatch')).toBe(
    'rule 1: mon, tue 09:00–17:00',
  );
});
