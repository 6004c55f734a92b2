/**
 * Instances started together on an empty database (issue: several instances on one store): all
 * come up, the migrations run once, the sample subscriber and the shipped flows are added once
 * (services/directory/startup-lock.ts). Against the shared PostgreSQL (a scratch database per
 * round) with the location in SQL and in MongoDB (FerretDB, a fresh database per round).
 *
 * Ten rounds of four starts at once run in this process (openRuntime + openFlows: the code
 * `sipflow serve` runs, each start with its own pool, so the races are real races between
 * PostgreSQL sessions); one round starts four real `sipflow serve` processes. Bad input: the lock
 * held elsewhere for longer than `directory.startupLockWaitSec` makes a start give up with a log
 * line naming the holder and exit 1; a knex migration lock left set by a killed start is freed.
 */
import knexFactory, { type Knex } from 'knex';
import { MongoClient } from 'mongodb';
import { createLogger } from '../../../server/logger';
import { openRuntime, type Runtime } from '../../../server/runtime';
import { openFlows } from '../../../server/serve';
import { configSchema } from '../../../server/config';
import { builtinRegistry } from '../../../nodes';
import { STARTUP_LOCK } from '../../../services/directory/startup-lock';
import { mongoUrl, scratchDatabase } from '../../setup/servers';
import { SHIPPED_FLOWS, startServe } from '../../support/serve';
import { readdirSync } from 'node:fs';

jest.setTimeout(240_000);

const shipped = readdirSync(SHIPPED_FLOWS).filter((f) => f.endsWith('.slid')).length;
const silent = createLogger({ level: 'silent' });

/** One start as `sipflow serve` does it: the runtime (migrations, sample subscriber), then the flows. */
async function start(directoryUrl: string, locationUrl: string, mongoDatabase?: string): Promise<Runtime> {
  const config = configSchema.parse({ flows: SHIPPED_FLOWS, directory: { url: directoryUrl }, location: { url: locationUrl } });
  const rt = await openRuntime({
    dataDir: '/nonexistent',
    directoryUrl,
    locationUrl,
    mongo: { database: mongoDatabase },
    provision: true,
    nonceSecret: 'x'.repeat(32),
  });
  try {
    const flows = await openFlows(config, rt, builtinRegistry(), silent);
    flows.close();
    // MongoDB is prepared (indexes, version documents) on the first operation: make it now, together
    await rt.store.count(new Date());
    return rt;
  } catch (e) {
    await rt.close();
    throw e;
  }
}

/** What one start per database leaves: each migration once, one sample subscriber, each shipped flow released once. */
async function expectStartedOnce(knex: Knex, locationInSql = true): Promise<void> {
  const migrations = (await knex('knex_migrations').select('name')) as Array<{ name: string }>;
  expect(migrations.length).toBeGreaterThan(0);
  expect(new Set(migrations.map((m) => m.name)).size).toBe(migrations.length);
  const flowMigrations = (await knex('sipflow.knex_migrations').select('name')) as Array<{ name: string }>;
  expect(new Set(flowMigrations.map((m) => m.name)).size).toBe(flowMigrations.length);
  expect(Number((await knex('registration.customers').count({ n: '*' }))[0].n)).toBe(1);
  const releases = (await knex('sipflow.releases').select('flow', 'version')) as Array<{ flow: string; version: number }>;
  expect(releases.length).toBe(shipped);
  expect(releases.every((r) => Number(r.version) === 1)).toBe(true);
  expect(Number((await knex('sipflow.activations').count({ n: '*' }))[0].n)).toBe(shipped);
  if (locationInSql) expect(Number((await knex('version').where({ table_name: 'location' }).count({ n: '*' }))[0].n)).toBe(1);
}

