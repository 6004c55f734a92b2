/**
 * Stateful proxy (RFC 3261 §16) for the `relay` outcome and for requests routed by Route /
 * Request-URI (in-dialog requests, ACK for 2xx).
 *
 * Forwarding (§16.6): copy of the request, Request-URI = target, Max-Forwards decremented (70 when
 * absent), Record-Route for dialog-creating requests when configured (two entries when the relay
 * changes transport, address family or listener: Kamailio's double routing), Path of the binding as Route,
 * a new top Via (branch z9hG4bK + a value derived from the server transaction and target, so a
 * retransmission relayed twice — e.g. by another cluster worker — carries the same branch and the
 * next hop absorbs it), `rport` asked. Next hop: top Route (loose routing), else the binding's
 * `received` (NAT), else the URI host/port (IP literal fast path, else dns.lookup A/AAAA; no SRV).
 * The message leaves from the socket of the next hop's transport and address family, possibly
 * another listener's (sip/listener-group.ts), and the Via and Record-Route name that socket.
 *
 * Targets are forked in parallel; responses (§16.7): 100 absorbed, other 1xx forwarded, 2xx
 * forwarded at once (other INVITE branches cancelled), finals collected and the best sent when all
 * branches are done (6xx wins, else the lowest class; a received 503 becomes 500). Locally: timeout
 * → 408, unreachable (TCP refused, send error) → 503. CANCEL (§16.10): 200 to the CANCEL, CANCEL
 * to every branch that had a provisional (later ones as soon as one arrives), 487 upstream.
 * Responses matching no client transaction whose top Via is ours are forwarded statelessly
 * (2xx retransmissions, §16.7/§16.11).
 *
 * A small dialog table (Call-ID of an INVITE answered 2xx through us → both contacts) routes
 * in-dialog requests that reach us without a Route set (UAs ignoring our Record-Route, or when
 * Record-Route is off); it is bounded and expires entries.
 *
 * No open relay: our Record-Route carries `sfr`, an HMAC of the dialog's Call-ID under the route
 * secret (shared by the SIP threads and by instances sharing the nonce secret). An in-dialog
 * request is relayed only when the Route of ours it arrives with carries the right `sfr` for its
 * Call-ID, or when it belongs to a dialog in the table; `Route: <sip:us;lr>,<sip:anywhere;lr>`
 * with a made-up To tag is a forgery and gets 404 from the front end.
 */
import { isIP } from 'node:net';
import { LRUCache } from 'lru-cache';
import { growingLru } from '../engine/lru';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import dns from 'node:dns';
import net from 'node:net';
import { parseNameAddr, parseUri, splitHeaderList } from '../grammar/sip-values';
import type { HeaderEdit, RelayFailover, RelayTarget } from '../engine/types';
import type { CallEvents } from './call-events';
import { editRequestHeaders } from './header-edits';
import { createHeaders, headerList, parseMaxForwards, topVia, type SipRequest, type SipResponse } from './message';
import { buildResponse, reasonPhrase, serializeMessage } from './serializer';
import { ClientTransactions, TxState, type ClientTx, type ServerTransactions, type ServerTx } from './transactions';
import type { Peer, Proto, SipSender } from './transport';
import { DEFAULT_TRANSPORT, transportByVia, transportNamed, transportOf, type SipTransport } from './transports';
import { detached } from '../engine/detached';
import { hasControlChar } from '../engine/values';
import { noSocket, type ListenerGroup, type Origin } from './listener-group';

export const BRANCH_PREFIX = 'z9hG4bKsf';

export interface ProxyOptions {
  /** Record-Route dialog-creating requests (default true). */
  recordRoute?: boolean;
  /** Host written in Via / Record-Route. */
  advertisedHost: string;
  /** Transport name → our port for it (Via, Record-Route, "is this URI us"). */
  ports: ReadonlyMap<string, number>;
  /** Extra host names / addresses that mean "this proxy" in Route and Request-URI. */
  aliases?: string[];
  /** Key of the `sfr` dialog signature in our Record-Route (default: random, this proxy only). */
  routeSecret?: Buffer;
  /** This instance's server id (usrloc's server_id): only bindings carrying it are sent over their connection (default 0). */
  serverId?: number;
  /** The other listeners of this SIP thread: responses to our relays may reach their sockets (sip/listener-group.ts). */
  group?: ListenerGroup;
  log?: (level: 'debug' | 'info' | 'warn' | 'error', message: string, fields?: Record<string, unknown>) => void;
  /** Told of each call's relay attempts (sip/call-events.ts), for the server transactions marked as calls (`ServerTx.call`). */
  calls?: CallEvents;
}

/**
 * A relay with failover (RelayOutcome.failover): what the proxy tells the caller as the
 * sequence goes. `onAllFailed` returning true hands the transaction back (the logic resumes at
 * its `ifAllFailed` exit and answers or relays again); false or absent: the last attempt's best
 * response goes upstream.
 */
