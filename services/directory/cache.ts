/**
 * Read-through cache in front of the directory adapter (`directory.cacheSec`).
 *
 * Every `query.queryDatabaseGeneric` read goes through it; a result is reused for `ttlMs`
 * (`negativeTtlMs`, shorter by default, for an empty result, so a subscriber added after a miss
 * shows up soon). The key is built by plain string concatenation of the query's shape and its
 * resolved values (no JSON walk of the whole query), and the table is bounded: past `maxEntries`
 * the oldest entries go first (insertion order). Concurrent misses for the same key share one
 * database round trip. Errors are never cached.
 *
 * Invalidation: `invalidate()` empties the cache; the runtime calls it whenever a write goes
 * through this process's directory connection (HTTP API, import), and `refreshSchema()` does too.
 * Writes made by other processes or instances are seen when the entry expires (the TTL is the
 * staleness bound).
 *
 * Rows handed out are shared between callers and frozen: a caller cannot alter what the next one
 * reads.
 */
import type { RecordRow, Scalar } from '../../engine/types';
import type { Directory } from './query';
import type { DirectoryQuery, DirectorySchema } from './types';
import { flattened } from '../../engine/detached';

export interface DirectoryCacheOptions {
  /** How long a non-empty result is reused, in seconds (> 0). */
  ttlSec: number;
  /** How long an empty result is reused (default min(ttlSec, 5)). */
  negativeTtlSec?: number;
  /** Entries kept at most (default 100 000); the oldest are dropped first. */
  maxEntries?: number;
  /** Clock in ms (tests). */
  now?: () => number;
}

export interface DirectoryCacheStats { hits: number; misses: number; size: number; invalidations: number }

export interface CachedDirectory extends Directory {
  /** Forgets every cached result (after a write to the directory). */
  invalidate(): void;
  stats(): DirectoryCacheStats;
}

interface Entry { rows: RecordRow[]; until: number }

export const DEFAULT_CACHE_MAX_ENTRIES = 100_000;
export const DEFAULT_NEGATIVE_TTL_SEC = 5;

const SEP = '\u0001';

function scalarKey(v: Scalar | Scalar[] | undefined): string {
  // typed, so that 1 and '1', null and 'null' stay different keys
  if (v === null || v === undefined) return 'n';
  switch (typeof v) {
    case 'string': return 's' + v;
    case 'number': return 'd' + v;
    case 'boolean': return v ? 't' : 'f';
    default: return 'j' + JSON.stringify(v);
  }
}

/** The cache key of a query: its shape (tables, fields, joins, …, condition fields/operators) and its values. */
export function directoryCacheKey(q: DirectoryQuery): string {
  let k = q.tables.join(',') + SEP + q.fields.join(',') + SEP + (q.joinType ?? '') + SEP + (q.logic ?? '') + SEP +
    (q.offset ?? '') + SEP + (q.limit ?? '');
  if (q.joins && q.joins.length) k += SEP + JSON.stringify(q.joins);
  if (q.orderBy && q.orderBy.length) k += SEP + JSON.stringify(q.orderBy);
  const cs = q.conditions;
  if (cs) for (let i = 0; i < cs.length; i++) k += SEP + cs[i].field + SEP + cs[i].operator + SEP + scalarKey(cs[i].value);
  // one flat string: hashed once, and a kept key does not hold the request its values came from
  return flattened(k);
}

export function createCachedDirectory(inner: Directory, o: DirectoryCacheOptions): CachedDirectory {
  if (!(o.ttlSec > 0)) throw new Error('directory cache: ttlSec must be > 0');
  const ttlMs = o.ttlSec * 1000;
  const negativeTtlMs = Math.min(ttlMs, (o.negativeTtlSec ?? DEFAULT_NEGATIVE_TTL_SEC) * 1000);
  const maxEntries = Math.max(1, o.maxEntries ?? DEFAULT_CACHE_MAX_ENTRIES);
  const now = o.now ?? Date.now;
  const entries = new Map<string, Entry>();
  const pending = new Map<string, Promise<RecordRow[]>>();
  let generation = 0;
  const counters = { hits: 0, misses: 0, invalidations: 0 };

  function store(key: string, rows: RecordRow[]): void {
    entries.delete(key);  // re-inserted at the end: the newest entry
    if (entries.size >= maxEntries) {
      // drop the oldest: expired ones first in practice, since every entry lives the same TTL
      const it = entries.keys();
      for (let n = entries.size - maxEntries + 1; n > 0; n--) entries.delete(it.next().value as string);
    }
    entries.set(key, { rows, until: now() + (rows.length === 0 ? negativeTtlMs : ttlMs) });
  }

  function load(key: string, q: DirectoryQuery): Promise<RecordRow[]> {
    const gen = generation;
    const p = inner.query(q).then((rows) => {
      for (const r of rows) Object.freeze(r);
      Object.freeze(rows);
      // a write invalidated the cache while this read was in flight: hand it out, do not keep it
      if (gen === generation) store(key, rows);
      if (pending.get(key) === p) pending.delete(key);
      return rows;
    }, (err) => {
      if (pending.get(key) === p) pending.delete(key);
      throw err;
    });
    pending.set(key, p);
    return p;
  }

  const cached: CachedDirectory = {
    query(q) {
      const key = directoryCacheKey(q);
      const e = entries.get(key);
      if (e !== undefined) {
        if (e.until > now()) { counters.hits++; return Promise.resolve(e.rows); }
        entries.delete(key);
      }
      counters.misses++;
      return pending.get(key) ?? load(key, q);
    },
    schema: (): Promise<DirectorySchema> => inner.schema(),
    async refreshSchema() {
      cached.invalidate();
      return inner.refreshSchema();
    },
    invalidate() {
      generation++;
      counters.invalidations++;
      entries.clear();
      pending.clear();
    },
    stats: () => ({ ...counters, size: entries.size }),
    close: () => inner.close(),
  };
  return cached;
}
