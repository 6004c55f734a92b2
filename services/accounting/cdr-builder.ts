/**
 * The CDR builder: a call-events consumer (sip/call-events.ts CallEvents) on one SIP thread that follows each
 * call and makes its records with SRE's accounting switches:
 *
 *   start     a record when the call connects (2xx sent upstream)                off by default
 *   stop      a record when a connected call ends (BYE)                           on
 *   reject    a record when the call ends on a 4xx/5xx/6xx final                  on
 *   redirect  a record when the call ends on a 3xx                                off
 *   recurse   a record per failed attempt followed by another (crankback)         on
 *   interimSec  interim records of connected calls every N s (0 = off)
 *   timeoutSec  a connected call with no in-dialog request for N s ends with a `timeout` record
 *               (0 = off); any in-dialog request (re-INVITE, UPDATE, INFO, …) refreshes it
 *
 * A 401/407 final is a digest challenge, not a call: the caller retries with credentials under the
 * same Call-ID (a new `setup`), so it is neither recorded nor followed. A call whose logic ended in
 * a challenge is not followed either.
 *
 * Layout: two Maps Call-ID → call state, calls not connected yet and connected ones (insertion
 * order); one sweep interval (SWEEP_MS) for interim records, timeouts and calls that never got a
 * final, not a timer per call. Connected calls are only visited when interim records or timeouts
 * are on (200,000 connected calls: ~13 ms per sweep on this machine, warm).
 * Limits: at most `maxCalls` calls followed (the next ones are counted, not recorded, the log says
 * so once per episode); a call without a final after SETUP_MAX_MS is forgotten; text values capped
 * at VALUE_MAX_CHARS. Secret variables (engine/secrets.ts: the setup's `isSecret`, or a name
 * matching SECRET_NAME, or a value that is digest credentials) are never copied into a record.
 */
import type { LogPort } from '../../engine/ports';
import { SECRET_NAME } from '../../engine/secrets';
import type { CallDescriptor, CdValue, Scalar } from '../../engine/types';
import { toText } from '../../engine/values';
import type { CdrKind, CdrRecord } from './record';

/**
 * A call's setup as sip/call-events.ts `CallSetup` reports it (services/ does not import sip/: the
 * builder matches `CallEvents` structurally, checked where server/call-consumers.ts adds it).
 */
export interface CallSetupEvent {
  callId: string;
  at: number;
  logic: string;
  cd: CallDescriptor;
  outcome: string;
  isSecret?: (name: string) => boolean;
}

/** How often the builder looks at its calls (interim records, timeouts, stale setups). */
export const SWEEP_MS = 1000;
/** A call with no final response this long after its INVITE is forgotten (timer C of RFC 3261 is 3 min). */
export const SETUP_MAX_MS = 300_000;
/** Text values of a record (variables, custom fields, numbers) are cut to this length. */
export const VALUE_MAX_CHARS = 1024;

export interface CdrSwitches {
  start: boolean;
  stop: boolean;
  reject: boolean;
  redirect: boolean;
  recurse: boolean;
  /** Interim records every N s for connected calls; 0 = none. */
  interimSec: number;
  /** A connected call with no in-dialog request for N s ends with a `timeout` record; 0 = never. */
  timeoutSec: number;
}

export interface CdrBuilderOptions extends CdrSwitches {
  /** CD variables copied into each record (e.g. `customer`). */
  variables: readonly string[];
  /** Calls followed at most at once. */
  maxCalls: number;
  /** Clock (ms); default Date.now. */
  now?: () => number;
  log?: LogPort;
  /** Called for each call not followed because `maxCalls` are (a metric). */
  onUntracked?: () => void;
}

interface Call {
  setupAt: number;
  logic: string;
  calling: string | null;
  called: string | null;
  source: string | null;
  variables: Record<string, Scalar>;
  fields: Record<string, Scalar>;
  /** The last attempt's target(s). */
  destination: string | null;
  connectAt: number | null;
  status: number | null;
  reason: string | null;
  /** Last in-dialog request (or the connect). */
  activeAt: number;
  /** Last interim record (or the connect). */
  interimAt: number;
}

const cap = (s: string) => (s.length > VALUE_MAX_CHARS ? s.slice(0, VALUE_MAX_CHARS) : s);
const textOf = (v: CdValue | undefined): string | null => (v === undefined || v === null || Array.isArray(v) ? null : cap(toText(v)));
/** Digest credentials (`Digest username=…, response=…`) are a secret whatever variable holds them. */
const DIGEST_CREDENTIALS = /^\s*digest\s[^]*\bresponse\s*=/i;

function scalarOf(v: CdValue | undefined): Scalar | undefined {
  if (v === undefined || Array.isArray(v)) return undefined;
  if (typeof v === 'string') return DIGEST_CREDENTIALS.test(v) ? undefined : cap(v);
  return v;
}

export class CdrBuilder {
  /** Calls not connected yet (ringing, failing over): swept for SETUP_MAX_MS only. */
  private readonly pending = new Map<string, Call>();
  /** Connected calls: swept only when interim records or timeouts are on. */
  private readonly connected = new Map<string, Call>();
  private readonly now: () => number;
  private timer: NodeJS.Timeout | null = null;
  private untrackedEpisode = false;
  /** Calls not followed because `maxCalls` were (since start). */
  untracked = 0;

  constructor(
    private readonly o: CdrBuilderOptions,
    private readonly emit: (r: CdrRecord) => void,
  ) {
    this.now = o.now ?? Date.now;
  }

  /** Calls followed now. */
  get size(): number {
    return this.pending.size + this.connected.size;
  }

