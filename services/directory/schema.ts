/**
 * Introspects the directory's tables and columns from information_schema. The query builder
 * checks every table and column a flow names against this, so flows can only touch what exists.
 */
import type { Knex } from 'knex';
import type { DirectorySchema } from './types';
import { toDirectoryError } from './errors';

/** Reads `schema.table` → column → data type for every user table and view (knex bookkeeping excluded). */
export async function introspectSchema(knex: Knex): Promise<DirectorySchema> {
  let rows: Array<{ table_schema: string; table_name: string; column_name: string; data_type: string }>;
  try {
    rows = await knex('information_schema.columns')
      .select('table_schema', 'table_name', 'column_name', 'data_type')
      .whereNotIn('table_schema', ['pg_catalog', 'information_schema'])
      .andWhereRaw("table_name NOT LIKE 'knex\\_migrations%'")
      .orderBy(['table_schema', 'table_name', 'ordinal_position']);
  } catch (err) {
    throw toDirectoryError(err, 'directory schema introspection');
  }
  const schema: DirectorySchema = {};
  for (const r of rows) {
    (schema[`${r.table_schema}.${r.table_name}`] ??= {})[r.column_name] = r.data_type;
  }
  return schema;
}

/** A single-column foreign key: `schema.table.column` → `schema.table.column`. */
export interface ForeignKey {
  from: string;
  to: string;
}

/**
 * The directory's single-column foreign keys (the designer proposes a query's join from them when
 * two related tables are listed). Composite keys are left out: a join proposal is one column pair.
 */
export async function introspectForeignKeys(knex: Knex): Promise<ForeignKey[]> {
  let rows: Array<{ name: string; schema: string; tbl: string; col: string; ref_schema: string; ref_table: string; ref_col: string }>;
  try {
    const res = (await knex.raw(`
      SELECT tc.constraint_schema || '.' || tc.constraint_name AS name,
             kcu.table_schema AS schema, kcu.table_name AS tbl, kcu.column_name AS col,
             ccu.table_schema AS ref_schema, ccu.table_name AS ref_table, ccu.column_name AS ref_col
        FROM information_schema.table_constraints tc
        JOIN information_schema.key_column_usage kcu
          ON kcu.constraint_schema = tc.constraint_schema AND kcu.constraint_name = tc.constraint_name
        JOIN information_schema.constraint_column_usage ccu
          ON ccu.constraint_schema = tc.constraint_schema AND ccu.constraint_name = tc.constraint_name
       WHERE tc.constraint_type = 'FOREIGN KEY'
         AND tc.table_schema NOT IN ('pg_catalog', 'information_schema')`)) as { rows: typeof rows };
    rows = res.rows;
  } catch (err) {
    throw toDirectoryError(err, 'directory foreign keys introspection');
  }
  const byName = new Map<string, typeof rows>();
  for (const r of rows) byName.set(r.name, [...(byName.get(r.name) ?? []), r]);
  return [...byName.values()]
    .filter((rs) => rs.length === 1)
    .map(([r]) => ({ from: `${r.schema}.${r.tbl}.${r.col}`, to: `${r.ref_schema}.${r.ref_table}.${r.ref_col}` }))
    .sort((a, b) => a.from.localeCompare(b.from));
}

export interface SchemaCache {
  /** The cached schema, introspected on first use. */
  get(): Promise<DirectorySchema>;
  /** Re-reads the schema (after migrations or DDL) and returns it. */
  refresh(): Promise<DirectorySchema>;
  /** Epoch ms of the last successful introspection (0 when never). */
  readonly loadedAt: number;
}

export function createSchemaCache(knex: Knex, now: () => number = Date.now): SchemaCache {
  let pending: Promise<DirectorySchema> | undefined;
  let loadedAt = 0;
  const refresh = (): Promise<DirectorySchema> => {
    const p = introspectSchema(knex).then((s) => {
      loadedAt = now();
      return s;
    });
    pending = p;
    // A failed introspection (database down) must not stay cached: the next call retries.
    p.catch(() => {
      if (pending === p) pending = undefined;
    });
    return p;
  };
  return {
    get: () => pending ?? refresh(),
    refresh,
    get loadedAt() {
      return loadedAt;
    },
  };
}
