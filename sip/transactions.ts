/**
 * SIP transactions (RFC 3261 §17).
 *
 * Server side (§17.2): a table keyed by branch + sent-by + method (§17.2.3; ACK matches its
 * INVITE, CANCEL has its own), with the RFC 2543 fallback key (Request-URI, From tag, Call-ID,
 * CSeq number, top Via) for branches without the magic cookie. A retransmitted request is
 * absorbed and the last response resent; an ACK for a non-2xx final is absorbed.
 *
 * Timers without one setTimeout per transaction on the hot path: completed non-INVITE
 * transactions all wait the same Timer J (64·T1 on UDP, 0 on TCP), so they sit in a FIFO whose
 * head is always the next to expire; one sweep timer pops expired heads. Memory is bounded: past
 * `maxCompleted`, the oldest completed transactions are forgotten early (the absorption window
 * shrinks under extreme load instead of memory growing). INVITE transactions with a non-2xx final
 * use real timers (G retransmits on UDP, H waits for the ACK, I absorbs ACK retransmits).
 *
 * Client side (§17.1): INVITE (timers A, B, D) and non-INVITE (E, F, K) client transactions for
 * relayed requests; the ACK for a non-2xx final is generated hop by hop (§17.1.1.3).
 */
import type { SipRequest, SipResponse } from './message';
import { serializeMessage } from './serializer';
import { createHeaders } from './message';
import { flattened } from '../engine/detached';
import type { Peer, SipSender } from './transport';
import { transportNamed } from './transports';
import { ResponseQueue, type Kept } from './response-ring';

/** Whether a peer's transport delivers reliably (no retransmissions, Timers D / K zero); an unknown one does not. */
export const reliable = (p: Peer): boolean => transportNamed(p.proto)?.reliable ?? false;

export const T1 = 500;
export const T2 = 4000;
export const T4 = 5000;

export interface TimerConfig {
  t1: number;
  t2: number;
  t4: number;
}
export const DEFAULT_TIMERS: TimerConfig = { t1: T1, t2: T2, t4: T4 };

export const enum TxState {
  Trying,
  Proceeding,
  Completed,
  Confirmed,
  Terminated,
}

/** True for an RFC 3261 branch (the magic cookie and more): the §17.2.3 key applies. */
export const isRfc3261Branch = (branch: string | null): branch is string => branch !== null && branch.length > 7 && branch.startsWith('z9hG4bK');

/** The §17.2.3 key of a request with an RFC 3261 branch (ACK → INVITE), not flattened (a lookup's). */
export const branchTxKey = (branch: string, sentBy: string, method: string): string =>
  branch + '\x00' + sentBy + '\x00' + (method === 'ACK' ? 'INVITE' : method);

/** Key of a request per §17.2.3 (ACK → INVITE), or the RFC 2543 fallback. */
export function serverTxKey(req: SipRequest, branch: string | null, sentBy: string, method: string): string {
  const m = method === 'ACK' ? 'INVITE' : method;
  // flattened: completed transactions keep their key for Timer J, and it must not keep the message
  if (isRfc3261Branch(branch)) return flattened(branchTxKey(branch, sentBy, m));
  // RFC 2543: Request-URI, From tag, Call-ID, CSeq number, top Via (the To tag is left out so the
  // ACK, which carries our tag, matches its INVITE).
  const h = req.headers;
  const cseq = h.cseq?.[0] ?? '';
  const sp = cseq.indexOf(' ');
  const from = h.from?.[0] ?? '';
  const tagAt = from.toLowerCase().indexOf('tag=');
  return flattened(
    '2543\x00' +
      (m === 'INVITE' ? '' : req.uri) +
      '\x00' +
      (tagAt >= 0 ? from.slice(tagAt) : '') +
      '\x00' +
      (h['call-id']?.[0] ?? '') +
      '\x00' +
      (sp > 0 ? cseq.slice(0, sp) : cseq) +
      '\x00' +
      (h.via?.[0] ?? '') +
      '\x00' +
      m,
  );
}

/**
 * What a completed non-INVITE transaction holds instead of its request: for the 32 s of Timer J it
 * only resends its last response, and hundreds of thousands of parsed requests kept that long cost
 * the garbage collector more than anything else it retains.
 */
