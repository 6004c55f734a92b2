import type { NodeType } from '../engine/node-type';
import { finish } from './common';

const EXIT = finish({ kind: 'exit', status: null });

/** Exit: returns to the calling logic; at top level the front end applies its default route. */
export const exitNode: NodeType<Record<string, never>> = {
  type: 'exit.return',
  title: 'Exit',
  summary: 'ends this logic (back to the caller)',
  category: 'flow',
  description: 'Ends this logic: a sub-logic returns to its caller; a top-level logic hands the message back to the front end.',
  valuesSchema: { type: 'object', properties: {} },
  compile: () => () => EXIT,
};
