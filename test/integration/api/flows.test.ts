/** Flow lifecycle over the API: import, validate, save, release, activate, export; and the store's contracts. */
import { readFileSync } from 'fs';
import path from 'path';
import { createFlowsStore, revisionOf, type ActivationEvent } from '../../../server/flows';
import { FLOWS_DIR, apiFixture, type Fixture } from './support';

const seedText = readFileSync(path.join(FLOWS_DIR, 'registration.slid'), 'utf8');
const seed = JSON.parse(seedText);

let f: Fixture;
beforeAll(async () => {
  f = await apiFixture();
});
afterAll(async () => {
  await f.close();
});

const raw = (text: string) => ({ payload: text, headers: { 'content-type': 'application/json' } });

describe('bootstrap', () => {
  test('a fresh install has every shipped flow imported, released as v1 and active', async () => {
    const r = await f.call({ method: 'GET', url: '/api/v1/flows' });
    expect(r.statusCode).toBe(200);
    const flows = r.json().flows;
    expect(flows.map((x: { name: string }) => x.name)).toEqual(['call-screening', 'incoming-call', 'outgoing-call', 'pbx', 'registration', 'routing']);
    for (const x of flows) expect(x).toMatchObject({ latestVersion: 1, activeVersion: 1 });
    expect(f.flows.active().find('registration')).toBeDefined();
    expect(f.flows.resolve('pbx')?.flow).toBe('pbx');
  });

  test('a second bootstrap on a populated store imports nothing', async () => {
    expect(await f.flows.bootstrap(FLOWS_DIR)).toEqual([]);
  });

  test('GET /flows/:name: development, releases, active', async () => {
    const r = await f.call({ method: 'GET', url: '/api/v1/flows/registration' });
    expect(r.statusCode).toBe(200);
    const d = r.json();
    expect(d.development).toEqual(seed);
    expect(d.releases).toEqual([expect.objectContaining({ version: 1, note: 'imported from registration.slid' })]);
    expect(d.active).toMatchObject({ version: 1 });
    expect(d.logics).toEqual([{ id: '24', name: 'registration' }]);
    expect(d.problems).toEqual([]);
  });

  test('unknown flow → 404; bad flow name → 400 naming the parameter', async () => {
    const nf = await f.call({ method: 'GET', url: '/api/v1/flows/nope' });
    expect(nf.statusCode).toBe(404);
    expect(nf.json().message).toBe('no flow "nope"');
    const bad = await f.call({ method: 'GET', url: '/api/v1/flows/..%2Fetc' });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().message).toMatch(/^params\/name: must match pattern/);
  });
});

