/**
 * Keepalives to the bindings this instance holds, from the thread that owns the sockets (Kamailio
 * nathelper's natping / usrloc's keepalive): a NAT forgets an idle mapping within minutes (UDP:
 * often 30 s), and our own TCP idle timeout closes a silent connection, after which the phone is
 * unreachable. Per binding, once per interval:
 *
 *   tied to a connection (TCP, TLS, WebSocket)  CRLFCRLF over that connection only (RFC 5626
 *                                               §4.4.1; the UA answers CRLF), never a new one
 *   NATed over UDP                              OPTIONS to its `received` address (the source of
 *                                               its REGISTER), from the socket it registered on
 *
 * Which bindings: only the store's rows with `server_id` = ours and `keepalive` = 1 (set by the
 * registrar for NATed and connection-bound contacts: services/location/registrar.ts), so several
 * instances sharing one location store never all ping the same phone, and only addresses a
 * stored binding names (a REGISTER the logic accepted) are ever sent to: nobody makes us send
 * to an address of their choosing without registering it. Bindings with a Path are skipped (the
 * edge proxy that added the Path keeps its own flows), and so are contacts that are neither
 * tied to a connection nor an IP address (no DNS here).
 *
 * Bounded: one tick a second sends at most `batch` keepalives, the round's bindings spread evenly
 * over the interval; a round reads the store in pages and stops at interval × batch bindings.
 *
 * Dropping: with `dropAfterSec`, a UDP binding whose device answered none of our OPTIONS (any
 * response counts; a reply is recognised by its Call-ID `sfka.<ruid>` before dispatch) for that
 * long is removed from the store. Off by default, as Kamailio's keepalive_timeout.
 */
import { randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import type { Binding, LogPort } from '../engine/ports';
import type { LocationStore } from '../services/location/types';
import { flowPeerOf } from '../sip/proxy';
import type { Peer, SipTransports } from '../sip/transport';

const CRLFCRLF = Buffer.from('\r\n\r\n');
/** Call-ID prefix of our OPTIONS keepalives (replies are consumed before dispatch). */
const CALL_ID_PREFIX = 'sfka.';
const TICK_MS = 1000;
const PAGE = 1000;

export interface KeepaliveOptions {
  store: LocationStore;
  serverId: number;
  intervalSec: number;
  batch: number;
  dropAfterSec: number;
  /** The listeners' transports of this thread (a connection is found in whichever holds it). */
  transports: () => readonly SipTransports[];
  log?: LogPort;
  clock?: () => number;
}

export interface Keepalive {
  /** True when `data` is a reply to one of our OPTIONS keepalives (then consumed: not dispatched). */
  consume(data: Buffer): boolean;
  stop(): void;
}

/** The host and port of a `sip:host:port` / `host:port`, when the host is an IP address. */
function ipHop(uri: string): { address: string; port: number } | null {
  const m = /^(?:sips?:)?(?:[^@;>]*@)?(\[[^\]]+\]|[^:;>]+)(?::(\d{1,5}))?/i.exec(uri.trim());
  if (!m) return null;
  const address = m[1].charCodeAt(0) === 91 ? m[1].slice(1, -1) : m[1];
  return isIP(address) ? { address, port: m[2] ? Number(m[2]) : 5060 } : null;
}

