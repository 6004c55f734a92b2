/**
 * The call history's recorder: one per SIP thread, it watches that thread's traffic (the message
 * tap and the run tap of sip/message-tap.ts, wired in server/message-consumers.ts) and hands each
 * recorded call to a sink (the main thread's writer, directly or through the worker's outbox) as
 * a CallDetail (record.ts).
 *
 * Why per thread and per Call-ID: every message of a Call-ID reaches the same SIP thread
 * (sip/dispatch.ts), so one recorder sees a whole call without sharing anything. The front end
 * asks `wants(callId, method, vars)` before each logic run; that is where a call is chosen:
 *
 *   mode all       every Call-ID whose request reaches a logic;
 *   mode sampled   those whose Call-ID hashes (FNV-1a, 32 bits) below sampleRate × 2^32: every
 *                  thread and instance answers the same for one Call-ID;
 *   mode failures  as all, but at flush only a call whose outcome is 'failed' is kept;
 *   debug filter   (setDebugNumbers) whatever the mode, when calling, called, fromUsername,
 *                  toUsername or requestUsername equals a listed number, or the user@host of the
 *                  From, To or Request-URI a listed AoR; such a call is kept at flush whatever
 *                  its outcome.
 *
 * Only wants() opens an entry, so a scanner's junk (no logic run: unparsable, or stopped before
 * one) never takes a slot. The request and the 100 Trying arrive before wants() asks: the
 * messages since the last `received` are kept in a small list (RECENT_MAX) for that. Later
 * messages of an open Call-ID (its responses, relayed branches, ACK, CANCEL) join the entry.
 *
 * An entry with no message for idleFlushSec is flushed (an unref'd sweep every twentieth of it,
 * SWEEP_SLICE entries per turn of the event loop, or `sweep(now)` at once); its Call-ID and running summary are then remembered (bounded LRU, REMEMBER_MS) so
 * a later BYE or re-REGISTER reopens it, and the new segment carries the call's summary on: the
 * store keeps every segment under the one Call-ID. A sink receives segments: `messages`, `runs`,
 * `messageCount`, `runCount`, `droppedMessages`, `startedAt` and `endedAt` are the segment's, the
 * rest of the summary is the call's so far.
 *
 * Cost: mode off with an empty filter, received / sent / wants return at their first test (no
 * Call-ID scan, no allocation). Otherwise a message costs a list push and, while entries are open
 * or remembered, a Call-ID scan (callIdOf, injected: services/ do not import sip/); text, redaction
 * and parsing wait for the flush (the Buffers are kept: the front end never reuses one).
 *
 * Admission: a database slower than the traffic must cost the SIP thread nothing for the calls it
 * cannot write, so a call is recorded only while the recorder's window has room: `window` segments
 * in flight at most, open entries plus segments handed to the sink and not yet written
 * (`settled()`, told by the store's writer: services/history/store.ts, through
 * server/sip-threads' HistorySettled items for a worker). A call refused (beyond the window:
 * 'backlog'; beyond maxOpenCalls: 'open_calls') is counted once and stays refused (REFUSED_MAX);
 * a debug-filter call is recorded past the window.
 *
 * Limits: maxOpenCalls entries (a new call beyond is not recorded, counted as 'open_calls'),
 * maxMessagesPerCall messages and runs per entry (more are counted in droppedMessages),
 * maxMessageBytes per message text (cut, `truncated`). Secrets are redacted at flush, before a
 * record leaves: digest `response` / `cnonce` of Authorization and Proxy-Authorization (quoted or
 * not, any case), and secret variables in the runs' input and path (engine/secrets.ts, with the
 * run's `isSecret`).
 */
import { LRUCache } from 'lru-cache';
import { REDACTED, redactTrace, redactVariables } from '../../engine/secrets';
import type { CdValue, LogicRun } from '../../engine/types';
import { parseNameAddr, parseUri } from '../../grammar/sip-values';
import type { CallDetail, CallOutcome, HistoryMessage, HistoryRun } from './record';

export type HistoryMode = 'off' | 'all' | 'sampled' | 'failures';

export interface RecorderConfig {
  mode: HistoryMode;
  sampleRate: number;
  debugNumbers: readonly string[];
  maxMessagesPerCall: number;
  maxMessageBytes: number;
  maxOpenCalls: number;
  idleFlushSec: number;
}

