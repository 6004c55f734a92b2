/**
 * The SIP front end: datagram / stream frame → parse → checks → server transaction → call
 * descriptor → service logic → outcome → response (or relay).
 *
 * Per request, in order:
 *  1. parse; unparsable: 400 with the parser's reason when the headers needed to answer were
 *     readable, else dropped. Responses go to the proxy (client transactions).
 *  2. checkRequest (registrar policy for REGISTER/OPTIONS, proxy policy — no Require / body
 *     checks — for the rest): 4xx/5xx answered statelessly.
 *  3. top Via gets received/rport (RFC 3261 §18.2.1, RFC 3581); responses go there.
 *  4. ACK: absorbed by its INVITE transaction (non-2xx), else routed like an in-dialog request
 *     (2xx ACK), else dropped. Retransmissions: the last response is resent (INVITE without one:
 *     100 Trying again). CANCEL: 200, and the INVITE gets 487 (its branches are cancelled); a
 *     CANCEL matching no INVITE transaction gets 481.
 *  5. new server transaction; INVITE → 100 Trying at once.
 *  6. OPTIONS to the server (no user in the Request-URI, or Max-Forwards 0) → 200 with Allow;
 *     Max-Forwards 0 → 483.
 *  7. Route preprocessing (§16.4). No open relay: an in-dialog request (To tag) is proxied without
 *     a logic only when sipflow is on its route — our Record-Route signed for its Call-ID, or a
 *     dialog we relayed (sip/proxy.ts) — else 404 (Kamailio's default). An initial request's
 *     preloaded Route set is removed (Kamailio's `remove_hf("Route")`): only the logic decides
 *     where an initial request goes.
 *  8. call descriptor, loop guard (482), route function → logic, runLogic, outcome → response.
 *     Challenges (401/407) are answered statelessly: sent once, no transaction kept, no
 *     retransmission, so an unauthenticated sender gets at most two packets per request (100
 *     Trying and the 407 for an INVITE) and leaves no state behind.
 *
 * Any exception while handling a message is logged (never the Authorization values) and, when
 * the request can be answered, answered 500.
 */
import type { CompiledService } from '../engine/load';
import { runLogic, type RunOptions, type RunResult } from '../engine/run';
import { parseNameAddr, parseUri, reuse } from '../grammar/sip-values';
import type { LogPort } from '../engine/ports';
import type { CdValue, HeaderEdit, Outcome, RelayFailover, RunContext } from '../engine/types';
import type { CallEvents } from './call-events';
import { tapSender, type MessageTap, type RunTap } from './message-tap';
import { cdBuilder, type CalledSource, type CdBuilder } from './call-descriptor';
import { LoopGuard, type LoopGuardOptions } from './loop-guard';
import {
  DEFAULT_POLICY,
  checkRequest,
  checkResponse,
  isResponse,
  parseMaxForwards,
  parseViaList,
  topVia,
  type RequestPolicy,
  type RequestValues,
  type SipRequest,
  type SipHeaders,
  type Via,
} from './message';
import type { ListenerGroup } from './listener-group';
import { parseMessage } from './parser';
import { peekRequest, startsNewWork, type RequestPeek } from './request-peek';
import { OurRoute, Proxy, type RelaySequence } from './proxy';
import { ChallengeReplies } from './challenge-replies';
import { responseFor } from './response-for';
import { buildResponse, newTag, serializeMessage } from './serializer';
import { ServerTransactions, TxState, branchTxKey, isRfc3261Branch, reliable, serverTxKey, type ServerTx, type TimerConfig } from './transactions';
import type { LocalEndpoint, Peer, SipSender } from './transport';
import { transportNamed } from './transports';

/** One route rule: the first rule whose conditions all hold picks the logic. */
export interface RouteRule {
  /** Listener name (FrontEndOptions.listenerName), or a transport name ('udp', 'tcp', …), or transport:port ('udp:5060'). */
  listener?: string;
  /** Method(s), upper-case. */
  method?: string | string[];
  /** Prefix of the source address ('10.1.', '192.168.0.12'). */
  source?: string;
  /** Logic id or name. */
  logic: string;
}

/** A logic and the service (file) it runs in. */
export interface LogicTarget {
  service: CompiledService;
  logic: string;
  /** The flow (server/flows) and release the logic came from, when known: the call history names them. */
  flow?: string;
  version?: number;
}

