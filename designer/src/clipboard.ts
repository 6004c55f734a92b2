/**
 * Copy and paste of nodes through the system clipboard, as JSON text any flow (any tab, any
 * designer) can take: `{ "sipflow": "nodes", "version": 1, "nodes": [...], "edges": [...] }`.
 * `nodes` are the `.slid` nodes as they are (values, name, description, x/y, designer data), with
 * every exit to a node not copied cleared; `edges` lists the exits among them (for readers: the
 * exits are in the nodes' values). Pasting gives the nodes new ids, re-points exits among them to
 * the copies, clears any other exit, and places them at the canvas's centre.
 */
import type { NodeTypeInfo } from './api';
import { exitsOf, getAt, nodeKey, setAt, type Json, type SlidNode } from './model';

export const CLIPBOARD_KIND = 'sipflow';
/** A paste larger than this is refused (a clipboard is no import). */
export const MAX_PASTE_NODES = 500;
export const MAX_PASTE_BYTES = 1_000_000;

export interface ClipboardPayload {
  sipflow: 'nodes';
  version: 1;
  nodes: SlidNode[];
  edges: Array<{ source: string; exit: string; target: string }>;
}

const unset = (v: unknown) => v === null || v === undefined || v === '';

/** The payload for copying `nodes` (exits to nodes not among them cleared). */
export function copyPayload(nodes: SlidNode[], types: Map<string, NodeTypeInfo>): ClipboardPayload {
  const ids = new Set(nodes.map((n) => nodeKey(n.id)));
  const edges: ClipboardPayload['edges'] = [];
  const out = nodes.map((n) => {
    let copy: SlidNode = structuredClone(n);
    const t = types.get(n.type);
    for (const e of t ? exitsOf(t, n.values) : []) {
      if (unset(e.target)) continue;
      if (ids.has(nodeKey(e.target))) edges.push({ source: nodeKey(n.id), exit: e.pointer, target: nodeKey(e.target) });
      else copy = { ...copy, values: setAt(copy.values ?? {}, e.pointer, null) };
    }
    return copy;
  });
  return { sipflow: 'nodes', version: 1, nodes: out, edges };
}

/** The nodes of a clipboard text, or why it cannot be pasted. */
export function parsePayload(text: string): { nodes: SlidNode[] } | { refused: string } {
  if (text.length > MAX_PASTE_BYTES)
    return { refused: `the clipboard holds ${Math.round(text.length / 1000)} kB: more than the ${MAX_PASTE_BYTES / 1_000_000} MB a paste takes` };
  let v: Json;
  try {
    v = JSON.parse(text);
  } catch {
    return { refused: 'the clipboard holds no sipflow nodes (not JSON)' };
  }
  if (!v || typeof v !== 'object' || v.sipflow !== 'nodes' || !Array.isArray(v.nodes)) return { refused: 'the clipboard holds no sipflow nodes' };
  if (v.nodes.length > MAX_PASTE_NODES) return { refused: `the clipboard holds ${v.nodes.length} nodes: more than the ${MAX_PASTE_NODES} a paste takes` };
  const nodes = v.nodes.filter(
    (n: Json) => n && typeof n === 'object' && !Array.isArray(n) && typeof n.type === 'string' && (typeof n.id === 'number' || typeof n.id === 'string'),
  );
  if (nodes.length === 0) return { refused: 'the clipboard holds no sipflow nodes' };
  if (new Set(nodes.map((n: SlidNode) => nodeKey(n.id))).size !== nodes.length) return { refused: 'the clipboard’s nodes repeat an id' };
  return { nodes };
}

/**
 * The pasted nodes: new ids from `newId`, exits among them re-pointed to the copies, any other
 * exit cleared, moved by (dx, dy).
 */
export function pastedNodes(
  nodes: SlidNode[],
  types: Map<string, NodeTypeInfo>,
  newId: (taken: Set<string>) => number | string,
  dx: number,
  dy: number,
): SlidNode[] {
  const taken = new Set<string>();
  const ids = new Map<string, number | string>();
  for (const n of nodes) {
    const id = newId(taken);
    taken.add(nodeKey(id));
    ids.set(nodeKey(n.id), id);
  }
  return nodes.map((n) => {
    let copy: SlidNode = { ...structuredClone(n), id: ids.get(nodeKey(n.id))!, x: Math.round((Number(n.x) || 0) + dx), y: Math.round((Number(n.y) || 0) + dy) };
    const t = types.get(n.type);
    for (const e of t ? exitsOf(t, n.values) : []) {
      const target = getAt(n.values, e.pointer);
      if (unset(target)) continue;
      copy = { ...copy, values: setAt(copy.values ?? {}, e.pointer, ids.get(nodeKey(target)) ?? null) };
    }
    return copy;
  });
}
