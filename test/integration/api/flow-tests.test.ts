/**
 * A flow's test cases over the API: stored beside the flow (development copy, frozen with each
 * release), validated, run on a private directory, exported; and the activation gate (422 unless forced).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'fs';
import os from 'os';
import path from 'path';
import { createFlowsStore } from '../../../server/flows';
import { openDirectory } from '../../../services/directory';
import { apiFixture, FLOWS_DIR, type Fixture } from './support';
import { sampleRegister } from '../../support/sip';

const seed = readFileSync(path.join(FLOWS_DIR, 'registration.slid'), 'utf8');
const doc = (status: number) =>
  JSON.stringify({
    tests: [
      { name: 'challenge', cd: sampleRegister(), expect: { kind: 'challenge', status } },
      {
        name: 'francesco registers',
        cd: sampleRegister(),
        credentials: { username: 'francesco', password: '123456' },
        expect: { kind: 'register', status: 200 },
      },
    ],
  });

describe('/api/v1/flows/:name/tests', () => {
  let f: Fixture;
  beforeAll(async () => {
    f = await apiFixture();
    const r = await f.call({ method: 'POST', url: '/api/v1/flows/import?name=reg', headers: { 'content-type': 'application/json' }, payload: seed });
    expect(r.statusCode).toBe(201);
  });
  afterAll(() => f.close());

  const put = (name: string, payload: string) =>
    f.call({ method: 'PUT', url: `/api/v1/flows/${name}/tests`, headers: { 'content-type': 'application/json' }, payload });

  test('none yet: GET answers an empty document, export 204 (an unknown flow 404)', async () => {
    const r = await f.call({ method: 'GET', url: '/api/v1/flows/reg/tests' });
    expect(r.statusCode).toBe(200);
    expect(r.json()).toEqual({ tests: [] });
    const e = await f.call({ method: 'GET', url: '/api/v1/flows/reg/tests/export' });
    expect(e.statusCode).toBe(204);
    expect(e.body).toBe('');
    expect((await f.call({ method: 'GET', url: '/api/v1/flows/no-such-flow/tests/export' })).statusCode).toBe(404);
  });

  test('PUT stores the document byte for byte; GET and export answer it', async () => {
    const text = doc(401);
    const r = await put('reg', text);
    expect(r.statusCode).toBe(200);
    expect(r.json()).toEqual({ name: 'reg', tests: 2 });
    expect((await f.call({ method: 'GET', url: '/api/v1/flows/reg/tests' })).body).toBe(text);
    const e = await f.call({ method: 'GET', url: '/api/v1/flows/reg/tests/export' });
    expect(e.body).toBe(text);
    expect(e.headers['content-disposition']).toBe('attachment; filename="reg.tests.json"');
  });

  test('a bad document: 400 naming the file and the pointer; nothing stored', async () => {
    const r = await put('reg', JSON.stringify({ tests: [{ name: 'x', cd: {}, expect: { kind: 'answered' } }] }));
    expect(r.statusCode).toBe(400);
    expect(r.json().message).toMatch(/^reg\.tests\.json: \/tests\/0\/expect\/kind: /);
    expect((await put('reg', '{ nope')).json().message).toMatch(/^reg\.tests\.json: \/: invalid JSON/);
    expect((await put('reg', '')).statusCode).toBe(400);
    expect((await f.call({ method: 'GET', url: '/api/v1/flows/reg/tests' })).body).toBe(doc(401));
  });

  test('an oversized body: 413; a bad flow name: 400; an unknown flow: 404', async () => {
    const big = JSON.stringify({ tests: [], pad: 'x'.repeat(1024 * 1024) });
    expect((await put('reg', big)).statusCode).toBe(413);
    expect((await put('no%20such', doc(401))).statusCode).toBe(400);
    expect((await put('nosuch', doc(401))).statusCode).toBe(404);
  });

  test('without the token: 401 on every route', async () => {
    for (const [method, url] of [
      ['GET', '/api/v1/flows/reg/tests'],
      ['PUT', '/api/v1/flows/reg/tests'],
      ['DELETE', '/api/v1/flows/reg/tests'],
      ['POST', '/api/v1/flows/reg/tests/run'],
      ['GET', '/api/v1/flows/reg/tests/export'],
    ] as const) {
      expect((await f.app.inject({ method, url, payload: method === 'PUT' ? doc(401) : undefined })).statusCode).toBe(401);
    }
  });

  test('run: the results, each with what differed', async () => {
    const r = await f.call({ method: 'POST', url: '/api/v1/flows/reg/tests/run' });
    expect(r.statusCode).toBe(200);
    expect(r.json()).toMatchObject({ flow: 'reg', version: 'development', hasTests: true, passed: 2, failed: 0 });
    await put('reg', doc(407));
    const failing = (await f.call({ method: 'POST', url: '/api/v1/flows/reg/tests/run?version=development' })).json();
    expect(failing).toMatchObject({ passed: 1, failed: 1 });
    expect(failing.results[0]).toMatchObject({
      name: 'challenge',
      passed: false,
      message: 'expected challenge 407, got challenge 401',
      actual: { kind: 'challenge', status: 401 },
    });
    expect((await f.call({ method: 'POST', url: '/api/v1/flows/reg/tests/run?version=9' })).statusCode).toBe(404);
  });

  test("activation runs the release's tests first: 422 and nothing activated on a failure; ?force=true activates; passing tests activate", async () => {
    // development holds the failing document (407): release 1 freezes it
    const v1 = (await f.call({ method: 'POST', url: '/api/v1/flows/reg/releases' })).json();
    expect(v1.version).toBe(1);
    const refused = await f.call({ method: 'POST', url: '/api/v1/flows/reg/releases/1/activate' });
    expect(refused.statusCode).toBe(422);
    const body = refused.json();
    expect(body).toMatchObject({ title: 'Test cases failed', status: 422, tests: { passed: 1, failed: 1 } });
    expect(body.detail).toContain('challenge: expected challenge 407, got challenge 401');
    expect(body.tests.results[0]).toMatchObject({ name: 'challenge', passed: false, message: 'expected challenge 407, got challenge 401' });
    expect((await f.call({ method: 'GET', url: '/api/v1/flows/reg' })).json().activeVersion).toBeNull();

    // the release's tests are frozen: fixing the development copy's does not change release 1
    await put('reg', doc(401));
    expect((await f.call({ method: 'GET', url: '/api/v1/flows/reg/tests/export?version=1' })).body).toBe(doc(407));
    expect((await f.call({ method: 'POST', url: '/api/v1/flows/reg/releases/1/activate' })).statusCode).toBe(422);

    const forced = await f.call({ method: 'POST', url: '/api/v1/flows/reg/releases/1/activate?force=true' });
    expect(forced.statusCode).toBe(200);
    expect(f.logs.join('')).toContain('activation forced despite failing test cases');
    expect((await f.call({ method: 'GET', url: '/api/v1/flows/reg' })).json().activeVersion).toBe(1);

    const v2 = (await f.call({ method: 'POST', url: '/api/v1/flows/reg/releases' })).json();
    const ok = await f.call({ method: 'POST', url: `/api/v1/flows/reg/releases/${v2.version}/activate` });
    expect(ok.statusCode).toBe(200);
    expect(ok.json().version).toBe(2);
  });

  test("a release without test cases activates as before; DELETE removes the development copy's", async () => {
    await f.call({ method: 'POST', url: '/api/v1/flows/import?name=plain', headers: { 'content-type': 'application/json' }, payload: seed });
    const rel = (await f.call({ method: 'POST', url: '/api/v1/flows/plain/releases' })).json();
    expect((await f.call({ method: 'POST', url: `/api/v1/flows/plain/releases/${rel.version}/activate` })).statusCode).toBe(200);
    expect((await f.call({ method: 'DELETE', url: '/api/v1/flows/reg/tests' })).statusCode).toBe(204);
    expect((await f.call({ method: 'GET', url: '/api/v1/flows/reg/tests' })).json()).toEqual({ tests: [] });
    expect((await f.call({ method: 'POST', url: '/api/v1/flows/reg/tests/run' })).json()).toMatchObject({ hasTests: false, passed: 0, failed: 0 });
  });
});

describe('bootstrap: <name>.tests.json beside a shipped <name>.slid', () => {
  test('the shipped test cases are imported with their flow and frozen in release 1', async () => {
    const f = await apiFixture();
    try {
      const shipped = readFileSync(path.join(FLOWS_DIR, 'registration.tests.json'), 'utf8');
      expect((await f.call({ method: 'GET', url: '/api/v1/flows/registration/tests' })).body).toBe(shipped);
      expect((await f.call({ method: 'GET', url: '/api/v1/flows/registration/tests/export?version=1' })).body).toBe(shipped);
      expect((await f.call({ method: 'POST', url: '/api/v1/flows/pbx/tests/run?version=1' })).json()).toMatchObject({ hasTests: true, failed: 0 });
    } finally {
      await f.close();
    }
  });

  test('a bad sidecar is reported and skipped: the flow is imported without test cases', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sipflow-boot-tests-'));
    writeFileSync(path.join(dir, 'reg.slid'), seed);
    writeFileSync(path.join(dir, 'reg.tests.json'), '{ "tests": [ { "name": 1 } ] }');
    const knex = openDirectory('memory://');
    const warnings: string[] = [];
    try {
      const store = await createFlowsStore({ knex, onWarning: (m) => warnings.push(m) });
      expect(await store.bootstrap(dir)).toEqual(['reg']);
      expect(warnings.join('\n')).toMatch(/bootstrap: reg\.tests\.json not imported: reg\.tests\.json: \/tests\/0\/name: /);
      expect((await store.testsText('reg', 1)).text).toBeNull();
      expect((await store.get('reg')).activeVersion).toBe(1);
      store.close();
    } finally {
      await knex.destroy();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
