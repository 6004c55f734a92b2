/**
 * Loading a `.slid`: envelope schema, each node's values against its type's schema, graph rules,
 * then compilation of every logic into closures (a node type whose check or compile throws, a
 * plug-in's bug, is a problem of that node). Every problem is reported, each located as
 * `file › logic 24 "registration" › node 3 "check authUsername" › values/conditions/1/operator: …`.
 */
import type { CompileContext, CompiledNode, Exit, NodeType } from './node-type';
import { NodeRegistry, formatAjvErrors } from './registry';
import { atPointer } from './schema-walk';
import { START_TYPE, nodeEntries, nodeKey, parseSlidText, type SlidDocument, type SlidLogic, type SlidNode } from './slid';
import { secretVariables } from './secrets';
import { compileValue } from './values';
import type { Problem, Severity } from './problem';
import { knownVariablesOf } from './known-variables';
import { reviewExits, reviewValueFields } from './review-variables';

export { formatProblem, type Problem, type Severity } from './problem';

export interface CompiledLogic {
  id: string;
  name: string;
  start: CompiledNode;
  nodes: Map<string, CompiledNode>;
}

export interface CompiledService {
  logics: Map<string, CompiledLogic>;
  /** By id, then by name. */
  find(idOrName: string): CompiledLogic | undefined;
  /** Variables holding secrets (engine/secrets.ts), computed once when the file is compiled. */
  secrets?: ReadonlySet<string>;
}

export interface LoadResult {
  doc?: SlidDocument;
  problems: Problem[];
  /** Present when there is no error. */
  service?: CompiledService;
}

export { START_TYPE } from './slid';

const unset = (v: unknown) => v === undefined || v === null || v === '';
const errorText = (e: unknown) => (e instanceof Error ? e.message : String(e));

/** Locates an envelope error path `/24/nodes/3/type` as logic, node and pointer. */
function locateEnvelopePath(doc: Record<string, unknown>, path: string): Pick<Problem, 'logicId' | 'logicName' | 'nodeId' | 'nodeName' | 'pointer'> {
  const parts = path.split('/').slice(1);
  if (parts.length === 0) return {};
  const logicId = parts[0];
  const logic = doc[logicId] as Record<string, unknown> | undefined;
  const logicName = typeof logic?.name === 'string' ? logic.name : undefined;
  if (parts[1] === 'nodes' && parts.length >= 3) {
    const node = (logic?.nodes as Record<string, Record<string, unknown>> | undefined)?.[parts[2]];
    return {
      logicId,
      logicName,
      nodeId: node && node.id !== undefined ? String(node.id) : parts[2],
      nodeName: typeof node?.name === 'string' ? node.name : undefined,
      pointer: parts.slice(3).join('/') || undefined,
    };
  }
  return { logicId, logicName, pointer: parts.slice(1).join('/') || undefined };
}

export function loadSlidText(text: string, file: string, registry: NodeRegistry): LoadResult {
  const parsed = parseSlidText(text);
  if (parsed.error) return { problems: [{ severity: 'error', file, message: parsed.error }] };
  return loadSlid(parsed.doc, file, registry);
}

