/**
 * Flows with versions, kept in the directory database (schema `sipflow`):
 *
 *   flows        (name pk, development text, updated_at)        the editable copy, always error-free
 *   releases     (flow, version, slid text, note, created_at)    frozen copies: a trigger refuses UPDATE
 *   activations  (flow pk, version, activated_at)                which release each flow runs
 *
 * The stored text is the `.slid` exactly as it was given (import, save), so export returns it byte
 * for byte: the round trip is lossless.
 *
 * Activation compiles the release first (a release that does not compile is refused and nothing
 * changes), commits the activation row, then swaps this instance's active set with one assignment:
 * a request that already took `active()` finishes on the service it took, the next one gets the new
 * service, and no half-loaded state is ever visible. Other instances notice by polling
 * `max(activated_at)` (one index-less aggregate over a table with one row per flow) every
 * `pollIntervalMs`; activations are serialized by an advisory lock so that timestamp order is commit
 * order and no activation can hide behind a later one.
 */
import { readFileSync, readdirSync, statSync } from 'fs';
import path from 'path';
import type { Knex } from 'knex';
import { formatProblem, loadSlidText, type CompiledLogic, type CompiledService, type Problem } from '../engine/load';
import type { NodeRegistry } from '../engine/registry';
import type { SlidDocument } from '../engine/slid';
import { builtinRegistry } from '../nodes';

const FLOWS = 'sipflow.flows';
const RELEASES = 'sipflow.releases';
const ACTIVATIONS = 'sipflow.activations';
/** Advisory lock serializing activations across instances (arbitrary constant). */
const ACTIVATION_LOCK = 0x5f10f;

export const FLOW_NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$';
const FLOW_NAME = new RegExp(FLOW_NAME_PATTERN);

// ---------------------------------------------------------------- errors

/** A `.slid` with errors: every problem, located. HTTP 400. */
export class FlowProblemsError extends Error {
  readonly status = 400;
  constructor(readonly problems: Problem[], what: string) {
    const errors = problems.filter((p) => p.severity === 'error');
    super(`${what}: ${errors.length} error(s): ${errors.map(formatProblem).join('; ')}`);
  }
}
export class FlowNotFoundError extends Error { readonly status = 404; }
export class FlowInputError extends Error { readonly status = 400; }

// ---------------------------------------------------------------- types

export interface ReleaseInfo { version: number; createdAt: string; note: string | null }
export interface LogicInfo { id: string; name: string }

export interface FlowSummary {
  name: string;
  updatedAt: string;
  logics: LogicInfo[];
  latestVersion: number | null;
  activeVersion: number | null;
}

export interface FlowDetail extends FlowSummary {
  /** The development copy as stored (parsed). */
  development: SlidDocument;
  /** Warnings of the development copy (it never has errors). */
  problems: Problem[];
  releases: ReleaseInfo[];
  active: { version: number; activatedAt: string } | null;
}

export interface ActiveFlow { flow: string; version: number; service: CompiledService; /** The release's `.slid` text (SIP worker threads compile it themselves). */ text: string }

/** What an `onActivate` listener receives: the new active set, already compiled. */
export interface ActivationEvent {
  /** Flows whose active version changed in this swap. */
  changed: Array<{ flow: string; version: number }>;
  /** The new composite service (same object `active()` now returns). */
  service: CompiledService;
  /** Increments on every swap. */
  generation: number;
  /** 'local': activated through this instance; 'poll': noticed from another instance; 'start': initial load. */
  source: 'local' | 'poll' | 'start';
}

export interface ResolvedLogic { flow: string; version: number; service: CompiledService; logic: CompiledLogic }

export interface FlowsStore {
  /** The composite service of every active flow (unqualified refs: primary flow first, then by flow name; `flow/logic` qualifies). */
  active(): CompiledService;
  /** Which flow, version and flow-local service a logic ref resolves to in the active set. */
  resolve(ref: string): ResolvedLogic | undefined;
  /** The active flows (snapshot). */
  activeFlows(): ActiveFlow[];
  generation(): number;
  /** Called after every swap of the active set; returns the unsubscribe function. Listener errors are swallowed. */
  onActivate(listener: (e: ActivationEvent) => void): () => void;