const RETIRED_REQUEST: SipRequest = Object.freeze({
  method: '',
  uri: '',
  version: 'SIP/2.0',
  headers: Object.freeze({}),
  body: Buffer.alloc(0),
}) as unknown as SipRequest;

/** A server transaction. `relay` is owned by the proxy while the request is being relayed. */
export class ServerTx implements Kept {
  state: TxState = TxState.Trying;
  /**
   * The last response sent, while the transaction may still send it (an INVITE's Timer G). A
   * completed non-INVITE one keeps it in its table's ring instead (`keptAt`, sip/response-ring.ts).
   */
  lastResponse: Buffer | null = null;
  /** Where the ring holds the last response of a completed non-INVITE transaction (-1: nowhere), and its length. */
  keptAt = -1;
  keptLength = 0;
  lastStatus = 0;
  /** To tag of the responses generated here (the same for every response of the transaction). */
  toTag: string | null = null;
  /** CANCEL received for this INVITE. */
  cancelled = false;
  /** Proxy state while the request is relayed (see proxy.ts). */
  relay: unknown = null;
  /**
   * Told of the first final response (a call's INVITE: sip/call-events.ts `final`); `answeredBy`
   * is the URI of the relayed branch whose response it is (null when generated here).
   */
  onFinal: ((status: number, reason: string) => void) | null = null;
  /** The Call-ID of a call's INVITE whose events are reported (sip/call-events.ts); null otherwise. */
  call: string | null = null;
  answeredBy: string | null = null;
  expiresAt = 0;
  timerG: NodeJS.Timeout | null = null;
  timerH: NodeJS.Timeout | null = null;
  gInterval = 0;
  constructor(
    readonly key: string,
    /** The request; let go (see `RETIRED_REQUEST`) once a completed non-INVITE only absorbs retransmissions. */
    public request: SipRequest,
    readonly method: string,
    /** Where responses go (top Via, received/rport, or the TCP connection). */
    readonly peer: Peer,
  ) {}
  get isInvite(): boolean {
    return this.method === 'INVITE';
  }
  get reliable(): boolean {
    return reliable(this.peer);
  }
}

export interface ServerTxOptions {
  timers?: Partial<TimerConfig>;
  /** Completed transactions remembered for retransmission absorption (default 100 000). */
  maxCompleted?: number;
  /** Bytes of their responses kept, at most (default 64 MiB): past it the oldest are forgotten early. */
  maxCompletedBytes?: number;
  /** Sweep period in ms (default 250). */
  sweepMs?: number;
}

/**
 * The server transaction table, in two maps. `live`: transactions under way, and INVITE ones until
 * their timers end; a few hundred at a time, so its lookups stay in the cache. `completed`: the
 * completed non-INVITE transactions that only absorb retransmissions for Timer J, up to
 * `maxCompleted`. One map for both took every request's insertion and, for a challenged one, its
 * deletion a moment later into a table of 100,000 entries per SIP thread: a Map does not reuse a
 * deleted slot, so those filled it and made V8 build it again in fresh memory every few seconds.
 * A key is in one map at most: a request whose key is known is a retransmission, never a new
 * transaction.
 */
export class ServerTransactions {
  private readonly live = new Map<string, ServerTx>();
  private readonly completed = new Map<string, ServerTx>();
  /** Completed non-INVITE transactions in completion order (all wait the same Timer J), their responses in a ring. */
  private readonly kept: ResponseQueue<ServerTx>;
  private readonly timers: TimerConfig;
  private readonly sweeper: NodeJS.Timeout;
  /** In-flight (not yet answered with a final) transactions. */
  inFlight = 0;

  constructor(
    private readonly transports: SipSender,
    o: ServerTxOptions = {},
  ) {
    this.timers = { ...DEFAULT_TIMERS, ...o.timers };
    // a response kept is a datagram's (a reliable transport keeps none): 64 KiB at most
    this.kept = new ResponseQueue<ServerTx>(o.maxCompleted ?? 100_000, Math.max(o.maxCompletedBytes ?? 64 * 1024 * 1024, 65_536), (tx) => this.retire(tx));
    this.sweeper = setInterval(() => this.kept.expire(Date.now()), o.sweepMs ?? 250);
    this.sweeper.unref();
  }

  get size(): number {
    return this.live.size + this.completed.size;
  }

  get(key: string): ServerTx | undefined {
    return this.live.get(key) ?? this.completed.get(key);
  }

