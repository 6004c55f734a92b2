/**
 * `sipflow serve --workers 2` as a process (built CLI): SIP handled by two worker threads, messages
 * dispatched by Call-ID, stores in the main thread. What only holds when dispatch and the shared
 * state are right: retransmissions absorbed (one run per authenticated transaction), a digest replay refused by the
 * OTHER worker (nonce-counts in shared memory), TCP answered through the main thread's connection,
 * /metrics summing every worker (runs, retransmissions answered), the binding stored once, a customer written through the API seen
 * at once by both workers' directory caches (directory.cacheSec), each thread's memory and event-loop delay on /metrics.
 */
import { spawn, type ChildProcess } from 'child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'fs';
import os from 'os';
import path from 'path';
import { header } from '../../../sip/message';
import { callIdHash } from '../../../sip/dispatch';
import { answerChallenge } from '../../support/sip';
import { TcpUa, UdpUa, rand, sipRequest, type Ua } from './ua';

const MAIN = path.resolve(__dirname, '../../../dist/cli/main.js');
const FLOWS = path.resolve(__dirname, '../../../flows');

let child: ChildProcess | null = null;
let dataDir = '';
let sipPort = 0;
let api = '';
let auth: Record<string, string> = {};

beforeAll(async () => {
  dataDir = mkdtempSync(path.join(os.tmpdir(), 'sipflow-threads-'));
  // every worker keeps a directory cache: writes must reach it (control message `invalidate`)
  const configFile = path.join(dataDir, 'sipflow.json');
  // REGISTERs go to the worker their Call-ID names (callIdFor): no inline front end (inline-front-end.test.ts)
  writeFileSync(configFile, JSON.stringify({ directory: { cacheSec: 3600 }, sip: { inlineMaxRate: 0 } }));
  child = spawn(
    process.execPath,
    [
      MAIN,
      'serve',
      '--config',
      configFile,
      '--data-dir',
      dataDir,
      '--directory-url',
      'memory://',
      '--location-url',
      'sql',
      '--flows',
      FLOWS,
      '--workers',
      '2',
      '--sip-host',
      '127.0.0.1',
      '--sip-port',
      '0',
      '--http-host',
      '127.0.0.1',
      '--http-port',
      '0',
      '--log-level',
      'warn',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  child.stderr!.on('data', (b) => {
    out += b;
  });
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`not listening: ${out}`)), 60_000);
    child!.stdout!.on('data', (b) => {
      out += b;
      const m = /udp:(\d+) tcp:\d+ \((\d+) SIP threads\)/.exec(out);
      const h = /HTTP API on (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (m && h) {
        clearTimeout(t);
        expect(Number(m[2])).toBe(2);
        sipPort = Number(m[1]);
        api = `${h[1]}/api/v1`;
        resolve();
      }
    });
    child!.once('exit', (code) => reject(new Error(`exited ${code}: ${out}`)));
  });
  auth = { authorization: `Bearer ${readFileSync(path.join(dataDir, 'api-token'), 'utf8').trim()}` };
}, 90_000);

afterAll(async () => {
  if (child) {
    const code = await new Promise<number | null>((resolve) => {
      child!.once('exit', (c) => resolve(c));
      child!.kill('SIGTERM');
    });
    expect(code).toBe(0);
  }
  rmSync(dataDir, { recursive: true, force: true });
});

/** A Call-ID that the dispatcher gives to worker `w` of 2. */
function callIdFor(w: number): string {
  for (;;) {
    const id = `${rand()}@threads`;
    if (callIdHash(Buffer.from(`X sip:x SIP/2.0\r\nCall-ID: ${id}\r\n\r\n`)) % 2 === w) return id;
  }
}

