/**
 * Flows files imported at start (server/flows/bootstrap.ts, sipflow.shipped_imports): the first
 * start imports and activates each file once; a later start imports what changed (an edited file,
 * a new one, a `--flows` folder never seen) as a release that is not active, and says so in a log
 * line naming the file, the release and how to activate it; an unchanged file is skipped silently.
 * Against the shared PostgreSQL (a scratch database per test), through openFlows: the code
 * `sipflow serve` runs, under its startup lock, each start with its own pool.
 */
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import knexFactory, { type Knex } from 'knex';
import { builtinRegistry } from '../../../nodes';
import { configSchema } from '../../../server/config';
import { createLogger } from '../../../server/logger';
import { openRuntime } from '../../../server/runtime';
import { openFlows } from '../../../server/serve';
import { scratchDatabase } from '../../setup/servers';
import { SHIPPED_FLOWS } from '../../support/serve';

jest.setTimeout(120_000);

const SHIPPED = ['call-screening', 'incoming-call', 'outgoing-call', 'pbx', 'registration', 'routing'];

/** One start as `sipflow serve` does it; returns the log lines at warn and above (pino JSON's msg). */
async function start(directoryUrl: string, flows: string): Promise<string[]> {
  const lines: string[] = [];
  const logger = createLogger({ level: 'warn', destination: { write: (s: string) => void lines.push(JSON.parse(s).msg as string) } });
  const config = configSchema.parse({ flows, directory: { url: directoryUrl }, location: { url: 'memory' } });
  const rt = await openRuntime({ dataDir: '/nonexistent', directoryUrl, locationUrl: 'memory', provision: true, nonceSecret: 'x'.repeat(32) });
  try {
    (await openFlows(config, rt, builtinRegistry(), logger)).close();
  } finally {
    await rt.close();
  }
  return lines;
}

const releases = async (knex: Knex) =>
  ((await knex('sipflow.releases').select('flow', 'version').orderBy(['flow', 'version'])) as Array<{ flow: string; version: number }>).map(
    (r) => `${r.flow}@${r.version}`,
  );
const active = async (knex: Knex) =>
  Object.fromEntries(((await knex('sipflow.activations').select('flow', 'version')) as Array<{ flow: string; version: number }>).map((r) => [r.flow, r.version]));

/** A copy of the shipped flows to edit. */
function copyOfShipped(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sipflow-flows-'));
  cpSync(SHIPPED_FLOWS, dir, { recursive: true });
  return dir;
}

/** An edit that keeps the flow valid: the same document, written with other indentation. */
const reindent = (file: string, spaces: number) => writeFileSync(file, JSON.stringify(JSON.parse(readFileSync(file, 'utf8')), null, spaces));

let db: { url: string; drop(): Promise<void> };
let knex: Knex;
beforeEach(async () => {
  db = await scratchDatabase(`shipped_imports_${expect.getState().currentTestName?.replace(/\W+/g, '_').slice(0, 30)}`);
  knex = knexFactory({ client: 'pg', connection: db.url, pool: { min: 0, max: 1 } });
});
afterEach(async () => {
  await knex.destroy();
  await db.drop();
});

test('first start imports and activates each file once; an unchanged later start imports nothing and says nothing', async () => {
  expect(await start(db.url, SHIPPED_FLOWS)).toEqual([]);
  expect(await releases(knex)).toEqual(SHIPPED.map((f) => `${f}@1`));
  expect(await active(knex)).toEqual(Object.fromEntries(SHIPPED.map((f) => [f, 1])));
  const recorded = (await knex('sipflow.shipped_imports').select('flow', 'file', 'version')) as Array<{ flow: string; file: string; version: number }>;
  expect(recorded.map((r) => r.flow).sort()).toEqual(SHIPPED);
  expect(recorded.find((r) => r.flow === 'pbx')).toMatchObject({ file: path.join(SHIPPED_FLOWS, 'pbx.slid'), version: 1 });

  expect(await start(db.url, SHIPPED_FLOWS)).toEqual([]);
  expect(await releases(knex)).toEqual(SHIPPED.map((f) => `${f}@1`));
});

