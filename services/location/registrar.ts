/**
 * The registrar: RFC 3261 §10.3 processing of a REGISTER over any LocationStore, taking
 * Kamailio's registrar/usrloc choices where the RFC leaves room, so rows written here are the
 * rows Kamailio would write (usrloc schema v9) and either can read the other's bindings.
 *
 * Status codes:
 *   400 malformed Contact / q, `*` misuse, out-of-order Call-ID/CSeq, a value wider than its usrloc
 *       column (services/location/widths.ts; the reason names the problem)
 *   423 Interval Too Brief + Min-Expires (when rejectBelowMin; otherwise raised to minExpires)
 *   403 Too Many Registered Contacts (maxContacts). Kamailio answers 503 here; we don't, because
 *       503 tells the UA to fail over / retry later (RFC 3261 §21.5.4) and in sipflow means
 *       "backing store down", while this condition is permanent for the AoR.
 *   Store failures are not a status: they reject with LocationUnavailableError (→ 503 upstream).
 */
import { randomBytes } from 'node:crypto';
import { parseUri, type SipUri } from '../../grammar/sip-values';
import { methodsMask, parseContactHeaders, parseQ, sameUri, type ParsedContact } from './contact';
import { dedupe } from './dedupe';
import { contactIsSender, contactNat, sentByOf, viaNat, type NatReason, type SenderFacts } from './nat';
import { LocationUnavailableError, type Binding, type LocationPort, type LocationStore, type RegisterRequest, type RegisterResult } from './types';
import { BINDING_WIDTHS, cutToWidth, fits, unstorable, type WidthField } from './widths';
import { parseExpires } from '../../grammar/sip-values';

export interface RegistrarOptions {
  /** Seconds used when neither the contact nor the request gives a (valid) expiry. */
  defaultExpires?: number;
  /** 0 disables the minimum. */
  minExpires?: number;
  /** 0 disables the maximum (as Kamailio's max_expires). */
  maxExpires?: number;
  /** true: 423 + Min-Expires; false: silently raise to minExpires (Kamailio's default). */
  rejectBelowMin?: boolean;
  /** Live bindings per AoR; 0 = unlimited. */
  maxContacts?: number;
  /**
   * This instance's id, stored as each binding's `server_id` (usrloc's server_id): a binding tied
   * to a connection is reachable, and kept alive, only by the instance whose id it carries.
   */
  serverId?: number;
  /** NATed bindings (services/location/nat.ts). */
  nat?: {
    /** Longest expiry of a NATed contact registered over a datagram transport (0 = no cap), answered in the 200 OK. */
    udpMaxExpires?: number;
    /** Branch flag marking NATed bindings in `cflags` (Kamailio's nat_bflag; -1 = none). Default 6, kamailio.cfg's FLB_NATB. */
    branchFlag?: number;
  };
  /** ruids are `<prefix>-<counter>`; must be unique per process across instances sharing a store. */
  ruidPrefix?: string;
  /** false: AoR = username only, `domain` stored as null (Kamailio use_domain=0). */
  multiDomain?: boolean;
  /** Clock for the purge timer (register/lookup take `now` from their caller). */
  clock?: () => Date;
}

export type Registrar = LocationPort & {
  purgeExpired(now: Date): Promise<number>;
  /** Purges on an unref'd timer; returns the function that stops it. */
  startPurging(intervalMs: number): () => void;
};

/** Live: not expired, or permanent (expires 0, the epoch: usrloc's VALID_CONTACT, a contact Kamailio's operator added with no expiry). */
function isLive(b: Binding, nowMs: number): boolean {
  const t = b.expires.getTime();
  return t > nowMs || t === 0;
}

/**
 * The AoR as the registrar sees it: one binding per contact (services/location/dedupe.ts; other
 * writers, Kamailio's db_mongodb first, leave duplicates), the live ones; and what a rewrite of
 * the AoR deletes: the expired ones and the superseded copies.
 */
interface AorView {
  live: Binding[];
  /** ruids to delete when the AoR is rewritten: expired bindings, copies superseded by a newer one. */
  obsolete: string[];
  /** Kept ruids with several records: deleted, then written again, when the REGISTER refreshes them. */
  copied: ReadonlySet<string>;
}

