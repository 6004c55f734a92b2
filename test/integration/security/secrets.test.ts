/**
 * Secrets against a real `sipflow serve` (issue 11, point 5): the API token never reaches a log
 * line (the designer's `?token=` link, query strings, 404s); /execute and /simulate answer no
 * password, no credentials header, no digest response unless the token holder asks
 * (`revealSecrets`, `?reveal=secrets`: the control case); no route answers anything without the
 * token; the data dir is private (folders 0700, files 0600), PGlite's files included, and a data
 * dir found with looser permissions is fixed with one warning.
 */
import { chmodSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { startServe, type ServeProcess } from '../../support/serve';
import { answerChallenge, sampleRegister } from '../../support/sip';

const PASSWORD = '123456'; // the note's sample subscriber (francesco)
const UA = { username: 'francesco', password: PASSWORD, method: 'REGISTER', uri: 'sip:10.1.10.163' };
const REDACTED = '[redacted]';
const GARBAGE =
  'Digest username="francesco", realm="nl.netaxis.be", nonce="garbage-nonce", uri="sip:10.1.10.163", ' +
  'response="feedfacefeedfacefeedfacefeedface", cnonce="c0ffee", nc=00000001, qop=auth, algorithm=MD5';

/** Every file and folder under `dir` with its permission bits. */
function walk(dir: string): Array<{ path: string; mode: number; dir: boolean }> {
  const out = [{ path: '.', mode: statSync(dir).mode & 0o777, dir: true }];
  const visit = (abs: string, rel: string) => {
    for (const e of readdirSync(abs, { withFileTypes: true })) {
      if (e.isSymbolicLink()) continue;
      const p = path.join(abs, e.name);
      const r = path.join(rel, e.name);
      let st;
      try {
        st = statSync(p);
      } catch {
        continue;
      } // removed meanwhile (PGlite's temporary files)
      out.push({ path: r, mode: st.mode & 0o777, dir: st.isDirectory() });
      if (st.isDirectory()) visit(p, r);
    }
  };
  visit(dir, '');
  return out;
}
const loose = (dir: string) =>
  walk(dir)
    .filter((e) => (e.mode & 0o077) !== 0)
    .map((e) => `${e.path} ${e.mode.toString(8)}`);

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- answers are probed field by field
async function json(r: Response): Promise<any> {
  const text = await r.text();
  try {
    return JSON.parse(text);
  } catch {
    throw new Error(`${r.status}: ${text}`);
  }
}

let srv: ServeProcess;
beforeAll(async () => {
  srv = await startServe();
}, 90_000);
afterAll(async () => {
  await srv?.stop();
});

const post = (p: string, body: unknown) => srv.api(p, { method: 'POST', body: JSON.stringify(body) });

describe('the API token in no log line', () => {
  test('the designer link with ?token=, API calls with query strings, a 404, a refused call: the paths are logged, never the token', async () => {
    const base = `http://127.0.0.1:${srv.httpPort}`;
    // a browser following the documented link sends no Authorization header
    for (const p of [`/designer/?token=${srv.token}`, `/designer?token=${srv.token}`, `/designer/index.html?token=${srv.token}#flow=registration`]) {
      expect((await fetch(base + p, { redirect: 'manual' })).status).toBeLessThan(500);
    }
    // the page never passes its URL (with the token) on as a Referer
    const page = await fetch(`${base}/designer/?token=${srv.token}`);
    if (page.status === 200) expect(page.headers.get('referrer-policy')).toBe('no-referrer');
    expect((await srv.api(`/api/v1/flows?token=${srv.token}`)).status).toBe(200);
    // a parameter the route does not know is refused (400): the answer does not echo its value either
    const refused = await srv.api(`/api/v1/customers?search=fran&limit=5&token=${srv.token}`);
    expect(refused.status).toBe(400);
    expect(await refused.text()).not.toContain(srv.token);
    expect((await srv.api(`/api/v1/nowhere?token=${srv.token}`)).status).toBe(404);
    expect((await fetch(`${base}/api/v1/flows?token=${srv.token}`)).status).toBe(401);
    expect((await fetch(`${base}/api/v1/flows?access_token=${srv.token}`, { headers: { authorization: `Bearer ${srv.token}x` } })).status).toBe(401);
    await new Promise((r) => setTimeout(r, 300)); // the last lines reach stdout
    const out = srv.output();
    expect(out).toContain('/designer/?token=[redacted]'); // the path is there for the operator
    expect(out).toContain('/api/v1/customers?search=fran&limit=5&token=[redacted]');
    for (const line of out.split('\n')) expect(line).not.toContain(srv.token);
    expect(out).not.toContain(srv.token.slice(0, 24));
  });
});

describe('no secret in /simulate and /execute answers unless asked', () => {
  /** No password, no Authorization value, no digest response anywhere in the answer. */
  const expectNoSecret = (answer: unknown, authorization?: string) => {
    const text = JSON.stringify(answer);
    expect(text).not.toContain(PASSWORD);
    expect(text).not.toContain('feedfacefeedface');
    if (authorization) {
      expect(text).not.toContain(authorization);
      expect(text).not.toContain(/response="([0-9a-f]+)"/.exec(authorization)![1]);
    }
  };

  test('simulate, correct credentials (the seed three passes): password and Authorization redacted in cd and trace', async () => {
    const first = await json(await post('/api/v1/simulate', { flow: 'registration', logic: 'registration', cd: sampleRegister({ 'Call-ID': 'sec-sim-1' }) }));
    expect(first.outcome).toMatchObject({ kind: 'challenge', status: 401 });
    const authorization = answerChallenge(first.outcome.challenges[0], UA);
    const r = await post('/api/v1/simulate', {
      flow: 'registration',
      logic: 'registration',
      cd: sampleRegister({ 'Call-ID': 'sec-sim-1', CSeq: '2 REGISTER', Authorization: authorization }),
    });
    expect(r.status).toBe(200);
    const b = await json(r);
    expect(b.outcome).toMatchObject({ kind: 'register', status: 200 });
    expect(b.secretsRevealed).toBe(false);
    expect(b.cd.password).toBe(REDACTED);
    expect(b.cd.headers.authorization).toEqual([REDACTED]);
    expect(b.cd.customer_name).toBe('Netaxis NL'); // the rest is intact
    expect(b.cd.authUsername).toBe('francesco');
    const sets = b.trace.filter((s: { set?: Record<string, unknown> }) => s.set && 'password' in s.set);
    expect(sets.length).toBeGreaterThan(0);
    for (const s of sets) expect(s.set.password).toBe(REDACTED);
    expectNoSecret(b, authorization);
  });

  test('simulate, garbage digest: challenged again, the password it read is redacted', async () => {
    const r = await post('/api/v1/simulate', {
      flow: 'registration',
      logic: 'registration',
      cd: sampleRegister({ 'Call-ID': 'sec-sim-2', Authorization: GARBAGE }),
    });
    expect(r.status).toBe(200);
    const b = await json(r);
    expect(b.outcome).toMatchObject({ kind: 'challenge', status: 401 });
    expect(b.cd.password).toBe(REDACTED);
    expect(b.cd.headers.authorization).toEqual([REDACTED]);
    expectNoSecret(b, GARBAGE);
  });

  test('execute, correct credentials and a garbage digest: no secret in the answer', async () => {
    const first = await json(await post('/api/v1/execute', { logic: 'registration', cd: sampleRegister({ 'Call-ID': 'sec-exe-1' }) }));
    expect(first.outcome).toMatchObject({ kind: 'challenge', status: 401 });
    const authorization = answerChallenge(first.outcome.challenges[0], UA);
    const ok = await json(
      await post('/api/v1/execute', {
        logic: 'registration',
        cd: sampleRegister({ 'Call-ID': 'sec-exe-1', CSeq: '2 REGISTER', Authorization: authorization }),
      }),
    );
    expect(ok.outcome).toMatchObject({ kind: 'register', status: 200 });
    expect(ok.cd.password).toBe(REDACTED);
    expect(ok.cd.headers.authorization).toEqual([REDACTED]);
    expectNoSecret(ok, authorization);

    const bad = await json(await post('/api/v1/execute', { logic: 'registration', cd: sampleRegister({ 'Call-ID': 'sec-exe-2', Authorization: GARBAGE }) }));
    expect(bad.outcome).toMatchObject({ kind: 'challenge', status: 401 });
    expect(bad.cd.password).toBe(REDACTED);
    expectNoSecret(bad, GARBAGE);
  });

  test('control: the token holder asking explicitly (revealSecrets, ?reveal=secrets) gets them', async () => {
    const sim = await json(
      await post('/api/v1/simulate', {
        flow: 'registration',
        logic: 'registration',
        cd: sampleRegister({ 'Call-ID': 'sec-rev-1', Authorization: GARBAGE }),
        revealSecrets: true,
      }),
    );
    expect(sim.secretsRevealed).toBe(true);
    expect(sim.cd.password).toBe(PASSWORD);
    expect(sim.cd.headers.authorization).toEqual([GARBAGE]);
    expect(sim.trace.find((s: { set?: Record<string, unknown> }) => s.set?.password)?.set.password).toBe(PASSWORD);

    const first = await json(await post('/api/v1/execute?reveal=secrets', { logic: 'registration', cd: sampleRegister({ 'Call-ID': 'sec-rev-2' }) }));
    const authorization = answerChallenge(first.outcome.challenges[0], UA);
    const exe = await json(
      await post('/api/v1/execute?reveal=secrets', {
        logic: 'registration',
        cd: sampleRegister({ 'Call-ID': 'sec-rev-2', CSeq: '2 REGISTER', Authorization: authorization }),
      }),
    );
    expect(exe.outcome).toMatchObject({ kind: 'register', status: 200 });
    expect(exe.secretsRevealed).toBe(true);
    expect(exe.cd.password).toBe(PASSWORD);
    expect(exe.cd.headers.authorization).toEqual([authorization]);

    // an unknown reveal value is refused, not taken as a yes
    expect((await post('/api/v1/execute?reveal=yes', { logic: 'registration', cd: sampleRegister() })).status).toBe(400);
    // the flag is documented in the OpenAPI document
    const doc = await json(await srv.api('/api/openapi.json'));
    const simulate = doc.paths['/api/v1/simulate'].post;
    expect(simulate.requestBody.content['application/json'].schema.properties.revealSecrets).toMatchObject({ type: 'boolean', default: false });
    expect(simulate.parameters).toEqual(expect.arrayContaining([expect.objectContaining({ name: 'reveal', in: 'query' })]));
    expect(doc.paths['/api/v1/execute'].post.requestBody.content['application/json'].schema.properties.revealSecrets).toBeDefined();
  });

  test('the passwords and credentials of these runs reached no log line', () => {
    const out = srv.output();
    expect(out).not.toContain('feedfacefeedface');
    expect(out).not.toMatch(/"password":"123456"/);
    expect(out).not.toContain('Digest username=');
  });
});

describe('no token, nothing', () => {
  test('every route of the OpenAPI document answers 401 without the token, with no secret in the body', async () => {
    const doc = await json(await srv.api('/api/openapi.json'));
    const base = `http://127.0.0.1:${srv.httpPort}`;
    const routes: Array<[string, string]> = [];
    for (const [p, ops] of Object.entries(doc.paths as Record<string, Record<string, unknown>>)) {
      for (const method of Object.keys(ops)) routes.push([method.toUpperCase(), p]);
    }
    expect(routes.length).toBeGreaterThan(20);
    const open = routes.filter(([, p]) => p.startsWith('/health/'));
    expect(open.map(([, p]) => p).sort()).toEqual(['/health/live', '/health/ready']);
    for (const [method, p] of routes.filter((r) => !open.includes(r))) {
      const url =
        base +
        p.replace(/\{[^}]+\}/g, (m) => (/version/i.test(m) ? '1' : /id$/i.test(m.slice(1, -1)) ? '1' : 'registration')) +
        '?includePasswords=true&reveal=secrets';
      const body =
        method === 'GET' || method === 'HEAD' || method === 'DELETE'
          ? undefined
          : JSON.stringify({ logic: 'registration', cd: sampleRegister({ Authorization: GARBAGE }), revealSecrets: true });
      const r = await fetch(url, { method, body, headers: body ? { 'content-type': 'application/json' } : {} });
      const text = await r.text();
      expect(`${method} ${p} → ${r.status}`).toBe(`${method} ${p} → 401`);
      expect(text).not.toContain(PASSWORD);
      expect(text).not.toContain(srv.token);
    }
    expect((await fetch(`${base}/metrics`)).status).toBe(401);
  });
});

