/**
 * Messages between the dispatching thread and the SIP worker threads (structured clone over the
 * worker's port). Kept to arrays and primitives on the hot path: every SIP message crosses once.
 */
import { LocationUnavailableError } from '../../services/location/types';
import { DirectoryError } from '../../services/directory/types';
import type { Config } from '../config';
import type { CdrRecord } from '../../services/accounting/record';
import type { StoredSegment } from '../../services/history/store';

/**
 * A SIP message for a worker: [kind, bytes, transport (registry id, sip/transports), address, port, listener, local address,
 * local port, connection id (stream transports: the connection, held by the dispatcher; else -1), received at (ms)].
 */
export type InboundSip = [0, Uint8Array, number, string, number, number, string, number, number, number];

/** A store call from a worker to the dispatcher: [kind, id, method, args]. */
export type StoreCall = [1, number, StoreMethod, unknown[]];
/**
 * `cache.*`: the instance cache (services/cache) lives in the dispatcher, so every SIP thread sees one table;
 * `callLimit.*`: so do the call-admission slots (services/call-limit), counted once for the instance.
 */
export type StoreMethod =
  'directory.query' | 'directory.schema' | 'location.register' | 'location.lookup' | 'cache.get' | 'cache.set' | 'callLimit.acquire' | 'callLimit.release';

/** The dispatcher's answer: [kind, id, ok, value or serialized error]. */
export type StoreReply = [2, number, boolean, unknown];

/**
 * A send a worker hands the dispatcher (transports without a thread sender, e.g. TCP: the
 * connections live in the dispatcher): [kind, id (0 = no callback), listener, transport id, bytes, address, port, connection id or -1,
 * flow only (1: over that connection of any listener or not at all, Peer.flowOnly; else 0), server name (Peer.serverName: an
 * outgoing TLS connection's SNI) or null].
 */
export type RelayedSend = [3, number, number, number, Uint8Array, string, number, number, 0 | 1, string | null];
/** Result of a relayed send: [kind, id, error message or null]. */
export type RelayedSent = [4, number, string | null];

/** A message that reached a worker's own send socket (it should not; handed back for dispatch): [kind, listener, transport id, bytes, address, port]. */
export type StrayMessage = [5, number, number, Uint8Array, string, number];

/** A failed authentication seen by a worker's front end, for the main thread's guard: [kind, source address, digest username or null]. */
export type AuthFailure = [6, string, string | null];

/** A call detail record made by a worker's accounting (services/accounting), for the main thread's writer: [kind, record]. */
export type CdrItem = [7, CdrRecord];

/** A call (segment) recorded by a worker's call history recorder (services/history), serialized there (storedSegment), for the main thread's writer: [kind, segment]. */
export type HistoryItem = [8, StoredSegment];

/**
 * Segments of this worker's call history written (or dropped) by the main thread's writer: room in
 * its recorder's window again (services/history/recorder.ts RecorderOptions.window): [kind, count].
 */
export type HistorySettled = [9, number];

export interface FlowText {
  flow: string;
  version: number;
  text: string;
}

export type Control =
  | { t: 'flows'; flows: FlowText[] }
  /** The directory changed (services/directory/changes.ts): the worker's directory caches forget. */
  | { t: 'invalidate' }
  | { t: 'metrics'; id: number }
  /** Locked usernames (services/guard/locks.ts): [lower-cased username, until ms; 0 = lifted]; `replace` = the full set. */
  | { t: 'locks'; locks: Array<[string, number]>; replace: boolean }
  /** The call history's debug filter (PUT /api/v1/calls/debug-filter): the full list; [] = off. */
  | { t: 'historyDebug'; numbers: string[] }
  | { t: 'drain'; graceMs: number }
  | { t: 'stop' };

export type WorkerEvent = { t: 'ready' } | { t: 'failed'; error: string } | { t: 'metrics'; id: number; json: unknown[] } | { t: 'drained' } | { t: 'stopped' };

/** Hot-path messages travel in batches (arrays of them, see Outbox); control messages alone. */
export type ToWorkerItem = InboundSip | StoreReply | RelayedSent | HistorySettled;
export type FromWorkerItem = StoreCall | RelayedSend | StrayMessage | AuthFailure | CdrItem | HistoryItem;
export type ToWorker = ToWorkerItem[] | Control;
export type FromWorker = FromWorkerItem[] | WorkerEvent;

