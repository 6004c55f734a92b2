import type { NodeType } from '../engine/node-type';
import { toText } from '../engine/values';
import { nodeRef, readVariable } from './common';

interface Values {
  variable: string;
  stripDigits?: number;
  stripPrefix?: string;
  addPrefix?: string;
  addSuffix?: string;
  storeInto?: string;
  next?: number | string;
}

/** Digits manipulation: strip leading digits or a prefix, add a prefix/suffix (number normalization). */
export const digitsNode: NodeType<Values> = {
  type: 'action.digitsManipulation',
  title: 'Digits manipulation',
  summary:
    '{variable}{if stripDigits} −{stripDigits} digits{end}{if stripPrefix} −{stripPrefix}{end}{if addPrefix} +{addPrefix}…{end}{if addSuffix} …+{addSuffix}{end} → {storeInto}',
  category: 'action',
  description: 'Strips N leading digits or a given prefix, then adds a prefix and/or suffix; writes the result.',
  valuesSchema: {
    type: 'object',
    required: ['variable'],
    properties: {
      variable: { type: 'string', minLength: 1, 'x-var': true, description: 'the variable whose digits are changed (always read as a variable)' },
      stripDigits: { type: 'integer', minimum: 0, description: 'number of leading characters removed' },
      stripPrefix: { type: 'string', description: 'removed when the value starts with it (after stripDigits)' },
      addPrefix: { type: 'string', description: 'added in front, e.g. +32' },
      addSuffix: { type: 'string', description: 'added at the end' },
      storeInto: { type: 'string', 'x-writes': true, description: 'default: the variable itself' },
      next: nodeRef,
    },
  },
  writes: (v) => [v.storeInto || v.variable].filter((x): x is string => typeof x === 'string' && x !== ''),
  secrets: (v, isSecret) => (v.storeInto && typeof v.variable === 'string' && isSecret(v.variable) ? [v.storeInto] : []),
  compile(values, c) {
    const read = readVariable(values.variable);
    const target = values.storeInto || values.variable;
    const next = c.exit('next');
    return (s) => {
      const current = read(s.cd.vars);
      if (current !== null) {
        let digits = toText(current);
        if (values.stripDigits) digits = digits.slice(values.stripDigits);
        if (values.stripPrefix && digits.startsWith(values.stripPrefix)) digits = digits.slice(values.stripPrefix.length);
        s.set(target, (values.addPrefix ?? '') + digits + (values.addSuffix ?? ''));
      }
      return next;
    };
  },
};
