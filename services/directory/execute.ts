/**
 * Execution of compiled directory statements, and the Statement they run.
 *
 * Why: once a query shape is compiled (build.ts), a query of that shape only needs its bindings
 * put in order and the stored SQL run; going through knex's query builder and runner again for
 * every REGISTER cost more CPU than the database round trip.
 *
 * Contract:
 * - a Statement is SQL text with $1…$n exactly as knex positioned them, and for each $k where its
 *   value comes from (`sources`): a value of the query (index ≥ 0), the query's LIMIT or OFFSET,
 *   or a constant knex bound itself (the `1 = ?` of an empty `in`);
 * - `bindingsOf` puts one query's values in $k order;
 * - an Execute runs a Statement with those bindings and resolves to its rows, each an array of
 *   column values in select order; it rejects with a DirectoryError ('unavailable' when the
 *   database cannot answer, 'invalid' for a data error of the query) or the driver's error.
 *
 * On PostgreSQL (`pg`) a statement runs as a named prepared statement on a connection of knex's
 * pool (parsed once per connection), with a query timeout; on PGlite as a parameterised query on
 * its single connection. Limits: the connections are knex's (knex-internals.ts), so the pool's
 * size and acquire timeout apply; a statement the server lost (DEALLOCATE, a transaction pooler,
 * DDL) is prepared again on a fresh connection once.
 */
import { createHash } from 'crypto';
import type { Knex } from 'knex';
import type { RecordRow, Scalar } from '../../engine/types';
import { DirectoryError } from './types';
import { toDirectoryError } from './errors';
import { acquire, discard, pgliteQuery, pgQuery, release, type PgConnection, type PgliteConnection } from './knex-internals';

/**
 * Where a $k's value comes from (`Statement.sources`): index ≥ 0, the query's values[index];
 * SOURCE_LIMIT / SOURCE_OFFSET, the query's limit / offset; at or below SOURCE_FIRST_CONSTANT,
 * the constant `constantIndex(source)` of `Statement.constants`.
 */
export const SOURCE_LIMIT = -1;
export const SOURCE_OFFSET = -2;
export const SOURCE_FIRST_CONSTANT = -3;
export const constantSource = (index: number): number => SOURCE_FIRST_CONSTANT - index;
const constantIndex = (source: number): number => SOURCE_FIRST_CONSTANT - source;

export interface Statement {
  /** `sipflow_dir_` + sha1 of knex's SQL: the name the builder path gives the same SQL. */
  readonly name: string;
  /** The SQL with $1…$n, exactly as knex positions it. */
  readonly text: string;
  /** Where each $k comes from (see SOURCE_LIMIT). */
  readonly sources: readonly number[];
  readonly constants: readonly unknown[];
}

/** Runs a statement; resolves to its rows, one array of column values per row (select order). */
export type Execute = (st: Statement, bindings: unknown[]) => Promise<unknown[][]>;

/** Name of the prepared statement for knex's `?` form of a query (unchanged from the builder path). */
export function statementName(sql: string): string {
  return `sipflow_dir_${createHash('sha1').update(sql).digest('hex').slice(0, 24)}`;
}

/** The bindings of one query, in $k order. */
export function bindingsOf(st: Statement, values: readonly unknown[], limit: number | undefined, offset: number | undefined): unknown[] {
  const { sources, constants } = st;
  const out = new Array<unknown>(sources.length);
  for (let k = 0; k < sources.length; k++) {
    const s = sources[k];
    out[k] = s >= 0 ? values[s] : s === SOURCE_LIMIT ? limit : s === SOURCE_OFFSET ? offset : constants[constantIndex(s)];
  }
  return out;
}

/** Rows (arrays in select order) as the port's records, keyed by the flow's column references. */
export function recordsOf(rows: readonly unknown[][], refs: readonly string[]): RecordRow[] {
  const out = new Array<RecordRow>(rows.length);
  for (let r = 0; r < rows.length; r++) {
    const row = rows[r];
    const o: RecordRow = {};
    for (let i = 0; i < refs.length; i++) o[refs[i]] = toScalar(row[i]);
    out[r] = o;
  }
  return out;
}

