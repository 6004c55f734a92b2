/**
 * Issue 16, call history: the recorder (services/history/recorder.ts) fed as the SIP front end
 * feeds it (received, the 100 Trying sent, wants, the final response sent, ran) — modes, sampling
 * determinism, failures-only, the debug filter, redaction of digest responses and secret
 * variables, bounds (open calls, messages per call, message size), segments after a flush.
 * The front end's real use of the taps is covered by the integration suites (test/integration/history).
 */
import { CallRecorder, callIdHash32, redactMessageText, SWEEP_SLICE, type RecordedRun, type RecorderConfig } from '../../../services/history';
import type { CallDetail } from '../../../services/history';
import { callIdOf } from '../../../sip/message-tap';

const UA = { proto: 'udp', address: '192.0.2.10', port: 5062 };
const US = { proto: 'udp', address: '127.0.0.1', port: 5060 };
const FROM_US = { host: '127.0.0.1', port: 5060 };
const T0 = Date.UTC(2026, 11, 3, 12, 0, 0);

const base: RecorderConfig = {
  mode: 'all',
  sampleRate: 0.5,
  debugNumbers: [],
  maxMessagesPerCall: 50,
  maxMessageBytes: 4096,
  maxOpenCalls: 100,
  idleFlushSec: 4,
};

function recorder(over: Partial<RecorderConfig> = {}) {
  const out: CallDetail[] = [];
  const dropped: string[] = [];
  const r = new CallRecorder({ ...base, ...over }, { sink: (d) => out.push(d), callIdOf, timer: false, onDropped: (why) => dropped.push(why) });
  return { r, out, dropped };
}

const AUTH =
  'Digest username="alice", realm="example.test", nonce="abc", uri="sip:example.test", RESPONSE="0123456789abcdef0123456789abcdef", cnonce=deadbeefcafe, nc=00000001, qop=auth';

function request(method: string, callId: string, o: { user?: string; to?: string; auth?: string; cseq?: number } = {}): Buffer {
  const user = o.user ?? 'alice';
  const lines = [
    `${method} sip:${o.to ?? 'bob'}@example.test SIP/2.0`,
    'Via: SIP/2.0/UDP 192.0.2.10:5062;branch=z9hG4bK1',
    `From: <sip:${user}@example.test>;tag=f1`,
    `To: <sip:${method === 'REGISTER' ? user : (o.to ?? 'bob')}@example.test>`,
    `Call-ID: ${callId}`,
    `CSeq: ${o.cseq ?? 1} ${method}`,
  ];
  if (o.auth) lines.push(`${method === 'REGISTER' ? 'Authorization' : 'Proxy-Authorization'}: ${o.auth}`);
  lines.push('Content-Length: 0');
  return Buffer.from(lines.join('\r\n') + '\r\n\r\n');
}

function response(status: number, method: string, callId: string, cseq = 1): Buffer {
  return Buffer.from(
    [`SIP/2.0 ${status} Reason`, 'Via: SIP/2.0/UDP 192.0.2.10:5062;branch=z9hG4bK1', `Call-ID: ${callId}`, `CSeq: ${cseq} ${method}`, 'Content-Length: 0'].join(
      '\r\n',
    ) + '\r\n\r\n',
  );
}

const run = (over: Partial<RecordedRun> = {}): RecordedRun => ({
  at: T0,
  durationMs: 1.5,
  method: 'INVITE',
  logicId: '1',
  logic: 'pbx',
  input: { calling: 'alice', called: 'bob' },
  trace: [{ step: 0, logic: 'pbx', nodeId: '0', nodeName: 'start', type: 'enter.start', exit: 'next' }],
  outcome: 'reply',
  status: 200,
  ...over,
});

/** One transaction as the front end reports it: the request, 100 Trying, wants, the final response, the run. */
function transaction(
  r: CallRecorder,
  method: string,
  callId: string,
  status: number,
  o: { user?: string; to?: string; auth?: string; cseq?: number; run?: Partial<RecordedRun>; at?: number } = {},
): boolean {
  const at = o.at ?? T0;
  r.received(request(method, callId, o), UA, US, at);
  if (method === 'INVITE') r.sent(response(100, method, callId, o.cseq), UA, FROM_US, at);
  const wanted = r.wants(callId, method, { calling: o.user ?? 'alice', called: o.to ?? 'bob', fromUsername: o.user ?? 'alice', toUsername: o.to ?? 'bob' });
  r.sent(response(status, method, callId, o.cseq), UA, FROM_US, at + 5);
  if (wanted) r.ran(callId, run({ method, at, status, ...o.run }));
  return wanted;
}