export interface RelaySequence {
  failover: RelayFailover;
  onAttemptFailed?(uri: string | null, status: number, reason: string): void;
  onAllFailed?(uri: string | null, status: number, reason: string): boolean;
}

interface Branch {
  /** The target's URI (the attempt's destination). */
  uri: string;
  tx: ClientTx | null;
  done: boolean;
  cancelPending: boolean;
  status: number;
  response: SipResponse | null;
}

interface RelayState {
  branches: Branch[];
  pending: number;
  finalSent: boolean;
  /** Attempts of this server transaction before this one (their branch ids differ). */
  attempt: number;
  sequence: RelaySequence | null;
  /** The next of `sequence.failover.alternatives` to try. */
  nextAlternative: number;
  headerEdits: readonly HeaderEdit[] | undefined;
}

interface Dialog {
  callerTag: string;
  /** Where requests from the callee go: the caller's Contact, sent to where the caller's requests came from. */
  callerUri: string;
  callerPeer: Peer;
  calleeUri: string;
  calleePeer: Peer;
}

const DIALOG_CREATING = new Set(['INVITE', 'SUBSCRIBE', 'REFER', 'NOTIFY']);

/** What route preprocessing found (§16.4): no Route of ours, ours without a valid dialog signature, ours signed for this Call-ID. */
export const enum OurRoute {
  None = 0,
  Unsigned = 1,
  Signed = 2,
}
/** A resolved host is reused this long; a failed lookup for DNS_FAILURE_TTL_MS (so a burst does not flood the resolver). */
const DNS_TTL_MS = 30_000;
const DNS_FAILURE_TTL_MS = 5000;
/** Hosts kept at most (least recently used forgotten first). */
const DNS_CACHE_MAX = 10_000;
/** Dialogs kept at most (least recently used forgotten first), each for at most DIALOG_TTL_MS. */
const DIALOGS_MAX = 100_000;
const DIALOG_TTL_MS = 4 * 3600_000;

function isLoopbackOrAny(h: string): boolean {
  return h === '127.0.0.1' || h === '0.0.0.0' || h === '::1' || h === '[::1]' || h === '::' || h === 'localhost';
}

/**
 * The transport a URI selects: its `transport` when registered, else the default. A `sips:` URI
 * needs a secure one (RFC 3261 §26.2.2): TLS, also for the deprecated `sips:…;transport=tcp`,
 * unless it names a secure transport itself (WSS).
 */
function transportOfUri(scheme: string, transport: string | undefined): SipTransport | undefined {
  const named = transport ? transportNamed(transport) : undefined;
  if (scheme !== 'sips' || named?.secure) return named;
  return transportNamed('tls') ?? named;
}

/** Next-hop of a URI: host (brackets stripped), port (the transport's default when absent: 5060, 5061 for TLS), protocol. */
export function hopOf(uriText: string): { host: string; port: number; proto: Proto } | null {
  const u = parseUri(uriText);
  if (!u || (u.scheme !== 'sip' && u.scheme !== 'sips')) {
    // `received` may be stored as ip:port
    const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(uriText.trim());
    return m ? { host: m[1], port: Number(m[2]), proto: DEFAULT_TRANSPORT } : null;
  }
  const t = transportOfUri(u.scheme, u.params.transport ?? undefined);
  const host = u.params.maddr ?? u.host;
  return {
    host: host.charCodeAt(0) === 91 ? host.slice(1, -1) : host,
    port: u.port ?? t?.defaultPort ?? 5060,
    proto: t?.name ?? DEFAULT_TRANSPORT,
  };
}

/**
 * The connection a binding is tied to, when server `serverId` holds it (its server_id, a stream
 * transport named by its socket): the peer to send to, flow only. The remote end must still be the
 * binding's: its `received` (NAT: the source of the REGISTER), else the Contact host when it is an
 * address. Null: send as to any other target.
 */
export function flowPeerOf(target: Pick<RelayTarget, 'uri' | 'received' | 'connection'>, serverId: number): Peer | null {
  const c = target.connection;
  if (!c || c.id < 0 || c.serverId !== serverId) return null;
  const t = transportNamed(/^([a-z0-9-]+):/i.exec(c.socket ?? '')?.[1] ?? '');
  if (t === undefined || t.framing !== 'stream') return null;
  const received = target.received ? hopOf(target.received) : null;
  const contact = received ? null : hopOf(target.uri);
  const address = received ? received.host : contact && isIP(contact.host) ? contact.host : '';
  return { proto: t.name, address, port: received ? received.port : 0, connId: c.id, flowOnly: true };
}

