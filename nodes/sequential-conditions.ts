import type { NodeType } from '../engine/node-type';
import { compilePredicate, type Operator } from '../engine/operators';
import { checkConditionRegexes, conditionFields, nodeRef, readVariable } from './common';

interface Values {
  conditions: Array<{ variable: string; operator: Operator; value?: unknown; ifTrue: number | string }>;
  fallback?: number | string;
}

/** Tests conditions in order and takes the exit of the first one that holds, else the fallback. */
export const sequentialConditionsNode: NodeType<Values> = {
  type: 'analysis.sequentialConditions',
  title: 'Sequential conditions',
  summary: '{conditions|count} condition(s) in order: the first true one wins',
  category: 'analysis',
  description: 'Each condition has its own exit; the first true condition wins, otherwise the fallback exit is taken.',
  valuesSchema: {
    type: 'object',
    required: ['conditions'],
    properties: {
      conditions: {
        type: 'array',
        description: 'tested in order: the first that holds takes its own ifTrue exit',
        items: {
          type: 'object',
          required: ['variable', 'operator', 'ifTrue'],
          properties: {
            ...conditionFields,
            ifTrue: {
              ...nodeRef,
              'x-exit-label': '{variable} {operator|op} {value}',
              title: 'If true',
              description: 'taken when this condition is the first that holds',
            },
          },
        },
      },
      fallback: { ...nodeRef, 'x-exit-label': 'otherwise', description: 'taken when no condition holds' },
    },
  },
  check: (v) => checkConditionRegexes(v.conditions),
  compile(values, c) {
    const tests = values.conditions.map((cond, i) => ({
      holds: compilePredicate(readVariable(cond.variable), cond.operator, cond.value, c),
      exit: c.exit(`conditions/${i}/ifTrue`),
    }));
    const fallback = c.exit('fallback');
    return (s) => {
      const vars = s.cd.vars;
      for (let i = 0; i < tests.length; i++) if (tests[i].holds(vars)) return tests[i].exit;
      return fallback;
    };
  },
};
