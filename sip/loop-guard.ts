/**
 * SRE's loop guard: more than N occurrences of the same calling/called/call-id (and, when
 * enabled, of the same calling/called) within a window → 482 Loop Detected.
 *
 * Counted once per new request (retransmissions are absorbed by the transaction layer first,
 * and the restarts after authentication are not new messages), so the defaults (10 in 5 s per
 * call-id key) leave room for REGISTER → 401 → REGISTER and for a few re-INVITEs.
 *
 * Fixed windows per key, checked here against the `now` the caller passes. The table is a Map,
 * whose iteration order is insertion order: a key whose window ended is deleted and set again, so
 * that order is the windows' start order. The periodic sweep drops expired entries from the oldest
 * end only, and past `maxKeys` the oldest window is dropped first. (It was an lru-cache read with
 * peek(), which never used its recency: that cost a tenth of a µs more per request and allocated
 * its index arrays for `maxKeys` up front, ≈ 12 MB per counter at the default 500 000.)
 */
import { flattened } from '../engine/detached';

export interface LoopGuardOptions {
  /** Max occurrences of the same calling/called/call-id in the window; 0 disables (default 10). */
  maxPerCallId?: number;
  /** Window in seconds (default 5). */
  windowSec?: number;
  /** Max occurrences of the same calling/called (any call-id); 0 disables (default 0). */
  maxPerCallingCalled?: number;
  /** Window for calling/called (default 5). */
  callingCalledWindowSec?: number;
  /** Hard bound on tracked keys (default 500 000): past it the oldest are dropped. */
  maxKeys?: number;
}

interface Entry {
  start: number;
  count: number;
}

class WindowCounter {
  private readonly map = new Map<string, Entry>();
  private readonly maxKeys: number;
  constructor(
    private readonly max: number,
    private readonly windowMs: number,
    maxKeys: number,
  ) {
    this.maxKeys = Math.max(1, maxKeys);
  }

  /** Counts one occurrence; true when the key is now over the limit. */
  hit(key: string, now: number): boolean {
    let e = this.map.get(key);
    if (e === undefined || now - e.start >= this.windowMs) {
      if (e !== undefined) this.map.delete(key);
      else if (this.map.size >= this.maxKeys) this.map.delete(this.map.keys().next().value as string); // the oldest window
      e = { start: now, count: 0 };
      this.map.set(key, e);
    }
    return ++e.count > this.max;
  }

  sweep(now: number): void {
    for (const [k, e] of this.map) {
      if (now - e.start < this.windowMs) break;
      this.map.delete(k); // deleting the entry just visited leaves a Map's iteration on course
    }
  }

  get size(): number {
    return this.map.size;
  }
}

export class LoopGuard {
  private readonly perCallId: WindowCounter | null;
  private readonly perPair: WindowCounter | null;
  private readonly timer: NodeJS.Timeout;

  constructor(o: LoopGuardOptions = {}) {
    const maxKeys = o.maxKeys ?? 500_000;
    const n = o.maxPerCallId ?? 10;
    const m = o.maxPerCallingCalled ?? 0;
    this.perCallId = n > 0 ? new WindowCounter(n, (o.windowSec ?? 5) * 1000, maxKeys) : null;
    this.perPair = m > 0 ? new WindowCounter(m, (o.callingCalledWindowSec ?? 5) * 1000, maxKeys) : null;
    this.timer = setInterval(() => {
      const now = Date.now();
      this.perCallId?.sweep(now);
      this.perPair?.sweep(now);
    }, 1000);
    this.timer.unref();
  }

  get tracked(): number {
    return (this.perCallId?.size ?? 0) + (this.perPair?.size ?? 0);
  }

  /** Counts a new request; true when it must be answered 482 Loop Detected. */
  check(calling: string, called: string, callId: string, now: number): boolean {
    let loop = false;
    // keys live for the window: flattened, so they do not keep the request's text alive
    if (this.perCallId !== null && this.perCallId.hit(flattened(calling + '\x00' + called + '\x00' + callId), now)) loop = true;
    if (this.perPair !== null && this.perPair.hit(flattened(calling + '\x00' + called), now)) loop = true;
    return loop;
  }

  close(): void {
    clearInterval(this.timer);
  }
}
