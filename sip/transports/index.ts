/**
 * The SIP transport registry with the built-in transports registered (UDP first: id 0, TCP: id 1, then WS and WSS).
 * Import the registry from here, so that the built-in modules are there. A new transport (TLS,
 * WebSocket): one module calling registerTransport, imported below.
 */
import './udp';
import './tcp';
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
export { tcpTransport, TcpConnection } from './tcp';
export { wsTransport, wssTransport, forwardedSource } from './ws';
export { literalFirstLookup, plainAddress } from './addresses';
