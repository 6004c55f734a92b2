import type { NodeType } from '../engine/node-type';
import type { RecordRow } from '../engine/types';
import { anyValue, nodeRef, writesVariable } from './common';
import { MAX_LIST_ROWS, columnName, newRow, toCell } from './list';

interface Values {
  list: string;
  columns: string[];
  rows?: unknown[][];
  next?: number | string;
}

/** Create list: a list variable with its columns and, optionally, initial rows (literals, variables, `[name]` templates). */
export const createListNode: NodeType<Values> = {
  type: 'action.createList',
  title: 'Create list',
  summary: 'new list {list}',
  category: 'list',
  description: 'Writes a new list of records into a variable: the given rows, each cell a literal, a variable or a [name] template (no rows: an empty list).',
  valuesSchema: {
    type: 'object',
    required: ['list', 'columns'],
    properties: {
      list: { ...writesVariable, description: 'variable the list is written to (replacing its value)' },
      columns: { type: 'array', minItems: 1, items: columnName, description: 'column names, in the order of each row’s cells' },
      rows: {
        type: 'array',
        maxItems: MAX_LIST_ROWS,
        default: [],
        items: { type: 'array', items: anyValue },
        description: 'initial rows: one cell per column, in column order',
      },
      next: nodeRef,
    },
  },
  check(v) {
    const problems: Array<[string, string]> = [];
    const columns = v.columns ?? [];
    const seen = new Set<string>();
    columns.forEach((c, i) => {
      if (seen.has(c)) problems.push([`columns/${i}`, `column ${c} is listed twice`]);
      seen.add(c);
    });
    (v.rows ?? []).forEach((row, i) => {
      if (Array.isArray(row) && row.length !== columns.length) problems.push([`rows/${i}`, `has ${row.length} cell(s) for ${columns.length} column(s)`]);
    });
    return problems;
  },
  compile(values, c) {
    const columns = values.columns;
    const rows = (values.rows ?? []).map((row) => row.map((cell) => c.value(cell)));
    const next = c.exit('next');
    return (s) => {
      const vars = s.cd.vars;
      const list: RecordRow[] = rows.map((cells) => {
        const row = newRow();
        for (let i = 0; i < columns.length; i++) row[columns[i]] = toCell(cells[i](vars));
        return row;
      });
      s.set(values.list, list);
      return next;
    };
  },
};
