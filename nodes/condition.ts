import type { NodeType } from '../engine/node-type';
import { compilePredicate, type Operator } from '../engine/operators';
import { checkConditionRegexes, conditionFields, nodeRef, readVariable } from './common';

interface Values {
  logic: 'any' | 'all' | 'and' | 'or';
  conditions: Array<{ variable: string; operator: Operator; value?: unknown }>;
  ifTrue?: number | string;
  ifFalse?: number | string;
}

/** Combined conditions: true if any (or all) of its conditions hold. */
export const conditionNode: NodeType<Values> = {
  type: 'analysis.condition',
  title: 'Combined conditions',
  summary: '{each conditions " {logic|join} "}{variable} {operator|op} {value}{end}',
  category: 'analysis',
  description: 'True if any (or) / all (and) of the conditions are met; takes ifTrue or ifFalse.',
  valuesSchema: {
    type: 'object',
    required: ['logic', 'conditions'],
    properties: {
      logic: {
        type: 'string',
        enum: ['any', 'all', 'and', 'or'],
        title: 'Combine conditions with',
        description: 'all (and): every condition holds; any (or): at least one',
      },
      conditions: {
        type: 'array',
        description: 'each tests a variable against a value',
        items: {
          type: 'object',
          required: ['variable', 'operator'],
          properties: conditionFields,
        },
      },
      ifTrue: { ...nodeRef, 'x-exit-label': 'true', title: 'If true', description: 'taken when the conditions hold' },
      ifFalse: { ...nodeRef, 'x-exit-label': 'false', title: 'If false', description: 'taken when they do not' },
    },
  },
  check: (v) => checkConditionRegexes(v.conditions),
  compile(values, c) {
    const preds = values.conditions.map((cond) => compilePredicate(readVariable(cond.variable), cond.operator, cond.value, c));
    const any = values.logic === 'any' || values.logic === 'or';
    const ifTrue = c.exit('ifTrue');
    const ifFalse = c.exit('ifFalse');
    return (s) => {
      const vars = s.cd.vars;
      if (any) {
        for (let i = 0; i < preds.length; i++) if (preds[i](vars)) return ifTrue;
        return ifFalse;
      }
      for (let i = 0; i < preds.length; i++) if (!preds[i](vars)) return ifFalse;
      return preds.length > 0 ? ifTrue : ifFalse;
    };
  },
};