/** A database value as a call-descriptor scalar. */
export function toScalar(v: unknown): Scalar {
  if (v === null || v === undefined) return null;
  if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return v;
  if (typeof v === 'bigint') return Number.isSafeInteger(Number(v)) ? Number(v) : v.toString();
  if (v instanceof Date) return v.toISOString();
  if (Buffer.isBuffer(v) || v instanceof Uint8Array) return Buffer.from(v).toString('base64');
  return JSON.stringify(v);
}

// ---------------------------------------------------------------- PostgreSQL (pg)

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

function runNamed(connection: PgConnection, st: Statement, values: unknown[], timeoutMs: number, what: string): Promise<unknown[][]> {
  return new Promise<unknown[][]>((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    if (timeoutMs > 0) {
      timer = setTimeout(() => {
        reject(new DirectoryError(`${what}: database unavailable: no answer within ${timeoutMs} ms`, 'unavailable'));
      }, timeoutMs);
    }
    pgQuery(connection, st.name, st.text, values, (err, rows) => {
      if (timer !== undefined) clearTimeout(timer);
      if (err) reject(err);
      else resolve(rows!);
    });
  });
}

/**
 * The connection itself failed (the server closed it, a socket error, a FATAL), as opposed to a
 * server-side ERROR or our own timeout: the statement may never have reached a live session.
 */
function connectionBroke(err: unknown): boolean {
  return !(err instanceof DirectoryError) && !sessionSurvives(err) && !staleStatement(err);
}

/** Lets the event loop poll I/O once: closes already queued on other sockets reach their connections. */
const ioTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * `pg`: named prepared statements on knex's pool. A query not answered within `timeoutMs` (0 = no
 * limit) fails as unavailable. Its connection, like one that broke, is marked for knex's pool to
 * destroy instead of handing it out again, so the pool reconnects after a server restart. A
 * statement the session lost is prepared again on a new connection (once).
 *
 * A connection that broke under the query is retried once on another, after one I/O turn. Why:
 * the pool learns that an idle connection died only when its socket's close is read; right after
 * a server restart the first queries can be handed connections whose close is queued but not yet
 * read (test/integration/directory/prepared.test.ts, "a PostgreSQL restart"), and each would
 * answer 503 although the server is back. The I/O turn lets every queued close mark its
 * connection, so the retry gets a live or a new one. Directory statements only read, so running
 * one again is safe (Kamailio's db_postgres retries the same way), as is the location's batched
 * upsert (services/location/sql.ts: the same rows with the same values, and no other batch holds
 * them meanwhile); a timeout is not retried (the server is slow, not gone), nor is an ERROR (it
 * would fail again). `what` names the statement in errors.
 */
export function pgExecute(knex: Knex, timeoutMs: number, what = 'directory query'): Execute {
  return async (st, values) => {
    for (let attempt = 0; ; attempt++) {
      const connection = await acquire<PgConnection>(knex);
      let failure: unknown;
      try {
        return await runNamed(connection, st, values, timeoutMs, what);
      } catch (err) {
        if (!sessionSurvives(err)) discard(connection, err);
        failure = err;
      } finally {
        release(knex, connection);
      }
      if (attempt === 0 && staleStatement(failure)) continue;
      if (attempt === 0 && connectionBroke(failure)) await ioTurn();
      else throw toDirectoryError(failure, what);
    }
  };
}

// ---------------------------------------------------------------- PGlite

/** knex-pglite: the in-process database on its single pooled connection (parsing is cheap there). */
export function pgliteExecute(knex: Knex, what = 'directory query'): Execute {
  return async (st, values) => {
    const connection = await acquire<PgliteConnection>(knex);
    try {
      return await pgliteQuery(connection, st.text, values);
    } catch (err) {
      throw toDirectoryError(err, what);
    } finally {
      release(knex, connection);
    }
  };
}
