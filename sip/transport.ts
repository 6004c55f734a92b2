/**
 * SIP transports (RFC 3261 §18): the sockets of one listener, one per transport module registered
 * by name in sip/transports (udp.ts, tcp.ts, tls.ts; the proxy, the front end and the thread protocol ask
 * the module — reliable, stream or datagram — never compare names). What follows is the built-in
 * modules' behaviour.
 *
 * UDP: large kernel buffers (4 MiB by default; the kernel caps them at net.core.[rw]mem_max),
 * sends never wait for a peer (a full socket buffer drops, as UDP does). With `reuseAddr` the
 * socket is bound with SO_REUSEADDR so SIP worker threads can send from the same port; on Linux
 * unicast datagrams go to the socket bound last, which `rebindUdp()` makes this one again.
 *
 * TCP and TLS (sip/transports/stream.ts, shared): one StreamFramer per connection, a maximum
 * message size, idle and message timeouts, CRLFCRLF keep-alive pings answered with CRLF (RFC 5626
 * §3.5.1), a connection table keyed by the remote `ip:port` so responses and later requests reuse
 * the connection the peer opened (RFC 3261 §18.2.2), inbound connections admitted by a `TcpGate`
 * (sip/tcp-limits.ts) before anything else, and a connection whose outgoing buffer grows past a
 * limit closed instead of buffering without bound. TLS adds the handshake (a timeout, client
 * certificates per sip.tls.verifyClient) and certificates reloaded without a restart
 * (sip/transports/tls.ts, certificates.ts).
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { TcpGate } from './tcp-limits';
import { transportNamed, transportOf, withSiblings, type ListeningSocket, type SipTransport, type SocketOptions, type StreamConnection } from './transports';

export { literalFirstLookup, plainAddress, SocketConnection } from './transports';

/** A transport name, registered in sip/transports ('udp', 'tcp', …). */
export type Proto = string;

/** A remote endpoint; `conn` is the connection a message arrived on (stream transports). */
export interface Peer {
  proto: Proto;
  address: string;
  port: number;
  conn?: StreamConnection;
  /** The connection's id (StreamConnection.id) when the connection object lives in another thread, or a binding names it. */
  connId?: number;
  /**
   * Send over connection `connId` or not at all (a binding tied to its connection, RFC 5626 flows):
   * never open another, and only while the connection's remote end is `address` (`:port` when
   * port > 0; no check when address is empty), so an id reused after a restart or wrap cannot
   * deliver a user's call to another peer.
   */
  flowOnly?: boolean;
  /** The host name `address` was resolved from (an outgoing TLS connection's SNI and certificate check). */
  serverName?: string;
}

export interface LocalEndpoint {
  proto: Proto;
  address: string;
  port: number;
}

/** `sip.tls` (server/config.ts): certificate files and verification of the secure transports. */
export interface TlsSettings {
  certFile?: string;
  keyFile?: string;
  caFile?: string;
  verifyClient: 'off' | 'optional' | 'required';
  verifyServer: boolean;
  handshakeTimeoutMs: number;
  /** Seconds between checks of the files for a change (besides watching them); 0 = watching only. */
  reloadCheckSec?: number;
}

/** Why a stream connection was closed by a defence (sipflow_tcp_closed_total{reason}). */
export type TcpCloseReason = 'message_timeout' | 'idle_timeout' | 'bad_framing' | 'not_reading' | 'tls_handshake' | 'client_certificate';

export type MessageHandler = (data: Buffer, peer: Peer, local: LocalEndpoint) => void;
export type SendCallback = (err: Error | null) => void;

/**
 * What the transaction layer, the proxy and the front end need of a transport: where they are
 * reachable and how to send. `SipTransports` is one; a SIP worker thread has its own (UDP from its
 * own socket on the SIP port, TCP through the thread that holds the connections).
 */
export interface SipSender {
  /** Address advertised in Via/Record-Route. */
  readonly advertised: string;
  /** Transport name → the port advertised for it (Via, Record-Route); a transport absent has no socket here. */
  readonly ports: ReadonlyMap<string, number>;
  send(buf: Buffer, peer: Peer, cb?: SendCallback): void;
  /**
   * Where a message to `address` over `proto` leaves from: the host and port its Via and
   * Record-Route name (sip/listener-group.ts: the socket may be another listener's); null when no
   * socket reaches that address. Absent: this sender's advertised address and port.
   */
  origin?(proto: Proto, address: string): { host: string; port: number } | null;
  /** Whether host:port names a socket of this thread, any listener's (absent: only this sender's, by the proxy's own check). */
  isOurs?(host: string, port: number): boolean;
  /** The open connection of a stream transport by id when its socket is this sender's (absent: connections live elsewhere, e.g. a worker thread's). */
  connection?(proto: string, id: number): StreamConnection | undefined;
}

