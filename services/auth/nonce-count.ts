/**
 * Replay protection by nonce-count (RFC 7616 §3.4, §5.12): per key (the caller uses nonce +
 * username), the highest nc accepted.
 *
 * In memory and per thread (SharedNonceCounter, shared-nonce-count.ts, shares one table between
 * the threads of a process): nonces are stateless, so a replay sent to *another* instance is
 * only bounded by the nonce lifetime. Entries die with their nonce (an expired nonce is answered
 * `stale` before its count is ever consulted) and the table is capped, oldest first-use evicted.
 *
 * The table is a Map of at most `maxEntries` in first-use order: an entry is never refreshed (a
 * later nc updates it in place), so insertion order is the eviction order and no LRU bookkeeping
 * is needed (an lru-cache here cost a tenth of a REGISTER's verify, and allocated its index for
 * `maxEntries` up front). Expiry is each entry's own `expiresAt` against the `now` the caller
 * passes: expired entries are dropped from the oldest end on each record(), and all of them
 * before a live one is evicted. An entry dropped for room raises `evictedUpTo`, one that expired
 * does not.
 */
import { detached } from '../../engine/detached';

/** `nc` null = no qop (RFC 2069 mode): the nonce may be used once only. */
export type CountCheck = 'fresh' | 'replay' | 'forgotten';

/**
 * A nonce-count table: NonceCounter (this thread only) or SharedNonceCounter (every thread of the
 * process, shared-nonce-count.ts).
 */
export interface NonceCountTable {
  /** Would this nc be acceptable? Does not record it (record only after the response verified). */
  check(key: string, nc: number | null, issuedAt: number): CountCheck;
  /**
   * Records the use if it is still 'fresh' and returns what check() answers at this instant:
   * with tables shared by threads, anything but 'fresh' means another thread recorded first.
   */
  record(key: string, nc: number | null, issuedAt: number, expiresAt: number, now: number): CountCheck;
}

interface Entry {
  nc: number;
  issuedAt: number;
  expiresAt: number;
}

export const DEFAULT_MAX_TRACKED_NONCES = 100_000;

export class NonceCounter implements NonceCountTable {
  /** In first-use order (oldest first). */
  private readonly entries = new Map<string, Entry>();
  /**
   * Highest issue time among entries evicted by the cap. A nonce issued at or before it with no
   * entry may have been seen already, so its count is unknown: report 'forgotten' instead of
   * accepting a possible replay (the caller answers stale, and the UA retries with a new nonce).
   */
  private evictedUpTo = -Infinity;

  constructor(private readonly maxEntries = DEFAULT_MAX_TRACKED_NONCES) {
    if (!(maxEntries >= 1)) throw new Error('maxTrackedNonces must be at least 1');
  }

  get size(): number {
    return this.entries.size;
  }

  /** Would this nc be acceptable? Does not record it (record only after the response verified). */
  check(nonce: string, nc: number | null, issuedAt: number): CountCheck {
    const e = this.entries.get(nonce);
    if (!e) return issuedAt <= this.evictedUpTo ? 'forgotten' : 'fresh';
    if (nc === null) return 'replay'; // already used (with or without qop)
    return nc > e.nc ? 'fresh' : 'replay';
  }

  record(nonce: string, nc: number | null, issuedAt: number, expiresAt: number, now: number): CountCheck {
    // Single thread: the caller's check() just answered, so this is 'fresh' when used as intended.
    const result = this.check(nonce, nc, issuedAt);
    if (result !== 'fresh') return result;
    // A no-qop use consumes the nonce for good; mixing modes on one nonce is then refused too.
    const value = nc === null ? Infinity : nc;
    const e = this.entries.get(nonce);
    if (e) {
      e.nc = Math.max(e.nc, value);
      return result;
    }
    this.dropExpired(now, false);
    // full: expired entries go before a live one is evicted
    if (this.entries.size >= this.maxEntries) this.dropExpired(now, true);
    if (this.entries.size >= this.maxEntries) this.evictOldest();
    // kept for the nonce's lifetime: detached from the request's Authorization header
    this.entries.set(detached(nonce), { nc: value, issuedAt, expiresAt });
    return result;
  }

  /** Drops expired entries: from the oldest end only (amortised O(1)), or all of them when `full`. */
  private dropExpired(now: number, full: boolean): void {
    for (const [key, e] of this.entries) {
      if (now > e.expiresAt) this.entries.delete(key);
      else if (!full) break;
    }
  }

  /** Drops the oldest live entry for room: its count is then unknown (see evictedUpTo). */
  private evictOldest(): void {
    for (const [key, e] of this.entries) {
      this.entries.delete(key);
      this.evictedUpTo = Math.max(this.evictedUpTo, e.issuedAt);
      return;
    }
  }
}
