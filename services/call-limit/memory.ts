/**
 * The per-instance call limiter behind analysis.callLimit (engine/ports.ts CallLimitPort), the
 * default (`callLimit.store: instance`).
 *
 * Why here: slots must be counted once for the whole instance, and SIP worker threads each hold
 * their own calls. The table lives in the dispatching thread (created by server/runtime.ts);
 * workers reach it over their store calls ('callLimit.acquire', 'callLimit.release':
 * server/sip-threads/protocol.ts), as they reach the instance cache.
 *
 * Layout: key → { holders: holder → slot expiry (ms), starts: start times of the calls admitted
 * in the rate window (services/call-limit/window.ts), ascending }. A holder (engine/call-slots.ts)
 * takes at most one slot per key; acquiring again answers 'allowed' and counts nothing.
 *
 * Limits: a slot expires `slotTimeoutSec` after it was taken (default 3 h: a dialog whose BYE
 * never passed here); expired slots are dropped when the key reaches its limit and by the sweep
 * of keys. At most `maxKeys` keys are held (default 100 000): a key holds an entry only while it
 * has a slot or a start in its window; when the table is full of live keys, the sweep drops what
 * has expired and a new key still finding no room is refused with a ServiceUnavailableError (the
 * node: `unavailable`), so a flood of distinct keys (a key built from a sender's From user) costs
 * at most maxKeys × (key ≤ 256 B + its slots) and never evicts the slots of live calls.
 */
import { ServiceUnavailableError, type CallLimitPort, type CallLimitRule, type CallLimitVerdict } from '../../engine/ports';
import { inWindow, rateWindow } from './window';

export interface CallLimiterOptions {
  /** Seconds a slot is held at most (`callLimit.slotTimeoutSec`, default 10 800). */
  slotTimeoutSec?: number;
  /** Keys held at most (`callLimit.maxKeys`, default 100 000). */
  maxKeys?: number;
}

export interface MemoryCallLimiter extends CallLimitPort {
  /** Keys held now (for tests and metrics). */
  readonly keys: number;
  /** Slots of a key held now, expired ones not yet dropped included. */
  slots(key: string): number;
}

interface KeyState {
  holders: Map<string, number>;
  starts: number[];
  /** When the last start leaves the longest window used so far: the key is empty of rate state after it. */
  rateUntil: number;
}

export function createMemoryCallLimiter(o: CallLimiterOptions = {}): MemoryCallLimiter {
  const slotMs = (o.slotTimeoutSec ?? 10_800) * 1000;
  const maxKeys = o.maxKeys ?? 100_000;
  const table = new Map<string, KeyState>();

  const dropExpired = (st: KeyState, nowMs: number) => {
    for (const [h, expires] of st.holders) if (expires <= nowMs) st.holders.delete(h);
  };
  const idle = (st: KeyState, nowMs: number) => st.holders.size === 0 && st.rateUntil <= nowMs;
  /** Drops expired slots and idle keys of the whole table: O(keys + slots), run only when the table is full. */
  const sweep = (nowMs: number) => {
    for (const [k, st] of table) {
      dropExpired(st, nowMs);
      if (idle(st, nowMs)) table.delete(k);
    }
  };

  return {
    get keys() {
      return table.size;
    },
    slots: (key) => table.get(key)?.holders.size ?? 0,
    async acquire(holder: string, key: string, rule: CallLimitRule, nowMs: number): Promise<CallLimitVerdict> {
      let st = table.get(key);
      if (st === undefined) {
        if (table.size >= maxKeys) sweep(nowMs);
        if (table.size >= maxKeys) throw new ServiceUnavailableError(`call limit table full (${maxKeys} keys)`);
        st = { holders: new Map(), starts: [], rateUntil: 0 };
        table.set(key, st);
      }
      const mine = st.holders.get(holder);
      if (mine !== undefined && mine > nowMs) return 'allowed';
      if (rule.maxConcurrent !== undefined && st.holders.size >= rule.maxConcurrent) {
        dropExpired(st, nowMs);
        if (st.holders.size >= rule.maxConcurrent) return finishRejected(st, key, nowMs, 'concurrent');
      }
      if (rule.maxPerSecond !== undefined) {
        const w = rateWindow(rule.maxPerSecond);
        st.starts = inWindow(st.starts, w, nowMs);
        if (st.starts.length >= w.count) return 'rate';
        st.starts.push(nowMs);
        st.rateUntil = Math.max(st.rateUntil, nowMs + w.windowMs);
      }
      st.holders.set(holder, nowMs + slotMs);
      return 'allowed';
    },
    async release(holder, keys) {
      for (const key of keys) {
        const st = table.get(key);
        if (st === undefined || !st.holders.delete(holder)) continue;
        if (st.holders.size === 0 && st.starts.length === 0) table.delete(key);
      }
    },
  };

  /** A key created by this refused acquire (maxConcurrent 0) holds nothing: not kept. */
  function finishRejected(st: KeyState, key: string, nowMs: number, verdict: CallLimitVerdict): CallLimitVerdict {
    if (idle(st, nowMs)) table.delete(key);
    return verdict;
  }
}
