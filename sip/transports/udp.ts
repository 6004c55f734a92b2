/**
 * UDP (RFC 3261 §18): one socket per listener with large kernel buffers (4 MiB by default; the
 * kernel caps them at net.core.[rw]mem_max); sends never wait for a peer (a full socket buffer
 * drops, as UDP does). With `reuseAddr` the socket is bound with SO_REUSEADDR so SIP worker threads
 * can send from the same port (`openThreadSender`); on Linux unicast datagrams go to the socket
 * bound last, which `rebind()` makes this one again.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import type { LocalEndpoint, Peer, SendCallback } from '../transport';
import { literalFirstLookup, plainAddress } from './addresses';
import { registerTransport, type ListeningSocket, type SipTransport, type SocketOptions, type ThreadSenderOptions, type ThreadSocket } from './registry';

const MIB4 = 4 * 1024 * 1024;

const socketType = (host: string): 'udp4' | 'udp6' => (net.isIPv6(host) ? 'udp6' : 'udp4');

/**
 * Sends a datagram. Peers carry plain addresses (`plainAddress`: a dual-stack socket's
 * '::ffff:1.2.3.4' is written '1.2.3.4' in Via received, bindings, logs): an IPv6 socket reaches
 * an IPv4 peer only under its mapped form again (sending to an IPv4 literal fails with EINVAL).
 */
function send(sock: dgram.Socket | null, v6: boolean, buf: Buffer, peer: Peer, cb?: SendCallback): void {
  if (!sock) {
    cb?.(new Error('no UDP transport'));
    return;
  }
  const address = v6 && net.isIPv4(peer.address) ? `::ffff:${peer.address}` : peer.address;
  if (cb) sock.send(buf, peer.port, address, (err) => cb(err ?? null));
  else sock.send(buf, peer.port, address);
}

class UdpSocket implements ListeningSocket {
  private sock: dgram.Socket | null = null;
  port = 0;
  readonly connections = 0;
  private readonly v6: boolean;

  constructor(
    readonly transport: SipTransport,
    private readonly o: SocketOptions,
  ) {
    this.v6 = socketType(o.host) === 'udp6';
  }

  async start(port: number): Promise<void> {
    // SO_REUSEADDR would let us bind a port another process already serves (and take its
    // traffic): claim the port exclusively first, then rebind it shareable for our worker threads.
    if (this.o.reuseAddr) port = await this.probe(port);
    this.port = await this.bind(port);
  }

  /** Binds the port without SO_REUSEADDR (fails with EADDRINUSE when anyone holds it) and releases it. */
  private probe(port: number): Promise<number> {
    const o = this.o;
    const sock = dgram.createSocket(socketType(o.host));
    return new Promise((resolve, reject) => {
      sock.once('error', reject);
      sock.bind({ address: o.host || undefined, port, exclusive: true }, () => {
        const bound = sock.address().port;
        sock.close(() => resolve(bound));
      });
    });
  }

  private bind(port: number): Promise<number> {
    const o = this.o;
    const recvBufferSize = o.recvBufferSize ?? MIB4;
    const sock = dgram.createSocket({
      type: socketType(o.host),
      reuseAddr: o.reuseAddr ?? false,
      recvBufferSize,
      sendBufferSize: o.sendBufferSize ?? MIB4,
      lookup: literalFirstLookup as never,
    });
    const previous = this.sock;
    this.sock = sock;
    const name = this.transport.name;
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => {
        this.sock = previous;
        reject(err);
      };
      sock.once('error', onError);
      sock.bind({ address: o.host || undefined, port }, () => {
        sock.off('error', onError);
        sock.on('error', (err) => o.onWarning?.(`udp socket error: ${err.message}`));
        try {
          const got = sock.getRecvBufferSize();
          // Linux reports twice the requested size when granted
          if (got < recvBufferSize) o.onWarning?.(`UDP receive buffer is ${got} bytes (asked ${recvBufferSize}); raise net.core.rmem_max`);
        } catch (e) {
          o.onWarning?.(`cannot size UDP buffers: ${(e as Error).message}`);
        }
        const local: LocalEndpoint = { proto: name, address: sock.address().address, port: sock.address().port };
        sock.on('message', (data, rinfo) => {
          o.onMessage(data, { proto: name, address: plainAddress(rinfo.address), port: rinfo.port }, local);
        });
        if (previous) previous.close();
        resolve(local.port);
      });
    });
  }

  /**
   * Binds a fresh socket to the same address and port (SO_REUSEADDR) and closes the old one: on
   * Linux the socket bound last receives the port's datagrams, so after worker threads bound
   * their send sockets this takes reception back.
   */
  async rebind(): Promise<void> {
    if (!this.sock || !this.o.reuseAddr) return;
    await this.bind(this.port);
  }

  send(buf: Buffer, peer: Peer, cb?: SendCallback): void {
    send(this.sock, this.v6, buf, peer, cb);
  }

  /** Datagrams keep coming until close: responses in flight still need the socket. */
  pauseAccepting(): void {
    /* nothing to stop */
  }

  close(): Promise<void> {
    const s = this.sock;
    this.sock = null;
    if (!s) return Promise.resolve();
    return new Promise((r) => {
      try {
        s.close(() => r());
      } catch {
        r();
      }
    });
  }
}

/** A worker thread's send socket on the listener's port (SO_REUSEADDR). */
function openThreadSender(o: ThreadSenderOptions): Promise<ThreadSocket> {
  const v6 = socketType(o.host) === 'udp6';
  const sock = dgram.createSocket({
    type: v6 ? 'udp6' : 'udp4',
    reuseAddr: true,
    sendBufferSize: MIB4,
    lookup: literalFirstLookup as never,
  });
  return new Promise((resolve, reject) => {
    sock.once('error', reject);
    sock.bind({ address: o.host || undefined, port: o.port }, () => {
      sock.off('error', reject);
      sock.on('error', (err) => o.onWarning?.(`udp send socket error: ${err.message}`));
      // Reception belongs to the dispatcher's socket (bound last); anything that lands here anyway
      // (e.g. while the dispatcher rebinds) goes back to it.
      sock.on('message', (data, rinfo) => o.onStray(data, plainAddress(rinfo.address), rinfo.port));
      let open = true;
      resolve({
        send: (buf, peer, cb) => send(open ? sock : null, v6, buf, peer, cb),
        close: () =>
          new Promise<void>((r) => {
            open = false;
            try {
              sock.close(() => r());
            } catch {
              r();
            }
          }),
      });
    });
  });
}

export const udpTransport: SipTransport = registerTransport({
  name: 'udp',
  via: 'UDP',
  reliable: false,
  framing: 'datagram',
  inUri: false,
  defaultPort: 5060,
  async listen(o) {
    const s = new UdpSocket(udpTransport, o);
    await s.start(o.port);
    return s;
  },
  openThreadSender,
});
