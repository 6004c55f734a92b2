/**
 * SIP transports (RFC 3261 §18): one UDP socket and one TCP listener on the same host/port.
 *
 * UDP: large kernel buffers (4 MiB by default; the kernel caps them at net.core.[rw]mem_max),
 * sends never wait for a peer (a full socket buffer drops, as UDP does). With `reuseAddr` the
 * socket is bound with SO_REUSEADDR so SIP worker threads can send from the same port; on Linux
 * unicast datagrams go to the socket bound last, which `rebindUdp()` makes this one again.
 *
 * TCP: one StreamFramer per connection (partial reads, several messages per read), a maximum
 * message size, an idle timeout, CRLFCRLF keep-alive pings answered with CRLF (RFC 5626
 * §3.5.1), and a connection table keyed by the remote `ip:port` so responses and later requests
 * reuse the connection the peer opened (RFC 3261 §18.2.2). A connection whose outgoing buffer
 * grows past a limit is closed instead of buffering without bound (never block on a slow peer).
 *
 * TCP defences (docs/security.md): a message whose first byte arrived must be complete within
 * `tcpMessageTimeoutMs` (slowloris: a trickle of bytes keeps the idle timer from firing, not this
 * one), and inbound connections are admitted by a `TcpGate` (sip/tcp-limits.ts: caps in total
 * and per source); a refused connection is reset at once.
 */
import dgram from 'node:dgram';
import dns from 'node:dns';
import net from 'node:net';
import { StreamFramer } from './framing';
import type { TcpGate } from './tcp-limits';

export type Proto = 'udp' | 'tcp';

/** A remote endpoint; `conn` is the TCP connection a message arrived on (if any). */
export interface Peer {
  proto: Proto;
  address: string;
  port: number;
  conn?: TcpConnection;
  /** The connection's `ip:port` key when the connection object lives in another thread. */
  connKey?: string;
}

export interface LocalEndpoint {
  proto: Proto;
  address: string;
  port: number;
}

export type TcpCloseReason = 'message_timeout' | 'idle_timeout' | 'bad_framing' | 'not_reading';

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
  readonly udpPort: number;
  readonly tcpPort: number;
  send(buf: Buffer, peer: Peer, cb?: SendCallback): void;
}

export interface TransportOptions {
  host: string;
  /** 0 = any free port (UDP and TCP then get the same number when possible). */
  port: number;
  udp?: boolean;
  tcp?: boolean;
  /** Kernel receive / send buffer of the UDP socket (default 4 MiB). */
  recvBufferSize?: number;
  sendBufferSize?: number;
  /** Close TCP connections idle this long (default 300 s, RFC 5626 friendly; sip.tcp.idleTimeoutSec). */
  tcpIdleTimeoutMs?: number;
  /** A message whose first byte arrived must be complete within this, else the connection is closed (default 10 s; sip.tcp.messageTimeoutMs). */
  tcpMessageTimeoutMs?: number;
  /** Admission of inbound TCP connections (caps in total and per source); none = no cap. */
  tcpGate?: TcpGate;
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

const MIB4 = 4 * 1024 * 1024;
const CRLF = Buffer.from('\r\n');

/**
 * dgram's address lookup for sends: an IP literal (what the proxy and the transaction layer always
 * pass; names are resolved before) is answered at once. dns.lookup answers it too, but only on the
 * next tick, which costs every UDP response a deferral.
 */
export function literalFirstLookup(address: string, family: unknown, cb: (err: Error | null, address: string, family: number) => void): void {
  const v = net.isIP(address);
  if (v !== 0) { cb(null, address, v); return; }
  dns.lookup(address, family as number, cb as never);
}

/** '::ffff:1.2.3.4' → '1.2.3.4'. */
export function plainAddress(a: string): string {
  return a.length > 7 && a.charCodeAt(0) === 58 && a.startsWith('::ffff:') && a.indexOf('.') > 0 ? a.slice(7) : a;
}

export class TcpConnection {
  readonly framer: StreamFramer;
  readonly key: string;
  closed = false;
  /** Accepted from a peer (holds a slot of the TcpGate), as opposed to opened by us. */
  inbound = false;
  /** Running while a message is incomplete (sip.tcp.messageTimeoutMs). */
  messageTimer: NodeJS.Timeout | null = null;
  /** Senders waiting for an outgoing connect. */
  private waiting: SendCallback[] | null = null;

