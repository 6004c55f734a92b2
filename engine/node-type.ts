/**
 * The contract of a node type (one module per type under nodes/, in the spirit of n8n's nodes):
 * a type string, the JSON Schema of its `values`, its exits, the variables it writes, and a
 * compile step that turns its values into a closure run once per visit.
 */
import type { OwnedAor } from './ports';
import type { CallDescriptor, CdValue, Outcome, RunContext } from './types';

export type JsonSchema = Record<string, unknown>;

/** Where an exit field sits in `values` and which node it names. */
export interface ExitField {
  /** JSON pointer inside `values`, without leading slash: `next`, `conditions/0/ifTrue`. */
  pointer: string;
  /** The raw id as written in the file (number or string), or undefined/null/"" when unset. */
  target: unknown;
  /** An unset required exit is a validation error; an unset optional one ends the run (see `missingExit`). */
  required: boolean;
  /**
   * The schema marks it `x-optional`: leaving it unset has a meaning of its own (the node falls back
   * to `next`, or the relay's last answer stands…), so the loader does not warn that it is unconnected.
   */
  optional?: boolean;
}

/** A resolved exit, allocated once at compile time (so taking it allocates nothing). */
export interface Exit {
  readonly pointer: string;
  /** Filled in after every node of the logic is compiled; null = exit left unset. */
  node: CompiledNode | null;
}

/** Ends the run with an outcome. */
export interface Finish {
  readonly finish: Outcome;
  /**
   * Where the logic continues when the outcome's effect fails: a relay whose every attempt failed
   * (output.relay's `ifAllFailed`). The front end resumes the run there (engine/run.ts
   * RunResult.resume) with `lastCode` and `lastRequestURI` set.
   */
  readonly resume?: Exit;
}
/** Re-runs the top-level logic from its start with the same CD (after successful authentication). */
export interface Restart {
  readonly restart: true;
}
/** Runs another logic; its exit node continues at `ret`. */
export interface CallLogic {
  readonly call: string;
  readonly ret: Exit;
}

export type StepResult = Exit | Finish | Restart | CallLogic;

/** Per-message state a node sees. */
export interface RunState {
  readonly cd: CallDescriptor;
  readonly ctx: RunContext;
  /** Writes a variable (and records it in the trace when tracing). */
  set(name: string, value: CdValue): void;
  get(name: string): CdValue;
  /**
   * The digest username the authenticate node verified for this message, kept across the
   * restart; null before. Not a variable, so no node of a logic can forge it.
   */
  readonly authenticated: string | null;
  /** Called by the authenticate node when the credentials verified. */
  authenticate(username: string): void;
  /**
   * The AoR a username owns, read from the directory beside its credentials earlier in this run
   * (engine/ports.ts AorOwnershipPort.alongside; nodes/query-database.ts); null before. Not a
   * variable, so no node of a logic can forge it; the location save uses it only for that username.
   */
  readonly ownedRead: { username: string; owned: OwnedAor | null } | null;
  /** Called by the query node when it read a username's owned AoR alongside. */
  noteOwnedRead(username: string, owned: OwnedAor | null): void;
}

export type NodeRun = (s: RunState) => StepResult | Promise<StepResult>;

/** Reads a value field: a variable reference, a literal, or a string with `[name]` placeholders. */
export type ValueGetter = (vars: Record<string, CdValue>) => CdValue;

export interface CompileContext {
  /** Resolves a value field as docs/semantics.md says: known variable → reference, else literal. */
  value(raw: unknown): ValueGetter;
  /** True when `raw` names a variable known to the logic. */
  isVariable(raw: unknown): boolean;
  /** The exit at a pointer of this node (as declared by `exits`). */
  exit(pointer: string): Exit;
  /** Location for runtime errors: `logic 24 "registration" › node 5 "retrieve password"`. */
  where: string;
  /** True when the variable holds a secret (engine/secrets.ts): nodes that write text out (log) mask it. */
  isSecret?(name: string): boolean;
}

/** Palette categories of node types, in the order the designer and the docs show them. */
export const NODE_CATEGORIES = ['start', 'analysis', 'time', 'query', 'cache', 'registrar', 'manipulation', 'list', 'action', 'output', 'flow'] as const;
export type NodeCategory = (typeof NODE_CATEGORIES)[number];

export interface NodeTypeInfo {
  type: string;
  /** Human name shown in the designer's palette. */
  title: string;
  category: NodeCategory;
  description: string;
  /** JSON Schema of `values` (exits included: they are fields of values). */
  valuesSchema: JsonSchema;
  /**
   * What a node of this type does, in one line on its body in the designer: a template over its
   * `values` (data, not code, so the node-types API serves it), e.g. `{variable} {operator|op} {value}`.
   * Language: designer/src/essence.ts. An exit field's meaning is its schema's `x-exit-label`
   * template (rendered over the list item holding the exit): `found`, `{variable} {operator|op} {value}`.
   */
  summary?: string;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the registry holds node types of every values shape
export interface NodeType<V = any> extends NodeTypeInfo {
  /** The exit fields present in these values; derived from `x-exit` schema annotations when absent. */
  exits?(values: V): ExitField[];
  /** Variables this node writes (they become known to the logic); derived from `x-writes` when absent. */
  writes?(values: V): string[];
  /**
   * Variables this node makes hold a secret (passwords, HA1s, credentials), given which variables
   * are secret so far; derived from `x-secret` when absent. API answers redact them (engine/secrets.ts).
   */
  secrets?(values: V, isSecret: (name: string) => boolean): string[];
  /** Checks beyond the schema (regex syntax, …): returns problems as [pointer, message]. */
  check?(values: V): Array<[string, string]>;
  /** This node authenticates requests: `reviewAfterAuth` of the other nodes of its file applies. */
  authenticates?: boolean;
  /**
   * Security review of a node reachable in a file that authenticates requests: warnings as
   * [pointer, message] (a location save without the AoR ownership tie).
   */
  reviewAfterAuth?(values: V): Array<[string, string]>;
  compile(values: V, c: CompileContext): NodeRun;
}

export interface CompiledNode {
  readonly id: string;
  readonly name: string;
  readonly type: string;
  readonly logicId: string;
  run: NodeRun;
}

/** Thrown by a node when it cannot do its job; becomes an `error` outcome (500). */
export class NodeRunError extends Error {}