export function loadSlid(input: unknown, file: string, registry: NodeRegistry): LoadResult {
  const problems: Problem[] = [];
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    return { problems: [{ severity: 'error', file, message: 'must be a JSON object of service logics keyed by id' }] };
  }
  // Logics whose envelope is broken are not checked further; every other logic still is, so
  // that one file reports all of its problems.
  const broken = new Set<string>();
  if (!registry.validateEnvelope(input)) {
    for (const e of registry.validateEnvelope.errors ?? []) {
      const [formatted] = formatAjvErrors([e]);
      const loc = locateEnvelopePath(input as Record<string, unknown>, e.instancePath);
      const extra = e.keyword === 'required' ? String(e.params.missingProperty) : undefined;
      const pointer = [loc.pointer, extra].filter(Boolean).join('/') || undefined;
      problems.push({ severity: 'error', file, ...loc, pointer, message: formatted.message });
      if (loc.logicId === undefined) return { doc: input as SlidDocument, problems };
      broken.add(loc.logicId);
    }
  }
  const doc = input as SlidDocument;
  const logicIds = new Set(Object.keys(doc));
  const logicNames = new Set(Object.values(doc).map((l) => l?.name));

  const reachable: Array<{ logicId: string; logic: SlidLogic; nodes: SlidNode[] }> = [];
  for (const [logicId, logic] of Object.entries(doc)) {
    if (broken.has(logicId)) continue;
    const nodes = checkLogic(file, logicId, logic, registry, problems, (ref) => logicIds.has(ref) || logicNames.has(ref));
    reachable.push({ logicId, logic, nodes });
  }
  reviewAfterAuth(file, reachable, registry, problems);
  reviewFields(file, doc, reachable, registry, problems);
  if (problems.some((p) => p.severity === 'error')) return { doc, problems };
  const service = compileService(doc, registry, (p) => problems.push({ severity: 'error', file, ...p }));
  if (problems.some((p) => p.severity === 'error')) return { doc, problems };
  return { doc, problems, service };
}

/** A warning located at a field of a node. */
function nodeWarning(file: string, logicId: string, logic: SlidLogic, node: SlidNode, pointer: string, message: string): Problem {
  return { severity: 'warning', file, logicId, logicName: logic.name, nodeId: nodeKey(node.id), nodeName: node.name, pointer, message };
}

/**
 * Security review: in a file where some logic authenticates requests, every reachable node's
 * `reviewAfterAuth` warnings (a location save without the AoR ownership tie). The whole file
 * counts because a restart after authentication re-enters the top-level logic, which may reach
 * the node through sub-logic calls.
 */
function reviewAfterAuth(
  file: string,
  reachable: Array<{ logicId: string; logic: SlidLogic; nodes: SlidNode[] }>,
  registry: NodeRegistry,
  problems: Problem[],
): void {
  const authenticates = reachable.some((l) => l.nodes.some((n) => registry.get(n.type)?.authenticates === true));
  if (!authenticates) return;
  for (const { logicId, logic, nodes } of reachable) {
    for (const node of nodes) {
      for (const [pointer, message] of registry.get(node.type)?.reviewAfterAuth?.(node.values) ?? [])
        problems.push(nodeWarning(file, logicId, logic, node, `values/${pointer}`, message));
    }
  }
}

/**
 * Review warnings at the field (engine/review-variables.ts): value fields naming a variable no
 * node sets, literal marks on known variables, unconnected exits. Reachable live nodes only
 * (an unreachable node already has its own warning).
 */
function reviewFields(
  file: string,
  doc: SlidDocument,
  reachable: Array<{ logicId: string; logic: SlidLogic; nodes: SlidNode[] }>,
  registry: NodeRegistry,
  problems: Problem[],
): void {
  const known = knownVariables(doc, registry);
  for (const { logicId, logic, nodes } of reachable) {
    for (const node of nodes) {
      const type = registry.get(node.type);
      if (!type || node.values === null || typeof node.values !== 'object') continue;
      const warnings = [...reviewValueFields(node, type, known), ...reviewExits(registry.exits(type, node.values))];
      for (const w of warnings) problems.push(nodeWarning(file, logicId, logic, node, w.pointer, w.message));
    }
  }
}

