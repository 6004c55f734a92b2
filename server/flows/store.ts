/**
 * The flows store: versions in the repository (./repository.ts), compiled on demand
 * (./compile-cache.ts), the active set composed (./compose.ts) and swapped in one assignment.
 *
 * Activation compiles the release first (a release that does not compile is refused and nothing
 * changes), commits the activation row, then swaps this instance's active set with one assignment:
 * a request that already took `active()` finishes on the service it took, the next one gets the new
 * service, and no half-loaded state is ever visible. Other instances notice by polling
 * `max(activated_at)` and `count(*)` (index-less aggregates over a table with one row per flow) every
 * `pollIntervalMs`; activations are serialized by an advisory lock so that timestamp order is commit
 * order and no activation can hide behind a later one. A rename re-stamps the flow's activation and a
 * delete lowers the count, so polling notices both (a flow that disappeared leaves the active set).
 */
import type { Knex } from 'knex';
import type { CompiledService } from '../../engine/load';
import type { NodeRegistry } from '../../engine/registry';
import type { SlidDocument } from '../../engine/slid';
import { builtinRegistry } from '../../nodes';
import { seedShippedFlows, startPolling } from './bootstrap';
import { createFlowCompiler } from './compile-cache';
import { composeFlows, orderFlows } from './compose';
import { FlowConflictError, FlowInputError, FlowNotFoundError, FlowProblemsError } from './errors';
import { FLOW_NAME_PATTERN, isFlowName } from './name';
import { activationStampOf, createFlowsRepository, migrateFlows } from './repository';
import { revisionOf } from './revision';
import { parseTestDocument } from './test-cases/format';
import type { ActivationEvent, ActiveFlow, FlowsStore, ReleaseInfo, ResolvedLogic, SaveOptions } from './types';

export interface FlowsStoreOptions {
  knex: Knex;
  registry?: NodeRegistry;
  /** Flow whose logics win unqualified refs (e.g. the one holding the default logic). */
  primary?: string;
  /** Poll interval for other instances' activations (default 2000 ms; used by startPolling()). */
  pollIntervalMs?: number;
  /** Warnings (e.g. a poll failure); default silent. */
  onWarning?: (message: string, err?: unknown) => void;
  /** What bootstrap() imported on a later start, for the operator (./bootstrap.ts); default silent. */
  onNote?: (message: string) => void;
}

interface ActiveSet {
  generation: number;
  flows: ActiveFlow[];
  service: CompiledService;
  resolve(ref: string): ResolvedLogic | undefined;
  /** max(activated_at)::text this set reflects. */
  stamp: string | null;
}

function checkName(name: string): void {
  if (!isFlowName(name)) throw new FlowInputError(`flow name "${name}" must match ${FLOW_NAME_PATTERN}`);
}

