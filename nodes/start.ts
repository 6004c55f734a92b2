import type { NodeType } from '../engine/node-type';
import { nodeRef } from './common';

interface Values {
  next: number | string;
}

/** Entry point of a logic: exactly one live start per logic. */
export const startNode: NodeType<Values> = {
  type: 'enter.start',
  title: 'Start',
  summary: 'the logic begins here',
  category: 'start',
  description: 'Where the logic begins for every message (and again after a successful authentication).',
  valuesSchema: { type: 'object', required: ['next'], properties: { next: nodeRef } },
  compile(_values, c) {
    const next = c.exit('next');
    return () => next;
  },
};
