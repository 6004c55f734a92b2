/**
 * Which SIP thread of the process handles a message: the dispatching thread's own front end
 * ("inline", started by server/sip-threads/host.ts beside the workers) while the load is low, the
 * worker threads by Call-ID when it rises.
 *
 * Why: at low rates a REGISTER's cost is its thread hand-offs, not its work. Handed to a worker, it
 * crosses threads four times (datagram in, location call out, answer back), each waking a sleeping
 * thread: 0.68–0.88 ms of CPU per call at 500 calls/s against 0.24–0.29 ms near the best rate, where
 * the threads are awake and every wake-up carries a batch (docs/performance.md, "Low rates"). Inline,
 * the dispatching thread receives, handles and stores it without waking anyone.
 *
 * Contract (`route` answers a slot: 0 … workers − 1 a worker, `inline` the dispatcher's front end):
 * - A message of a Call-ID the inline front end handled goes inline until no message of that
 *   Call-ID came for `keepMs` (default 32 s = 64×T1, the longest a non-INVITE transaction lives):
 *   its retransmissions find their transaction, its responses their client transaction.
 * - A REGISTER, or an OPTIONS outside a dialog (no To tag), of any other Call-ID goes inline while
 *   the mode is inline, unless that Call-ID went to a worker within the last `keepMs` (a
 *   retransmission must find the transaction there) or `maxInline` Call-IDs are inline already.
 * - While inline and over half of `maxRate` (the last window), one new Call-ID in `warmEvery`
 *   (default 16) goes to its worker all the same, so the workers do not meet the load cold. A worker
 *   that has run nothing since its start takes the whole load at the switch in V8's interpreter,
 *   compiling as it goes: in the persistent bench the first 5 s step past `maxRate` (1,800 calls/s
 *   after 1,000 inline) had 778–4,532 retransmissions at 82–96 % CPU, the same rate a step later none
 *   at 66–68 % (docs/performance.md, "Low rates"). The share keeps the workers' code optimised, and
 *   their directory caches filled, by the same traffic. It costs those calls their hand-offs, so it
 *   waits until the load is on its way to the switch: at lower rates the hand-offs are the cost
 *   the inline front end is there to save.
 * - Everything else goes to worker `callIdHash % workers`, as with no inline front end. INVITEs and
 *   in-dialog requests never start inline: a call's state (call events, CDRs, call-limit slots,
 *   proxy dialogs) lives for the call, longer than this table remembers.
 * - Mode: spread as soon as more than `maxRate` messages come within a second (counted in windows of
 *   250 ms), or when the dispatching thread ran more than 75 % of a window (`utilization`, its CPU
 *   time from thread-cpu.ts: its own work, stores included, leaves no room for the front end's; a
 *   cold directory cache read from PGlite did that at 1,000 calls/s); inline again once every window
 *   of 2 s stayed under 60 % of the rate and 60 % busy (a lower bar kept PostgreSQL setups on the
 *   workers at any rate). Flipping costs nothing but the next calls' hand-offs.
 *
 * Layout: the inline Call-IDs in a Map by callIdKey (53 bits: two Call-IDs share a key about once
 * in 2^53), kept in order of their last message, so the expired ones are the first (pruned at each
 * window). The Call-IDs recently sent to workers as two bitsets of 2^22 bits (512 KB each) by
 * callIdHash, the current and the previous `keepMs` period: a bit shared by several Call-IDs only
 * sends a new request to a worker. Costs per message: one hash of the Call-ID, one Map lookup while
 * any Call-ID is inline, a few byte compares.
 */
import { callIdKey } from '../../sip/dispatch';
import { toHasTag } from '../../sip/request-peek';

export interface CallOwnersOptions {
  /** Worker threads (slots 0 … workers − 1); the inline front end is slot `workers`. */
  workers: number;
  /** Messages per second above which new Call-IDs go to the workers. */
  maxRate: number;
  /** How long a Call-ID stays with its thread after its last message (default 32,000 ms). */
  keepMs?: number;
  /** Call-IDs inline at most (default 100,000); beyond, new ones go to the workers. */
  maxInline?: number;
  /** The dispatching thread's CPU share (0–1) since the previous call (thread-cpu.ts), asked at the end of each window; none: not judged. */
  utilization?: () => number;
  /** While inline and over half of maxRate, one new Call-ID in this many goes to its worker anyway (default 16; 0: none). */
  warmEvery?: number;
}

/** While inline and over half of maxRate, one new Call-ID in this many goes to its worker anyway (CallOwnersOptions.warmEvery). */
export const WARM_EVERY = 16;

