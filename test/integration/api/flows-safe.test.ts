/**
 * Safe editing over the API: the development copy's revision (ETag / If-Match, 409 on a stale save),
 * If-None-Match: * for creating only, and renaming and deleting flows (with their releases and
 * activation, the running service swapped, other instances following through their polling).
 */
import { readFileSync } from 'fs';
import type { InjectOptions } from 'fastify';
import path from 'path';
import { createFlowsStore, revisionOf } from '../../../server/flows';
import { FLOWS_DIR, apiFixture, type Fixture } from './support';

const seedText = readFileSync(path.join(FLOWS_DIR, 'registration.slid'), 'utf8');
const edited = JSON.stringify({ ...JSON.parse(seedText), 24: { ...JSON.parse(seedText)['24'], description: 'edited' } }, null, 2);

let f: Fixture;
beforeAll(async () => {
  f = await apiFixture();
});
afterAll(async () => {
  await f.close();
});

const raw = (text: string, headers: Record<string, string> = {}) => ({ payload: text, headers: { 'content-type': 'application/json', ...headers } });

describe('revision: ETag on GET, If-Match on PUT', () => {
  test('GET answers the revision in the body and as a strong ETag; it is the hash of the stored text', async () => {
    const r = await f.call({ method: 'GET', url: '/api/v1/flows/registration' });
    expect(r.statusCode).toBe(200);
    expect(r.json().revision).toBe(revisionOf(seedText));
    expect(r.headers.etag).toBe(`"${revisionOf(seedText)}"`);
    const exp = await f.call({ method: 'GET', url: '/api/v1/flows/registration/export?version=1' });
    expect(exp.headers['x-sipflow-revision']).toBe(revisionOf(seedText));
  });

  test('a save with the current revision succeeds and answers the new one; a save with the old one → 409 with the current revision', async () => {
    await f.call({ method: 'POST', url: '/api/v1/flows/import?name=rev', ...raw(seedText) });
    const rev0 = (await f.call({ method: 'GET', url: '/api/v1/flows/rev' })).json().revision as string;
    const ok = await f.call({ method: 'PUT', url: '/api/v1/flows/rev', ...raw(edited, { 'if-match': `"${rev0}"` }) });
    expect(ok.statusCode).toBe(200);
    const rev1 = ok.json().revision as string;
    expect(rev1).toBe(revisionOf(edited));
    expect(ok.headers.etag).toBe(`"${rev1}"`);
    const stale = await f.call({ method: 'PUT', url: '/api/v1/flows/rev', ...raw(seedText, { 'if-match': `"${rev0}"` }) });
    expect(stale.statusCode).toBe(409);
    expect(stale.json()).toMatchObject({ statusCode: 409, error: 'Conflict', revision: rev1 });
    expect(stale.json().message).toMatch(/changed since it was loaded/);
    // nothing was written
    expect((await f.call({ method: 'GET', url: '/api/v1/flows/rev/export?version=development' })).body).toBe(edited);
    // a weak tag never matches (strong comparison)
    expect((await f.call({ method: 'PUT', url: '/api/v1/flows/rev', ...raw(seedText, { 'if-match': `W/"${rev1}"` }) })).statusCode).toBe(409);
  });

  test('without If-Match a save overwrites as before (scripts); If-Match on an unknown flow → 404', async () => {
    const r = await f.call({ method: 'PUT', url: '/api/v1/flows/rev', ...raw(seedText) });
    expect(r.statusCode).toBe(200);
    expect(r.json().revision).toBe(revisionOf(seedText));
    const nf = await f.call({ method: 'PUT', url: '/api/v1/flows/no-such', ...raw(seedText, { 'if-match': '"abc"' }) });
    expect(nf.statusCode).toBe(404);
    expect(await f.flows.exists('no-such')).toBe(false);
  });

  test('If-None-Match: * creates only: 201 when new, 409 when the flow exists', async () => {
    const created = await f.call({ method: 'PUT', url: '/api/v1/flows/fresh', ...raw(seedText, { 'if-none-match': '*' }) });
    expect(created.statusCode).toBe(201);
    const again = await f.call({ method: 'PUT', url: '/api/v1/flows/fresh', ...raw(edited, { 'if-none-match': '*' }) });
    expect(again.statusCode).toBe(409);
    expect((await f.call({ method: 'GET', url: '/api/v1/flows/fresh/export?version=development' })).body).toBe(seedText);
    // the name is checked before the document's errors
    const broken = await f.call({ method: 'PUT', url: '/api/v1/flows/fresh', ...raw('{"1":{"name":"x","nodes":{}}}', { 'if-none-match': '*' }) });
    expect(broken.statusCode).toBe(409);
  });

  test('a release with If-Match freezes only the revision seen: stale → 409, nothing released', async () => {
    const d0 = (await f.call({ method: 'GET', url: '/api/v1/flows/rev' })).json();
    const stale = await f.call({ method: 'POST', url: '/api/v1/flows/rev/releases', payload: {}, headers: { 'if-match': '"0000"' } });
    expect(stale.statusCode).toBe(409);
    expect(stale.json().revision).toBe(d0.revision);
    expect((await f.call({ method: 'GET', url: '/api/v1/flows/rev' })).json().releases).toEqual(d0.releases);
    const ok = await f.call({ method: 'POST', url: '/api/v1/flows/rev/releases', payload: {}, headers: { 'if-match': `"${d0.revision}"` } });
    expect(ok.statusCode).toBe(201);
  });

  test('two concurrent saves from the same revision: exactly one wins', async () => {
    const rev = revisionOf(seedText);
    const a = JSON.stringify({ ...JSON.parse(seedText), 24: { ...JSON.parse(seedText)['24'], description: 'a' } });
    const b = JSON.stringify({ ...JSON.parse(seedText), 24: { ...JSON.parse(seedText)['24'], description: 'b' } });
    const codes = (await Promise.all([a, b].map((t) => f.call({ method: 'PUT', url: '/api/v1/flows/rev', ...raw(t, { 'if-match': `"${rev}"` }) })))).map(
      (r) => r.statusCode,
    );
    expect(codes.sort()).toEqual([200, 409]);
  });
});

