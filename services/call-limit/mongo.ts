/**
 * Call limits shared by every instance on the MongoDB location database (`callLimit.store:
 * database` with a mongodb:// location), collection `sipflow_call_limits`.
 *
 * Layout: a key's state is a chain of versions, one document each, `{ _id: JSON [key, version],
 * k: key, v: version, t: written at, calls: [{ h: holder, e: expires ms }], starts: [ms] }` (starts: the rate
 * window, services/call-limit/window.ts); the highest version is the state. Same contract as the
 * memory limiter.
 *
 * Atomicity per key: optimistic, on the uniqueness of `_id`. An acquire reads the key's newest
 * version v, drops the expired slots and the starts out of the window, decides, and inserts
 * version v + 1. Two instances deciding on the same v both try to insert the same `_id`: one
 * wins, the other gets a duplicate-key error and starts again from a fresh read (at most
 * MAX_ATTEMPTS times, then unavailable). So racing acquires of a key, from any instance, never
 * admit past the limit. Superseded versions are deleted a minute after they were written
 * (VERSION_KEEP_MS: an `_id` is never free again while a racer could still claim it). Why not one
 * document updated in place under a condition (`calls.<n>: {$exists: false}`, or a version in the
 * filter): FerretDB 1.x, the MongoDB-protocol server of the tests, evaluates an update's filter
 * and writes without atomicity between them, and lacks `$pull` by condition; a unique `_id` holds
 * on both it and MongoDB. Release is the same loop removing the holder.
 *
 * Trade-off: two round trips per initial INVITE (a read and an insert; the old version's delete
 * is not waited for), two more per race lost to another instance (retried after a random pause
 * of a few ms). An instance's own acquires of a key run one after the other (no race among them),
 * so a busy key costs each instance one database round trip pair per call, in sequence. Database down or slower than the
 * driver's timeouts: the acquire rejects with a ServiceUnavailableError and the node takes
 * `ifRejected` with status `unavailable` (fail closed). Clocks of the instances must agree (NTP).
 * A key's newest version stays once made (one small document per key ever limited).
 */
import { MongoClient, MongoServerError, type Collection } from 'mongodb';
import { ServiceUnavailableError, type CallLimitPort, type CallLimitRule, type CallLimitVerdict } from '../../engine/ports';
import type { CallLimiterOptions } from './memory';
import { inWindow, rateWindow } from './window';

export const CALL_LIMITS_COLLECTION = 'sipflow_call_limits';

interface LimitDoc {
  _id: string;
  k: string;
  v: number;
  /** When it was written (the writer's wall clock, ms): old versions are deleted by it. */
  t: number;
  calls: Array<{ h: string; e: number }>;
  starts: number[];
}

/**
 * How long a superseded version is kept: far beyond the longest an acquire can take between its
 * read and its insert (the driver's timeouts, a few seconds). Deleted sooner, an instance that read
 * version v could insert a second v + 1 after the first was gone, and admit a call no later version
 * counts. A key holds about (its calls in this time) + 1 documents.
 */
const VERSION_KEEP_MS = 60_000;

/** An instance's acquires and releases of one key waiting for the database at most (then unavailable). */
const MAX_QUEUED_PER_KEY = 256;

/** Reads and conditional writes of one acquire or release before it gives up (a key written by others all along). */
const MAX_ATTEMPTS = 50;

export interface MongoCallLimiter extends CallLimitPort {
  close(): Promise<void>;
}

export interface MongoCallLimitOptions extends CallLimiterOptions {
  url: string;
  /** Database when the URL names none (default `kamailio`, as the location store). */
  database?: string;
  /** Bound on each operation's wait for a server (default 2000 ms). */
  timeoutMs?: number;
}

