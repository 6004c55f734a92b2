/**
 * What TCP and TLS share (RFC 3261 §18): a listening socket whose connections each carry SIP
 * messages framed by Content-Length. The transport modules (tcp.ts, tls.ts) only say how an
 * accepted TCP connection becomes a SIP stream (TCP: at once; TLS: after its handshake) and how an
 * outgoing connection is opened; everything else is here, once:
 *
 * - one StreamFramer per connection (partial reads, several messages per read), a maximum message
 *   size, an idle timeout, CRLFCRLF keep-alive pings answered with CRLF (RFC 5626 §3.5.1);
 * - a connection table keyed by the remote `ip:port` (responses and later requests reuse the
 *   connection the peer opened, §18.2.2) and by connection id (bindings tied to their connection);
 * - a message whose first byte arrived must be complete within `tcpMessageTimeoutMs` (slowloris: a
 *   trickle of bytes keeps the idle timer from firing, not this one);
 * - inbound connections are admitted by the `TcpGate` (sip/tcp-limits.ts) before anything else
 *   (for TLS: before the handshake); a refused connection is reset at once;
 * - a connection whose outgoing buffer grows past `maxTcpBuffered` is closed instead of buffering
 *   without bound (never block on a slow peer);
 * - outgoing connections: messages sent while connecting wait for it; their callbacks learn
 *   whether it succeeded (connect timeout `tcpConnectTimeoutMs`, TLS handshake included).
 */
import net from 'node:net';
import { StreamFramer } from '../framing';
import type { LocalEndpoint, Peer, SendCallback, TcpCloseReason } from '../transport';
import { plainAddress } from './addresses';
import { nextConnectionId, type ListeningSocket, type SipTransport, type SocketOptions, type StreamConnection } from './registry';

const MIB4 = 4 * 1024 * 1024;
const CRLF = Buffer.from('\r\n');
const LOG_WINDOW_MS = 10_000;
const LOG_BURST = 10;

/**
 * Log lines a peer can cause (a failed handshake, a close mid-message): one each, up to LOG_BURST
 * per LOG_WINDOW_MS, then one line counting those left out (a flood must not become a log flood).
 */
export function burstLog(warn: (m: string) => void, what: string): (m: string) => void {
  let windowStart = 0;
  let lines = 0;
  let left = 0;
  return (m) => {
    const now = Date.now();
    if (now - windowStart >= LOG_WINDOW_MS) {
      if (left > 0) warn(`${left} more ${what} not logged in the last ${LOG_WINDOW_MS / 1000} s`);
      windowStart = now;
      lines = 0;
      left = 0;
    }
    if (lines < LOG_BURST) {
      lines++;
      warn(m);
    } else left++;
  };
}

/** How a stream transport differs from plain TCP. */
export interface StreamFlavour {
  /**
   * Receives each admitted inbound TCP connection and calls `ready` with the socket that carries
   * SIP (TCP: the same socket at once; TLS: the TLS socket once its handshake succeeded). A
   * connection that never becomes ready is the flavour's to close (and to log).
   */
  acceptor(ready: (socket: net.Socket) => void): (raw: net.Socket) => void;
  /** Opens an outgoing connection to a peer; `readyEvent`: when it can carry messages. */
  connect(peer: Peer): { socket: net.Socket; readyEvent: 'connect' | 'secureConnect' };
  /** Releases what the flavour holds (certificate watchers). */
  close(): void;
}

/** A connection of a stream transport (TCP, TLS). */
export class SocketConnection implements StreamConnection {
  readonly framer: StreamFramer;
  readonly key: string;
  readonly id = nextConnectionId();
  closed = false;
  /** Closed by a defence (logged or counted there). */
  dropped = false;
  /** Running while a message is incomplete (sip.tcp.messageTimeoutMs). */
  messageTimer: NodeJS.Timeout | null = null;
  /** Senders waiting for an outgoing connect. */
  private waiting: SendCallback[] | null = null;

  constructor(
    readonly socket: net.Socket,
    readonly address: string,
    readonly port: number,
    maxMessageSize: number,
    connecting: boolean,
  ) {
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
    if (this.closed) {
      cb?.(new Error('connection closed'));
      return;
    }
    this.socket.write(buf);
    if (cb) {
      if (this.waiting) this.waiting.push(cb);
      else cb(null);
    }
  }
}