describe('rename', () => {
  test('an active flow keeps running under its new name, with its releases; the old name is gone', async () => {
    await f.call({ method: 'POST', url: '/api/v1/flows/import?name=ren-a', ...raw(seedText) });
    await f.call({ method: 'POST', url: '/api/v1/flows/ren-a/releases', payload: { note: 'first' } });
    await f.call({ method: 'PUT', url: '/api/v1/flows/ren-a', ...raw(edited) });
    await f.call({ method: 'POST', url: '/api/v1/flows/ren-a/releases', payload: {} });
    expect((await f.call({ method: 'POST', url: '/api/v1/flows/ren-a/releases/1/activate' })).statusCode).toBe(200);
    const gen = f.flows.generation();
    const r = await f.call({ method: 'POST', url: '/api/v1/flows/ren-a/rename', payload: { to: 'ren-b' } });
    expect(r.statusCode).toBe(200);
    expect(r.json()).toMatchObject({ from: 'ren-a', to: 'ren-b', active: true });
    expect(f.flows.generation()).toBeGreaterThan(gen);
    expect(f.flows.activeFlows().map((x) => x.flow)).toContain('ren-b');
    expect(f.flows.activeFlows().map((x) => x.flow)).not.toContain('ren-a');
    expect(f.flows.resolve('ren-b/registration')?.version).toBe(1);
    const d = (await f.call({ method: 'GET', url: '/api/v1/flows/ren-b' })).json();
    expect(d.releases.map((x: { version: number; note: string | null }) => [x.version, x.note])).toEqual([
      [1, 'first'],
      [2, null],
    ]);
    expect(d.active.version).toBe(1);
    expect(d.revision).toBe(revisionOf(edited));
    expect((await f.call({ method: 'GET', url: '/api/v1/flows/ren-b/export?version=1' })).body).toBe(seedText);
    expect((await f.call({ method: 'GET', url: '/api/v1/flows/ren-a' })).statusCode).toBe(404);
  });

  test('another instance follows a rename and a delete through its polling', async () => {
    const other = await createFlowsStore({ knex: f.runtime.knex, primary: 'pbx' });
    try {
      await f.call({ method: 'POST', url: '/api/v1/flows/ren-b/rename', payload: { to: 'ren-c' } });
      expect(await other.refresh()).toBe(true);
      expect(other.activeFlows().map((x) => x.flow)).toContain('ren-c');
      expect(other.activeFlows().map((x) => x.flow)).not.toContain('ren-b');
      // delete an active flow that is not the latest activation: the count tells the other instance
      await f.call({ method: 'POST', url: '/api/v1/flows/routing/releases/1/activate' });
      await other.refresh(); // the same versions: nothing to swap, the stamp is taken
      expect(await other.refresh()).toBe(false);
      expect((await f.call({ method: 'DELETE', url: '/api/v1/flows/ren-c?force=true' })).statusCode).toBe(200);
      expect(await other.refresh()).toBe(true);
      expect(other.activeFlows().map((x) => x.flow)).not.toContain('ren-c');
      expect(other.resolve('ren-c/registration')).toBeUndefined();
    } finally {
      other.close();
    }
  });

  test('to an existing name → 409; unknown → 404; bad names → 400; same name → 400; the primary flow → 409', async () => {
    const conflict = await f.call({ method: 'POST', url: '/api/v1/flows/rev/rename', payload: { to: 'registration' } });
    expect(conflict.statusCode).toBe(409);
    expect(conflict.json().message).toBe('flow "registration" already exists');
    expect((await f.call({ method: 'POST', url: '/api/v1/flows/nope/rename', payload: { to: 'nope2' } })).statusCode).toBe(404);
    const badTo = await f.call({ method: 'POST', url: '/api/v1/flows/rev/rename', payload: { to: '../x' } });
    expect(badTo.statusCode).toBe(400);
    expect(badTo.json().message).toMatch(/^body\/to: must match pattern/);
    expect((await f.call({ method: 'POST', url: '/api/v1/flows/..%2Fx/rename', payload: { to: 'y' } })).statusCode).toBe(400);
    expect((await f.call({ method: 'POST', url: '/api/v1/flows/rev/rename', payload: { to: 'rev' } })).statusCode).toBe(400);
    const primary = await f.call({ method: 'POST', url: '/api/v1/flows/pbx/rename', payload: { to: 'pbx2' } });
    expect(primary.statusCode).toBe(409);
    expect(primary.json().message).toMatch(/primary flow/);
    expect(await f.flows.exists('pbx')).toBe(true);
  });
});

