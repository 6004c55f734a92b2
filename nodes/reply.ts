import type { NodeType } from '../engine/node-type';
import { toText } from '../engine/values';
import { finish } from './common';
import { SIP_REASONS } from '../grammar/sip-reasons';

interface Values {
  code: number | string;
  reason?: string;
  headers?: Record<string, string>;
}

/** Reject / custom SIP response: ends the run with a final response. */
export const replyNode: NodeType<Values> = {
  type: 'output.reply',
  title: 'Reply (reject)',
  summary: '{code} {if reason}{reason}{else}{code|reason}{end}',
  category: 'output',
  description: 'Answers the request with a final SIP response (code, reason, extra headers).',
  valuesSchema: {
    type: 'object',
    required: ['code'],
    properties: {
      code: {
        type: ['integer', 'string'],
        pattern: '^[2-6][0-9][0-9]$',
        minimum: 200,
        maximum: 699,
        title: 'Status code',
        description: 'SIP status answered (200–699), e.g. 480',
      },
      reason: { type: 'string', description: 'reason phrase; [name] placeholders allowed' },
      headers: {
        type: 'object',
        additionalProperties: { type: 'string' },
        description: 'extra headers of the response: name → value ([name] placeholders allowed)',
      },
    },
  },
  compile(values, c) {
    const status = Number(values.code);
    const reason = c.value(values.reason || SIP_REASONS[status] || 'Unknown');
    const headers = values.headers && Object.keys(values.headers).length ? Object.entries(values.headers).map(([k, v]) => [k, c.value(v)] as const) : null;
    return (s) =>
      finish({
        kind: 'reply',
        status,
        reason: toText(reason(s.cd.vars)),
        ...(headers ? { headers: Object.fromEntries(headers.map(([k, get]) => [k, toText(get(s.cd.vars))])) } : {}),
      });
  },
};
