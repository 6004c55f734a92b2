import type { NodeType } from '../engine/node-type';
import { toText } from '../engine/values';
import { nodeRef } from './common';

interface Values { level?: 'debug' | 'info' | 'warn' | 'error'; message: string; next?: number | string }

/** Log: writes a message (with `[name]` placeholders) to the service log. */
export const logNode: NodeType<Values> = {
  type: 'action.log',
  title: 'Log',
  category: 'action',
  description: 'Writes a line to the log, e.g. "REGISTER from [fromUsername]".',
  valuesSchema: {
    type: 'object',
    required: ['message'],
    properties: { level: { type: 'string', enum: ['debug', 'info', 'warn', 'error'] }, message: { type: 'string' }, next: nodeRef },
  },
  compile(values, c) {
    const message = c.value(values.message);
    const level = values.level ?? 'info';
    const next = c.exit('next');
    return (s) => {
      s.ctx.log?.log(level, toText(message(s.cd.vars)), { callId: s.cd.vars.callId, node: c.where });
      return next;
    };
  },
};
