/**
 * Structured logs: pino, one JSON object per line. Secrets never reach a line: credentials
 * headers, passwords, HA1s, tokens and the nonce secret are redacted wherever they sit (top level,
 * one or two levels down, and inside a call descriptor's `headers`). Every line written while a
 * SIP request is processed carries its Call-ID: take `requestLogger(logger, callId)` once per
 * request and log through it (or through the engine `LogPort` made from it).
 */
import pino, { type Logger, type LoggerOptions, type DestinationStream, type LogFn } from 'pino';
import type { LogPort } from '../engine/types';

export type { Logger } from 'pino';

/** Keys whose values are secrets, wherever they appear. */
export const SECRET_KEYS = ['authorization', 'proxy-authorization', 'proxyAuthorization', 'password', 'ha1', 'token', 'nonceSecret'];

/** pino redact paths: each secret key at depth 0 to 2, plus under `headers` / `cd.headers` / `req.headers`. */
export function redactPaths(): string[] {
  const key = (k: string) => (/^[A-Za-z_$][\w$]*$/.test(k) ? k : `["${k}"]`);
  const join = (prefix: string, k: string) => (key(k).startsWith('[') ? `${prefix}${key(k)}` : `${prefix}.${key(k)}`);
  const paths: string[] = [];
  for (const k of SECRET_KEYS) {
    paths.push(key(k));
    paths.push(join('*', k));
    paths.push(join('*.*', k));
    for (const where of ['headers', 'cd.headers', 'req.headers', 'request.headers']) paths.push(join(where, k));
  }
  // Capitalised header spellings as a front end might pass them.
  for (const h of ['Authorization', 'Proxy-Authorization']) {
    for (const where of ['headers', 'cd.headers', 'req.headers']) paths.push(`${where}["${h}"]`);
  }
  return [...new Set(paths)];
}

export interface LoggerSetup {
  level?: LoggerOptions['level'];
  /** Where lines go (default stdout); tests pass a stream to read them back. */
  destination?: DestinationStream;
  /** Extra bindings on every line (e.g. instance id). */
  base?: Record<string, unknown>;
}

/** The process logger. */
export function createLogger(setup: LoggerSetup = {}): Logger {
  const options: LoggerOptions = {
    level: setup.level ?? 'info',
    base: { service: 'sipflow', pid: process.pid, ...setup.base },
    redact: { paths: redactPaths(), censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  };
  return setup.destination ? pino(options, setup.destination) : pino(options);
}

/** The logger of one SIP request: every line it writes carries `callId`. */
export function requestLogger(logger: Logger, callId: string | null | undefined, extra: Record<string, unknown> = {}): Logger {
  return logger.child({ callId: callId ?? null, ...extra });
}

/** The engine's LogPort (log node, runtime warnings) writing through a pino logger. */
export function logPort(logger: { debug: LogFn; info: LogFn; warn: LogFn; error: LogFn }): LogPort {
  return {
    log(level, message, fields) {
      if (fields) logger[level](fields, message);
      else logger[level](message);
    },
  };
}
