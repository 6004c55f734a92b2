/** Maps database driver errors onto the port's two failure kinds. */
import { DirectoryError } from './types';

const UNAVAILABLE_ERRNO = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE']);
// PostgreSQL SQLSTATEs meaning "the server cannot serve you now": connection exceptions (08xxx),
// shutdown / not accepting connections, too many connections, out of resources.
const UNAVAILABLE_SQLSTATE = /^(08|57P0[1-4]|53[0-9]{3}|57014)/;
// Data errors (22xxx, e.g. a bad regex for `matches`) and undefined objects (42xxx) are the query's fault.
const INVALID_SQLSTATE = /^(22|42)/;
const UNAVAILABLE_MESSAGE =
  /unable to acquire a connection|timeout acquiring a connection|pglite is closed|connection terminated|not queryable|client has encountered a connection error|aborted/i;

/** Wraps `err` as a DirectoryError when it is a connectivity or query-data problem; otherwise returns it unchanged. */
export function toDirectoryError(err: unknown, what = 'directory query'): unknown {
  if (err instanceof DirectoryError) return err;
  const e = err as { code?: unknown; name?: unknown; message?: unknown } | null;
  const code = typeof e?.code === 'string' ? e.code : '';
  const message = typeof e?.message === 'string' ? e.message : String(err);
  if (UNAVAILABLE_ERRNO.has(code) || UNAVAILABLE_SQLSTATE.test(code) || e?.name === 'KnexTimeoutError' || UNAVAILABLE_MESSAGE.test(message)) {
    return new DirectoryError(`${what}: database unavailable: ${message}${code && !message.includes(code) ? ` (${code})` : ''}`, 'unavailable');
  }
  if (INVALID_SQLSTATE.test(code)) return new DirectoryError(`${what}: ${message}`, 'invalid');
  return err;
}
