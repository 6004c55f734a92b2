/**
 * What the flows store answers (the API's flow JSON, also read by the designer) and its contract.
 * Types only: importing this module pulls in no code.
 */
import type { CompiledLogic, CompiledService } from '../../engine/load';
import type { Problem } from '../../engine/problem';
import type { NodeRegistry } from '../../engine/registry';
import type { SlidDocument } from '../../engine/slid';

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
  /** The development copy's revision (hash of its stored text; the `ETag` of GET, `If-Match` of PUT). */
  revision: string;
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

/** Options of a save: create when new; refuse when the stored revision differs / when the flow exists. */
export interface SaveOptions { create?: boolean; ifRevision?: string; ifAbsent?: boolean }

export interface ResolvedLogic { flow: string; version: number; service: CompiledService; logic: CompiledLogic }

export interface FlowsStore {
  /** The node types flows compile with: the built-ins plus the configured plug-ins (the API validates and lists with it too). */
  readonly registry: NodeRegistry;
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
  /**
   * Saves the development copy (creating the flow when `create`); errors → FlowProblemsError; returns
   * warnings and the new revision. `ifRevision`: FlowStaleError (409) when the stored revision differs;
   * `ifAbsent`: FlowConflictError (409) when the flow exists (checked under the row lock).
   */
  saveDevelopment(name: string, text: string, opts?: SaveOptions): Promise<{ created: boolean; problems: Problem[]; revision: string }>;
  /** Freezes the current development copy as version N+1 (`ifRevision`: FlowStaleError, 409, when it is no longer that revision). */
  release(name: string, note?: string | null, opts?: { ifRevision?: string }): Promise<ReleaseInfo>;
  /** Compiles release `version`, records it as active, swaps. */
  activate(name: string, version: number): Promise<{ version: number; activatedAt: string }>;
  /** The stored `.slid` text: a release, the development copy, or (default) the active release else development. */
  exportText(name: string, version?: number | 'development'): Promise<{ text: string; version: number | 'development'; /** of the development copy */ revision: string }>;
  /**
   * Renames a flow with its releases and activation (409 when `to` exists; the primary flow is refused).
   * An active flow keeps running under its new name (this instance swaps now, others on their next poll).
   */
  rename(from: string, to: string): Promise<{ active: boolean }>;
  /** Deletes a flow with its releases; an active flow only with `force` (then taken out of the active set). The primary flow is refused. */
  remove(name: string, opts?: { force?: boolean }): Promise<{ active: boolean }>;
  /** The compiled service of a flow's release or development copy (for simulation). */
  compiled(name: string, version?: number | 'development'): Promise<{ service: CompiledService; version: number | 'development' }>;
  /**
   * Imports every `*.slid` of `dir` (or the one file `dir` names) as a flow named after its file: on
   * an empty store released as v1 and activated; later, content not imported before as a new
   * release, not active (onNote says so). Returns the names given a release.
   */
  bootstrap(dir: string): Promise<string[]>;
  /** Reloads the active set when another instance activated something; true when it changed. */
  refresh(): Promise<boolean>;
  /** Polls `refresh()` every `ms` (unref'd timer); returns the stop function. */
  startPolling(ms?: number): () => void;
  /** Reads the database: throws when it is unreachable (readiness). */
  ping(): Promise<void>;
  /** The test document (`<flow>.tests.json`) of the development copy (default) or of a release, as stored; null: none. */
  testsText(name: string, version?: number | 'development'): Promise<{ text: string | null; version: number | 'development' }>;
  /** Validates and stores the development copy's test document (null removes it); TestDocumentError (400) naming the problem. */
  saveTests(name: string, text: string | null): Promise<void>;
  close(): void;
}
