/**
 * The one batching primitive of the stores (group commit of location writes, services/location/
 * sql.ts and mongo.ts; coalesced directory reads, services/directory/coalesce.ts): concurrent
 * calls are coalesced into one batch (one statement, one commit) and every caller's promise
 * settles with ITS batch. Nagle-like, without timers by default:
 *
 *   - a call is queued; at the end of the current synchronous job (one microtask later, so calls
 *     made in the same tick join), if fewer than `maxInFlight` batches are running, everything
 *     queued is sent now as one batch (at most `maxBatch` calls per batch);
 *   - otherwise the calls wait, and when a running batch completes, everything queued by then is
 *     sent as the next batch.
 *
 * Nothing is deferred for the sake of batching: an idle store sends a call at once; batches only
 * grow while the store is busy, i.e. exactly when one statement for many calls pays.
 *
 * `lingerMs` (a commit delay, as PostgreSQL's `commit_delay`) is for a store whose every statement
 * costs far more than a row of it, and costs the caller's own thread: PGlite, the embedded
 * database, spends about 0.5 ms on a statement of one row and 0.05 ms a row in one of 64, in the
 * thread that also receives the SIP traffic (docs/performance.md, "The embedded default"). With it,
 * a call queued while no batch is running starts a timer, and what is queued goes when the timer
 * fires or as soon as `maxBatch` calls wait, whichever comes first. While a batch runs nothing
 * lingers: calls go, or queue and go when one completes, as without it, so a busy store batches by
 * its own pace and adds no wait. So a call waits at most `lingerMs` more than it would have, and at
 * 500 calls/s five of them share a statement where each had its own.
 *
 * With `key`, calls with the same key are never in two running batches at once, and a later call
 * never overtakes an earlier one with the same key: a batch holds the calls of a key that were
 * queued when it was formed, and the batch function keeps the last of them (e.g. by ruid, which
 * also keeps PostgreSQL's ON CONFLICT DO UPDATE from touching a row twice in one statement).
 *
 * Contract of `run`: it gets the batch's items in submission order and resolves to exactly one
 * result per item, in the same order; a rejection (or a thrown error, or a result array of the
 * wrong length) rejects every call of that batch and only them. Per-item failures are the batch
 * function's to express in R (coalesce.ts resolves to `{ rows } | { error }`). Limits: no timers,
 * so nothing waits for company while the store is idle; no cancellation; the queue is unbounded
 * (callers bound it: a SIP request waits at most its transaction's lifetime).
 */

export interface BatcherOptions<T, R> {
  /** Sends one batch; resolves to one result per call, in order. A rejection rejects every call in the batch. */
  run: (items: T[]) => Promise<R[]>;
  /** Batches running at once (default 4). */
  maxInFlight?: number;
  /** Calls per batch at most (default 500). */
  maxBatch?: number;
  /** Calls with the same key keep their order across batches (see above). */
  key?: (item: T) => string;
  /** How long the first call queued waits for others before its batch goes (default 0: at once; see above). */
  lingerMs?: number;
}

export interface Batcher<T, R> {
  /** Queues one call; settles when the batch holding it has completed. */
  submit(item: T): Promise<R>;
  /** Batches running now. */
  readonly inFlight: number;
  /** Calls waiting for a batch. */
  readonly queued: number;
}

interface Pending<T, R> {
  item: T;
  key: string | undefined;
  resolve: (r: R) => void;
  reject: (e: unknown) => void;
}

export function createBatcher<T, R>(opts: BatcherOptions<T, R>): Batcher<T, R> {
  const maxInFlight = Math.max(1, opts.maxInFlight ?? 4);
  const maxBatch = Math.max(1, opts.maxBatch ?? 500);
  const keyOf = opts.key;
  const lingerMs = opts.lingerMs ?? 0;
  if (!(lingerMs >= 0 && lingerMs <= 60_000)) throw new RangeError(`a batcher's lingerMs must be 0 to 60000, not ${opts.lingerMs}`);
  let queue: Pending<T, R>[] = [];
  let inFlight = 0;
  let scheduled = false;
  /** What is queued may go: it waited lingerMs, or came while a batch ran, or nothing lingers. */
  let due = lingerMs === 0;
  /** The timer that makes what is queued due (lingerMs > 0), or null. */
  let lingering: NodeJS.Timeout | null = null;
  /** Keys held by running batches. */
  const busy = new Set<string>();

  function linger(): void {
    lingering ??= setTimeout(() => {
      lingering = null;
      due = true;
      pump();
    }, lingerMs);
  }

  function schedule(): void {
    if (inFlight > 0)
      due = true; // the store is at work: batches grow as without lingering
    else if (!due && queue.length < maxBatch) {
      linger(); // the first call of a quiet spell waits for company; the rest join it
      return;
    }
    if (scheduled) return;
    scheduled = true;
    queueMicrotask(() => {
      scheduled = false;
      pump();
    });
  }

  /** The next batch: queued calls in order, skipping (and keeping queued) those whose key is busy. */
  function take(): Pending<T, R>[] {
    if (!keyOf || busy.size === 0) {
      const batch = queue.length <= maxBatch ? queue : queue.slice(0, maxBatch);
      queue = queue.length <= maxBatch ? [] : queue.slice(maxBatch);
      return batch;
    }
    const batch: Pending<T, R>[] = [];
    const rest: Pending<T, R>[] = [];
    for (const p of queue) {
      if (batch.length < maxBatch && !busy.has(p.key!)) batch.push(p);
      else rest.push(p);
    }
    queue = rest;
    return batch;
  }

  function pump(): void {
    while (inFlight < maxInFlight && queue.length > 0) {
      if (!due && inFlight === 0 && queue.length < maxBatch) break; // lingering: a full batch goes, the rest waits
      const batch = take();
      if (batch.length === 0) break; // everything queued waits for a running batch's keys
      launch(batch);
    }
    if (lingerMs === 0) return;
    if (queue.length > 0) {
      if (inFlight > 0)
        due = true; // held back by the batches running: they go when one completes
      else if (!due) linger();
      return;
    }
    due = false;
    if (lingering !== null) {
      clearTimeout(lingering);
      lingering = null;
    }
  }

  function launch(batch: Pending<T, R>[]): void {
    inFlight++;
    const keys: string[] = [];
    if (keyOf) {
      for (const p of batch)
        if (!busy.has(p.key!)) {
          busy.add(p.key!);
          keys.push(p.key!);
        }
    }
    // A call whose key was taken in this batch while the batch was full stays queued, and must
    // not overtake: `take` skips busy keys, so it waits for this batch.
    Promise.resolve()
      .then(() => opts.run(batch.map((p) => p.item)))
      .then(
        (results) => {
          if (!Array.isArray(results) || results.length !== batch.length) {
            const e = new Error(`batch returned ${Array.isArray(results) ? results.length : typeof results} results for ${batch.length} calls`);
            for (const p of batch) p.reject(e);
          } else {
            for (let i = 0; i < batch.length; i++) batch[i].resolve(results[i]);
          }
        },
        (e: unknown) => {
          for (const p of batch) p.reject(e);
        },
      )
      .finally(() => {
        inFlight--;
        for (const k of keys) busy.delete(k);
        pump();
      });
  }

  return {
    submit(item) {
      return new Promise<R>((resolve, reject) => {
        queue.push({ item, key: keyOf ? keyOf(item) : undefined, resolve, reject });
        schedule();
      });
    },
    get inFlight() {
      return inFlight;
    },
    get queued() {
      return queue.length;
    },
  };
}