export interface FrontEndOptions {
  service: CompiledService;
  /** Resolves route/default logic refs (e.g. per-file services from loadFlows); default: `service.find`. */
  resolve?: (ref: string) => LogicTarget | undefined;
  ctx: RunContext;
  routes?: RouteRule[];
  /** Name of the listener this front end serves (route rules may select it). */
  listenerName?: string;
  /** Logic when no rule matches (default: `pbx` if the service has it, else the first logic). */
  defaultLogic?: string;
  /** Where `called` comes from (default the Request-URI user). */
  called?: CalledSource;
  /** false disables the loop guard. */
  loopGuard?: LoopGuardOptions | false;
  /** Answer when the top-level logic exits without an outcome (default 404 Not Found). */
  exitResponse?: { status: number; reason?: string };
  recordRoute?: boolean;
  /** Host in Via / Record-Route (default: the bind address, 127.0.0.1 for a wildcard bind). */
  advertisedHost?: string;
  aliases?: string[];
  timers?: Partial<TimerConfig>;
  maxCompletedTransactions?: number;
  /** Key of the dialog signature in our Record-Route (share it between threads and instances; default random). */
  routeSecret?: Buffer;
  /** This instance's server id (`location.serverId`): bindings carrying it are relayed over their connection. */
  serverId?: number;
  /**
   * The listeners of this SIP thread (sip/listener-group.ts): `transports` is then this listener's
   * sender within the group, and responses to our relays may come back on another listener.
   */
  group?: ListenerGroup;
  /** Server header on generated responses (default none). */
  serverHeader?: string;
  /**
   * New work shed while behind (`behind` of onMessage) is answered 503 with a Retry-After of this
   * many seconds to twice that (`sip.shedRetryAfterSec`); 0 or absent: dropped silently.
   */
  shedRetryAfterSec?: number;
  run?: RunOptions;
  log?: LogPort;
  /** Called after each logic run (metrics): method, outcome, seconds, whether credentials were sent. */
  observe?: (method: string, outcome: Outcome, seconds: number, hadCredentials: boolean) => void;
  /**
   * Called when a request that carried Authorization / Proxy-Authorization ended in a failed
   * authentication: a challenge that is not stale, or a 403 (credentials refused for this AoR).
   * `username`: the digest username of the credentials (null if none). The brute-force guard
   * (services/guard) counts these per source and per username.
   */
  onAuthFailure?: (source: string, username: string | null) => void;
  /** Told what happens to each call (sip/call-events.ts): accounting, call admission control. */
  calls?: CallEvents;
  /** Sees every message received and sent (sip/message-tap.ts): the call history, HEP capture. */
  tap?: MessageTap;
  /** Asked per logic run whether to trace and report it (sip/message-tap.ts): the call history. */
  runs?: RunTap;
}

/**
 * What a front end did with the messages it was given, as plain counts (one message costs no
 * metrics call); server/front-end-metrics.ts reads them at each scrape of /metrics.
 */
export interface FrontEndStats {
  /** Requests taken (retransmissions and shed requests included; unparsable and stale ones not). */
  requests: number;
  /** Responses taken (to relayed requests). */
  responses: number;
  /** Retransmitted requests answered again from memory (a transaction's last response, a stateless challenge), or an INVITE's 100 resent. */
  retransmissions: number;
  /** Requests a logic ran on. */
  runs: number;
  /** New work shed while the thread was behind (onMessage's `behind`): dropped, or answered 503 (below). */
  shed: number;
  /** Of `shed`: answered 503 with a Retry-After (`shedRetryAfterSec`). */
  shedAnswered: number;
  /** Dropped unanswered for their age: queued in a SIP thread past `sip.maxQueueMs` (server/sip-threads/sip-thread.ts). */
  stale: number;
  /** Messages that did not parse (answered 400 when the headers to answer could be read). */
  unparsable: number;
  /** ACKs matching no transaction or dialog of ours, dropped. */
  unmatched: number;
  /** Messages whose handling failed: a fault of ours (the exception is logged). */
  errors: number;
}

/** Counts of a front end that has taken nothing yet. */
export const noFrontEndStats = (): FrontEndStats => ({
  requests: 0,
  responses: 0,
  retransmissions: 0,
  runs: 0,
  shed: 0,
  shedAnswered: 0,
  stale: 0,
  unparsable: 0,
  unmatched: 0,
  errors: 0,
});

const PROXY_POLICY: RequestPolicy = { extensions: null, contentTypes: null, answerTypes: null };
const ALLOW = [...DEFAULT_POLICY.methods!].join(', ');
const TAG_RE = /;\s*tag\s*=/i;

function hasToTag(h: SipHeaders): boolean {
  const to = h.to?.[0];
  if (to === undefined || !TAG_RE.test(to)) return false;
  return parseNameAddr(to)?.params.tag !== undefined;
}

