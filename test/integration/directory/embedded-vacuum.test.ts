/**
 * The embedded database's vacuum passes (services/directory/embedded-vacuum.ts), on the runtime
 * `npm start` opens: PGlite on disk, the location in it, bindings refreshed as REGISTERs refresh
 * them. PGlite runs no autovacuum; the control below holds that premise to the engine we ship.
 */
import { mkdtempSync, rmSync } from 'fs';
import os from 'os';
import path from 'path';
import type { Knex } from 'knex';
import { openRuntime, type Runtime } from '../../../server/runtime';
import { configSchema } from '../../../server/config';
import { startEmbeddedVacuum } from '../../../services/directory/embedded-vacuum';
import type { Binding } from '../../../services/location/types';
import { makeBinding } from '../location/fixtures';

const BINDINGS = 200;

let dataDir: string;
let rt: Runtime;
const logged: string[] = [];

beforeAll(async () => {
  dataDir = mkdtempSync(path.join(os.tmpdir(), 'sipflow-vacuum-'));
  // the timer never fires in this test: every pass is asked for
  rt = await openRuntime({ dataDir, provision: true, nonceSecret: 'vacuum-test-secret', embeddedVacuumSec: 3600, log: { log: (_, m) => logged.push(m) } });
}, 60_000);

afterAll(async () => {
  await rt?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

const bindings: Binding[] = Array.from({ length: BINDINGS }, (_, i) =>
  makeBinding({ ruid: `uloc-vacuum-${i}`, username: `vac${i}`, contact: `sip:vac${i}@10.9.0.1` }),
);

/** Every binding refreshed once, as a REGISTER refresh rewrites its row. */
async function refreshAll(round: number): Promise<void> {
  await Promise.all(bindings.map((b) => rt.store.upsert({ ...b, cseq: round, expires: new Date(b.expires.getTime() + round * 1000) })));
}

async function locationStats(knex: Knex) {
  await knex.raw('SELECT pg_stat_force_next_flush()'); // row counts otherwise reach the view at most once a second
  const rows = (
    await knex.raw<{ rows: { n_dead_tup: string; n_mod_since_analyze: string; heap: string; last_analyze: Date | null; last_autovacuum: Date | null }[] }>(
      `SELECT n_dead_tup, n_mod_since_analyze, pg_relation_size(relid) AS heap, last_analyze, last_autovacuum
         FROM pg_stat_user_tables WHERE relname = 'location'`,
    )
  ).rows;
  const r = rows[0];
  return {
    dead: Number(r.n_dead_tup),
    modified: Number(r.n_mod_since_analyze),
    heap: Number(r.heap),
    analyzed: r.last_analyze !== null,
    autovacuumed: r.last_autovacuum !== null,
  };
}

test('the runtime on the embedded database has the vacuum passes; directory.vacuumSec 0 turns them off, and a negative value is refused naming the key', async () => {
  expect(rt.vacuum).not.toBeNull();
  const off = await openRuntime({ dataDir, directoryUrl: 'memory://', embeddedVacuumSec: 0, nonceSecret: 'vacuum-test-secret' });
  try {
    expect(off.vacuum).toBeNull();
  } finally {
    await off.close();
  }
  expect(configSchema.parse({}).directory.vacuumSec).toBe(60);
  const bad = configSchema.safeParse({ directory: { vacuumSec: -1 } });
  expect(bad.success).toBe(false);
  expect(bad.error?.issues[0].path).toEqual(['directory', 'vacuumSec']);
});

test('refreshed bindings leave dead rows that PGlite never removes; a pass vacuums and analyzes the table, and the heap stops growing', async () => {
  for (let round = 1; round <= 6; round++) await refreshAll(round);
  const before = await locationStats(rt.knex);
  // the control: five rewrites of every row are all still there, and no autovacuum ran
  expect(before.dead).toBeGreaterThanOrEqual(5 * BINDINGS - 50);
  expect(before.autovacuumed).toBe(false);

  const pass = await rt.vacuum!.runOnce();
  const location = pass.actions.find((a) => a.table === 'public.location');
  expect(location).toMatchObject({ what: 'vacuum analyze', deadRows: before.dead });
  const after = await locationStats(rt.knex);
  expect(after).toMatchObject({ dead: 0, modified: 0, analyzed: true });
  expect(pass.oldestXidAge).toBeGreaterThan(0);

  // with a pass after each round, the space of the dead versions is reused: the heap that held
  // six versions of every row does not grow through twelve more rounds (without the passes it
  // would need room for twelve more)
  for (let round = 7; round <= 18; round++) {
    await refreshAll(round);
    await rt.vacuum!.runOnce();
  }
  expect((await locationStats(rt.knex)).heap).toBeLessThanOrEqual(before.heap);
  for (const b of bindings.slice(0, 3)) expect((await rt.store.find(b.username, null)).map((x) => x.cseq)).toEqual([18]);
});

test('a pass leaves alone a table under the thresholds', async () => {
  await rt.vacuum!.runOnce();
  await rt.store.upsert({ ...bindings[0], cseq: 99 }); // one dead row: far under 50 + 20 % of 200
  const pass = await rt.vacuum!.runOnce();
  expect(pass.actions.map((a) => a.table)).not.toContain('public.location');
  expect(pass.database).toBe(false);
  expect((await locationStats(rt.knex)).dead).toBe(1);
  expect(logged.filter((m) => /failed/.test(m))).toEqual([]);
});

test('a statement that fails is logged naming the table, and the pass goes on to the next table', async () => {
  await rt.knex.raw('CREATE TABLE IF NOT EXISTS vacuum_probe (n integer)');
  await rt.knex.raw('INSERT INTO vacuum_probe SELECT generate_series(1, 300)');
  await rt.knex.raw('DELETE FROM vacuum_probe');
  for (let round = 19; round <= 22; round++) await refreshAll(round); // location past its threshold too
  const notes: string[] = [];
  // the real database, but the probe table's VACUUM fails as a locked or dropped table's would
  const raw = (sql: string, ...rest: unknown[]) =>
    /vacuum_probe/.test(sql) && /^VACUUM/.test(sql)
      ? Promise.reject(new Error('canceling statement due to lock timeout'))
      : (rt.knex.raw as (...a: unknown[]) => unknown)(sql, ...rest);
  const failing = new Proxy(rt.knex, { get: (target, key, receiver) => (key === 'raw' ? raw : Reflect.get(target, key, receiver)) });
  const vacuum = startEmbeddedVacuum(failing, { intervalMs: 3_600_000, log: { log: (level, m) => notes.push(`${level}: ${m}`) } });
  try {
    const pass = await vacuum.runOnce();
    expect(notes).toContain('warn: embedded database: vacuum analyze of public.vacuum_probe failed: canceling statement due to lock timeout');
    expect(pass.actions.map((a) => a.table)).toContain('public.location');
    expect(pass.actions.map((a) => a.table)).not.toContain('public.vacuum_probe');
  } finally {
    await vacuum.stop();
    await rt.knex.raw('DROP TABLE vacuum_probe');
  }
});