describe('delete', () => {
  test('an inactive flow is deleted with its releases', async () => {
    await f.call({ method: 'POST', url: '/api/v1/flows/import?name=del-a', ...raw(seedText) });
    await f.call({ method: 'POST', url: '/api/v1/flows/del-a/releases', payload: {} });
    const r = await f.call({ method: 'DELETE', url: '/api/v1/flows/del-a' });
    expect(r.statusCode).toBe(200);
    expect(r.json()).toMatchObject({ name: 'del-a', wasActive: false });
    expect((await f.call({ method: 'GET', url: '/api/v1/flows/del-a' })).statusCode).toBe(404);
    // the name is free again, with no release left over
    await f.call({ method: 'POST', url: '/api/v1/flows/import?name=del-a', ...raw(seedText) });
    expect((await f.call({ method: 'GET', url: '/api/v1/flows/del-a' })).json().releases).toEqual([]);
  });

  test('an active flow → 409 unless force=true, which takes it out of the active set', async () => {
    await f.call({ method: 'POST', url: '/api/v1/flows/del-a/releases', payload: {} });
    await f.call({ method: 'POST', url: '/api/v1/flows/del-a/releases/1/activate' });
    const refused = await f.call({ method: 'DELETE', url: '/api/v1/flows/del-a' });
    expect(refused.statusCode).toBe(409);
    expect(refused.json().message).toMatch(/is active .*force=true/);
    expect(f.flows.activeFlows().map((x) => x.flow)).toContain('del-a');
    const forced = await f.call({ method: 'DELETE', url: '/api/v1/flows/del-a?force=true' });
    expect(forced.statusCode).toBe(200);
    expect(forced.json()).toMatchObject({ wasActive: true });
    expect(f.flows.activeFlows().map((x) => x.flow)).not.toContain('del-a');
    expect(f.flows.resolve('del-a/registration')).toBeUndefined();
    expect(f.flows.active().find('registration')).toBeDefined(); // the shipped registration flow still runs
  });

  test('a name deleted and taken again: its new release v1 runs, not the old one compiled before', async () => {
    const other = await createFlowsStore({ knex: f.runtime.knex, primary: 'pbx' });
    try {
      await f.call({ method: 'POST', url: '/api/v1/flows/import?name=again', ...raw(seedText) });
      await f.call({ method: 'POST', url: '/api/v1/flows/again/releases', payload: {} });
      await f.call({ method: 'POST', url: '/api/v1/flows/again/releases/1/activate' });
      await other.refresh();
      expect(other.activeFlows().find((x) => x.flow === 'again')?.text).toBe(seedText);
      await f.call({ method: 'DELETE', url: '/api/v1/flows/again?force=true' });
      await f.call({ method: 'POST', url: '/api/v1/flows/import?name=again', ...raw(edited) });
      await f.call({ method: 'POST', url: '/api/v1/flows/again/releases', payload: {} });
      await f.call({ method: 'POST', url: '/api/v1/flows/again/releases/1/activate' });
      expect(f.flows.activeFlows().find((x) => x.flow === 'again')?.text).toBe(edited);
      // another instance that compiled the old v1 never saw the deletion between two polls
      await other.refresh();
      expect(other.activeFlows().find((x) => x.flow === 'again')?.text).toBe(edited);
    } finally {
      other.close();
    }
  });

  test('unknown → 404; bad name → 400; the primary flow → 409 even forced', async () => {
    expect((await f.call({ method: 'DELETE', url: '/api/v1/flows/nope' })).statusCode).toBe(404);
    expect((await f.call({ method: 'DELETE', url: '/api/v1/flows/..%2Fetc' })).statusCode).toBe(400);
    expect((await f.call({ method: 'DELETE', url: '/api/v1/flows/x?force=maybe' })).statusCode).toBe(400);
    const primary = await f.call({ method: 'DELETE', url: '/api/v1/flows/pbx?force=true' });
    expect(primary.statusCode).toBe(409);
    expect(f.flows.resolve('pbx')?.flow).toBe('pbx');
  });
});

describe('security', () => {
  test('without the token (a scanner): 401 for rename, delete and an If-Match save; nothing changes', async () => {
    const anon = (o: InjectOptions) => f.app.inject(o);
    expect((await anon({ method: 'DELETE', url: '/api/v1/flows/registration?force=true' })).statusCode).toBe(401);
    expect((await anon({ method: 'POST', url: '/api/v1/flows/registration/rename', payload: { to: 'x' } })).statusCode).toBe(401);
    expect((await anon({ method: 'PUT', url: '/api/v1/flows/registration', ...raw(seedText, { 'if-match': '"x"' }) })).statusCode).toBe(401);
    expect((await anon({ method: 'GET', url: '/api/v1/flows/registration' })).statusCode).toBe(401);
    expect(await f.flows.exists('registration')).toBe(true);
  });
});