function register(ua: Ua, o: { callId: string; cseq: number; branch?: string; authorization?: string }): string {
  return sipRequest({
    method: 'REGISTER',
    uri: 'sip:nl.netaxis.be',
    ua,
    branch: o.branch,
    callId: o.callId,
    cseq: o.cseq,
    fromTag: 'thr',
    from: '<sip:francesco@nl.netaxis.be>',
    to: '<sip:francesco@nl.netaxis.be>',
    contact: `<sip:francesco@127.0.0.1:${ua.port}${ua.proto === 'tcp' ? ';transport=tcp' : ''}>`,
    headers: { Expires: '300', ...(o.authorization ? { Authorization: o.authorization } : {}) },
  });
}

/** REGISTER without credentials → 401; the challenge and the sample subscriber's answer to it (nc 1). */
async function challenged(ua: Ua, callId: string): Promise<{ challenge: string; authorization: string }> {
  ua.send(register(ua, { callId, cseq: 1 }));
  const challenge = header(await ua.response(401), 'www-authenticate')!;
  const authorization = answerChallenge(challenge, { username: 'francesco', password: '123456', method: 'REGISTER', uri: 'sip:nl.netaxis.be' });
  return { challenge, authorization };
}

/** The instance's /metrics text: the main thread's registry with every SIP thread's summed in. */
const metricsText = async (): Promise<string> => (await fetch(`${api.replace(/\/api\/v1$/, '')}/metrics`, { headers: auth })).text();

async function registerRuns(): Promise<number> {
  const text = await metricsText();
  let n = 0;
  for (const m of text.matchAll(/^sipflow_requests_total\{([^}]*)\} (\d+)/gm)) if (/method="REGISTER"/.test(m[1])) n += Number(m[2]);
  return n;
}

/** One sample of /metrics (server/front-end-metrics.ts), summed over the SIP threads by the main thread. */
async function sample(series: string): Promise<number> {
  const line = (await metricsText()).split('\n').find((l) => l.startsWith(`${series} `));
  if (line === undefined) throw new Error(`no ${series} on /metrics`);
  return Number(line.slice(series.length + 1));
}

test('a retransmitted authenticated REGISTER is answered again but run once, whichever worker holds it', async () => {
  const ua = await UdpUa.open(sipPort);
  try {
    // challenges are sent statelessly (docs/security.md), so only the authenticated run is a transaction
    const sent: string[] = [];
    for (const w of [0, 1]) {
      const callId = callIdFor(w);
      const { authorization } = await challenged(ua, callId);
      sent.push(register(ua, { callId, cseq: 2, authorization }));
    }
    const before = await registerRuns();
    const retransmissions = await sample('sipflow_sip_retransmissions_total');
    const requests = await sample('sipflow_sip_messages_total{kind="request"}');
    for (const msg of sent) {
      ua.send(msg);
      expect((await ua.response()).status).toBe(200);
    }
    for (let i = 0; i < 3; i++) {
      for (const msg of sent) {
        ua.send(msg); // same branch: a retransmission
        expect((await ua.response()).status).toBe(200);
      }
    }
    expect((await registerRuns()) - before).toBe(2);
    // both workers' counts on the main thread's /metrics: 3 retransmissions each, 8 requests in all
    expect((await sample('sipflow_sip_retransmissions_total')) - retransmissions).toBe(6);
    expect((await sample('sipflow_sip_messages_total{kind="request"}')) - requests).toBe(8);
  } finally {
    await ua.close();
  }
}, 30_000);

test('a digest response accepted by one worker is a replay for the other', async () => {
  const ua = await UdpUa.open(sipPort);
  try {
    const first = callIdFor(0);
    const { challenge, authorization } = await challenged(ua, first);
    ua.send(register(ua, { callId: first, cseq: 2, authorization }));
    expect((await ua.response()).status).toBe(200);

    // the same credentials again (same nonce, same nc) under a Call-ID the other worker gets
    ua.send(register(ua, { callId: callIdFor(1), cseq: 1, authorization }));
    const replay = await ua.response();
    expect(replay.status).toBe(401);
    // and a fresh nc on the same nonce is accepted there
    const next = answerChallenge(challenge, { username: 'francesco', password: '123456', method: 'REGISTER', uri: 'sip:nl.netaxis.be', nc: 2 });
    ua.send(register(ua, { callId: callIdFor(1), cseq: 2, authorization: next }));
    expect((await ua.response()).status).toBe(200);
  } finally {
    await ua.close();
  }
}, 30_000);

