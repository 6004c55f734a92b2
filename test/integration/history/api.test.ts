/**
 * Issue 16, call history end to end: `sipflow serve` (built CLI, shipped flows, the note's sample
 * subscriber) with history.mode off, on one SIP thread and on two SIP worker threads; REGISTERs
 * over real UDP.
 *  - the API needs the token (401), answers 400 naming the bad field (date, limit, outcome, the
 *    debug filter's entries) and 404 for an unknown Call-ID; its routes are in the OpenAPI document;
 *  - PUT /api/v1/calls/debug-filter with the subscriber's number: its REGISTER (challenge, then
 *    credentials) is recorded — on whichever worker its Call-ID lands, a worker started with the
 *    filter unset — and GET /api/v1/calls/{callId} returns its messages and runs in order, with
 *    neither the digest response nor the password anywhere;
 *  - PUT back to []: a REGISTER is no longer recorded.
 */
import { header, isRequest, type SipResponse } from '../../../sip/message';
import { callIdHash } from '../../../sip/dispatch';
import { startServe, type ServeProcess } from '../../support/serve';
import { answerChallenge } from '../../support/sip';
import { UdpUa, rand, sipRequest } from '../sip/ua';

const DOMAIN = 'nl.netaxis.be';
const USER = 'francesco';
const PASSWORD = '123456';

function registerText(ua: UdpUa, callId: string, cseq: number, authorization?: string): string {
  return sipRequest({
    method: 'REGISTER',
    uri: `sip:${DOMAIN}`,
    ua,
    callId,
    cseq,
    from: `<sip:${USER}@${DOMAIN}>`,
    to: `<sip:${USER}@${DOMAIN}>`,
    contact: `<sip:${USER}@127.0.0.1:${ua.port}>`,
    headers: { Expires: '60', ...(authorization ? { Authorization: authorization } : {}) },
  });
}

/** A Call-ID whose REGISTER the dispatcher hands to worker `w` of `n`. */
function callIdFor(ua: UdpUa, w: number, n: number): string {
  for (;;) {
    const id = `${rand()}@history-test`;
    if (callIdHash(Buffer.from(registerText(ua, id, 1))) % n === w) return id;
  }
}

/** REGISTER, 401, REGISTER with credentials, final status; the credentials sent. */
async function register(ua: UdpUa, callId: string): Promise<{ status: number; authorization: string }> {
  const final = () =>
    ua.next((r) => !isRequest(r.msg) && header(r.msg, 'call-id') === callId && (r.msg as SipResponse).status >= 200, 5000).then((r) => r.msg as SipResponse);
  ua.send(registerText(ua, callId, 1));
  const challenge = await final();
  expect(challenge.status).toBe(401);
  const authorization = answerChallenge(header(challenge, 'www-authenticate')!, {
    username: USER,
    password: PASSWORD,
    method: 'REGISTER',
    uri: `sip:${DOMAIN}`,
  });
  ua.send(registerText(ua, callId, 2, authorization));
  return { status: (await final()).status, authorization };
}