  /** The bytes a retransmission of the transaction's request gets: its last response, or null before any. */
  resendable(tx: ServerTx): Buffer | null {
    return tx.lastResponse ?? this.kept.copy(tx);
  }

  create(key: string, request: SipRequest, method: string, peer: Peer): ServerTx {
    const tx = new ServerTx(key, request, method, peer);
    this.live.set(key, tx);
    this.inFlight++;
    return tx;
  }

  /**
   * Sends a response within the transaction: provisional responses keep it open, a final one
   * completes it (and arms the timers). Retransmissions of the request get `resendable(tx)`.
   */
  respond(tx: ServerTx, res: SipResponse | Buffer, status: number): void {
    if (tx.state >= TxState.Completed) {
      // INVITE: 2xx retransmissions from downstream are passed on (RFC 6026 Accepted state)
      if (tx.isInvite && status >= 200 && status < 300 && tx.lastStatus >= 200 && tx.lastStatus < 300) {
        this.transports.send(Buffer.isBuffer(res) ? res : serializeMessage(res), tx.peer);
      }
      return;
    }
    const buf = Buffer.isBuffer(res) ? res : serializeMessage(res);
    tx.lastResponse = buf;
    tx.lastStatus = status;
    if (status < 200) {
      this.transports.send(buf, tx.peer);
      tx.state = TxState.Proceeding;
      return;
    }
    this.inFlight--;
    tx.state = TxState.Completed;
    // the call's end is reported before its final response leaves: what it frees (a call-limit
    // slot, services/call-limit/releaser.ts) is on its way before the caller can try again
    if (tx.onFinal !== null) {
      const onFinal = tx.onFinal;
      tx.onFinal = null;
      onFinal(status, Buffer.isBuffer(res) ? '' : res.reason);
    }
    this.transports.send(buf, tx.peer);
    if (tx.isInvite) this.completeInvite(tx, status);
    else if (tx.reliable)
      this.forget(tx); // Timer J = 0 on reliable transports
    else {
      tx.request = RETIRED_REQUEST;
      tx.lastResponse = null;
      tx.expiresAt = Date.now() + 64 * this.timers.t1;
      if (this.live.get(tx.key) === tx) this.live.delete(tx.key);
      // (a response larger than the ring is not kept: a retransmission is then absorbed unanswered)
      this.kept.push(tx, buf);
      this.completed.set(tx.key, tx);
    }
  }

  private completeInvite(tx: ServerTx, status: number): void {
    const t = this.timers;
    if (status < 300) {
      // 2xx: the transaction ends (§17.2.1), kept a short while to pass 2xx retransmits / absorb the request
      tx.expiresAt = Date.now() + 64 * t.t1;
      tx.timerH = setTimeout(() => this.forget(tx), 64 * t.t1);
      tx.timerH.unref();
      return;
    }
    if (!tx.reliable) {
      tx.gInterval = t.t1;
      const g = () => {
        if (tx.state !== TxState.Completed || !tx.lastResponse) return;
        this.transports.send(tx.lastResponse, tx.peer);
        tx.gInterval = Math.min(tx.gInterval * 2, t.t2);
        tx.timerG = setTimeout(g, tx.gInterval);
        tx.timerG.unref();
      };
      tx.timerG = setTimeout(g, tx.gInterval);
      tx.timerG.unref();
    }
    tx.timerH = setTimeout(() => this.forget(tx), 64 * t.t1); // Timer H: no ACK came
    tx.timerH.unref();
  }

  /** ACK for the non-2xx final: stop retransmitting, absorb ACK retransmits for Timer I. */
  ack(tx: ServerTx): void {
    if (tx.state !== TxState.Completed || tx.lastStatus < 300) return;
    tx.state = TxState.Confirmed;
    stopTimers(tx);
    if (tx.reliable) {
      this.forget(tx);
      return;
    }
    tx.timerH = setTimeout(() => this.forget(tx), this.timers.t4); // Timer I
    tx.timerH.unref();
  }

  /** Removes a transaction (final sent and timers done, or abandoned). */
  forget(tx: ServerTx): void {
    if (tx.state < TxState.Completed) this.inFlight--;
    tx.state = TxState.Terminated;
    stopTimers(tx);
    if (this.live.get(tx.key) === tx) this.live.delete(tx.key);
    else if (this.completed.get(tx.key) === tx) this.completed.delete(tx.key);
  }