export async function createFlowsStore(o: FlowsStoreOptions): Promise<FlowsStore> {
  const warn = o.onWarning ?? (() => undefined);
  const listeners = new Set<(e: ActivationEvent) => void>();
  const registry = o.registry ?? builtinRegistry();
  const compiler = createFlowCompiler(registry);
  const repo = createFlowsRepository(o.knex);
  await migrateFlows(o.knex);

  const empty = composeFlows([]);
  let current: ActiveSet = { generation: 0, flows: [], service: empty.service, resolve: empty.resolve, stamp: null };

  const compileRelease = (flow: string, version: number) => compiler.release(flow, version, async () => {
    const text = await repo.releaseText(flow, version);
    if (text === undefined) throw new FlowNotFoundError(`flow "${flow}" has no release ${version}`);
    return text;
  });

  /** Reads every activation, compiles what is new, swaps when anything changed. */
  async function reload(source: ActivationEvent['source']): Promise<boolean> {
    const rows = await repo.activations();
    const stamp = activationStampOf(rows.reduce<string | null>((m, r) => (m === null || r.stamp > m ? r.stamp : m), null), rows.length);
    const before = new Map(current.flows.map((f) => [f.flow, f]));
    const next: ActiveFlow[] = [];
    const changed: Array<{ flow: string; version: number }> = [];
    for (const { flow, version } of rows) {
      let compiled: { service: CompiledService; text: string };
      try {
        compiled = await compileRelease(flow, version);
      } catch (e) {
        // A release that no longer compiles (e.g. a node type removed since) keeps the previous one running.
        warn(`flow "${flow}" release ${version} cannot be activated here: ${(e as Error).message}`, e);
        const prev = current.flows.find((f) => f.flow === flow);
        if (prev) next.push(prev);
        continue;
      }
      next.push({ flow, version, service: compiled.service, text: compiled.text });
      // A name deleted and taken again can come back with another text under the same version.
      const prev = before.get(flow);
      if (prev?.version !== version || prev.text !== compiled.text) changed.push({ flow, version });
    }
    const removed = [...before.keys()].some((f) => !rows.some((r) => r.flow === f));
    if (changed.length === 0 && !removed && current.generation > 0) {
      current = { ...current, stamp };
      return false;
    }
    const ordered = orderFlows(next, o.primary);
    const c = composeFlows(ordered);
    // The swap: one assignment; readers holding the previous set keep it until they finish.
    current = { generation: current.generation + 1, flows: ordered, service: c.service, resolve: c.resolve, stamp };
    const event: ActivationEvent = { changed, service: c.service, generation: current.generation, source };
    for (const l of listeners) {
      try { l(event); } catch (e) { warn(`onActivate listener failed: ${(e as Error).message}`, e); }
    }
    return true;
  }

  async function saveDevelopment(name: string, text: string, opts: SaveOptions = {}) {
    checkName(name);
    // "Exists" before "has errors": the name question comes first (checked again under the row lock).
    if (opts.ifAbsent && (await repo.exists(name))) throw new FlowConflictError(`flow "${name}" already exists`);
    const r = compiler.load(text, `${name}.slid`);
    if (!r.service) throw new FlowProblemsError(r.problems, `flow "${name}"`);
    const created = await repo.saveDevelopment(name, text, opts.create === true, { ifRevision: opts.ifRevision, ifAbsent: opts.ifAbsent });
    compiler.remember(name, text, r);
    return { created, problems: r.problems, revision: revisionOf(text) };
  }

  /** Refuses renaming or deleting the primary flow: its name is the configuration's (`primary`). */
  function notPrimary(name: string, what: string) {
    if (o.primary !== undefined && name === o.primary)
      throw new FlowConflictError(`flow "${name}" is the primary flow (its logics win unqualified refs): it cannot be ${what}; configure another primary flow first`);
  }

  async function release(name: string, note: string | null = null, opts: { ifRevision?: string } = {}): Promise<ReleaseInfo> {
    checkName(name);
    return repo.release(name, note, opts.ifRevision);
  }

  async function activate(name: string, version: number, source: ActivationEvent['source'] = 'local') {
    checkName(name);
    await repo.flow(name);
    // Compile first: a release that does not compile is refused and nothing changes.
    await compileRelease(name, version);
    const at = await repo.recordActivation(name, version);
    await reload(source);
    return { version, activatedAt: at };
  }

  const store: FlowsStore = {
    registry,
    active: () => current.service,
    resolve: (ref) => current.resolve(ref),
    activeFlows: () => current.flows.slice(),
    generation: () => current.generation,
    onActivate(listener) {
      listeners.add(listener);
      return () => { listeners.delete(listener); };
    },

    validate: (text, file = 'flow.slid') => compiler.load(text, file).problems,

    async list() {
      // Summaries read the parsed development copies (cached by text): nothing is compiled.
      const rows = await repo.list();
      return rows.map((r) => ({
        name: r.name,
        updatedAt: r.updatedAt,
        logics: compiler.development(r.name, r.development).logics(),
        latestVersion: r.latestVersion,
        activeVersion: r.activeVersion,
      }));
    },

    async exists(name) {
      checkName(name);
      return repo.exists(name);
    },

    async get(name) {
      checkName(name);
      const row = await repo.flow(name);
      const dev = compiler.development(name, row.development);
      const c = dev.load();
      const releases = await repo.releases(name);
      const act = await repo.activation(name);
      return {
        name,
        updatedAt: row.updatedAt,
        logics: dev.logics(),
        latestVersion: releases.length ? releases[releases.length - 1].version : null,
        activeVersion: act ? act.version : null,
        development: (c.doc ?? JSON.parse(row.development)) as SlidDocument,
        revision: revisionOf(row.development),
        problems: c.problems,
        releases,
        active: act ?? null,
      };
    },

    saveDevelopment,
    release,
    activate: (name, version) => activate(name, version),

    async exportText(name, version) {
      checkName(name);
      const row = await repo.flow(name);
      const revision = revisionOf(row.development);
      if (version === 'development') return { text: row.development, version: 'development', revision };
      let v = version;
      if (v === undefined) {
        const act = await repo.activation(name);
        if (!act) return { text: row.development, version: 'development', revision };
        v = act.version;
      }
      const text = await repo.releaseText(name, v);
      if (text === undefined) throw new FlowNotFoundError(`flow "${name}" has no release ${v}`);
      return { text, version: v, revision };
    },

    async rename(from, to) {
      checkName(from);
      checkName(to);
      if (from === to) throw new FlowInputError('the new name is the current one');
      notPrimary(from, 'renamed');
      const r = await repo.rename(from, to);
      compiler.forget(from);
      // The active flow keeps running under its new name: swap this instance now (others poll).
      if (r.active) await reload('local');
      return r;
    },

    async remove(name, opts = {}) {
      checkName(name);
      notPrimary(name, 'deleted');
      if (!opts.force) {
        const act = await repo.activation(name);
        if (act) throw new FlowConflictError(`flow "${name}" is active (release ${act.version}): delete it with force=true to take it out of service`);
      }
      const r = await repo.remove(name);
      compiler.forget(name);
      if (r.active) await reload('local');
      return r;
    },

    async compiled(name, version) {
      checkName(name);
      if (version === 'development') {
        const row = await repo.flow(name);
        const c = compiler.development(name, row.development).load();
        if (!c.service) throw new FlowProblemsError(c.problems, `flow "${name}" development copy`);
        return { service: c.service, version: 'development' };
      }
      if (version === undefined) {
        const act = current.flows.find((f) => f.flow === name);
        if (act) return { service: act.service, version: act.version };
        await repo.flow(name);
        return store.compiled(name, 'development');
      }
      await repo.flow(name);
      return { service: (await compileRelease(name, version)).service, version };
    },

    bootstrap: (dir) => seedShippedFlows(dir, {
      count: () => repo.count(),
      exists: (name) => repo.exists(name),
      saveDevelopment: (name, text) => saveDevelopment(name, text, { create: true }),
      release: (name, note) => release(name, note),
      async releaseCopy(name, text, tests, note) {
        checkName(name);
        // the same checks as a save: a file that does not compile, or bad test cases, is no release
        const r = compiler.load(text, `${name}.slid`);
        if (!r.service) throw new FlowProblemsError(r.problems, `flow "${name}"`);
        if (tests !== null) parseTestDocument(tests, `${name}.tests.json`);
        return repo.releaseCopy(name, text, tests, note);
      },
      releaseMatching: (name, text, tests) => repo.releaseMatching(name, text, tests),
      activeVersion: async (name) => (await repo.activation(name))?.version,
      activate: (name, version) => activate(name, version, 'start'),
      reload: () => reload('start'),
      saveTests: (name, text) => store.saveTests(name, text),
      imported: (name, sha256) => repo.shippedImported(name, sha256),
      record: (row) => repo.recordShippedImport(row),
      warn,
      note: o.onNote ?? (() => undefined),
    }),

    async refresh() {
      const stamp = await repo.activationStamp();
      if (stamp === current.stamp && current.generation > 0) return false;
      return reload('poll');
    },

    startPolling: (ms = o.pollIntervalMs ?? 2000) => startPolling(() => store.refresh(), ms, warn),

    ping: () => repo.ping(),

    // ---- test cases (server/flows/test-cases): stored beside the flow, frozen with each release
    async testsText(name, version = 'development') {
      checkName(name);
      if (version === 'development') return { text: await repo.developmentTests(name), version };
      await repo.flow(name);
      const text = await repo.releaseTests(name, version);
      if (text === undefined) throw new FlowNotFoundError(`flow "${name}" has no release ${version}`);
      return { text, version };
    },

    async saveTests(name, text) {
      checkName(name);
      if (text !== null) parseTestDocument(text, `${name}.tests.json`);
      await repo.saveDevelopmentTests(name, text);
    },

    close() { listeners.clear(); },
  };
  await reload('start');
  return store;
}
