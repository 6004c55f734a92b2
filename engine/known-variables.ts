/**
 * Variables known to the logics of a file: the predefined ones and every variable a live node of
 * any of its logics writes (sub-logics share the call descriptor). Pure, so the designer's pickers
 * follow the engine's rule; it also reads documents not validated yet (logics or nodes that are
 * not objects are skipped).
 */
import { nodeEntries, type SlidLogic, type SlidNode } from './slid';
import { PREDEFINED_VARIABLES } from './types';

/** `writes` tells the variables a node writes (undefined for an unknown type). */
export function knownVariablesOf(doc: Readonly<Record<string, unknown>>, writes: (node: SlidNode) => readonly string[] | undefined): Set<string> {
  const known = new Set<string>(PREDEFINED_VARIABLES);
  for (const logic of Object.values(doc)) {
    if (logic === null || typeof logic !== 'object') continue;
    for (const [, node] of nodeEntries(logic as SlidLogic)) {
      if (node === null || typeof node !== 'object' || node.archived === true) continue;
      for (const v of writes(node) ?? []) known.add(v);
    }
  }
  return known;
}
