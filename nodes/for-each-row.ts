import type { NodeType, RunState } from '../engine/node-type';
import type { RecordRow } from '../engine/types';
import { nodeRef, writesVariable } from './common';
import { cellOf, columnName, listVariable, readList } from './list';

interface Values {
  list: string;
  columns: Array<{ column: string; variable: string }>;
  indexInto?: string;
  body?: number | string;
  done?: number | string;
}

/** Where a loop is: the rows it iterates (as they were when it started) and the next row's index. */
interface Cursor {
  rows: RecordRow[];
  next: number;
}

/**
 * For each row: a loop over a list. Each visit writes the next row's columns into their
 * variables and takes `body`; the body's last node leads back to this node; after the last row
 * the node takes `done`. The cursor is not a variable, so the body's nodes cannot disturb it: it
 * lives in a WeakMap of this compiled node keyed by the run's RunState, the one object the
 * interpreter makes per run (per message). Compiled nodes are shared by concurrent runs, so the
 * cursor cannot live in the closure itself; keyed by the run it needs no engine change and goes
 * with the run. Nested loops (other nodes) keep their own cursors, and a loop is entered afresh
 * whenever it is reached again after `done`. It iterates the rows the list held when the loop
 * started: appending to or rotating the list in the body changes the variable, not the
 * iteration. Leaving the body by another way (a break) leaves the cursor where it is: reaching
 * this node again in the same run (also after a restart on authentication) continues with the
 * next row. Every visit is a state transition, so the run's transition limit
 * (`limits.maxTransitions`, default 1000) bounds every loop: past it the run ends with a 500
 * naming the node where it stopped.
 */
export const forEachRowNode: NodeType<Values> = {
  type: 'flow.forEachRow',
  title: 'For each row',
  summary: 'each row of {list}',
  category: 'flow',
  description:
    'Loops over a list: each visit writes the next row’s columns into variables and takes body (lead the body back here); after the last row takes done. Bounded by the run’s transition limit.',
  valuesSchema: {
    type: 'object',
    required: ['list', 'columns', 'body'],
    properties: {
      list: listVariable,
      columns: {
        type: 'array',
        items: {
          type: 'object',
          required: ['column', 'variable'],
          properties: {
            column: { ...columnName, description: 'column of the row (missing in a row: null)' },
            variable: { ...writesVariable, description: 'variable it is written to at each row, e.g. route.uri' },
          },
        },
        description: 'the columns each row writes into variables',
      },
      indexInto: { ...writesVariable, description: 'variable the current row’s index is written to (0 for the first row)' },
      body: { ...nodeRef, description: 'taken for each row; its last node leads back to this node' },
      done: { ...nodeRef, description: 'taken after the last row (at once for an empty list)' },
    },
  },
  compile(values, c) {
    const name = values.list;
    const columns = values.columns.map((col) => [col.column, col.variable] as const);
    const indexInto = values.indexInto || null;
    const body = c.exit('body');
    const done = c.exit('done');
    /** This node's loops in progress, by run. */
    const cursors = new WeakMap<RunState, Cursor>();
    return (s) => {
      let cursor = cursors.get(s);
      if (cursor === undefined) {
        cursor = { rows: readList(s.cd.vars, name), next: 0 };
        cursors.set(s, cursor);
      }
      if (cursor.next >= cursor.rows.length) {
        cursors.delete(s);
        return done;
      }
      const row = cursor.rows[cursor.next];
      if (indexInto) s.set(indexInto, cursor.next);
      for (const [column, variable] of columns) s.set(variable, cellOf(row, column));
      cursor.next++;
      return body;
    };
  },
};
