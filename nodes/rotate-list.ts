import { NodeRunError, type NodeType } from '../engine/node-type';
import { nodeRef, writesVariable } from './common';
import { readList } from './list';

interface Values {
  list: string;
  by?: number | string;
  next?: number | string;
}

/**
 * Rotate list: the first row (or the first `by` rows) moved to the end, e.g. round-robin over a
 * list of gateways kept in a variable. A negative `by` moves the last rows to the front.
 */
export const rotateListNode: NodeType<Values> = {
  type: 'action.rotateList',
  title: 'Rotate list',
  summary: 'rotate {list}{if by} by {by}{end}',
  category: 'list',
  description: 'Moves the first row (or the first n rows) of a list to its end; a negative n moves the last rows to the front.',
  valuesSchema: {
    type: 'object',
    required: ['list'],
    properties: {
      list: { ...writesVariable, description: 'variable holding the list (rotated in place of its value)' },
      by: {
        type: ['integer', 'string'],
        default: 1,
        'x-var': true,
        description: 'rows to move: an integer or a variable holding one (default 1)',
      },
      next: nodeRef,
    },
  },
  compile(values, c) {
    const name = values.list;
    const by = c.value(values.by ?? 1);
    const next = c.exit('next');
    return (s) => {
      const list = readList(s.cd.vars, name);
      const raw = by(s.cd.vars);
      const n = typeof raw === 'number' ? raw : Number(raw);
      if (!Number.isInteger(n)) throw new NodeRunError(`rotate by ${JSON.stringify(raw)}: not an integer`);
      if (list.length < 2) return next;
      const k = ((n % list.length) + list.length) % list.length;
      if (k !== 0) s.set(name, [...list.slice(k), ...list.slice(0, k)]);
      return next;
    };
  },
};
