/**
 * Persistence of the flows, in the directory database (schema `sipflow`):
 *
 *   flows        (name pk, development text, updated_at)        the editable copy, always error-free
 *   releases     (flow, version, slid text, note, created_at)    frozen copies: a trigger refuses UPDATE
 *   activations  (flow pk, version, activated_at)                which release each flow runs
 *   shipped_imports (flow, sha256 pk; file, version, imported_at) each `.slid` content imported at
 *                start (./bootstrap.ts), so a later start imports a changed file once, an
 *                unchanged one never; no foreign key: a flow the operator deleted or renamed keeps
 *                its rows, and its unchanged file does not come back
 *
 * The stored text is the `.slid` exactly as it was given (import, save), so export returns it byte
 * for byte: the round trip is lossless. This module reads and writes rows and nothing else: it
 * neither compiles nor checks a `.slid` (the store does, before it writes).
 *
 * Activations are serialized by an advisory lock so that timestamp order is commit order and no
 * activation can hide behind a later one (other instances poll `max(activated_at)`).
 */
import type { Knex } from 'knex';
import { FlowConflictError, FlowNotFoundError, FlowStaleError } from './errors';
import { revisionOf } from './revision';
import type { ReleaseInfo } from './types';

const FLOWS = 'sipflow.flows';
const RELEASES = 'sipflow.releases';
const ACTIVATIONS = 'sipflow.activations';
const SHIPPED_IMPORTS = 'sipflow.shipped_imports';
/** Advisory lock serializing activations across instances (arbitrary constant). */
const ACTIVATION_LOCK = 0x5f10f;

// ---------------------------------------------------------------- migration

interface Migration { name: string; up(k: Knex): Promise<void>; down(k: Knex): Promise<void> }

const flowTables: Migration = {
  name: 'sipflow_001_flows_releases_activations',
  async up(knex) {
    await knex.schema.createSchemaIfNotExists('sipflow');
    await knex.schema.withSchema('sipflow').createTable('flows', (t) => {
      t.text('name').primary();
      t.text('development').notNullable();
      t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    });
    await knex.schema.withSchema('sipflow').createTable('releases', (t) => {
      t.text('flow').notNullable().references('name').inTable(FLOWS).onDelete('CASCADE');
      t.integer('version').notNullable();
      t.text('slid').notNullable();
      t.text('note').nullable();
      t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
      t.primary(['flow', 'version']);
    });
    await knex.schema.withSchema('sipflow').createTable('activations', (t) => {
      t.text('flow').primary().references('name').inTable(FLOWS).onDelete('CASCADE');
      t.integer('version').notNullable();
      t.timestamp('activated_at', { useTz: true, precision: 6 }).notNullable();
      t.foreign(['flow', 'version']).references(['flow', 'version']).inTable(RELEASES);
    });
    // Releases are frozen: an UPDATE is an error, whoever issues it.
    await knex.raw(`CREATE FUNCTION sipflow.releases_frozen() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN RAISE EXCEPTION 'sipflow.releases rows are frozen (flow %, version %)', OLD.flow, OLD.version; END $$`);
    await knex.raw('CREATE TRIGGER releases_frozen BEFORE UPDATE ON sipflow.releases FOR EACH ROW EXECUTE FUNCTION sipflow.releases_frozen()');
  },
  async down(knex) {
    await knex.schema.withSchema('sipflow').dropTableIfExists('activations');
    await knex.schema.withSchema('sipflow').dropTableIfExists('releases');
    await knex.schema.withSchema('sipflow').dropTableIfExists('flows');
    await knex.raw('DROP FUNCTION IF EXISTS sipflow.releases_frozen()');
  },
};

/** Test cases (server/flows/test-cases): the development copy's, and each release's, frozen with it. */
const flowTests: Migration = {
  name: 'sipflow_002_flow_tests',
  async up(knex) {
    await knex.raw('ALTER TABLE sipflow.flows ADD COLUMN tests text NULL');
    await knex.raw('ALTER TABLE sipflow.releases ADD COLUMN tests text NULL');
  },
  async down(knex) {
    await knex.raw('ALTER TABLE sipflow.releases DROP COLUMN IF EXISTS tests');
    await knex.raw('ALTER TABLE sipflow.flows DROP COLUMN IF EXISTS tests');
  },
};