  /** A completed transaction let go (Timer J ended, or past a bound): it leaves the table; its response has left the ring. */
  private retire(tx: ServerTx): void {
    tx.state = TxState.Terminated;
    if (this.completed.get(tx.key) === tx) this.completed.delete(tx.key);
  }

  close(): void {
    clearInterval(this.sweeper);
    for (const tx of this.live.values()) {
      if (tx.timerG) clearTimeout(tx.timerG);
      if (tx.timerH) clearTimeout(tx.timerH);
    }
    this.live.clear();
    this.completed.clear();
    this.kept.clear();
  }
}

// ---------------------------------------------------------------- client transactions

export interface ClientTxEvents {
  /** Any response matched to the transaction (retransmitted finals are absorbed, not reported). */
  onResponse(res: SipResponse, raw: Buffer): void;
  /** Timer B / F fired without a final response. */
  onTimeout(): void;
  /** The transport failed (TCP connect refused, send error). */
  onTransportError(err: Error): void;
}

/**
 * A client transaction for a request the proxy sends. `request` already carries our top Via
 * (with `branch`); `dest` is the next hop.
 */
export class ClientTx {
  state: TxState = TxState.Trying;
  private timerRetrans: NodeJS.Timeout | null = null;
  private timerTimeout: NodeJS.Timeout | null = null;
  private interval: number;
  private readonly raw: Buffer;
  finalStatus = 0;
  /** Set once any provisional response came in (a CANCEL may then be sent, §9.1). */
  gotProvisional = false;

  constructor(
    readonly branch: string,
    readonly request: SipRequest,
    readonly dest: Peer,
    private readonly transports: SipSender,
    private readonly events: ClientTxEvents,
    private readonly timers: TimerConfig,
    private readonly onDone: (tx: ClientTx) => void,
    /** Give up after this long without any response (Kamailio's fr_timer; a relay's failover); default Timer B / F. */
    private readonly noResponseMs = 64 * timers.t1,
  ) {
    this.raw = serializeMessage(request);
    this.interval = timers.t1;
  }

  get isInvite(): boolean {
    return this.request.method === 'INVITE';
  }
  get key(): string {
    return this.branch + '\x00' + (this.request.method === 'ACK' ? 'INVITE' : this.request.method);
  }

  start(): void {
    const t = this.timers;
    this.transports.send(this.raw, this.dest, (err) => {
      if (err && this.state < TxState.Completed) this.transportError(err);
    });
    if (!reliable(this.dest)) this.armRetransmit();
    this.timerTimeout = setTimeout(() => this.timeout(), Math.min(this.noResponseMs, 64 * t.t1)); // Timer B / F
  }

  private armRetransmit(): void {
    this.timerRetrans = setTimeout(() => {
      if (this.state === TxState.Trying || (!this.isInvite && this.state === TxState.Proceeding)) {
        this.transports.send(this.raw, this.dest);
        // Timer A doubles without cap; Timer E caps at T2 (and stays at T2 once Proceeding)
        this.interval = this.isInvite ? this.interval * 2 : this.state === TxState.Proceeding ? this.timers.t2 : Math.min(this.interval * 2, this.timers.t2);
        this.armRetransmit();
      }
    }, this.interval);
  }

  private timeout(): void {
    this.timerTimeout = null;
    if (this.state >= TxState.Completed) return;
    this.terminate();
    this.events.onTimeout();
  }

  private transportError(err: Error): void {
    if (this.state >= TxState.Completed) return;
    this.terminate();
    this.events.onTransportError(err);
  }

  /** Extends Timer C-like waiting for an INVITE once a provisional came (proxy §16.6 step 11). */
  private restartTimeout(ms: number): void {
    if (this.timerTimeout) clearTimeout(this.timerTimeout);
    this.timerTimeout = setTimeout(() => this.timeout(), ms);
  }

