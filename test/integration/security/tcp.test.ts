/**
 * TCP attacks and shutdown against a real `sipflow serve` (2 SIP worker threads: the TCP
 * connections live in the dispatching thread), each with its control case, the legitimate
 * subscriber served from another loopback source during and after:
 *
 *   slowloris (connections each holding an incomplete message) → closed after sip.tcp.messageTimeoutMs
 *   connection flood from one source → past sip.tcp.maxConnectionsPerSource reset at once (trusted sources exempt)
 *   every slot taken → SIP connections refused, /health/* and the API still answer, descriptors bounded
 *   an INVITE flood, then SIGTERM → exit code 0 within the documented time (grace 2 s)
 *
 * Small timeouts and caps keep each case to a few seconds; every flood is bounded in count and time.
 */
import { readdirSync } from 'node:fs';
import net from 'node:net';
import { header, isRequest, type SipResponse } from '../../../sip/message';
import { startServe, type ServeProcess } from '../../support/serve';
import { answerChallenge } from '../../support/sip';
import { TcpUa, UdpUa, rand, registerStatus, sipRequest, type Ua } from '../sip/ua';

const DOMAIN = 'nl.netaxis.be';
const TCP = { messageTimeoutMs: 600, idleTimeoutSec: 30, maxConnections: 60, maxConnectionsPerSource: 20 };
const TRUSTED = '127.0.0.9';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A REGISTER with digest (francesco's credentials by default): the final status, or null on silence. */
const register = (ua: Ua, user = 'francesco', password = '123456', ms = 3000) => registerStatus(ua, user, password, { ms });

/** OPTIONS to the server itself: its status, or null on silence. */
async function options(ua: Ua, ms = 3000): Promise<number | null> {
  const callId = rand();
  ua.send(sipRequest({ method: 'OPTIONS', uri: `sip:${DOMAIN}`, ua, callId, contact: null }));
  return ua
    .next((r) => !isRequest(r.msg) && header(r.msg, 'call-id') === callId, ms)
    .then(
      (r) => (r.msg as SipResponse).status,
      () => null,
    );
}

/** A raw client connection; `ended` resolves when the server closes or resets it. */
interface Raw {
  sock: net.Socket;
  closed: boolean;
  closedAt: number;
  ended: Promise<void>;
}
function raw(port: number, localAddress: string): Raw {
  const sock = net.connect({ host: '127.0.0.1', port, localAddress });
  const r = { sock, closed: false, closedAt: 0 } as Raw;
  sock.on('error', () => undefined);
  r.ended = new Promise((resolve) =>
    sock.once('close', () => {
      r.closed = true;
      r.closedAt = Date.now();
      resolve();
    }),
  );
  return r;
}

const openFds = (pid: number) => readdirSync(`/proc/${pid}/fd`).length;

describe.each([2, 1])('TCP limits (sip.tcp), %i SIP thread(s)', (workers) => {
  let s: ServeProcess;
  const opened: Raw[] = [];
  beforeAll(async () => {
    s = await startServe({ workers, config: { sip: { tcp: TCP }, security: { trustedSources: [TRUSTED] } } });
  }, 60_000);
  afterEach(async () => {
    for (const r of opened.splice(0)) r.sock.destroy();
    for (let i = 0; i < 50; i++) {
      if ((await s.metric('sipflow_tcp_connections')) === 0) break;
      await sleep(50);
    }
  });
  afterAll(async () => {
    await s?.stop();
  });

  test('slowloris: connections trickling an incomplete message are closed after messageTimeoutMs; a client from another source registers during and after', async () => {
    const legit = await TcpUa.open(s.tcpPort, '127.0.0.1', '127.0.0.3');
    try {
      expect(await register(legit)).toBe(200); // control before
      // control: a connection from the attacking source that sends whole messages is kept and answered
      const polite = await TcpUa.open(s.tcpPort, '127.0.0.1', '127.0.0.2');
      const head = 'REGISTER sip:nl.netaxis.be SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.2:5060;branch=z9hG4bK';
      const t0 = Date.now();
      for (let i = 0; i < 15; i++) {
        const r = raw(s.tcpPort, '127.0.0.2');
        opened.push(r);
        r.sock.once('connect', () => r.sock.write(head + rand()));
      }
      // one more byte every 150 ms on each: the idle timeout never fires, the message never completes
      let k = 0;
      const trickle = setInterval(() => {
        for (const r of opened) if (!r.closed) r.sock.write('x'.repeat(1 + (k % 2)));
        k++;
      }, 150);
      try {
        expect(await options(legit)).toBe(200); // during: the subscriber is served
        expect(await register(legit)).toBe(200);
        const fresh = await TcpUa.open(s.tcpPort, '127.0.0.1', '127.0.0.4'); // a new connection from another source too
        expect(await options(fresh)).toBe(200);
        await fresh.close();
        await Promise.race([Promise.all(opened.map((r) => r.ended)), sleep(4000)]);
      } finally {
        clearInterval(trickle);
      }
      expect(opened.every((r) => r.closed)).toBe(true);
      for (const r of opened) {
        expect(r.closedAt - t0).toBeGreaterThanOrEqual(TCP.messageTimeoutMs - 100);
        expect(r.closedAt - t0).toBeLessThan(TCP.messageTimeoutMs + 2500);
      }
      expect(await options(polite)).toBe(200); // control: still open, long after the message timeout
      await polite.close();
      expect(await register(legit)).toBe(200); // after
      expect(await s.metric('sipflow_tcp_closed_total', 'reason="message_timeout"')).toBeGreaterThanOrEqual(15);
    } finally {
      await legit.close();
    }
  });

  test('connection flood from one source: past maxConnectionsPerSource reset at once; another source connects and is answered; a trusted source is exempt', async () => {
    const before = await s.metric('sipflow_tcp_refused_total', 'reason="max_per_source"');
    const flood: Raw[] = [];
    for (let i = 0; i < 50; i++) flood.push(raw(s.tcpPort, '127.0.0.2'));
    opened.push(...flood);
    await sleep(500);
    const open = flood.filter((r) => !r.closed);
    expect(open).toHaveLength(TCP.maxConnectionsPerSource);
    // the refused ones went at once, not after a timeout
    expect(flood.filter((r) => r.closed).every((r) => r.closedAt > 0)).toBe(true);
    expect((await s.metric('sipflow_tcp_refused_total', 'reason="max_per_source"')) - before).toBe(50 - TCP.maxConnectionsPerSource);

    // another source, during the flood: a new connection, answered
    const legit = await TcpUa.open(s.tcpPort, '127.0.0.1', '127.0.0.3');
    expect(await options(legit)).toBe(200);
    expect(await register(legit)).toBe(200);
    await legit.close();

    // the admitted flood connections still work (a cap, not a ban)
    const probe = open[0].sock;
    const got = new Promise<string>((resolve) => probe.once('data', (b) => resolve(b.toString())));
    probe.write(sipRequest({ method: 'OPTIONS', uri: `sip:${DOMAIN}`, ua: { proto: 'tcp', port: probe.localPort! }, contact: null }));
    expect(await Promise.race([got, sleep(3000).then(() => '')])).toMatch(/^SIP\/2\.0 200/);

    // control: a trusted source may open more than the per-source cap
    const trusted: Raw[] = [];
    for (let i = 0; i < TCP.maxConnectionsPerSource + 5; i++) trusted.push(raw(s.tcpPort, TRUSTED));
    opened.push(...trusted);
    await sleep(500);
    expect(trusted.filter((r) => r.closed)).toHaveLength(0);

    // after: the flood closes its connections, the source gets its slots back
    for (const r of flood) r.sock.destroy();
    await sleep(300);
    const again = await TcpUa.open(s.tcpPort, '127.0.0.1', '127.0.0.2');
    expect(await options(again)).toBe(200);
    await again.close();
  });

  test('every slot taken: SIP connections refused, /health/* and the API still answer, descriptors stay bounded; served again once slots free', async () => {
    const pid = s.child.pid!;
    const fdsBefore = openFds(pid);
    // 5 sources × 20 = 100 attempts for 60 slots, then 40 more: every one past the cap is reset
    const flood: Raw[] = [];
    for (const src of ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5', '127.0.0.6']) {
      for (let i = 0; i < TCP.maxConnectionsPerSource; i++) flood.push(raw(s.tcpPort, src));
    }
    opened.push(...flood);
    await sleep(600);
    for (let i = 0; i < 40; i++) {
      const r = raw(s.tcpPort, '127.0.0.7');
      opened.push(r);
      flood.push(r);
    }
    await sleep(600);
    expect(flood.filter((r) => !r.closed)).toHaveLength(TCP.maxConnections);
    expect(await s.metric('sipflow_tcp_connections')).toBe(TCP.maxConnections);
    expect(await s.metric('sipflow_tcp_refused_total', 'reason="max_connections"')).toBeGreaterThanOrEqual(80);
    // the process holds the 60 connections and nothing for the refused ones
    expect(openFds(pid) - fdsBefore).toBeLessThanOrEqual(TCP.maxConnections + 10);

    // SIP over TCP refused for a newcomer…
    const refused = raw(s.tcpPort, '127.0.0.8');
    opened.push(refused);
    await refused.ended;
    // …while the health checks and the API answer
    expect((await fetch(`http://127.0.0.1:${s.httpPort}/health/live`)).status).toBe(200);
    expect((await fetch(`http://127.0.0.1:${s.httpPort}/health/ready`)).status).toBe(200);
    const flows = await s.api('/api/v1/flows');
    expect(flows.status).toBe(200);
    // …and SIP over UDP is served
    const udp = await UdpUa.open(s.sipPort, '127.0.0.1', '127.0.0.8');
    expect(await register(udp)).toBe(200);
    await udp.close();

    // after: the flood goes away, TCP serves again
    for (const r of flood) r.sock.destroy();
    await sleep(300);
    const legit = await TcpUa.open(s.tcpPort, '127.0.0.1', '127.0.0.8');
    expect(await register(legit)).toBe(200);
    await legit.close();
  });
});

describe('shutdown after an INVITE flood', () => {
  test('2,000 INVITEs over UDP from 10 sources in ~2 s, TCP connections open, relays to a dead target in progress: SIGTERM exits 0 within 5 s', async () => {
    const s = await startServe({ config: { sip: { tcp: TCP } } });
    let stopped: { code: number | null; ms: number } | null = null;
    const uas: UdpUa[] = [];
    const conns: Raw[] = [];
    try {
      for (let i = 0; i < 10; i++) uas.push(await UdpUa.open(s.sipPort, '127.0.0.1', `127.0.0.${20 + i}`));
      // relayed calls that will never be answered (authenticated, to a port nobody serves): in progress at SIGTERM
      const dead = 'sip:0031201777@127.0.0.1:9';
      const caller = uas[0];
      let relayed = 0;
      for (let i = 0; i < 10; i++) {
        const callId = rand();
        const inv = (cseq: number, auth?: string) =>
          sipRequest({
            method: 'INVITE',
            uri: dead,
            ua: caller,
            callId,
            cseq,
            from: `<sip:000112233@${DOMAIN}>`,
            to: `<sip:0031201777@${DOMAIN}>`,
            headers: auth ? { 'Proxy-Authorization': auth } : {},
          });
        caller.send(inv(1));
        const ch = await caller
          .next((r) => !isRequest(r.msg) && header(r.msg, 'call-id') === callId && (r.msg as SipResponse).status === 407, 3000)
          .then(
            (r) => r.msg as SipResponse,
            () => null,
          );
        if (!ch) continue;
        caller.send(inv(2, answerChallenge(header(ch, 'proxy-authenticate')!, { username: 'francesco', password: '123456', method: 'INVITE', uri: dead })));
        relayed++;
      }
      expect(relayed).toBeGreaterThan(0);
      // TCP connections open at SIGTERM, one holding half a message
      for (let i = 0; i < 5; i++) conns.push(raw(s.tcpPort, '127.0.0.40'));
      conns[0].sock.once('connect', () => conns[0].sock.write('INVITE sip:x@nl.netaxis.be SIP/2.0\r\nVia: SIP/2.0/TCP'));

      // the flood: 2,000 INVITEs (no credentials: 407 each, retransmitted until ACKed) in batches of 20 every 20 ms
      const t0 = Date.now();
      for (let i = 0; i < 2000; i++) {
        const ua = uas[i % uas.length];
        ua.send(sipRequest({ method: 'INVITE', uri: `sip:0031201${i}@${DOMAIN}`, ua, from: `<sip:000112233@${DOMAIN}>`, to: `<sip:0031201${i}@${DOMAIN}>` }));
        if (i % 20 === 19) await sleep(20);
      }
      expect(Date.now() - t0).toBeLessThan(6000);
      await sleep(200);
      const answered = uas.reduce((n, u) => n + u.inbox.length, 0);
      expect(answered).toBeGreaterThan(1000); // the flood was processed, not dropped

      stopped = await s.stop('SIGTERM', 30_000);
      console.log(`SIGTERM after the flood: exit ${stopped.code} in ${stopped.ms} ms`);
      expect(stopped.code).toBe(0);
      expect(stopped.ms).toBeLessThan(5000);
      const out = s.output();
      expect(out).toMatch(/"msg":"stopped"/);
      expect(out).not.toMatch(/shutdown not finished|still open after shutdown|SIP message handling failed/);
    } finally {
      for (const u of uas) await u.close();
      for (const c of conns) c.sock.destroy();
      if (!stopped) await s.stop('SIGKILL');
    }
  }, 60_000);
});