describe('data dir permissions', () => {
  test('memory directory: the data dir 0700, api-token and nonce-secret 0600, nothing for group/other', () => {
    const entries = walk(srv.dataDir);
    expect(entries.find((e) => e.path === '.')!.mode).toBe(0o700);
    expect(entries.find((e) => e.path === 'api-token')!.mode).toBe(0o600);
    expect(entries.find((e) => e.path === 'nonce-secret')!.mode).toBe(0o600);
    expect(loose(srv.dataDir)).toEqual([]);
  });

  test("PGlite in the data dir (as `npm start`), found loose: fixed at start with one warning; PGlite's files and WAL private after use", async () => {
    const pg = await startServe({
      directoryUrl: 'data',
      workers: 1,
      prepare(dir) {
        // an install left readable by others: the folder, an old export, a sub folder
        chmodSync(dir, 0o755);
        writeFileSync(path.join(dir, 'customers-backup.csv'), `name,username,password,aor\nX,x,${PASSWORD},x@y\n`);
        chmodSync(path.join(dir, 'customers-backup.csv'), 0o644);
        mkdirSync(path.join(dir, 'exports'));
        chmodSync(path.join(dir, 'exports'), 0o777);
      },
    });
    try {
      // some writes: a customer (its password lands in the tables and the WAL), a real registration
      const add = await pg.api('/api/v1/customers', {
        method: 'POST',
        body: JSON.stringify({ name: 'Sec PBX', username: 'secpbx', password: 'sec-pw-0001', aor: 'secpbx@example.test' }),
      });
      expect(add.status).toBe(201);
      const first = await json(
        await pg.api('/api/v1/execute', { method: 'POST', body: JSON.stringify({ logic: 'registration', cd: sampleRegister({ 'Call-ID': 'sec-pg-1' }) }) }),
      );
      const authorization = answerChallenge(first.outcome.challenges[0], UA);
      const ok = await json(
        await pg.api('/api/v1/execute', {
          method: 'POST',
          body: JSON.stringify({ logic: 'registration', cd: sampleRegister({ 'Call-ID': 'sec-pg-1', CSeq: '2 REGISTER', Authorization: authorization }) }),
        }),
      );
      expect(ok.outcome).toMatchObject({ kind: 'register', status: 200 });

      const entries = walk(pg.dataDir);
      expect(entries.some((e) => e.path.startsWith(`directory${path.sep}pg_wal${path.sep}`) && !e.dir)).toBe(true); // PGlite is really there
      expect(entries.length).toBeGreaterThan(100);
      expect(loose(pg.dataDir)).toEqual([]);

      const warnings = pg
        .output()
        .split('\n')
        .filter((l) => /group\/other/.test(l) && /"level":"warn"/.test(l));
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toContain('customers-backup.csv');
      expect(warnings[0]).not.toContain(PASSWORD);
    } finally {
      await pg.stop();
    }
  }, 120_000);
});
