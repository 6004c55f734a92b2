/**
 * query.httpRequest against local fastify servers (HTTP and HTTPS on 127.0.0.1, random ports),
 * through the real undici adapter (services/http/client.ts): JSON, XML and text answers, failure
 * statuses, a server that never answers, bodies over the cap, a refused connection, certificates,
 * and placeholder values trying to change the request, as the server received it.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import type { RunContext } from '../../../engine/types';
import { createHttpClient, type HttpClient } from '../../../services/http/client';
import { createPki, type Pki } from '../../support/pki';
import { testContext } from '../../support/context';
import { docOf, reply, runNodes, setVars, start, type NodeSpec } from '../../unit/engine/helpers';
import { runCli } from '../../support/cli';

const CAP = 4096;

interface Seen {
  method: string;
  url: string;
  headers: Record<string, unknown>;
  body: string;
}

let app: FastifyInstance;
let base: string;
/** Requests the server received, newest last. */
const seen: Seen[] = [];
/** Requests to /hang the server holds; each resolves when the client goes away. */
const hanging: Array<Promise<void>> = [];

function routes(f: FastifyInstance): void {
  f.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => done(null, body));
  f.addHook('onRequest', async (req) => {
    seen.push({ method: req.method, url: req.raw.url!, headers: req.headers, body: '' });
  });
  f.addHook('preHandler', async (req) => {
    seen[seen.length - 1].body = typeof req.body === 'string' ? req.body : req.body === undefined ? '' : JSON.stringify(req.body);
  });
  f.get('/route', async (req) => ({ route: [{ uri: `sip:${(req.query as { called: string }).called}@gw.example`, weight: 10 }], ok: true, none: null }));
  f.get('/xml', async (_req, r) =>
    r
      .type('application/xml')
      .send('<routing><route uri="sip:1000@gw.example" weight="10">primary</route><route uri="sip:1000@gw2.example">backup</route></routing>'),
  );
  f.get('/text', async (_req, r) => r.type('text/plain').send('sip:1000@gw.example'));
  f.get('/not-json', async (_req, r) => r.type('application/json').send('{"route": '));
  f.get('/status/:code', async (req, r) => r.code(Number((req.params as { code: string }).code)).send({ error: 'no' }));
  f.get('/hang', (req, r) => {
    r.hijack();
    hanging.push(new Promise((resolve) => req.raw.socket.once('close', () => resolve())));
  });
  f.get('/huge', async (_req, r) => r.type('text/plain').send('x'.repeat(CAP + 1)));
  f.get('/huge-stream', (_req, r) => {
    r.hijack();
    r.raw.writeHead(200, { 'content-type': 'text/plain' }); // chunked: no Content-Length announced
    const chunk = 'y'.repeat(1024);
    for (let i = 0; i < 8; i++) r.raw.write(chunk);
    r.raw.end();
  });
  f.all('/echo/*', async (req) => ({ url: req.raw.url, query: req.query, params: req.params }));
}

const node = (values: Record<string, unknown>): NodeSpec[] => [
  start(1),
  [1, 'query.httpRequest', { ifSuccess: 2, ifFailure: 3, ifTimeout: 4, ...values }],
  reply(2, 200, 'success'),
  reply(3, 503, 'failure'),
  reply(4, 504, 'timeout'),
];

let client: HttpClient;
let ctx: RunContext;

beforeAll(async () => {
  app = Fastify({ forceCloseConnections: true });
  routes(app);
  base = await app.listen({ host: '127.0.0.1', port: 0 });
  client = createHttpClient({ maxResponseBytes: CAP, connectionsPerOrigin: 4 });
  ctx = { ...testContext(), http: client };
});

afterAll(async () => {
  await client.close();
  await app.close();
});

const run = (values: Record<string, unknown>, input: Record<string, unknown> = {}, c: RunContext = ctx) => runNodes(node(values), input, c, { trace: true });