/** The top via-parm rewritten with received / rport (RFC 3261 §18.2.1, RFC 3581 §4). */
function stampVia(h: SipHeaders, via: Via, peer: Peer): void {
  const needReceived = via.host !== peer.address && via.host !== `[${peer.address}]`;
  if (!needReceived && !via.hasRport) return;
  const params: Record<string, string | null> = { ...via.params };
  if (via.hasRport) params.rport = String(peer.port);
  if (needReceived || via.hasRport) params.received = peer.address;
  let v = `${via.protocol}/${via.transport} ${via.host}${via.port !== null ? `:${via.port}` : ''}`;
  for (const k in params) v += params[k] === null ? `;${k}` : `;${k}=${params[k]}`;
  const first = h.via[0];
  if (first.indexOf(',') < 0) {
    h.via[0] = v;
    return;
  }
  // several via-parms on the first line: replace the first one only
  const rest = first.slice(splitPoint(first) + 1).trim();
  h.via = [v, rest, ...h.via.slice(1)];
}

/** Index of the first top-level comma of a Via line. */
function splitPoint(s: string): number {
  let q = false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 34) q = !q;
    else if (c === 44 && !q) return i;
  }
  return s.length;
}

/**
 * Where responses to this request go (RFC 3261 §18.2.2, RFC 3581): a stream transport's back over
 * the request's connection, a datagram transport's to the source address and the rport / Via port.
 */
function responsePeer(via: Via | null, peer: Peer): Peer {
  if (transportNamed(peer.proto)?.framing === 'stream')
    return { proto: peer.proto, address: peer.address, port: via?.port ?? 5060, conn: peer.conn, connId: peer.connId };
  if (!via) return peer;
  return { proto: peer.proto, address: peer.address, port: via.hasRport ? peer.port : (via.port ?? 5060) };
}

/** Reports the rest of a traced run, resumed after its failover's attempts all failed (its own steps only: `traceFrom` on). */
type ResumedRunReport = (next: RunResult, rec: { at: number; t0: number; input: Record<string, CdValue> }, traceFrom: number) => void;

const text = (v: CdValue | undefined): string => (v === null || v === undefined ? '' : Array.isArray(v) ? '' : String(v));

interface CompiledRule {
  proto: string | null;
  port: number | null;
  skip: boolean;
  methods: Set<string> | null;
  source: string | null;
  target: LogicTarget;
}

/**
 * How long a stopping front end keeps serving after its last transaction ended: the ACK of the
 * final 2xx it relayed (no transaction of its own) and the BYE of a short call still get through.
 */
export const DRAIN_LINGER_MS = 500;

/**
 * After drain(): resolves once nothing has been in progress (`busy` false) and no message has come
 * (`lastMessageAt`) for `lingerMs`, or when `graceMs` have passed, whichever comes first (the
 * linger never extends the grace). The message time matters: a BYE relayed and answered between
 * two looks at `busy` would otherwise go unseen, and the drain could end before the BYE's 200.
 */
