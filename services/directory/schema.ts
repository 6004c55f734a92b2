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
