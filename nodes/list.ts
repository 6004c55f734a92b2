/**
 * Lists of records shared by the list and JSON nodes (action.createList, action.appendRow,
 * action.rotateList, action.aggregateColumn, flow.forEachRow, action.jsonToList,
 * action.listToJson). A list is a variable holding `RecordRow[]`, the value query nodes store
 * with `storeIntoRecordsList`: rows of column → scalar, no column list of its own (an empty list
 * is `[]`). List nodes never change a list in place: they write a new array, so a trace step keeps
 * the list as that step wrote it and a loop keeps iterating the rows it started with.
 *
 * Limit: MAX_LIST_ROWS rows per list (appendRow takes `ifFull`, jsonToList `ifInvalid`).
 */
import { NodeRunError } from '../engine/node-type';
import type { CdValue, RecordRow, Scalar } from '../engine/types';

/** Rows a list holds at most: 10 000 rows of a few columns are a few MB of call descriptor. */
export const MAX_LIST_ROWS = 10_000;

/** A column name: as query nodes store them (`customers.name` or a variable name). */
export const columnName = { type: 'string', minLength: 1, maxLength: 128, pattern: '^[A-Za-z_][A-Za-z0-9_.-]*$' };

/** The field naming a list variable a node reads. */
export const listVariable = {
  type: 'string',
  minLength: 1,
  'x-var': true,
  description: 'variable holding the list (a missing or null variable is an empty list)',
};

/** A row without a prototype: a column named `__proto__` or `constructor` (JSON input) is a plain column. */
export function newRow(): RecordRow {
  return Object.create(null) as RecordRow;
}

/** A cell: scalars as they are, a list (or anything else) as JSON text. */
export function toCell(v: unknown): Scalar {
  if (v === null || v === undefined) return null;
  if (typeof v === 'string' || typeof v === 'boolean') return v;
  if (typeof v === 'number') return Number.isFinite(v) ? v : null;
  return JSON.stringify(v);
}

/** The rows a list variable holds; a missing or null one is empty; any other value ends the run with a 500 naming the node (the logic is wrong). */
export function readList(vars: Record<string, CdValue>, name: string): RecordRow[] {
  const v = vars[name];
  if (v === undefined || v === null) return [];
  if (Array.isArray(v)) return v;
  throw new NodeRunError(`variable ${name} holds no list`);
}

/** A row's cell; a column the row lacks (`constructor` of a plain object included) is null. */
export function cellOf(row: RecordRow, column: string): Scalar {
  return Object.hasOwn(row, column) ? (row[column] ?? null) : null;
}