export interface RecorderOptions {
  /**
   * Where a finished segment goes (must not throw, must not block). It counts in the window until
   * the sink's owner calls settled() (services/history/store.ts HistoryStore.accept's `settled`).
   */
  sink: (detail: CallDetail) => void;
  /** The Call-ID of raw message bytes (sip/message-tap.ts callIdOf). */
  callIdOf: (data: Buffer) => string | null;
  /** A segment handed to the sink. */
  onRecorded?: () => void;
  /**
   * A call not recorded: maxOpenCalls entries are open ('open_calls'), or `window` segments are in
   * flight ('backlog': the writer has not caught up).
   */
  onDropped?: (reason: 'open_calls' | 'backlog') => void;
  /**
   * Segments in flight at most: entries open plus segments handed to the sink and not yet settled
   * (`settled()`: written, or dropped by the writer). A call beyond is not opened at all, so a
   * database slower than the traffic costs the SIP thread nothing for the calls it could not
   * have written (default: no bound).
   */
  window?: number;
  /** Sweep on a timer (default true; tests call sweep()). */
  timer?: boolean;
}

/** The endpoints as the taps give them (sip/transport.ts Peer, LocalEndpoint). */
interface Endpoint {
  proto?: string;
  address: string;
  port: number;
}

/** A run report as the front end gives it (engine/types.ts LogicRun). */
export type RecordedRun = LogicRun;

/** Messages kept since the last received one (the request, its 100 Trying, a few stateless sends). */
export const RECENT_MAX = 8;
/** Call-IDs per generation of the refused calls' memory (two generations are kept). */
export const REFUSED_MAX = 4096;
/** Entries flushed per turn of the event loop by the timer's sweep. */
export const SWEEP_SLICE = 16;
/** How long a flushed Call-ID is remembered for a later segment (a BYE hours later, a re-REGISTER). */
export const REMEMBER_MS = 6 * 3600_000;

/** A message as seen: the endpoints are made text at flush only. */
interface Seen {
  data: Buffer;
  at: number;
  in: boolean;
  /** The peer (its sender when in, its receiver when out) and our side (null: unknown). */
  peer: Endpoint;
  local: Endpoint | null;
}

/** The call's summary so far: carried from segment to segment. */
interface CallState {
  method: string | null;
  calling: string | null;
  called: string | null;
  aor: string | null;
  source: string;
  logic: string | null;
  /** The last final status sent for the first request's method, and whether that request carried credentials. */
  status: number | null;
  credentials: boolean;
  error: boolean;
  /** Kept at flush whatever the outcome (the debug filter chose it). */
  debug: boolean;
}

interface Entry {
  callId: string;
  state: CallState;
  seen: Seen[];
  runs: RecordedRun[];
  dropped: number;
  last: number;
}

const endpoint = (e: Endpoint) => (e.address.includes(':') ? `[${e.address}]:${e.port}` : `${e.address}:${e.port}`);

/** 32-bit FNV-1a of the Call-ID's UTF-16 code units: the same answer on every thread and instance. */
export function callIdHash32(callId: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < callId.length; i++) {
    h ^= callId.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** Where the header section ends (the body, if any, follows). */
function headEnd(text: string): number {
  const crlf = text.indexOf('\r\n\r\n');
  if (crlf >= 0) return crlf;
  const lf = text.indexOf('\n\n');
  return lf >= 0 ? lf : text.length;
}

/** Digest `response=` and `cnonce=` values of the credentials header lines (and their folded continuations). */
const CREDENTIALS_LINE = /^(?:authorization|proxy-authorization)\s*:/i;
const DIGEST_SECRET = /\b(response|cnonce)(\s*=\s*)("(?:[^"\\]|\\.)*"?|[^\s,]*)/gi;

export function redactMessageText(text: string): string {
  const end = headEnd(text);
  const lines = text.slice(0, end).split('\n');
  let inCredentials = false;
  let changed = false;
  for (let i = 1; i < lines.length; i++) {
    const l = lines[i];
    if (l[0] !== ' ' && l[0] !== '\t') inCredentials = CREDENTIALS_LINE.test(l);
    if (inCredentials) {
      lines[i] = l.replace(DIGEST_SECRET, (_m, name: string, eq: string, v: string) => `${name}${eq}${v.startsWith('"') ? `"${REDACTED}"` : REDACTED}`);
      changed = true;
    }
  }
  return changed ? lines.join('\n') + text.slice(end) : text;
}

/** user@host of a From / To value, or null. */
function aorOf(value: string | undefined): string | null {
  const na = value === undefined ? null : parseNameAddr(value);
  const uri = na === null ? null : parseUri(na.uri);
  return uri === null || uri.user === null ? null : `${uri.user}@${uri.host}`;
}

/** What the summary reads of a message, in one pass over its header lines. */
interface Parsed {
  firstLine: string;
  method: string;
  status: number | null;
  from?: string;
  to?: string;
  /** An Authorization or Proxy-Authorization header is there (then the text is redacted). */
  credentials: boolean;
}