describe('four instances started at once on an empty database', () => {
  test.each([
    ['location in PostgreSQL', 'sql'],
    ['location in MongoDB', 'mongo'],
  ])('%s: 10 rounds, every start comes up, schema and shipped flows once', async (_label, where) => {
    const mongo = where === 'mongo' ? await MongoClient.connect(mongoUrl()) : null;
    try {
      for (let round = 0; round < 10; round++) {
        const db = await scratchDatabase(`concurrent_start_${where}_${round}`);
        const mongoDatabase = `concurrent_start_${process.pid}_${round}`;
        const locationUrl = where === 'mongo' ? mongoUrl() : 'sql';
        const started = await Promise.allSettled([0, 1, 2, 3].map(() => start(db.url, locationUrl, mongoDatabase)));
        const failures = started.filter((s) => s.status === 'rejected').map((s) => String((s as PromiseRejectedResult).reason));
        for (const s of started) if (s.status === 'fulfilled') await s.value.close();
        expect({ round, failures }).toEqual({ round, failures: [] });
        const knex = knexFactory({ client: 'pg', connection: db.url, pool: { min: 0, max: 1 } });
        try {
          if (where === 'sql') await expectStartedOnce(knex);
          else {
            // the location lives in MongoDB: no location table; its version documents once each
            const versions = await mongo!.db(mongoDatabase).collection('version').find({}).toArray();
            expect(versions.map((v) => v.table_name).sort()).toEqual(['location', 'location_attrs']);
            await expectStartedOnce(knex, false);
          }
        } finally {
          await knex.destroy();
          await mongo?.db(mongoDatabase).dropDatabase();
          await db.drop();
        }
      }
    } finally {
      await mongo?.close();
    }
  });

  test('four `sipflow serve` processes on one empty PostgreSQL all come up', async () => {
    const db = await scratchDatabase('concurrent_start_processes');
    const spec = { directoryUrl: db.url, locationUrl: 'sql', workers: 1 };
    const started = await Promise.allSettled([0, 1, 2, 3].map(() => startServe(spec)));
    try {
      expect(started.filter((s) => s.status === 'rejected').map((s) => String((s as PromiseRejectedResult).reason))).toEqual([]);
      // each one answers with the shipped flows active
      for (const s of started) {
        const body = (await (await (s as PromiseFulfilledResult<Awaited<ReturnType<typeof startServe>>>).value.api('/api/v1/flows')).json()) as {
          flows: Array<{ activeVersion: number }>;
        };
        const flows = body.flows;
        expect(flows.length).toBe(shipped);
        expect(flows.every((f) => f.activeVersion === 1)).toBe(true);
      }
      const knex = knexFactory({ client: 'pg', connection: db.url, pool: { min: 0, max: 1 } });
      try {
        await expectStartedOnce(knex);
      } finally {
        await knex.destroy();
      }
    } finally {
      for (const s of started) if (s.status === 'fulfilled') await s.value.stop();
      await db.drop();
    }
  });
});

describe('the start-up lock', () => {
  test('held elsewhere beyond directory.startupLockWaitSec: the start gives up naming the holder, exit 1', async () => {
    const db = await scratchDatabase('concurrent_start_lock_held');
    const holder = knexFactory({ client: 'pg', connection: { connectionString: db.url, application_name: 'stuck-migrator' }, pool: { min: 1, max: 1 } });
    try {
      await holder.raw('SELECT pg_advisory_lock(?)', [STARTUP_LOCK]);
      const t0 = Date.now();
      const err = await startServe({ directoryUrl: db.url, locationUrl: 'sql', workers: 1, config: { directory: { startupLockWaitSec: 3 } } }).then(
        (s) => s.stop().then(() => null),
        (e: Error) => e,
      );
      expect(err).not.toBeNull();
      const text = String(err!.message);
      expect(text).toMatch(/exited 1/);
      expect(text).toMatch(/waiting for the start-up lock \(directory migrations\) held by stuck-migrator/);
      expect(text).toMatch(/gave up waiting 3 s for the start-up lock \(directory migrations\), held by stuck-migrator \(pid \d+/);
      expect(text).toMatch(/raise directory\.startupLockWaitSec/);
      expect(Date.now() - t0).toBeLessThan(30_000);
      // the lock released, the next start comes up
      await holder.raw('SELECT pg_advisory_unlock(?)', [STARTUP_LOCK]);
      const s = await startServe({ directoryUrl: db.url, locationUrl: 'sql', workers: 1 });
      await s.stop();
    } finally {
      await holder.destroy();
      await db.drop();
    }
  });

  test('a knex migration lock left set by a killed start is freed (and said), the start comes up', async () => {
    const db = await scratchDatabase('concurrent_start_stale_lock');
    try {
      const rt = await start(db.url, 'sql');
      await rt.knex('knex_migrations_lock').update({ is_locked: 1 });
      await rt.close();
      const s = await startServe({ directoryUrl: db.url, locationUrl: 'sql', workers: 1 });
      try {
        expect(s.output()).toMatch(/freed the migration lock public\.knex_migrations_lock left set by a start that was interrupted/);
      } finally {
        await s.stop();
      }
    } finally {
      await db.drop();
    }
  });

  test('an instance of an older version starts on the schema a newer one migrated (rolling upgrade, rollback)', async () => {
    const db = await scratchDatabase('concurrent_start_newer_schema');
    try {
      const rt = await start(db.url, 'sql');
      const now = new Date();
      await rt.knex('knex_migrations').insert({ name: 'directory_999_from_a_newer_version', batch: 99, migration_time: now });
      await rt.knex('sipflow.knex_migrations').insert({ name: 'sipflow_999_from_a_newer_version', batch: 99, migration_time: now });
      await rt.close();
      const again = await start(db.url, 'sql');
      expect(Number((await again.knex('registration.customers').count({ n: '*' }))[0].n)).toBe(1);
      await again.close();
    } finally {
      await db.drop();
    }
  });
});
