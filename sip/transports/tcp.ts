/**
 * TCP (RFC 3261 §18): the stream machinery of stream.ts (framing, connection table, timeouts,
 * TcpGate admission, backpressure) over plain sockets: an accepted connection carries SIP at once,
 * an outgoing one once connected.
 */
import net from 'node:net';
import { registerTransport, type SipTransport } from './registry';
import { StreamSocket, type StreamFlavour } from './stream';

const plain: StreamFlavour = {
  acceptor: (ready) => ready,
  connect: (peer) => ({ socket: net.connect({ host: peer.address, port: peer.port, noDelay: true }), readyEvent: 'connect' }),
  close: () => undefined,
};

export const tcpTransport: SipTransport = registerTransport({
  name: 'tcp',
  via: 'TCP',
  reliable: true,
  framing: 'stream',
  inUri: true,
  defaultPort: 5060,
  async listen(o) {
    const s = new StreamSocket(tcpTransport, o, plain);
    await s.start(o.port);
    return s;
  },
});