describe.each([1, 2])('call history over the API, %d SIP thread(s)', (workers) => {
  let serve: ServeProcess;
  let ua: UdpUa;
  beforeAll(async () => {
    serve = await startServe({ workers, logLevel: 'warn', config: { history: { mode: 'off', idleFlushSec: 1, flushMs: 20 } } });
    ua = await UdpUa.open(serve.sipPort);
  }, 90_000);
  afterAll(async () => {
    await ua?.close();
    if (serve) expect((await serve.stop()).code).toBe(0);
  });

  const get = async (p: string) => {
    const r = await serve.api(p);
    return { status: r.status, json: (await r.json()) as Record<string, unknown> & { calls?: Array<Record<string, unknown>> } };
  };
  const putFilter = async (numbers: unknown) => {
    const r = await serve.api('/api/v1/calls/debug-filter', { method: 'PUT', body: JSON.stringify({ numbers }) });
    return { status: r.status, json: (await r.json()) as Record<string, unknown> };
  };
  /** Polls the list until the call is there (the recorder writes a call idleFlushSec after its last message). */
  const recorded = async (callId: string) => {
    for (const until = Date.now() + 15_000; Date.now() < until;) {
      const { json } = await get(`/api/v1/calls?callId=${encodeURIComponent(callId)}`);
      if (json.calls!.length > 0) return json.calls![0];
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`call ${callId} never recorded`);
  };

  test('the token is required; bad filters are 400 naming the field; an unknown Call-ID is 404; the routes are documented', async () => {
    for (const [method, p] of [
      ['GET', '/api/v1/calls'],
      ['GET', '/api/v1/calls/x'],
      ['GET', '/api/v1/calls/debug-filter'],
      ['PUT', '/api/v1/calls/debug-filter'],
    ]) {
      const r = await fetch(`http://127.0.0.1:${serve.httpPort}${p}`, {
        method,
        headers: { 'content-type': 'application/json' },
        body: method === 'PUT' ? '{"numbers":[]}' : undefined,
      });
      expect([p, r.status]).toEqual([p, 401]);
    }
    const bad = async (q: string, field: string) => {
      const r = await get(`/api/v1/calls?${q}`);
      expect([q, r.status]).toEqual([q, 400]);
      expect(r.json.message).toContain(`querystring/${field}`);
    };
    await bad('from=yesterday', 'from');
    await bad('to=2026-13-45T00:00:00Z', 'to');
    await bad('limit=501', 'limit');
    await bad('limit=0', 'limit');
    await bad('outcome=maybe', 'outcome');
    await bad('since=2026-01-01T00:00:00Z', 'since');
    expect((await get('/api/v1/calls?from=2026-01-01T00:00:00Z&limit=500')).status).toBe(200);

    const missing = await get(`/api/v1/calls/${encodeURIComponent('no-such/call@x')}`);
    expect(missing.status).toBe(404);
    expect(missing.json.message).toContain('no-such/call@x');

    const tooMany = await putFilter(Array.from({ length: 101 }, (_, i) => String(i)));
    expect(tooMany.status).toBe(400);
    expect(tooMany.json.message).toContain('body/numbers');
    const control = await putFilter(['ok', 'bad\u0001number']);
    expect(control.status).toBe(400);
    expect(control.json.message).toContain('body/numbers/1');
    expect((await putFilter(['x'.repeat(129)])).status).toBe(400);
    expect((await putFilter([''])).status).toBe(400);
    expect((await get('/api/v1/calls/debug-filter')).json).toEqual({ numbers: [] });

    const doc = (await get('/api/openapi.json')).json as { paths: Record<string, Record<string, unknown>> };
    expect(Object.keys(doc.paths['/api/v1/calls'])).toEqual(['get']);
    expect(Object.keys(doc.paths['/api/v1/calls/{callId}'])).toEqual(['get']);
    expect(Object.keys(doc.paths['/api/v1/calls/debug-filter']).sort()).toEqual(['get', 'put']);
  });

  test('debug filter on: a REGISTER on every SIP thread is recorded with its messages and runs, no secret in it; off again: not recorded', async () => {
    expect(await putFilter([USER])).toEqual({ status: 200, json: { numbers: [USER] } });
    expect((await get('/api/v1/calls/debug-filter')).json).toEqual({ numbers: [USER] });
    // one REGISTER per SIP thread: the filter reached each
    const ids = Array.from({ length: workers }, (_, w) => callIdFor(ua, w, workers));
    const sent: string[] = [];
    for (const id of ids) {
      const r = await register(ua, id);
      expect(r.status).toBe(200);
      sent.push(r.authorization);
    }
    for (const [i, id] of ids.entries()) {
      const summary = await recorded(id);
      expect(summary).toMatchObject({
        callId: id,
        method: 'REGISTER',
        aor: `${USER}@${DOMAIN}`,
        outcome: 'success',
        status: 200,
        messageCount: 4,
        runCount: 2,
      });
      const { status, json } = await get(`/api/v1/calls/${encodeURIComponent(id)}`);
      expect(status).toBe(200);
      const call = json as unknown as {
        messages: Array<{ direction: string; firstLine: string; text: string }>;
        runs: Array<{ outcome: string; status: number | null; path: unknown[] }>;
      };
      expect(call.messages.map((m) => `${m.direction} ${m.firstLine.split(' ').slice(0, 2).join(' ')}`)).toEqual([
        'in REGISTER sip:nl.netaxis.be',
        'out SIP/2.0 401',
        'in REGISTER sip:nl.netaxis.be',
        'out SIP/2.0 200',
      ]);
      expect(call.runs.map((r) => [r.outcome, r.status])).toEqual([
        ['challenge', 401],
        ['register', 200],
      ]);
      expect(call.runs[1].path.length).toBeGreaterThan(2);
      expect(call.messages[2].text).toContain('response="[redacted]"');
      const text = JSON.stringify(json);
      const response = /response="([0-9a-f]+)"/.exec(sent[i])![1];
      expect(text).not.toContain(response);
      expect(text).not.toContain(PASSWORD);
    }
    expect((await get(`/api/v1/calls?aor=${USER}@${DOMAIN}`)).json.calls!.map((c) => c.callId).sort()).toEqual([...ids].sort());
    expect(await serve.metric('sipflow_history_recorded_total')).toBe(workers);
    expect(await serve.metric('sipflow_history_written_total')).toBe(workers);

    // off: a REGISTER is not recorded. Then on again for a marker call: once the marker is
    // there, the first would be too (same threads, recorded and flushed before it).
    expect(await putFilter([])).toEqual({ status: 200, json: { numbers: [] } });
    const unrecorded = ids.map((_, w) => callIdFor(ua, w, workers));
    for (const id of unrecorded) expect((await register(ua, id)).status).toBe(200);
    await putFilter([USER]);
    const markers = ids.map((_, w) => callIdFor(ua, w, workers));
    for (const id of markers) expect((await register(ua, id)).status).toBe(200);
    for (const id of markers) await recorded(id);
    for (const id of unrecorded) expect((await get(`/api/v1/calls?callId=${encodeURIComponent(id)}`)).json.calls).toEqual([]);
    await putFilter([]);
  }, 60_000);
});