export class Proxy {
  readonly clients: ClientTransactions;
  /** Host → address (or null: lookup failed, cached briefly so a burst does not flood the resolver). */
  private readonly dnsCache = new LRUCache<string, { address: string | null }>({ max: DNS_CACHE_MAX, ttl: DNS_TTL_MS });
  /**
   * Dialogs we relayed, by Call-ID (in-dialog requests without a Route set); memory grows with the
   * dialogs held (engine/lru.ts).
   */
  private readonly dialogs = growingLru<string, Dialog>(DIALOGS_MAX, { ttl: DIALOG_TTL_MS });
  private readonly localHosts: Set<string>;
  private readonly recordRoute: boolean;
  private seq = 0;
  private readonly dialogSweep: NodeJS.Timeout;
  private readonly routeSecret: Buffer;
  /** Our ports, every transport together. */
  private readonly ourPorts: Set<number>;
  /** The transport named by the second of our double Record-Route entries a request arrived with (preprocessRoute → nextHop). */
  private readonly forcedTransport = new WeakMap<SipRequest, Proto>();

  constructor(
    private readonly transports: SipSender,
    private readonly servers: ServerTransactions,
    private readonly o: ProxyOptions,
    timers?: { t1?: number; t2?: number; t4?: number },
  ) {
    this.clients = new ClientTransactions(transports, timers);
    o.group?.joinClients(this.clients);
    this.recordRoute = o.recordRoute ?? true;
    this.routeSecret = o.routeSecret ?? randomBytes(32);
    this.ourPorts = new Set(o.ports.values());
    this.localHosts = new Set([o.advertisedHost.toLowerCase(), ...(o.aliases ?? []).map((a) => a.toLowerCase())]);
    // expired dialogs read as absent; the sweep frees their memory
    this.dialogSweep = setInterval(() => {
      this.dialogs.purgeStale();
    }, 10_000);
    this.dialogSweep.unref();
  }

  close(): void {
    clearInterval(this.dialogSweep);
    this.o.group?.leaveClients(this.clients);
    this.clients.close();
  }

  // ---------------------------------------------------------------- locality

  private isLocalHostPort(host: string, port: number | null): boolean {
    const h = (host.charCodeAt(0) === 91 ? host.slice(1, -1) : host).toLowerCase();
    // another listener's socket of this thread is us too (double Record-Route across listeners)
    if (this.transports.isOurs?.(h, port ?? 5060) === true) return true;
    const ours = port !== null && this.ourPorts.has(port);
    // The domain and its aliases name this service whatever port we listen on (a load balancer or
    // DNS SRV points there); an address needs our port too.
    if (!isIP(h) && h !== this.o.advertisedHost.toLowerCase() && this.localHosts.has(h)) return port === null || ours;
    if (!(port === null ? this.ourPorts.has(5060) : ours)) return false;
    return this.localHosts.has(h) || (isLoopbackOrAny(h) && isLoopbackOrAny(this.o.advertisedHost));
  }