function parse(text: string): Parsed {
  const lines = text.slice(0, headEnd(text)).split('\n');
  const firstLine = lines[0].trimEnd();
  const p: Parsed = { firstLine, method: '', status: null, credentials: false };
  let cseq: string | undefined;
  for (let i = 1; i < lines.length; i++) {
    const l = lines[i];
    const c = l.charCodeAt(0) | 0x20;
    // only the headers read here: CSeq, From / f, To / t, (Proxy-)Authorization
    if (c !== 0x63 && c !== 0x66 && c !== 0x74 && c !== 0x61 && c !== 0x70) continue;
    const colon = l.indexOf(':');
    if (colon <= 0) continue;
    const name = l.slice(0, colon).trim().toLowerCase();
    if (name === 'cseq') cseq ??= l.slice(colon + 1).trim();
    else if (name === 'from' || name === 'f') p.from ??= l.slice(colon + 1).trim();
    else if (name === 'to' || name === 't') p.to ??= l.slice(colon + 1).trim();
    else if (name === 'authorization' || name === 'proxy-authorization') p.credentials = true;
  }
  if (firstLine.startsWith('SIP/2.0 ')) {
    const status = Number(firstLine.slice(8, 11));
    p.status = Number.isInteger(status) ? status : null;
    p.method = cseq?.split(/\s+/)[1] ?? '';
  } else p.method = firstLine.slice(0, Math.max(0, firstLine.indexOf(' ')));
  return p;
}

/** How a call ended, from its summary state (record.ts CallOutcome). */
export function outcomeOf(s: CallState): CallOutcome {
  const st = s.status;
  if (s.error || st === null) return 'failed';
  if (st >= 200 && st < 300) return 'success';
  if (st >= 300 && st < 400) return 'redirect';
  if ((st === 401 || st === 407) && !s.credentials) return 'challenged';
  return 'failed';
}

