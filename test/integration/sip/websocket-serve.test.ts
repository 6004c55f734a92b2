/**
 * SIP over WebSocket through `sipflow serve` (the built CLI, two SIP worker threads: the WebSocket
 * connections live in the dispatching thread as TCP ones): `--ws-port`, the HTTP port's upgrade
 * path (http.sipWebSocket) behind a trusted reverse proxy (X-Forwarded-For names the source the
 * binding records), other paths and the missing subprotocol refused.
 */
import WebSocket from 'ws';
import { startServe, type ServeProcess } from '../../support/serve';
import { answerChallenge } from '../../support/sip';
import { rand } from './ua';

const DOMAIN = 'nl.netaxis.be';
let sf: ServeProcess;
let wsPort: number;

beforeAll(async () => {
  sf = await startServe({
    args: ['--ws-port', '0'],
    config: {
      http: { sipWebSocket: { enabled: true, path: '/sip' } },
      sip: { websocket: { trustedProxies: ['127.0.0.1'] } },
    },
  });
  wsPort = Number(/ ws:(\d+)/.exec(sf.output())![1]);
}, 90_000);
afterAll(() => sf?.stop());

/** Opens a WebSocket and collects what arrives. */
function open(url: string, headers: Record<string, string> = {}, protocols = ['sip']): Promise<{ ws: WebSocket; next(): Promise<string> }> {
  const ws = new WebSocket(url, protocols, { headers });
  const inbox: string[] = [];
  const waiting: Array<(m: string) => void> = [];
  ws.on('message', (d: Buffer) => {
    const w = waiting.shift();
    if (w) w(d.toString());
    else inbox.push(d.toString());
  });
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve({ ws, next: () => (inbox.length ? Promise.resolve(inbox.shift()!) : new Promise<string>((r) => waiting.push(r))) }));
    ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    ws.once('error', reject);
  });
}

function register(callId: string, cseq: number, user: string, authorization?: string): string {
  return [
    `REGISTER sip:${DOMAIN} SIP/2.0`,
    `Via: SIP/2.0/WSS ${user}.invalid;branch=z9hG4bK${rand()}`,
    'Max-Forwards: 69',
    `To: <sip:francesco@${DOMAIN}>`,
    `From: <sip:francesco@${DOMAIN}>;tag=${callId.slice(0, 6)}`,
    `Call-ID: ${callId}`,
    `CSeq: ${cseq} REGISTER`,
    `Contact: <sip:${user}@${user}.invalid;transport=ws>;expires=300`,
    ...(authorization ? [`Authorization: ${authorization}`] : []),
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n');
}

async function registerOn(c: { ws: WebSocket; next(): Promise<string> }, user: string): Promise<string> {
  const callId = rand();
  c.ws.send(register(callId, 1, user));
  const challenge = await c.next();
  expect(challenge).toMatch(/^SIP\/2\.0 401 /);
  const www = /\r\nWWW-Authenticate: (.*)\r\n/i.exec(challenge)![1];
  c.ws.send(register(callId, 2, user, answerChallenge(www, { username: 'francesco', password: '123456', method: 'REGISTER', uri: `sip:${DOMAIN}` })));
  return c.next();
}

test('--ws-port: a ws socket on the first listener; REGISTER → 401 → 200 through the worker threads', async () => {
  expect(sf.output()).toMatch(/udp:\d+ tcp:\d+ ws:\d+/);
  const c = await open(`ws://127.0.0.1:${wsPort}`);
  try {
    expect(await registerOn(c, 'own')).toMatch(/^SIP\/2\.0 200 OK\r\n/);
  } finally {
    c.ws.terminate();
  }
});

test('the HTTP port upgrades /sip; a trusted proxy’s X-Forwarded-For is the source the binding records', async () => {
  const c = await open(`ws://127.0.0.1:${sf.httpPort}/sip`, { 'X-Forwarded-For': '198.51.100.23' });
  try {
    expect(await registerOn(c, 'proxied')).toMatch(/^SIP\/2\.0 200 OK\r\n/);
    const list = (await (await sf.api('/api/v1/registrations?aor=francesco@nl.netaxis.be')).json()) as { rows: Array<Record<string, unknown>> };
    const row = list.rows.find((r) => String(r.contact).includes('proxied.invalid'));
    expect(row).toBeDefined();
    expect(JSON.stringify(row)).toContain('198.51.100.23');
  } finally {
    c.ws.terminate();
  }
});

test('the HTTP port refuses other paths (404) and a handshake without the sip subprotocol (400); the API still answers', async () => {
  await expect(open(`ws://127.0.0.1:${sf.httpPort}/other`)).rejects.toThrow('HTTP 404');
  await expect(open(`ws://127.0.0.1:${sf.httpPort}/sip`, {}, ['chat'])).rejects.toThrow('HTTP 400');
  expect((await sf.api('/health/live')).status).toBe(200);
  expect(sf.output()).toMatch(/WebSocket handshake without the \\?"sip\\?" subprotocol/);
});
