import { mkdtempSync, rmSync } from 'fs';
import os from 'os';
import path from 'path';
import { readFileSync } from 'fs';
import { createFlowsStore } from '../../../server/flows';
import { createSubscribersAdmin } from '../../../server/http/subscribers-admin';
import { openRuntime, type Runtime } from '../../../server/runtime';
import type { DirectoryQuery } from '../../../services/directory/types';

const byUsername = (username: string): DirectoryQuery => ({
  tables: ['registration.customers'],
  fields: ['customers.password'],
  joins: [],
  joinType: 'JOIN',
  logic: 'and',
  orderBy: [],
  offset: 0,
  limit: 1,
  conditions: [{ field: 'customers.username', operator: 'is', value: username }],
});

describe('runtime directory cache (directoryCacheSec)', () => {
  let dir: string;
  let rt: Runtime;
  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'sipflow-dircache-'));
    rt = await openRuntime({
      dataDir: dir,
      directoryUrl: 'memory://',
      locationUrl: 'sql',
      provision: true,
      directoryCacheSec: 3600,
      nonceSecret: 'x'.repeat(32),
    });
  }, 60_000);
  afterAll(async () => {
    await rt?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  // directory writes go through the write paths (Subscribers, the API's SubscribersAdmin), which notify rt.directoryChanges
  const admin = () => createSubscribersAdmin(rt.knex, rt.subscribers, () => rt.directoryChanges.changed());

  it('serves reads from the cache and drops it on a directory write, not on location writes', async () => {
    await rt.knex('registration.customers').insert({ name: 'cache test', username: 'cachey', password: 'one', aor: 'cachey@example.test' });
    expect(await rt.directory.query(byUsername('cachey'))).toEqual([{ 'customers.password': 'one' }]);
    const stats = (rt.directory as unknown as { stats(): { hits: number; invalidations: number } }).stats;
    const before = stats().invalidations;
    const r = await rt.registrar.register({
      username: 'cachey',
      domain: null,
      contacts: ['<sip:cachey@192.0.2.1:5060>'],
      expiresHeader: '60',
      callId: 'c1',
      cseq: 1,
      userAgent: 't',
      received: null,
      socket: null,
      path: null,
      allow: null,
      now: new Date(),
    });
    expect(r.status).toBe(200);
    expect(stats().invalidations).toBe(before);
    expect(await rt.directory.query(byUsername('cachey'))).toEqual([{ 'customers.password': 'one' }]);
    const { id } = (await rt.knex('registration.customers').where({ username: 'cachey' }).first('id')) as { id: number };
    await admin().updateCustomer(id, { password: 'two' });
    expect(stats().invalidations).toBeGreaterThan(before);
    expect(await rt.directory.query(byUsername('cachey'))).toEqual([{ 'customers.password': 'two' }]);
  }, 60_000);

  it('saving a flow leaves the subscriber cache alone; adding a customer through Subscribers empties it', async () => {
    const stats = (rt.directory as unknown as { stats(): { hits: number; invalidations: number } }).stats;
    expect(await rt.directory.query(byUsername('flowy'))).toEqual([]);
    const before = stats().invalidations;
    const flows = await createFlowsStore({ knex: rt.knex, primary: 'pbx' });
    try {
      const text = readFileSync(path.resolve(__dirname, '../../../flows/pbx.slid'), 'utf8');
      await flows.saveDevelopment('cache-test', text, { create: true });
      await flows.release('cache-test');
    } finally {
      flows.close();
    }
    expect(stats().invalidations).toBe(before);
    const hits = stats().hits;
    expect(await rt.directory.query(byUsername('cachey'))).toEqual([{ 'customers.password': 'two' }]);
    expect(stats().hits).toBe(hits + 1);
    await rt.subscribers.addCustomer({ name: 'flow test', username: 'flowy', password: 'pw', aor: null });
    expect(stats().invalidations).toBe(before + 1);
    expect(rt.directoryChanges.revision).toBeGreaterThan(0);
    expect(await rt.directory.query(byUsername('flowy'))).toEqual([{ 'customers.password': 'pw' }]);
  }, 60_000);
});
