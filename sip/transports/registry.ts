/**
 * SIP transports registered by name (Kamailio's `listen=proto:host:port`): what the proxy, the
 * front end, the transaction layer, the configuration and the SIP thread protocol know of a
 * transport is this interface, never its name. UDP and TCP are two registered modules
 * (sip/transports/udp.ts, tcp.ts); TLS or WebSocket would be one more module and its
 * registration (sip/transports/index.ts), nothing else.
 *
 * No module is imported here: sip/transports/index.ts registers the built-in ones, and whoever
 * needs the registry imports that index so that they are there.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { MessageHandler, Peer, SendCallback, TransportOptions } from '../transport';

/** What a transport module is. */
export interface SipTransportModule {
  /** Lower case: the config's `transport`, the URI `transport=` parameter, route rules, the `transport` variable. */
  readonly name: string;
  /** The Via sent-protocol transport (upper case, RFC 3261 §20.42). */
  readonly via: string;
  /** Reliable delivery: no retransmission timers (RFC 3261 §17.1.1.2 Timer A, §17.1.2.2 Timer E, Timer K = 0). */
  readonly reliable: boolean;
  /**
   * `datagram`: one message per packet, responses to the Via's sent-by / rport (§18.2.2, RFC 3581).
   * `stream`: connection-oriented (TCP: messages framed by Content-Length; WebSocket: one per
   * WebSocket message); responses go back over the request's connection (§18.2.2), so the
   * connections live in the thread that accepted them.
   */
  readonly framing: 'datagram' | 'stream';
  /** Whether a Record-Route of ours names it (`;transport=tcp`); the default transport (UDP) does not. */
  readonly inUri: boolean;
  /**
   * A transport whose connections this one's sockets reach too, and which stands in for it on a
   * listener that has no socket of it: `ws` ↔ `wss` (RFC 7118 §5.2: a browser's Contact says
   * `transport=ws` over WSS as well, so a call to it is a `ws` target living on a WSS connection).
   */
  readonly sibling?: string;
  /** Port of a URI without one that selects this transport (RFC 3261 §19.1.2: 5060, 5061 for TLS); absent: 5060. */
  readonly defaultPort?: number;
  /** Runs over TLS (TLS, WSS): a listener needs sip.tls's certificate and key; `sips:` URIs may use it. */
  readonly secure?: boolean;
  /** Opens a listening socket. */
  listen(o: SocketOptions): Promise<ListeningSocket>;
  /**
   * A send-only socket on the listener's port for a SIP worker thread (SO_REUSEADDR), so its
   * messages leave from the port the peer talks to without a hop through the dispatcher;
   * absent: the worker's sends go through the thread holding the sockets.
   */
  openThreadSender?(o: ThreadSenderOptions): Promise<ThreadSocket>;
}

/** A registered transport: the module and its registry id (what the SIP thread protocol carries). */
export interface SipTransport extends SipTransportModule {
  readonly id: number;
}

/** Everything a listening socket may need (each module reads its part). */
export type SocketOptions = Omit<TransportOptions, 'sockets' | 'udp' | 'tcp' | 'onMessage'> & {
  /** Receives the socket's messages. */
  onMessage: MessageHandler;
};

export interface ListeningSocket {
  readonly transport: SipTransport;
  /** The bound port. */
  readonly port: number;
  /** Open connections (stream transports). */
  readonly connections: number;
  /** The open connection of an id (stream transports), else undefined. */
  connection?(id: number): StreamConnection | undefined;
  send(buf: Buffer, peer: Peer, cb?: SendCallback): void;
  /** Takes over an HTTP upgrade received by another server (the HTTP API's port: http.sipWebSocket); WebSocket transports. */
  acceptUpgrade?(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  /** Datagram sockets shared with worker threads (SO_REUSEADDR): bind again to take reception back. */
  rebind?(): Promise<void>;
  /** Stops accepting (connections, new peers); open sockets stay for responses in flight. */
  pauseAccepting(): void;
  close(): Promise<void>;
}

export interface ThreadSenderOptions {
  host: string;
  port: number;
  /** A message that reached this send socket (it should go to the dispatcher's). */
  onStray(data: Buffer, address: string, port: number): void;
  onWarning?(message: string): void;
}

export interface ThreadSocket {
  send(buf: Buffer, peer: Peer, cb?: SendCallback): void;
  close(): Promise<void>;
}

const byName = new Map<string, SipTransport>();
const byId: SipTransport[] = [];
const byVia = new Map<string, SipTransport>();

/** Registers a transport module (once per name); returns it with its id. */
export function registerTransport(m: SipTransportModule): SipTransport {
  const name = m.name.toLowerCase();
  const known = byName.get(name);
  if (known) {
    if (known.listen === m.listen) return known;
    throw new Error(`SIP transport "${name}" is registered already`);
  }
  const t: SipTransport = Object.freeze({ ...m, name, via: m.via.toUpperCase(), id: byId.length });
  byName.set(name, t);
  byVia.set(t.via, t);
  byId.push(t);
  return t;
}

/** The transport of a name (any case), or undefined. */
export function transportNamed(name: string): SipTransport | undefined {
  return byName.get(name) ?? byName.get(name.toLowerCase());
}

/** The transport of a name; throws for an unknown one. */
export function transportOf(name: string): SipTransport {
  const t = transportNamed(name);
  if (!t) throw new Error(`unknown SIP transport "${name}" (registered: ${transportNames().join(', ')})`);
  return t;
}

/** The transport of a registry id (the SIP thread protocol). */
export function transportById(id: number): SipTransport | undefined {
  return byId[id];
}

/** The transport of a Via sent-protocol transport (`UDP`, `TCP`), or undefined. */
export function transportByVia(via: string): SipTransport | undefined {
  return byVia.get(via) ?? byVia.get(via.toUpperCase());
}

/** Registered names, in registration order. */
export function transportNames(): string[] {
  return byId.map((t) => t.name);
}

/**
 * A listener's advertised ports (transport name → port) with the stand-ins: a transport without a
 * socket of its own whose sibling has one gets the sibling's port (Via, Record-Route, sends).
 */
export function withSiblings(ports: ReadonlyMap<string, number>): Map<string, number> {
  const all = new Map(ports);
  for (const t of byId) if (t.sibling !== undefined && !all.has(t.name) && ports.has(t.sibling)) all.set(t.name, ports.get(t.sibling)!);
  return all;
}

/** The transport of a URI without a `transport` parameter, of a bare `ip:port`, of an unknown name (RFC 3261 §19.1.1: UDP). */
export const DEFAULT_TRANSPORT = 'udp';

/**
 * A connection of a stream transport, as a Peer carries it (the module knows its own type). `id`
 * names it within this process (Kamailio's tcpconn id): the SIP thread protocol carries it, and a
 * binding registered over the connection stores it as `connection_id`, so a call to that user goes
 * back over the same connection (RFC 5626 flows).
 */
export interface StreamConnection {
  readonly key: string;
  readonly id: number;
  readonly closed: boolean;
}

let lastConnectionId = 0;
/** A new connection id, unique in this process among open connections (1 … 2^31-1, then wraps: usrloc's connection_id is an int32). */
export function nextConnectionId(): number {
  lastConnectionId = lastConnectionId >= 0x7fffffff ? 1 : lastConnectionId + 1;
  return lastConnectionId;
}
