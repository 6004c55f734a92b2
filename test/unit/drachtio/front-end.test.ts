/**
 * The drachtio front end (sip/drachtio/front-end.ts) through drachtio-srf's own message classes:
 * requests are parsed from raw SIP text by `Srf.SipMessage` and wrapped in `Srf.SipRequest` with
 * the metadata drachtio-server sends (source, protocol, local socket); responses are fakes that
 * capture `send`, and `srf` is a fake capturing `use`, the method handlers and `proxyRequest`.
 */
import { readFileSync } from 'fs';
import path from 'path';
import { buildCallDescriptor } from '../../../engine/cd';
import { loadSlidText } from '../../../engine/load';
import type { Outcome } from '../../../engine/types';
import { builtinRegistry } from '../../../nodes';
import { parseDigestCredentials } from '../../../services/auth';
import {
  applyOutcome,
  attachDrachtio,
  callDescriptorOf,
  destinationOf,
  engineRunner,
  ExecuteError,
  httpRunner,
  type DrachtioRequest,
  type DrachtioResponse,
  type DrachtioSrf,
  type Runner,
} from '../../../sip/drachtio/front-end';
import { answerChallenge } from '../../support/sip';
import { testContext } from '../../support/context';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const Srf = require('drachtio-srf');

const META = { source: 'network', address: '10.1.10.89', port: '57806', protocol: 'udp', receivedOn: '10.1.10.163:5060', time: '0', transactionId: 't1' };

