/**
 * The directory adapter behind `query.queryDatabaseGeneric`: turns a structured DirectoryQuery
 * into SQL with knex only. Every table and column is checked against the introspected schema and
 * passed to knex as an identifier; every value is a binding. Nothing from a flow or a call is
 * ever concatenated into SQL text.
 *
 * The steps, one module each:
 *   plan.ts        what the query names, checked against the schema (once per shape);
 *   plan-cache.ts  plans by shape, with the identity-keyed fast path of the query node's objects;
 *   bind.ts        the query's values converted for their columns, and its variant;
 *   build.ts       the SQL, built by knex; a variant compiled once into a Statement;
 *   execute.ts     a Statement run on knex's pool (a named prepared statement on PostgreSQL);
 *   coalesce.ts    on PostgreSQL, queries of one statement waiting together sent as one;
 *   knex-internals.ts  the only place that touches knex's private client.
 *
 * Contract: the Directory port (types.ts): rows keyed by the flow's column references, errors as
 * DirectoryError('invalid' | 'unavailable'). `mode: 'builder'` keeps the former path, where knex
 * builds, compiles and runs every query (for comparison; also used for a variant that cannot be
 * prepared, and when knex post-processes responses).
 */
import type { Knex } from 'knex';
import type { RecordRow } from '../../engine/types';
import type { DirectoryPort, DirectorySchema } from './types';
import { createSchemaCache } from './schema';
import { toDirectoryError } from './errors';
import { coalescing } from './coalesce';
import { bind, countOf, variants, type Bound } from './bind';
import { build, prepare, UNPREPARABLE } from './build';
import { bindingsOf, pgExecute, pgliteExecute, recordsOf, statementName, toScalar, type Execute } from './execute';
import { isPgClient, isPgliteClient, postProcessesResponses } from './knex-internals';
import { createPlanCache } from './plan-cache';
import type { Plan } from './plan';

const DEFAULT_QUERY_TIMEOUT_MS = 10_000;

export interface DirectoryOptions {
  /**
   * 'prepared' (default): each query shape is compiled by knex once, then run as a prepared
   * statement. 'builder': knex builds and compiles every query (the former path; for comparison).
   */
  mode?: 'prepared' | 'builder';
  /**
   * PostgreSQL (`pg`), prepared mode: a query not answered within this many ms fails as
   * DirectoryError('unavailable') and its connection is discarded. Default 10000; 0 = no limit.
   */
  queryTimeoutMs?: number;
  /**
   * PostgreSQL, prepared mode: queries of one statement waiting together go out as one statement
   * (coalesce.ts). Default true.
   */
  coalesce?: boolean;
}

export interface Directory extends DirectoryPort {
  /** Re-reads the schema after DDL; cached query plans are dropped. */
  refreshSchema(): Promise<DirectorySchema>;
  /** Closes the database (the knex instance given to createDirectory). */
  close(): Promise<void>;
}

/** How statements run: undefined = the builder path for every query. */
function executorFor(knex: Knex, options: DirectoryOptions): Execute | undefined {
  if (options.mode === 'builder' || postProcessesResponses(knex)) return undefined;
  if (isPgClient(knex)) {
    const single = pgExecute(knex, options.queryTimeoutMs ?? DEFAULT_QUERY_TIMEOUT_MS);
    return options.coalesce === false ? single : coalescing(knex, single);
  }
  return isPgliteClient(knex) ? pgliteExecute(knex) : undefined;
}

export function createDirectory(knex: Knex, options: DirectoryOptions = {}): Directory {
  const schemaCache = createSchemaCache(knex);
  const plans = createPlanCache(schemaCache);
  // Named statements make `pg` parse each query shape once per connection (the auth lookup runs on
  // every REGISTER). PGlite is in-process, so there is nothing to save there.
  const namedStatements = isPgClient(knex);
  const execute = executorFor(knex, options);

  /** The former path: knex builds, compiles and runs the query (named on `pg`). */
  async function viaBuilder(
    plan: Plan,
    q: Parameters<Directory['query']>[0],
    bound: Bound,
    limit: number | undefined,
    offset: number | undefined,
  ): Promise<RecordRow[]> {
    const builder = build(knex, plan, variants(plan, q), bound.values, offset, limit);
    if (namedStatements) builder.options({ name: statementName(builder.toSQL().sql) });
    let rows: Array<Record<string, unknown>>;
    try {
      rows = await builder;
    } catch (err) {
      throw toDirectoryError(err);
    }
    return rows.map((row) => {
      const out: RecordRow = {};
      for (const s of plan.select) out[s.ref] = toScalar(row[s.alias]);
      return out;
    });
  }

  return {
    async query(q) {
      let plan = execute ? plans.known(q) : undefined;
      if (plan === undefined) {
        const generation = plans.generation;
        plan = await plans.plan(q);
        if (execute) plans.remember(q, plan, generation);
      }
      const offset = countOf(q.offset, 'offset') || undefined;
      const limit = q.limit !== undefined && q.limit !== null ? (countOf(q.limit, 'limit') ?? 0) : undefined;
      const bound = bind(plan, q, limit !== undefined, offset !== undefined);
      if (execute === undefined) return viaBuilder(plan, q, bound, limit, offset);

      let st = plan.statements.get(bound.key);
      if (st === undefined) {
        st = prepare(knex, plan, q, bound.values.length, limit !== undefined, offset !== undefined);
        plan.statements.set(bound.key, st);
      }
      if (st === UNPREPARABLE) return viaBuilder(plan, q, bound, limit, offset);
      return recordsOf(await execute(st, bindingsOf(st, bound.values, limit, offset)), plan.refs);
    },
    schema: () => schemaCache.get(),
    async refreshSchema() {
      plans.drop();
      return schemaCache.refresh();
    },
    close: () => knex.destroy(),
  };
}
