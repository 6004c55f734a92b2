/**
 * An lru-cache bounded by its number of entries whose index grows with use. Given `max`,
 * lru-cache allocates its key, value and link arrays (and TTL arrays) for `max` entries up front:
 * ≈ 2.4 MB per table at 100 000 entries, per table and per SIP thread, held by tables that stay
 * nearly empty in normal operation (the guard's five, the proxy's dialogs, the directory cache).
 * Counting every entry as size 1 against `maxSize` bounds the count the same way while lru-cache
 * grows plain arrays as entries arrive.
 */
import { LRUCache } from 'lru-cache';

const ONE = (): number => 1;

/** Options of LRUCache other than the bounds this sets. */
export type GrowingLruOptions<K extends NonNullable<unknown>, V extends NonNullable<unknown>> = Omit<
  LRUCache.Options<K, V, unknown>,
  'max' | 'maxSize' | 'sizeCalculation' | 'maxEntrySize'
>;

/** At most `max` entries (least recently used evicted first), memory in proportion to the entries held. */
export function growingLru<K extends NonNullable<unknown>, V extends NonNullable<unknown>>(max: number, options: GrowingLruOptions<K, V> = {}): LRUCache<K, V> {
  if (!(max >= 1)) throw new Error(`a cache needs room for at least one entry (max ${max})`);
  return new LRUCache<K, V>({ ...options, maxSize: max, sizeCalculation: ONE } as LRUCache.Options<K, V, unknown>);
}