  /** Starts the sweep interval (unref'd: it does not keep the process alive). */
  startSweeping(): this {
    if (this.timer === null) {
      this.timer = setInterval(() => this.sweep(), SWEEP_MS);
      this.timer.unref();
    }
    return this;
  }

  private forget(callId: string): void {
    this.pending.delete(callId);
    this.connected.delete(callId);
  }

  stopSweeping(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  setup(s: CallSetupEvent): void {
    if (s.outcome === 'challenge') {
      this.forget(s.callId);
      return;
    }
    if (!this.pending.has(s.callId) && !this.connected.has(s.callId) && this.size >= this.o.maxCalls) {
      this.untracked++;
      this.o.onUntracked?.();
      if (!this.untrackedEpisode) {
        this.untrackedEpisode = true;
        this.o.log?.log('warn', `accounting: ${this.o.maxCalls} calls followed (accounting.maxCalls): new calls get no CDR until some end`);
      }
      return;
    }
    const vars = s.cd.vars;
    const variables: Record<string, Scalar> = {};
    for (const name of this.o.variables) {
      if (SECRET_NAME.test(name) || s.isSecret?.(name)) continue;
      const v = scalarOf(vars[name]);
      if (v !== undefined) variables[name] = v;
    }
    const fields: Record<string, Scalar> = {};
    for (const [k, v] of Object.entries(s.cd.cdrFields ?? {})) {
      const x = scalarOf(v);
      if (x !== undefined) fields[k] = x;
    }
    const address = textOf(vars.sourceAddress);
    const port = textOf(vars.sourcePort);
    const host = address !== null && address.includes(':') && !address.startsWith('[') ? `[${address}]` : address;
    // a new setup (the retry after a challenge) goes to the end: the pending map stays in setup order
    this.forget(s.callId);
    this.pending.set(s.callId, {
      setupAt: s.at,
      logic: s.logic,
      calling: textOf(vars.calling),
      called: textOf(vars.called),
      source: host === null ? null : port === null ? host : `${host}:${port}`,
      variables,
      fields,
      destination: null,
      connectAt: null,
      status: null,
      reason: null,
      activeAt: s.at,
      interimAt: s.at,
    });
  }

  attempt(callId: string, uris: readonly string[]): void {
    const c = this.pending.get(callId);
    if (c && uris.length > 0) c.destination = cap(uris.join(','));
  }

  attemptFailed(callId: string, uri: string | null, status: number, reason: string, at: number): void {
    const c = this.pending.get(callId);
    if (!c || !this.o.recurse) return;
    this.record('recurse', callId, c, at, { destination: uri ?? c.destination, status, reason, endAt: at });
  }

  final(callId: string, status: number, reason: string, uri: string | null, at: number): void {
    const c = this.pending.get(callId);
    if (!c) return;
    this.pending.delete(callId);
    if (uri !== null) c.destination = cap(uri);
    c.status = status;
    c.reason = cap(reason);
    if (status >= 200 && status < 300) {
      c.connectAt = c.activeAt = c.interimAt = at;
      this.connected.set(callId, c);
      if (this.o.start) this.record('start', callId, c, at, {});
      return;
    }
    if (status === 401 || status === 407) return; // a challenge: the authenticated retry is the call
    if (status >= 300 && status < 400 ? this.o.redirect : status >= 400 && this.o.reject) {
      this.record(status < 400 ? 'redirect' : 'reject', callId, c, at, { endAt: at });
    }
  }

  inDialog(callId: string, method: string, at: number): void {
    const c = this.connected.get(callId);
    if (!c) return;
    if (method !== 'BYE') {
      c.activeAt = at;
      return;
    }
    this.connected.delete(callId);
    if (this.o.stop) this.record('stop', callId, c, at, { endAt: at });
  }

  /** Interim records, timeouts, calls that never got a final: run every SWEEP_MS (tests call it with their clock). */
  sweep(now = this.now()): void {
    const interimMs = this.o.interimSec * 1000;
    const timeoutMs = this.o.timeoutSec * 1000;
    for (const [callId, c] of this.pending) {
      // insertion order = setup order: the first recent one ends the scan
      if (now - c.setupAt < SETUP_MAX_MS) break;
      this.pending.delete(callId);
    }
    if (interimMs === 0 && timeoutMs === 0) return this.endEpisode();
    for (const [callId, c] of this.connected) {
      if (timeoutMs > 0 && now - c.activeAt >= timeoutMs) {
        this.connected.delete(callId);
        this.record('timeout', callId, c, now, { endAt: now });
      } else if (interimMs > 0 && now - c.interimAt >= interimMs) {
        c.interimAt = now;
        this.record('interim', callId, c, now, {});
      }
    }
    this.endEpisode();
  }

  private endEpisode(): void {
    if (this.untrackedEpisode && this.size < this.o.maxCalls) {
      this.untrackedEpisode = false;
      this.o.log?.log('info', `accounting: following new calls again (${this.untracked} calls without CDR so far)`);
    }
  }

  private record(
    kind: CdrKind,
    callId: string,
    c: Call,
    at: number,
    over: { destination?: string | null; status?: number; reason?: string; endAt?: number },
  ): void {
    const endAt = over.endAt ?? null;
    const until = endAt ?? at;
    this.emit({
      kind,
      callId,
      at,
      setupAt: c.setupAt,
      connectAt: c.connectAt,
      endAt,
      duration: c.connectAt === null ? null : Math.max(0, until - c.connectAt) / 1000,
      calling: c.calling,
      called: c.called,
      source: c.source,
      destination: over.destination !== undefined ? over.destination : c.destination,
      status: over.status ?? c.status,
      reason: over.reason ?? c.reason,
      logic: c.logic,
      variables: c.variables,
      fields: c.fields,
    });
  }
}
