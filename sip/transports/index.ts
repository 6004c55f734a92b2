/**
 * The SIP transport registry with the built-in transports registered (UDP first: id 0, TCP: id 1, TLS: id 2, then WS and WSS).
 * Import the registry from here, so that the built-in modules are there. A new transport (TLS,
 * WebSocket): one module calling registerTransport, imported below.
 */
import './udp';
import './tcp';
import './tls';
import './ws';

export {
  DEFAULT_TRANSPORT,
  nextConnectionId,
  registerTransport,
  transportById,
  transportByVia,
  transportNamed,
  transportNames,
  transportOf,
  type ListeningSocket,
  type SipTransport,
  type SipTransportModule,
  type SocketOptions,
  type StreamConnection,
  type ThreadSenderOptions,
  type ThreadSocket,
  withSiblings,
} from './registry';
export { udpTransport } from './udp';
export { tcpTransport } from './tcp';
export { tlsTransport } from './tls';
export { wsTransport, wssTransport, forwardedSource } from './ws';
export { SocketConnection } from './stream';
export { Certificates, clientCertificateProblem, describeCertificate, type CertificateOptions } from './certificates';
export { literalFirstLookup, plainAddress } from './addresses';