/** What a worker needs to start. */
export interface WorkerInit {
  index: number;
  config: Config;
  /** Per listener (server/config.ts sipListeners order): its name, advertised address and sockets as the dispatcher bound them (transport: registry id). */
  listeners: Array<{ name: string; advertised: string; sockets: Array<{ transport: number; host: string; port: number }> }>;
  nonceSecret: Uint8Array;
  nonceCounts: SharedArrayBuffer;
  /** The process's boot epoch (ms), not the worker's own start: a restarted worker keeps accepting the nonces of its predecessor. */
  bootEpoch?: number;
  flows: FlowText[];
  /** Seconds of thread-local directory cache (0 = every query goes to the dispatcher). */
  directoryCacheSec: number;
  /** Requests that waited longer than this in the worker's queue are dropped (the UA retransmits). */
  maxQueueMs: number;
  /** Past this wait in the worker's queue, requests that would start new work are shed (FrontEnd.onMessage's `behind`). */
  shedAfterMs: number;
  /** The call history's segments in flight at most for this worker's recorder (services/history historyWindow). */
  historyWindow: number;
}

type SerializedError = { k: 'location'; m: string; r: number } | { k: 'directory'; m: string; d: 'invalid' | 'unavailable' } | { k: 'error'; m: string };

export function serializeError(e: unknown): SerializedError {
  if (e instanceof LocationUnavailableError) return { k: 'location', m: e.message, r: e.retryAfter };
  if (e instanceof DirectoryError) return { k: 'directory', m: e.message, d: e.kind };
  return { k: 'error', m: e instanceof Error ? e.message : String(e) };
}

export function deserializeError(s: unknown): Error {
  const e = s as SerializedError;
  if (e?.k === 'location') return new LocationUnavailableError(e.m, e.r);
  if (e?.k === 'directory') return new DirectoryError(e.m, e.d);
  return new Error(e?.m ?? 'store call failed');
}

/**
 * A view that owns exactly its bytes: structured clone copies a typed array's whole buffer, and a
 * pooled Buffer's is 8 KiB.
 */
export function own(buf: Uint8Array): Uint8Array {
  return buf.byteOffset === 0 && buf.byteLength === buf.buffer.byteLength ? buf : new Uint8Array(buf);
}

/**
 * Hot-path messages queued and posted as one array, at most every `delayMs` under load (or at once
 * when `maxBatch` are waiting). A postMessage costs several µs whatever its size (serialisation, a
 * lock, waking the other thread) on both sides: posted once per event-loop turn, it was a third of
 * the dispatching thread's time under load, where each turn holds only one or two datagrams. A
 * millisecond of hold is nothing next to SIP's 500 ms retransmission timer. The dispatcher holds a
 * worker's datagrams `sip.handOffHoldMs` (3 ms by default, host.ts): below capacity a worker sleeps
 * between batches, so each batch handed over is a wake-up of its thread, which costs the dispatcher
 * tens of µs on this VM; three times fewer of them took 7–16 % off the CPU per call at 3,000–9,000
 * calls/s (docs/performance.md, "The hand-off's hold").
 *
 * At low load the hold only adds latency: a REGISTER with credentials crosses four hand-offs, each
 * waiting its millisecond alone (SIPp's mean response time at 500 calls/s: 18 ms with the hold on
 * every message, 4 ms without; docs/performance.md, Low rates). So when nothing was posted for
 * `delayMs`, the first message goes out at the end of the current event-loop turn (setImmediate:
 * every datagram of the same poll still joins it), and the timed hold starts again only while
 * messages keep coming. The CPU per call at low load did not change measurably: the thread wake-ups
 * that cost it are the hand-offs themselves, not the timer.
 *
 * `delayMs` 0: never held on a timer; every batch goes out at the end of the turn it was pushed in.
 * The dispatcher and its inline front end (host.ts) talk over a local channel in one thread, where a
 * batch wakes no one: a timed hold there saves nothing and costs a wake-up of the thread each time
 * the timer fires. At 500 calls/s, messages arriving about a millisecond apart met the 1 ms hold on
 * most turns: 2.8–3.0 context switches of that thread per call, 2.5–2.6 without it
 * (docs/performance.md, "Wake-ups at low rates").
 */
export class Outbox<T> {
  private queue: T[] = [];
  private timer: NodeJS.Timeout | null = null;
  private armed = false;
  /** performance.now() of the last post; -Infinity = never. */
  private postedAt = -Infinity;

  constructor(
    private readonly target: { postMessage(m: unknown): void },
    private readonly delayMs = 1,
    private readonly maxBatch = 256,
  ) {}

  push(m: T): void {
    this.queue.push(m);
    if (this.queue.length >= this.maxBatch) this.flush();
    else if (!this.armed) {
      this.armed = true;
      if (performance.now() - this.postedAt >= this.delayMs) setImmediate(this.flush);
      // one Timeout per outbox, re-armed (refresh() reactivates a timer that already fired)
      else this.timer = this.timer === null ? setTimeout(this.flush, this.delayMs) : this.timer.refresh();
    }
  }

  readonly flush = (): void => {
    this.armed = false;
    if (this.queue.length === 0) return;
    const batch = this.queue;
    this.queue = [];
    this.postedAt = performance.now();
    this.target.postMessage(batch);
  };
}
