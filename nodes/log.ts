import type { NodeType } from '../engine/node-type';
import { readsSecret } from '../engine/schema-walk';
import { REDACTED } from '../engine/secrets';
import type { CdValue } from '../engine/types';
import { toText } from '../engine/values';
import { nodeRef } from './common';

interface Values {
  level?: 'debug' | 'info' | 'warn' | 'error';
  message: string;
  next?: number | string;
}

/** Log: writes a message (with `[name]` placeholders) to the service log. */
export const logNode: NodeType<Values> = {
  type: 'action.log',
  title: 'Log',
  summary: '{level|default:info}: {message}',
  category: 'action',
  description: 'Writes a line to the log, e.g. "REGISTER from [fromUsername]".',
  valuesSchema: {
    type: 'object',
    required: ['message'],
    properties: {
      level: { type: 'string', enum: ['debug', 'info', 'warn', 'error'], description: 'log level (default info)' },
      message: { type: 'string', description: 'text logged: a variable or literal text with [name] placeholders (secrets masked)' },
      next: nodeRef,
    },
  },
  compile(values, c) {
    const message = maskSecrets(c.value(values.message), values.message, c.isSecret);
    const level = values.level ?? 'info';
    const next = c.exit('next');
    return (s) => {
      s.ctx.log?.log(level, toText(message(s.cd.vars)), { callId: s.cd.vars.callId, node: c.where });
      return next;
    };
  },
};

/** A message reading secret variables (by name or `[name]`) shows REDACTED in their place: no password reaches a log line. */
export function maskSecrets(get: (vars: Record<string, CdValue>) => CdValue, raw: unknown, isSecret?: (name: string) => boolean) {
  if (!isSecret || !readsSecret(raw, isSecret)) return get;
  const text = String(raw);
  const names = [text, ...[...text.matchAll(/\[([A-Za-z_][A-Za-z0-9_.-]*)\]/g)].map((m) => m[1])].filter(isSecret);
  return (vars: Record<string, CdValue>) => {
    const masked = { ...vars };
    for (const n of names) if (masked[n] !== undefined && masked[n] !== null) masked[n] = REDACTED;
    return get(masked);
  };
}
