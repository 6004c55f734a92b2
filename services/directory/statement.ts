/**
 * Prepared execution of directory queries.
 *
 * A query SHAPE (tables, fields, joins, conditions' fields and operators, and the few things about
 * its values that change the SQL: a null value, the length of an `in` list, whether there is an
 * offset or a limit) is compiled once: knex builds it from the plan's schema-checked identifiers
 * with a `Slot` in place of every value, and `toSQL()` gives the SQL text and the order in which
 * the slots (and the constants knex adds itself, like the `1 = ?` of an empty `in`) are bound.
 * From then on a query of that shape only computes its values and runs the stored text:
 *
 * - on PostgreSQL through `pg`, as a named prepared statement on a connection of knex's own pool
 *   (parsed once per connection), with a query timeout;
 * - on PGlite, as a parameterised query on its (single) pooled connection.
 *
 * SQL still only ever comes from knex; values are only ever bindings.
 */
import { createHash } from 'crypto';
import type { Knex } from 'knex';
import { DirectoryError } from './types';
import { toDirectoryError } from './errors';

/** Stands for the `index`-th value of a query while knex compiles its shape. */
export class Slot {
  constructor(readonly index: number) {}
}

/**
 * Bound in place of LIMIT / OFFSET while compiling (knex only takes numbers there). Nothing else
 * a shape binds is a number: values are Slots, and knex's own constants are small.
 */
export const LIMIT_SENTINEL = 1_000_000_007;
export const OFFSET_SENTINEL = 1_000_000_009;

const FROM_LIMIT = -1;
const FROM_OFFSET = -2;
/** sources[k] <= FROM_CONSTANT: constants[FROM_CONSTANT - sources[k]] */
const FROM_CONSTANT = -3;

export interface Statement {
  /** `sipflow_dir_` + sha1 of knex's SQL: the name the builder path gives the same SQL. */
  readonly name: string;
  /** The SQL with $1…$n, exactly as knex positions it. */
  readonly text: string;
  /** Where each $k comes from: ≥ 0 the query's values[k], else limit, offset or a constant. */
  readonly sources: readonly number[];
  readonly constants: readonly unknown[];
}

/** Name of the prepared statement for knex's `?` form of a query (unchanged from the builder path). */
export function statementName(sql: string): string {
  return `sipflow_dir_${createHash('sha1').update(sql).digest('hex').slice(0, 24)}`;
}

/**
 * Turns knex's compilation of a shape (built with Slot 0…valueCount-1 and the sentinels) into a
 * Statement. Returns null when the bindings are not exactly what was put in (every slot once,
 * limit / offset iff expected): the caller then keeps building that shape with knex per query.
 */
export function toStatement(
  native: { sql: string; bindings: readonly unknown[] }, sql: string,
  valueCount: number, hasLimit: boolean, hasOffset: boolean,
): Statement | null {
  const seen = new Array<boolean>(valueCount).fill(false);
  let limits = 0;
  let offsets = 0;
  const sources: number[] = [];
  const constants: unknown[] = [];
  for (const b of native.bindings) {
    if (b instanceof Slot) {
      if (b.index < 0 || b.index >= valueCount || seen[b.index]) return null;
      seen[b.index] = true;
      sources.push(b.index);
    } else if (b === LIMIT_SENTINEL) {
      limits++;
      sources.push(FROM_LIMIT);
    } else if (b === OFFSET_SENTINEL) {
      offsets++;
      sources.push(FROM_OFFSET);
    } else {
      sources.push(FROM_CONSTANT - constants.length);
      constants.push(b);
    }
  }
  if (seen.includes(false) || limits !== (hasLimit ? 1 : 0) || offsets !== (hasOffset ? 1 : 0)) return null;
  return { name: statementName(sql), text: native.sql, sources, constants };
}

/** The bindings of one query, in $k order. */
export function bindingsOf(st: Statement, values: readonly unknown[], limit: number | undefined, offset: number | undefined): unknown[] {
  const { sources, constants } = st;
  const out = new Array<unknown>(sources.length);
  for (let k = 0; k < sources.length; k++) {
    const s = sources[k];
    out[k] = s >= 0 ? values[s] : s === FROM_LIMIT ? limit : s === FROM_OFFSET ? offset : constants[FROM_CONSTANT - s];
  }
  return out;
}