export async function drained(busy: () => boolean, graceMs: number, lingerMs = DRAIN_LINGER_MS, lastMessageAt: () => number = () => 0): Promise<void> {
  const until = Date.now() + graceMs;
  let quietSince: number | null = null;
  for (let now = Date.now(); now < until; now = Date.now()) {
    if (busy()) quietSince = null;
    else {
      quietSince = Math.max(quietSince ?? now, lastMessageAt());
      if (now - quietSince >= lingerMs) return;
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

export class FrontEnd {
  readonly servers: ServerTransactions;
  readonly proxy: Proxy;
  readonly loopGuard: LoopGuard | null;
  readonly stats: FrontEndStats = noFrontEndStats();
  /** Challenges sent statelessly, replayed byte for byte to a retransmission (sip/challenge-replies.ts). */
  private readonly challenges = new ChallengeReplies();
  private readonly buildCd: CdBuilder;
  private rules: CompiledRule[];
  private defaultLogic: LogicTarget;
  private readonly exitResponse: { status: number; reason?: string } | undefined;
  private readonly serverHeader: string | undefined;
  private draining = false;
  /** When the last message of work in progress came while draining (drained(): the linger counts from it). */
  lastMessageAt = 0;
  /**
   * The transaction key the peek of the message in hand looked up without finding an answer, and
   * what it found (absorbedUnparsed): handleRequest, in the same synchronous turn, takes them for
   * the same key instead of looking the transaction and the challenge up again. Null otherwise.
   */
  private peekedKey: string | null = null;
  private peekedTx: ServerTx | undefined = undefined;
  /** Run options of a run the call history traces (RunTap.wants said yes). */
  private readonly tracedRun: RunOptions;
  /** Every send of the front end, its transactions and its proxy: through the tap when there is one. */
  private readonly transports: SipSender;
  /** Logic runs in progress. */
  running = 0;

  constructor(
    sender: SipSender,
    private readonly o: FrontEndOptions,
  ) {
    const transports = o.tap ? tapSender(sender, o.tap) : sender;
    this.transports = transports;
    this.tracedRun = { ...o.run, trace: true };
    this.servers = new ServerTransactions(transports, { timers: o.timers, maxCompleted: o.maxCompletedTransactions });
    this.proxy = new Proxy(
      transports,
      this.servers,
      {
        recordRoute: o.recordRoute,
        advertisedHost: o.advertisedHost ?? transports.advertised,
        ports: transports.ports,
        aliases: o.aliases,
        routeSecret: o.routeSecret,
        serverId: o.serverId,
        group: o.group,
        log: (level, message, fields) => o.log?.log(level, message, fields),
        calls: o.calls,
      },
      o.timers,
    );
    this.loopGuard = o.loopGuard === false ? null : new LoopGuard(o.loopGuard ?? {});
    this.buildCd = cdBuilder(o.ctx.auth, { called: o.called });
    const bound = this.bind(o.service, o.resolve);
    this.rules = bound.rules;
    this.defaultLogic = bound.defaultLogic;
    this.exitResponse = o.exitResponse;
    this.serverHeader = o.serverHeader;
  }

  /**
   * Points the front end at another set of logics (a release activated over the API): routes and
   * the default logic are resolved first, then swapped in one assignment each, so a request sees
   * either the old set or the new one; requests already running finish on the set they took.
   */
  setFlows(service: CompiledService, resolve?: (ref: string) => LogicTarget | undefined): void {
    const bound = this.bind(service, resolve);
    this.rules = bound.rules;
    this.defaultLogic = bound.defaultLogic;
  }

  private bind(service: CompiledService, resolveRef?: (ref: string) => LogicTarget | undefined): { rules: CompiledRule[]; defaultLogic: LogicTarget } {
    const resolve =
      resolveRef ??
      ((ref: string): LogicTarget | undefined => {
        const l = service.find(ref);
        return l ? { service, logic: l.id } : undefined;
      });
    const o = this.o;
    const rules = (o.routes ?? []).map((r) => {
      // a listener condition names this listener (always true here), another one (never), or a transport[:port]
      const l = r.listener;
      const m = l === undefined ? null : /^([a-z][a-z0-9-]*)(:\d+)?$/i.exec(l);
      const isName = l !== undefined && !(m !== null && transportNamed(m[1]) !== undefined);
      const [proto, port] = l && !isName ? l.toLowerCase().split(':') : [null, null];
      const skip = isName && l !== o.listenerName;
      const methods = r.method ? new Set((Array.isArray(r.method) ? r.method : [r.method]).map((m) => m.toUpperCase())) : null;
      const target = resolve(r.logic);
      if (!target) throw new Error(`route rule names no loaded logic: ${r.logic}`);
      return { proto: proto || null, port: port ? Number(port) : null, skip, methods, source: r.source ?? null, target };
    });
    const def = o.defaultLogic ?? (resolve('pbx') ? 'pbx' : service.logics.keys().next().value);
    const defTarget = def === undefined ? undefined : resolve(def);
    if (!defTarget) throw new Error(`no logic "${def ?? ''}" to run by default`);
    return { rules, defaultLogic: defTarget };
  }

  /**
   * The transports' message handler. Never throws. `behind`: the thread is behind (a SIP worker
   * whose queue held this message longer than `sip.shedAfterMs`); a request that would start new
   * work (sip/request-peek.ts `startsNewWork`) and came over UDP is then dropped before any work
   * is done on it, as a full socket buffer would drop it (its UA retransmits), while retransmissions are still answered and requests that
   * finish work under way (credentials after a challenge, requests within a dialog, ACK, CANCEL)
   * still run: past capacity the thread's time goes to calls it can complete.
   */
  readonly onMessage = (data: Buffer, peer: Peer, local: LocalEndpoint, behind = false): void => {
    try {
      this.o.tap?.received(data, peer, local, Date.now());
      this.peekedKey = null;
      const peek = peekRequest(data);
      if (peek !== null) {
        if (this.absorbedUnparsed(peek, peer)) return;
        // over a stream nothing is retransmitted: a dropped request would be lost, so only datagrams are shed
        if (behind && !reliable(peer) && startsNewWork(data, peek.method)) {
          this.stats.requests++;
          this.stats.shed++;
          this.refuseNewWork(data, peer);
          return;
        }
      }
      const r = parseMessage(data, peek?.viaLine);
      if (!r.ok) {
        this.stats.unparsable++;
        if (r.partial && r.partial.method !== 'ACK') this.replyStateless(r.partial.headers, peer, 400, `Bad Request (${r.error})`);
        return;
      }
      const m = r.message;
      if (isResponse(m)) {
        this.stats.responses++;
        if (this.draining) this.lastMessageAt = Date.now();
        if (checkResponse(m) === null) this.proxy.handleResponse(m, data);
        return;
      }
      this.stats.requests++;
      this.handleRequest(m, peer, local, r.values);
    } catch (e) {
      this.stats.errors++;
      this.o.log?.log('error', `SIP message handling failed: ${(e as Error)?.stack ?? String(e)}`);
    }
  };

  /**
   * New work shed while the thread is behind (onMessage): answered 503 Service Unavailable with a
   * Retry-After of `shedRetryAfterSec` to twice that, at random (RFC 3261 §21.5.4), statelessly and
   * without running any logic, so its UA stops retransmitting it and comes back later, its
   * neighbours spread over the interval. Dropped silently instead (as a full socket buffer would) with
   * `shedRetryAfterSec` 0: then the UA retransmits it up to ten times in 32 s, and past capacity
   * every one of them is received, handed to a worker and shed again (docs/performance.md, Overload).
   */
  private refuseNewWork(data: Buffer, peer: Peer): void {
    const after = this.o.shedRetryAfterSec ?? 0;
    const r = after > 0 ? parseMessage(data) : null;
    if (r === null || !r.ok || isResponse(r.message)) return;
    this.stats.shedAnswered++;
    const seconds = after + Math.floor(Math.random() * (after + 1));
    this.replyStateless(r.message.headers, peer, 503, 'Service Unavailable', { 'retry-after': String(seconds) });
  }

  /**
   * A retransmission answered from its bytes (sip/request-peek.ts): the transaction's last
   * response, or the challenge sent statelessly, resent as handleRequest would, without parsing.
   * False for anything else (ACK and CANCEL included: they need the message), which then takes
   * the full path. A transaction with no response yet (an INVITE's 100 is built from the request)
   * is left to it too.
   */
  private absorbedUnparsed(peek: RequestPeek, peer: Peer): boolean {
    const { method, via } = peek;
    if (method === 'ACK' || method === 'CANCEL' || !isRfc3261Branch(via.branch)) return false;
    const key = branchTxKey(via.branch, via.host + ':' + (via.port ?? 5060), method);
    const known = this.servers.get(key);
    if (!this.resentAnswer(key, known, via, peer)) {
      this.peekedKey = key;
      this.peekedTx = known;
      return false;
    }
    if (known !== undefined && this.draining) this.lastMessageAt = Date.now();
    this.stats.requests++;
    return true;
  }

  /**
   * A retransmitted request answered with what was sent for its key: the transaction's last
   * response (to where its responses go), or the challenge sent statelessly (to the sender). False
   * when there is none.
   */
  private resentAnswer(key: string, known: ServerTx | undefined, via: Via, peer: Peer): boolean {
    let bytes: Buffer | undefined;
    let to: Peer;
    if (known !== undefined) {
      bytes = this.servers.resendable(known) ?? undefined;
      to = known.peer;
    } else {
      bytes = this.challenges.replay(key);
      to = responsePeer(via, peer);
    }
    if (bytes === undefined) return false;
    this.stats.retransmissions++;
    this.transports.send(bytes, to);
    return true;
  }

  /** Which logic runs a request. */
  route(method: string, local: LocalEndpoint, source: string): LogicTarget {
    for (const r of this.rules) {
      if (r.skip) continue;
      if (r.proto !== null && r.proto !== local.proto) continue;
      if (r.port !== null && r.port !== local.port) continue;
      if (r.methods !== null && !r.methods.has(method)) continue;
      if (r.source !== null && !source.startsWith(r.source)) continue;
      return r.target;
    }
    return this.defaultLogic;
  }

  private replyStateless(h: SipHeaders, peer: Peer, status: number, reason?: string, extra?: Record<string, string>): void {
    if (h.via === undefined) return; // a response without Via reaches no one
    let via: Via | null = null;
    try {
      via = topVia({ headers: h });
    } catch {
      /* unparsable Via: answer the source */
    }
    if (via) stampVia(h, via, peer);
    const res = buildResponse({ headers: h }, status, reason, this.withServer(extra));
    this.transports.send(serializeMessage(res), responsePeer(via, peer));
  }

  private withServer(extra?: Record<string, string | string[]>): Record<string, string | string[]> | undefined {
    if (this.serverHeader === undefined) return extra;
    return extra ? { ...extra, server: this.serverHeader } : { server: this.serverHeader };
  }

  /**
   * A final response that keeps no state: sent once and the transaction forgotten, so it is
   * never retransmitted and a retransmitted request runs again (challenges, as Kamailio sends
   * them with sl_send_reply).
   */
  private respondOnce(tx: ServerTx, status: number, reason?: string, extra?: Record<string, string | string[]>): void {
    if (tx.state >= TxState.Completed) return;
    tx.toTag ??= newTag();
    const bytes = serializeMessage(buildResponse(tx.request, status, reason, this.withServer(extra), tx.toTag));
    // reported before the response leaves, as sip/transactions.ts respond does
    if (tx.onFinal !== null) {
      const onFinal = tx.onFinal;
      tx.onFinal = null;
      onFinal(status, reason ?? '');
    }
    this.transports.send(bytes, tx.peer);
    this.challenges.remember(tx.key, bytes);
    this.servers.forget(tx);
  }

  /** A final or provisional response generated here, within the transaction. */
  respond(tx: ServerTx, status: number, reason?: string, extra?: Record<string, string | string[]>): void {
    if (tx.state >= TxState.Completed) return;
    if (status > 100) tx.toTag ??= newTag();
    this.servers.respond(tx, buildResponse(tx.request, status, reason, this.withServer(extra), tx.toTag ?? undefined), status);
  }

  /**
   * `parsed`: what the parser parsed of the request (its top Via line the one onMessage peeked, when
   * it did), taken by checkRequest, here and by the call descriptor instead of parsing again.
   */
  private handleRequest(req: SipRequest, peer: Peer, local: LocalEndpoint, parsed: RequestValues): void {
    const method = req.method;
    const bad = checkRequest(req, method === 'REGISTER' || method === 'OPTIONS' ? DEFAULT_POLICY : PROXY_POLICY, parsed);
    if (bad !== null) {
      if (method !== 'ACK') this.replyStateless(req.headers, peer, bad.status, bad.reason, bad.headers);
      return;
    }
    const via = reuse(parsed.via, req.headers.via[0], parseViaList)!.value[0];
    stampVia(req.headers, via, peer);
    const key = serverTxKey(req, via.branch, via.host + ':' + (via.port ?? 5060), method);
    // the peek looked this very key up a moment ago (nothing ran since) and found no answer to resend
    const peeked = this.peekedKey === key;
    const known = peeked ? this.peekedTx : this.servers.get(key);
    this.peekedKey = null;
    this.peekedTx = undefined;
    // Stopping: work in progress (a retransmission, a CANCEL, a request within a dialog, an ACK
    // that matches something, below) starts the linger over; a new request refused with 503, or
    // the ACK of that 503, does not, or steady traffic from senders not yet told would keep a
    // stopping instance up for its whole grace.
    if (this.draining && method !== 'ACK' && (method === 'CANCEL' || known !== undefined || hasToTag(req.headers))) this.lastMessageAt = Date.now();

    if (method === 'ACK') {
      if (known !== undefined && known.isInvite && known.lastStatus >= 300) {
        if (this.draining) this.lastMessageAt = Date.now();
        this.servers.ack(known);
        return;
      }
      if (known !== undefined && known.lastStatus === 0) return; // ACK before any final: nothing to do
      if (this.challenges.has(key)) return; // the ACK of a stateless 407: nothing to do
      const ours = req.headers.route !== undefined ? this.proxy.preprocessRoute(req) : OurRoute.None;
      // a 2xx ACK of a dialog we are on; any other ACK matches nothing of ours and is dropped
      if (ours === OurRoute.Signed || this.proxy.knowsDialog(req)) {
        if (this.draining) this.lastMessageAt = Date.now();
        this.proxy.forwardAck(req);
      } else this.stats.unmatched++;
      return;
    }
    if (!peeked && this.resentAnswer(key, known, via, peer)) return;
    if (known !== undefined) {
      // a retransmission of a request not answered yet: an INVITE gets its 100 again
      this.stats.retransmissions++;
      if (known.isInvite) this.transports.send(serializeMessage(buildResponse(req, 100)), known.peer);
      return;
    }
    if (method === 'CANCEL') {
      this.handleCancel(req, via, key, peer);
      return;
    }
    const inDialog = hasToTag(req.headers);
    // Stopping (SIGTERM): no new dialog or registration here, the sender retries on another
    // instance; a request within a dialog set up through this instance (the BYE of a call it
    // relayed) is still relayed, else that call could not end (docs/operations.md "Stopping").
    if (this.draining && !inDialog) {
      this.replyStateless(req.headers, peer, 503, undefined, { 'retry-after': '5' });
      return;
    }

    const tx = this.servers.create(key, req, method, responsePeer(via, peer));
    try {
      if (tx.isInvite) this.servers.respond(tx, buildResponse(req, 100), 100);
      const mfh = req.headers['max-forwards'];
      const mf = mfh === undefined ? 70 : (parseMaxForwards(mfh[0]) ?? 70);
      if (method === 'OPTIONS' && (mf === 0 || parseUri(req.uri)?.user == null)) {
        this.respond(tx, 200, 'OK', { allow: ALLOW, accept: 'application/sdp', supported: 'path' });
        return;
      }
      if (mf === 0) {
        this.respond(tx, 483, 'Too Many Hops');
        return;
      }

      const ours = req.headers.route !== undefined ? this.proxy.preprocessRoute(req) : OurRoute.None;
      if (inDialog) {
        const onRoute = ours === OurRoute.Signed || this.proxy.knowsDialog(req);
        if (!onRoute || !this.proxy.forwardInDialog(tx, req)) this.respond(tx, 404, 'Not Here');
        else this.o.calls?.inDialog(req.headers['call-id'][0], method, Date.now());
        return;
      }
      // an initial request goes where its logic says, never where a preloaded Route points
      if (req.headers.route !== undefined) delete req.headers.route;

      const cd = this.buildCd(req, peer, local, parsed);
      const v = cd.vars;
      if (this.loopGuard !== null && this.loopGuard.check(text(v.calling), text(v.called), text(v.callId), Date.now())) {
        this.respond(tx, 482, 'Loop Detected');
        return;
      }
      const target = this.route(method, local, peer.address);
      this.stats.runs++;
      this.running++;
      const observe = this.o.observe;
      const started = observe ? process.hrtime.bigint() : 0n;
      const onAuthFailure = this.o.onAuthFailure;
      const calls = this.o.calls;
      const arrived = calls !== undefined ? Date.now() : 0;
      const authUser = v.authUsername;
      // the call history's choice (sip/message-tap.ts): traced, with the variables before the run
      const runs = this.o.runs;
      const callId = req.headers['call-id'][0];
      const recorded = runs !== undefined && runs.wants(callId, method, v) ? { at: Date.now(), t0: performance.now(), input: { ...v } } : null;
      runLogic(target.service, target.logic, cd, this.o.ctx, recorded !== null ? this.tracedRun : this.o.run).then(
        (r) => {
          this.running--;
          if (recorded !== null) this.reportRun(runs!, callId, method, target, recorded, r);
          if (observe) observe(method, r.outcome, Number(process.hrtime.bigint() - started) / 1e9, cd.vars.authUsername !== undefined);
          if (calls !== undefined && method === 'INVITE') this.followCall(tx, calls, target, r, arrived);
          if (
            onAuthFailure !== undefined &&
            (r.outcome.kind === 'challenge' ? !r.outcome.stale : r.outcome.status === 403) &&
            (req.headers.authorization !== undefined || req.headers['proxy-authorization'] !== undefined)
          ) {
            onAuthFailure(peer.address, typeof authUser === 'string' ? authUser : null);
          }
          this.apply(
            tx,
            req,
            r.outcome,
            cd.headerEdits,
            r,
            recorded === null ? undefined : (next, rec, traceFrom) => this.reportRun(runs!, callId, method, target, rec, next, traceFrom),
          );
        },
        (e) => {
          this.running--;
          this.fail(tx, e);
        },
      );
    } catch (e) {
      this.fail(tx, e);
    }
  }

  /** A traced run, to the RunTap. */
  private reportRun(
    runs: RunTap,
    callId: string,
    method: string,
    target: LogicTarget,
    rec: { at: number; t0: number; input: Record<string, CdValue> },
    r: RunResult,
    traceFrom = 0,
  ): void {
    const secrets = target.service.secrets;
    const o = r.outcome;
    runs.ran(callId, {
      at: rec.at,
      durationMs: performance.now() - rec.t0,
      method,
      logicId: target.logic,
      logic: target.service.logics.get(target.logic)?.name ?? target.logic,
      ...(target.flow !== undefined ? { flow: target.flow } : {}),
      input: rec.input,
      // a copy: a run resumed after failover goes on appending to the engine's array
      trace: (r.trace ?? []).slice(traceFrom),
      outcome: o.kind,
      status: o.status,
      ...(o.kind === 'error' && o.where !== undefined ? { where: o.where } : {}),
      ...(secrets !== undefined && secrets.size > 0 ? { isSecret: (name: string) => secrets.has(name) } : {}),
    });
  }

  private fail(tx: ServerTx, e: unknown): void {
    this.stats.errors++;
    this.o.log?.log('error', `${tx.method} handling failed: ${(e as Error)?.stack ?? String(e)}`, {
      callId: tx.request.headers['call-id']?.[0] ?? null,
      method: tx.method,
    });
    try {
      this.respond(tx, 500, 'Server Internal Error');
    } catch {
      /* nothing more to do */
    }
  }

  private handleCancel(req: SipRequest, via: Via, key: string, peer: Peer): void {
    // the INVITE's transaction: same branch and sent-by (§9.2)
    const inviteKey = serverTxKey(req, via.branch, via.host + ':' + (via.port ?? 5060), 'INVITE');
    const invite = this.servers.get(inviteKey);
    const tx = this.servers.create(key, req, 'CANCEL', responsePeer(via, peer));
    if (!invite) {
      this.respond(tx, 481);
      return;
    }
    this.respond(tx, 200, 'OK');
    if (invite.state < TxState.Completed) {
      this.proxy.cancel(invite);
    }
  }

  /**
   * Follows a call (an initial INVITE whose logic ran) for the call-event consumers: setup now,
   * the first final response through the transaction's hook (sip/transactions.ts `onFinal`).
   * A CANCEL that came while the logic ran has already answered 487: reported at once.
   */
  private followCall(tx: ServerTx, calls: CallEvents, target: LogicTarget, r: RunResult, arrived: number): void {
    const callId = tx.request.headers['call-id'][0];
    const secrets = target.service.secrets;
    calls.setup({
      callId,
      at: arrived,
      logic: target.service.logics.get(target.logic)?.name ?? target.logic,
      cd: r.cd,
      outcome: r.outcome.kind,
      ...(secrets !== undefined && secrets.size > 0 ? { isSecret: (name: string) => secrets.has(name) } : {}),
    });
    if (tx.state >= TxState.Completed) {
      calls.final(callId, tx.lastStatus, 'Request Terminated', null, Date.now());
      return;
    }
    tx.call = callId;
    tx.onFinal = (status, reason) => calls.final(callId, status, reason, tx.answeredBy, Date.now());
  }

  /**
   * Carries out an outcome: responseFor (sip/response-for.ts) decides the response, the proxy
   * relays; `headerEdits`: the logic's (action.sipHeaders), for the relayed request or the response.
   * `run`: the logic's run, when it can resume after a relay whose every attempt failed
   * (output.relay's `ifAllFailed`): `lastCode` and `lastRequestURI` are set, the rest of the logic
   * runs and its outcome is carried out on the same transaction.
   */
  apply(tx: ServerTx, req: SipRequest, outcome: Outcome, headerEdits?: readonly HeaderEdit[], run?: RunResult, report?: ResumedRunReport): void {
    if (tx.state >= TxState.Completed) return; // e.g. cancelled meanwhile
    try {
      if (outcome.kind === 'error') {
        // the detail (node, cause) goes to the log, not on the wire
        this.o.log?.log(outcome.status === 503 ? 'warn' : 'error', `${tx.method}: ${outcome.reason}${outcome.where ? ` at ${outcome.where}` : ''}`, {
          callId: req.headers['call-id']?.[0] ?? null,
          method: tx.method,
        });
      }
      const r = responseFor(outcome, req.headers, { now: Date.now(), exit: this.exitResponse, headerEdits });
      if (r.kind === 'relay') {
        const failover = outcome.kind === 'relay' ? outcome.failover : undefined;
        this.proxy.relay(tx, req, r.targets, r.headerEdits, failover === undefined ? undefined : this.sequence(tx, req, failover, run, report));
        return;
      }
      let extra: Record<string, string[]> | undefined;
      if (r.headers.length) {
        extra = {};
        for (const [name, values] of r.headers) extra[name] = values;
      }
      if (r.stateless) this.respondOnce(tx, r.status, r.reason, extra);
      else this.respond(tx, r.status, r.reason, extra);
    } catch (e) {
      this.fail(tx, e);
    }
  }

  /** The proxy's view of a relay with failover: each failed attempt sets `lastCode` / `lastRequestURI`; all failed → the logic resumes. */
  private sequence(tx: ServerTx, req: SipRequest, failover: RelayFailover, run: RunResult | undefined, report?: ResumedRunReport): RelaySequence {
    const vars = run?.cd.vars;
    const resume = run?.resume;
    return {
      failover,
      onAttemptFailed: (uri, status) => {
        if (vars === undefined) return;
        vars.lastCode = status;
        vars.lastRequestURI = uri;
      },
      onAllFailed:
        resume === undefined
          ? undefined
          : () => {
              this.running++;
              const rec = report && { at: Date.now(), t0: performance.now(), input: { ...vars! } };
              const traceFrom = run?.trace?.length ?? 0;
              resume().then(
                (next) => {
                  this.running--;
                  if (report) report(next, rec!, traceFrom);
                  this.apply(tx, req, next.outcome, next.cd.headerEdits, next, report);
                },
                (e) => {
                  this.running--;
                  this.fail(tx, e);
                },
              );
              return true;
            },
    };
  }

  /** Stops taking new requests (they get 503); transactions in progress and in-dialog requests continue. */
  drain(): void {
    this.draining = true;
  }

  /** True while logic runs or transactions wait for their final response. */
  get busy(): boolean {
    return this.running > 0 || this.servers.inFlight > 0;
  }

  close(): void {
    this.loopGuard?.close();
    this.proxy.close();
    this.servers.close();
  }
}