  receive(res: SipResponse, raw: Buffer): void {
    const status = res.status;
    if (this.state >= TxState.Completed) {
      // retransmitted non-2xx final to an INVITE: ACK again (§17.1.1.2)
      if (this.isInvite && status >= 300 && this.state === TxState.Completed) this.sendAck(res);
      return;
    }
    if (status < 200) {
      if (this.state === TxState.Trying) {
        this.state = TxState.Proceeding;
        this.gotProvisional = true;
        if (this.isInvite) {
          if (this.timerRetrans) {
            clearTimeout(this.timerRetrans);
            this.timerRetrans = null;
          }
          this.restartTimeout(180_000); // Timer C (3 min)
        }
      } else if (this.isInvite && status > 100) this.restartTimeout(180_000);
      this.events.onResponse(res, raw);
      return;
    }
    this.finalStatus = status;
    if (this.timerRetrans) {
      clearTimeout(this.timerRetrans);
      this.timerRetrans = null;
    }
    if (this.timerTimeout) {
      clearTimeout(this.timerTimeout);
      this.timerTimeout = null;
    }
    if (this.isInvite && status < 300) {
      // 2xx: the transaction ends; the ACK is end to end (the proxy forwards the 2xx upstream)
      this.state = TxState.Terminated;
      this.events.onResponse(res, raw);
      this.onDone(this);
      return;
    }
    this.state = TxState.Completed;
    if (this.isInvite) this.sendAck(res);
    this.events.onResponse(res, raw);
    // Timer D (32 s on UDP) / Timer K (T4 on UDP); 0 on reliable transports
    const wait = !reliable(this.dest) ? (this.isInvite ? 64 * this.timers.t1 : this.timers.t4) : 0;
    if (wait === 0) this.terminate();
    else {
      this.timerTimeout = setTimeout(() => this.terminate(), wait);
      this.timerTimeout.unref();
    }
  }

  /** ACK for a non-2xx final (§17.1.1.3): same Request-URI, top Via, From, Call-ID, CSeq number; To of the response. */
  private sendAck(res: SipResponse): void {
    const r = this.request;
    const h = createHeaders();
    h.via = [r.headers.via[0]];
    if (r.headers.route) h.route = r.headers.route.slice();
    h['max-forwards'] = ['70'];
    h.from = r.headers.from.slice();
    h.to = res.headers.to ? res.headers.to.slice() : r.headers.to.slice();
    h['call-id'] = r.headers['call-id'].slice();
    const cseq = r.headers.cseq[0];
    h.cseq = [cseq.slice(0, cseq.indexOf(' ')) + ' ACK'];
    const ack: SipRequest = { method: 'ACK', uri: r.uri, version: 'SIP/2.0', headers: h, body: '' };
    this.transports.send(serializeMessage(ack), this.dest);
  }

  terminate(): void {
    if (this.timerRetrans) {
      clearTimeout(this.timerRetrans);
      this.timerRetrans = null;
    }
    if (this.timerTimeout) {
      clearTimeout(this.timerTimeout);
      this.timerTimeout = null;
    }
    if (this.state !== TxState.Terminated) {
      this.state = TxState.Terminated;
      this.onDone(this);
    }
  }
}

/** Client transactions by branch + method. */
export class ClientTransactions {
  private readonly table = new Map<string, ClientTx>();
  readonly timers: TimerConfig;
  constructor(
    private readonly transports: SipSender,
    timers: Partial<TimerConfig> = {},
  ) {
    this.timers = { ...DEFAULT_TIMERS, ...timers };
  }

  get size(): number {
    return this.table.size;
  }

  start(branch: string, request: SipRequest, dest: Peer, events: ClientTxEvents, noResponseMs?: number): ClientTx {
    const tx = new ClientTx(
      branch,
      request,
      dest,
      this.transports,
      events,
      this.timers,
      (t) => {
        if (this.table.get(t.key) === t) this.table.delete(t.key);
      },
      noResponseMs,
    );
    this.table.set(tx.key, tx);
    tx.start();
    return tx;
  }

  /** §17.1.3: top Via branch + CSeq method. */
  match(branch: string, cseqMethod: string): ClientTx | undefined {
    return this.table.get(branch + '\x00' + (cseqMethod === 'ACK' ? 'INVITE' : cseqMethod));
  }

  close(): void {
    for (const tx of [...this.table.values()]) tx.terminate();
    this.table.clear();
  }
}

/** Clears a transaction's retransmission (G) and timeout (H / I) timers. */
function stopTimers(tx: ServerTx): void {
  if (tx.timerG) {
    clearTimeout(tx.timerG);
    tx.timerG = null;
  }
  if (tx.timerH) {
    clearTimeout(tx.timerH);
    tx.timerH = null;
  }
}