/** The registrar technical note's REGISTER (§6.3). */
function noteRegister(extra: string[] = [], cseq = 62650): string {
  return [
    'REGISTER sip:10.1.10.163 SIP/2.0',
    'Via: SIP/2.0/UDP 10.1.10.89:57806;rport;branch=z9hG4bKPj62qlaectRdDtGIG2v4tF0kLTFQm2INSK' + cseq,
    'Route: <sip:10.1.10.163:5060;lr>',
    'Max-Forwards: 70',
    'From: "Francesco" <sip:francesco@nl.netaxis.be>;tag=RHuIK7Em8vPmIAFR8XdsAKf8cZIDZL',
    'To: "Francesco" <sip:francesco@nl.netaxis.be>',
    'Call-ID: X-by3boX112NeNE11ay4K5dFUHXy3f3F',
    `CSeq: ${cseq} REGISTER`,
    'User-Agent: Telephone 1.0',
    'Contact: "Francesco" <sip:francesco@10.1.10.89:57806;ob>',
    'Expires: 300',
    'Allow: PRACK, INVITE, ACK, BYE, CANCEL, UPDATE, INFO, SUBSCRIBE, NOTIFY, REFER, MESSAGE, OPTIONS',
    ...extra,
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n');
}

function invite(extra: string[] = [], toTag = ''): string {
  return [
    'INVITE sip:0031201555@nl.netaxis.be SIP/2.0',
    'Via: SIP/2.0/UDP 10.1.10.89:57806;branch=z9hG4bKinv1',
    'Max-Forwards: 70',
    'From: <sip:000112233@nl.netaxis.be>;tag=a1',
    `To: <sip:0031201555@nl.netaxis.be>${toTag ? `;tag=${toTag}` : ''}`,
    'Call-ID: inv-1@10.1.10.89',
    'CSeq: 1 INVITE',
    'Contact: <sip:000112233@10.1.10.89:57806>',
    'Content-Type: application/sdp',
    ...extra,
    'Content-Length: 3',
    '',
    'v=0',
  ].join('\r\n');
}

const request = (raw: string, meta = META): DrachtioRequest => new Srf.SipRequest(new Srf.SipMessage(raw), meta);

interface Sent {
  status: number;
  reason?: string;
  headers?: Record<string, string>;
}

class FakeRes implements DrachtioResponse {
  sent: Sent[] = [];
  finalResponseSent = false;
  private waiters: Array<() => void> = [];
  send(status: number, reason?: string, opts?: { headers?: Record<string, string> }): void {
    this.sent.push({ status, reason, headers: opts?.headers });
    if (status >= 200) this.finalResponseSent = true;
    this.waiters.splice(0).forEach((w) => w());
  }
  done(): Promise<void> {
    return this.sent.length ? Promise.resolve() : new Promise((r) => this.waiters.push(r));
  }
}

function fakeSrf() {
  const handlers: Record<string, (req: DrachtioRequest, res: DrachtioResponse) => void> = {};
  const middleware: Array<(req: DrachtioRequest, res: DrachtioResponse, next: () => void) => void> = [];
  const proxied: Array<{ req: DrachtioRequest; destination: string | string[]; opts: unknown }> = [];
  const srf: DrachtioSrf = {
    use: (fn) => middleware.push(fn),
    proxyRequest: async (req, destination, opts) => {
      proxied.push({ req, destination, opts });
      return { finalStatus: 200 };
    },
    register: (fn) => {
      handlers.register = fn;
    },
    invite: (fn) => {
      handlers.invite = fn;
    },
    options: (fn) => {
      handlers.options = fn;
    },
  };
  for (const m of ['message', 'subscribe', 'notify', 'publish', 'info', 'refer'])
    srf[m] = (fn: (req: DrachtioRequest, res: DrachtioResponse) => void) => {
      handlers[m] = fn;
    };
  /** Runs the middleware then the method's handler, as drachtio-srf's router does. */
  async function dispatch(req: DrachtioRequest, res: FakeRes, until: () => Promise<void> = () => res.done()): Promise<void> {
    for (const mw of middleware) {
      let passed = false;
      mw(req, res, () => {
        passed = true;
      });
      if (!passed) return;
    }
    handlers[req.method.toLowerCase()]?.(req, res);
    await until();
  }
  return { srf, handlers, middleware, proxied, dispatch };
}

const fixed = (outcome: Outcome): Runner => ({ run: async () => ({ outcome }) });
const GMT = /^\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT$/;

// ---------------------------------------------------------------- call descriptor

describe('call descriptor from a drachtio request', () => {
  test('variables from the request and its metadata; every header but the hop-by-hop ones', () => {
    const req = request(noteRegister(['Authorization: Digest username="francesco", realm="nl.netaxis.be", nonce="n", uri="sip:10.1.10.163", response="r"']));
    const cd = callDescriptorOf(req);
    expect(cd).toMatchObject({
      requestMethod: 'REGISTER',
      requestURI: 'sip:10.1.10.163',
      sourceAddress: '10.1.10.89',
      sourcePort: 57806,
      transport: 'udp',
      destinationAddress: '10.1.10.163',
      destinationPort: 5060,
    });
    const names = Object.keys(cd.headers).map((h) => h.toLowerCase());
    expect(names).toEqual(expect.arrayContaining(['from', 'to', 'call-id', 'cseq', 'contact', 'expires', 'authorization', 'user-agent', 'allow']));
    for (const hop of ['via', 'route', 'max-forwards', 'content-length']) expect(names).not.toContain(hop);
    expect(cd.body).toBeUndefined();

    // what sipflow derives from it (the execute endpoint's buildCallDescriptor)
    const full = buildCallDescriptor(cd, { credentials: parseDigestCredentials });
    expect(full.vars).toMatchObject({
      callId: 'X-by3boX112NeNE11ay4K5dFUHXy3f3F',
      fromUsername: 'francesco',
      toUsername: 'francesco',
      calling: 'francesco',
      authUsername: 'francesco',
      authStatus: 0,
    });
    expect(full.headers['user-agent']).toEqual(['Telephone 1.0']);
  });

  test('body, TCP, IPv6 local socket', () => {
    const req = request(invite(), { ...META, protocol: 'tcp', receivedOn: '[2001:db8::1]:5080' });
    const cd = callDescriptorOf(req);
    expect(cd).toMatchObject({ transport: 'tcp', destinationAddress: '2001:db8::1', destinationPort: 5080, body: 'v=0' });
  });
});

// ---------------------------------------------------------------- wiring

describe('attachDrachtio', () => {
  test('installs a middleware and handlers for register, invite, options and the other initial methods', () => {
    const f = fakeSrf();
    attachDrachtio(f.srf, fixed({ kind: 'exit', status: null }));
    expect(f.middleware).toHaveLength(1);
    expect(Object.keys(f.handlers).sort()).toEqual(['info', 'invite', 'message', 'notify', 'options', 'publish', 'refer', 'register', 'subscribe']);
  });

  test('in-dialog requests (To tag) never reach sipflow: 481 from the middleware', async () => {
    const f = fakeSrf();
    const run = jest.fn();
    attachDrachtio(f.srf, { run });
    const res = new FakeRes();
    await f.dispatch(request(invite([], 'xyz')), res);
    expect(res.sent).toEqual([{ status: 481, reason: 'Call/Transaction Does Not Exist', headers: undefined }]);
    expect(run).not.toHaveBeenCalled();
  });
});

// ---------------------------------------------------------------- outcomes

describe('outcomes', () => {
  async function outcome(o: Outcome, raw = noteRegister()) {
    const f = fakeSrf();
    attachDrachtio(f.srf, fixed(o), { log: () => undefined });
    const res = new FakeRes();
    await f.dispatch(request(raw), res, async () => {
      for (let i = 0; i < 20 && !res.sent.length && !f.proxied.length; i++) await new Promise((r) => setImmediate(r));
    });
    return { res, proxied: f.proxied };
  }

  test('challenge → 401 with WWW-Authenticate; several algorithms → one header line each', async () => {
    const one = await outcome({
      kind: 'challenge',
      status: 401,
      header: 'WWW-Authenticate',
      realm: 'r',
      nonce: 'n',
      qop: 'auth',
      algorithm: 'MD5',
      stale: false,
      challenges: ['Digest realm="r", nonce="n", qop="auth", algorithm=MD5'],
    });
    expect(one.res.sent).toEqual([
      { status: 401, reason: 'Unauthorized', headers: { 'WWW-Authenticate': 'Digest realm="r", nonce="n", qop="auth", algorithm=MD5' } },
    ]);

    const two = await outcome(
      {
        kind: 'challenge',
        status: 407,
        header: 'Proxy-Authenticate',
        realm: 'r',
        nonce: 'n',
        qop: 'auth',
        algorithm: 'SHA-256',
        stale: false,
        challenges: ['Digest a=1, algorithm=SHA-256', 'Digest a=1, algorithm=MD5'],
      },
      invite(),
    );
    expect(two.res.sent[0].status).toBe(407);
    expect(two.res.sent[0].reason).toBe('Proxy Authentication Required');
    expect(two.res.sent[0].headers).toEqual({ 'Proxy-Authenticate': 'Digest a=1, algorithm=SHA-256\r\nProxy-Authenticate: Digest a=1, algorithm=MD5' });
  });

  test("register → 200 with the Contact list (q when given), and the registrar's headers on 423", async () => {
    const ok = await outcome({
      kind: 'register',
      status: 200,
      reason: 'OK',
      aor: 'francesco',
      bindings: [
        { contact: 'sip:francesco@10.1.10.89:57806;ob', expires: 300, q: -1 },
        { contact: 'sip:francesco@10.1.10.90:5060', expires: 120, q: 0.5 },
      ],
    });
    // Date as sipflow's own front end answers a 2xx REGISTER (sip/response-for.ts)
    expect(ok.res.sent).toEqual([
      {
        status: 200,
        reason: 'OK',
        headers: {
          Contact: '<sip:francesco@10.1.10.89:57806;ob>;expires=300, <sip:francesco@10.1.10.90:5060>;expires=120;q=0.5',
          Date: expect.stringMatching(GMT),
        },
      },
    ]);

    // the Path an edge proxy inserted goes back in the 200 (RFC 3327), as sipflow's own front end answers it
    const viaEdge = await outcome(
      { kind: 'register', status: 200, reason: 'OK', aor: 'francesco', bindings: [] },
      noteRegister(['Path: <sip:edge.example.net;lr>']),
    );
    expect(viaEdge.res.sent[0].headers).toEqual({ Date: expect.stringMatching(GMT), Path: '<sip:edge.example.net;lr>' });

    const brief = await outcome({
      kind: 'register',
      status: 423,
      reason: 'Interval Too Brief',
      aor: 'francesco',
      bindings: [],
      headers: { 'Min-Expires': '60' },
    });
    expect(brief.res.sent).toEqual([{ status: 423, reason: 'Interval Too Brief', headers: { 'Min-Expires': '60' } }]);
  });

  test('relay → srf.proxyRequest with the target (its received address when NATed), Record-Route for INVITE', async () => {
    const r = await outcome({ kind: 'relay', status: null, targets: [{ uri: 'sip:acme@192.168.1.10:5060', received: 'sip:203.0.113.7:40112' }] }, invite());
    expect(r.res.sent).toEqual([]);
    expect(r.proxied).toHaveLength(1);
    expect(r.proxied[0].destination).toBe('sip:acme@203.0.113.7:40112');
    expect(r.proxied[0].opts).toMatchObject({ recordRoute: true, forking: 'simultaneous' });
    expect((r.proxied[0].req as DrachtioRequest).method).toBe('INVITE');

    const two = await outcome({ kind: 'relay', status: null, targets: [{ uri: 'sip:a@10.0.0.1' }, { uri: 'sip:b@10.0.0.2:5062' }] }, invite());
    expect(two.proxied[0].destination).toEqual(['sip:a@10.0.0.1', 'sip:b@10.0.0.2:5062']);

    const none = await outcome({ kind: 'relay', status: null, targets: [] }, invite());
    expect(none.res.sent[0].status).toBe(480);
  });

  test('failover → drachtio’s sequential forking over the destination then the alternatives, provisionalTimeout from attemptTimeoutMs', async () => {
    const failover = { alternatives: [[{ uri: 'sip:+3220@gw2.example' }], [{ uri: 'sip:+3220@gw3.example' }]], codes: () => true, attemptTimeoutMs: 1500 };
    const r = await outcome({ kind: 'relay', status: null, targets: [{ uri: 'sip:+3220@gw1.example' }], failover }, invite());
    expect(r.proxied[0].destination).toEqual(['sip:+3220@gw1.example', 'sip:+3220@gw2.example', 'sip:+3220@gw3.example']);
    expect(r.proxied[0].opts).toMatchObject({ forking: 'sequential', provisionalTimeout: '1500ms' });
  });

  test('destinations: received with the contact user, first Path hop, else the URI', () => {
    expect(destinationOf({ uri: 'sip:u@10.0.0.1:5060;ob', received: 'sip:198.51.100.2:5999' })).toBe('sip:u@198.51.100.2:5999');
    expect(destinationOf({ uri: 'sip:u@10.0.0.1', path: ['<sip:edge.example.net;lr>'] })).toBe('sip:edge.example.net;lr');
    expect(destinationOf({ uri: 'sip:u@10.0.0.1', received: null })).toBe('sip:u@10.0.0.1');
  });

  test('reply, redirect, exit and error map to their responses', async () => {
    expect((await outcome({ kind: 'reply', status: 486, reason: 'Busy Here', headers: { 'X-Why': 'screened' } }, invite())).res.sent).toEqual([
      { status: 486, reason: 'Busy Here', headers: { 'X-Why': 'screened' } },
    ]);
    expect(
      (await outcome({ kind: 'redirect', status: 302, reason: 'Moved Temporarily', contacts: ['sip:a@x', '<sip:b@y>;q=0.5'] }, invite())).res.sent,
    ).toEqual([{ status: 302, reason: 'Moved Temporarily', headers: { Contact: '<sip:a@x>, <sip:b@y>;q=0.5' } }]);
    expect((await outcome({ kind: 'exit', status: null }, invite())).res.sent).toEqual([{ status: 404, reason: 'Not Found', headers: undefined }]);
    expect((await outcome({ kind: 'error', status: 503, reason: 'location down', retryAfter: 30 }, invite())).res.sent).toEqual([
      { status: 503, reason: 'Service Unavailable', headers: { 'Retry-After': '30' } },
    ]);
    expect((await outcome({ kind: 'error', status: 500, reason: 'too many transitions' }, invite())).res.sent).toEqual([
      { status: 500, reason: 'Server Internal Error', headers: undefined },
    ]);
  });

  test('sipflow unreachable → 503 + Retry-After; refused by the API (4xx) → 500', async () => {
    for (const [err, expected] of [
      [new TypeError('fetch failed'), { status: 503, reason: 'Service Unavailable', headers: { 'Retry-After': '5' } }],
      [new ExecuteError(401, 'execute: HTTP 401'), { status: 500, reason: 'Server Internal Error', headers: undefined }],
    ] as const) {
      const f = fakeSrf();
      attachDrachtio(
        f.srf,
        {
          run: async () => {
            throw err;
          },
        },
        { log: () => undefined },
      );
      const res = new FakeRes();
      await f.dispatch(request(noteRegister()), res);
      expect(res.sent).toEqual([expected]);
    }
  });

  test('a status drachtio-srf does not know falls back to its class', async () => {
    const res = new FakeRes();
    const strict: DrachtioResponse = {
      send: (s, r, o) => {
        if (s === 499) throw new Error('unknown');
        res.send(s, r, o);
      },
    };
    await applyOutcome(fakeSrf().srf, request(invite()), strict, { kind: 'reply', status: 499, reason: 'Custom' });
    expect(res.sent).toEqual([{ status: 400, reason: 'Custom', headers: undefined }]);
  });
});

// ---------------------------------------------------------------- with the engine

describe('the seed registration through drachtio (engine runner)', () => {
  test('REGISTER → 401 → REGISTER with credentials → 200 with the binding; the binding is stored', async () => {
    const text = readFileSync(path.join(__dirname, '../../../flows/registration.slid'), 'utf8');
    const loaded = loadSlidText(text, 'registration.slid', builtinRegistry());
    const ctx = testContext();
    const f = fakeSrf();
    attachDrachtio(f.srf, engineRunner({ service: loaded.service!, logic: 'registration', ctx }));

    const first = new FakeRes();
    await f.dispatch(request(noteRegister()), first);
    expect(first.sent[0].status).toBe(401);
    const challenge = first.sent[0].headers!['WWW-Authenticate'];
    expect(challenge).toMatch(/^Digest realm="nl\.netaxis\.be", nonce="[^"]+"/);

    const authorization = answerChallenge(challenge, { username: 'francesco', password: '123456', method: 'REGISTER', uri: 'sip:10.1.10.163' });
    const second = new FakeRes();
    await f.dispatch(request(noteRegister([`Authorization: ${authorization}`], 62651)), second);
    expect(second.sent).toEqual([
      { status: 200, reason: 'OK', headers: { Contact: '<sip:francesco@10.1.10.89:57806;ob>;expires=300', Date: expect.stringMatching(GMT) } },
    ]);
    const bindings = await ctx.location.lookup('francesco', null, new Date(ctx.clock.now()));
    expect(bindings.map((b) => b.contact)).toEqual(['sip:francesco@10.1.10.89:57806;ob']);
    expect(bindings[0].socket).toBe('udp:10.1.10.163:5060');

    const wrong = new FakeRes();
    const bad = answerChallenge(challenge, { username: 'francesco', password: 'nope', method: 'REGISTER', uri: 'sip:10.1.10.163', nc: 2 });
    await f.dispatch(request(noteRegister([`Authorization: ${bad}`], 62652)), wrong);
    expect(wrong.sent[0].status).toBe(401);
  });
});

// ---------------------------------------------------------------- HTTP runner

describe('httpRunner', () => {
  test('POSTs {cd, logic} with the bearer token; HTTP errors become ExecuteError', async () => {
    const calls: Array<{ url: string; init: RequestInit }> = [];
    const fakeFetch = (async (url: string, init: RequestInit) => {
      calls.push({ url, init });
      return new Response(JSON.stringify({ outcome: { kind: 'exit', status: null }, cd: {} }), { status: 200 });
    }) as unknown as typeof fetch;
    const r = await httpRunner({ url: 'http://sipflow:8080/api/v1/execute', token: 'tok', logic: 'pbx', fetch: fakeFetch }).run({
      requestMethod: 'OPTIONS',
      requestURI: 'sip:x',
      headers: {},
    });
    expect(r.outcome.kind).toBe('exit');
    expect(calls[0].url).toBe('http://sipflow:8080/api/v1/execute');
    expect(calls[0].init.headers).toMatchObject({ authorization: 'Bearer tok', 'content-type': 'application/json' });
    expect(JSON.parse(String(calls[0].init.body))).toEqual({ cd: { requestMethod: 'OPTIONS', requestURI: 'sip:x', headers: {} }, logic: 'pbx' });

    const failing = (async () => new Response('{"message":"invalid bearer token"}', { status: 401 })) as unknown as typeof fetch;
    await expect(
      httpRunner({ url: 'http://x', token: 't', fetch: failing }).run({ requestMethod: 'OPTIONS', requestURI: 'sip:x', headers: {} }),
    ).rejects.toMatchObject({ status: 401 });
  });
});
