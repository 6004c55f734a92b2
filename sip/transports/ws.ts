/**
 * SIP over WebSocket (RFC 7118): `ws` (Via `WS`) and `wss` (Via `WSS`, TLS with the certificates
 * of `sip.tls`), with the `ws` package. What browser phones (JsSIP, SIP.js) speak.
 *
 * Layout: one HTTP(S) server per listening socket whose upgrades go to a `WebSocketServer` in
 * noServer mode; the HTTP API's server can hand its upgrades on a path to the same socket
 * (`acceptUpgrade`, http.sipWebSocket). One WebSocket message is one SIP message (RFC 7118 §5: no
 * Content-Length framing); a message of CR/LF only is a keep-alive, answered with CRLF (as SIP.js
 * sends them). Connections are kept by id and by the remote `ip:port` (the binding's `received`),
 * so responses, and requests to a user registered over WebSocket, go back over the connection the
 * user opened; the tables are shared by the ws and wss sockets (`sibling`: a Contact says
 * `transport=ws` over WSS too, RFC 7118 §5.2). A WebSocket target without an open connection fails ('no connection'): sipflow
 * never opens an outgoing WebSocket (a browser cannot be connected to).
 *
 * Defences: the handshake must offer the `sip` subprotocol (RFC 7118 §4), else 400 and a log
 * line; a message above the SIP maximum message size closes the connection with 1009 (`ws`'s
 * maxPayload: checked on the frame header, the payload is never buffered); a message that is not
 * SIP closes it with 1008, invalid UTF-8 in a text frame with 1007. Connections are admitted by
 * the process's TcpGate (caps in total and per source) as TCP ones: on the TCP connection for
 * the socket's own server, at the upgrade for the HTTP API's. A connection from which nothing
 * arrived for half the idle timeout is pinged (browsers answer by themselves); one silent for the
 * whole idle timeout is closed. The HTTP handshake must complete within the message timeout, a
 * TLS handshake within `sip.tls.handshakeTimeoutMs`.
 *
 * Behind a reverse proxy: `X-Forwarded-For` is read only when the connecting address is a trusted
 * proxy (`trustedProxy`); the source is then the nearest untrusted address of that list, and the
 * port the proxy's (which keeps `ip:port` unique per connection). Bans, rate limits and the
 * per-source cap of the HTTP API's upgrades key on that source.
 */
import http from 'node:http';
import https from 'node:https';
import { isUtf8 } from 'node:buffer';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { LocalEndpoint, Peer, SendCallback, TcpCloseReason } from '../transport';
import { plainAddress } from './addresses';
import { Certificates } from './certificates';
import { burstLog } from './stream';
import { nextConnectionId, registerTransport, type ListeningSocket, type SipTransport, type SocketOptions, type StreamConnection } from './registry';

const MIB4 = 4 * 1024 * 1024;
const CRLF = Buffer.from('\r\n');
/** Close codes (RFC 6455 §7.4.1). */
const POLICY_VIOLATION = 1008;
const GOING_AWAY = 1001;

export class WsConnection implements StreamConnection {
  readonly id = nextConnectionId();
  readonly key: string;
  closed = false;
  /** Last time anything arrived (message, ping, pong). */
  lastSeen = Date.now();
  pinged = false;

  constructor(
    readonly ws: WebSocket,
    readonly address: string,
    readonly port: number,
  ) {
    this.key = `${address}:${port}`;
  }
}

/**
 * The process's WebSocket connections (this thread's: the one holding the sockets), by `ip:port`
 * and by id, shared by every ws and wss socket: a Contact says `transport=ws` over WSS too (RFC
 * 7118 §5.2), so a send for `ws` may be for a WSS connection.
 */
const byKey = new Map<string, WsConnection>();
const byId = new Map<number, WsConnection>();

