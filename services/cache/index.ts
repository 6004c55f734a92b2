/**
 * The instance cache behind action.cacheSet / query.cacheGet (engine/ports.ts CachePort).
 *
 * Why: a logic keeps a value for a while (an HTTP routing answer, a counter, a token) and every
 * SIP thread of the instance must see it. One table lives in the dispatching thread (created by
 * server/runtime.ts); SIP worker threads reach it over their store calls ('cache.get',
 * 'cache.set': server/sip-threads/protocol.ts), so all threads share it. `sipflow run` gets a
 * table of its own (one process, one run).
 *
 * Layout: an lru-cache keyed by the logic's key text. Values are scalars (a list is stored as its
 * JSON text by the node). Each entry is gone once more than `ttlSec` have passed since it was set (lru-cache's own TTL,
 * checked when read; the clock is injectable for tests).
 *
 * Limits: `maxEntries` entries (least recently used dropped first), a value's text at most
 * `maxValueBytes` UTF-8 bytes, a key at most MAX_KEY_BYTES, and all of them together at most
 * `maxTotalBytes` (keys + values). A set over a cap stores nothing and removes the key's previous
 * value (a later get finds nothing, never an older value), and answers false. Keys are one
 * namespace for the whole instance: logics share keys by building the same text.
 */
import { LRUCache } from 'lru-cache';
import type { CachePort, Scalar } from '../../engine/ports';

/** Longest key (UTF-8 bytes): keys are built from a logic's template and message values. */
export const MAX_KEY_BYTES = 1024;

export interface InstanceCacheOptions {
  /** Entries kept at most (default 100 000, `nodes.cache.maxEntries`). */
  maxEntries?: number;
  /** Longest value, UTF-8 bytes of its text (default 65 536, `nodes.cache.maxValueBytes`). */
  maxValueBytes?: number;
  /** Keys and values together, bytes (default 64 MiB, `nodes.cache.maxTotalBytes`). */
  maxTotalBytes?: number;
  /** Milliseconds clock of the TTLs (default performance.now via lru-cache). */
  now?: () => number;
}

export interface InstanceCache extends CachePort {
  /** Entries held now (expired ones not yet read included). */
  readonly size: number;
}

/** Bytes an entry costs: its key and its value's text, plus a fixed overhead for small ones. */
const ENTRY_OVERHEAD = 64;
const textBytes = (v: Scalar): number => (typeof v === 'string' ? Buffer.byteLength(v) : 8);

export function createInstanceCache(o: InstanceCacheOptions = {}): InstanceCache {
  const maxValueBytes = o.maxValueBytes ?? 65_536;
  const maxTotalBytes = o.maxTotalBytes ?? 64 * 1024 * 1024;
  // values are boxed: lru-cache holds no null
  const table = new LRUCache<string, { v: Scalar }>({
    max: o.maxEntries ?? 100_000,
    maxSize: maxTotalBytes,
    sizeCalculation: (entry, key) => ENTRY_OVERHEAD + Buffer.byteLength(key) + textBytes(entry.v),
    ttlAutopurge: false,
    ...(o.now ? { perf: { now: o.now }, ttlResolution: 0 } : {}),
  });
  return {
    get size() {
      return table.size;
    },
    async get(key) {
      return table.get(key)?.v;
    },
    async set(key, value, ttlSec) {
      const keyBytes = Buffer.byteLength(key);
      if (keyBytes > MAX_KEY_BYTES || textBytes(value) > maxValueBytes || ENTRY_OVERHEAD + keyBytes + textBytes(value) > maxTotalBytes) {
        table.delete(key);
        return false;
      }
      table.set(key, { v: value }, { ttl: Math.max(1, Math.round(ttlSec * 1000)) });
      return true;
    },
  };
}

/**
 * A cache for dry runs (the designer's simulator): sets go to a private table that lives as long
 * as the run, gets read it first and the instance cache otherwise, so a simulated cacheSet never
 * changes what live calls read. The private table applies the size caps of `live` by asking it
 * nothing: a value is kept as set (one run writes a handful of keys).
 */
export function dryRunCache(live: CachePort | undefined): CachePort {
  const own = new Map<string, Scalar>();
  return {
    async get(key) {
      return own.has(key) ? own.get(key) : live?.get(key);
    },
    async set(key, value) {
      own.set(key, value);
      return true;
    },
  };
}