test('mode all: the request, its 100 Trying and everything later of the Call-ID; a summary as record.ts says', () => {
  const { r, out } = recorder();
  // a message of another Call-ID received before does not join
  r.received(request('OPTIONS', 'other'), UA, US, T0 - 10);
  expect(transaction(r, 'INVITE', 'c1', 486)).toBe(true);
  r.received(request('ACK', 'c1'), UA, US, T0 + 10);
  r.close();
  expect(out).toHaveLength(1);
  const d = out[0];
  expect(d).toMatchObject({
    callId: 'c1',
    method: 'INVITE',
    calling: 'alice',
    called: 'bob',
    aor: 'alice@example.test',
    source: '192.0.2.10:5062',
    outcome: 'failed',
    status: 486,
    logic: 'pbx',
    messageCount: 4,
    runCount: 1,
    droppedMessages: 0,
    startedAt: new Date(T0).toISOString(),
    endedAt: new Date(T0 + 10).toISOString(),
  });
  expect(d.messages.map((m) => `${m.direction} ${m.firstLine}`)).toEqual([
    'in INVITE sip:bob@example.test SIP/2.0',
    'out SIP/2.0 100 Reason',
    'out SIP/2.0 486 Reason',
    'in ACK sip:bob@example.test SIP/2.0',
  ]);
  expect(d.messages[0]).toMatchObject({ transport: 'udp', src: '192.0.2.10:5062', dst: '127.0.0.1:5060', method: 'INVITE', status: null });
  expect(d.messages[2]).toMatchObject({ src: '127.0.0.1:5060', dst: '192.0.2.10:5062', method: 'INVITE', status: 486 });
  expect(d.runs[0]).toMatchObject({ logic: 'pbx', flow: null, where: null, path: [{ nodeId: '0', exit: 'next' }] });
});

test('outcomes: success, redirect, challenged, a challenge answering credentials is failed, an error run is failed', () => {
  const { r, out } = recorder();
  transaction(r, 'INVITE', 'ok', 200);
  transaction(r, 'INVITE', 'moved', 302);
  transaction(r, 'REGISTER', 'scanner', 401);
  transaction(r, 'REGISTER', 'wrong-password', 401);
  transaction(r, 'REGISTER', 'wrong-password', 401, { auth: AUTH, cseq: 2 });
  transaction(r, 'REGISTER', 'right-password', 401);
  transaction(r, 'REGISTER', 'right-password', 200, { auth: AUTH, cseq: 2 });
  transaction(r, 'INVITE', 'broken', 500, { run: { outcome: 'error', where: 'node 3' } });
  r.close();
  const by = Object.fromEntries(out.map((d) => [d.callId, d.outcome]));
  expect(by).toEqual({ ok: 'success', moved: 'redirect', scanner: 'challenged', 'wrong-password': 'failed', 'right-password': 'success', broken: 'failed' });
  expect(out.find((d) => d.callId === 'right-password')).toMatchObject({ aor: 'alice@example.test', status: 200, messageCount: 4, runCount: 2 });
  expect(out.find((d) => d.callId === 'broken')!.runs[0].where).toBe('node 3');
});

test('mode off: nothing is asked or kept; mode failures keeps a 403 and a 500, drops a 200', () => {
  const off = recorder({ mode: 'off' });
  expect(transaction(off.r, 'INVITE', 'a', 200)).toBe(false);
  off.r.close();
  expect(off.out).toEqual([]);

  const f = recorder({ mode: 'failures' });
  transaction(f.r, 'INVITE', 'forbidden', 403);
  transaction(f.r, 'INVITE', 'fine', 200);
  transaction(f.r, 'INVITE', 'crashed', 500);
  f.r.close();
  expect(f.out.map((d) => d.callId).sort()).toEqual(['crashed', 'forbidden']);
});