// ---------------------------------------------------------------- execution

/** Runs a statement; resolves to its rows, one array of column values per row (select order). */
export type Execute = (st: Statement, bindings: unknown[]) => Promise<unknown[][]>;

/** What this module needs of knex's client (`knex.client`, untyped in knex's declarations). */
interface KnexClient {
  acquireConnection(): Promise<unknown>;
  releaseConnection(connection: unknown): Promise<void>;
  pglite?: unknown;
}

interface PgConnection {
  query(config: { name: string; text: string; values: unknown[]; rowMode: 'array' },
    callback: (err: Error | null, res: { rows: unknown[][] }) => void): void;
  /** knex's mark for "destroy instead of reusing" (its pool's validate checks it on acquire). */
  __knex__disposed?: unknown;
}

interface PgliteConnection {
  query(text: string, values: unknown[], options: { rowMode: 'array' }): Promise<{ rows: unknown[][] }>;
}

async function acquire(client: KnexClient): Promise<unknown> {
  try {
    return await client.acquireConnection();
  } catch (err) {
    throw toDirectoryError(err);
  }
}

function release(client: KnexClient, connection: unknown): void {
  // After knex.destroy() the pool is gone: the connection went with it.
  try { void client.releaseConnection(connection).catch(() => undefined); } catch { /* pool destroyed */ }
}

/** 26000: the prepared statement does not exist (a DEALLOCATE, a transaction pooler); 0A000: cached plan must not change result type (DDL). */
function staleStatement(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === '26000' || code === '0A000';
}

/**
 * A server-side ERROR (a bad regex, a type mismatch, a statement timeout) leaves the session
 * usable; anything else (FATAL/PANIC, socket errors, a protocol error, our own timeout) does not,
 * nor does one whose prepared statements went astray.
 */
function sessionSurvives(err: unknown): boolean {
  return (err as { severity?: unknown } | null)?.severity === 'ERROR' && !staleStatement(err);
}

function runNamed(connection: PgConnection, st: Statement, values: unknown[], timeoutMs: number): Promise<unknown[][]> {
  return new Promise<unknown[][]>((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    if (timeoutMs > 0) {
      timer = setTimeout(() => {
        reject(new DirectoryError(`directory query: directory database unavailable: no answer within ${timeoutMs} ms`, 'unavailable'));
      }, timeoutMs);
    }
    connection.query({ name: st.name, text: st.text, values, rowMode: 'array' }, (err, res) => {
      if (timer !== undefined) clearTimeout(timer);
      if (err) reject(err); else resolve(res.rows);
    });
  });
}

/**
 * `pg`: named prepared statements on knex's pool. A query not answered within `timeoutMs` (0 = no
 * limit) fails as unavailable. Its connection, like one that broke, is marked for knex's pool to
 * destroy instead of handing it out again, so the pool reconnects after a server restart. A
 * statement the session lost is prepared again on a new connection (once).
 */
export function pgExecute(knex: Knex, timeoutMs: number): Execute {
  const client = knex.client as KnexClient;
  return async (st, values) => {
    for (let attempt = 0; ; attempt++) {
      const connection = await acquire(client) as PgConnection;
      try {
        return await runNamed(connection, st, values, timeoutMs);
      } catch (err) {
        if (!sessionSurvives(err)) connection.__knex__disposed ??= err;
        if (attempt === 0 && staleStatement(err)) continue;
        throw toDirectoryError(err);
      } finally {
        release(client, connection);
      }
    }
  };
}

/** knex-pglite: the in-process database on its single pooled connection (parsing is cheap there). */
export function pgliteExecute(knex: Knex): Execute {
  const client = knex.client as KnexClient;
  return async (st, values) => {
    const connection = await acquire(client) as PgliteConnection;
    try {
      return (await connection.query(st.text, values, { rowMode: 'array' })).rows;
    } catch (err) {
      throw toDirectoryError(err);
    } finally {
      release(client, connection);
    }
  };
}

/** True when knex runs on knex-pglite (its client holds the PGlite instance). */
export function isPgliteClient(knex: Knex): boolean {
  const pglite = (knex.client as KnexClient).pglite as { query?: unknown } | undefined;
  return typeof pglite?.query === 'function';
}
