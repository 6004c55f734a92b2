/**
 * The directory's change feed: how every cache of directory results learns that the data changed.
 *
 * Why: caches of directory reads (the read-through cache, cache.ts; the query node's `caching`,
 * nodes/query-database.ts; the SIP worker threads' own read-through caches) must forget what they
 * hold when a subscriber or number is written, and only then (a flow saved, a binding stored, are
 * not directory data). The write paths say so explicitly instead of the connection guessing it
 * from SQL text.
 *
 * Contract: a write path calls `changed()` after its write committed (also after a failed write,
 * which may have committed anyway: a spurious invalidation costs a few reads, a missed one serves
 * stale data). `changed()` bumps `revision` and calls every subscriber synchronously, in
 * subscription order. `revision` only grows; a cache compares the revision it filled at with the
 * current one (the query node) or subscribes (the read-through cache, the SIP threads' host).
 *
 * Who calls `changed()`: `Subscribers` and the HTTP API's `SubscribersAdmin` (customer and number
 * routes, CSV import), both built by the runtime with this feed (server/runtime.ts). In a SIP
 * worker thread a local feed is notified by the dispatching thread's `invalidate` control message
 * (server/sip-threads). Limits: per process. A write made by another process (the CLI, another
 * instance) is not seen: there the caches' TTL is the staleness bound.
 */

export class DirectoryChanges {
  private current = 0;
  private readonly listeners = new Set<() => void>();

  /** Bumped by every `changed()`. */
  get revision(): number {
    return this.current;
  }

  /** Tells every cache that the directory's data changed. */
  changed(): void {
    this.current++;
    for (const l of this.listeners) l();
  }

  /** Calls `listener` after each change; returns the unsubscribe function. */
  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }
}
