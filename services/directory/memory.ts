/**
 * In-memory directory: single-table queries over rows held in memory. It serves unit tests, the
 * engine benchmark and the simulator without a database; joins and longest prefix match are
 * supported only by the SQL adapter (they answer DirectoryError 'invalid' here).
 */
import type { RecordRow, Scalar } from '../../engine/types';
import { DirectoryError, type DirectoryCondition, type DirectoryPort, type DirectoryQuery, type DirectorySchema } from './types';

export type MemoryTables = Record<string, RecordRow[]>; // `schema.table` → rows keyed by column

function holds(row: RecordRow, column: string, c: DirectoryCondition): boolean {
  const v = row[column] ?? null;
  const x = c.value as Scalar;
  switch (c.operator) {
    case 'is':
      return x === null ? v === null : v !== null && String(v) === String(x);
    case 'isNot':
      return v !== null && String(v) !== String(x);
    case 'exists':
      return v !== null;
    case 'doesNotExist':
      return v === null;
    case 'startsWith':
      return v !== null && String(v).startsWith(String(x));
    case 'in':
      return v !== null && (c.value as Scalar[]).map(String).includes(String(v));
    default:
      throw new DirectoryError(`operator ${c.operator} is not supported by the in-memory directory`, 'invalid');
  }
}

/** The tables are read as given; change them only before the first query (indexes are cached). */
export function createMemoryDirectory(tables: MemoryTables): DirectoryPort {
  const schema: DirectorySchema = {};
  for (const [name, rows] of Object.entries(tables)) {
    schema[name] = Object.fromEntries(Object.keys(rows[0] ?? {}).map((col) => [col, typeof rows[0][col]]));
  }
  const columnOf = (q: DirectoryQuery, ref: string): string => {
    const [table, column] = ref.split('.').slice(-2);
    if (!q.tables.some((t) => t.split('.').pop() === table) || !(column in (schema[q.tables[0]] ?? {}))) {
      throw new DirectoryError(`unknown column ${ref} of ${q.tables.join(', ')}`, 'invalid');
    }
    return column;
  };
  // Equality indexes, built on first use per table and column, so a lookup by username is O(1).
  const indexes = new Map<string, Map<string, RecordRow[]>>();
  const indexed = (table: string, column: string, value: Scalar): RecordRow[] => {
    const key = `${table}\u0000${column}`;
    let index = indexes.get(key);
    if (!index) {
      index = new Map();
      for (const row of tables[table]) {
        const v = row[column];
        if (v === null || v === undefined) continue;
        const list = index.get(String(v));
        if (list) list.push(row);
        else index.set(String(v), [row]);
      }
      indexes.set(key, index);
    }
    return value === null ? [] : (index.get(String(value)) ?? []);
  };
  return {
    async query(q) {
      if (q.tables.length !== 1 || q.joins.length) throw new DirectoryError('joins are not supported by the in-memory directory', 'invalid');
      const all = tables[q.tables[0]];
      if (!all) throw new DirectoryError(`unknown table ${q.tables[0]}`, 'invalid');
      const conds = q.conditions.map((c) => ({ c, column: columnOf(q, c.field) }));
      const eq = q.logic === 'and' ? conds.find(({ c }) => c.operator === 'is') : undefined;
      const rows = eq ? indexed(q.tables[0], eq.column, eq.c.value as Scalar) : all;
      const fields = q.fields.map((f) => ({ ref: f, column: columnOf(q, f) }));
      const out: RecordRow[] = [];
      for (const row of rows) {
        const match = q.logic === 'or' ? conds.some(({ c, column }) => holds(row, column, c)) : conds.every(({ c, column }) => holds(row, column, c));
        if (!match) continue;
        const r: RecordRow = {};
        for (const f of fields) r[f.ref] = row[f.column] ?? null;
        out.push(r);
      }
      const start = q.offset || 0;
      return out.slice(start, q.limit === undefined ? undefined : start + q.limit);
    },
    async schema() {
      return schema;
    },
  };
}