test('TCP: requests go to the workers and responses come back on the same connection', async () => {
  const ua = await TcpUa.open(sipPort);
  try {
    for (const w of [0, 1]) {
      const callId = callIdFor(w);
      const { authorization } = await challenged(ua, callId);
      ua.send(register(ua, { callId, cseq: 2, authorization }));
      const ok = await ua.response();
      expect(ok.status).toBe(200);
      expect((ok.headers.contact ?? []).join(',')).toContain(`127.0.0.1:${ua.port};transport=tcp`);
    }
    // one binding per contact: the UDP and TCP contacts, each stored once
    const list = (await (await fetch(`${api}/registrations?aor=francesco`, { headers: auth })).json()) as { rows: Array<{ contact: string }> };
    const tcp = list.rows.filter((r) => r.contact.includes('transport=tcp'));
    expect(tcp).toHaveLength(1);
  } finally {
    await ua.close();
  }
}, 30_000);

test('a customer written through the API is seen at once by the next REGISTER, on either worker (directory.cacheSec)', async () => {
  const ua = await UdpUa.open(sipPort);
  const list = (await (await fetch(`${api}/customers?search=francesco`, { headers: auth })).json()) as { rows: Array<{ id: number; username: string | null }> };
  const id = list.rows.find((r) => r.username === 'francesco')!.id;
  const setPassword = (password: string) =>
    fetch(`${api}/customers/${id}`, {
      method: 'PUT',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ password }),
    });
  try {
    // both workers have the subscriber's credentials in their caches
    for (const w of [0, 1]) {
      const callId = callIdFor(w);
      const { authorization } = await challenged(ua, callId);
      ua.send(register(ua, { callId, cseq: 2, authorization }));
      expect((await ua.response()).status).toBe(200);
    }
    expect((await setPassword('changed-secret')).status).toBe(200);
    for (const w of [0, 1]) {
      const callId = callIdFor(w);
      const { challenge, authorization } = await challenged(ua, callId);
      ua.send(register(ua, { callId, cseq: 2, authorization }));
      expect((await ua.response()).status).toBe(401); // the old password: refused at once
      const fresh = answerChallenge(challenge, { username: 'francesco', password: 'changed-secret', method: 'REGISTER', uri: 'sip:nl.netaxis.be', nc: 2 });
      ua.send(register(ua, { callId, cseq: 3, authorization: fresh }));
      expect((await ua.response()).status).toBe(200);
    }
  } finally {
    await setPassword('123456');
    await ua.close();
  }
}, 30_000);

test('/metrics gives each SIP thread its memory and event-loop delay: both workers and the main thread (sipflow_sip_threads_*)', async () => {
  const text = await metricsText();
  const threads = (name: string) => new Map([...text.matchAll(new RegExp(`^${name}\\{thread="(\\w+)"\\} (\\S+)$`, 'gm'))].map((m) => [m[1], Number(m[2])]));
  for (const name of [
    'sipflow_sip_threads_heap_used_bytes',
    'sipflow_sip_threads_heap_live_bytes',
    'sipflow_sip_threads_external_live_bytes',
    'sipflow_sip_threads_array_buffers_bytes',
  ]) {
    const values = threads(name);
    expect([...values.keys()].sort()).toEqual(['0', '1', 'main']);
    // a worker's own isolate (a few MB), not the process's figures copied into every thread
    for (const v of values.values()) expect(v).toBeGreaterThan(0);
  }
  const heap = threads('sipflow_sip_threads_heap_used_bytes');
  expect(heap.get('0')).not.toBe(heap.get('main'));
  expect(text).toMatch(/^sipflow_sip_threads_eventloop_delay_seconds\{thread="1",quantile="0\.99"\} \S+$/m);
});
