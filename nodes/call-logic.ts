import type { CallLogic, NodeType } from '../engine/node-type';
import { nodeRef } from './common';

interface Values {
  logic: string | number;
  next?: number | string;
}

/** Sub-logic call: runs another logic of the service; its exit node continues at `next`. */
export const callLogicNode: NodeType<Values> = {
  type: 'flow.callLogic',
  title: 'Call sub-logic',
  summary: '→ {logic|logic}',
  category: 'flow',
  description: 'Runs another service logic (by id or name); when it reaches an exit node, continues at next.',
  valuesSchema: {
    type: 'object',
    required: ['logic'],
    properties: {
      logic: { type: ['string', 'integer'], minLength: 1, 'x-logic': true, title: 'Logic', description: 'id or name of the logic of this file to run' },
      next: {
        ...nodeRef,
        'x-optional': true,
        description:
          'where this logic goes on when the called logic reaches an exit node; unset: this logic ends there too (a tail call: the called logic gives the answer)',
      },
    },
  },
  compile(values, c) {
    const step: CallLogic = { call: String(values.logic), ret: c.exit('next') };
    return () => step;
  },
};