describe('lifecycle: import → validate → save → release v2 → activate → export', () => {
  test('export of the seed import equals the file byte for byte (lossless)', async () => {
    const r = await f.call({ method: 'GET', url: '/api/v1/flows/registration/export' });
    expect(r.statusCode).toBe(200);
    expect(r.headers['content-disposition']).toBe('attachment; filename="registration-v1.slid"');
    expect(r.headers['content-type']).toMatch(/^application\/json/);
    expect(r.body).toBe(seedText);
    expect(JSON.parse(r.body)).toEqual(seed);
  });

  test('import as a new flow, refused a second time unless replace=true; the export deep-equals the import', async () => {
    const r = await f.call({ method: 'POST', url: '/api/v1/flows/import?name=reg-copy', ...raw(seedText) });
    expect(r.statusCode).toBe(201);
    expect(r.json()).toEqual({ name: 'reg-copy', created: true, revision: revisionOf(seedText), problems: [] });
    const again = await f.call({ method: 'POST', url: '/api/v1/flows/import?name=reg-copy', ...raw(seedText) });
    expect(again.statusCode).toBe(409);
    const replaced = await f.call({ method: 'POST', url: '/api/v1/flows/import?name=reg-copy&replace=true', ...raw(seedText) });
    expect(replaced.statusCode).toBe(200);
    const exp = await f.call({ method: 'GET', url: '/api/v1/flows/reg-copy/export' });
    expect(exp.headers['content-disposition']).toBe('attachment; filename="reg-copy-development.slid"');
    expect(JSON.parse(exp.body)).toEqual(seed);
  });

  test('import: missing name → 400 naming it; a broken .slid → 400 with every problem located', async () => {
    const noName = await f.call({ method: 'POST', url: '/api/v1/flows/import', ...raw(seedText) });
    expect(noName.statusCode).toBe(400);
    expect(noName.json().message).toBe('querystring/name: is required');
    const broken = structuredClone(seed);
    broken['24'].nodes['3'].values.conditions[0].operator = 'isSortOf';
    broken['24'].nodes['0'].values.next = 99;
    const r = await f.call({ method: 'POST', url: '/api/v1/flows/import?name=broken', ...raw(JSON.stringify(broken)) });
    expect(r.statusCode).toBe(400);
    const body = r.json();
    expect(body.problems.length).toBeGreaterThanOrEqual(2);
    expect(body.problems.map((p: { text: string }) => p.text).join('\n')).toMatch(
      /broken\.slid › logic 24 "registration" › node 3 "[^"]+" › values\/conditions\/0\/operator: /,
    );
    expect(body.message).toMatch(/points to missing node 99/);
    expect((await f.call({ method: 'GET', url: '/api/v1/flows/broken' })).statusCode).toBe(404);
  });

  test('validate: problems with locations; malformed JSON names line and column; warnings keep valid=true', async () => {
    const ok = await f.call({ method: 'POST', url: '/api/v1/flows/validate', ...raw(seedText) });
    expect(ok.json()).toEqual({ valid: true, errors: 0, warnings: 0, problems: [] });
    const syntax = await f.call({ method: 'POST', url: '/api/v1/flows/validate?file=x.slid', ...raw('{\n "1": {"name": "x",, }\n}') });
    expect(syntax.statusCode).toBe(200);
    expect(syntax.json().valid).toBe(false);
    expect(syntax.json().problems[0].text).toMatch(/^x\.slid: invalid JSON at line 2, column \d+/);
    const withOrphan = structuredClone(seed);
    withOrphan['24'].nodes['99'] = {
      id: 99,
      name: 'orphan',
      type: 'output.nit.registrar.saveLocationService',
      description: '',
      values: {},
      archived: false,
      x: 0,
      y: 0,
    };
    const warn = await f.call({ method: 'POST', url: '/api/v1/flows/validate', ...raw(JSON.stringify(withOrphan)) });
    expect(warn.json()).toMatchObject({ valid: true, errors: 0, warnings: 1 });
    expect(warn.json().problems[0]).toMatchObject({ severity: 'warning', nodeId: '99', message: 'is unreachable from the start node' });
    const empty = await f.call({ method: 'POST', url: '/api/v1/flows/validate', payload: '', headers: { 'content-type': 'text/plain' } });
    expect(empty.statusCode).toBe(400);
  });

  test('save dev edit → release v2 → activate → the active service changed; v1 stays frozen', async () => {
    const edited = structuredClone(seed);
    // The "not registered" branch answers 403 instead of relaying to the default route.
    edited['24'].name = 'registration';
    edited['24'].description = 'edited through the API';
    const events: ActivationEvent[] = [];
    const off = f.flows.onActivate((e) => events.push(e));
    const before = f.flows.active();
    const save = await f.call({ method: 'PUT', url: '/api/v1/flows/registration', ...raw(JSON.stringify(edited, null, 1)) });
    expect(save.statusCode).toBe(200);
    expect(save.json()).toEqual({ name: 'registration', created: false, revision: revisionOf(JSON.stringify(edited, null, 1)), problems: [] });
    // saving does not change what runs
    expect(f.flows.active()).toBe(before);

    const rel = await f.call({ method: 'POST', url: '/api/v1/flows/registration/releases', payload: { note: 'second' } });
    expect(rel.statusCode).toBe(201);
    expect(rel.json()).toMatchObject({ version: 2, note: 'second' });
    const rel3 = await f.call({ method: 'POST', url: '/api/v1/flows/registration/releases' });
    expect(rel3.statusCode).toBe(201);
    expect(rel3.json()).toMatchObject({ version: 3, note: null });

    const act = await f.call({ method: 'POST', url: '/api/v1/flows/registration/releases/2/activate' });
    expect(act.statusCode).toBe(200);
    expect(act.json()).toMatchObject({ flow: 'registration', version: 2 });
    off();
    const after = f.flows.active();
    expect(after).not.toBe(before);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ changed: [{ flow: 'registration', version: 2 }], source: 'local' });
    expect(events[0].service).toBe(after);
    expect(f.flows.resolve('registration/24')).toMatchObject({ flow: 'registration', version: 2 });

    const d = (await f.call({ method: 'GET', url: '/api/v1/flows/registration' })).json();
    expect(d.active.version).toBe(2);
    expect(d.releases.map((r: { version: number }) => r.version)).toEqual([1, 2, 3]);
    const v1 = await f.call({ method: 'GET', url: '/api/v1/flows/registration/export?version=1' });
    expect(v1.body).toBe(seedText);
    const v2 = await f.call({ method: 'GET', url: '/api/v1/flows/registration/export' });
    expect(JSON.parse(v2.body).description).toBeUndefined();
    expect(JSON.parse(v2.body)['24'].description).toBe('edited through the API');
    expect(v2.body).toBe(JSON.stringify(edited, null, 1));
    await expect(f.runtime.knex('sipflow.releases').where({ flow: 'registration', version: 1 }).update({ note: 'tamper' })).rejects.toThrow(/frozen/);
  });

  test('save with errors is refused (400, every problem), the development copy unchanged', async () => {
    const bad = structuredClone(seed);
    delete bad['24'].nodes['1'].type;
    const r = await f.call({ method: 'PUT', url: '/api/v1/flows/registration', ...raw(JSON.stringify(bad)) });
    expect(r.statusCode).toBe(400);
    expect(r.json().problems[0].text).toMatch(/registration\.slid › logic 24 "registration" › node 1 .*type/);
    const dev = await f.call({ method: 'GET', url: '/api/v1/flows/registration/export?version=development' });
    expect(JSON.parse(dev.body)['24'].description).toBe('edited through the API');
  });

  test('activate / export a release that does not exist → 404; a bad version → 400', async () => {
    expect((await f.call({ method: 'POST', url: '/api/v1/flows/registration/releases/42/activate' })).statusCode).toBe(404);
    expect((await f.call({ method: 'GET', url: '/api/v1/flows/registration/export?version=42' })).statusCode).toBe(404);
    const bad = await f.call({ method: 'POST', url: '/api/v1/flows/registration/releases/zero/activate' });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().message).toBe('params/version: must be integer');
    const badQ = await f.call({ method: 'GET', url: '/api/v1/flows/registration/export?version=v2' });
    expect(badQ.statusCode).toBe(400);
    expect(badQ.json().message).toMatch(/^querystring\/version: must match pattern/);
    const badNote = await f.call({ method: 'POST', url: '/api/v1/flows/registration/releases', payload: { note: { a: 1 }, extra: true } });
    expect(badNote.statusCode).toBe(400);
    expect(badNote.json().message.split('; ').sort()).toEqual(['body/extra: is not a known field', 'body/note: must be string']);
  });
});