/** Checks one logic; returns its live nodes reachable from the start (all live ones when it has no single start). */
function checkLogic(
  file: string,
  logicId: string,
  logic: SlidLogic,
  registry: NodeRegistry,
  problems: Problem[],
  logicExists: (ref: string) => boolean,
): SlidNode[] {
  const at = (node: SlidNode | undefined, pointer: string | undefined, message: string, severity: Severity = 'error') =>
    problems.push({
      severity,
      file,
      logicId,
      logicName: logic.name,
      nodeId: node ? nodeKey(node.id) : undefined,
      nodeName: node?.name,
      pointer,
      message,
    });

  const live = new Map<string, SlidNode>();
  const archived = new Set<string>();
  for (const [key, node] of nodeEntries(logic)) {
    const id = nodeKey(node.id);
    if (!Array.isArray(logic.nodes) && key !== id) at(node, 'id', `does not match its key "${key}"`);
    if (live.has(id) || archived.has(id)) {
      at(node, 'id', 'is used by another node of this logic');
      continue;
    }
    if (node.archived === true) archived.add(id);
    else live.set(id, node);
  }

  const starts = [...live.values()].filter((n) => n.type === START_TYPE);
  if (starts.length === 0) at(undefined, undefined, `has no live ${START_TYPE} node`);
  if (starts.length > 1) for (const s of starts.slice(1)) at(s, 'type', `is a second live ${START_TYPE} node (a logic has exactly one)`);

  const edges = new Map<string, string[]>();
  for (const [id, node] of live) {
    const type = registry.get(node.type);
    if (!type) {
      at(node, 'type', `unknown node type "${node.type}"`);
      continue;
    }
    for (const e of registry.validateValues(node.type, node.values)) at(node, `values${e.pointer ? '/' + e.pointer : ''}`, e.message);
    // a check that throws (a plug-in's bug) is the node's problem, not the loader's crash
    let checked: Array<[string, string]>;
    try {
      checked = type.check?.(node.values) ?? [];
    } catch (e) {
      checked = [['', `check failed: ${errorText(e)}`]];
    }
    for (const [pointer, message] of checked) at(node, pointer ? `values/${pointer}` : 'values', message);
    checkLogicRefs(type, node, at, logicExists);
    const targets: string[] = [];
    for (const exit of registry.exits(type, node.values)) {
      const where = `values/${exit.pointer}`;
      if (unset(exit.target)) {
        if (exit.required) at(node, where, 'must point to a node');
        continue;
      }
      const target = nodeKey(exit.target);
      if (archived.has(target)) at(node, where, `points to archived node ${target}`);
      else if (!live.has(target)) at(node, where, `points to missing node ${target}`);
      else targets.push(target);
    }
    edges.set(id, targets);
  }

  if (starts.length === 1) {
    const seen = new Set<string>([nodeKey(starts[0].id)]);
    const queue = [nodeKey(starts[0].id)];
    while (queue.length)
      for (const t of edges.get(queue.pop()!) ?? [])
        if (!seen.has(t)) {
          seen.add(t);
          queue.push(t);
        }
    for (const [id, node] of live) if (!seen.has(id)) at(node, undefined, 'is unreachable from the start node', 'warning');
    return [...live].filter(([id]) => seen.has(id)).map(([, n]) => n);
  }
  return [...live.values()];
}

/** Fields annotated `x-logic` name another logic of the same file. */
function checkLogicRefs(type: NodeType, node: SlidNode, at: (n: SlidNode, p: string, m: string) => void, logicExists: (ref: string) => boolean) {
  const props = (type.valuesSchema.properties ?? {}) as Record<string, Record<string, unknown>>;
  for (const [key, schema] of Object.entries(props)) {
    if (!schema['x-logic']) continue;
    const ref = atPointer(node.values, key);
    if (!unset(ref) && !logicExists(String(ref))) at(node, `values/${key}`, `names no logic of this file: ${String(ref)}`);
  }
}

/**
 * Variables known to the logics of a file: the predefined ones and every variable a live node of
 * any of its logics writes. The whole file counts (not only the logic itself) because sub-logics
 * share the call descriptor: a caller reads what its sub-logic stored (e.g. `customer_name`).
 */
