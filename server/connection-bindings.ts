/**
 * Bindings tied to their connection, on the thread that owns the connections (the main thread;
 * with SIP worker threads too, server/sip-threads/host.ts): when a TCP, TLS or WebSocket
 * connection closes, the bindings a REGISTER tied to it (`connection_id`, `server_id` = ours) are
 * removed from the location store when `registrar.connections.removeOnClose` says so (Kamailio's
 * handle_lost_tcp). Either way the proxy no longer uses them: it sends to such a binding over its
 * connection only (sip/transport.ts `flowOnly`), and a closed one answers 480.
 *
 * Layout: `location` wraps the registrar the SIP threads call, to learn which connection ids carry
 * bindings (a closing connection without any costs no store statement: scanners and floods close
 * many), and to remove at once a binding whose connection closed while its REGISTER was being
 * stored.
 *
 * Limits: the set of tied ids is this process's memory, one number per connection holding a
 * binding. Bindings tied to connections of a previous run are not removed at start (instances
 * wrongly sharing a server_id would remove each other's): they are unusable (the proxy checks the
 * connection's remote end, sip/transport.ts) and expire.
 */
import type { LocationPort, LogPort } from '../engine/ports';
import type { LocationStore } from '../services/location/types';
import type { SipTransports } from '../sip/transport';
import { transportNamed, type SipTransport, type StreamConnection } from '../sip/transports';
import type { Config } from './config';
import { startKeepalive } from './keepalive';

export interface ConnectionBindingsOptions {
  location: LocationPort;
  store: LocationStore;
  serverId: number;
  removeOnClose: boolean;
  /** Whether a connection id is still open (any listener, any stream transport). */
  isOpen(connectionId: number): boolean;
  log?: LogPort;
}

export interface ConnectionBindings {
  /** The location port for the SIP threads: the registrar, noting the connections bindings are tied to. */
  location: LocationPort;
  /** A stream connection closed (SocketOptions.onConnectionClosed). */
  connectionClosed(connectionId: number): void;
}

export function connectionBindings(o: ConnectionBindingsOptions): ConnectionBindings {
  const tied = new Set<number>();

  const remove = (connectionId: number): void => {
    if (!o.removeOnClose) return;
    o.store.removeByConnection(o.serverId, connectionId).then(
      (n) => {
        if (n > 0) o.log?.log('debug', `location: ${n} binding(s) of closed connection ${connectionId} removed`);
      },
      // the bindings stay but are not used (flow only): they expire
      (e: unknown) =>
        o.log?.log('warn', `location: cannot remove the bindings of closed connection ${connectionId}: ${e instanceof Error ? e.message : String(e)}`),
    );
  };

  return {
    location: {
      lookup: (username, domain, now) => o.location.lookup(username, domain, now),
      async register(req) {
        const result = await o.location.register(req);
        const id = req.connectionId;
        if (typeof id === 'number' && id >= 0 && result.bindings.some((b) => b.connection_id === id && b.server_id === o.serverId)) {
          if (o.isOpen(id)) tied.add(id);
          else remove(id); // closed while the REGISTER was being stored
        }
        return result;
      },
    },
    connectionClosed(connectionId) {
      if (!tied.delete(connectionId)) return;
      remove(connectionId);
    },
  };
}

/**
 * What the thread owning the sockets wires for bindings and NAT: the location port to hand the
 * SIP threads, the connection-closed hook for its transports, the keepalive loop and its reply
 * filter (server/keepalive.ts). `transports` is read late: the sockets open after this is made.
 */
export function bindingServices(
  config: Config,
  o: { location: LocationPort; store: LocationStore; log?: LogPort; transports: () => readonly SipTransports[] },
): {
  location: LocationPort;
  onConnectionClosed: (transport: SipTransport, conn: StreamConnection) => void;
  /** True when a received message is a keepalive reply (consumed, not dispatched). */
  consume: (data: Buffer) => boolean;
  stop(): void;
} {
  const serverId = config.location.serverId;
  const bindings = connectionBindings({
    location: o.location,
    store: o.store,
    serverId,
    removeOnClose: config.registrar.connections.removeOnClose,
    isOpen: (id) =>
      o.transports().some((t) => [...t.ports.keys()].some((name) => transportNamed(name)?.framing === 'stream' && t.connection(name, id) !== undefined)),
    log: o.log,
  });
  const k = config.registrar.keepalive;
  const keepalive =
    k.intervalSec > 0
      ? startKeepalive({
          store: o.store,
          serverId,
          intervalSec: k.intervalSec,
          batch: k.batch,
          dropAfterSec: k.dropAfterSec,
          transports: o.transports,
          log: o.log,
        })
      : null;
  return {
    location: bindings.location,
    onConnectionClosed: (_t, conn) => bindings.connectionClosed(conn.id),
    consume: (data) => keepalive !== null && keepalive.consume(data),
    stop: () => keepalive?.stop(),
  };
}