export function startKeepalive(o: KeepaliveOptions): Keepalive {
  const now = o.clock ?? Date.now;
  const intervalMs = o.intervalSec * 1000;
  /** ruid → ms of the last answer (or of the first ping), for dropAfterSec. */
  const answered = new Map<string, number>();
  let queue: Binding[] = [];
  let next = 0;
  let roundStart = -Infinity;
  let loading = false;
  const tag = randomBytes(4).toString('hex');
  let seq = 0;

  async function load(): Promise<void> {
    const rows: Binding[] = [];
    const max = Math.max(1, o.intervalSec) * o.batch;
    let after = '';
    const at = new Date(now());
    while (rows.length < max) {
      const page = await o.store.keepalive(o.serverId, at, after, Math.min(PAGE, max - rows.length));
      rows.push(...page);
      if (page.length === 0) break;
      after = page[page.length - 1].ruid;
    }
    // forget bindings gone from the store
    const live = new Set(rows.map((b) => b.ruid));
    for (const r of answered.keys()) if (!live.has(r)) answered.delete(r);
    queue = rows;
    next = 0;
  }

  /** The listener whose UDP socket the binding registered on (its `socket` column), else the first with UDP. */
  function udpTransportsFor(b: Binding): SipTransports | undefined {
    const all = o.transports();
    const port = Number(/:(\d+)$/.exec(b.socket ?? '')?.[1]);
    return all.find((t) => t.ports.get('udp') === port) ?? all.find((t) => t.ports.has('udp'));
  }

  function options(b: Binding, t: SipTransports): Buffer {
    const host = isIP(t.advertised) === 6 ? `[${t.advertised}]` : t.advertised;
    const port = t.ports.get('udp') ?? 5060;
    const branch = `z9hG4bKka${tag}${(++seq).toString(36)}`;
    return Buffer.from(
      `OPTIONS ${b.contact} SIP/2.0\r\n` +
        `Via: SIP/2.0/UDP ${host}:${port};branch=${branch};rport\r\n` +
        `Max-Forwards: 70\r\n` +
        `From: <sip:keepalive@${host}:${port}>;tag=${tag}${seq.toString(36)}\r\n` +
        `To: <${b.contact}>\r\n` +
        `Call-ID: ${CALL_ID_PREFIX}${b.ruid}\r\n` +
        `CSeq: 1 OPTIONS\r\n` +
        `Content-Length: 0\r\n\r\n`,
    );
  }

  function ping(b: Binding): void {
    if (b.path) return;
    const flow = flowPeerOf({ uri: b.contact, received: b.received, connection: { id: b.connection_id, serverId: b.server_id, socket: b.socket } }, o.serverId);
    if (flow) {
      const t = o.transports().find((x) => flow.connId !== undefined && x.connection(flow.proto, flow.connId) !== undefined);
      // a closed connection: its bindings are removed or unused (server/connection-bindings.ts)
      t?.send(CRLFCRLF, flow);
      return;
    }
    if (b.connection_id >= 0 || !b.received) return; // tied to a connection of another server, or not NATed
    const dest = ipHop(b.received);
    const t = udpTransportsFor(b);
    if (!dest || !t) return;
    const sentAt = now();
    const last = answered.get(b.ruid);
    if (last === undefined) answered.set(b.ruid, sentAt);
    else if (o.dropAfterSec > 0 && sentAt - last > o.dropAfterSec * 1000) {
      answered.delete(b.ruid);
      o.store.remove([b.ruid]).then(
        () => o.log?.log('info', `keepalive: ${b.username} ${b.contact} answered no OPTIONS for ${o.dropAfterSec} s: binding removed`),
        (e: unknown) => o.log?.log('warn', `keepalive: cannot remove ${b.ruid}: ${e instanceof Error ? e.message : String(e)}`),
      );
      return;
    }
    const peer: Peer = { proto: 'udp', address: dest.address, port: dest.port };
    t.send(options(b, t), peer);
  }

  function tick(): void {
    if (loading) return;
    const t = now();
    if (next >= queue.length) {
      if (t - roundStart < intervalMs) return;
      roundStart = t;
      loading = true;
      load()
        .catch((e: unknown) => o.log?.log('warn', `keepalive: cannot read the bindings to keep alive: ${e instanceof Error ? e.message : String(e)}`))
        .finally(() => {
          loading = false;
          tick();
        });
      return;
    }
    // the round's bindings over the interval's ticks, `batch` a tick at most
    const ticks = Math.max(1, Math.floor(intervalMs / TICK_MS));
    const n = Math.min(o.batch, Math.ceil(queue.length / ticks), queue.length - next);
    for (let i = 0; i < n; i++) ping(queue[next++]);
  }

  const timer = setInterval(tick, TICK_MS);
  timer.unref();
  tick();

  return {
    consume(data) {
      // responses only ("SIP/2.0 "), then the Call-ID of ours
      if (data.length < 12 || data[0] !== 0x53 || data[3] !== 0x2f) return false;
      const i = data.indexOf(CALL_ID_PREFIX);
      if (i < 0) return false;
      const end = data.indexOf('\r\n', i);
      const ruid = data.toString('latin1', i + CALL_ID_PREFIX.length, end < 0 ? data.length : end).trim();
      if (answered.has(ruid)) answered.set(ruid, now());
      return true;
    },
    stop() {
      clearInterval(timer);
    },
  };
}
