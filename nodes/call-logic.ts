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
    properties: { logic: { type: ['string', 'integer'], minLength: 1, 'x-logic': true }, next: nodeRef },
  },
  compile(values, c) {
    const step: CallLogic = { call: String(values.logic), ret: c.exit('next') };
    return () => step;
  },
};