/**
 * The recorders' window (services/history/recorder.ts): history.backlogMax shared by the SIP
 * threads (historyWindow: 16 segments each here). Waves of calls written before the next are all
 * recorded (the writer tells each thread its segments are written, across threads as
 * HistorySettled items); a burst beyond the window within one idle second is refused at once,
 * counted once per call, and every REGISTER is still answered.
 */
describe.each([1, 2])('call history window, %d SIP thread(s)', (workers) => {
  const WINDOW = 16;
  let serve: ServeProcess;
  let ua: UdpUa;
  beforeAll(async () => {
    // REGISTERs reach the worker their Call-ID names (callIdFor), not the main thread's inline front end
    serve = await startServe({
      workers,
      logLevel: 'warn',
      config: { sip: { inlineMaxRate: 0 }, history: { mode: 'all', backlogMax: WINDOW * workers, idleFlushSec: 1, flushMs: 20 } },
    });
    ua = await UdpUa.open(serve.sipPort);
  }, 90_000);
  afterAll(async () => {
    await ua?.close();
    if (serve) expect((await serve.stop()).code).toBe(0);
  });

  /** REGISTERs without credentials, sent together: every one answered 401. */
  const challenged = async (callIds: string[]) => {
    const answers = callIds.map((id) =>
      ua
        .next((r) => !isRequest(r.msg) && header(r.msg, 'call-id') === id && (r.msg as SipResponse).status >= 200, 10_000)
        .then((r) => (r.msg as SipResponse).status),
    );
    for (const id of callIds) ua.send(registerText(ua, id, 1));
    expect(await Promise.all(answers)).toEqual(callIds.map(() => 401));
  };
  const written = async (n: number) => {
    for (const until = Date.now() + 20_000; Date.now() < until; await new Promise((r) => setTimeout(r, 100)))
      if ((await serve.metric('sipflow_history_written_total')) >= n) return;
    throw new Error(`${n} calls never written (${await serve.metric('sipflow_history_written_total')})`);
  };

  test('waves within the window are all recorded; a burst beyond it is refused, counted once per call, and still answered', async () => {
    const per = (n: number) => Array.from({ length: workers }, (_, w) => Array.from({ length: n }, () => callIdFor(ua, w, workers))).flat();
    // three waves of 10 per thread: 30 per thread through a window of 16, so the window opened again each time
    for (let wave = 1; wave <= 3; wave++) {
      await challenged(per(10));
      await written(wave * 10 * workers);
    }
    expect(await serve.metric('sipflow_history_dropped_total', 'reason="backlog"')).toBe(0);
    // a burst of 24 per thread inside one idle second: 16 recorded, 8 refused per thread
    const burst = per(24);
    await challenged(burst);
    await written((30 + WINDOW) * workers);
    expect(await serve.metric('sipflow_history_dropped_total', 'reason="backlog"')).toBe(8 * workers);
    expect(await serve.metric('sipflow_history_recorded_total')).toBe((30 + WINDOW) * workers);
    const listed = ((await (await serve.api('/api/v1/calls?limit=500')).json()) as { calls: Array<{ callId: string }> }).calls.map((c) => c.callId);
    expect(burst.filter((id) => listed.includes(id))).toHaveLength(WINDOW * workers);
  }, 90_000);
});