test('mode sampled: decided by the Call-ID hash, the same on every recorder; about sampleRate of them', () => {
  const ids = Array.from({ length: 400 }, (_, i) => `call-${i}@host`);
  const a = recorder({ mode: 'sampled', sampleRate: 0.25 });
  const b = recorder({ mode: 'sampled', sampleRate: 0.25 });
  const chosenA = ids.filter((id) => a.r.wants(id, 'OPTIONS', {}));
  const chosenB = ids.filter((id) => b.r.wants(id, 'OPTIONS', {}));
  expect(chosenA).toEqual(chosenB);
  expect(chosenA).toEqual(ids.filter((id) => callIdHash32(id) < 0.25 * 2 ** 32));
  expect(chosenA.length).toBeGreaterThan(60);
  expect(chosenA.length).toBeLessThan(140);
  expect(recorder({ mode: 'sampled', sampleRate: 0 }).r.wants(ids[0], 'OPTIONS', {})).toBe(false);
  expect(recorder({ mode: 'sampled', sampleRate: 1 }).r.wants(ids[0], 'OPTIONS', {})).toBe(true);
});

test('debug filter: a listed number or AoR is recorded whatever the mode (failures: even a success), off again with []', () => {
  const { r, out } = recorder({ mode: 'failures', debugNumbers: ['+3225550100'] });
  expect(r.wants('n1', 'INVITE', { calling: '+3225550100', called: '123' })).toBe(true);
  expect(r.wants('n2', 'INVITE', { calling: '+3225550199', called: '+3225550100' })).toBe(true);
  expect(transaction(r, 'INVITE', 'n5', 200, { user: '+3225550100' })).toBe(true); // a success, kept for the filter
  expect(transaction(r, 'INVITE', 'n6', 200, { user: '+3225550199' })).toBe(true); // a success recorded by mode failures, dropped at flush
  r.setDebugNumbers(['Carol@Example.Test']);
  expect(r.wants('n3', 'REGISTER', { fromURI: 'sip:carol@example.test', toURI: 'sip:carol@example.test' })).toBe(true);
  r.setDebugNumbers([]);
  expect(r.debugNumbers()).toEqual([]);
  const off = recorder({ mode: 'off' });
  expect(off.r.wants('x', 'INVITE', { calling: '+1' })).toBe(false);
  off.r.setDebugNumbers(['+1']);
  expect(transaction(off.r, 'INVITE', 'dbg', 200, { user: '+1' })).toBe(true);
  expect(off.r.wants('y', 'INVITE', { calling: '+2' })).toBe(false);
  off.r.sweep(T0 + 3600_000); // flushed, remembered for a later BYE …
  off.r.setDebugNumbers([]);
  expect(transaction(off.r, 'INVITE', 'dbg2', 200, { user: '+1' })).toBe(false);
  off.r.received(request('BYE', 'dbg', { cseq: 2 }), UA, US, T0 + 10_000); // … but not once the filter is off
  off.r.close();
  expect(off.out.map((d) => [d.callId, d.outcome, d.messageCount])).toEqual([['dbg', 'success', 3]]);
  r.close();
  expect(out.map((d) => d.callId).sort()).toEqual(['n1', 'n2', 'n3', 'n5']); // chosen by the filter: kept whatever the outcome
});

test('redaction: digest response and cnonce (any case, quoted or not), secret variables of the input and the path; nothing secret in the JSON', () => {
  const { r, out } = recorder();
  transaction(r, 'REGISTER', 'secret', 200, {
    auth: AUTH,
    run: {
      input: { authorization: AUTH, sipPassword: 'hunter2-pass', customerPin: '987654', calling: 'alice' },
      trace: [
        {
          step: 0,
          logic: 'reg',
          nodeId: '1',
          nodeName: 'lookup',
          type: 'query.queryDatabaseGeneric',
          exit: 'found',
          set: { customerPin: '987654', plan: 'gold' },
        },
      ],
      isSecret: (name) => name === 'customerPin',
    },
  });
  r.close();
  const json = JSON.stringify(out);
  for (const secret of ['0123456789abcdef0123456789abcdef', 'deadbeefcafe', 'hunter2', '987654']) expect(json).not.toContain(secret);
  const text = out[0].messages[0].text;
  expect(text).toContain('RESPONSE="[redacted]"');
  expect(text).toContain('cnonce=[redacted]');
  expect(text).toContain('username="alice"'); // the rest of the header stays
  expect(out[0].runs[0].input).toEqual({ authorization: '[redacted]', sipPassword: '[redacted]', customerPin: '[redacted]', calling: 'alice' });
  expect(out[0].runs[0].path[0].set).toEqual({ customerPin: '[redacted]', plan: 'gold' });
  // a response= outside the credentials headers (a body, another header) is left as it is
  expect(redactMessageText('MESSAGE sip:a@b SIP/2.0\r\nX-Note: response=1\r\n\r\nresponse=2')).toBe(
    'MESSAGE sip:a@b SIP/2.0\r\nX-Note: response=1\r\n\r\nresponse=2',
  );
  expect(redactMessageText('REGISTER sip:b SIP/2.0\r\nproxy-authorization  :  Digest\r\n  response = abc ,cnonce="x\\"y"\r\n\r\n')).toBe(
    'REGISTER sip:b SIP/2.0\r\nproxy-authorization  :  Digest\r\n  response = [redacted] ,cnonce="[redacted]"\r\n\r\n',
  );
});

