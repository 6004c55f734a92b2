/**
 * The document model: the `.slid` JSON exactly as loaded (unknown keys kept), edited by immutable
 * updates that copy only the path they change, so every untouched object stays the same object and
 * an unedited document is saved as the very text it was loaded from.
 */
import type { ExitField, NodeTypeInfo } from '../../engine/node-type';
import { knownVariablesOf } from '../../engine/known-variables';
import { exitsFromSchema, writesFromSchema } from '../../engine/schema-walk';
import { nodeKey } from '../../engine/slid';

export { nodeKey };
export type { ExitField };

export type Json = any;
export type SlidDoc = Record<string, SlidLogic>;
export interface SlidLogic {
  name?: string;
  description?: string;
  nodes: Record<string, SlidNode> | SlidNode[];
  [k: string]: Json;
}
export interface SlidNode {
  id: number | string;
  name?: string;
  type: string;
  description?: string;
  values?: Record<string, Json>;
  archived?: boolean;
  x?: number;
  y?: number;
  [k: string]: Json;
}

/** A node with the key it has in its logic's `nodes` (object key, or array index as string). */
export interface NodeEntry {
  key: string;
  node: SlidNode;
}

export function nodeEntries(logic: SlidLogic | undefined): NodeEntry[] {
  if (!logic || logic.nodes === null || typeof logic.nodes !== 'object') return [];
  if (Array.isArray(logic.nodes)) return logic.nodes.map((node, i) => ({ key: String(i), node })).filter((e) => e.node && typeof e.node === 'object');
  return Object.entries(logic.nodes)
    .filter(([, n]) => n && typeof n === 'object')
    .map(([key, node]) => ({ key, node }));
}

export function findNode(logic: SlidLogic | undefined, id: string): NodeEntry | undefined {
  return nodeEntries(logic).find((e) => nodeKey(e.node.id) === id);
}

// ---------------------------------------------------------------- pointers

export function getAt(value: Json, pointer: string): Json {
  let cur = value;
  for (const part of pointer.split('/')) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = cur[part];
  }
  return cur;
}

/** Copy of `value` with `pointer` set (copies only the objects along the path). */
export function setAt(value: Json, pointer: string, v: Json): Json {
  const [head, ...rest] = pointer.split('/');
  const base = value !== null && typeof value === 'object' ? value : /^\d+$/.test(head) ? [] : {};
  const next = rest.length === 0 ? v : setAt(base[head], rest.join('/'), v);
  if (Array.isArray(base)) {
    const copy = base.slice();
    copy[Number(head)] = next;
    return copy;
  }
  return { ...base, [head]: next };
}

// ---------------------------------------------------------------- node updates

export function updateNode(doc: SlidDoc, logicId: string, id: string, fn: (n: SlidNode) => SlidNode): SlidDoc {
  const logic = doc[logicId];
  const entry = findNode(logic, id);
  if (!entry) return doc;
  const updated = fn(entry.node);
  if (updated === entry.node) return doc;
  const nodes = Array.isArray(logic.nodes) ? logic.nodes.map((n, i) => (String(i) === entry.key ? updated : n)) : { ...logic.nodes, [entry.key]: updated };
  return { ...doc, [logicId]: { ...logic, nodes } };
}

export function addNodes(doc: SlidDoc, logicId: string, added: SlidNode[]): SlidDoc {
  const logic = doc[logicId];
  if (Array.isArray(logic.nodes)) return { ...doc, [logicId]: { ...logic, nodes: [...logic.nodes, ...added] } };
  const nodes = { ...logic.nodes };
  for (const n of added) nodes[nodeKey(n.id)] = n;
  return { ...doc, [logicId]: { ...logic, nodes } };
}

/** Removes nodes and clears every exit that pointed to them. */
export function removeNodes(doc: SlidDoc, logicId: string, ids: string[], types: Map<string, NodeTypeInfo>): SlidDoc {
  const gone = new Set(ids);
  const logic = doc[logicId];
  const nodes: SlidLogic['nodes'] = Array.isArray(logic.nodes)
    ? logic.nodes.filter((n) => !gone.has(nodeKey(n?.id)))
    : Object.fromEntries(Object.entries(logic.nodes).filter(([, n]) => !gone.has(nodeKey(n?.id))));
  let result: SlidDoc = { ...doc, [logicId]: { ...logic, nodes } };
  for (const { node } of nodeEntries(result[logicId])) {
    const t = types.get(node.type);
    if (!t) continue;
    for (const exit of exitsOf(t, node.values)) {
      if (exit.target !== undefined && exit.target !== null && gone.has(nodeKey(exit.target))) {
        result = setExit(result, logicId, nodeKey(node.id), exit.pointer, null);
      }
    }
  }
  return result;
}

