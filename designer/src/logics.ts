/**
 * Adding, renaming and deleting the logics of a file. Pure: each returns a new document (the
 * store makes it one undoable edit) or, for a delete that would break a call, why not.
 *
 * A call sub-logic node names its logic by id or by name (fields marked `x-logic`, as the
 * engine's loader checks them). Renaming a logic rewrites the references that used its old name;
 * references by id need nothing. Deleting a logic that a live node of another logic calls is
 * refused, naming the callers.
 */
import type { NodeTypeInfo } from './api';
import { nodeEntries, nodeKey, type SlidDoc, type SlidLogic, type SlidNode } from './model';

/** The next free logic id: one above the highest numeric id (logic ids are numbers in the export shape). */
export function newLogicId(doc: SlidDoc): string {
  const ids = Object.keys(doc)
    .map(Number)
    .filter((n) => Number.isInteger(n));
  return String(ids.length ? Math.max(...ids) + 1 : 1);
}

export function addLogic(doc: SlidDoc, name: string): { doc: SlidDoc; id: string } {
  const id = newLogicId(doc);
  const start: SlidNode = { id: 0, name: 'Start', type: 'enter.start', description: '', values: { next: null }, archived: false, x: 0, y: 0 };
  const logic: SlidLogic = { name, description: '', nodes: { '0': start } };
  return { doc: { ...doc, [id]: logic }, id };
}

/** The top-level fields of a type's values that name a logic (`x-logic`). */
const logicFields = (t: NodeTypeInfo | undefined): string[] =>
  Object.entries<Record<string, unknown>>((t?.valuesSchema as { properties?: Record<string, Record<string, unknown>> })?.properties ?? {})
    .filter(([, s]) => s['x-logic'])
    .map(([k]) => k);

/** Live nodes of other logics that call `logicId` (by id or by name). */
export function callersOf(doc: SlidDoc, logicId: string, types: Map<string, NodeTypeInfo>): Array<{ logicId: string; node: SlidNode }> {
  const name = doc[logicId]?.name;
  const out: Array<{ logicId: string; node: SlidNode }> = [];
  for (const [lid, logic] of Object.entries(doc)) {
    if (lid === logicId) continue;
    for (const { node } of nodeEntries(logic)) {
      if (node.archived === true) continue;
      for (const f of logicFields(types.get(node.type))) {
        const ref = node.values?.[f];
        if (ref !== undefined && ref !== null && (String(ref) === logicId || (name !== undefined && ref === name))) out.push({ logicId: lid, node });
      }
    }
  }
  return out;
}

/** Renames a logic and rewrites the `x-logic` references that named it by its old name. */
export function renameLogic(doc: SlidDoc, logicId: string, name: string, types: Map<string, NodeTypeInfo>): SlidDoc {
  const logic = doc[logicId];
  if (!logic || logic.name === name) return doc;
  const old = logic.name;
  const out: SlidDoc = { ...doc, [logicId]: { ...logic, name } };
  if (old === undefined || old === '') return out;
  // another logic still named the old name keeps the references (they meant that one, or were ambiguous)
  if (Object.entries(doc).some(([id, l]) => id !== logicId && l?.name === old)) return out;
  for (const [lid, l] of Object.entries(out)) {
    let changed = false;
    const rewrite = (node: SlidNode): SlidNode => {
      let values = node.values;
      for (const f of logicFields(types.get(node.type)))
        if (values?.[f] === old) {
          values = { ...values, [f]: name };
          changed = true;
        }
      return values === node.values ? node : { ...node, values };
    };
    const nodes = Array.isArray(l.nodes) ? l.nodes.map(rewrite) : Object.fromEntries(Object.entries(l.nodes).map(([k, n]) => [k, rewrite(n)]));
    if (changed) out[lid] = { ...l, nodes };
  }
  return out;
}

/** Deletes a logic; refused (a sentence saying why) when it is the only one or another logic calls it. */
export function deleteLogic(doc: SlidDoc, logicId: string, types: Map<string, NodeTypeInfo>): SlidDoc | string {
  if (!doc[logicId]) return `no logic ${logicId}`;
  if (Object.keys(doc).length === 1) return 'a file keeps at least one logic';
  const callers = callersOf(doc, logicId, types);
  if (callers.length)
    return `logic ${logicId} “${doc[logicId].name ?? ''}” is called by ${callers
      .map((c) => `node ${nodeKey(c.node.id)} “${c.node.name ?? ''}” of logic ${c.logicId} “${doc[c.logicId]?.name ?? ''}”`)
      .join(', ')}: change or remove those calls first`;
  const { [logicId]: _gone, ...rest } = doc;
  return rest;
}
