import type { NodeType } from '../engine/node-type';
import { toText } from '../engine/values';
import { finish } from './common';

interface Values {
  code: number | string;
  reason?: string;
  headers?: Record<string, string>;
}

/** RFC 3261 §21 reason phrases for the codes flows use most. */
export const REASONS: Record<number, string> = {
  200: 'OK',
  202: 'Accepted',
  300: 'Multiple Choices',
  301: 'Moved Permanently',
  302: 'Moved Temporarily',
  305: 'Use Proxy',
  380: 'Alternative Service',
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  406: 'Not Acceptable',
  407: 'Proxy Authentication Required',
  408: 'Request Timeout',
  410: 'Gone',
  413: 'Request Entity Too Large',
  415: 'Unsupported Media Type',
  416: 'Unsupported URI Scheme',
  420: 'Bad Extension',
  423: 'Interval Too Brief',
  480: 'Temporarily Unavailable',
  481: 'Call/Transaction Does Not Exist',
  482: 'Loop Detected',
  483: 'Too Many Hops',
  484: 'Address Incomplete',
  486: 'Busy Here',
  487: 'Request Terminated',
  488: 'Not Acceptable Here',
  500: 'Server Internal Error',
  501: 'Not Implemented',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Server Time-out',
  600: 'Busy Everywhere',
  603: 'Decline',
  604: 'Does Not Exist Anywhere',
};

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
    const reason = c.value(values.reason || REASONS[status] || 'Unknown');
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
