import type { NodeType } from '../engine/node-type';
import { splitHeaderList } from '../grammar/sip-values';
import { toText } from '../engine/values';
import { finish } from './common';
import { SIP_REASONS } from '../grammar/sip-reasons';

interface Values {
  code?: number;
  reason?: string;
  contacts: string[] | string;
}

/** Redirect: answers 3xx with the given contacts. */
export const redirectNode: NodeType<Values> = {
  type: 'output.redirect',
  title: 'Redirect',
  summary: '{code|default:302} → {contacts}',
  category: 'output',
  description: 'Answers 3xx (302 by default) with Contact URIs (literals, variables or templates).',
  valuesSchema: {
    type: 'object',
    required: ['contacts'],
    properties: {
      code: { type: 'integer', minimum: 300, maximum: 399, title: 'Status code', description: 'redirect status, e.g. 302 Moved Temporarily' },
      reason: { type: 'string', description: 'reason phrase (default: the status code’s)' },
      contacts: {
        type: ['array', 'string'],
        items: { type: 'string', 'x-var': true },
        'x-var': true,
        description: 'Contact URIs answered: literals, variables or [name] templates',
      },
    },
  },
  compile(values, c) {
    const status = values.code ?? 302;
    const reason = values.reason || SIP_REASONS[status] || 'Redirect';
    const contacts = (Array.isArray(values.contacts) ? values.contacts : [values.contacts]).map((v) => c.value(v));
    return (s) =>
      finish({
        kind: 'redirect',
        status,
        reason,
        contacts: contacts.flatMap((get) => splitHeaderList(toText(get(s.cd.vars)))),
      });
  },
};