export class StreamSocket implements ListeningSocket {
  private server: net.Server | null = null;
  private readonly conns = new Map<string, SocketConnection>();
  private readonly byId = new Map<number, SocketConnection>();
  /** Admitted inbound TCP connections (TLS: handshakes in progress too), destroyed on close. */
  private readonly accepted = new Set<net.Socket>();
  private closing = false;
  port = 0;
  private readonly idleMs: number;
  private readonly messageMs: number;
  private readonly maxMessageSize: number;
  private readonly maxBuffered: number;
  private readonly connectMs: number;
  private readonly logCut: (m: string) => void;

  constructor(
    readonly transport: SipTransport,
    private readonly o: SocketOptions,
    private readonly flavour: StreamFlavour,
  ) {
    this.idleMs = o.tcpIdleTimeoutMs ?? 300_000;
    this.messageMs = o.tcpMessageTimeoutMs ?? 10_000;
    this.maxMessageSize = o.maxMessageSize ?? 65535;
    this.maxBuffered = o.maxTcpBuffered ?? MIB4;
    this.connectMs = o.tcpConnectTimeoutMs ?? 5000;
    this.logCut = burstLog(o.onWarning ?? (() => undefined), `${transport.name} connections closed mid-message`);
  }

  get connections(): number {
    return this.byId.size;
  }

  connection(id: number): SocketConnection | undefined {
    return this.byId.get(id);
  }

