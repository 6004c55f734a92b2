import type { NodeType } from '../engine/node-type';
import { nodeRef, writesVariable } from './common';
import { listVariable, readList } from './list';

interface Values {
  list: string;
  storeInto: string;
  next?: number | string;
}

/** List to JSON: a list as JSON text (an array of objects), e.g. for an HTTP request body. */
export const listToJsonNode: NodeType<Values> = {
  type: 'action.listToJson',
  title: 'List to JSON',
  summary: '{list} → JSON {storeInto}',
  category: 'list',
  description: 'Writes a list as JSON text (an array of objects, one per row) into a variable; a missing list gives [].',
  valuesSchema: {
    type: 'object',
    required: ['list', 'storeInto'],
    properties: {
      list: listVariable,
      // a list holding secret columns (a password) copied as text is a secret too
      storeInto: { ...writesVariable, 'x-secret': { from: 'list' }, description: 'variable the JSON text is written to' },
      next: nodeRef,
    },
  },
  compile(values, c) {
    const next = c.exit('next');
    return (s) => {
      s.set(values.storeInto, JSON.stringify(readList(s.cd.vars, values.list)));
      return next;
    };
  },
};
