/**
 * TLS (SIPS, RFC 3261 §26.2; default port 5061): the stream machinery of stream.ts over TLS.
 *
 * Inbound: a plain TCP listener admits each connection through the TcpGate (before any handshake
 * work), then injects it into a tls.Server that never listens itself ('connection' event). The
 * handshake must complete within sip.tls.handshakeTimeoutMs; a handshake that fails or times out
 * (a scanner, plain SIP sent to the TLS port) closes the connection with one log line naming the
 * source (burstLog: a flood of handshakes does not become a log flood). Client certificates per sip.tls.verifyClient, decided
 * after the handshake so that a refusal is logged with its reason (certificates.ts).
 *
 * Outbound (relayed requests to `sips:` / `transport=tls` targets): tls.connect with SNI = the
 * target's host name when it is a name (`Peer.serverName`), the server's certificate verified per
 * sip.tls.verifyServer against sip.tls.caFile or the bundled CAs, our certificate offered to
 * servers that ask for one. A failed handshake fails the send (the proxy answers 503 and logs it).
 *
 * Certificates are reloaded without a restart (certificates.ts): new connections get the new
 * context, open ones keep theirs.
 */
import net from 'node:net';
import tls from 'node:tls';
import type { SocketOptions } from './registry';
import { registerTransport, type SipTransport } from './registry';
import { plainAddress } from './addresses';
import { Certificates, clientCertificateProblem } from './certificates';
import { StreamSocket, burstLog, type StreamFlavour } from './stream';

/**
 * Where a TLS socket comes from, also once the peer reset it (its own address is gone then): the
 * TCP socket it wraps asked its address when admitted, and keeps it.
 */
function sourceOf(socket: tls.TLSSocket): { address: string; port: number } {
  const raw = (socket as tls.TLSSocket & { _parent?: net.Socket })._parent;
  return { address: plainAddress(socket.remoteAddress ?? raw?.remoteAddress ?? '?'), port: socket.remotePort ?? raw?.remotePort ?? 0 };
}

function secure(o: SocketOptions): StreamFlavour {
  if (!o.tls) throw new Error('TLS needs a certificate and its key: set sip.tls.certFile (--tls-cert) and sip.tls.keyFile (--tls-key)');
  const settings = o.tls;
  const warn = o.onWarning ?? (() => undefined);
  const certs = Certificates.open(settings, warn);
  const logHandshake = burstLog(warn, 'TLS connections closed at their handshake');
  return {
    acceptor(ready) {
      // requestCert per verifyClient, but never rejected inside OpenSSL: clientCertificateProblem decides, and says why
      const server = tls.createServer({ ...certs.options, rejectUnauthorized: false, handshakeTimeout: settings.handshakeTimeoutMs });
      const unsubscribe = certs.onReload((options) => server.setSecureContext(options));
      server.on('close', unsubscribe);
      server.on('tlsClientError', (err: Error & { code?: string }, socket: tls.TLSSocket) => {
        const { address, port } = sourceOf(socket);
        const source = `${address}:${port}`;
        const why =
          err.code === 'ERR_TLS_HANDSHAKE_TIMEOUT'
            ? `handshake not complete within ${settings.handshakeTimeoutMs} ms`
            : `handshake failed (${err.code ?? err.message})`;
        logHandshake(`tls ${source}: ${why}; closing`);
        o.onTcpClosed?.('tls_handshake', address);
        socket.destroy();
      });
      server.on('secureConnection', (socket: tls.TLSSocket) => {
        const problem = clientCertificateProblem(socket, settings.verifyClient);
        if (problem !== null) {
          const { address, port } = sourceOf(socket);
          logHandshake(`tls ${address}:${port}: ${problem}; closing`);
          o.onTcpClosed?.('client_certificate', address);
          socket.destroy();
          return;
        }
        ready(socket);
      });
      return (raw) => server.emit('connection', raw);
    },
    connect(peer) {
      const serverName = peer.serverName !== undefined && net.isIP(peer.serverName) === 0 ? peer.serverName : undefined;
      const { key, cert, ca } = certs.options;
      const socket = tls.connect({
        host: peer.address,
        port: peer.port,
        ...(serverName !== undefined ? { servername: serverName } : {}),
        key,
        cert,
        ca,
        rejectUnauthorized: settings.verifyServer,
      });
      return { socket, readyEvent: 'secureConnect' };
    },
    close: () => certs.close(),
  };
}

export const tlsTransport: SipTransport = registerTransport({
  name: 'tls',
  via: 'TLS',
  reliable: true,
  framing: 'stream',
  inUri: true,
  defaultPort: 5061,
  secure: true,
  async listen(o) {
    const s = new StreamSocket(tlsTransport, o, secure(o));
    await s.start(o.port);
    return s;
  },
});
