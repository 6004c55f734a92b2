/**
 * Call limits shared by every instance on the MongoDB location database (`callLimit.store:
 * database` with a mongodb:// location), collection `sipflow_call_limits`.
 *
 * Layout: one document per key, `{ _id: key, calls: [{ h: holder, e: expires ms }], starts: [ms] }`
 * (starts: the rate window, services/call-limit/window.ts). Same contract as the memory limiter.
 *
 * Atomicity per key: MongoDB updates one document atomically, so the admission is one conditional
 * update — the holder not among `calls`, `calls.<maxConcurrent-1>` absent (fewer than the limit),
 * `starts.<count-1>` absent (fewer than the window allows) — pushing the slot and the start, with
 * upsert for a key's first call. Racing acquires of a key (from any instance) cannot both pass a
 * condition the other's push made false. Before it, one update pulls the key's expired slots and
 * the starts that left the window. No match: one read tells the holder's own slot (allowed) from
 * a reached limit. A start leaving the window between the pull and the update can only make the
 * update refuse a call it could have admitted (the safe side), never the reverse.
 *
 * Trade-off: two or three round trips per initial INVITE. Database down or slower than the
 * driver's timeouts: the acquire rejects with a ServiceUnavailableError and the node takes
 * `ifRejected` with status `unavailable` (fail closed). Clocks of the instances must agree (NTP).
 * A key's document stays once made (one small document per key ever limited).
 */
import { MongoClient, MongoServerError, type Collection } from 'mongodb';
import { ServiceUnavailableError, type CallLimitPort, type CallLimitRule, type CallLimitVerdict } from '../../engine/ports';
import type { CallLimiterOptions } from './memory';
import { rateWindow } from './window';

export const CALL_LIMITS_COLLECTION = 'sipflow_call_limits';

interface LimitDoc {
  _id: string;
  calls: Array<{ h: string; e: number }>;
  starts: number[];
}

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
  const unavailable = (e: unknown): never => {
    throw new ServiceUnavailableError(`call limit database: ${(e as Error)?.message ?? String(e)}`);
  };

  async function acquire(holder: string, key: string, rule: CallLimitRule, nowMs: number): Promise<CallLimitVerdict> {
    const w = rule.maxPerSecond === undefined ? null : rateWindow(rule.maxPerSecond);
    if (rule.maxConcurrent === 0) {
      const doc = await coll.findOne({ _id: key, calls: { $elemMatch: { h: holder, e: { $gt: nowMs } } } }, { projection: { _id: 1 } });
      return doc ? 'allowed' : 'concurrent';
    }
    // expired slots (the holder's own too: it takes a new one, counted) and starts out of the window
    await coll.updateOne({ _id: key }, { $pull: { calls: { e: { $lte: nowMs } }, ...(w ? { starts: { $lte: nowMs - w.windowMs } } : {}) } });
    const filter: Record<string, unknown> = { _id: key, 'calls.h': { $ne: holder } };
    if (rule.maxConcurrent !== undefined) filter[`calls.${rule.maxConcurrent - 1}`] = { $exists: false };
    if (w) filter[`starts.${w.count - 1}`] = { $exists: false };
    try {
      const r = await coll.updateOne(filter, { $push: { calls: { h: holder, e: nowMs + slotMs }, ...(w ? { starts: nowMs } : {}) } }, { upsert: true });
      if (r.matchedCount + r.upsertedCount > 0) return 'allowed';
    } catch (e) {
      // the key's document exists and the filter did not match it: the upsert collided with it
      if (!(e instanceof MongoServerError && e.code === 11000)) throw e;
    }
    const doc = await coll.findOne({ _id: key });
    if (doc?.calls.some((c) => c.h === holder)) return 'allowed';
    if (rule.maxConcurrent !== undefined && (doc?.calls.length ?? 0) >= rule.maxConcurrent) return 'concurrent';
    return 'rate';
  }

  return {
    acquire: (holder, key, rule, nowMs) => acquire(holder, key, rule, nowMs).catch(unavailable),
    async release(holder, keys) {
      if (keys.length === 0) return;
      await coll.updateMany({ _id: { $in: [...keys] } }, { $pull: { calls: { h: holder } } }).catch(unavailable);
    },
    close: () => client.close(),
  };
}
