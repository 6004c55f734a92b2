/**
 * Opens the directory database from a URL: embedded PGlite (in memory or persisted to a data
 * directory) or a production PostgreSQL server. Both speak the same SQL, so migrations and
 * queries are shared.
 */
import * as fs from 'fs';
import * as path from 'path';
import { randomBytes } from 'crypto';
import knexFactory, { Knex } from 'knex';

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

export type DirectoryTarget = { kind: 'pglite-memory' } | { kind: 'pglite-dir'; dir: string } | { kind: 'postgres'; url: string };

/** Classifies a directory URL; throws a helpful error (password masked) for anything unsupported. */
export function parseDirectoryUrl(url: string): DirectoryTarget {
  const u = url.trim();
  if (u === 'memory://' || u === 'pglite:memory://' || u === 'memory') return { kind: 'pglite-memory' };
  if (/^postgres(ql)?:\/\//i.test(u)) return { kind: 'postgres', url: u };
  if (/^pglite:/i.test(u)) return pgliteDir(u.slice('pglite:'.length), url);
  if (/^file:\/\//i.test(u)) return pgliteDir(decodeURIComponent(u.slice('file://'.length)), url);
  // Anything with a URL scheme other than the above is a mistake; bare paths (incl. C:\…) are directories.
  if (/^[a-z][a-z0-9+.-]*:/i.test(u) && !/^[a-z]:[\\/]/i.test(u)) {
    throw new Error(
      `unsupported directory URL "${maskPassword(u)}": use memory://, a data directory path ` +
        '(or pglite:<dir>), or postgres://user:password@host:port/database',
    );
  }
  return pgliteDir(u, url);
}

function pgliteDir(dir: string, original: string): DirectoryTarget {
  if (dir.trim() === '') throw new Error(`directory URL "${maskPassword(original)}" names no data directory`);
  if (dir === 'memory://') return { kind: 'pglite-memory' };
  return { kind: 'pglite-dir', dir: path.resolve(dir) };
}

/** Replaces the password of `scheme://user:password@host` so URLs can appear in messages and logs. */
export function maskPassword(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/@]*:)[^@]*@/i, '$1***@');
}

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
