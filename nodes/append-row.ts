import { NodeRunError, type NodeType } from '../engine/node-type';
import { anyValue, nodeRef, writesVariable } from './common';
import { MAX_LIST_ROWS, columnName, newRow, readList, toCell } from './list';

interface Values {
  list: string;
  values: Array<{ column: string; value?: unknown }>;
  next?: number | string;
  ifFull?: number | string;
}

/**
 * Append row: a copy of the list with one more row at the end (a missing list becomes a list of
 * that row). A list holding MAX_LIST_ROWS rows is full: the row is not appended and the node
 * takes `ifFull`; with `ifFull` unset the run ends with a 500 naming the node, so a runaway loop
 * never grows a list without bound nor loses rows silently.
 */
export const appendRowNode: NodeType<Values> = {
  type: 'action.appendRow',
  title: 'Append row',
  summary: 'row → {list}',
  category: 'list',
  description: `Adds a row at the end of a list: one value per column (literal, variable or [name] template). A list holds at most ${MAX_LIST_ROWS} rows: a full list takes ifFull (unset: the run ends with a 500).`,
  valuesSchema: {
    type: 'object',
    required: ['list', 'values'],
    properties: {
      list: { ...writesVariable, description: 'variable holding the list (missing or null: a new list)' },
      values: {
        type: 'array',
        minItems: 1,
        items: {
          type: 'object',
          required: ['column'],
          properties: { column: { ...columnName, description: 'column of the new row' }, value: { ...anyValue, description: 'its value (missing: null)' } },
        },
        description: 'the new row, column by column',
      },
      next: nodeRef,
      ifFull: { ...nodeRef, description: `taken when the list already holds ${MAX_LIST_ROWS} rows (the row is not added)` },
    },
  },
  check: (v) =>
    (v.values ?? []).flatMap((cell, i, all) =>
      all.findIndex((o) => o?.column === cell?.column) < i ? [[`values/${i}/column`, `column ${cell.column} is given twice`] as [string, string]] : [],
    ),
  compile(values, c) {
    const cells = values.values.map((v) => ({ column: v.column, value: c.value(v.value ?? null) }));
    const name = values.list;
    const next = c.exit('next');
    const full = c.exit('ifFull');
    return (s) => {
      const vars = s.cd.vars;
      const list = readList(vars, name);
      if (list.length >= MAX_LIST_ROWS) {
        if (full.node) return full;
        throw new NodeRunError(`list ${name} is full (${MAX_LIST_ROWS} rows) and ifFull is unset`);
      }
      const row = newRow();
      for (const cell of cells) row[cell.column] = toCell(cell.value(vars));
      const out = list.slice();
      out.push(row);
      s.set(name, out);
      return next;
    };
  },
};
