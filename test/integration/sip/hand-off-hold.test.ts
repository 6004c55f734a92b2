/**
 * sip.handOffHoldMs (server/sip-threads/host.ts, Outbox in protocol.ts): `sipflow serve --workers 2`
 * with the inline front end off and a hold long enough to see. A REGISTER after a quiet spell goes to
 * its worker at once; the next one for the same worker, right after, waits for the hold with what
 * else comes, and is then answered as usual.
 */
import { header, isRequest, type SipResponse } from '../../../sip/message';
import { startServe, type ServeProcess } from '../../support/serve';
import { UdpUa, rand, sipRequest } from './ua';

const DOMAIN = 'nl.netaxis.be';
const HOLD_MS = 100; // the most sip.handOffHoldMs allows
let serve: ServeProcess;
let ua: UdpUa;

beforeAll(async () => {
  serve = await startServe({ workers: 2, logLevel: 'warn', config: { sip: { inlineMaxRate: 0, handOffHoldMs: HOLD_MS } } });
  ua = await UdpUa.open(serve.sipPort);
}, 90_000);

afterAll(async () => {
  await ua?.close();
  if (serve) expect((await serve.stop()).code).toBe(0);
});

/** Sends a REGISTER without credentials on `callId` and resolves with its answer and how long it took. */
async function timedChallenge(callId: string): Promise<{ status: number; ms: number }> {
  const t = performance.now();
  const answered = ua.next((r) => !isRequest(r.msg) && header(r.msg, 'call-id') === callId, 5000);
  ua.send(
    sipRequest({
      method: 'REGISTER',
      uri: `sip:${DOMAIN}`,
      ua,
      callId,
      from: `<sip:francesco@${DOMAIN}>`,
      to: `<sip:francesco@${DOMAIN}>`,
      contact: `<sip:francesco@127.0.0.1:${ua.port}>`,
    }),
  );
  const r = (await answered).msg as SipResponse;
  return { status: r.status, ms: performance.now() - t };
}

test('after a quiet spell a datagram goes to its worker at once; the next, right after, waits for the hold', async () => {
  const callId = `${rand()}@hold`; // one Call-ID: one worker, one outbox
  await new Promise((r) => setTimeout(r, HOLD_MS + 100)); // quiet since the server started
  const first = await timedChallenge(callId);
  const second = await timedChallenge(callId);
  expect(first.status).toBe(401);
  expect(second.status).toBe(401);
  expect(first.ms).toBeLessThan(HOLD_MS); // not held
  // the hold starts when the second one comes (a timer never fires early)
  expect(second.ms).toBeGreaterThanOrEqual(HOLD_MS - 2);
});