  /** Validates a `.slid` text (nothing stored). */
  validate(text: string, file?: string): Problem[];
  list(): Promise<FlowSummary[]>;
  exists(name: string): Promise<boolean>;
  get(name: string): Promise<FlowDetail>;
  /** Saves the development copy (creating the flow when `create`); errors → FlowProblemsError; returns warnings. */
  saveDevelopment(name: string, text: string, opts?: { create?: boolean }): Promise<{ created: boolean; problems: Problem[] }>;
  /** Freezes the current development copy as version N+1. */
  release(name: string, note?: string | null): Promise<ReleaseInfo>;
  /** Compiles release `version`, records it as active, swaps. */
  activate(name: string, version: number): Promise<{ version: number; activatedAt: string }>;
  /** The stored `.slid` text: a release, the development copy, or (default) the active release else development. */
  exportText(name: string, version?: number | 'development'): Promise<{ text: string; version: number | 'development' }>;
  /** The compiled service of a flow's release or development copy (for simulation). */
  compiled(name: string, version?: number | 'development'): Promise<{ service: CompiledService; version: number | 'development' }>;
  /** On an empty store: imports every `*.slid` of `dir` (or the one file `dir` names) as a flow named after its file, released as v1 and activated. */
  bootstrap(dir: string): Promise<string[]>;
  /** Reloads the active set when another instance activated something; true when it changed. */
  refresh(): Promise<boolean>;
  /** Polls `refresh()` every `ms` (unref'd timer); returns the stop function. */
  startPolling(ms?: number): () => void;
  /** Reads the database: throws when it is unreachable (readiness). */
  ping(): Promise<void>;
  close(): void;
}

export interface FlowsStoreOptions {
  knex: Knex;
  registry?: NodeRegistry;
  /** Flow whose logics win unqualified refs (e.g. the one holding the default logic). */
  primary?: string;
  /** Poll interval for other instances' activations (default 2000 ms; used by startPolling()). */
  pollIntervalMs?: number;
  /** Warnings (e.g. a poll failure); default silent. */
  onWarning?: (message: string, err?: unknown) => void;
}

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

const MIGRATIONS = [flowTables];

/** Own migration table (sipflow.knex_migrations), so it never mixes with the directory's list. */
const MIGRATOR_CONFIG: Knex.MigratorConfig = {
  migrationSource: {
    getMigrations: async () => MIGRATIONS,
    getMigrationName: (m: Migration) => m.name,
    getMigration: async (m: Migration) => m,
  } as Knex.MigrationSource<Migration>,
  tableName: 'knex_migrations',
  schemaName: 'sipflow',
};

/** Creates or updates the `sipflow` schema; returns the migrations applied. */
export async function migrateFlows(knex: Knex): Promise<string[]> {
  await knex.raw('CREATE SCHEMA IF NOT EXISTS sipflow');
  const [, applied] = await knex.migrate.latest(MIGRATOR_CONFIG) as [number, string[]];
  return applied;
}

// ---------------------------------------------------------------- composite service

/**
 * One service over several flows. Unqualified refs search the flows in order (primary first);
 * `flow/ref` names a flow explicitly. Sub-logic calls of a flow resolve through this service too,
 * and every shipped flow's calls resolve inside the flow that makes them when it is the primary;
 * use `resolve()` + the flow's own service to keep calls strictly flow-local.
 */
export function composeFlows(ordered: Array<Pick<ActiveFlow, 'flow' | 'version' | 'service'>>): { service: CompiledService; resolve(ref: string): ResolvedLogic | undefined } {
  const byFlow = new Map(ordered.map((f) => [f.flow, f]));
  const resolve = (ref: string): ResolvedLogic | undefined => {
    const slash = ref.indexOf('/');
    if (slash > 0) {
      const f = byFlow.get(ref.slice(0, slash));
      if (f) {
        const logic = f.service.find(ref.slice(slash + 1));
        return logic ? { flow: f.flow, version: f.version, service: f.service, logic } : undefined;
      }
    }
    for (const f of ordered) {
      const logic = f.service.find(ref);
      if (logic) return { flow: f.flow, version: f.version, service: f.service, logic };
    }
    return undefined;
  };
  const logics = new Map<string, CompiledLogic>();
  for (const f of ordered) {
    for (const [id, l] of f.service.logics) {
      if (!logics.has(id)) logics.set(id, l);
      logics.set(`${f.flow}/${id}`, l);
    }
  }
  const cache = new Map<string, CompiledLogic | undefined>();
  const service: CompiledService = {
    logics,
    // every flow's secret variables (engine/secrets.ts): a composed run may cross flows
    secrets: new Set(ordered.flatMap((f) => [...(f.service.secrets ?? [])])),
    find(ref) {
      if (cache.has(ref)) return cache.get(ref);
      const found = resolve(ref)?.logic;
      cache.set(ref, found);
      return found;
    },
  };
  return { service, resolve };
}