test('bounds: maxOpenCalls (then not recorded, counted), maxMessagesPerCall (dropped counted), maxMessageBytes (cut, truncated)', () => {
  const { r, out, dropped } = recorder({ maxOpenCalls: 3, maxMessagesPerCall: 5, maxMessageBytes: 600 });
  for (let i = 0; i < 10; i++) r.wants(`flood-${i}`, 'OPTIONS', {});
  expect(r.openCalls).toBe(3);
  expect(dropped).toEqual(Array(7).fill('open_calls'));
  r.close();
  expect(out).toHaveLength(3);
  out.length = 0;

  transaction(r, 'INVITE', 'long', 180);
  for (let i = 0; i < 10; i++) r.received(request('INFO', 'long', { cseq: i + 2 }), UA, US, T0 + i);
  const big = Buffer.concat([request('MESSAGE', 'long'), Buffer.alloc(2000, 'x')]);
  r.close();
  expect(out[0]).toMatchObject({ messageCount: 5, droppedMessages: 8 });
  const cut = recorder({ maxMessageBytes: 600 });
  cut.r.received(big, UA, US, T0);
  cut.r.wants('long', 'MESSAGE', {});
  cut.r.close();
  expect(cut.out[0].messages[0]).toMatchObject({ truncated: true, firstLine: 'MESSAGE sip:bob@example.test SIP/2.0' });
  expect(Buffer.byteLength(cut.out[0].messages[0].text)).toBe(600);
});

test('junk and messages before any logic run open nothing; idle entries flush, and a later BYE of a flushed call is a new segment of it', () => {
  const { r, out } = recorder({ idleFlushSec: 4 });
  r.received(Buffer.from('\x16\x03\x01 not sip at all'), UA, US, T0);
  r.received(request('OPTIONS', 'never-ran'), UA, US, T0);
  r.sent(response(400, 'OPTIONS', 'never-ran'), UA, FROM_US, T0);
  expect(r.openCalls).toBe(0);

  transaction(r, 'INVITE', 'dialog', 200, { at: T0 });
  r.sweep(T0 + 3000);
  expect(out).toEqual([]); // not idle yet
  r.sweep(T0 + 4005);
  expect(out.map((d) => [d.callId, d.messageCount])).toEqual([['dialog', 3]]);
  // in-dialog BYE: no logic run, but the Call-ID is remembered
  r.received(request('BYE', 'dialog', { cseq: 2 }), UA, US, T0 + 60_000);
  r.sent(response(200, 'BYE', 'dialog', 2), UA, FROM_US, T0 + 60_001);
  r.close();
  expect(out).toHaveLength(2);
  expect(out[1]).toMatchObject({
    callId: 'dialog',
    method: 'INVITE',
    status: 200,
    outcome: 'success',
    logic: 'pbx',
    calling: 'alice',
    messageCount: 2,
    runCount: 0,
  });
  expect(out[1].messages.map((m) => m.firstLine)).toEqual(['BYE sip:bob@example.test SIP/2.0', 'SIP/2.0 200 Reason']);
});