/** What each start imported from a flows folder (./bootstrap.ts): flow name and content hash. */
const shippedImports: Migration = {
  name: 'sipflow_003_shipped_imports',
  async up(knex) {
    await knex.schema.withSchema('sipflow').createTable('shipped_imports', (t) => {
      t.text('flow').notNullable();
      t.text('sha256').notNullable();
      t.text('file').notNullable();
      t.integer('version').nullable();
      t.timestamp('imported_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
      t.primary(['flow', 'sha256']);
    });
  },
  async down(knex) {
    await knex.schema.withSchema('sipflow').dropTableIfExists('shipped_imports');
  },
};

const MIGRATIONS = [flowTables, flowTests, shippedImports];

/** Own migration table (sipflow.knex_migrations), so it never mixes with the directory's list. */
const MIGRATOR_CONFIG: Knex.MigratorConfig = {
  migrationSource: {
    getMigrations: async () => MIGRATIONS,
    getMigrationName: (m: Migration) => m.name,
    getMigration: async (m: Migration) => m,
  } as Knex.MigrationSource<Migration>,
  // as the directory's (services/directory/migrations.ts): an older version starts on a newer schema
  disableMigrationsListValidation: true,
  tableName: 'knex_migrations',
  schemaName: 'sipflow',
};

/** Creates or updates the `sipflow` schema; returns the migrations applied. */
export async function migrateFlows(knex: Knex): Promise<string[]> {
  await knex.raw('CREATE SCHEMA IF NOT EXISTS sipflow');
  const [, applied] = await knex.migrate.latest(MIGRATOR_CONFIG) as [number, string[]];
  return applied;
}

// ---------------------------------------------------------------- rows

const iso = (v: unknown): string => (v instanceof Date ? v.toISOString() : new Date(String(v)).toISOString());

export interface FlowRow { name: string; development: string; updatedAt: string }
export interface FlowListRow extends FlowRow { latestVersion: number | null; activeVersion: number | null }
export interface ActivationRow { flow: string; version: number; /** activated_at::text (compared as text, microseconds kept). */ stamp: string }

export interface SaveExpectation { ifRevision?: string; ifAbsent?: boolean }

/** What `activationStamp()` answers for these activations (the store compares the two). */
export const activationStampOf = (max: string | null, count: number): string | null => (max === null ? null : `${max}|${count}`);

export interface FlowsRepository {
  /** Every flow with its latest and active version, by name. */
  list(): Promise<FlowListRow[]>;
  exists(name: string): Promise<boolean>;
  /** The flow's row; FlowNotFoundError when there is none. */
  flow(name: string): Promise<FlowRow>;
  count(): Promise<number>;
  /**
   * Writes the development copy (row-locked); inserts the flow when `create`, else
   * FlowNotFoundError when there is none. True when it was created. Under the same lock:
   * `ifRevision` refuses (FlowStaleError) when the stored copy's revision differs; `ifAbsent`
   * refuses (FlowConflictError) when the flow exists.
   */
  saveDevelopment(name: string, text: string, create: boolean, expect?: SaveExpectation): Promise<boolean>;
  /**
   * Freezes the current development copy as version N+1 (row lock: concurrent releases get N+1 and N+2).
   * `ifRevision`: FlowStaleError when the development copy is no longer that revision (checked under the lock).
   */
  release(name: string, note: string | null, ifRevision?: string): Promise<ReleaseInfo>;
  /**
   * Freezes `slid` (with `tests`) as version N+1 without touching the development copy (an import
   * at start must not overwrite the operator's unreleased edits); row lock as release().
   */
  releaseCopy(name: string, slid: string, tests: string | null, note: string): Promise<ReleaseInfo>;
  /** The newest release of `flow` whose text and test cases are exactly these; undefined when none. */
  releaseMatching(flow: string, slid: string, tests: string | null): Promise<number | undefined>;
  /** Whether this content of `flow` was imported at a start before (sipflow.shipped_imports). */
  shippedImported(flow: string, sha256: string): Promise<boolean>;
  /** Records an import at start (a second record of the same content is ignored). */
  recordShippedImport(row: { flow: string; sha256: string; file: string; version: number | null }): Promise<void>;
  /** The `.slid` text of a release; undefined when there is no such release. */
  releaseText(flow: string, version: number): Promise<string | undefined>;
  releases(name: string): Promise<ReleaseInfo[]>;
  activation(name: string): Promise<{ version: number; activatedAt: string } | undefined>;
  activations(): Promise<ActivationRow[]>;
  /** `max(activated_at)::text|count`, null when nothing is active (the count tells a deleted activation). */
  activationStamp(): Promise<string | null>;
  /** Records `version` as the active release of `name` (serialized by an advisory lock); returns activated_at. */
  recordActivation(name: string, version: number): Promise<string>;
  ping(): Promise<void>;
  /** Renames a flow with its releases and activation (see renameFlow). */
  rename(from: string, to: string): Promise<{ active: boolean }>;
  /** Deletes a flow with its releases and activation (see deleteFlow). */
  remove(name: string): Promise<{ active: boolean }>;
  /** The development copy's test document (text as stored), null when it has none; FlowNotFoundError when there is no flow. */
  developmentTests(name: string): Promise<string | null>;
  /** Writes (null: removes) the development copy's test document; FlowNotFoundError when there is no flow. */
  saveDevelopmentTests(name: string, text: string | null): Promise<void>;
  /** A release's test document (null: none); undefined when there is no such release. */
  releaseTests(flow: string, version: number): Promise<string | null | undefined>;
}

/** The repository over `knex`; run `migrateFlows(knex)` first. */
export function createFlowsRepository(knex: Knex): FlowsRepository {
  return {
    async list() {
      const rows = await knex(`${FLOWS} as f`)
        .leftJoin(`${ACTIVATIONS} as a`, 'a.flow', 'f.name')
        .select('f.name', 'f.development', 'f.updated_at', 'a.version as active_version',
          knex.raw(`(SELECT max(r.version) FROM ${RELEASES} r WHERE r.flow = f.name) as latest_version`))
        .orderBy('f.name') as Array<{ name: string; development: string; updated_at: unknown; active_version: number | null; latest_version: number | null }>;
      return rows.map((r) => ({
        name: r.name,
        development: r.development,
        updatedAt: iso(r.updated_at),
        latestVersion: r.latest_version === null ? null : Number(r.latest_version),
        activeVersion: r.active_version === null ? null : Number(r.active_version),
      }));
    },

    async exists(name) {
      return (await knex(FLOWS).where({ name }).first('name')) !== undefined;
    },

    async flow(name) {
      const row = await knex(FLOWS).where({ name }).first('name', 'development', 'updated_at') as
        { name: string; development: string; updated_at: unknown } | undefined;
      if (!row) throw new FlowNotFoundError(`no flow "${name}"`);
      return { name: row.name, development: row.development, updatedAt: iso(row.updated_at) };
    },

    async count() {
      const { n } = await knex(FLOWS).count({ n: '*' }).first() as { n: string | number };
      return Number(n);
    },

    saveDevelopment(name, text, create, expect = {}) {
      return knex.transaction(async (trx) => {
        const exists = await trx(FLOWS).where({ name }).first('name', 'development').forUpdate() as { development: string } | undefined;
        if (exists && expect.ifAbsent) throw new FlowConflictError(`flow "${name}" already exists`);
        if (exists && expect.ifRevision !== undefined) {
          const current = revisionOf(exists.development);
          if (current !== expect.ifRevision)
            throw new FlowStaleError(current, `flow "${name}" changed since it was loaded (revision ${expect.ifRevision}; now ${current})`);
        }
        if (!exists) {
          if (!create) throw new FlowNotFoundError(`no flow "${name}" (import it first)`);
          await trx(FLOWS).insert({ name, development: text, updated_at: trx.fn.now() });
          return true;
        }
        await trx(FLOWS).where({ name }).update({ development: text, updated_at: trx.fn.now() });
        return false;
      });
    },

    release(name, note, ifRevision) {
      return knex.transaction(async (trx) => {
        // Row lock on the flow: two concurrent releases get N+1 and N+2, never the same number.
        const flow = await trx(FLOWS).where({ name }).first('development', 'tests').forUpdate() as { development: string; tests: string | null } | undefined;
        if (!flow) throw new FlowNotFoundError(`no flow "${name}"`);
        if (ifRevision !== undefined && revisionOf(flow.development) !== ifRevision)
          throw new FlowStaleError(revisionOf(flow.development), `flow "${name}" changed since it was loaded (revision ${ifRevision}): not released`);
        const { max } = await trx(RELEASES).where({ flow: name }).max({ max: 'version' }).first() as { max: number | null };
        const version = Number(max ?? 0) + 1;
        const [row] = await trx(RELEASES).insert({ flow: name, version, slid: flow.development, tests: flow.tests, note, created_at: trx.fn.now() })
          .returning(['version', 'created_at', 'note']) as Array<{ version: number; created_at: unknown; note: string | null }>;
        return { version: Number(row.version), createdAt: iso(row.created_at), note: row.note };
      });
    },

    releaseCopy(name, slid, tests, note) {
      return knex.transaction(async (trx) => {
        const flow = await trx(FLOWS).where({ name }).first('name').forUpdate();
        if (!flow) throw new FlowNotFoundError(`no flow "${name}"`);
        const { max } = await trx(RELEASES).where({ flow: name }).max({ max: 'version' }).first() as { max: number | null };
        const version = Number(max ?? 0) + 1;
        const [row] = await trx(RELEASES).insert({ flow: name, version, slid, tests, note, created_at: trx.fn.now() })
          .returning(['version', 'created_at', 'note']) as Array<{ version: number; created_at: unknown; note: string | null }>;
        return { version: Number(row.version), createdAt: iso(row.created_at), note: row.note };
      });
    },

    async releaseMatching(flow, slid, tests) {
      const q = knex(RELEASES).where({ flow, slid });
      const row = await (tests === null ? q.whereNull('tests') : q.where({ tests })).orderBy('version', 'desc').first('version') as { version: number } | undefined;
      return row === undefined ? undefined : Number(row.version);
    },

    async shippedImported(flow, sha256) {
      return (await knex(SHIPPED_IMPORTS).where({ flow, sha256 }).first('flow')) !== undefined;
    },

    async recordShippedImport(row) {
      await knex(SHIPPED_IMPORTS).insert({ ...row, imported_at: knex.fn.now() }).onConflict(['flow', 'sha256']).ignore();
    },

    async releaseText(flow, version) {
      const row = await knex(RELEASES).where({ flow, version }).first('slid') as { slid: string } | undefined;
      return row?.slid;
    },

    async releases(name) {
      const rows = await knex(RELEASES).where({ flow: name }).orderBy('version').select('version', 'created_at', 'note') as
        Array<{ version: number; created_at: unknown; note: string | null }>;
      return rows.map((r) => ({ version: Number(r.version), createdAt: iso(r.created_at), note: r.note }));
    },

    async activation(name) {
      const act = await knex(ACTIVATIONS).where({ flow: name }).first('version', 'activated_at') as { version: number; activated_at: unknown } | undefined;
      return act ? { version: Number(act.version), activatedAt: iso(act.activated_at) } : undefined;
    },

    async activations() {
      const rows = await knex(ACTIVATIONS).select('flow', 'version', knex.raw('activated_at::text as stamp')) as Array<{ flow: string; version: number; stamp: string }>;
      return rows.map((r) => ({ flow: r.flow, version: Number(r.version), stamp: r.stamp }));
    },

    async activationStamp() {
      const row = await knex(ACTIVATIONS).first(knex.raw('max(activated_at)::text as stamp'), knex.raw('count(*) as n')) as { stamp: string | null; n: string | number } | undefined;
      return row?.stamp ? activationStampOf(row.stamp, Number(row.n)) : null;
    },

    recordActivation(name, version) {
      return knex.transaction(async (trx) => {
        await trx.raw('SELECT pg_advisory_xact_lock(?)', [ACTIVATION_LOCK]);
        const res = await trx.raw(
          `INSERT INTO ${ACTIVATIONS} (flow, version, activated_at) VALUES (?, ?, clock_timestamp())
           ON CONFLICT (flow) DO UPDATE SET version = EXCLUDED.version, activated_at = EXCLUDED.activated_at
           RETURNING activated_at`, [name, version]) as { rows: Array<{ activated_at: unknown }> };
        return iso(res.rows[0].activated_at);
      });
    },

    async ping() { await knex.raw('SELECT 1'); },

    rename: (from, to) => renameFlow(knex, from, to),
    remove: (name) => deleteFlow(knex, name),
    async developmentTests(name) {
      const row = await knex(FLOWS).where({ name }).first('tests') as { tests: string | null } | undefined;
      if (!row) throw new FlowNotFoundError(`no flow "${name}"`);
      return row.tests;
    },

    async saveDevelopmentTests(name, text) {
      const n = await knex(FLOWS).where({ name }).update({ tests: text });
      if (!n) throw new FlowNotFoundError(`no flow "${name}"`);
    },

    async releaseTests(flow, version) {
      const row = await knex(RELEASES).where({ flow, version }).first('tests') as { tests: string | null } | undefined;
      return row === undefined ? undefined : row.tests;
    },
  };
}

// ---------------------------------------------------------------- rename and delete

/** The columns of a `sipflow` table, in order (read each time: a later migration may add some). */
async function columnsOf(trx: Knex.Transaction, table: string): Promise<string[]> {
  const res = await trx.raw(
    `SELECT column_name FROM information_schema.columns WHERE table_schema = 'sipflow' AND table_name = ? ORDER BY ordinal_position`,
    [table],
  ) as { rows: Array<{ column_name: string }> };
  return res.rows.map((r) => r.column_name);
}

/** INSERT … SELECT copying every column of `table`'s rows where `key` = from, with `key` = to (and `overrides`). */
async function copyRows(trx: Knex.Transaction, table: string, key: string, from: string, to: string, overrides: Record<string, string> = {}) {
  const cols = await columnsOf(trx, table);
  const q = (c: string) => `"${c.replace(/"/g, '""')}"`;
  const select = cols.map((c) => (c === key ? '?' : overrides[c] ?? q(c)));
  await trx.raw(
    `INSERT INTO sipflow.${table} (${cols.map(q).join(', ')}) SELECT ${select.join(', ')} FROM sipflow.${table} WHERE ${q(key)} = ?`,
    [to, from],
  );
}

/**
 * Renames flow `from` to `to` in one transaction: releases are frozen (a trigger refuses UPDATE), so
 * the flow, its releases and its activation are copied under the new name (every column, whatever
 * later migrations added) and the old rows deleted. An activation is re-stamped with the current
 * time under the activation lock, so other instances' polling sees the change and swaps.
 */
export function renameFlow(knex: Knex, from: string, to: string): Promise<{ active: boolean }> {
  return knex.transaction(async (trx) => {
    await trx.raw('SELECT pg_advisory_xact_lock(?)', [ACTIVATION_LOCK]);
    const row = await trx(FLOWS).where({ name: from }).first('name').forUpdate();
    if (!row) throw new FlowNotFoundError(`no flow "${from}"`);
    if (await trx(FLOWS).where({ name: to }).first('name')) throw new FlowConflictError(`flow "${to}" already exists`);
    await copyRows(trx, 'flows', 'name', from, to);
    await copyRows(trx, 'releases', 'flow', from, to);
    const active = (await trx(ACTIVATIONS).where({ flow: from }).first('flow')) !== undefined;
    if (active) await copyRows(trx, 'activations', 'flow', from, to, { activated_at: 'clock_timestamp()' });
    await trx(ACTIVATIONS).where({ flow: from }).delete();
    await trx(RELEASES).where({ flow: from }).delete();
    await trx(FLOWS).where({ name: from }).delete();
    return { active };
  });
}

/** Deletes a flow, its releases and its activation in one transaction (under the activation lock). */
export function deleteFlow(knex: Knex, name: string): Promise<{ active: boolean }> {
  return knex.transaction(async (trx) => {
    await trx.raw('SELECT pg_advisory_xact_lock(?)', [ACTIVATION_LOCK]);
    const row = await trx(FLOWS).where({ name }).first('name').forUpdate();
    if (!row) throw new FlowNotFoundError(`no flow "${name}"`);
    const active = (await trx(ACTIVATIONS).where({ flow: name }).first('flow')) !== undefined;
    await trx(ACTIVATIONS).where({ flow: name }).delete();
    await trx(RELEASES).where({ flow: name }).delete();
    await trx(FLOWS).where({ name }).delete();
    return { active };
  });
}
