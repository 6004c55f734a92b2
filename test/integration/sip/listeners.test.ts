/**
 * `sip.listeners` as `{transport, host, port}` entries (Kamailio listen=) through `sipflow serve`
 * with two SIP worker threads (the built CLI): both entries are one listener; UDP is answered from
 * the worker's own socket, TCP through the dispatcher's connection (the thread protocol carries
 * the transport's registry id), and the registration logic runs over both.
 */
import { header } from '../../../sip/message';
import { startServe, type ServeProcess } from '../../support/serve';
import { TcpUa, UdpUa, rand, sipRequest, type Ua } from './ua';

let serve: ServeProcess;

beforeAll(async () => {
  serve = await startServe({
    workers: 2,
    logLevel: 'warn',
    config: {
      sip: {
        listeners: [
          { transport: 'udp', host: '127.0.0.1', port: 0 },
          { transport: 'tcp', host: '127.0.0.1', port: 0 },
        ],
      },
    },
  });
}, 90_000);

afterAll(async () => {
  if (serve) expect((await serve.stop()).code).toBe(0);
});

async function exchange(ua: Ua): Promise<void> {
  ua.send(sipRequest({ method: 'OPTIONS', uri: 'sip:127.0.0.1', ua, contact: null }));
  expect((await ua.response()).status).toBe(200);
  // a REGISTER runs the logic in a worker: challenged
  ua.send(
    sipRequest({
      method: 'REGISTER',
      uri: 'sip:10.1.10.163',
      ua,
      callId: rand(),
      from: '<sip:francesco@nl.netaxis.be>',
      to: '<sip:francesco@nl.netaxis.be>',
    }),
  );
  const challenge = await ua.response(401);
  expect(header(challenge, 'www-authenticate')).toMatch(/^Digest realm="nl\.netaxis\.be"/);
}

test('one listener of two entries: printed as one line, answered over UDP and over TCP', async () => {
  expect(serve.output()).toMatch(/SIP default listening on 127\.0\.0\.1 udp:\d+ tcp:\d+ \(2 SIP threads\)/);
  const udp = await UdpUa.open(serve.sipPort);
  try {
    await exchange(udp);
  } finally {
    await udp.close();
  }
  const tcp = await TcpUa.open(serve.tcpPort);
  try {
    await exchange(tcp);
  } finally {
    await tcp.close();
  }
});