  start(port: number): Promise<void> {
    const o = this.o;
    const accept = this.flavour.acceptor((socket) => this.ready(socket));
    const server = net.createServer({ noDelay: true }, (raw) => this.admit(raw, accept));
    this.server = server;
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => {
        this.flavour.close();
        reject(err);
      };
      server.once('error', onError);
      server.listen({ host: o.host || undefined, port }, () => {
        server.off('error', onError);
        server.on('error', (err) => o.onWarning?.(`${this.transport.name} listener error: ${err.message}`));
        this.port = (server.address() as net.AddressInfo).port;
        resolve();
      });
    });
  }

  /** An inbound TCP connection: admitted by the gate (or reset at once), then handed to the flavour. */
  private admit(raw: net.Socket, accept: (raw: net.Socket) => void): void {
    if (this.closing) {
      raw.destroy();
      return;
    }
    const address = plainAddress(raw.remoteAddress ?? '');
    const gate = this.o.tcpGate;
    if (gate !== undefined && gate.admit(address) !== null) {
      // refused: reset at once, nothing read, nothing kept (the descriptor is free again now)
      raw.on('error', () => undefined);
      raw.resetAndDestroy();
      return;
    }
    this.accepted.add(raw);
    // the gate's slot is held as long as the TCP connection, whatever runs over it
    raw.once('close', () => {
      this.accepted.delete(raw);
      gate?.release(address);
    });
    accept(raw);
  }

  /** An inbound connection ready for SIP. */
  private ready(socket: net.Socket): void {
    if (socket.destroyed || this.closing) {
      socket.destroy();
      return;
    }
    this.wire(new SocketConnection(socket, plainAddress(socket.remoteAddress ?? ''), socket.remotePort ?? 0, this.maxMessageSize, false));
  }

  /**
   * Closes a connection because of a defence (counted by `onTcpClosed`). Timeouts are not logged
   * here, one line per connection (a slowloris attack holds hundreds): `onTcpClosed` summarises.
   */
  private drop(conn: SocketConnection, reason: TcpCloseReason, message: string): void {
    if (conn.closed || conn.socket.destroyed) return;
    if (reason !== 'message_timeout' && reason !== 'idle_timeout') this.o.onWarning?.(`${this.transport.name} ${conn.key}: ${message}; closing`);
    this.o.onTcpClosed?.(reason, conn.address);
    conn.dropped = true;
    conn.socket.destroy();
  }

  private wire(conn: SocketConnection): void {
    const o = this.o;
    const name = this.transport.name;
    const socket = conn.socket;
    const old = this.conns.get(conn.key);
    if (old && old !== conn) old.socket.destroy();
    this.conns.set(conn.key, conn);
    this.byId.set(conn.id, conn);
    socket.setNoDelay(true);
    socket.setTimeout(this.idleMs, () => this.drop(conn, 'idle_timeout', `idle for ${this.idleMs} ms`));
    const messageTimeout = () => {
      conn.messageTimer = null;
      this.drop(conn, 'message_timeout', `message not complete within ${this.messageMs} ms (${conn.framer.buffered} bytes held)`);
    };
    let local: LocalEndpoint | null = null;
    socket.on('data', (chunk: Buffer) => {
      const r = conn.framer.push(chunk);
      local ??= { proto: name, address: plainAddress(socket.localAddress ?? ''), port: socket.localPort ?? 0 };
      const peer: Peer = { proto: name, address: conn.address, port: conn.port, conn };
      for (const m of r.messages) o.onMessage(m, peer, local);
      if (r.keepalives > 0 && !conn.closed) socket.write(CRLF);
      if (r.error !== undefined) {
        this.drop(conn, 'bad_framing', r.error);
        return;
      }
      // The message timer runs from the first byte of a message to its last: stopped when nothing
      // is held, restarted when the bytes held belong to a message that began in this chunk.
      if (conn.framer.buffered === 0) {
        if (conn.messageTimer !== null) {
          clearTimeout(conn.messageTimer);
          conn.messageTimer = null;
        }
      } else if (conn.messageTimer === null || r.messages.length > 0) {
        if (conn.messageTimer !== null) clearTimeout(conn.messageTimer);
        conn.messageTimer = setTimeout(messageTimeout, this.messageMs);
        conn.messageTimer.unref();
      }
    });
    socket.on('error', (err) => {
      conn.failed(err);
    });
    socket.on('close', () => {
      // the peer went away (or a defence closed it) with part of a message: say so, it is discarded
      if (conn.framer.buffered > 0 && !conn.dropped && !this.closing)
        this.logCut(`${name} ${conn.key}: closed mid-message (${conn.framer.buffered} bytes of an incomplete message discarded)`);
      conn.closed = true;
      if (conn.messageTimer !== null) {
        clearTimeout(conn.messageTimer);
        conn.messageTimer = null;
      }
      conn.failed(new Error('connection closed'));
      if (this.conns.get(conn.key) === conn) this.conns.delete(conn.key);
      this.byId.delete(conn.id);
      o.onConnectionClosed?.(this.transport, conn);
    });
  }

  /** Over `peer.conn` when still open, else over a connection to address:port (reused or opened). */
  send(buf: Buffer, peer: Peer, cb?: SendCallback): void {
    const given = peer.conn instanceof SocketConnection && !peer.conn.closed ? peer.conn : undefined;
    let conn = given ?? (peer.connId !== undefined ? this.byId.get(peer.connId) : undefined) ?? this.conns.get(`${peer.address}:${peer.port}`);
    if (!conn || conn.closed) {
      if (this.closing) {
        cb?.(new Error('shutting down'));
        return;
      }
      conn = this.connect(peer);
    }
    if (conn.socket.writableLength > this.maxBuffered) {
      this.drop(conn, 'not_reading', `peer not reading (${conn.socket.writableLength} bytes queued)`);
      cb?.(new Error('peer not reading'));
      return;
    }
    conn.write(buf, cb);
  }

  private connect(peer: Peer): SocketConnection {
    const { socket, readyEvent } = this.flavour.connect(peer);
    const conn = new SocketConnection(socket, peer.address, peer.port, this.maxMessageSize, true);
    const timer = setTimeout(() => {
      conn.failed(new Error(`${readyEvent === 'connect' ? 'connect' : 'connect or TLS handshake'} not complete within ${this.connectMs} ms`));
      socket.destroy();
    }, this.connectMs);
    timer.unref();
    socket.once(readyEvent, () => {
      clearTimeout(timer);
      conn.connected();
    });
    socket.once('close', () => clearTimeout(timer));
    this.wire(conn);
    return conn;
  }

  /** Stops accepting connections; open ones stay for responses in flight. */
  pauseAccepting(): void {
    this.closing = true;
    this.server?.close();
    this.server = null;
  }

  /** Closes the listener and destroys every connection (handshakes in progress too). */
  async close(): Promise<void> {
    this.closing = true;
    const s = this.server;
    this.server = null;
    const closed = s ? new Promise<void>((r) => s.close(() => r())) : Promise.resolve();
    for (const c of this.conns.values()) c.socket.destroy();
    for (const raw of this.accepted) raw.destroy();
    this.conns.clear();
    this.byId.clear();
    this.flavour.close();
    await closed;
  }
}
