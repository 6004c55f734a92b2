import type { NodeType } from '../engine/node-type';
import { anyValue, flag, isSet, nodeRef, writesVariable } from './common';

interface Values {
  variables: Array<{ variable: string; value?: unknown; onlyIfNotSet?: boolean | string }>;
  next?: number | string;
}

/** Sets variables from literals, other variables or `[name]` templates. */
export const setVariablesNode: NodeType<Values> = {
  type: 'action.setVariables',
  title: 'Set variables',
  summary: '{each variables ", "}{variable} = {value}{end}',
  category: 'action',
  description: 'Writes variables, in order; "only if not set" leaves an existing value alone.',
  valuesSchema: {
    type: 'object',
    required: ['variables'],
    properties: {
      variables: {
        type: 'array',
        description: 'variables set in order, each to a variable (var) or a literal (abc)',
        items: {
          type: 'object',
          required: ['variable'],
          properties: {
            variable: { ...writesVariable, 'x-secret': { from: 'value' }, description: 'the variable set' },
            value: { ...anyValue, description: 'a variable (var) or literal text (abc); [name] placeholders are filled' },
            onlyIfNotSet: { ...flag, title: 'Only if not set', description: 'leave the variable as it is when it already holds a value' },
          },
        },
      },
      next: nodeRef,
    },
  },
  compile(values, c) {
    const sets = values.variables.map((v) => ({ name: v.variable, value: c.value(v.value ?? null), onlyIfNotSet: isSet(v.onlyIfNotSet) }));
    const next = c.exit('next');
    return (s) => {
      const vars = s.cd.vars;
      for (const set of sets) {
        if (set.onlyIfNotSet && vars[set.name] !== undefined && vars[set.name] !== null) continue;
        s.set(set.name, set.value(vars));
      }
      return next;
    };
  },
};