export function knownVariables(doc: SlidDocument, registry: NodeRegistry): Set<string> {
  return knownVariablesOf(doc, (node) => {
    const type = registry.get(node.type);
    return type ? registry.writes(type, node.values) : undefined;
  });
}

/** Where a node's compile step failed (loadSlid reports it as a located error). */
export type CompileFailure = Pick<Problem, 'logicId' | 'logicName' | 'nodeId' | 'nodeName' | 'message'>;

/**
 * Compiles every logic. A node type whose compile throws (a plug-in's bug, or values no check
 * caught) goes to `onFailure`, located; without it the error is thrown, naming the node.
 */
export function compileService(doc: SlidDocument, registry: NodeRegistry, onFailure?: (f: CompileFailure) => void): CompiledService {
  const logics = new Map<string, CompiledLogic>();
  const known = knownVariables(doc, registry);
  const secrets = secretVariables(doc, registry, known);
  const fail =
    onFailure ??
    ((f: CompileFailure) => {
      throw new Error(`logic ${f.logicId} "${f.logicName}" › node ${f.nodeId} "${f.nodeName}": ${f.message}`);
    });
  for (const [logicId, logic] of Object.entries(doc)) logics.set(logicId, compileLogic(logicId, logic, registry, known, secrets, fail));
  const byName = new Map<string, CompiledLogic>();
  for (const l of logics.values()) if (!byName.has(l.name)) byName.set(l.name, l);
  return { logics, find: (ref) => logics.get(ref) ?? byName.get(ref), secrets };
}

function compileLogic(
  logicId: string,
  logic: SlidLogic,
  registry: NodeRegistry,
  known: ReadonlySet<string>,
  secrets: ReadonlySet<string>,
  fail: (f: CompileFailure) => void,
): CompiledLogic {
  const nodes = new Map<string, CompiledNode>();
  const pending: Array<{ exit: Exit & { node: CompiledNode | null }; target: string }> = [];
  let start: CompiledNode | undefined;

  const live = nodeEntries(logic).filter(([, n]) => n.archived !== true);
  for (const [, node] of live) {
    const id = nodeKey(node.id);
    const compiled: CompiledNode = {
      id,
      name: node.name ?? '',
      type: node.type,
      logicId,
      run: () => {
        throw new Error('not compiled');
      },
    };
    nodes.set(id, compiled);
    if (node.type === START_TYPE) start = compiled;
  }
  for (const [, node] of live) {
    const type = registry.get(node.type)!;
    const compiled = nodes.get(nodeKey(node.id))!;
    const exits = new Map<string, Exit>();
    for (const field of registry.exits(type, node.values)) {
      const exit: Exit = { pointer: field.pointer, node: null };
      exits.set(field.pointer, exit);
      if (!unset(field.target)) pending.push({ exit, target: nodeKey(field.target) });
    }
    const ctx: CompileContext = {
      value: (raw) => compileValue(raw, known),
      isVariable: (raw) => typeof raw === 'string' && known.has(raw),
      exit: (pointer) => {
        let e = exits.get(pointer);
        if (!e) {
          e = { pointer, node: null };
          exits.set(pointer, e);
        }
        return e;
      },
      where: `logic ${logicId} "${logic.name}" › node ${compiled.id} "${compiled.name}"`,
      isSecret: (name) => secrets.has(name),
    };
    let message: string | undefined;
    try {
      const run: unknown = type.compile(node.values, ctx);
      if (typeof run === 'function') compiled.run = run as CompiledNode['run'];
      else message = 'does not compile: its compile step returned no run function';
    } catch (e) {
      message = `does not compile: ${errorText(e)}`;
    }
    if (message !== undefined) fail({ logicId, logicName: logic.name, nodeId: compiled.id, nodeName: compiled.name, message });
  }
  for (const { exit, target } of pending) exit.node = nodes.get(target) ?? null;
  if (!start) throw new Error(`logic ${logicId} has no start node`);
  return { id: logicId, name: logic.name, start, nodes };
}