/** Whether a Call-ID (its callIdKey) is one of the share kept on the workers: the key's upper 21 bits, independent of the worker its lower ones pick. */
export const keptWarm = (key: number, every = WARM_EVERY): boolean => every > 0 && Math.floor(key / 0x1_0000_0000) % every === 0;

const WINDOW_MS = 250;
/** Windows under the calm rate before going back inline (2 s). */
const CALM_WINDOWS = 8;
const BITS = 1 << 22;
/** Busy share of the dispatching thread over a window that sends new calls to the workers, and under which a window is calm. */
const BUSY = 0.75;
const CALM_BUSY = 0.6;

const REGISTER = Buffer.from('REGISTER ');
const OPTIONS = Buffer.from('OPTIONS ');
const startsWith = (data: Buffer, prefix: Buffer) => data.length > prefix.length && data.compare(prefix, 0, prefix.length, 0, prefix.length) === 0;

export class CallOwners {
  /** The inline front end's slot. */
  readonly inline: number;
  private readonly keepMs: number;
  private readonly maxInline: number;
  private readonly warmEvery: number;
  private readonly maxPerWindow: number;
  private readonly calmPerWindow: number;
  /** callIdKey → ms of the Call-ID's last message, oldest first. */
  private readonly held = new Map<number, number>();
  private recent = new Uint32Array(BITS / 32);
  private previous = new Uint32Array(BITS / 32);
  private periodEnd = -Infinity;
  private windowEnd = -Infinity;
  private count = 0;
  /** The last window had over half of maxRate: the warm share goes to the workers. */
  private warming = false;
  private calm = CALM_WINDOWS;
  private spread = false;

  constructor(private readonly o: CallOwnersOptions) {
    this.inline = o.workers;
    this.keepMs = o.keepMs ?? 32_000;
    this.maxInline = o.maxInline ?? 100_000;
    this.warmEvery = o.warmEvery ?? WARM_EVERY;
    this.maxPerWindow = (o.maxRate * WINDOW_MS) / 1000;
    this.calmPerWindow = this.maxPerWindow * 0.6;
  }

  /** 'inline' while new REGISTERs start on the dispatcher, 'spread' while they go to the workers. */
  get mode(): 'inline' | 'spread' {
    return this.spread ? 'spread' : 'inline';
  }

  /** Call-IDs held inline now. */
  get size(): number {
    return this.held.size;
  }

  route(data: Buffer, now: number): number {
    this.tick(now);
    const key = callIdKey(data);
    const hash = key % 0x1_0000_0000;
    if (this.held.size > 0) {
      const seen = this.held.get(key);
      if (seen !== undefined) {
        // to the end: the Map stays in order of last message
        this.held.delete(key);
        this.held.set(key, now);
        return this.inline;
      }
    }
    const worker = hash % this.o.workers;
    if (!(startsWith(data, REGISTER) || (startsWith(data, OPTIONS) && toHasTag(data) === false))) return worker;
    const word = (hash >>> 5) & (BITS / 32 - 1);
    const bit = 1 << (hash & 31);
    if (
      this.spread ||
      this.held.size >= this.maxInline ||
      key === 0 ||
      (this.recent[word] & bit) !== 0 ||
      (this.previous[word] & bit) !== 0 ||
      (this.warming && keptWarm(key, this.warmEvery))
    ) {
      this.recent[word] |= bit;
      return worker;
    }
    this.held.set(key, now);
    return this.inline;
  }

  private tick(now: number): void {
    if (now >= this.periodEnd) {
      // a period with no message at all leaves nothing recent
      const rotations = this.periodEnd === -Infinity ? 2 : Math.min(2, 1 + Math.floor((now - this.periodEnd) / this.keepMs));
      for (let r = 0; r < rotations; r++) {
        const cleared = this.previous.fill(0);
        this.previous = this.recent;
        this.recent = cleared;
      }
      this.periodEnd = now + this.keepMs;
    }
    if (now >= this.windowEnd) {
      // the windows since the last message had none: calm
      const windows = this.windowEnd === -Infinity ? CALM_WINDOWS : 1 + Math.floor((now - this.windowEnd) / WINDOW_MS);
      const busy = this.o.utilization?.() ?? 0;
      if (busy > BUSY) this.spread = true;
      this.calm = this.count < this.calmPerWindow && busy < CALM_BUSY ? this.calm + windows : windows - 1;
      this.warming = windows === 1 && this.count > this.maxPerWindow / 2;
      if (this.spread && this.calm >= CALM_WINDOWS) this.spread = false;
      this.count = 0;
      this.windowEnd = now + WINDOW_MS;
      for (const [key, seen] of this.held) {
        if (seen > now - this.keepMs) break;
        this.held.delete(key);
      }
    }
    if (++this.count > this.maxPerWindow) this.spread = true;
  }
}