test('mode off with an empty filter: received, sent and wants cost nothing measurable (no Call-ID scan)', () => {
  let scans = 0;
  const r = new CallRecorder({ ...base, mode: 'off' }, { sink: () => undefined, callIdOf: (d) => (scans++, callIdOf(d)), timer: false });
  const msg = request('INVITE', 'x');
  for (let i = 0; i < 1000; i++) {
    r.received(msg, UA, US, T0);
    r.sent(msg, UA, FROM_US, T0);
    r.wants('x', 'INVITE', { calling: 'alice' });
  }
  expect(scans).toBe(0);
  expect(r.openCalls).toBe(0);
});

test('window: calls beyond `window` segments in flight are refused (counted once, later requests too); settled() opens it again; a debug call passes', () => {
  const out: CallDetail[] = [];
  const dropped: string[] = [];
  const r = new CallRecorder(
    { ...base, maxOpenCalls: 100 },
    { sink: (d) => out.push(d), callIdOf, timer: false, window: 2, onDropped: (why) => dropped.push(why) },
  );
  expect(transaction(r, 'REGISTER', 'w1', 401)).toBe(true);
  expect(transaction(r, 'REGISTER', 'w2', 401)).toBe(true);
  // the window is full: w3 refused at its first request, and at its second (no recording that starts halfway), counted once
  expect(transaction(r, 'REGISTER', 'w3', 401)).toBe(false);
  expect(r.segmentsInFlight).toBe(2);
  r.sweep(T0 + 10_000); // w1 and w2 flushed: still in flight until the writer settles them
  expect(out.map((d) => d.callId)).toEqual(['w1', 'w2']);
  expect(transaction(r, 'REGISTER', 'w3', 200, { cseq: 2, auth: AUTH })).toBe(false);
  expect(transaction(r, 'REGISTER', 'w4', 401)).toBe(false);
  expect(dropped).toEqual(['backlog', 'backlog']);
  r.settled(1);
  expect(transaction(r, 'REGISTER', 'w5', 401)).toBe(true);
  expect(transaction(r, 'REGISTER', 'w3', 200, { cseq: 3 })).toBe(false); // w3 stays refused
  // the debug filter's calls are recorded past the window
  r.setDebugNumbers(['carol']);
  expect(transaction(r, 'REGISTER', 'w6', 401, { user: 'carol' })).toBe(true);
  // w1 or w2 (one settled) + w5 + w6
  expect(r.segmentsInFlight).toBe(3);
  r.close();
  expect(out.map((d) => d.callId)).toEqual(['w1', 'w2', 'w5', 'w6']);
  // failures mode: a success is not handed to the sink, and leaves the window at once
  const f = new CallRecorder({ ...base, mode: 'failures' }, { sink: (d) => out.push(d), callIdOf, timer: false, window: 1 });
  expect(transaction(f, 'OPTIONS', 'ok', 200)).toBe(true);
  f.sweep(T0 + 10_000);
  expect(f.segmentsInFlight).toBe(0);
  expect(transaction(f, 'OPTIONS', 'ko', 500)).toBe(true);
  f.close();
  expect(out.map((d) => d.callId)).toEqual(['w1', 'w2', 'w5', 'w6', 'ko']);
});

test('the timer sweep flushes idle entries in slices of SWEEP_SLICE per turn of the event loop, oldest activity first', async () => {
  const out: CallDetail[] = [];
  const r = new CallRecorder({ ...base, maxOpenCalls: 1000, idleFlushSec: 1 }, { sink: (d) => out.push(d), callIdOf, timer: true });
  const old = Date.now() - 5000;
  for (let i = 0; i < 3 * SWEEP_SLICE; i++) transaction(r, 'OPTIONS', `s${i}`, 200, { at: old });
  // s0 was active last: it goes last
  r.received(request('OPTIONS', 's0', { cseq: 2 }), UA, US, old + 1);
  const slices: number[] = [];
  await new Promise<void>((resolve) => {
    const check = () => {
      if (out.length > 0) slices.push(out.length);
      if (out.length === 3 * SWEEP_SLICE) resolve();
      else setImmediate(check);
    };
    check();
  });
  r.close();
  // never more than one slice between two turns of the event loop
  expect(slices[0]).toBeLessThanOrEqual(SWEEP_SLICE);
  for (let i = 1; i < slices.length; i++) expect(slices[i] - slices[i - 1]).toBeLessThanOrEqual(SWEEP_SLICE);
  expect(out.map((d) => d.callId).slice(-1)).toEqual(['s0']);
  expect(out[0].callId).toBe('s1');
});
