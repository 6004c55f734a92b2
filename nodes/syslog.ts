import type { NodeType } from '../engine/node-type';
import { toText } from '../engine/values';
import { nodeRef } from './common';
import { maskSecrets } from './log';

/** RFC 5424 §6.2.1 severities, in code order (0 … 7). */
export const SYSLOG_SEVERITIES = ['emergency', 'alert', 'critical', 'error', 'warning', 'notice', 'info', 'debug'] as const;
/** RFC 5424 §6.2.1 facilities, in code order (0 … 23). */
export const SYSLOG_FACILITIES = [
  'kern',
  'user',
  'mail',
  'daemon',
  'auth',
  'syslog',
  'lpr',
  'news',
  'uucp',
  'cron',
  'authpriv',
  'ftp',
  'ntp',
  'audit',
  'alert',
  'clock',
  'local0',
  'local1',
  'local2',
  'local3',
  'local4',
  'local5',
  'local6',
  'local7',
] as const;

interface Values {
  severity?: (typeof SYSLOG_SEVERITIES)[number];
  facility?: (typeof SYSLOG_FACILITIES)[number];
  appName?: string;
  msgId?: string;
  message: string;
  next?: number | string;
}

/**
 * Syslog: an RFC 5424 message to the collector of `nodes.syslog.target` over UDP, then `next`.
 * Fire and forget (services/syslog/udp.ts): no collector configured, or one that does not answer,
 * costs the call nothing. Secret variables read by the message show `[redacted]`, as in the log node.
 */
export const syslogNode: NodeType<Values> = {
  type: 'output.syslog',
  title: 'Syslog',
  summary: '{severity}: {message}',
  category: 'action',
  description: 'Sends an RFC 5424 message (with [name] placeholders) to the syslog collector of nodes.syslog.target over UDP; never waits for it.',
  valuesSchema: {
    type: 'object',
    required: ['message'],
    properties: {
      severity: { type: 'string', enum: [...SYSLOG_SEVERITIES], default: 'info', description: 'RFC 5424 severity' },
      facility: { type: 'string', enum: [...SYSLOG_FACILITIES], default: 'local0', description: 'RFC 5424 facility' },
      appName: {
        type: 'string',
        pattern: '^[\\x21-\\x7e]{1,48}$',
        default: 'sipflow',
        description: 'APP-NAME of the header (printable ASCII, no space, at most 48)',
      },
      msgId: {
        type: 'string',
        pattern: '^[\\x21-\\x7e]{1,32}$',
        description: 'MSGID of the header, e.g. CALL_REJECTED (printable ASCII, no space, at most 32)',
      },
      message: {
        type: 'string',
        minLength: 1,
        description:
          'text, e.g. "call from [calling] to [called] refused"; control characters become spaces, the datagram is cut at nodes.syslog.maxMessageBytes',
      },
      next: nodeRef,
    },
  },
  compile(values, c) {
    const message = maskSecrets(c.value(values.message), values.message, c.isSecret);
    const severity = SYSLOG_SEVERITIES.indexOf(values.severity ?? 'info');
    const facility = SYSLOG_FACILITIES.indexOf(values.facility ?? 'local0');
    const appName = values.appName ?? 'sipflow';
    const msgId = values.msgId ?? null;
    const next = c.exit('next');
    return (s) => {
      s.ctx.syslog?.send({ facility, severity, appName, msgId, text: toText(message(s.cd.vars)), at: s.ctx.clock.now() });
      return next;
    };
  },
};
