/**
 * The inline front end (server/sip-threads/call-owners.ts): `sipflow serve --workers 2` (built CLI,
 * shipped flows, the note's sample subscriber) with sip.inlineMaxRate 40 messages/s. At low load the
 * main thread handles REGISTERs itself (sipflow_sip_dispatched_total{to="inline"}), no worker is
 * woken; a burst past the rate sends new REGISTERs to the workers while the Call-IDs held inline
 * stay there (a retransmission is absorbed, run once); a digest response accepted inline is a
 * replay on a worker (the nonce-counts are shared); INVITEs never start inline.
 */
import { keptWarm } from '../../../server/sip-threads/call-owners';
import { callIdKey } from '../../../sip/dispatch';
import { header, isRequest, type SipResponse } from '../../../sip/message';
import { startServe, type ServeProcess } from '../../support/serve';
import { answerChallenge } from '../../support/sip';
import { UdpUa, rand, sipRequest } from './ua';

const DOMAIN = 'nl.netaxis.be';
let serve: ServeProcess;
let ua: UdpUa;

beforeAll(async () => {
  serve = await startServe({ workers: 2, logLevel: 'warn', config: { sip: { inlineMaxRate: 40 } } });
  ua = await UdpUa.open(serve.sipPort);
}, 90_000);

afterAll(async () => {
  await ua?.close();
  if (serve) expect((await serve.stop()).code).toBe(0);
});

const register = (callId: string, cseq: number, branch: string, authorization?: string) =>
  sipRequest({
    method: 'REGISTER',
    uri: `sip:${DOMAIN}`,
    ua,
    branch,
    callId,
    cseq,
    from: `<sip:francesco@${DOMAIN}>`,
    to: `<sip:francesco@${DOMAIN}>`,
    contact: `<sip:francesco@127.0.0.1:${ua.port}>`,
    headers: { Expires: '300', ...(authorization ? { Authorization: authorization } : {}) },
  });
/** A fresh Call-ID that starts inline: not one of the share kept on the workers (call-owners.ts keptWarm). */
function inlineCallId(suffix: string): string {
  for (;;) {
    const id = `${rand()}@${suffix}`;
    if (!keptWarm(callIdKey(Buffer.from(`REGISTER sip:${DOMAIN} SIP/2.0\r\nCall-ID: ${id}\r\n\r\n`)))) return id;
  }
}
const answer = (callId: string, ms = 5000) => ua.next((r) => !isRequest(r.msg) && header(r.msg, 'call-id') === callId, ms).then((r) => r.msg as SipResponse);
const dispatched = async () => ({
  inline: await serve.metric('sipflow_sip_dispatched_total', 'to="inline"'),
  worker: await serve.metric('sipflow_sip_dispatched_total', 'to="worker"'),
});
/** REGISTERs run through the logic, every outcome (sipflow_requests_total). */
async function registerRuns(): Promise<number> {
  const text = await (await serve.api('/metrics')).text();
  let n = 0;
  for (const m of text.matchAll(/^sipflow_requests_total\{([^}]*)\} (\d+)/gm)) if (m[1].includes('method="REGISTER"')) n += Number(m[2]);
  return n;
}

/** REGISTER → 401 → REGISTER with the sample subscriber's credentials: the second message and its challenge. */
async function challenged(callId: string, nc = 1): Promise<{ challenge: string; authorized: string; authorization: string }> {
  ua.send(register(callId, 1, `z9hG4bK${rand()}`));
  const r = await answer(callId);
  expect(r.status).toBe(401);
  const challenge = header(r, 'www-authenticate')!;
  const authorization = answerChallenge(challenge, { username: 'francesco', password: '123456', method: 'REGISTER', uri: `sip:${DOMAIN}`, nc });
  return { challenge, authorized: register(callId, 2, `z9hG4bK${rand()}`, authorization), authorization };
}