export interface TransportOptions {
  host: string;
  /** 0 = any free port (the sockets of one host then get the same number when possible). */
  port: number;
  /** The listener's sockets: a registered transport each, on `host`/`port` unless given (default: udp, then tcp). */
  sockets?: Array<{ transport: string; host?: string; port?: number }>;
  /** Deprecated (use `sockets`): a UDP socket (default true) when `sockets` is not given. */
  udp?: boolean;
  /** Deprecated (use `sockets`): a TCP socket (default true) when `sockets` is not given. */
  tcp?: boolean;
  /** Kernel receive / send buffer of the UDP socket (default 4 MiB). */
  recvBufferSize?: number;
  sendBufferSize?: number;
  /** Close TCP connections idle this long (default 300 s, RFC 5626 friendly; sip.tcp.idleTimeoutSec). */
  tcpIdleTimeoutMs?: number;
  /** A message whose first byte arrived must be complete within this, else the connection is closed (default 10 s; sip.tcp.messageTimeoutMs). */
  tcpMessageTimeoutMs?: number;
  /** TLS settings of the secure transports (TLS, WSS): sip.tls in the configuration. */
  tls?: TlsSettings;
  /** A connecting address whose X-Forwarded-For is believed (WebSocket handshakes behind a reverse proxy); none: never. */
  trustedProxy?: (address: string) => boolean;
  /** Admission of inbound TCP connections (caps in total and per source); none = no cap. */
  tcpGate?: TcpGate;
  /** A stream connection closed, for whatever reason (bindings tied to it stop being used). */
  onConnectionClosed?: (transport: SipTransport, conn: StreamConnection) => void;
  /** A TCP connection was closed by a defence (message or idle timeout, framing error, peer not reading). */
  onTcpClosed?: (reason: TcpCloseReason, address: string) => void;
  /** Largest SIP message accepted on TCP (default 65535). */
  maxMessageSize?: number;
  /** Outgoing bytes buffered on a TCP connection before it is dropped (default 4 MiB). */
  maxTcpBuffered?: number;
  /** TCP connect timeout for outgoing connections (default 5 s). */
  tcpConnectTimeoutMs?: number;
  /** Bind UDP with SO_REUSEADDR (SIP worker threads send from their own sockets on this port). */
  reuseAddr?: boolean;
  onMessage: MessageHandler;
  onWarning?: (message: string) => void;
}

/**
 * The sockets of one listener: one per configured transport (sip/transports: UDP, TCP, … by
 * name), on the listener's host and port unless a socket names its own. A message goes out on
 * the socket of its peer's transport.
 */
export class SipTransports implements SipSender {
  private readonly specs: Array<{ transport: SipTransport; host: string; port: number }>;
  private sockets: ListeningSocket[] = [];
  private readonly byName = new Map<string, ListeningSocket>();
  private readonly socketOptions: Omit<SocketOptions, 'host' | 'port'>;
  /** Address advertised in Via/Record-Route (the bind host, or 127.0.0.1 for a wildcard bind). */
  advertised: string;

  constructor(o: TransportOptions) {
    const { sockets, udp, tcp, host, port, ...rest } = o;
    this.socketOptions = rest;
    const list = sockets ?? [...((udp ?? true) ? [{ transport: 'udp' }] : []), ...((tcp ?? true) ? [{ transport: 'tcp' }] : [])];
    this.specs = list.map((s) => ({ transport: transportOf(s.transport), host: s.host ?? host, port: s.port ?? port }));
    const names = new Set<string>();
    for (const s of this.specs) {
      if (names.has(s.transport.name)) throw new Error(`one ${s.transport.name} socket per listener`);
      names.add(s.transport.name);
    }
    this.advertised = advertisedOf(host);
  }