  constructor(readonly socket: net.Socket, readonly address: string, readonly port: number, maxMessageSize: number, connecting: boolean) {
    this.framer = new StreamFramer({ maxMessageSize });
    this.key = `${address}:${port}`;
    if (connecting) this.waiting = [];
  }

  /** Outgoing connection established: pending sends succeeded. */
  connected(): void {
    const w = this.waiting;
    this.waiting = null;
    if (w) for (const cb of w) cb(null);
  }

  failed(err: Error): void {
    const w = this.waiting;
    this.waiting = null;
    if (w) for (const cb of w) cb(err);
  }

  write(buf: Buffer, cb?: SendCallback): void {
    if (this.closed) { cb?.(new Error('connection closed')); return; }
    this.socket.write(buf);
    if (cb) {
      if (this.waiting) this.waiting.push(cb);
      else cb(null);
    }
  }
}

export class SipTransports implements SipSender {
  private udp: dgram.Socket | null = null;
  private server: net.Server | null = null;
  private readonly conns = new Map<string, TcpConnection>();
  private readonly opts: Required<Omit<TransportOptions, 'onWarning' | 'tcpGate' | 'onTcpClosed'>> & Pick<TransportOptions, 'onWarning' | 'tcpGate' | 'onTcpClosed'>;
  private closing = false;
  udpPort = 0;
  tcpPort = 0;
  /** Address advertised in Via/Record-Route (the bind host, or 127.0.0.1 for a wildcard bind). */
  advertised: string;

  constructor(o: TransportOptions) {
    this.opts = {
      host: o.host, port: o.port, onMessage: o.onMessage, onWarning: o.onWarning,
      udp: o.udp ?? true, tcp: o.tcp ?? true, recvBufferSize: o.recvBufferSize ?? MIB4, sendBufferSize: o.sendBufferSize ?? MIB4,
      tcpIdleTimeoutMs: o.tcpIdleTimeoutMs ?? 300_000, tcpMessageTimeoutMs: o.tcpMessageTimeoutMs ?? 10_000,
      tcpGate: o.tcpGate, onTcpClosed: o.onTcpClosed, maxMessageSize: o.maxMessageSize ?? 65535,
      maxTcpBuffered: o.maxTcpBuffered ?? MIB4, tcpConnectTimeoutMs: o.tcpConnectTimeoutMs ?? 5000, reuseAddr: o.reuseAddr ?? false,
    };
    this.advertised = o.host === '0.0.0.0' || o.host === '::' || o.host === '' ? '127.0.0.1' : o.host;
  }

  get connections(): number { return this.conns.size; }

  async start(): Promise<void> {
    const o = this.opts;
    let port = o.port;
    if (o.udp) {
      // SO_REUSEADDR would let us bind a port another process already serves (and take its
      // traffic): claim the port exclusively first, then rebind it shareable for our worker threads.
      if (o.reuseAddr) port = await this.probeUdp(port);
      port = await this.startUdp(port);
      this.udpPort = port;
    }
    if (o.tcp) {
      try {
        this.tcpPort = await this.startTcp(port);
      } catch (e) {
        // port 0 + a TCP port already taken for the UDP port number: any free TCP port will do
        if (o.port !== 0) throw e;
        this.tcpPort = await this.startTcp(0);
      }
    }
  }

  /** Binds the port without SO_REUSEADDR (fails with EADDRINUSE when anyone holds it) and releases it. */
  private probeUdp(port: number): Promise<number> {
    const o = this.opts;
    const sock = dgram.createSocket(net.isIPv6(o.host) ? 'udp6' : 'udp4');
    return new Promise((resolve, reject) => {
      sock.once('error', reject);
      sock.bind({ address: o.host || undefined, port, exclusive: true }, () => {
        const bound = sock.address().port;
        sock.close(() => resolve(bound));
      });
    });
  }