test('an edited file and a new one on a later start: releases not active, one log line each naming file, release and how to activate; the development copy untouched', async () => {
  const dir = copyOfShipped();
  await start(db.url, dir);
  // the operator's unreleased edit in the designer must survive the import
  await knex('sipflow.flows').where({ name: 'pbx' }).update({ development: '{"operator":"edit"}' });
  reindent(path.join(dir, 'pbx.slid'), 4);
  cpSync(path.join(dir, 'registration.slid'), path.join(dir, 'extra.slid'));

  const lines = await start(db.url, dir);
  expect(lines).toEqual([
    `flows: ${path.join(dir, 'extra.slid')} is a new flow "extra": imported as release 1, not active; activate it in the designer (Releases) or with POST /api/v1/flows/extra/releases/1/activate`,
    `flows: ${path.join(dir, 'pbx.slid')} differs from every release of flow "pbx": imported as release 2, not active (release 1 stays active); activate it in the designer (Releases) or with POST /api/v1/flows/pbx/releases/2/activate`,
  ]);
  expect(await releases(knex)).toEqual(expect.arrayContaining(['extra@1', 'pbx@1', 'pbx@2']));
  expect(await active(knex)).toMatchObject({ pbx: 1 });
  expect((await active(knex)).extra).toBeUndefined();
  expect((await knex('sipflow.releases').where({ flow: 'pbx', version: 2 }).first('slid')).slid).toBe(readFileSync(path.join(dir, 'pbx.slid'), 'utf8'));
  expect((await knex('sipflow.flows').where({ name: 'pbx' }).first('development')).development).toBe('{"operator":"edit"}');

  // once imported, the same content is not imported again
  expect(await start(db.url, dir)).toEqual([]);
  expect((await releases(knex)).length).toBe(SHIPPED.length + 2);
});

test('--flows pointing at a folder never imported: its files imported as releases, not active; a broken file is named and the rest imported', async () => {
  await start(db.url, SHIPPED_FLOWS);
  const other = mkdtempSync(path.join(os.tmpdir(), 'sipflow-other-'));
  cpSync(path.join(SHIPPED_FLOWS, 'routing.slid'), path.join(other, 'routing.slid'));
  reindent(path.join(other, 'routing.slid'), 1);
  // the same content as release 1 (the .slid and its test cases): nothing to do
  for (const f of ['pbx.slid', 'pbx.tests.json']) cpSync(path.join(SHIPPED_FLOWS, f), path.join(other, f));
  writeFileSync(path.join(other, 'broken.slid'), '{"not": "a flow"');
  const lines = await start(db.url, other);
  expect(lines).toEqual([
    expect.stringMatching(new RegExp(`^bootstrap: ${path.join(other, 'broken.slid')} not imported: `)),
    expect.stringContaining(`flows: ${path.join(other, 'routing.slid')} differs from every release of flow "routing": imported as release 2, not active`),
  ]);
  expect(await releases(knex)).toEqual([...SHIPPED.map((f) => `${f}@1`), 'routing@2'].sort());
  expect(await active(knex)).toMatchObject({ routing: 1 });
});

test('a store from before shipped_imports: its releases count as imported, nothing is imported again', async () => {
  await start(db.url, SHIPPED_FLOWS);
  await knex('sipflow.shipped_imports').delete();
  expect(await start(db.url, SHIPPED_FLOWS)).toEqual([]);
  expect(await releases(knex)).toEqual(SHIPPED.map((f) => `${f}@1`));
  expect(Number((await knex('sipflow.shipped_imports').count({ n: '*' }))[0].n)).toBe(SHIPPED.length);
});

test('two instances starting together on a changed folder import the change once, and only one says so', async () => {
  const dir = copyOfShipped();
  await start(db.url, dir);
  reindent(path.join(dir, 'outgoing-call.slid'), 3);
  const [a, b] = await Promise.all([start(db.url, dir), start(db.url, dir)]);
  expect([...a, ...b]).toEqual([expect.stringContaining('flow "outgoing-call": imported as release 2, not active')]);
  expect(await releases(knex)).toEqual([...SHIPPED.map((f) => `${f}@1`), 'outgoing-call@2'].sort());
});