export function createMongoCallLimiter(o: MongoCallLimitOptions): MongoCallLimiter {
  const slotMs = (o.slotTimeoutSec ?? 10_800) * 1000;
  const timeoutMs = o.timeoutMs ?? 2000;
  const client = new MongoClient(o.url, { serverSelectionTimeoutMS: timeoutMs, connectTimeoutMS: timeoutMs, socketTimeoutMS: timeoutMs * 2 });
  const coll: Collection<LimitDoc> = client.db(o.database ?? 'kamailio').collection<LimitDoc>(CALL_LIMITS_COLLECTION);
  // the newest version of a key in one index step; made once, by whichever instance comes first
  let indexed: Promise<unknown> | null = null;
  const unavailable = (e: unknown): never => {
    if (e instanceof ServiceUnavailableError) throw e;
    throw new ServiceUnavailableError(`call limit database: ${(e as Error)?.message ?? String(e)}`);
  };

  /**
   * Reads the key's document, lets `decide` compute its new arrays (or a verdict that writes
   * nothing), and writes them if no one else wrote the key in between; else again.
   */
  async function update<T>(key: string, decide: (doc: LimitDoc | null) => { write: Pick<LimitDoc, 'calls' | 'starts'> | null; result: T }): Promise<T> {
    await (indexed ??= coll.createIndex({ k: 1, v: -1 }).catch((e: unknown) => {
      indexed = null;
      throw e;
    }));
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const doc = await coll.find({ k: key }).sort({ v: -1 }).limit(1).next();
      const d = decide(doc);
      if (d.write === null) return d.result;
      const v = (doc?.v ?? 0) + 1;
      try {
        await coll.insertOne({ _id: JSON.stringify([key, v]), k: key, v, t: Date.now(), ...d.write });
      } catch (e) {
        if (!(e instanceof MongoServerError && e.code === 11000)) throw e;
        // another instance wrote this version: a random pause of up to a few ms spreads the racers
        await new Promise((resolve) => setTimeout(resolve, Math.random() * Math.min(attempt + 1, 10)));
        continue;
      }
      // older versions are state no one reads any more; each is kept VERSION_KEEP_MS after it was
      // written, so that an instance that read the version before it cannot insert its successor again
      coll.deleteMany({ k: key, v: { $lt: v }, t: { $lt: Date.now() - VERSION_KEEP_MS } }).catch(() => undefined);
      return d.result;
    }
    throw new ServiceUnavailableError(`call limit key busy: ${MAX_ATTEMPTS} attempts lost to other writers`);
  }

  /**
   * This process's acquires and releases of a key, one after the other: racing among themselves
   * they would only lose to each other (each lost race costs a read and an insert), so only
   * other instances' writes are ever raced.
   */
  const queues = new Map<string, { tail: Promise<unknown>; waiting: number }>();
  function serial<T>(key: string, op: () => Promise<T>): Promise<T> {
    const q = queues.get(key) ?? { tail: Promise.resolve(), waiting: 0 };
    // a database slower than the calls of one key: refused rather than queued without end
    if (q.waiting >= MAX_QUEUED_PER_KEY) return Promise.reject(new ServiceUnavailableError(`call limit key busy: ${MAX_QUEUED_PER_KEY} waiting`));
    q.waiting++;
    const run = q.tail.then(op, op);
    q.tail = run.then(
      () => undefined,
      () => undefined,
    );
    queues.set(key, q);
    const tail = q.tail;
    void tail.then(() => {
      q.waiting--;
      if (q.waiting === 0 && queues.get(key) === q) queues.delete(key);
    });
    return run;
  }

  function acquire(holder: string, key: string, rule: CallLimitRule, nowMs: number): Promise<CallLimitVerdict> {
    const w = rule.maxPerSecond === undefined ? null : rateWindow(rule.maxPerSecond);
    return serial(key, () =>
      update<CallLimitVerdict>(key, (doc) => {
        const calls = (doc?.calls ?? []).filter((c) => c.e > nowMs);
        if (calls.some((c) => c.h === holder)) return { write: null, result: 'allowed' };
        if (rule.maxConcurrent !== undefined && calls.length >= rule.maxConcurrent) return { write: null, result: 'concurrent' };
        let starts = doc?.starts ?? [];
        if (w) {
          starts = inWindow(starts, w, nowMs);
          if (starts.length >= w.count) return { write: null, result: 'rate' };
          starts = [...starts, nowMs];
        }
        return { write: { calls: [...calls, { h: holder, e: nowMs + slotMs }], starts }, result: 'allowed' };
      }),
    );
  }

  function release(holder: string, key: string): Promise<void> {
    return serial(key, () =>
      update(key, (doc) => {
        if (doc === null || !doc.calls.some((c) => c.h === holder)) return { write: null, result: undefined };
        return { write: { calls: doc.calls.filter((c) => c.h !== holder), starts: doc.starts }, result: undefined };
      }),
    );
  }

  return {
    acquire: (holder, key, rule, nowMs) => acquire(holder, key, rule, nowMs).catch(unavailable),
    async release(holder, keys) {
      for (const key of keys) await release(holder, key).catch(unavailable);
    },
    close: () => client.close(),
  };
}