/** A request line (`INVITE sip:… SIP/2.0`) or a status line (`SIP/2.0 200 OK`) first. */
const START_LINE = /^(?:[A-Za-z!%*_+`'~.-]+ [^ \r\n]+ SIP\/\d+\.\d+|SIP\/\d+\.\d+ \d{3}(?: [^\r\n]*)?)\r?$/;

function startsLikeSip(buf: Buffer): boolean {
  const nl = buf.indexOf(10);
  if (nl < 0 || nl > 2048) return false;
  return START_LINE.test(buf.toString('latin1', 0, nl));
}

function onlyCrlf(buf: Buffer): boolean {
  for (const c of buf) if (c !== 13 && c !== 10) return false;
  return buf.length > 0;
}

/** The first bytes of a refused frame, printable (for the log line; never more than 24). */
function preview(buf: Buffer): string {
  return JSON.stringify(buf.toString('latin1', 0, Math.min(24, buf.length)).replace(/[^\x20-\x7e]/g, '.'));
}

/** Refuses a handshake with an HTTP status (before the upgrade: a plain HTTP response). */
function refuse(socket: Duplex, status: number, reason: string): void {
  if (socket.writable)
    socket.end(
      `HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? ''}\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ${reason.length}\r\n\r\n${reason}`,
    );
  socket.destroy();
}

/** The client's address: the nearest untrusted one of X-Forwarded-For when `direct` is a trusted proxy. */
export function forwardedSource(direct: string, forwardedFor: string | string[] | undefined, trustedProxy: ((a: string) => boolean) | undefined): string {
  if (forwardedFor === undefined || trustedProxy === undefined) return direct;
  const hops = (Array.isArray(forwardedFor) ? forwardedFor.join(',') : forwardedFor).split(',');
  let source = direct;
  for (let i = hops.length - 1; i >= 0 && trustedProxy(source); i--) {
    const hop = plainAddress(hops[i].trim().replace(/^\[(.*)\]$/, '$1'));
    if (net.isIP(hop) === 0) break; // a proxy that wrote garbage (or `unknown`): stop at the last good hop
    source = hop;
  }
  return source;
}

/** A listening WebSocket socket, and the receiver of the HTTP API's SIP upgrades. */
export class WsSocket implements ListeningSocket {
  private server: http.Server | https.Server | null = null;
  private certificates: Certificates | null = null;
  private stopReload: (() => void) | null = null;
  private readonly wss: WebSocketServer;
  /** This socket's connections (closed with it). */
  private readonly own = new Set<WsConnection>();
  private sweeper: NodeJS.Timeout | null = null;
  private closing = false;
  port = 0;
  private readonly idleMs: number;
  private readonly handshakeMs: number;
  private readonly maxBuffered: number;
  private readonly refusedProtocol: (m: string) => void;
  private readonly refusedTls: (m: string) => void;
  private readonly warn: ((m: string) => void) | undefined;

  constructor(
    readonly transport: SipTransport,
    private readonly o: SocketOptions,
  ) {
    this.idleMs = o.tcpIdleTimeoutMs ?? 300_000;
    this.handshakeMs = o.tcpMessageTimeoutMs ?? 10_000;
    this.maxBuffered = o.maxTcpBuffered ?? MIB4;
    this.warn = o.onWarning;
    // the same bound as the stream transports' lines a peer can cause (sip/transports/stream.ts)
    const warn = o.onWarning ?? (() => undefined);
    this.refusedProtocol = burstLog(warn, `${transport.name} handshakes without the "sip" subprotocol`);
    this.refusedTls = burstLog(warn, 'wss TLS handshakes failed');
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: o.maxMessageSize ?? 65535,
      perMessageDeflate: false,
      clientTracking: false,
      handleProtocols: () => 'sip',
    });
  }

  get connections(): number {
    return this.own.size;
  }

  connection(id: number): WsConnection | undefined {
    return byId.get(id);
  }

  async start(port: number, secure: boolean): Promise<void> {
    const o = this.o;
    let server: http.Server | https.Server;
    if (secure) {
      if (o.tls?.certFile === undefined || o.tls.keyFile === undefined)
        throw new Error('a wss listener needs sip.tls.certFile and sip.tls.keyFile (or --tls-cert and --tls-key)');
      const certs = Certificates.open(o.tls, o.onWarning);
      this.certificates = certs;
      const s = https.createServer({ ...certs.options, handshakeTimeout: o.tls.handshakeTimeoutMs });
      this.stopReload = certs.onReload((options) => s.setSecureContext(options));
      s.on('tlsClientError', (err, socket) => this.refusedTls(`wss ${plainAddress(socket.remoteAddress ?? '')}: TLS handshake failed: ${err.message}; closed`));
      server = s;
    } else {
      server = http.createServer();
    }
    // the HTTP handshake is bounded as a SIP message is (slowloris)
    server.headersTimeout = this.handshakeMs;
    server.requestTimeout = this.handshakeMs;
    server.keepAliveTimeout = 1000;
    server.on('connection', (socket: net.Socket) => this.admit(socket));
    server.on('request', (_req, res: http.ServerResponse) => {
      res.writeHead(426, { Upgrade: 'websocket', Connection: 'close', 'Content-Type': 'text/plain' });
      res.end('SIP over WebSocket (RFC 7118): upgrade with the "sip" subprotocol\n');
    });
    server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => this.upgrade(req, socket, head));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      server.once('error', onError);
      server.listen({ host: o.host || undefined, port }, () => {
        server.off('error', onError);
        server.on('error', (err) => o.onWarning?.(`${this.transport.name} listener error: ${err.message}`));
        this.port = (server.address() as net.AddressInfo).port;
        resolve();
      });
    });
    const sweepMs = Math.max(250, Math.min(30_000, Math.floor(this.idleMs / 4)));
    this.sweeper = setInterval(() => this.sweep(), sweepMs);
    this.sweeper.unref();
  }

  /** A TCP connection to our own server: admitted by the gate with its direct address (a proxy counts as its source). */
  private admit(socket: net.Socket): void {
    if (this.closing) {
      socket.destroy();
      return;
    }
    const gate = this.o.tcpGate;
    if (gate === undefined) return;
    const address = plainAddress(socket.remoteAddress ?? '');
    if (gate.admit(address) !== null) {
      socket.on('error', () => undefined);
      socket.resetAndDestroy();
      return;
    }
    socket.once('close', () => gate.release(address));
  }

  /**
   * An upgrade on the HTTP API's server (http.sipWebSocket): admitted by the gate with the client's
   * address (X-Forwarded-For from a trusted proxy), then handled as our own server's.
   */
  acceptUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    if (this.closing) {
      socket.destroy();
      return;
    }
    const gate = this.o.tcpGate;
    if (gate !== undefined) {
      const address = forwardedSource(plainAddress(req.socket.remoteAddress ?? ''), req.headers['x-forwarded-for'], this.o.trustedProxy);
      if (gate.admit(address) !== null) {
        refuse(socket, 503, 'too many connections\n');
        return;
      }
      socket.once('close', () => gate.release(address));
    }
    this.upgrade(req, socket, head);
  }

  private upgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    const raw = req.socket;
    socket.on('error', () => undefined); // a reset during the handshake: nothing to do but forget it
    if (this.closing) {
      socket.destroy();
      return;
    }
    const address = forwardedSource(plainAddress(raw.remoteAddress ?? ''), req.headers['x-forwarded-for'], this.o.trustedProxy);
    const port = raw.remotePort ?? 0;
    const offered = (req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim().toLowerCase());
    if (!offered.includes('sip')) {
      this.refusedProtocol(`${this.transport.name} ${address}:${port}: WebSocket handshake without the "sip" subprotocol (RFC 7118 §4); refused`);
      refuse(socket, 400, 'the "sip" WebSocket subprotocol is required (RFC 7118)\n');
      return;
    }
    const local: LocalEndpoint = { proto: this.transport.name, address: plainAddress(raw.localAddress ?? ''), port: raw.localPort ?? 0 };
    this.wss.handleUpgrade(req, socket, head, (ws) => this.wire(ws, address, port, local));
  }

  /** Closes a connection because of a defence: one log line (timeouts: none, the metrics count them). */
  private drop(conn: WsConnection, reason: TcpCloseReason, code: number, message: string): void {
    if (conn.closed) return;
    conn.closed = true; // nothing more sent or received on it
    if (reason !== 'idle_timeout') this.warn?.(`${this.transport.name} ${conn.key}: ${message}; closing (${code})`);
    this.o.onTcpClosed?.(reason, conn.address);
    conn.ws.close(code);
    // a peer that does not answer the close frame is not waited for long
    setTimeout(() => conn.ws.terminate(), 1000).unref();
  }

  private wire(ws: WebSocket, address: string, port: number, local: LocalEndpoint): void {
    const conn = new WsConnection(ws, address, port);
    if (this.closing) {
      ws.terminate();
      return;
    }
    const old = byKey.get(conn.key);
    if (old && old !== conn) old.ws.terminate();
    byKey.set(conn.key, conn);
    byId.set(conn.id, conn);
    this.own.add(conn);
    const name = this.transport.name;
    const peer: Peer = { proto: name, address, port, conn };
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (conn.closed) return;
      conn.lastSeen = Date.now();
      conn.pinged = false;
      if (onlyCrlf(data)) {
        ws.send(CRLF, { binary: isBinary }); // keep-alive (RFC 5626 §3.5.1's ping, as SIP.js sends over WebSocket)
        return;
      }
      if (!startsLikeSip(data)) {
        this.drop(
          conn,
          'bad_framing',
          POLICY_VIOLATION,
          `${isBinary ? 'binary' : 'text'} message of ${data.length} bytes is not a SIP message (starts ${preview(data)})`,
        );
        return;
      }
      this.o.onMessage(data, peer, local);
    });
    const seen = () => {
      conn.lastSeen = Date.now();
      conn.pinged = false;
    };
    ws.on('ping', seen);
    ws.on('pong', seen);
    ws.on('error', (err: Error & { code?: string }) => {
      // `ws` closes the connection itself (1009 too big, 1007 invalid UTF-8, 1002 protocol error)
      if (err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') this.o.onTcpClosed?.('bad_framing', address);
      this.warn?.(
        `${name} ${conn.key}: ${err.message}${err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH' ? ` (SIP messages are limited to ${this.o.maxMessageSize ?? 65535} bytes)` : ''}; closing`,
      );
    });
    ws.on('close', () => {
      conn.closed = true;
      if (byKey.get(conn.key) === conn) byKey.delete(conn.key);
      byId.delete(conn.id);
      this.own.delete(conn);
      this.o.onConnectionClosed?.(this.transport, conn);
    });
  }

  /** Pings connections silent for half the idle timeout; closes those silent for all of it. */
  private sweep(): void {
    const now = Date.now();
    for (const conn of this.own) {
      const silent = now - conn.lastSeen;
      if (silent >= this.idleMs) this.drop(conn, 'idle_timeout', GOING_AWAY, `idle for ${this.idleMs} ms`);
      else if (silent >= this.idleMs / 2 && !conn.pinged) {
        conn.pinged = true;
        conn.ws.ping();
      }
    }
  }

  /** Over `peer.conn`, the connection of `peer.connId`, or the one from `address:port`; never a new one. */
  send(buf: Buffer, peer: Peer, cb?: SendCallback): void {
    const given = peer.conn instanceof WsConnection && !peer.conn.closed ? peer.conn : undefined;
    const conn = given ?? (peer.connId !== undefined ? byId.get(peer.connId) : undefined) ?? byKey.get(`${peer.address}:${peer.port}`);
    if (conn === undefined || conn.closed) {
      // asynchronously, as a failed connect would be: the caller may not have stored its transaction yet
      if (cb) {
        const err = new Error(`no ${this.transport.name.toUpperCase()} connection to ${peer.address}:${peer.port}`);
        process.nextTick(cb, err);
      }
      return;
    }
    if (conn.ws.bufferedAmount > this.maxBuffered) {
      this.drop(conn, 'not_reading', POLICY_VIOLATION, `peer not reading (${conn.ws.bufferedAmount} bytes queued)`);
      cb?.(new Error('peer not reading'));
      return;
    }
    // text frames for UTF-8 messages (what browsers' SIP stacks expect), binary otherwise (RFC 7118 §5)
    // the callback says whether it went out: a connection closing (its close frame received) fails the send at once
    if (cb) conn.ws.send(buf, { binary: !isUtf8(buf) }, (err) => cb(err ?? null));
    else conn.ws.send(buf, { binary: !isUtf8(buf) });
  }

  /** Stops accepting connections; open ones stay for responses in flight. */
  pauseAccepting(): void {
    this.closing = true;
    this.server?.close();
  }

  /** Closes the listener and every connection. */
  async close(): Promise<void> {
    this.closing = true;
    if (this.sweeper !== null) clearInterval(this.sweeper);
    this.sweeper = null;
    const s = this.server;
    this.server = null;
    for (const c of this.own) {
      c.closed = true;
      c.ws.terminate();
      if (byKey.get(c.key) === c) byKey.delete(c.key);
      byId.delete(c.id);
    }
    this.own.clear();
    this.stopReload?.();
    this.certificates?.close();
    if (s) {
      const closed = new Promise<void>((r) => s.close(() => r()));
      s.closeAllConnections();
      await closed;
    }
  }
}

function webSocketTransport(name: 'ws' | 'wss'): SipTransport {
  const t: SipTransport = registerTransport({
    name,
    via: name.toUpperCase(),
    reliable: true,
    framing: 'stream',
    inUri: true,
    sibling: name === 'ws' ? 'wss' : 'ws',
    // no SIP default (RFC 7118 §5): HTTP's, for a listener entry without a port
    defaultPort: name === 'ws' ? 80 : 443,
    secure: name === 'wss',
    async listen(o) {
      const s = new WsSocket(t, o);
      try {
        await s.start(o.port, name === 'wss');
      } catch (e) {
        await s.close();
        throw e;
      }
      return s;
    },
  });
  return t;
}

export const wsTransport = webSocketTransport('ws');
export const wssTransport = webSocketTransport('wss');