test('at low load a REGISTER and its challenge are handled by the main thread: nothing goes to a worker; an INVITE does', async () => {
  const before = await dispatched();
  const callId = inlineCallId('inline');
  const { authorized } = await challenged(callId);
  ua.send(authorized);
  expect((await answer(callId)).status).toBe(200);
  const after = await dispatched();
  expect(after.inline - before.inline).toBe(2);
  expect(after.worker - before.worker).toBe(0);
  const rows = ((await (await serve.api('/api/v1/registrations?aor=francesco')).json()) as { rows: Array<{ contact: string }> }).rows;
  expect(rows.map((r) => r.contact).join()).toContain(`127.0.0.1:${ua.port}`);

  const invite = `${rand()}@inline-invite`;
  ua.send(sipRequest({ method: 'INVITE', uri: `sip:bob@${DOMAIN}`, ua, callId: invite, from: `<sip:francesco@${DOMAIN}>`, to: `<sip:bob@${DOMAIN}>` }));
  await ua.next((r) => !isRequest(r.msg) && header(r.msg, 'call-id') === invite && (r.msg as SipResponse).status >= 200, 5000);
  expect((await dispatched()).worker - after.worker).toBeGreaterThanOrEqual(1);
}, 30_000);

test('the inline front end reads the dispatcher’s directory itself, no cache of its own beside the dispatcher’s in the same thread', async () => {
  // the shipped embedded directory caches (directory.cacheSec): a cache kept by the inline front end
  // would answer the second REGISTER of this subscriber without the dispatcher seeing the read
  const reads = () => serve.metric('sipflow_directory_query_seconds_count', 'result="ok"');
  const before = await reads();
  for (const suffix of ['direct1', 'direct2']) {
    const callId = inlineCallId(suffix);
    const { authorized } = await challenged(callId);
    ua.send(authorized);
    expect((await answer(callId)).status).toBe(200);
  }
  expect((await reads()) - before).toBe(2);
}, 30_000);

test('past inlineMaxRate new REGISTERs go to the workers; a Call-ID held inline stays (its retransmission answered, run once); a digest accepted inline is a replay there', async () => {
  const held = inlineCallId('held');
  const { challenge, authorized, authorization } = await challenged(held);
  ua.send(authorized);
  expect((await answer(held)).status).toBe(200);
  const runs = await registerRuns();

  // a burst of 30 out-of-dialog OPTIONS within one window (10 per 250 ms is 40/s): the dispatcher spreads
  const burst = Array.from({ length: 30 }, (_, i) => `${rand()}@burst${i}`);
  const answered = burst.map((id) => answer(id));
  for (const id of burst)
    ua.send(sipRequest({ method: 'OPTIONS', uri: `sip:${DOMAIN}`, ua, callId: id, from: `<sip:francesco@${DOMAIN}>`, to: `<sip:${DOMAIN}>` }));
  await Promise.all(answered);
  const spread = await dispatched();

  // the held Call-ID's retransmission: still the main thread, answered from its transaction
  ua.send(authorized);
  expect((await answer(held)).status).toBe(200);
  expect(await registerRuns()).toBe(runs);
  const afterRetransmission = await dispatched();
  expect(afterRetransmission.inline - spread.inline).toBe(1);

  // the same credentials under a new Call-ID: a worker's, which knows nc 1 was used
  const other = `${rand()}@worker`;
  ua.send(register(other, 1, `z9hG4bK${rand()}`, authorization));
  expect((await answer(other)).status).toBe(401);
  const next = answerChallenge(challenge, { username: 'francesco', password: '123456', method: 'REGISTER', uri: `sip:${DOMAIN}`, nc: 2 });
  ua.send(register(other, 2, `z9hG4bK${rand()}`, next));
  expect((await answer(other)).status).toBe(200);
  const end = await dispatched();
  expect(end.worker - afterRetransmission.worker).toBe(2);
  expect(end.inline).toBe(afterRetransmission.inline);
}, 30_000);
