/**
 * Read-through cache in front of the directory adapter (`directory.cacheSec`).
 *
 * Every `query.queryDatabaseGeneric` read goes through it; a result is reused for `ttlMs`
 * (`negativeTtlMs`, shorter by default, for an empty result, so a subscriber added after a miss
 * shows up soon). The key is built by plain string concatenation of the query's shape and its
 * resolved values (no JSON walk of the whole query). The table is an lru-cache: at most
 * `maxEntries`, least recently used dropped first, each entry with its own TTL, memory growing with
 * the entries held (engine/lru.ts). Concurrent misses for
 * the same key share one database round trip (`pending`, an in-flight table, not a cache). Errors
 * are never cached.
 *
 * Invalidation: `invalidate()` empties the cache. The runtime subscribes it to the process's
 * directory change feed (services/directory/changes.ts), which the write paths notify explicitly
 * (HTTP API customer/number routes and import, through `Subscribers`); SIP worker threads get the
 * same notification as a control message. `refreshSchema()` invalidates too. Writes made by other
 * processes or instances (the CLI, another server) are seen when the entry expires (the TTL is the
 * staleness bound).
 *
 * Rows handed out are shared between callers and frozen: a caller cannot alter what the next one
 * reads.
 */
import { growingLru } from '../../engine/lru';
import type { RecordRow, Scalar } from '../../engine/types';
import type { Directory } from './query';
import type { DirectoryQuery, DirectorySchema } from './types';
import { flattened } from '../../engine/detached';

export interface DirectoryCacheOptions {
  /** How long a non-empty result is reused, in seconds (> 0). */
  ttlSec: number;
  /** How long an empty result is reused (default min(ttlSec, 5)). */
  negativeTtlSec?: number;
  /** Entries kept at most (default 100 000); the least recently used are dropped first. */
  maxEntries?: number;
  /** Clock in ms (tests). */
  now?: () => number;
}

export interface DirectoryCacheStats {
  hits: number;
  misses: number;
  size: number;
  invalidations: number;
}

export interface CachedDirectory extends Directory {
  /** Forgets every cached result (after a write to the directory). */
  invalidate(): void;
  stats(): DirectoryCacheStats;
}

export const DEFAULT_CACHE_MAX_ENTRIES = 100_000;
export const DEFAULT_NEGATIVE_TTL_SEC = 5;

const SEP = '\u0001';

function scalarKey(v: Scalar | Scalar[] | undefined): string {
  // typed, so that 1 and '1', null and 'null' stay different keys
  if (v === null || v === undefined) return 'n';
  switch (typeof v) {
    case 'string':
      return 's' + v;
    case 'number':
      return 'd' + v;
    case 'boolean':
      return v ? 't' : 'f';
    default:
      return 'j' + JSON.stringify(v);
  }
}

/** The shape part of a key: tables, fields, join type, logic, offset, limit, joins, order. */
function shapeKey(q: DirectoryQuery): string {
  let k = q.tables.join(',') + SEP + q.fields.join(',') + SEP + (q.joinType ?? '') + SEP + (q.logic ?? '') + SEP + (q.offset ?? '') + SEP + (q.limit ?? '');
  if (q.joins && q.joins.length) k += SEP + JSON.stringify(q.joins);
  if (q.orderBy && q.orderBy.length) k += SEP + JSON.stringify(q.orderBy);
  return k;
}

/**
 * The last shape keyed per `fields` array. The query node and the ownership rule build every query
 * of theirs around the same arrays (nodes/query-database.ts `base`, services/directory/ownership.ts),
 * so the shape is joined once, not per query. It is reused only when every part is equal, the
 * arrays element by element (a caller may build or change its arrays as it likes); a query with
 * joins or an order is keyed afresh every time.
 */
const shapes = new WeakMap<
  readonly string[],
  Pick<DirectoryQuery, 'joinType' | 'logic' | 'offset' | 'limit'> & { fields: string[]; tables: string[]; key: string }
>();

const sameList = (a: readonly string[], b: readonly string[]): boolean => {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
};

function memoShape(q: DirectoryQuery): string {
  if ((q.joins && q.joins.length) || (q.orderBy && q.orderBy.length)) return shapeKey(q);
  const m = shapes.get(q.fields);
  if (
    m !== undefined &&
    m.joinType === q.joinType &&
    m.logic === q.logic &&
    m.offset === q.offset &&
    m.limit === q.limit &&
    sameList(m.fields, q.fields) &&
    sameList(m.tables, q.tables)
  )
    return m.key;
  // flat: it outlives this query (and the request its values came from)
  const key = flattened(shapeKey(q));
  shapes.set(q.fields, { joinType: q.joinType, logic: q.logic, offset: q.offset, limit: q.limit, fields: [...q.fields], tables: [...q.tables], key });
  return key;
}

/** The cache key of a query: its shape (tables, fields, joins, …, condition fields/operators) and its values. */
export function directoryCacheKey(q: DirectoryQuery): string {
  let k = memoShape(q);
  const cs = q.conditions;
  if (cs) for (let i = 0; i < cs.length; i++) k += SEP + cs[i].field + SEP + cs[i].operator + SEP + scalarKey(cs[i].value);
  // one flat string: hashed once, and a kept key does not hold the request its values came from
  return flattened(k);
}

export function createCachedDirectory(inner: Directory, o: DirectoryCacheOptions): CachedDirectory {
  if (!(o.ttlSec > 0)) throw new Error('directory cache: ttlSec must be > 0');
  // lru-cache takes whole milliseconds
  const ttlMs = Math.max(1, Math.round(o.ttlSec * 1000));
  const negativeTtlMs = Math.max(1, Math.min(ttlMs, Math.round((o.negativeTtlSec ?? DEFAULT_NEGATIVE_TTL_SEC) * 1000)));
  const maxEntries = Math.max(1, o.maxEntries ?? DEFAULT_CACHE_MAX_ENTRIES);
  // ttlResolution 0: the clock is read on every lookup (no 1 ms debounce timer on the hot path, and
  // an injected clock is obeyed at once)
  const entries = growingLru<string, RecordRow[]>(maxEntries, {
    ttl: ttlMs,
    ttlResolution: 0,
    ...(o.now ? { perf: { now: o.now } } : {}),
  });
  const pending = new Map<string, Promise<RecordRow[]>>();
  let generation = 0;
  const counters = { hits: 0, misses: 0, invalidations: 0 };

  function store(key: string, rows: RecordRow[]): void {
    entries.set(key, rows, { ttl: rows.length === 0 ? negativeTtlMs : ttlMs });
  }

  function load(key: string, q: DirectoryQuery): Promise<RecordRow[]> {
    const gen = generation;
    const p = inner.query(q).then(
      (rows) => {
        for (const r of rows) Object.freeze(r);
        Object.freeze(rows);
        // a write invalidated the cache while this read was in flight: hand it out, do not keep it
        if (gen === generation) store(key, rows);
        if (pending.get(key) === p) pending.delete(key);
        return rows;
      },
      (err) => {
        if (pending.get(key) === p) pending.delete(key);
        throw err;
      },
    );
    pending.set(key, p);
    return p;
  }

  const cached: CachedDirectory = {
    query(q) {
      const key = directoryCacheKey(q);
      const rows = entries.get(key); // an expired entry reads as absent (and is dropped)
      if (rows !== undefined) {
        counters.hits++;
        return Promise.resolve(rows);
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