  /**
   * Proxy-Authorization for this service's realm was consumed here (RFC 3261 §22.3: a proxy
   * removes the credentials meant for it); credentials for realms further on are kept. Our realm
   * is the configured domain (an alias) or, by default, the From host.
   */
  private consumeCredentials(headers: SipRequest['headers']): void {
    const creds = headers['proxy-authorization'];
    if (!creds?.length) return;
    const fromHost = (/@([^;>:\s]+)/.exec(headers.from?.[0] ?? '')?.[1] ?? '').toLowerCase();
    const kept = creds.filter((c) => {
      const realm = /realm\s*=\s*"([^"]*)"/i.exec(c)?.[1]?.toLowerCase();
      return realm === undefined || (realm !== fromHost && !this.localHosts.has(realm));
    });
    if (kept.length) headers['proxy-authorization'] = kept;
    else delete headers['proxy-authorization'];
  }

  /** True when the URI designates this proxy (host and port). */
  isLocalUri(uri: string): boolean {
    const u = parseUri(uri);
    return !!u && (u.scheme === 'sip' || u.scheme === 'sips') && this.isLocalHostPort(u.host, u.port);
  }

  /**
   * §16.4 route information preprocessing: Request-URI we put in a Record-Route (a strict router
   * before us) → replaced by the last Route; top Route that is us → removed. Returns true when a
   * Route of ours was consumed.
   */
  preprocessRoute(req: SipRequest): OurRoute {
    let routes = req.headers.route ? headerList(req, 'route') : null;
    let strict: string | null = null;
    if (routes && routes.length && this.isLocalUri(req.uri) && /;lr\b/i.test(req.uri)) {
      const last = routes[routes.length - 1];
      const na = parseNameAddr(last);
      if (na) {
        strict = req.uri;
        req.uri = na.uri;
        routes = routes.slice(0, -1);
      }
    }
    if (!routes || routes.length === 0) return strict === null ? OurRoute.None : this.signatureOf(strict, req);
    const top = parseNameAddr(routes[0]);
    if (!top || !this.isLocalUri(top.uri)) return strict === null ? OurRoute.None : this.signatureOf(strict, req);
    let found = this.signatureOf(top.uri, req);
    routes = routes.slice(1);
    // A second entry of ours: the double Record-Route of a relay that changed transport or address
    // family (Kamailio's rr double routing). Consumed too, signed like the first; it names the
    // side facing the next hop, whose transport the request leaves on (Kamailio forces its socket).
    if (routes.length) {
      const next = parseNameAddr(routes[0]);
      if (next && this.isLocalUri(next.uri)) {
        routes = routes.slice(1);
        if (this.signatureOf(next.uri, req) !== OurRoute.Signed) found = OurRoute.Unsigned;
        const hop = hopOf(next.uri);
        if (hop) this.forcedTransport.set(req, hop.proto);
      }
    }
    if (routes.length) req.headers.route = routes;
    else delete req.headers.route;
    return found;
  }

  /** The dialog signature of a Call-ID (`sfr` in our Record-Route). */
  private dialogSignature(callId: string): string {
    return createHmac('sha256', this.routeSecret).update(callId).digest('base64url').slice(0, 22);
  }

  /** Whether a URI of ours carries the right `sfr` for the request's Call-ID. */
  private signatureOf(uri: string, req: SipRequest): OurRoute {
    const sfr = parseUri(uri)?.params.sfr;
    const callId = req.headers['call-id']?.[0];
    return sfr && callId !== undefined && sfr === this.dialogSignature(callId) ? OurRoute.Signed : OurRoute.Unsigned;
  }

  /** True when the request belongs to a dialog this proxy relayed (the dialog table). */
  knowsDialog(req: SipRequest): boolean {
    return this.dialogTarget(req) !== null;
  }

  // ---------------------------------------------------------------- next hop

  private resolve(host: string, cb: (err: Error | null, address?: string) => void): void {
    if (net.isIP(host)) {
      cb(null, host);
      return;
    }
    const hit = this.dnsCache.get(host);
    if (hit) {
      if (hit.address === null) cb(new Error(`${host} does not resolve`));
      else cb(null, hit.address);
      return;
    }
    dns.lookup(host, (err, address) => {
      if (err) {
        this.dnsCache.set(host, { address: null }, { ttl: DNS_FAILURE_TTL_MS });
        cb(err);
        return;
      }
      this.dnsCache.set(host, { address });
      cb(null, address);
    });
  }

  /**
   * Where a request goes: top Route (loose routing), else `received`, else the Request-URI, over
   * `forced` when our double Record-Route named the transport (else the URI's).
   */
  private nextHop(req: SipRequest, received: string | null | undefined, forced?: Proto): { host: string; port: number; proto: Proto } | null {
    const routes = req.headers.route;
    if (routes && routes.length) {
      const first = routes[0].indexOf(',') >= 0 ? splitHeaderList(routes[0])[0] : routes[0];
      const na = parseNameAddr(first);
      if (na) return hopOf(na.uri);
    }
    const uriHop = hopOf(req.uri);
    const byUri = uriHop && forced !== undefined ? { ...uriHop, proto: forced } : uriHop;
    if (received) {
      const r = hopOf(received);
      if (r) return { host: r.host, port: r.port, proto: byUri?.proto ?? r.proto };
    }
    return byUri;
  }

  // ---------------------------------------------------------------- forwarding

  private branchFor(stx: ServerTx | null, target: string, i: string | number): string {
    if (stx === null) return BRANCH_PREFIX + (++this.seq).toString(36) + Math.random().toString(36).slice(2, 10);
    const h = createHash('md5')
      .update(stx.key)
      .update('\x00')
      .update(target)
      .update('\x00' + i)
      .digest('base64url');
    return BRANCH_PREFIX + h.slice(0, 22);
  }

  /**
   * The socket a message to `address` over `proto` leaves from, as Via and Record-Route name it:
   * possibly another listener's (sip/listener-group.ts); null when none reaches the address.
   */
  private origin(proto: Proto, address: string): Origin | null {
    const t = this.transports;
    return t.origin !== undefined ? t.origin(proto, address) : { host: this.o.advertisedHost, port: this.o.ports.get(proto) ?? 0 };
  }

  private viaFor(proto: Proto, from: Origin, branch: string): string {
    const host = net.isIPv6(from.host) ? `[${from.host}]` : from.host;
    return `SIP/2.0/${transportOf(proto).via} ${host}:${from.port};branch=${branch};rport`;
  }

  private recordRouteValue(proto: Proto, from: Origin, callId: string): string {
    const host = net.isIPv6(from.host) ? `[${from.host}]` : from.host;
    const t = transportOf(proto);
    return `<sip:${host}:${from.port}${t.inUri ? `;transport=${t.name}` : ''};lr;sfr=${this.dialogSignature(callId)}>`;
  }

  /**
   * Our Record-Route for a request that came in from `inbound` and leaves over `proto` from `out`
   * (§16.6 step 4). One entry when both sides are the same socket; two when the relay changes
   * transport, address family or listener (Kamailio's rr double routing, enable_double_rr): the
   * first names the outgoing side (the callee's route set starts there), the second the incoming
   * side (the caller's, reversed, starts there), so each party reaches us over its own transport.
   */
  private recordRoutes(inbound: Peer, proto: Proto, out: Origin, callId: string): string[] {
    const outgoing = this.recordRouteValue(proto, out, callId);
    const inn = this.origin(inbound.proto, inbound.address) ?? out;
    if (inbound.proto === proto && inn.host === out.host && inn.port === out.port) return [outgoing];
    return [outgoing, this.recordRouteValue(inbound.proto, inn, callId)];
  }

  /** The forwarded copy (§16.6 steps 1-5, without the Via and the Record-Route). */
  private copyForTarget(req: SipRequest, target: RelayTarget | null): SipRequest {
    const headers = createHeaders();
    for (const name in req.headers) headers[name] = req.headers[name];
    const mf = req.headers['max-forwards'];
    const n = mf ? parseMaxForwards(mf[0]) : null;
    headers['max-forwards'] = [String(n === null ? 70 : Math.max(0, n - 1))];
    if (target?.path?.length) headers.route = [...target.path, ...(headers.route ?? [])];
    if (target) this.consumeCredentials(headers);
    return { method: req.method, uri: target ? target.uri : req.uri, version: 'SIP/2.0', headers, body: req.body };
  }

  /**
   * Relays a request to the targets within server transaction `stx` (parallel forking).
   * `keepUri`: route by the existing Request-URI/Route (in-dialog requests). `headerEdits`: the
   * logic's (action.sipHeaders), applied to each branch's copy before our Via and Record-Route.
   */
  relay(stx: ServerTx, req: SipRequest, targets: RelayTarget[], headerEdits?: readonly HeaderEdit[], sequence?: RelaySequence): void {
    if (stx.cancelled) {
      this.respondLocal(stx, 487);
      return;
    }
    if (targets.length === 0) {
      this.respondLocal(stx, 480);
      return;
    }
    const previous = stx.relay as RelayState | null;
    this.startAttempt(stx, req, targets, {
      branches: [],
      pending: targets.length,
      finalSent: false,
      attempt: previous === null ? 0 : previous.attempt + 1,
      sequence: sequence ?? null,
      nextAlternative: 0,
      headerEdits,
    });
  }

  /** One attempt: its targets forked in parallel, within `state` (a fresh one per attempt). */
  private startAttempt(stx: ServerTx, req: SipRequest, targets: RelayTarget[], state: RelayState): void {
    stx.relay = state;
    if (stx.call !== null)
      this.o.calls?.attempt(
        stx.call,
        targets.map((t) => t.uri),
        Date.now(),
      );
    const prefix = state.attempt === 0 ? '' : `${state.attempt}/`;
    targets.forEach((target, i) => {
      const branch: Branch = { uri: target.uri, tx: null, done: false, cancelPending: false, status: 0, response: null };
      state.branches.push(branch);
      this.startBranch(stx, state, branch, req, target, prefix + i, state.headerEdits);
    });
  }

  /**
   * After an attempt failed with `chosen`: the next alternative, or the logic's `ifAllFailed`.
   * True when the sequence took over (nothing goes upstream now).
   */
  private failOver(stx: ServerTx, state: RelayState, chosen: Branch): boolean {
    const seq = state.sequence;
    if (seq === null || !seq.failover.codes(chosen.status)) return false;
    const uri = chosen.uri;
    const reason = chosen.response?.reason ?? reasonPhrase(chosen.status);
    const next = seq.failover.alternatives[state.nextAlternative];
    if (next === undefined && seq.onAllFailed === undefined) return false;
    seq.onAttemptFailed?.(uri, chosen.status, reason);
    if (stx.call !== null) this.o.calls?.attemptFailed(stx.call, uri, chosen.status, reason, Date.now());
    if (next === undefined) return seq.onAllFailed!(uri, chosen.status, reason);
    this.startAttempt(stx, stx.request, next, {
      branches: [],
      pending: next.length,
      finalSent: false,
      attempt: state.attempt + 1,
      sequence: seq,
      nextAlternative: state.nextAlternative + 1,
      headerEdits: state.headerEdits,
    });
    return true;
  }

  private startBranch(
    stx: ServerTx,
    state: RelayState,
    branch: Branch,
    req: SipRequest,
    target: RelayTarget,
    i: string | number,
    edits?: readonly HeaderEdit[],
  ): void {
    const fail = (status: number) => this.branchFinal(stx, state, branch, status, null);
    // a target URI built from a sender's value must not end the request line and start a header
    if (hasControlChar(target.uri)) {
      this.o.log?.('warn', 'relay: a target URI holds a control character (CR, LF, …): not relayed', { callId: req.headers['call-id']?.[0] ?? null });
      fail(416);
      return;
    }
    const fwd = this.copyForTarget(req, target);
    if (edits) editRequestHeaders(fwd.headers, edits);
    const flow = this.flowOf(target);
    if (flow) {
      // a binding tied to its connection: over that connection or not at all (no DNS, no new connection)
      this.startClient(stx, state, branch, req, fwd, this.branchFor(stx, target.uri, i), flow, 480);
      return;
    }
    const hop = this.nextHop(fwd, fwd.headers.route ? null : target.received, this.forcedTransport.get(req));
    if (!hop) {
      fail(416);
      return;
    } // unusable target URI
    this.resolve(hop.host, (err, address) => {
      if (err || !address) {
        this.o.log?.('warn', `relay: cannot resolve ${hop.host}: ${err?.message}`, { callId: req.headers['call-id']?.[0] ?? null });
        fail(503);
        return;
      }
      // a host name: the TLS server's name (SNI, certificate check)
      const dest: Peer = { proto: hop.proto, address, port: hop.port, ...(net.isIP(hop.host) === 0 ? { serverName: hop.host } : {}) };
      this.startClient(stx, state, branch, req, fwd, this.branchFor(stx, target.uri, i), dest, 503);
    });
  }

  private flowOf(target: RelayTarget): Peer | null {
    return flowPeerOf(target, this.o.serverId ?? 0);
  }

  /**
   * Starts the branch's client transaction to `dest` from the socket the listener group chooses
   * (its Via and Record-Route name it); a transport failure ends the branch with `unreachable`.
   */
  private startClient(stx: ServerTx, state: RelayState, branch: Branch, req: SipRequest, fwd: SipRequest, id: string, dest: Peer, unreachable: number): void {
    const fail = (status: number) => this.branchFinal(stx, state, branch, status, null);
    if (stx.cancelled && branch.tx === null) {
      fail(487);
      return;
    }
    const callId = req.headers['call-id']?.[0] ?? null;
    const where = dest.flowOnly ? `connection ${dest.connId}` : `${dest.address}:${dest.port}/${dest.proto}`;
    const out = this.origin(dest.proto, dest.address);
    if (out === null) {
      this.o.log?.('warn', `relay to ${where}: ${noSocket(dest.proto, dest.address)}`, { callId });
      fail(503);
      return;
    }
    if (this.recordRoute && callId !== null && DIALOG_CREATING.has(req.method) && !hasTag(req.headers.to?.[0])) {
      fwd.headers['record-route'] = [...this.recordRoutes(stx.peer, dest.proto, out, callId), ...(req.headers['record-route'] ?? [])];
    }
    fwd.headers.via = [this.viaFor(dest.proto, out, id), ...(req.headers.via ?? [])];
    branch.tx = this.clients.start(
      id,
      fwd,
      dest,
      {
        onResponse: (res) => this.branchResponse(stx, state, branch, res, dest),
        onTimeout: () => fail(408),
        onTransportError: (e) => {
          this.o.log?.(dest.flowOnly ? 'info' : 'warn', `relay to ${where}: ${e.message}`, { callId });
          fail(unreachable);
        },
      },
      state.sequence?.failover.attemptTimeoutMs,
    );
  }

  private branchResponse(stx: ServerTx, state: RelayState, branch: Branch, res: SipResponse, from: Peer): void {
    const status = res.status;
    if (status < 200) {
      if (branch.cancelPending) {
        branch.cancelPending = false;
        this.sendCancel(branch);
      }
      if (status === 100 || state.finalSent) return;
      this.servers.respond(stx, this.upstream(res), status);
      return;
    }
    if (status < 300) {
      if (stx.isInvite) {
        this.rememberDialog(stx.request, res, stx.peer, from);
        for (const b of state.branches) if (b !== branch && !b.done) this.cancelBranch(b);
      }
      branch.done = true;
      state.pending--;
      state.finalSent = true;
      stx.answeredBy = branch.uri;
      this.servers.respond(stx, this.upstream(res), status);
      return;
    }
    this.branchFinal(stx, state, branch, status, res);
  }

  private branchFinal(stx: ServerTx, state: RelayState, branch: Branch, status: number, res: SipResponse | null): void {
    if (branch.done) return;
    branch.done = true;
    branch.status = status;
    branch.response = res;
    state.pending--;
    if (status >= 600 && stx.isInvite) for (const b of state.branches) if (!b.done) this.cancelBranch(b);
    if (state.pending > 0 || state.finalSent) return;
    state.finalSent = true;
    // best response (§16.7 step 6)
    let best: Branch | null = null;
    for (const b of state.branches) {
      if (b.status >= 600) {
        best = b;
        break;
      }
      if (!best || Math.floor(b.status / 100) < Math.floor(best.status / 100)) best = b;
    }
    const chosen = best!;
    if (stx.cancelled && stx.isInvite) {
      this.respondLocal(stx, 487);
      return;
    }
    if (this.failOver(stx, state, chosen)) return;
    stx.answeredBy = chosen.uri;
    if (chosen.response) {
      if (chosen.status === 503) {
        this.respondLocal(stx, 500);
        return;
      }
      this.servers.respond(stx, this.upstream(chosen.response), chosen.status);
    } else {
      this.respondLocal(stx, chosen.status);
    }
  }

  /** Response for upstream: our top Via removed. */
  private upstream(res: SipResponse): SipResponse {
    const via = res.headers.via;
    const headers = createHeaders();
    for (const name in res.headers) headers[name] = res.headers[name];
    if (via[0].indexOf(',') >= 0) {
      const parts = splitHeaderList(via[0]);
      headers.via = parts.length > 1 ? [parts.slice(1).join(', '), ...via.slice(1)] : via.slice(1);
    } else headers.via = via.slice(1);
    return { status: res.status, reason: res.reason, version: res.version, headers, body: res.body };
  }

  respondLocal(stx: ServerTx, status: number, reason?: string, extra?: Record<string, string | string[]>): void {
    stx.toTag ??= randomTag();
    this.servers.respond(stx, buildResponse(stx.request, status, reason, extra, stx.toTag), status);
  }

  // ---------------------------------------------------------------- CANCEL

  /** CANCEL matched INVITE transaction `stx` (the 200 to the CANCEL is the caller's job). */
  cancel(stx: ServerTx): void {
    if (stx.cancelled) return;
    stx.cancelled = true;
    if (stx.state >= TxState.Completed) return;
    const state = stx.relay as RelayState | null;
    // still in the service logic, or back in it after every attempt failed (ifAllFailed)
    if (!state || state.pending === 0) {
      this.respondLocal(stx, 487);
      return;
    }
    for (const b of state.branches) if (!b.done) this.cancelBranch(b);
  }

  private cancelBranch(b: Branch): void {
    if (!b.tx || b.tx.state >= TxState.Completed) return;
    if (b.tx.gotProvisional) this.sendCancel(b);
    else b.cancelPending = true;
  }

  private sendCancel(b: Branch): void {
    const inv = b.tx!.request;
    const h = createHeaders();
    h.via = [inv.headers.via[0]];
    if (inv.headers.route) h.route = inv.headers.route.slice();
    h['max-forwards'] = ['70'];
    h.from = inv.headers.from;
    h.to = inv.headers.to;
    h['call-id'] = inv.headers['call-id'];
    const cseq = inv.headers.cseq[0];
    h.cseq = [cseq.slice(0, cseq.indexOf(' ')) + ' CANCEL'];
    const cancel: SipRequest = { method: 'CANCEL', uri: inv.uri, version: 'SIP/2.0', headers: h, body: '' };
    this.clients.start(b.tx!.branch, cancel, b.tx!.dest, { onResponse() {}, onTimeout() {}, onTransportError() {} });
  }

  // ---------------------------------------------------------------- responses from downstream

  /** A response received from the network. */
  handleResponse(res: SipResponse, raw: Buffer): void {
    const via = topVia(res);
    if (!via || !via.branch) return;
    const cseq = res.headers.cseq[0];
    const method = cseq.slice(cseq.lastIndexOf(' ') + 1);
    // a relay that left from another listener's socket gets its answers there (sip/listener-group.ts)
    const ctx = via.branch.startsWith(BRANCH_PREFIX)
      ? (this.clients.match(via.branch, method) ?? this.o.group?.matchClient(via.branch, method, this.clients))
      : undefined;
    if (ctx) {
      ctx.receive(res, raw);
      return;
    }
    // no transaction: stateless forwarding if the top Via is ours (2xx retransmissions, §16.11)
    if (!via.branch.startsWith(BRANCH_PREFIX) || res.headers.via.length + (res.headers.via[0].indexOf(',') >= 0 ? 1 : 0) < 2) return;
    const up = this.upstream(res);
    const next = topVia(up);
    if (!next) return;
    const proto: Proto = transportByVia(next.transport)?.name ?? DEFAULT_TRANSPORT;
    const host = next.received ?? next.host;
    const port = next.rport ?? next.port ?? 5060;
    this.send(serializeMessage(up), { proto, address: host.charCodeAt(0) === 91 ? host.slice(1, -1) : host, port });
  }

  private send(buf: Buffer, peer: Peer): void {
    this.resolve(peer.address, (err, address) => {
      if (!err && address) this.transports.send(buf, { ...peer, address, ...(net.isIP(peer.address) === 0 ? { serverName: peer.address } : {}) });
    });
  }

  // ---------------------------------------------------------------- requests routed without the logic

  /**
   * ACK for a 2xx (no server transaction: §16.11 forwards it statelessly) or another request
   * routed by Route / Request-URI. Returns false when there is nowhere to send it.
   */
  forwardAck(req: SipRequest): boolean {
    const target = this.dialogTarget(req);
    const mf = req.headers['max-forwards'];
    if (mf && parseMaxForwards(mf[0]) === 0) return false;
    const fwd = this.copyForTarget(req, target ? { uri: target.uri } : null);
    const hop =
      target && !fwd.headers.route
        ? { host: target.peer.address, port: target.peer.port, proto: target.peer.proto }
        : this.nextHop(fwd, null, this.forcedTransport.get(req));
    if (!hop) return false;
    const callId = req.headers['call-id']?.[0] ?? null;
    const sendTo = (dest: Peer) => {
      const out = this.origin(dest.proto, dest.address);
      if (out === null) {
        this.o.log?.('warn', `ACK to ${dest.address}:${dest.port}/${dest.proto}: ${noSocket(dest.proto, dest.address)}`, { callId });
        return;
      }
      fwd.headers.via = [this.viaFor(dest.proto, out, this.branchFor(null, '', 0)), ...(req.headers.via ?? [])];
      this.transports.send(serializeMessage(fwd), dest);
    };
    // the dialog's other end registered over a connection of ours: that connection only
    if (target?.peer.flowOnly && !fwd.headers.route) sendTo(target.peer);
    else
      this.resolve(hop.host, (err, address) => {
        if (!err && address) sendTo({ proto: hop.proto, address, port: hop.port });
      });
    return true;
  }

  /** An in-dialog request routed statefully by its Route set / Request-URI (or the dialog table). */
  forwardInDialog(stx: ServerTx, req: SipRequest): boolean {
    const target = this.dialogTarget(req);
    if (target) {
      if (req.method === 'BYE') this.dialogs.delete(req.headers['call-id'][0]);
      const p = target.peer;
      const connection = p.flowOnly && p.connId !== undefined ? { id: p.connId, serverId: this.o.serverId ?? 0, socket: `${p.proto}:` } : undefined;
      this.relay(stx, req, [{ uri: target.uri, received: req.headers.route ? null : `${p.address}:${p.port}`, ...(connection ? { connection } : {}) }]);
      return true;
    }
    if (this.isLocalUri(req.uri) || !parseUri(req.uri)) return false;
    this.relay(stx, req, [{ uri: req.uri }]);
    return true;
  }

  /**
   * The other party of a dialog we relayed, for an in-dialog request without a Route set: one
   * addressed to us, or to that party's own Contact by a UA that sends everything to its outbound
   * proxy (no Record-Route was asked). Either way it goes only to the dialog's other end, never to
   * a target the request names.
   */
  private dialogTarget(req: SipRequest): { uri: string; peer: Peer } | null {
    if (req.headers.route?.length) return null;
    const d = this.dialogs.get(req.headers['call-id'][0]);
    if (!d) return null;
    const from = parseNameAddr(req.headers.from[0]);
    const target = from?.params.tag === d.callerTag ? { uri: d.calleeUri, peer: d.calleePeer } : { uri: d.callerUri, peer: d.callerPeer };
    return this.isLocalUri(req.uri) || req.uri === target.uri ? target : null;
  }

  private rememberDialog(req: SipRequest, res: SipResponse, callerPeer: Peer, calleePeer: Peer): void {
    const callId = req.headers['call-id'][0];
    if (this.dialogs.has(callId)) return;
    const from = parseNameAddr(req.headers.from[0]);
    const callerContact = req.headers.contact ? parseNameAddr(req.headers.contact[0]) : null;
    const calleeContact = res.headers.contact ? parseNameAddr(res.headers.contact[0]) : null;
    if (!from?.params.tag || !callerContact || !calleeContact) return;
    // kept for the call's duration: detached from the INVITE and the 200 they were cut from
    this.dialogs.set(detached(callId), {
      callerTag: detached(from.params.tag),
      callerUri: detached(callerContact.uri),
      callerPeer: { proto: callerPeer.proto, address: callerPeer.address, port: callerPeer.port },
      calleeUri: detached(calleeContact.uri),
      // a callee reached over its binding's connection stays reachable only there (in-dialog requests too)
      calleePeer: calleePeer.flowOnly
        ? { proto: calleePeer.proto, address: calleePeer.address, port: calleePeer.port, connId: calleePeer.connId, flowOnly: true }
        : { proto: calleePeer.proto, address: calleePeer.address, port: calleePeer.port },
    });
  }
}

function hasTag(to: string | undefined): boolean {
  if (!to) return false;
  const na = parseNameAddr(to);
  return !!na && na.params.tag !== undefined;
}

let tagSeq = 0;
const TAG_BASE = Math.random().toString(36).slice(2, 8);
function randomTag(): string {
  return TAG_BASE + (++tagSeq).toString(36);
}
