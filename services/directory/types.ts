/**
 * Directory port: the subscriber/number database as the query node sees it. The node hands over
 * a structured query whose values are already resolved from the call descriptor; the adapter
 * checks every table and column against the introspected schema and builds the SQL with knex.
 */
import type { RecordRow, Scalar } from '../../engine/types';

/** Condition operators a directory query understands (the engine's operators plus longest prefix). */
export type DirectoryOperator =
  | 'is' | 'isNot' | 'exists' | 'doesNotExist' | 'contains' | 'doesNotContain'
  | 'startsWith' | 'endsWith' | 'greaterThan' | 'greaterOrEqual' | 'lessThan' | 'lessOrEqual'
  | 'in' | 'matches' | 'isLongestPrefixMatchOf';

/** `table.column` (table by its short name, as the export writes it) */
export type ColumnRef = string;

export interface DirectoryCondition {
  field: ColumnRef;
  operator: DirectoryOperator;
  /** Resolved value; an array for `in`. */
  value: Scalar | Scalar[];
}

export interface DirectoryJoin {
  left: ColumnRef;
  operator: 'is' | 'isNot' | 'lessThan' | 'lessOrEqual' | 'greaterThan' | 'greaterOrEqual';
  right: ColumnRef;
}

export interface DirectoryQuery {
  /** Fully qualified tables, `schema.table` as the export writes them (`registration.customers`). */
  tables: string[];
  /** Columns to return; each row is keyed by the ColumnRef string (`customers.password`). */
  fields: ColumnRef[];
  joins: DirectoryJoin[];
  joinType: 'JOIN' | 'LEFT JOIN' | 'RIGHT JOIN' | 'FULL JOIN' | 'INNER JOIN';
  conditions: DirectoryCondition[];
  logic: 'and' | 'or';
  orderBy: Array<{ field: ColumnRef; direction: 'asc' | 'desc' }>;
  offset: number;
  /** Max rows (1 for fetch first; undefined for all). */
  limit?: number;
}

/** Table → column → type name, as introspected from the database. */
export type DirectorySchema = Record<string, Record<string, string>>;

export class DirectoryError extends Error {
  constructor(message: string, readonly kind: 'invalid' | 'unavailable') { super(message); }
}

export interface DirectoryPort {
  /** Runs the query. Throws DirectoryError('invalid') on unknown table/column, ('unavailable') when the store is down. */
  query(q: DirectoryQuery): Promise<RecordRow[]>;
  /** The introspected schema (tables and columns), for validation and the designer's pickers. */
  schema(): Promise<DirectorySchema>;
}