/** An AoR of one live binding (almost every REGISTER) has no copies: one empty set for all of them. */
const NO_COPIES: ReadonlySet<string> = new Set();

function viewOf(all: Binding[], nowMs: number): AorView {
  if (all.length === 1 && isLive(all[0], nowMs)) return { live: all, obsolete: [], copied: NO_COPIES };
  const d = dedupe(all);
  const live: Binding[] = [];
  const obsolete = d.superseded;
  for (const b of d.bindings) {
    if (isLive(b, nowMs)) live.push(b);
    else if (b.ruid !== '') obsolete.push(b.ruid);
  }
  return { live, obsolete, copied: d.copied };
}

/** q descending (unspecified -1 ranks as 1.0, as in Kamailio), then most recently modified first. */
function byPreference(a: Binding, b: Binding): number {
  const qa = a.q < 0 ? 1 : a.q;
  const qb = b.q < 0 ? 1 : b.q;
  if (qa !== qb) return qb - qa;
  return b.last_modified.getTime() - a.last_modified.getTime();
}

/** Any store failure is "location unavailable" to the caller (503 + Retry-After), never a 200. */
function unavailable(e: unknown): LocationUnavailableError {
  if (e instanceof LocationUnavailableError) return e;
  const err = new LocationUnavailableError(`location store failed: ${e instanceof Error ? e.message : String(e)}`);
  err.cause = e;
  return err;
}

function fail(status: number, reason: string, headers?: Record<string, string>): RegisterResult {
  return headers ? { status, reason, headers, bindings: [] } : { status, reason, bindings: [] };
}

/**
 * 400 naming a value its usrloc column cannot hold (services/location/widths.ts), or null when it
 * can; the value itself is not echoed.
 */
function refuse(what: string, field: WidthField, value: string | null | undefined): RegisterResult | null {
  const why = unstorable(field, value);
  if (why === null) return null;
  return fail(400, why === 'nul' ? `${what} holds a NUL character` : `${what} too long (at most ${BINDING_WIDTHS[field]} characters)`);
}

/** The request's own values that a binding stores, measured against their columns; null when all can be stored. */
function refuseRequest(req: RegisterRequest, domain: string | null): RegisterResult | null {
  return (
    refuse('Address of Record', 'username', req.username) ??
    refuse('Address of Record', 'domain', domain) ??
    refuse('Call-ID', 'callid', req.callId) ??
    refuse('Path', 'path', req.path) ??
    refuse('Socket', 'socket', req.socket) ??
    // a User-Agent too long is cut (register), one holding a NUL refused
    (unstorable('user_agent', req.userAgent) === 'nul' ? refuse('User-Agent', 'user_agent', req.userAgent) : null)
  );
}

/** A request contact after validation: what to store and for how long. */
interface Wanted {
  c: ParsedContact;
  /** Why the contact is behind a NAT, or null. */
  nat: NatReason | null;
  /** The binding follows the request's connection (stream transports, the contact being the sender's own). */
  bound: boolean;
  /** `received` to store (receivedFor). */
  received: string | null;
  seconds: number; // 0 = remove
  q: number;
  instance: string | null;
  regId: number;
  methods: number | null;
}

/** What the request says about its sender, for the NAT tests and the connection tie. */
interface Sender {
  facts: SenderFacts | null;
  viaReason: NatReason | null;
  connectionId: number | null;
}

/** `sip:ip:port`, `sip:[v6]:port` or `ip:port` → address and port. */
function sourceOf(received: string | null): { address: string; port: number } | null {
  const m = /^(?:sips?:)?\[?([^\]]+?)\]?:(\d{1,5})$/i.exec(received?.trim() ?? '');
  return m ? { address: m[1], port: Number(m[2]) } : null;
}

function senderOf(req: RegisterRequest): Sender {
  const source = sourceOf(req.received);
  const connectionId = typeof req.connectionId === 'number' && req.connectionId >= 0 ? req.connectionId : null;
  if (!source) return { facts: null, viaReason: null, connectionId };
  const facts: SenderFacts = { sourceAddress: source.address, sourcePort: source.port, via: sentByOf(req.via), datagram: connectionId === null };
  return { facts, viaReason: viaNat(facts), connectionId };
}

