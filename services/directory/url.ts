/**
 * What a directory URL names (embedded PGlite in memory or in a data directory, or a PostgreSQL
 * server), apart from opening it (connect.ts): the configuration asks it too, without loading knex.
 */
import * as path from 'path';

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
