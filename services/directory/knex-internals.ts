/**
 * Every use the directory makes of knex's undocumented internals, in one place.
 *
 * Why: prepared execution (execute.ts) and coalescing (coalesce.ts) run statements on knex's own
 * pooled connections, bypassing its query runner, which costs more CPU than the query itself on
 * the REGISTER path. That needs `knex.client` (typed `any` in knex's declarations): the pool
 * (acquireConnection / releaseConnection), the driver connection objects (`pg`'s Client, PGlite),
 * the client's configuration, and knex's "do not reuse this connection" mark. Kept here so that a
 * knex upgrade has one file to check; nothing else in services/directory touches `knex.client`.
 * (Building SQL uses knex's public API only: build.ts, `toSQL().toNative()`.)
 *
 * Contract: `acquire` returns a connection of the pool or throws a DirectoryError ('unavailable'
 * when the pool cannot give one); every acquired connection goes back through `release`, which
 * never throws (after knex.destroy() the pool is gone and the connection with it). A `pg`
 * connection whose session may be broken is marked with `discard` before release: knex's pool
 * validator destroys it instead of handing it out again.
 *
 * Limits: tested with knex 3.x, `pg` 8.x and knex-pglite 0.14 (the `pglite` property of its client).
 */
import type { Knex } from 'knex';
import { toDirectoryError } from './errors';

/** What the directory needs of `knex.client`. */
interface KnexClient {
  acquireConnection(): Promise<unknown>;
  releaseConnection(connection: unknown): Promise<void>;
  /** knex-pglite: the PGlite instance. */
  pglite?: { query?: unknown };
  config?: { client?: unknown; postProcessResponse?: unknown; connection?: unknown };
}

/** A `pg` Client as knex's pool holds it. */
export interface PgConnection {
  query(config: { name?: string; text: string; values: unknown[]; rowMode: 'array' }, callback: (err: Error | null, res: { rows: unknown[][] }) => void): void;
  /** knex's mark for "destroy instead of reusing" (its pool's validate checks it on acquire). */
  __knex__disposed?: unknown;
}

/** knex-pglite's connection: the PGlite instance itself. */
export interface PgliteConnection {
  query(text: string, values: unknown[], options: { rowMode: 'array' }): Promise<{ rows: unknown[][] }>;
}

const clientOf = (knex: Knex): KnexClient => knex.client as KnexClient;

/** True when the knex instance talks to PostgreSQL through `pg` (pooled, supports named statements). */
export function isPgClient(knex: Knex): boolean {
  const client = clientOf(knex).config?.client;
  return client === 'pg' || client === 'postgres' || client === 'postgresql';
}

/** The `application_name` a PostgreSQL pool's sessions carry (connect.ts), or null (PGlite, or none set). */
export function applicationNameOf(knex: Knex): string | null {
  const c = clientOf(knex).config?.connection as { application_name?: unknown } | undefined;
  return typeof c?.application_name === 'string' ? c.application_name : null;
}

/** True when knex runs on knex-pglite (its client holds the PGlite instance). */
export function isPgliteClient(knex: Knex): boolean {
  return typeof clientOf(knex).pglite?.query === 'function';
}

/** True when the knex instance rewrites results (`postProcessResponse`): only its own runner may run queries then. */
export function postProcessesResponses(knex: Knex): boolean {
  return Boolean(clientOf(knex).config?.postProcessResponse);
}

/** A connection of knex's pool (the pool's own acquire timeout applies); DirectoryError when none can be had. */
export async function acquire<C>(knex: Knex): Promise<C> {
  try {
    // looked up at each call: tests wrap the client's method to count acquisitions
    return (await clientOf(knex).acquireConnection()) as C;
  } catch (err) {
    throw toDirectoryError(err);
  }
}

/** Gives a connection back to knex's pool; never throws. */
export function release(knex: Knex, connection: unknown): void {
  try {
    void clientOf(knex)
      .releaseConnection(connection)
      .catch(() => undefined);
  } catch {
    /* pool destroyed */
  }
}

/** Marks a `pg` connection for knex's pool to destroy instead of reusing (its session may be broken). */
export function discard(connection: PgConnection, reason: unknown): void {
  connection.__knex__disposed ??= reason;
}

/** Runs one query on a `pg` connection (with a name: prepared once per connection), rows as arrays; `done` gets the outcome. */
export function pgQuery(
  connection: PgConnection,
  name: string | undefined,
  text: string,
  values: unknown[],
  done: (err: Error | null, rows?: unknown[][]) => void,
): void {
  connection.query({ name, text, values, rowMode: 'array' }, (err, res) => (err ? done(err) : done(null, res.rows)));
}

/** Runs one query on PGlite (knex-pglite's single connection), rows as arrays. */
export async function pgliteQuery(connection: PgliteConnection, text: string, values: unknown[]): Promise<unknown[][]> {
  return (await connection.query(text, values, { rowMode: 'array' })).rows;
}