export function createRegistrar(store: LocationStore, opts: RegistrarOptions = {}): Registrar {
  const defaultExpires = opts.defaultExpires ?? 3600;
  const minExpires = opts.minExpires ?? 60;
  const maxExpires = opts.maxExpires ?? 86400;
  const rejectBelowMin = opts.rejectBelowMin ?? true;
  const maxContacts = opts.maxContacts ?? 0;
  const serverId = opts.serverId ?? 0;
  const multiDomain = opts.multiDomain ?? false;
  const clock = opts.clock ?? (() => new Date());
  const udpNatMaxExpires = opts.nat?.udpMaxExpires ?? 0;
  const natFlag = opts.nat?.branchFlag ?? 6;
  const natCflags = natFlag >= 0 && natFlag < 31 ? 1 << natFlag : 0;
  const ruidPrefix = opts.ruidPrefix ?? `uloc-${randomBytes(4).toString('hex')}-${process.pid.toString(16)}`;
  let ruidCounter = 0;

  // Per-AoR serialization inside this process: the read-modify-write of one REGISTER must not
  // interleave with another for the same AoR (CSeq ordering and maxContacts depend on it).
  const queues = new Map<string, Promise<unknown>>();
  function serialized<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = queues.get(key);
    const run = prev ? prev.then(fn, fn) : fn();
    // settled either way, the AoR's queue ends here unless another REGISTER joined it meanwhile
    const settle = (): void => {
      if (queues.get(key) === tail) queues.delete(key);
    };
    const tail: Promise<void> = run.then(settle, settle);
    queues.set(key, tail);
    return run;
  }

  async function find(username: string, domain: string | null): Promise<Binding[]> {
    try {
      return await store.find(username, domain);
    } catch (e) {
      throw unavailable(e);
    }
  }

  /** Requested seconds for one contact: param > Expires header > default; malformed → default (Kamailio). */
  function requestedSeconds(c: ParsedContact, header: number | null): number {
    if ('expires' in c.params) return parseExpires(c.params.expires) ?? defaultExpires;
    return header ?? defaultExpires;
  }

  function validate(req: RegisterRequest, c: ParsedContact, header: number | null, allowMask: number | null, sender: Sender): Wanted | RegisterResult {
    const wide = refuse('Contact', 'contact', c.uri);
    if (wide) return wide;
    const q = 'q' in c.params ? parseQ(c.params.q) : -1;
    if (q === null) return fail(400, `Invalid q value in Contact: ${c.uri}`);
    const nat = sender.facts ? contactNat(sender.facts, c.parsed, sender.viaReason) : null;
    const received = receivedFor(nat, req);
    const wideReceived = refuse('Contact/received', 'received', received);
    if (wideReceived) return wideReceived;
    const bound = sender.connectionId !== null && sender.facts !== null && contactIsSender(sender.facts, c.parsed, nat);
    let seconds = requestedSeconds(c, header);
    if (seconds > 0) {
      if (maxExpires > 0 && seconds > maxExpires) seconds = maxExpires;
      if (minExpires > 0 && seconds < minExpires) {
        if (rejectBelowMin) return fail(423, 'Interval Too Brief', { 'Min-Expires': String(minExpires) });
        seconds = minExpires;
      }
      // a NAT pinhole for UDP lasts seconds to minutes: the UA refreshes sooner (after the minimum checks: our choice, not the UA's)
      if (nat && sender.connectionId === null && udpNatMaxExpires > 0 && seconds > udpNatMaxExpires) seconds = udpNatMaxExpires;
    }
    const instance = c.params['+sip.instance'] ?? null;
    const wideInstance = refuse('+sip.instance', 'instance', instance);
    if (wideInstance) return wideInstance;
    const regId = parseExpires(c.params['reg-id']) ?? 0; // 1*DIGIT (RFC 5626), read like delta-seconds; malformed → 0
    // A contact's own `methods` feature param wins over the Allow header, as in Kamailio.
    const methods = 'methods' in c.params ? methodsMask(c.params.methods) : allowMask;
    return { c, nat, bound, received, seconds, q, instance: instance || null, regId, methods };
  }

  /** RFC 5626: with +sip.instance and reg-id the flow identifies the binding; else URI equality. */
  function matches(b: Binding, w: Wanted, parsedCache: Map<string, SipUri | null>): boolean {
    if (w.instance && w.regId > 0) return b.instance === w.instance && b.reg_id === w.regId;
    let u = parsedCache.get(b.ruid);
    if (u === undefined) {
      // a refresh names its binding's contact again, whose URI is parsed already
      u = b.contact === w.c.uri ? w.c.parsed : parseUri(b.contact);
      parsedCache.set(b.ruid, u);
    }
    return u !== null && sameUri(u, w.c.parsed);
  }

  /**
   * `received` of a NATed contact: the source as `sip:ip:port`, with `;transport=` for other
   * transports than UDP (nathelper's fix_nated_register). Null without NAT: the contact is
   * reachable as written, and a third-party registration must not send its calls to the sender.
   */
  function receivedFor(nat: NatReason | null, req: RegisterRequest): string | null {
    if (!nat) return null;
    const hostPort = req.received?.trim().replace(/^sips?:/i, '');
    if (!hostPort) return null;
    const proto = /^([a-z0-9-]+):/i.exec(req.socket ?? '')?.[1]?.toLowerCase();
    return proto && proto !== 'udp' ? `sip:${hostPort};transport=${proto}` : `sip:${hostPort}`;
  }

  function build(req: RegisterRequest, domain: string | null, w: Wanted, ruid: string, nowSec: number): Binding {
    return {
      ruid,
      username: req.username,
      domain,
      contact: w.c.uri,
      received: w.received,
      path: req.path,
      expires: new Date((nowSec + w.seconds) * 1000),
      q: w.q,
      callid: req.callId,
      cseq: req.cseq,
      last_modified: new Date(nowSec * 1000),
      flags: 0,
      cflags: w.nat ? natCflags : 0,
      user_agent: req.userAgent,
      socket: req.socket,
      methods: w.methods,
      instance: w.instance,
      reg_id: w.regId,
      server_id: serverId,
      connection_id: w.bound ? req.connectionId! : -1,
      // kept alive by this instance (server_id): NATed contacts and connection-bound ones
      keepalive: w.nat || w.bound ? 1 : 0,
      partition: 0,
    };
  }

  /** Call-ID/CSeq rule of §10.3 step 7: same Call-ID needs a strictly higher CSeq. */
  function outOfOrder(b: Binding, req: RegisterRequest): boolean {
    return b.callid === req.callId && b.cseq >= req.cseq;
  }

  async function removeAll(req: RegisterRequest, domain: string | null): Promise<RegisterResult> {
    const nowMs = req.now.getTime();
    const all = await find(req.username, domain);
    if (viewOf(all, nowMs).live.some((b) => outOfOrder(b, req))) return fail(400, 'Out of order');
    if (all.length > 0) {
      try {
        await store.remove(all.map((b) => b.ruid));
      } catch (e) {
        throw unavailable(e);
      }
    }
    return { status: 200, reason: 'OK', bindings: [] };
  }

  async function apply(req: RegisterRequest, domain: string | null, wanted: Wanted[]): Promise<RegisterResult> {
    const nowMs = req.now.getTime();
    // usrloc works in whole seconds (time_t); so do the stored dates, whatever the store.
    const nowSec = Math.floor(nowMs / 1000);
    // Expired rows are dead, superseded copies are not there: both dropped while we are here, and
    // never matched for Call-ID/CSeq.
    const { live: working, obsolete: stale, copied } = viewOf(await find(req.username, domain), nowMs);
    const parsedCache = new Map<string, SipUri | null>();
    const touched = new Set<string>(); // bindings written by this request (a contact may repeat)
    const created = new Set<string>(); // ruids that do not exist in the store yet
    const upserts = new Map<string, Binding>();
    const removed: string[] = [];

    for (const w of wanted) {
      const i = working.findIndex((b) => matches(b, w, parsedCache));
      const cur = i >= 0 ? working[i] : null;
      if (cur && !touched.has(cur.ruid) && outOfOrder(cur, req)) return fail(400, 'Out of order');
      if (w.seconds === 0) {
        if (!cur) continue;
        working.splice(i, 1);
        upserts.delete(cur.ruid);
        if (!created.has(cur.ruid)) removed.push(cur.ruid);
        continue;
      }
      let ruid: string;
      if (cur) ruid = cur.ruid;
      else {
        ruid = `${ruidPrefix}-${++ruidCounter}`;
        created.add(ruid);
      }
      const b = build(req, domain, w, ruid, nowSec);
      parsedCache.set(ruid, w.c.parsed);
      if (cur) working[i] = b;
      else working.push(b);
      touched.add(ruid);
      upserts.set(ruid, b);
    }

    // Only a request that adds a binding can be refused for the limit: refreshes and removals
    // stay possible even when the limit was lowered below what an AoR already holds.
    if (maxContacts > 0 && working.length > maxContacts && working.some((b) => created.has(b.ruid))) {
      return fail(403, 'Too Many Registered Contacts');
    }

    // Durable before we answer: every write is awaited, any failure rejects (no 200).
    try {
      const toRemove = stale.concat(removed);
      // A ruid with several records is deleted before it is written again, which leaves one.
      for (const r of copied) if (upserts.has(r)) toRemove.push(r);
      if (toRemove.length > 0) await store.remove(toRemove);
      for (const b of upserts.values()) await store.upsert(b, created.has(b.ruid));
    } catch (e) {
      throw unavailable(e);
    }
    return { status: 200, reason: 'OK', bindings: working.sort(byPreference) };
  }

  const aorOf = (username: string, domain: string | null) => (domain === null ? username : `${username}\u0000${domain}`);

  return {
    async register(req) {
      const list = parseContactHeaders(req.contacts);
      if (list.kind === 'error') return fail(400, list.reason);
      const domain = multiDomain ? req.domain : null;
      const header = parseExpires(req.expiresHeader);
      const key = aorOf(req.username, domain);

      if (list.kind === 'star') {
        // §10.3 step 6: `*` only alone (checked by the parser) and only with Expires: 0.
        if (header !== 0) return fail(400, 'Invalid Contact: * requires Expires: 0');
        return serialized(key, () => removeAll(req, domain));
      }

      // Validate everything before touching the store: a rejected request changes nothing.
      const refused = refuseRequest(req, domain);
      if (refused) return refused;
      if (!fits('user_agent', req.userAgent)) req = { ...req, userAgent: cutToWidth('user_agent', req.userAgent) };
      const allowMask = methodsMask(req.allow);
      const sender = senderOf(req);
      const wanted: Wanted[] = [];
      for (const c of list.contacts) {
        const v = validate(req, c, header, allowMask, sender);
        if ('status' in v) return v;
        wanted.push(v);
      }

      if (wanted.length === 0) {
        // A query (§10.3 step 8 with no Contact): just the current bindings.
        const nowMs = req.now.getTime();
        const { live } = viewOf(await find(req.username, domain), nowMs);
        return { status: 200, reason: 'OK', bindings: live.sort(byPreference) };
      }
      return serialized(key, () => apply(req, domain, wanted));
    },

    async lookup(username, domain, now) {
      const nowMs = now.getTime();
      return viewOf(await find(username, multiDomain ? domain : null), nowMs).live.sort(byPreference);
    },

    async purgeExpired(now) {
      try {
        return await store.purgeExpired(now);
      } catch (e) {
        throw unavailable(e);
      }
    },

    startPurging(intervalMs) {
      let running = false;
      const timer = setInterval(() => {
        if (running) return; // a slow store must not pile up overlapping purges
        running = true;
        // Errors are dropped on purpose: the next tick retries, and a timer has no one to tell.
        Promise.resolve()
          .then(() => store.purgeExpired(clock()))
          .catch(() => undefined)
          .finally(() => {
            running = false;
          });
      }, intervalMs);
      timer.unref();
      return () => clearInterval(timer);
    },
  };
}