describe('query.httpRequest answers', () => {
  test('JSON: JSON Pointers into variables (objects as JSON text), status, elapsed time and summary; ifSuccess', async () => {
    const r = await run(
      {
        url: `${base}/route?called=[called]`,
        storeInto: [
          { path: '/route/0/uri', variable: 'target' },
          { path: '/route/0/weight', variable: 'weight' },
          { path: '/ok', variable: 'ok' },
          { path: '/none', variable: 'none' },
          { path: '/route/0', variable: 'first' },
        ],
      },
      { called: '1000' },
    );
    expect(r.outcome).toMatchObject({ status: 200, reason: 'success' });
    const step = r.trace![1];
    expect(step.exit).toBe('ifSuccess');
    expect(step.set).toMatchObject({
      target: 'sip:1000@gw.example',
      weight: 10,
      ok: true,
      none: null,
      first: '{"uri":"sip:1000@gw.example","weight":10}',
      httpStatus: 200,
      httpSummary: expect.stringMatching(new RegExp(`^GET ${base}/route\\?called=1000 → 200 in \\d+ ms$`)),
    });
    expect(typeof step.set!.httpElapsedMs).toBe('number');
    expect(seen[seen.length - 1]).toMatchObject({ method: 'GET', url: '/route?called=1000' });
  });

  test('XML: XPath node values, attributes, numbers; the whole body with an empty path', async () => {
    const r = await run({
      url: `${base}/xml`,
      storeInto: [
        { path: '/routing/route[1]/@uri', variable: 'target' },
        { path: '/routing/route[2]', variable: 'backup' },
        { path: 'count(//route)', variable: 'routes' },
        { path: '', variable: 'raw' },
      ],
    });
    expect(r.trace![1].exit).toBe('ifSuccess');
    expect(r.cd.vars).toMatchObject({ target: 'sip:1000@gw.example', backup: 'backup', routes: 2, raw: expect.stringMatching(/^<routing>/) });
  });

  test('text: the whole body; a format forced against the Content-Type', async () => {
    let r = await run({ url: `${base}/text`, storeInto: [{ variable: 'target' }] });
    expect(r.trace![1].exit).toBe('ifSuccess');
    expect(r.cd.vars.target).toBe('sip:1000@gw.example');
    r = await run({ url: `${base}/text`, responseFormat: 'json', storeInto: [{ path: '/x', variable: 'target' }] });
    expect(r.trace![1].exit).toBe('ifFailure');
    expect(r.cd.vars.httpSummary).toMatch(/→ 200 in \d+ ms; the body is not JSON \(/);
    expect(r.cd.vars.target).toBeUndefined();
  });

  test('a path matching nothing: ifFailure, the summary names it, nothing stored (all or none)', async () => {
    const r = await run({
      url: `${base}/route?called=1`,
      storeInto: [
        { path: '/ok', variable: 'ok' },
        { path: '/route/5/uri', variable: 'target' },
      ],
    });
    expect(r.trace![1]).toMatchObject({
      exit: 'ifFailure',
      set: { httpStatus: 200, httpSummary: expect.stringMatching(/; \/route\/5\/uri matched nothing$/) },
    });
    expect(r.cd.vars.ok).toBeUndefined();
    const x = await run({ url: `${base}/xml`, storeInto: [{ path: '/routing/none', variable: 'v' }] });
    expect(x.cd.vars.httpSummary).toMatch(/; \/routing\/none matched nothing$/);
  });

  test('an unreadable body: ifFailure', async () => {
    const r = await run({ url: `${base}/not-json`, storeInto: [{ path: '/route', variable: 'v' }] });
    expect(r.trace![1].exit).toBe('ifFailure');
    expect(r.cd.vars.httpSummary).toMatch(/; the body is not JSON/);
    // an XPath that compiles but fails on evaluation (an unknown function)
    const x = await run({ url: `${base}/xml`, storeInto: [{ path: 'nope(/routing)', variable: 'v' }] });
    expect(x.trace![1].exit).toBe('ifFailure');
    expect(x.cd.vars.httpSummary).toMatch(/; the body could not be read \(/);
  });

  test.each([404, 500, 302])('status %i: ifFailure with the status written', async (code) => {
    const r = await run({ url: `${base}/status/${code}`, storeInto: [{ path: '/error', variable: 'v' }] });
    expect(r.trace![1]).toMatchObject({ exit: 'ifFailure', set: { httpStatus: code } });
    expect(r.cd.vars.httpSummary).toMatch(new RegExp(`→ ${code} in \\d+ ms$`));
    expect(r.cd.vars.v).toBeUndefined();
  });

  test('a server that never answers: ifTimeout after timeoutMs, the connection dropped', async () => {
    const before = hanging.length;
    const r = await run({ url: `${base}/hang`, timeoutMs: 50 });
    expect(r.trace![1]).toMatchObject({ exit: 'ifTimeout', set: { httpStatus: 0, httpSummary: `GET ${base}/hang → timeout after 50 ms` } });
    expect(hanging.length).toBe(before + 1);
    await hanging[before]; // the server saw the client go away
  });

  test('a body over nodes.http.maxResponseBytes: ifFailure, announced or streamed', async () => {
    let r = await run({ url: `${base}/huge` });
    expect(r.trace![1].exit).toBe('ifFailure');
    expect(r.cd.vars.httpSummary).toMatch(/→ failed: response body of 4097 bytes, over nodes\.http\.maxResponseBytes \(4096\)/);
    r = await run({ url: `${base}/huge-stream` });
    expect(r.trace![1].exit).toBe('ifFailure');
    expect(r.cd.vars.httpSummary).toMatch(/→ failed: response body over nodes\.http\.maxResponseBytes \(4096\)/);
    // the pool still works after the dropped connections
    r = await run({ url: `${base}/text` });
    expect(r.trace![1].exit).toBe('ifSuccess');
  });

  test('more calls at once than pooled connections: each gets its own answer', async () => {
    const called = Array.from({ length: 24 }, (_, i) => String(1000 + i));
    const runs = await Promise.all(
      called.map((c) => run({ url: `${base}/route?called=[called]`, storeInto: [{ path: '/route/0/uri', variable: 't' }] }, { called: c })),
    );
    expect(runs.map((r) => r.cd.vars.t)).toEqual(called.map((c) => `sip:${c}@gw.example`));
  });

  test('HEAD: no body to read, the status decides', async () => {
    const r = await run({ method: 'HEAD', url: `${base}/text` });
    expect(r.trace![1]).toMatchObject({ exit: 'ifSuccess', set: { httpStatus: 200 } });
    expect(seen[seen.length - 1].method).toBe('HEAD');
  });

  test('a refused connection: ifFailure', async () => {
    const port = await closedPort();
    const r = await run({ url: `http://127.0.0.1:${port}/route` });
    expect(r.trace![1]).toMatchObject({ exit: 'ifFailure', set: { httpStatus: 0 } });
    expect(r.cd.vars.httpSummary).toMatch(new RegExp(`^GET http://127.0.0.1:${port}/route → failed: .*ECONNREFUSED`));
  });
});

describe('query.httpRequest: placeholder values cannot change the request (as the server received it)', () => {
  test('URL: a value is one path segment or one query value, whatever it holds', async () => {
    const called = '../admin?x=1&role=admin#frag';
    const r = await run(
      {
        url: `${base}/echo/route/[called]?from=[calling]&n=1`,
        storeInto: [
          { path: '/params/*', variable: 'path' },
          { path: '/query', variable: 'query' },
        ],
      },
      { called, calling: 'a&n=2 b/c' },
    );
    expect(r.trace![1].exit).toBe('ifSuccess');
    expect(seen[seen.length - 1].url).toBe(`/echo/route/${encodeURIComponent(called)}?from=${encodeURIComponent('a&n=2 b/c')}&n=1`);
    // as the server decoded it: one path segment, two query parameters
    expect(r.cd.vars.path).toBe(`route/${called}`);
    expect(JSON.parse(r.cd.vars.query as string)).toEqual({ from: 'a&n=2 b/c', n: '1' });
  });

  test('headers: the Authorization value reaches the server and never the trace; CR/LF in a value is refused, nothing sent', async () => {
    const count = seen.length;
    // the token is a variable of the logic (set first), so [authToken] is a placeholder
    const nodes = (calling: string) =>
      runNodes(
        [
          start(5),
          setVars(5, [{ variable: 'authToken', value: 'tok-123' }], 1),
          ...node({ url: `${base}/echo/h`, headers: { Authorization: 'Bearer [authToken]', 'X-Caller': '[calling]' } }).slice(1),
        ],
        { calling },
        ctx,
        { trace: true },
      );
    let r = await nodes('alice');
    expect(r.trace![2].exit).toBe('ifSuccess');
    expect(seen[seen.length - 1].headers).toMatchObject({ authorization: 'Bearer tok-123', 'x-caller': 'alice' });
    expect(JSON.stringify(r.trace![2])).not.toContain('tok-123');
    r = await nodes('alice\r\nX-Admin: yes');
    expect(r.trace![2].exit).toBe('ifFailure');
    expect(JSON.stringify(r.trace![2])).not.toContain('tok-123');
    expect(seen.length).toBe(count + 1);
  });

  test('JSON body: a value stays inside its string; form body: a value stays one field', async () => {
    const evil = 'x", "admin": true, "y": "';
    let r = await run(
      { method: 'POST', url: `${base}/echo/json`, headers: { 'Content-Type': 'application/json' }, body: '{"called": "[called]", "admin": false}' },
      { called: evil },
    );
    expect(r.trace![1].exit).toBe('ifSuccess');
    expect(JSON.parse(seen[seen.length - 1].body)).toEqual({ called: evil, admin: false });
    r = await run(
      { method: 'PUT', url: `${base}/echo/form`, headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'called=[called]&admin=0' },
      { called: '1&admin=1' },
    );
    expect(r.trace![1].exit).toBe('ifSuccess');
    expect(Object.fromEntries(new URLSearchParams(seen[seen.length - 1].body))).toEqual({ called: '1&admin=1', admin: '0' });
  });
});

// the directory on the suites' PostgreSQL (PGlite would take seconds to start)
test('sipflow run: the runtime wires the HTTP client; the trace shows the request and what it stored', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sipflow-http-run-'));
  try {
    const file = path.join(dir, 'http.slid');
    writeFileSync(file, JSON.stringify(docOf(node({ url: `${base}/route?called=[called]`, storeInto: [{ path: '/route/0/uri', variable: 'target' }] }))));
    const cd = path.join(dir, 'cd.json');
    writeFileSync(cd, JSON.stringify({ called: '3225551000' }));
    const run = await runCli('run', file, '--logic', '1', '--cd', cd, '--trace', '--data-dir', path.join(dir, 'data'), '--directory-url', process.env.PG_URL!);
    expect(run.code).toBe(0);
    const printed = JSON.parse(run.out);
    expect(printed.outcome).toMatchObject({ status: 200, reason: 'success' });
    expect(printed.trace[1]).toMatchObject({
      type: 'query.httpRequest',
      exit: 'ifSuccess',
      set: {
        target: 'sip:3225551000@gw.example',
        httpStatus: 200,
        httpSummary: expect.stringMatching(/^GET http:\/\/127\.0\.0\.1:\d+\/route\?called=3225551000 → 200 in \d+ ms$/),
      },
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

describe('query.httpRequest over HTTPS', () => {
  let pki: Pki;
  let tlsApp: FastifyInstance;
  let selfSignedApp: FastifyInstance;
  let trusting: HttpClient;

  beforeAll(async () => {
    pki = createPki();
    const issued = pki.issue('api', 'localhost');
    const self = pki.selfSigned('self', 'localhost');
    tlsApp = Fastify({ https: { cert: readFileSync(issued.cert), key: readFileSync(issued.key) }, forceCloseConnections: true });
    routes(tlsApp);
    selfSignedApp = Fastify({ https: { cert: readFileSync(self.cert), key: readFileSync(self.key) }, forceCloseConnections: true });
    routes(selfSignedApp);
    await tlsApp.listen({ host: '127.0.0.1', port: 0 });
    await selfSignedApp.listen({ host: '127.0.0.1', port: 0 });
    trusting = createHttpClient({ maxResponseBytes: CAP, connectionsPerOrigin: 2, caFile: pki.ca });
  });

  afterAll(async () => {
    await trusting.close();
    await tlsApp.close();
    await selfSignedApp.close();
    pki.remove();
  });

  const url = (f: FastifyInstance, path: string) => `https://localhost:${(f.server.address() as net.AddressInfo).port}${path}`;

  test('a server whose certificate nodes.http.caFile vouches for: ifSuccess', async () => {
    const r = await run({ url: url(tlsApp, '/text'), storeInto: [{ variable: 'v' }] }, {}, { ...ctx, http: trusting });
    expect(r.trace![1].exit).toBe('ifSuccess');
    expect(r.cd.vars.v).toBe('sip:1000@gw.example');
  });

  test('without caFile, or a self-signed certificate outside it: ifFailure naming the certificate problem', async () => {
    let r = await run({ url: url(tlsApp, '/text') });
    expect(r.trace![1].exit).toBe('ifFailure');
    expect(r.cd.vars.httpSummary).toMatch(/→ failed: .*certificate/i);
    r = await run({ url: url(selfSignedApp, '/text') }, {}, { ...ctx, http: trusting });
    expect(r.trace![1].exit).toBe('ifFailure');
    expect(r.cd.vars.httpSummary).toMatch(/→ failed: .*self[- ]signed/i);
  });

  test('a caFile that is not PEM certificates is refused when the client is built', () => {
    expect(() => createHttpClient({ maxResponseBytes: 1, connectionsPerOrigin: 1, caFile: `${pki.dir}/api.key` })).toThrow(
      /nodes\.http\.caFile \(.*\): not PEM certificates/,
    );
    expect(() => createHttpClient({ maxResponseBytes: 1, connectionsPerOrigin: 1, caFile: `${pki.dir}/missing.pem` })).toThrow(/cannot read: ENOENT/);
  });
});

/** A port nothing listens on: bound, then closed. */
async function closedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address() as net.AddressInfo;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}