export function setExit(doc: SlidDoc, logicId: string, id: string, pointer: string, target: number | string | null): SlidDoc {
  return updateNode(doc, logicId, id, (n) => (getAt(n.values, pointer) === target ? n : { ...n, values: setAt(n.values ?? {}, pointer, target) }));
}

/** A fresh id: numbers when every id of the logic is a number, else `n<k>`. */
export function newNodeId(logic: SlidLogic, taken: Set<string> = new Set()): number | string {
  const ids = nodeEntries(logic).map((e) => e.node.id);
  if (ids.every((id) => typeof id === 'number' || /^\d+$/.test(String(id)))) {
    let next = ids.reduce<number>((m, id) => Math.max(m, Number(id) + 1), 0);
    while (taken.has(String(next))) next++;
    return next;
  }
  let k = ids.length;
  while (ids.some((id) => String(id) === `n${k}`) || taken.has(`n${k}`)) k++;
  return `n${k}`;
}

// ---------------------------------------------------------------- the engine's rules (engine/schema-walk.ts, engine/known-variables.ts)

/** The exits of a node: its type's `x-exit` fields (the engine's derivation). */
export function exitsOf(t: NodeTypeInfo, values: Json): ExitField[] {
  return exitsFromSchema(t.valuesSchema, values ?? {});
}

/** The variables a node writes: its type's `x-writes` fields. */
export function writesOf(t: NodeTypeInfo, values: Json): string[] {
  return writesFromSchema(t.valuesSchema, values ?? {});
}

/**
 * Predefined variables and every variable a live node of the file's logics writes: the engine's
 * rule (engine/known-variables.ts), since sub-logics share the call descriptor.
 */
export function knownVariables(doc: SlidDoc | null, types: Map<string, NodeTypeInfo>): string[] {
  return [
    ...knownVariablesOf(doc ?? {}, (node) => {
      const t = types.get(node.type);
      return t ? writesOf(t, node.values) : undefined;
    }),
  ];
}

/** Short label of an exit pointer for the canvas. */
export function exitLabel(pointer: string): string {
  const m = /^(\w+)\/(\d+)\/(\w+)$/.exec(pointer);
  return m ? `${m[1]}/${m[2]}/${m[3]}` : pointer;
}

/** Default `values` of a new node of a type: required exits null, required arrays with one item. */
export function defaultValues(t: NodeTypeInfo): Record<string, Json> {
  const s: Json = t.valuesSchema;
  const out: Record<string, Json> = {};
  for (const key of (s.required ?? []) as string[]) {
    const p = s.properties?.[key];
    if (!p) continue;
    if (p['x-exit']) out[key] = null;
    else if (p.type === 'array') out[key] = [];
    else if (p.enum) out[key] = p.enum[0];
    else out[key] = '';
  }
  for (const [key, p] of Object.entries<Json>(s.properties ?? {})) if (p['x-exit'] && !(key in out)) out[key] = null;
  return out;
}

// ---------------------------------------------------------------- canvas notes (designer-only data the engine ignores)

/** A note on the canvas, kept in the `.slid` under `logic["x-sipflow"].notes`. */
export interface CanvasNote {
  id: string;
  text: string;
  x: number;
  y: number;
  width?: number;
  height?: number;
}

/** The notes of a logic (none when absent or malformed). */
export function notesOf(logic: SlidLogic | undefined): CanvasNote[] {
  const notes = logic?.['x-sipflow']?.notes;
  return Array.isArray(notes) ? notes.filter((n) => n && typeof n === 'object' && typeof n.id === 'string') : [];
}

/** Copy of the document with a logic's notes replaced (other `x-sipflow` keys kept). */
export function setNotes(doc: SlidDoc, logicId: string, notes: CanvasNote[]): SlidDoc {
  const logic = doc[logicId];
  if (!logic) return doc;
  const xs = logic['x-sipflow'] && typeof logic['x-sipflow'] === 'object' ? logic['x-sipflow'] : {};
  return { ...doc, [logicId]: { ...logic, 'x-sipflow': { ...xs, notes } } };
}

/** A note id not used in the logic. */
export function newNoteId(logic: SlidLogic | undefined): string {
  const taken = new Set(notesOf(logic).map((n) => n.id));
  let k = taken.size + 1;
  while (taken.has(`note${k}`)) k++;
  return `note${k}`;
}