  /** Port of the listener's socket of a transport (0 when it has none). */
  portOf(transport: string): number {
    return this.byName.get(transport)?.port ?? 0;
  }
  /** Compatibility: the UDP socket's port (0 when none). */
  get udpPort(): number {
    return this.portOf('udp');
  }
  /** Compatibility: the TCP socket's port (0 when none). */
  get tcpPort(): number {
    return this.portOf('tcp');
  }
  /** The sockets as bound: transport, bind address, port (port 0 → the real one once started). */
  get bound(): Array<{ transport: string; host: string; port: number }> {
    return this.specs.map((s) => ({ transport: s.transport.name, host: s.host, port: this.portOf(s.transport.name) }));
  }
  /** Transport name → bound port, in listener order (then the stand-ins: `ws` on a listener with only `wss`, sip/transports/registry.ts). */
  get ports(): ReadonlyMap<string, number> {
    return withSiblings(new Map(this.sockets.map((s) => [s.transport.name, s.port])));
  }
  /** The socket of a transport that takes over HTTP upgrades (WebSocket), as a handler; undefined when the listener has none. */
  upgradeHandler(proto: string): ((req: IncomingMessage, socket: Duplex, head: Buffer) => void) | undefined {
    const s = this.byName.get(proto);
    return s?.acceptUpgrade?.bind(s);
  }
  /** The open connection of a stream transport by id, else undefined. */
  connection(proto: string, id: number): StreamConnection | undefined {
    return this.byName.get(proto)?.connection?.(id);
  }
  /** Open connections of the stream transports. */
  get connections(): number {
    return this.sockets.reduce((n, s) => n + s.connections, 0);
  }

  async start(): Promise<void> {
    try {
      await this.open();
    } catch (e) {
      // a socket that cannot open (port taken, TLS without its certificate): the others close again
      await this.close();
      throw e;
    }
  }

  private async open(): Promise<void> {
    // Port 0 = any free port: the sockets of one host then share the number when they can.
    const chosen = new Map<string, number>();
    for (const spec of this.specs) {
      const o = { ...this.socketOptions, host: spec.host, port: spec.port };
      let socket: ListeningSocket;
      const shared = spec.port === 0 ? chosen.get(spec.host) : undefined;
      if (shared !== undefined) {
        // a socket of another transport took this number already: any free port will do
        try {
          socket = await spec.transport.listen({ ...o, port: shared });
        } catch {
          socket = await spec.transport.listen(o);
        }
      } else {
        socket = await spec.transport.listen(o);
      }
      if (spec.port === 0 && !chosen.has(spec.host)) chosen.set(spec.host, socket.port);
      this.sockets.push(socket);
      this.byName.set(socket.transport.name, socket);
    }
  }

  /** Datagram sockets shared with worker threads: bind again, so that reception is this thread's. */
  async rebindUdp(): Promise<void> {
    for (const s of this.sockets) if (s.rebind) await s.rebind();
  }

  /** Sends on the socket of the peer's transport (or of its sibling when the listener has none: `ws` ↔ `wss`). */
  send(buf: Buffer, peer: Peer, cb?: SendCallback): void {
    const s = this.byName.get(peer.proto) ?? this.siblingOf(peer.proto);
    if (s === undefined) {
      cb?.(new Error(`no ${peer.proto.toUpperCase()} transport`));
      return;
    }
    if (peer.flowOnly) {
      const conn = peer.connId === undefined ? undefined : s.connection?.(peer.connId);
      const problem = flowProblem(conn, peer);
      if (problem !== null) {
        cb?.(new Error(problem));
        return;
      }
      s.send(buf, { ...peer, conn }, cb);
      return;
    }
    s.send(buf, peer, cb);
  }

  private siblingOf(proto: string): ListeningSocket | undefined {
    const sibling = transportNamed(proto)?.sibling;
    return sibling === undefined ? undefined : this.byName.get(sibling);
  }

  /** Stops receiving: closes the sockets and listeners; open connections are destroyed. */
  async close(): Promise<void> {
    const sockets = this.sockets;
    await Promise.all(sockets.map((s) => s.close()));
  }

  /** Stops accepting connections but keeps sockets open for in-flight responses. */
  pauseAccepting(): void {
    for (const s of this.sockets) s.pauseAccepting();
  }
}

/** Why a flow-only send cannot go over `conn` (closed, or now another peer's), or null. */
function flowProblem(conn: StreamConnection | undefined, peer: Peer): string | null {
  if (conn === undefined || conn.closed) return `${peer.proto} connection ${peer.connId} is closed`;
  if (peer.address === '') return null;
  const key = conn.key;
  const remote = peer.port > 0 ? key === `${peer.address}:${peer.port}` : key.slice(0, key.lastIndexOf(':')) === peer.address;
  return remote ? null : `${peer.proto} connection ${peer.connId} is now ${key}'s, not the binding's ${peer.address}${peer.port > 0 ? `:${peer.port}` : ''}`;
}

/** The address written in Via/Record-Route for a bind host: 127.0.0.1 for a wildcard bind. */
export function advertisedOf(host: string): string {
  return host === '0.0.0.0' || host === '::' || host === '' ? '127.0.0.1' : host;
}
