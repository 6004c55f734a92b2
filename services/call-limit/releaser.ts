/**
 * Frees the call-admission slots of a call when it ends: a consumer of the call events
 * (sip/call-events.ts) of one SIP thread, registered in server/call-consumers.ts.
 *
 * At `setup` it records the calls whose descriptor holds slots (`cd.callSlots`, filled by
 * analysis.callLimit: never a variable, so a logic names no other call's slot) under their holder
 * (engine/call-slots.ts: Call-ID and From tag). A `final` that is not a 2xx (a reject, the 487
 * after a CANCEL, a 3xx, the 407 of a challenge) releases the oldest pending setup of the Call-ID;
 * a 2xx marks it connected; an `inDialog` BYE releases the connected ones. Each record is removed
 * when it is released, so a retransmission or a second event releases nothing twice; events of a
 * Call-ID it holds no record of are ignored. A call that never ends (no BYE seen) keeps its slot
 * until the limiter expires it (`callLimit.slotTimeoutSec`); its record here is forgotten after
 * the same time (checked at each setup, oldest first), and at most `maxCalls` are followed (the
 * oldest dropped first: their slots expire in the limiter).
 *
 * Never throws, never waits: a release is a store call whose failure is logged (the slot expires).
 */
import { slotHolder } from '../../engine/call-slots';
import type { CallLimitPort, LogPort } from '../../engine/ports';
import type { CallDescriptor } from '../../engine/types';

/**
 * The part of sip/call-events.ts's CallEvents it consumes, restated (services/ do not import
 * sip/): server/call-consumers.ts hands it over as a CallEvents, which the compiler checks.
 */
interface CallSetup {
  callId: string;
  at: number;
  cd: CallDescriptor;
}

export interface ReleaserOptions {
  /** Seconds a record is kept without its call ending (`callLimit.slotTimeoutSec`). */
  slotTimeoutSec?: number;
  /** Calls followed at most per SIP thread (default 1 000 000). */
  maxCalls?: number;
  log?: LogPort;
}

interface SlotRecord {
  holder: string;
  keys: string[];
  at: number;
  connected: boolean;
}

export interface CallSlotReleaser {
  setup(call: CallSetup): void;
  attempt(): void;
  attemptFailed(): void;
  final(callId: string, status: number): void;
  inDialog(callId: string, method: string): void;
  /** Call-IDs followed now. */
  readonly size: number;
}

export function createCallSlotReleaser(limiter: CallLimitPort, o: ReleaserOptions = {}): CallSlotReleaser {
  const timeoutMs = (o.slotTimeoutSec ?? 10_800) * 1000;
  const maxCalls = o.maxCalls ?? 1_000_000;
  // insertion order = order of each Call-ID's first setup: the oldest first for expiry
  const calls = new Map<string, SlotRecord[]>();

  const release = (r: SlotRecord) => {
    limiter.release(r.holder, r.keys).catch((e: unknown) => o.log?.log('warn', `call slot release failed: ${(e as Error)?.message ?? String(e)}`));
  };
  const forgetOld = (now: number) => {
    for (const [callId, records] of calls) {
      if (records[0].at > now - timeoutMs && calls.size < maxCalls) return;
      calls.delete(callId);
    }
  };

  return {
    get size() {
      return calls.size;
    },
    setup(call: CallSetup) {
      const keys = call.cd.callSlots;
      if (keys === undefined || keys.length === 0) return;
      forgetOld(call.at);
      const holder = slotHolder(call.cd);
      const records = calls.get(call.callId);
      const same = records?.find((r) => r.holder === holder && !r.connected);
      if (same) {
        for (const k of keys) if (!same.keys.includes(k)) same.keys.push(k);
        return;
      }
      const record = { holder, keys: [...keys], at: call.at, connected: false };
      if (records) records.push(record);
      else calls.set(call.callId, [record]);
    },
    attempt() {},
    attemptFailed() {},
    final(callId, status) {
      const records = calls.get(callId);
      const i = records?.findIndex((x) => !x.connected) ?? -1;
      if (records === undefined || i < 0) return;
      if (status >= 200 && status < 300) {
        records[i].connected = true;
        return;
      }
      release(records.splice(i, 1)[0]);
      if (records.length === 0) calls.delete(callId);
    },
    inDialog(callId, method) {
      const records = method === 'BYE' ? calls.get(callId) : undefined;
      if (records === undefined) return;
      for (const r of records) if (r.connected) release(r);
      const pending = records.filter((r) => !r.connected);
      if (pending.length === 0) calls.delete(callId);
      else calls.set(callId, pending);
    },
  };
}
