/** Authentication on every route, the OpenAPI document, health, metrics, token file, log redaction. */
import { mkdtempSync, readFileSync, statSync } from 'fs';
import os from 'os';
import path from 'path';
import { Writable } from 'stream';
import { resolveApiToken } from '../../../server/http';
import { createLogger, requestLogger } from '../../../server/logger';
import { AUTH, apiFixture, type Fixture } from './support';

let f: Fixture;
beforeAll(async () => {
  f = await apiFixture();
});
afterAll(async () => {
  await f.close();
});

/** Every operation of the OpenAPI document, with its path parameters filled. */
function operations(doc: { paths: Record<string, Record<string, unknown>> }) {
  const ops: Array<{ method: string; url: string }> = [];
  for (const [p, methods] of Object.entries(doc.paths)) {
    for (const m of Object.keys(methods)) {
      const url = p.replace('{name}', 'pbx').replace('{version}', '1').replace('{id}', '1').replace('{ruid}', 'x');
      ops.push({ method: m.toUpperCase(), url });
    }
  }
  return ops;
}

describe('authentication', () => {
  test('every route but /health/* answers 401 + WWW-Authenticate: Bearer without a token, and with a wrong one', async () => {
    const doc = (await f.call({ method: 'GET', url: '/api/openapi.json' })).json();
    const ops = operations(doc);
    expect(ops.length).toBeGreaterThanOrEqual(28);
    let checked = 0;
    for (const op of ops) {
      const none = await f.app.inject({ method: op.method as 'GET', url: op.url, payload: op.method === 'GET' || op.method === 'DELETE' ? undefined : {} });
      const wrong = await f.app.inject({
        method: op.method as 'GET',
        url: op.url,
        headers: { authorization: 'Bearer wrong-token-wrong-token' },
        payload: op.method === 'GET' || op.method === 'DELETE' ? undefined : {},
      });
      if (op.url.startsWith('/health/')) {
        expect(none.statusCode).not.toBe(401);
        continue;
      }
      expect({ op, status: none.statusCode }).toEqual({ op, status: 401 });
      expect(none.headers['www-authenticate']).toBe('Bearer realm="sipflow"');
      expect(none.json().message).toMatch(/missing bearer token/);
      expect({ op, status: wrong.statusCode }).toEqual({ op, status: 401 });
      expect(wrong.headers['www-authenticate']).toBe('Bearer realm="sipflow", error="invalid_token"');
      checked++;
    }
    expect(checked).toBe(ops.length - 2);
  });

  test('a non-Bearer scheme is refused; the right token passes', async () => {
    const basic = await f.app.inject({ method: 'GET', url: '/api/v1/flows', headers: { authorization: 'Basic dXNlcjpwYXNz' } });
    expect(basic.statusCode).toBe(401);
    expect((await f.app.inject({ method: 'GET', url: '/api/v1/flows', headers: AUTH })).statusCode).toBe(200);
  });

  test('auth failures are counted and the token never appears in the logs', async () => {
    await f.app.inject({ method: 'GET', url: '/api/v1/flows', headers: { authorization: 'Bearer another-wrong-token-x' } });
    const text = (await f.call({ method: 'GET', url: '/metrics' })).body;
    expect(text).toMatch(/sipflow_auth_failures_total\{kind="api"\} [1-9]/);
    expect(f.logs.join('')).not.toContain('another-wrong-token-x');
    expect(f.logs.join('')).not.toContain(AUTH.authorization.slice(7));
    expect(f.logs.join('')).toContain('API authentication failed');
  });

  test('without http.token, a token is generated once into <dataDir>/api-token with mode 0600', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sipflow-token-'));
    const t1 = resolveApiToken({ dataDir: dir });
    expect(t1).toMatch(/^[0-9a-f]{64}$/);
    const file = path.join(dir, 'api-token');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readFileSync(file, 'utf8').trim()).toBe(t1);
    expect(resolveApiToken({ dataDir: dir })).toBe(t1);
    expect(resolveApiToken({ dataDir: dir, token: 'configured-token-123456' })).toBe('configured-token-123456');
  });
});

describe('OpenAPI', () => {
  test('served at /api/openapi.json with bearer security, every route documented with its schemas', async () => {
    const r = await f.call({ method: 'GET', url: '/api/openapi.json' });
    expect(r.statusCode).toBe(200);
    const doc = r.json();
    expect(doc.openapi).toBe('3.0.3');
    expect(doc.components.securitySchemes.bearer).toEqual({ type: 'http', scheme: 'bearer' });
    expect(doc.security).toEqual([{ bearer: [] }]);
    expect(doc.paths['/health/live'].get.security).toEqual([]);
    for (const p of [
      '/api/v1/flows',
      '/api/v1/flows/{name}',
      '/api/v1/flows/validate',
      '/api/v1/flows/import',
      '/api/v1/flows/{name}/releases',
      '/api/v1/flows/{name}/releases/{version}/activate',
      '/api/v1/flows/{name}/export',
      '/api/v1/flows/{name}/rename',
      '/api/v1/simulate',
      '/api/v1/execute',
      '/api/v1/customers',
      '/api/v1/customers/{id}',
      '/api/v1/numbers',
      '/api/v1/numbers/{id}',
      '/api/v1/import',
      '/api/v1/customers.csv',
      '/api/v1/numbers.csv',
      '/api/v1/registrations',
      '/api/v1/registrations/{ruid}',
      '/health/ready',
      '/metrics',
    ]) {
      expect(doc.paths[p]).toBeDefined();
    }
    for (const [p, methods] of Object.entries(doc.paths as Record<string, Record<string, { responses: Record<string, unknown> }>>)) {
      for (const [m, op] of Object.entries(methods))
        expect({ p, m, has200: Object.keys(op.responses).some((c) => /^2/.test(c)) }).toEqual({ p, m, has200: true });
    }
    expect(doc.paths['/api/v1/execute'].post.requestBody.content['application/json'].schema.required).toEqual(['cd']);
  });
});

