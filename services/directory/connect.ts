/**
 * Opens the directory database from a URL: embedded PGlite (in memory or persisted to a data
 * directory) or a production PostgreSQL server. Both speak the same SQL, so migrations and
 * queries are shared.
 */
import * as fs from 'fs';
import { randomBytes } from 'crypto';
import knexFactory, { Knex } from 'knex';
import { parseDirectoryUrl } from './url';

export { maskPassword, parseDirectoryUrl, type DirectoryTarget } from './url';

export interface OpenDirectoryOptions {
  /** Max pooled connections to PostgreSQL (PGlite is always a single connection). Default 10. */
  poolMax?: number;
  /** How long a query may wait for a free pooled connection before failing, in ms. Default 10000. */
  acquireTimeoutMs?: number;
  /**
   * PostgreSQL `application_name` of this pool's sessions (default `sipflow/<pid>/<random>`, one
   * per pool): pg_stat_activity, the start-up lock's log lines and the location change
   * notifications (services/location/sql-changes.ts) tell instances apart by it.
   */
  applicationName?: string;
}

/** A fresh `application_name` (at most 63 bytes, PostgreSQL's limit): `sipflow/<pid>/<6 hex>`. */
export const newApplicationName = (): string => `sipflow/${process.pid}/${randomBytes(3).toString('hex')}`;

/** Returns a knex instance on the directory database named by `url`. */
export function openDirectory(url: string, options: OpenDirectoryOptions = {}): Knex {
  const target = parseDirectoryUrl(url);
  if (target.kind === 'postgres') {
    return knexFactory({
      client: 'pg',
      connection: { connectionString: target.url, application_name: options.applicationName ?? newApplicationName() } as Knex.PgConnectionConfig,
      // min 0: an idle instance holds no connections, and a restarted server is reconnected lazily.
      pool: { min: 0, max: options.poolMax ?? 10 },
      acquireConnectionTimeout: options.acquireTimeoutMs ?? 10_000,
    });
  }
  // PGlite's files hold the subscribers' passwords: owner only (the CLI also sets umask 0o077)
  if (target.kind === 'pglite-dir') fs.mkdirSync(target.dir, { recursive: true, mode: 0o700 });
  return knexFactory({
    // knex-pglite's module.exports is the client class; it forces a single connection itself.
    // Required here, not imported: only PGlite targets load it (and PGlite's WebAssembly).
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    client: require('knex-pglite'),
    dialect: 'postgres',
    connection: target.kind === 'pglite-dir' ? ({ filename: target.dir } as never) : { connectionString: 'memory://' },
    acquireConnectionTimeout: options.acquireTimeoutMs ?? 10_000,
  } as Knex.Config);
}

export { isPgClient } from './knex-internals';