  private startUdp(port: number): Promise<number> {
    const o = this.opts;
    const type = net.isIPv6(o.host) ? 'udp6' : 'udp4';
    const sock = dgram.createSocket({
      type, reuseAddr: o.reuseAddr, recvBufferSize: o.recvBufferSize, sendBufferSize: o.sendBufferSize, lookup: literalFirstLookup as never,
    });
    const previous = this.udp;
    this.udp = sock;
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => { this.udp = previous; reject(err); };
      sock.once('error', onError);
      sock.bind({ address: o.host || undefined, port }, () => {
        sock.off('error', onError);
        sock.on('error', (err) => o.onWarning?.(`udp socket error: ${err.message}`));
        try {
          const got = sock.getRecvBufferSize();
          // Linux reports twice the requested size when granted
          if (got < o.recvBufferSize) o.onWarning?.(`UDP receive buffer is ${got} bytes (asked ${o.recvBufferSize}); raise net.core.rmem_max`);
        } catch (e) {
          o.onWarning?.(`cannot size UDP buffers: ${(e as Error).message}`);
        }
        const local: LocalEndpoint = { proto: 'udp', address: sock.address().address, port: sock.address().port };
        sock.on('message', (data, rinfo) => {
          o.onMessage(data, { proto: 'udp', address: plainAddress(rinfo.address), port: rinfo.port }, local);
        });
        if (previous) previous.close();
        resolve(local.port);
      });
    });
  }

  /**
   * Binds a fresh UDP socket to the same address and port (SO_REUSEADDR) and closes the old one:
   * on Linux the socket bound last receives the port's datagrams, so after worker threads bound
   * their send sockets this takes reception back.
   */
  async rebindUdp(): Promise<void> {
    if (!this.udp || !this.opts.reuseAddr) return;
    await this.startUdp(this.udpPort);
  }

  private startTcp(port: number): Promise<number> {
    const o = this.opts;
    const server = net.createServer({ noDelay: true }, (socket) => this.accept(socket));
    this.server = server;
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      server.once('error', onError);
      server.listen({ host: o.host || undefined, port }, () => {
        server.off('error', onError);
        server.on('error', (err) => o.onWarning?.(`tcp listener error: ${err.message}`));
        resolve((server.address() as net.AddressInfo).port);
      });
    });
  }

  private accept(socket: net.Socket): void {
    if (this.closing) { socket.destroy(); return; }
    const address = plainAddress(socket.remoteAddress ?? '');
    const gate = this.opts.tcpGate;
    if (gate !== undefined && gate.admit(address) !== null) {
      // refused: reset at once, nothing read, nothing kept (the descriptor is free again now)
      socket.on('error', () => undefined);
      socket.resetAndDestroy();
      return;
    }
    const conn = new TcpConnection(socket, address, socket.remotePort ?? 0, this.opts.maxMessageSize, false);
    conn.inbound = gate !== undefined;
    this.wire(conn);
  }

  /**
   * Closes a connection because of a defence (counted by `onTcpClosed`). Timeouts are not logged
   * here, one line per connection (a slowloris attack holds hundreds): `onTcpClosed` summarises.
   */
  private drop(conn: TcpConnection, reason: TcpCloseReason, message: string): void {
    if (conn.closed || conn.socket.destroyed) return;
    if (reason !== 'message_timeout' && reason !== 'idle_timeout') this.opts.onWarning?.(`tcp ${conn.key}: ${message}; closing`);
    this.opts.onTcpClosed?.(reason, conn.address);
    conn.socket.destroy();
  }

  private wire(conn: TcpConnection): void {
    const o = this.opts;
    const socket = conn.socket;
    const old = this.conns.get(conn.key);
    if (old && old !== conn) old.socket.destroy();
    this.conns.set(conn.key, conn);
    socket.setNoDelay(true);
    socket.setTimeout(o.tcpIdleTimeoutMs, () => this.drop(conn, 'idle_timeout', `idle for ${o.tcpIdleTimeoutMs} ms`));
    const messageTimeout = () => {
      conn.messageTimer = null;
      this.drop(conn, 'message_timeout', `message not complete within ${o.tcpMessageTimeoutMs} ms (${conn.framer.buffered} bytes held)`);
    };
    let local: LocalEndpoint | null = null;
    socket.on('data', (chunk: Buffer) => {
      const r = conn.framer.push(chunk);
      local ??= { proto: 'tcp', address: plainAddress(socket.localAddress ?? ''), port: socket.localPort ?? 0 };
      const peer: Peer = { proto: 'tcp', address: conn.address, port: conn.port, conn };
      for (const m of r.messages) o.onMessage(m, peer, local);
      if (r.keepalives > 0 && !conn.closed) socket.write(CRLF);
      if (r.error !== undefined) {
        this.drop(conn, 'bad_framing', r.error);
        return;
      }
      // The message timer runs from the first byte of a message to its last: stopped when nothing
      // is held, restarted when the bytes held belong to a message that began in this chunk.
      if (conn.framer.buffered === 0) {
        if (conn.messageTimer !== null) { clearTimeout(conn.messageTimer); conn.messageTimer = null; }
      } else if (conn.messageTimer === null || r.messages.length > 0) {
        if (conn.messageTimer !== null) clearTimeout(conn.messageTimer);
        conn.messageTimer = setTimeout(messageTimeout, o.tcpMessageTimeoutMs);
        conn.messageTimer.unref();
      }
    });
    socket.on('error', (err) => { conn.failed(err); });
    socket.on('close', () => {
      conn.closed = true;
      if (conn.messageTimer !== null) { clearTimeout(conn.messageTimer); conn.messageTimer = null; }
      if (conn.inbound) { conn.inbound = false; o.tcpGate?.release(conn.address); }
      conn.failed(new Error('connection closed'));
      if (this.conns.get(conn.key) === conn) this.conns.delete(conn.key);
    });
  }

  /**
   * Sends a message. UDP: fire and forget (the callback reports local errors only). TCP: over
   * `peer.conn` when still open, else over a connection to address:port (reused or opened).
   */
  send(buf: Buffer, peer: Peer, cb?: SendCallback): void {
    if (peer.proto === 'udp') {
      const sock = this.udp;
      if (!sock) { cb?.(new Error('no UDP transport')); return; }
      if (cb) sock.send(buf, peer.port, peer.address, (err) => cb(err ?? null));
      else sock.send(buf, peer.port, peer.address);
      return;
    }
    let conn = peer.conn && !peer.conn.closed ? peer.conn
      : (peer.connKey !== undefined ? this.conns.get(peer.connKey) : undefined) ?? this.conns.get(`${peer.address}:${peer.port}`);
    if (!conn || conn.closed) {
      if (this.closing) { cb?.(new Error('shutting down')); return; }
      conn = this.connect(peer.address, peer.port);
    }
    if (conn.socket.writableLength > this.opts.maxTcpBuffered) {
      this.drop(conn, 'not_reading', `peer not reading (${conn.socket.writableLength} bytes queued)`);
      cb?.(new Error('peer not reading'));
      return;
    }
    conn.write(buf, cb);
  }

  private connect(address: string, port: number): TcpConnection {
    const socket = net.connect({ host: address, port, noDelay: true });
    const conn = new TcpConnection(socket, address, port, this.opts.maxMessageSize, true);
    const timer = setTimeout(() => { conn.failed(new Error('connect timeout')); socket.destroy(); }, this.opts.tcpConnectTimeoutMs);
    timer.unref();
    socket.once('connect', () => { clearTimeout(timer); conn.connected(); });
    socket.once('close', () => clearTimeout(timer));
    this.wire(conn);
    return conn;
  }

  /** Stops receiving: closes the UDP socket and the listener; open connections are destroyed. */
  async close(): Promise<void> {
    this.closing = true;
    const tasks: Promise<void>[] = [];
    if (this.udp) {
      const s = this.udp;
      this.udp = null;
      tasks.push(new Promise((r) => { try { s.close(() => r()); } catch { r(); } }));
    }
    if (this.server) {
      const s = this.server;
      this.server = null;
      tasks.push(new Promise((r) => s.close(() => r())));
    }
    for (const c of this.conns.values()) c.socket.destroy();
    this.conns.clear();
    await Promise.all(tasks);
  }

  /** Stops reading new requests but keeps sockets open for in-flight responses. */
  pauseAccepting(): void {
    this.closing = true;
    this.server?.close();
    this.server = null;
  }
}