describe('health and metrics', () => {
  test('live and ready need no token', async () => {
    const live = await f.app.inject({ method: 'GET', url: '/health/live' });
    expect(live.statusCode).toBe(200);
    expect(live.json()).toEqual({ status: 'ok' });
    const ready = await f.app.inject({ method: 'GET', url: '/health/ready' });
    expect(ready.statusCode).toBe(200);
    expect(ready.json()).toEqual({ status: 'ok', checks: { directory: 'ok', location: 'ok' } });
  });

  test('metrics: Prometheus text with the request counters and latency histograms', async () => {
    await f.call({ method: 'POST', url: '/api/v1/execute', payload: { cd: { requestMethod: 'OPTIONS', requestURI: 'sip:x@example.com', callId: 'm1' } } });
    const r = await f.call({ method: 'GET', url: '/metrics' });
    expect(r.statusCode).toBe(200);
    expect(r.headers['content-type']).toMatch(/^text\/plain/);
    expect(r.body).toContain('# TYPE sipflow_requests_total counter');
    expect(r.body).toMatch(/sipflow_requests_total\{method="OPTIONS",outcome="\w+",status="\w+"\} 1/);
    expect(r.body).toContain('# TYPE sipflow_flow_execution_seconds histogram');
    expect(r.body).toContain('# TYPE sipflow_directory_query_seconds histogram');
    expect(r.body).toContain('# TYPE sipflow_location_seconds histogram');
    expect(r.body).toContain('# TYPE sipflow_bindings gauge');
    expect(r.body).toContain('# TYPE sipflow_auth_failures_total counter');
    expect(r.body).toMatch(/sipflow_http_requests_total\{method="POST",route="\/api\/v1\/execute",status="200"\} 1/);
  });
});

describe('readiness with a store down', () => {
  test('503 naming the directory when its database is closed', async () => {
    const g = await apiFixture();
    try {
      await g.runtime.knex.destroy();
      const r = await g.app.inject({ method: 'GET', url: '/health/ready' });
      expect(r.statusCode).toBe(503);
      const body = r.json();
      expect(body.status).toBe('unavailable');
      expect(body.checks.directory).toMatch(/^down: /);
      expect(body.checks.location).toBe('ok');
    } finally {
      await g.close();
    }
  });

  test('metricsPublic serves /metrics without the token, publicPrefixes their paths (and nothing else)', async () => {
    const g = await apiFixture({ api: { metricsPublic: true, publicPrefixes: ['/designer/'] } });
    try {
      expect((await g.app.inject({ method: 'GET', url: '/metrics' })).statusCode).toBe(200);
      expect((await g.app.inject({ method: 'GET', url: '/designer/index.html' })).statusCode).toBe(200); // the web app's files, public
      expect((await g.app.inject({ method: 'GET', url: '/designer-not/x' })).statusCode).toBe(401);
      expect((await g.app.inject({ method: 'GET', url: '/api/v1/flows' })).statusCode).toBe(401);
    } finally {
      await g.close();
    }
  });
});

describe('logger', () => {
  test('redacts credentials headers, passwords, ha1, tokens and the nonce secret; child lines carry the Call-ID', () => {
    const lines: string[] = [];
    const logger = createLogger({
      level: 'info',
      destination: new Writable({
        write(c, _e, cb) {
          lines.push(String(c));
          cb();
        },
      }),
    });
    const log = requestLogger(logger, 'abc@host');
    log.info(
      {
        headers: { authorization: 'Digest username="u", response="r"', 'proxy-authorization': 'Digest x' },
        customer: { password: 'secret-pw', ha1: 'deadbeef' },
        token: 'tkn-123',
        config: { auth: { nonceSecret: 'nsecret' } },
        cd: { headers: { authorization: ['Digest y'] } },
        password: 'top',
      },
      'hello',
    );
    const line = JSON.parse(lines[0]);
    expect(line.callId).toBe('abc@host');
    expect(line.msg).toBe('hello');
    const text = lines[0];
    for (const secret of ['Digest username', 'Digest x', 'secret-pw', 'deadbeef', 'tkn-123', 'nsecret', 'Digest y', '"top"'])
      expect(text).not.toContain(secret);
    expect(line.headers.authorization).toBe('[redacted]');
    expect(line.customer.password).toBe('[redacted]');
  });
});