describe('multi-instance', () => {
  test('another instance on the same database notices an activation by polling max(activated_at)', async () => {
    const other = await createFlowsStore({ knex: f.runtime.knex, primary: 'pbx' });
    try {
      expect(other.resolve('registration/24')?.version).toBe(f.flows.resolve('registration/24')?.version);
      const seen: ActivationEvent[] = [];
      other.onActivate((e) => seen.push(e));
      expect(await other.refresh()).toBe(false);
      await f.flows.activate('registration', 3);
      const held = other.active(); // a request in flight on the other instance
      expect(await other.refresh()).toBe(true);
      expect(other.resolve('registration/24')).toMatchObject({ flow: 'registration', version: 3 });
      expect(seen).toEqual([expect.objectContaining({ source: 'poll', changed: [{ flow: 'registration', version: 3 }] })]);
      expect(held).not.toBe(other.active()); // it keeps the service it took
      expect(held.find('registration')).toBeDefined();
      const stop = other.startPolling(20);
      await f.flows.activate('registration', 1);
      for (let i = 0; i < 100 && other.resolve('registration/24')?.version !== 1; i++) await new Promise((r) => setTimeout(r, 20));
      stop();
      expect(other.resolve('registration/24')?.version).toBe(1);
    } finally {
      other.close();
    }
  });
});