// ---------------------------------------------------------------- store

interface ActiveSet {
  generation: number;
  flows: ActiveFlow[];
  service: CompiledService;
  resolve(ref: string): ResolvedLogic | undefined;
  /** max(activated_at)::text this set reflects. */
  stamp: string | null;
}

const iso = (v: unknown): string => (v instanceof Date ? v.toISOString() : new Date(String(v)).toISOString());

export async function createFlowsStore(o: FlowsStoreOptions): Promise<FlowsStore> {
  const { knex } = o;
  const registry = o.registry ?? builtinRegistry();
  const warn = o.onWarning ?? (() => undefined);
  const listeners = new Set<(e: ActivationEvent) => void>();
  /** Compiled releases, by `flow@version` (releases are frozen, so entries never go stale). */
  const compiledReleases = new Map<string, { service: CompiledService; text: string }>();
  await migrateFlows(knex);

  const empty = composeFlows([]);
  let current: ActiveSet = { generation: 0, flows: [], service: empty.service, resolve: empty.resolve, stamp: null };

  function checkName(name: string): void {
    if (!FLOW_NAME.test(name)) throw new FlowInputError(`flow name "${name}" must match ${FLOW_NAME_PATTERN}`);
  }

  function compileText(text: string, file: string): { service?: CompiledService; problems: Problem[]; doc?: SlidDocument } {
    const r = loadSlidText(text, file, registry);
    return { service: r.service, problems: r.problems, doc: r.doc };
  }

  async function compileRelease(flow: string, version: number, db: Knex | Knex.Transaction = knex): Promise<{ service: CompiledService; text: string }> {
    const key = `${flow}@${version}`;
    const hit = compiledReleases.get(key);
    if (hit) return hit;
    const row = await db(RELEASES).where({ flow, version }).first('slid') as { slid: string } | undefined;
    if (!row) throw new FlowNotFoundError(`flow "${flow}" has no release ${version}`);
    const r = compileText(row.slid, `${flow} v${version}`);
    if (!r.service) throw new FlowProblemsError(r.problems, `flow "${flow}" release ${version} does not compile`);
    const compiled = { service: r.service, text: row.slid };
    compiledReleases.set(key, compiled);
    return compiled;
  }

  function order(flows: ActiveFlow[]): ActiveFlow[] {
    return [...flows].sort((a, b) => {
      if (a.flow === o.primary) return -1;
      if (b.flow === o.primary) return 1;
      return a.flow < b.flow ? -1 : a.flow > b.flow ? 1 : 0;
    });
  }

  /** Reads every activation, compiles what is new, swaps when anything changed. */
  async function reload(source: ActivationEvent['source']): Promise<boolean> {
    const rows = await knex(ACTIVATIONS).select('flow', 'version', knex.raw('activated_at::text as stamp')) as Array<{ flow: string; version: number; stamp: string }>;
    const stamp = rows.reduce<string | null>((m, r) => (m === null || r.stamp > m ? r.stamp : m), null);
    const before = new Map(current.flows.map((f) => [f.flow, f.version]));
    const next: ActiveFlow[] = [];
    const changed: Array<{ flow: string; version: number }> = [];
    for (const r of rows) {
      const version = Number(r.version);
      let compiled: { service: CompiledService; text: string };
      try {
        compiled = await compileRelease(r.flow, version);
      } catch (e) {
        // A release that no longer compiles (e.g. a node type removed since) keeps the previous one running.
        warn(`flow "${r.flow}" release ${version} cannot be activated here: ${(e as Error).message}`, e);
        const prev = current.flows.find((f) => f.flow === r.flow);
        if (prev) next.push(prev);
        continue;
      }
      next.push({ flow: r.flow, version, service: compiled.service, text: compiled.text });
      if (before.get(r.flow) !== version) changed.push({ flow: r.flow, version });
    }
    const removed = [...before.keys()].some((f) => !rows.some((r) => r.flow === f));
    if (changed.length === 0 && !removed && current.generation > 0) {
      current = { ...current, stamp };
      return false;
    }
    const ordered = order(next);
    const c = composeFlows(ordered);
    // The swap: one assignment; readers holding the previous set keep it until they finish.
    current = { generation: current.generation + 1, flows: ordered, service: c.service, resolve: c.resolve, stamp };
    const event: ActivationEvent = { changed, service: c.service, generation: current.generation, source };
    for (const l of listeners) {
      try { l(event); } catch (e) { warn(`onActivate listener failed: ${(e as Error).message}`, e); }
    }
    return true;
  }

  async function flowRow(name: string, db: Knex | Knex.Transaction = knex) {
    const row = await db(FLOWS).where({ name }).first('name', 'development', 'updated_at') as
      { name: string; development: string; updated_at: unknown } | undefined;
    if (!row) throw new FlowNotFoundError(`no flow "${name}"`);
    return row;
  }

  async function saveDevelopment(name: string, text: string, opts: { create?: boolean } = {}) {
    checkName(name);
    const r = compileText(text, `${name}.slid`);
    if (!r.service) throw new FlowProblemsError(r.problems, `flow "${name}"`);
    const warnings = r.problems;
    return knex.transaction(async (trx) => {
      const exists = await trx(FLOWS).where({ name }).first('name').forUpdate();
      if (!exists) {
        if (!opts.create) throw new FlowNotFoundError(`no flow "${name}" (import it first)`);
        await trx(FLOWS).insert({ name, development: text, updated_at: trx.fn.now() });
        return { created: true, problems: warnings };
      }
      await trx(FLOWS).where({ name }).update({ development: text, updated_at: trx.fn.now() });
      return { created: false, problems: warnings };
    });
  }

  async function release(name: string, note: string | null = null): Promise<ReleaseInfo> {
    checkName(name);
    return knex.transaction(async (trx) => {
      // Row lock on the flow: two concurrent releases get N+1 and N+2, never the same number.
      const flow = await trx(FLOWS).where({ name }).first('development').forUpdate() as { development: string } | undefined;
      if (!flow) throw new FlowNotFoundError(`no flow "${name}"`);
      const { max } = await trx(RELEASES).where({ flow: name }).max({ max: 'version' }).first() as { max: number | null };
      const version = Number(max ?? 0) + 1;
      const [row] = await trx(RELEASES).insert({ flow: name, version, slid: flow.development, note, created_at: trx.fn.now() })
        .returning(['version', 'created_at', 'note']) as Array<{ version: number; created_at: unknown; note: string | null }>;
      return { version: Number(row.version), createdAt: iso(row.created_at), note: row.note };
    });
  }

  async function activate(name: string, version: number, source: ActivationEvent['source'] = 'local') {
    checkName(name);
    await flowRow(name);
    // Compile first: a release that does not compile is refused and nothing changes.
    await compileRelease(name, version);
    const at = await knex.transaction(async (trx) => {
      await trx.raw('SELECT pg_advisory_xact_lock(?)', [ACTIVATION_LOCK]);
      const res = await trx.raw(
        `INSERT INTO ${ACTIVATIONS} (flow, version, activated_at) VALUES (?, ?, clock_timestamp())
         ON CONFLICT (flow) DO UPDATE SET version = EXCLUDED.version, activated_at = EXCLUDED.activated_at
         RETURNING activated_at`, [name, version]) as { rows: Array<{ activated_at: unknown }> };
      return iso(res.rows[0].activated_at);
    });
    await reload(source);
    return { version, activatedAt: at };
  }

  async function releasesOf(name: string): Promise<ReleaseInfo[]> {
    const rows = await knex(RELEASES).where({ flow: name }).orderBy('version').select('version', 'created_at', 'note') as
      Array<{ version: number; created_at: unknown; note: string | null }>;
    return rows.map((r) => ({ version: Number(r.version), createdAt: iso(r.created_at), note: r.note }));
  }

  const store: FlowsStore = {
    active: () => current.service,
    resolve: (ref) => current.resolve(ref),
    activeFlows: () => current.flows.slice(),
    generation: () => current.generation,
    onActivate(listener) {
      listeners.add(listener);
      return () => { listeners.delete(listener); };
    },

    validate: (text, file = 'flow.slid') => compileText(text, file).problems,

    async list() {
      const rows = await knex(`${FLOWS} as f`)
        .leftJoin(`${ACTIVATIONS} as a`, 'a.flow', 'f.name')
        .select('f.name', 'f.development', 'f.updated_at', 'a.version as active_version',
          knex.raw(`(SELECT max(r.version) FROM ${RELEASES} r WHERE r.flow = f.name) as latest_version`))
        .orderBy('f.name') as Array<{ name: string; development: string; updated_at: unknown; active_version: number | null; latest_version: number | null }>;
      return rows.map((r) => {
        const c = compileText(r.development, `${r.name}.slid`);
        return {
          name: r.name,
          updatedAt: iso(r.updated_at),
          logics: c.doc ? Object.entries(c.doc).map(([id, l]) => ({ id, name: String(l?.name ?? '') })) : [],
          latestVersion: r.latest_version === null ? null : Number(r.latest_version),
          activeVersion: r.active_version === null ? null : Number(r.active_version),
        };
      });
    },

    async exists(name) {
      checkName(name);
      return (await knex(FLOWS).where({ name }).first('name')) !== undefined;
    },

    async get(name) {
      checkName(name);
      const row = await flowRow(name);
      const c = compileText(row.development, `${name}.slid`);
      const releases = await releasesOf(name);
      const act = await knex(ACTIVATIONS).where({ flow: name }).first('version', 'activated_at') as { version: number; activated_at: unknown } | undefined;
      return {
        name,
        updatedAt: iso(row.updated_at),
        logics: c.doc ? Object.entries(c.doc).map(([id, l]) => ({ id, name: String(l?.name ?? '') })) : [],
        latestVersion: releases.length ? releases[releases.length - 1].version : null,
        activeVersion: act ? Number(act.version) : null,
        development: (c.doc ?? JSON.parse(row.development)) as SlidDocument,
        problems: c.problems,
        releases,
        active: act ? { version: Number(act.version), activatedAt: iso(act.activated_at) } : null,
      };
    },

    saveDevelopment,
    release,
    activate: (name, version) => activate(name, version),

    async exportText(name, version) {
      checkName(name);
      const row = await flowRow(name);
      if (version === 'development') return { text: row.development, version: 'development' };
      let v = version;
      if (v === undefined) {
        const act = await knex(ACTIVATIONS).where({ flow: name }).first('version') as { version: number } | undefined;
        if (!act) return { text: row.development, version: 'development' };
        v = Number(act.version);
      }
      const rel = await knex(RELEASES).where({ flow: name, version: v }).first('slid') as { slid: string } | undefined;
      if (!rel) throw new FlowNotFoundError(`flow "${name}" has no release ${v}`);
      return { text: rel.slid, version: v };
    },

    async compiled(name, version) {
      checkName(name);
      if (version === 'development') {
        const row = await flowRow(name);
        const c = compileText(row.development, `${name}.slid`);
        if (!c.service) throw new FlowProblemsError(c.problems, `flow "${name}" development copy`);
        return { service: c.service, version: 'development' };
      }
      if (version === undefined) {
        const act = current.flows.find((f) => f.flow === name);
        if (act) return { service: act.service, version: act.version };
        await flowRow(name);
        return store.compiled(name, 'development');
      }
      await flowRow(name);
      return { service: (await compileRelease(name, version)).service, version };
    },

    async bootstrap(dir) {
      const { n } = await knex(FLOWS).count({ n: '*' }).first() as { n: string | number };
      if (Number(n) > 0) { await reload('start'); return []; }
      // config `flows` names a folder of .slid files or one file
      const single = statSync(dir).isFile();
      const files = single ? [path.basename(dir)] : readdirSync(dir).filter((f) => f.endsWith('.slid')).sort();
      const folder = single ? path.dirname(dir) : dir;
      const imported: string[] = [];
      for (const file of files) {
        const name = flowNameOf(file);
        const text = readFileSync(path.join(folder, file), 'utf8');
        try {
          await saveDevelopment(name, text, { create: true });
        } catch (e) {
          // Another instance bootstrapping at the same moment, or a broken shipped file: skip it.
          warn(`bootstrap: ${file} not imported: ${(e as Error).message}`, e);
          continue;
        }
        const rel = await release(name, `imported from ${file}`);
        await activate(name, rel.version, 'start');
        imported.push(name);
      }
      await reload('start');
      return imported;
    },

    async refresh() {
      const row = await knex(ACTIVATIONS).first(knex.raw('max(activated_at)::text as stamp')) as { stamp: string | null } | undefined;
      if ((row?.stamp ?? null) === current.stamp && current.generation > 0) return false;
      return reload('poll');
    },

    startPolling(ms = o.pollIntervalMs ?? 2000) {
      let running = false;
      const timer = setInterval(() => {
        if (running) return;
        running = true;
        store.refresh().catch((e) => warn(`flow activation poll failed: ${(e as Error).message}`, e)).finally(() => { running = false; });
      }, ms);
      timer.unref();
      return () => clearInterval(timer);
    },

    async ping() { await knex.raw('SELECT 1'); },

    close() { listeners.clear(); },
  };
  await reload('start');
  return store;
}

/** Reads the name of a flow from a file name (`flows/pbx.slid` → `pbx`). */
export const flowNameOf = (file: string) => path.basename(file).replace(/\.slid$/i, '');