export class CallRecorder {
  private mode: HistoryMode;
  private readonly threshold: number;
  private debug: ReadonlySet<string> = new Set();
  private active: boolean;
  private readonly open = new Map<string, Entry>();
  private readonly remembered: LRUCache<string, CallState>;
  /** Messages since the last received one (the request and what answered it at once). */
  private recent: Seen[] = [];
  private sweeping = false;
  /** Open entries plus segments handed to the sink, not yet settled (RecorderOptions.window). */
  private inFlight = 0;
  /** Call-IDs refused lately (refuse()). */
  private refusedNow = new Set<string>();
  private refusedBefore = new Set<string>();
  private readonly timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly c: RecorderConfig,
    private readonly o: RecorderOptions,
  ) {
    this.mode = c.mode;
    this.threshold = Math.floor(c.sampleRate * 2 ** 32);
    this.remembered = new LRUCache<string, CallState>({ max: Math.max(16, c.maxOpenCalls), ttl: REMEMBER_MS, ttlAutopurge: false });
    this.active = c.mode !== 'off';
    this.setDebugNumbers(c.debugNumbers);
    if (o.timer !== false) {
      const every = Math.max(100, (c.idleFlushSec * 1000) / 20);
      this.timer = setInterval(() => this.sweepInSlices(), every);
      this.timer.unref();
    }
  }

  /**
   * The debug filter (numbers or user@host AoRs); [] turns it off. The calls the previous filter
   * chose are forgotten once flushed (a later request is chosen again if the new filter matches).
   */
  setDebugNumbers(list: readonly string[]): void {
    this.debug = new Set(list.map((n) => (n.includes('@') ? n.toLowerCase() : n)));
    this.active = this.mode !== 'off' || this.debug.size > 0;
    const chosen = [...this.remembered.entries()].filter(([, state]) => state.debug);
    for (const [callId] of chosen) this.remembered.delete(callId);
  }

  debugNumbers(): string[] {
    return [...this.debug];
  }

  /** Calls being recorded. */
  get openCalls(): number {
    return this.open.size;
  }

  /** Segments in flight (open entries plus segments the sink has not settled). */
  get segmentsInFlight(): number {
    return this.inFlight;
  }

  /** `n` segments handed to the sink are settled (written, or dropped by the writer): room in the window. */
  settled(n = 1): void {
    this.inFlight = Math.max(0, this.inFlight - n);
  }

  received(data: Buffer, peer: Endpoint, local: Endpoint, at: number): void {
    if (!this.active) return;
    const s: Seen = { data, at, in: true, peer, local };
    this.recent = [s];
    this.follow(s);
  }

  sent(data: Buffer, peer: Endpoint, from: { host: string; port: number } | null, at: number): void {
    if (!this.active) return;
    const s: Seen = { data, at, in: false, peer, local: from === null ? null : { address: from.host, port: from.port } };
    if (this.recent.length < RECENT_MAX) this.recent.push(s);
    this.follow(s);
  }

  /** A message of an open or remembered Call-ID joins its entry. */
  private follow(s: Seen): void {
    if (this.open.size === 0 && this.remembered.size === 0) return;
    const callId = this.o.callIdOf(s.data);
    if (callId === null) return;
    const e = this.open.get(callId) ?? this.reopen(callId);
    if (e !== undefined) this.add(e, s);
  }

  private reopen(callId: string): Entry | undefined {
    const state = this.remembered.get(callId);
    if (state === undefined) return undefined;
    this.remembered.delete(callId);
    return this.openEntry(callId, state);
  }

  private openEntry(callId: string, state: CallState): Entry | undefined {
    if (this.open.size >= this.c.maxOpenCalls) return this.refuse(callId, 'open_calls');
    // the debug filter's calls are what the operator asked for: past the window (the writer's backlog bound still holds)
    if (this.o.window !== undefined && this.inFlight >= this.o.window && !state.debug) return this.refuse(callId, 'backlog');
    this.inFlight++;
    const e: Entry = { callId, state, seen: [], runs: [], dropped: 0, last: Date.now() };
    this.open.set(callId, e);
    return e;
  }

  /**
   * A call not recorded: counted once, and its later requests not recorded either (a recording
   * that began at its second request would be missing the first). Remembered in two generations
   * of REFUSED_MAX Call-IDs: a call's requests follow each other within seconds.
   */
  private refuse(callId: string, reason: 'open_calls' | 'backlog'): undefined {
    if (this.wasRefused(callId)) return undefined;
    if (this.refusedNow.size >= REFUSED_MAX) {
      this.refusedBefore = this.refusedNow;
      this.refusedNow = new Set();
    }
    this.refusedNow.add(callId);
    this.o.onDropped?.(reason);
    return undefined;
  }

  private wasRefused(callId: string): boolean {
    return this.refusedNow.has(callId) || this.refusedBefore.has(callId);
  }

  private add(e: Entry, s: Seen): void {
    e.last = s.at;
    // the open map stays in order of last activity: the sweep reads the idle ones at its front
    this.open.delete(e.callId);
    this.open.set(e.callId, e);
    if (e.seen.length >= this.c.maxMessagesPerCall) e.dropped++;
    else e.seen.push(s);
  }

  wants(callId: string, method: string, vars: Readonly<Record<string, CdValue>>): boolean {
    if (!this.active) return false;
    if (this.open.has(callId)) return true;
    if (this.wasRefused(callId)) return false;
    const debug = this.debug.size > 0 && this.matches(vars);
    if (!debug && (this.mode === 'off' || (this.mode === 'sampled' && callIdHash32(callId) >= this.threshold))) return false;
    const state: CallState = this.remembered.get(callId) ?? {
      method,
      calling: null,
      called: null,
      aor: null,
      source: '',
      logic: null,
      status: null,
      credentials: false,
      error: false,
      debug: false,
    };
    this.remembered.delete(callId);
    state.debug ||= debug;
    const e = this.openEntry(callId, state);
    if (e === undefined) return false;
    for (const s of this.recent) if (this.o.callIdOf(s.data) === callId) this.add(e, s);
    return true;
  }

  private matches(vars: Readonly<Record<string, CdValue>>): boolean {
    for (const name of ['calling', 'called', 'fromUsername', 'toUsername', 'requestUsername']) {
      const v = vars[name];
      if ((typeof v === 'string' || typeof v === 'number') && this.debug.has(String(v))) return true;
    }
    for (const name of ['fromURI', 'toURI', 'requestURI']) {
      const v = vars[name];
      const uri = typeof v === 'string' ? parseUri(v) : null;
      if (uri !== null && uri.user !== null && this.debug.has(`${uri.user}@${uri.host}`.toLowerCase())) return true;
    }
    return false;
  }

  ran(callId: string, run: RecordedRun): void {
    const e = this.open.get(callId) ?? this.reopen(callId);
    if (e === undefined) return;
    if (e.runs.length >= this.c.maxMessagesPerCall) e.dropped++;
    else e.runs.push(run);
    if (e.state.logic === null) {
      e.state.logic = run.logic;
      const text = (n: string) => (typeof run.input[n] === 'string' || typeof run.input[n] === 'number' ? String(run.input[n]) : null);
      e.state.calling = text('calling');
      e.state.called = text('called');
    }
    if (run.outcome === 'error') e.state.error = true;
  }

  /** Flushes every entry idle for idleFlushSec at `now`, at once. */
  sweep(now = Date.now()): void {
    const idle = this.c.idleFlushSec * 1000;
    for (const e of this.open.values()) if (now - e.last >= idle) this.flush(e);
  }

  /**
   * The timer's sweep: the idle entries at the front of the open map (kept in order of last
   * activity), SWEEP_SLICE per turn of the event loop, so the SIP messages waiting on this thread
   * are handled between two slices: at a few thousand calls a second, flushing one second's worth
   * at once would hold the thread for tens of milliseconds.
   */
  private sweepInSlices(): void {
    if (this.sweeping || this.open.size === 0) return;
    this.sweeping = true;
    const slice = () => {
      const now = Date.now();
      const idle = this.c.idleFlushSec * 1000;
      let n = 0;
      for (const e of this.open.values()) {
        if (now - e.last < idle) break;
        this.flush(e);
        if (++n === SWEEP_SLICE) {
          setImmediate(slice);
          return;
        }
      }
      this.sweeping = false;
    };
    slice();
  }

  /** Flushes every open entry and stops the sweep. */
  close(): void {
    if (this.timer !== null) clearInterval(this.timer);
    for (const e of [...this.open.values()]) this.flush(e);
    this.recent = [];
  }

  private flush(e: Entry): void {
    this.open.delete(e.callId);
    const parsed = e.seen.map((s) => ({ s, text: s.data.toString('utf8'), p: null as Parsed | null }));
    const st = e.state;
    for (const m of parsed) {
      const p = (m.p = parse(m.text));
      if (m.s.in && p.status === null) {
        if (st.method === null) st.method = p.method;
        if (st.source === '') {
          st.source = endpoint(m.s.peer);
          st.aor = aorOf(p.method === 'REGISTER' ? p.to : p.from);
        }
        if (p.method === st.method) st.credentials = p.credentials;
      } else if (!m.s.in && p.status !== null && p.status >= 200 && p.method === st.method) {
        st.status = p.status;
      }
    }
    const outcome = outcomeOf(st);
    if (this.mode === 'failures' && !st.debug && outcome !== 'failed') {
      this.inFlight--;
      return;
    }
    this.remembered.set(e.callId, st);
    const messages = parsed.map(({ s, text, p }) => this.message(s, text, p!));
    const runs = e.runs.map(historyRun);
    let first = Infinity;
    let last = -Infinity;
    for (const x of [e.seen, e.runs])
      for (const { at } of x) {
        if (at < first) first = at;
        if (at > last) last = at;
      }
    if (first === Infinity) first = last = e.last;
    this.o.sink({
      callId: e.callId,
      startedAt: new Date(first).toISOString(),
      endedAt: new Date(last).toISOString(),
      method: st.method ?? '',
      calling: st.calling,
      called: st.called,
      aor: st.aor,
      source: st.source,
      outcome,
      status: st.status,
      logic: st.logic,
      messageCount: messages.length,
      runCount: runs.length,
      messages,
      runs,
      droppedMessages: e.dropped,
    });
    this.o.onRecorded?.();
  }

  private message(s: Seen, raw: string, p: Parsed): HistoryMessage {
    let text = p.credentials ? redactMessageText(raw) : raw;
    let truncated = false;
    if (Buffer.byteLength(text) > this.c.maxMessageBytes) {
      text = Buffer.from(text).subarray(0, this.c.maxMessageBytes).toString('utf8');
      truncated = true;
    }
    const peer = endpoint(s.peer);
    const local = s.local === null ? '' : endpoint(s.local);
    return {
      at: s.at,
      direction: s.in ? 'in' : 'out',
      transport: s.peer.proto ?? s.local?.proto ?? 'udp',
      src: s.in ? peer : local,
      dst: s.in ? local : peer,
      method: p.method,
      status: p.status,
      firstLine: p.firstLine.slice(0, 512),
      text,
      ...(truncated ? { truncated } : {}),
    };
  }
}

function historyRun(r: RecordedRun): HistoryRun {
  const secrets = r.isSecret === undefined ? undefined : { has: r.isSecret };
  return {
    at: r.at,
    durationMs: r.durationMs,
    method: r.method,
    logicId: r.logicId,
    logic: r.logic,
    flow: r.flow ?? null,
    input: redactVariables(r.input, secrets),
    path: redactTrace(r.trace, secrets),
    outcome: r.outcome,
    status: r.status,
    where: r.where ?? null,
  };
}
