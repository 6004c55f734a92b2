/**
 * Failed authentications of one key (a source address or an auth username) in a sliding window:
 * the brute-force counters of the guard (guard.ts), as Kamailio's htable counters with an
 * expiry, fail2ban's `findtime` / `maxretry`, or IvozProvider's "100 failures" rule.
 *
 * Why a log of times and not a fixed bucket: a fixed bucket (count, reset every window) lets an
 * attacker spend 2 × limit - 2 guesses across a bucket edge without a ban, and an approximate
 * two-bucket estimate misses failures clustered at the end of the previous bucket. The log is
 * exact: `hit()` answers how many failures happened in the last `windowMs`, this one included.
 *
 * Layout: the times (ms, ascending) of the most recent failures, at most `cap` of them. The guard
 * passes its threshold as `cap`, so a key costs at most `cap` numbers (8 bytes each) and a hit is
 * O(cap) in the worst case (the oldest entries shifted out); the threshold is reached when the
 * `cap`-th most recent failure is still inside the window, so older ones are never needed.
 *
 * Concurrency: none. A window belongs to the thread that owns the guard (the main thread, which
 * receives every SIP thread's failures); workers never count.
 *
 * Limits: times come from the caller's clock (the guard's, injectable in tests); a clock that
 * goes back makes entries look younger (they are still dropped once older than the window).
 * How many keys are kept is the guard's business (its LRU tables), not this class's.
 */
export class FailureWindow {
  /** Failure times (ms), oldest first, at most `cap`. */
  private times: number[] = [];

  /**
   * Records one failure at `now` and answers how many failures fall in `(now - windowMs, now]`,
   * this one included (at most `cap`).
   */
  hit(now: number, windowMs: number, cap: number): number {
    this.prune(now, windowMs);
    this.times.push(now);
    const extra = this.times.length - Math.max(1, cap);
    if (extra > 0) this.times.splice(0, extra);
    return this.times.length;
  }

  /** Failures in `(now - windowMs, now]`. */
  count(now: number, windowMs: number): number {
    this.prune(now, windowMs);
    return this.times.length;
  }

  /** Time of the oldest failure still counted (after the last prune), or null. */
  get oldest(): number | null {
    return this.times.length ? this.times[0] : null;
  }

  clear(): void {
    this.times = [];
  }

  private prune(now: number, windowMs: number): void {
    const t = this.times;
    let i = 0;
    while (i < t.length && t[i] <= now - windowMs) i++;
    if (i > 0) t.splice(0, i);
  }
}

/**
 * A token bucket (the per-source request rate limit): `rate` tokens per second, at most `burst`
 * held. A request takes one token; none left = over rate. State is two numbers kept in the
 * caller's record (no object per source), refilled lazily at each take.
 */
export interface BucketState {
  tokens: number;
  last: number;
}

/** Takes one token at `now` (ms); false when the bucket is empty (the request is over rate). */
export function takeToken(b: BucketState, now: number, rate: number, burst: number): boolean {
  const elapsed = now - b.last;
  if (elapsed > 0) {
    b.tokens = Math.min(burst, b.tokens + (elapsed * rate) / 1000);
    b.last = now;
  }
  if (b.tokens >= 1) {
    b.tokens -= 1;
    return true;
  }
  return false;
}
