/**
 * Structured logs: pino, one JSON object per line. Secrets never reach a line: credentials
 * headers, passwords, HA1s, tokens and the nonce secret are redacted wherever they sit (top level,
 * one or two levels down, and inside a call descriptor's `headers`); request URLs are logged with
 * the values of sensitive query parameters (`?token=`, `password=`, …) replaced (`req`
 * serializer); message texts and error messages/stacks get the same treatment for URLs, bearer
 * tokens and digest responses they quote. Every line written while a
 * SIP request is processed carries its Call-ID: take `requestLogger(logger, callId)` once per
 * request and log through it (or through the engine `LogPort` made from it).
 */
import pino, { type Logger, type LoggerOptions, type DestinationStream, type LogFn } from 'pino';
import type { LogPort } from '../engine/ports';

export type { Logger } from 'pino';

/** Keys whose values are secrets, wherever they appear. */
export const SECRET_KEYS = ['authorization', 'proxy-authorization', 'proxyAuthorization', 'password', 'ha1', 'token', 'nonceSecret', 'bindPassword'];

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

const CENSOR = '[redacted]';

/** Query parameters whose values are secrets (the designer's `?token=`, `access_token`, `password`, `api_key`, …). */
export const SENSITIVE_PARAM = /token|pass|pwd|secret|ha1|auth|key|sig|session|cred|nonce/i;
/** A value that looks like a generated secret (32+ hex or base64url characters): redacted whatever its parameter. */
const SECRET_LOOKING = /^[A-Za-z0-9_\-+/=.%]{32,}$/;

/**
 * A request URL as it may be logged: the path as is; in the query, the values of sensitive
 * parameters (and of any value that looks like a generated secret, and bare `?<value>` entries
 * longer than 8 characters) replaced by `[redacted]`.
 */
export function redactUrl(url: string): string {
  if (typeof url !== 'string') return url;
  const q = url.indexOf('?');
  if (q < 0) return url;
  const [query, fragment] = splitOnce(url.slice(q + 1), '#');
  const parts = query.split('&').map((part) => {
    if (part === '') return part;
    const eq = part.indexOf('=');
    if (eq < 0) return part.length > 8 ? CENSOR : part;
    const name = part.slice(0, eq);
    const value = part.slice(eq + 1);
    return SENSITIVE_PARAM.test(safeDecode(name)) || SECRET_LOOKING.test(value) ? `${name}=${CENSOR}` : part;
  });
  return `${url.slice(0, q)}?${parts.join('&')}${fragment !== undefined ? `#${CENSOR}` : ''}`;
}

function splitOnce(s: string, sep: string): [string, string | undefined] {
  const i = s.indexOf(sep);
  return i < 0 ? [s, undefined] : [s.slice(0, i), s.slice(i + 1)];
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** In free text: query strings of URLs, `Bearer <token>`, digest `response="…"`. */
const TEXT_QUERY = /\?[^\s"'<>`]*/g;
const TEXT_BEARER = /\b(Bearer)\s+[A-Za-z0-9._~+/=-]+/gi;
const TEXT_DIGEST_RESPONSE = /\b(response\s*=\s*)("?)[0-9A-Fa-f]+\2/gi;

/** Free text (a log message, an error message or stack) with the secrets it may quote redacted. */
export function scrubText(text: string): string {
  if (typeof text !== 'string') return text;
  let out = text;
  if (out.includes('?')) out = out.replace(TEXT_QUERY, (m) => redactUrl(m));
  if (/bearer/i.test(out)) out = out.replace(TEXT_BEARER, `$1 ${CENSOR}`);
  if (/response/i.test(out)) out = out.replace(TEXT_DIGEST_RESPONSE, `$1$2${CENSOR}$2`);
  return out;
}

/** fastify's `req` serializer with the URL redacted (no headers: they carry the bearer token). */
function serializeReq(req: { method?: string; url?: string; host?: string; ip?: string; socket?: { remotePort?: number }; headers?: Record<string, unknown> }) {
  return {
    method: req.method,
    url: redactUrl(req.url ?? ''),
    host: req.host,
    remoteAddress: req.ip,
    remotePort: req.socket ? req.socket.remotePort : undefined,
  };
}

/** pino's error serializer, with message and stack scrubbed (errors that echo URLs or headers). */
function serializeErr(err: unknown) {
  const out = pino.stdSerializers.err(err as Error) as unknown as Record<string, unknown>;
  if (out && typeof out === 'object') {
    if (typeof out.message === 'string') out.message = scrubText(out.message);
    if (typeof out.stack === 'string') out.stack = scrubText(out.stack);
  }
  return out;
}

/** The process logger. */
export function createLogger(setup: LoggerSetup = {}): Logger {
  const options: LoggerOptions = {
    level: setup.level ?? 'info',
    base: { service: 'sipflow', pid: process.pid, ...setup.base },
    redact: { paths: redactPaths(), censor: CENSOR },
    serializers: { req: serializeReq, err: serializeErr },
    hooks: {
      // message texts (`Route GET:/x?token=… not found`, error messages) are scrubbed too
      logMethod(args, method) {
        for (let i = 0; i < args.length; i++) if (typeof args[i] === 'string') args[i] = scrubText(args[i] as string);
        return method.apply(this, args as Parameters<LogFn>);
      },
    },
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
