/**
 * The SyslogPort of output.syslog: RFC 5424 messages, one per UDP datagram (RFC 5426), to the
 * collector of `nodes.syslog.target`.
 *
 * Why UDP and fire and forget: a logic sends while a call waits; a slow or unreachable collector
 * must cost the call nothing. A send error is counted (`dropped`), never thrown.
 *
 * Layout: `formatSyslog` (pure: header, sanitising, the size cap) and `createSyslogSender` (one
 * unconnected dgram socket per process or thread, unref'd so that it never keeps one alive).
 *
 * Limits: the whole datagram is at most `maxMessageBytes` (default 2048, what RFC 5426 §3.2 says
 * every receiver should take), cut on a UTF-8 character boundary. The text comes from values a
 * SIP sender controls: control characters (CR, LF, NUL, …) become spaces, so a caller cannot
 * start a forged line at collectors that split on newlines. Header fields are PRINTUSASCII, as
 * RFC 5424 §6 requires: anything else in them becomes `_`.
 */
import dgram from 'node:dgram';
import { isIP } from 'node:net';
import { parseCollectorAddress } from '../collector-address';
import os from 'node:os';
import type { SyslogMessage, SyslogPort } from '../../engine/ports';

export interface SyslogSenderOptions {
  /** `host:port`, `[v6]:port`, or a host alone (port 514). */
  target: string;
  /** HOSTNAME of the header (default the machine's name). */
  hostname?: string;
  maxMessageBytes?: number;
}

export interface SyslogSender extends SyslogPort {
  /** Datagrams that could not be sent (resolution or socket errors). */
  readonly dropped: number;
  close(): void;
}

const DEFAULT_MAX_BYTES = 2048;

/** `host:port` → parts (port 514 when none); throws naming the text when it is not one. */
export const parseSyslogTarget = (target: string): { host: string; port: number } => parseCollectorAddress(target, 514);

/** PRINTUSASCII (33–126) only, 1 to `max` characters; `-` (NILVALUE) when empty. */
const headerField = (text: string, max: number): string => text.replace(/[^\x21-\x7e]/g, '_').slice(0, max) || '-';

/** Control characters (C0, DEL, C1, line and paragraph separators) become spaces. */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL = /[\x00-\x1f\x7f-\x9f\u2028\u2029]/g;

/** The datagram of one message, at most `maxBytes` bytes. */
export function formatSyslog(m: SyslogMessage, hostname: string, procId: number | string, maxBytes = DEFAULT_MAX_BYTES): Buffer {
  const pri = m.facility * 8 + m.severity;
  const header = `<${pri}>1 ${new Date(m.at).toISOString()} ${headerField(hostname, 255)} ${headerField(m.appName, 48)} ${headerField(String(procId), 128)} ${m.msgId === null ? '-' : headerField(m.msgId, 32)} - `;
  const whole = Buffer.from(header + m.text.replace(CONTROL, ' '), 'utf8');
  if (whole.length <= maxBytes) return whole;
  // cut on a character boundary: back off continuation bytes (10xxxxxx)
  let end = maxBytes;
  while (end > 0 && (whole[end] & 0xc0) === 0x80) end--;
  return whole.subarray(0, end);
}

export function createSyslogSender(o: SyslogSenderOptions): SyslogSender {
  const { host, port } = parseSyslogTarget(o.target);
  const socket = dgram.createSocket(isIP(host) === 6 ? 'udp6' : 'udp4');
  socket.unref();
  let dropped = 0;
  socket.on('error', () => {
    dropped++;
  });
  const hostname = o.hostname ?? os.hostname();
  const max = o.maxMessageBytes ?? DEFAULT_MAX_BYTES;
  return {
    get dropped() {
      return dropped;
    },
    send(m) {
      socket.send(formatSyslog(m, hostname, process.pid, max), port, host, (err) => {
        if (err) dropped++;
      });
    },
    close() {
      try {
        socket.close();
      } catch {
        /* closed already */
      }
    },
  };
}
