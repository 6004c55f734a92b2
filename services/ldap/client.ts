/**
 * The LdapPort of query.ldap (nodes/ldap.ts) over ldapts: one connection to `nodes.ldap.url`,
 * bound as `bindDn` (anonymous when unset), shared by every search of the process. LDAP
 * multiplexes operations on a connection by message id, so concurrent searches need no pool.
 *
 * Reconnection: ldapts opens a new socket when the previous one closed (server restart, idle
 * timeout); before each search the client checks it is still bound (`isBound`, false on a fresh
 * socket) and binds again, one bind shared by the searches waiting for it. A failed bind is not
 * cached: the next search tries again.
 *
 * Secrets: the bind password is never part of an error message, a log line or a trace: errors are
 * rebuilt from the LDAP result code and the server's diagnostic text, with the password cut out
 * should a server quote it.
 *
 * Limits: the caller's timeoutMs bounds the connection, the bind and the search together (the
 * server is also told, in seconds: timeLimit); sizeLimit entries at most; values are read as
 * UTF-8 text.
 */
import { Client, InvalidCredentialsError, ResultCodeError, type Entry } from 'ldapts';
import { LdapQueryError, type LdapPort, type LdapSearch } from '../../engine/ports';

export interface LdapClientOptions {
  url: string;
  bindDn?: string;
  bindPassword?: string;
  /** TCP connection timeout (ms; default 2000). */
  connectTimeoutMs?: number;
  /**
   * After this long (ms; default 30000, the longest a node may wait) an unanswered operation is
   * dropped with its connection, so a hung server holds no pending search forever.
   */
  operationTimeoutMs?: number;
}

export interface LdapClient extends LdapPort {
  /** Unbinds and closes the connection. */
  close(): Promise<void>;
}

/** The URL without credentials or path, for messages. */
function serverOf(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}`;
  } catch {
    return 'the LDAP server';
  }
}

export function createLdapClient(o: LdapClientOptions): LdapClient {
  if (!/^ldaps?:\/\//i.test(o.url)) throw new Error('nodes.ldap.url must be an ldap:// or ldaps:// URL');
  const client = new Client({ url: o.url, connectTimeout: o.connectTimeoutMs ?? 2000, timeout: o.operationTimeoutMs ?? 30_000, strictDN: false });
  const server = serverOf(o.url);
  const password = o.bindPassword ?? '';
  /** Text safe to show: the password cut out wherever it appears. */
  const clean = (text: string) => (password.length > 0 ? text.split(password).join('[redacted]') : text);
  const describe = (e: unknown): string => {
    if (e instanceof ResultCodeError) return clean(`${e.name.replace(/Error$/, '')} (result code ${e.code})${e.message ? `: ${e.message}` : ''}`);
    const err = e as NodeJS.ErrnoException;
    return clean(err.code ? `${err.code} (${server})` : (err.message ?? String(e)).split('\n')[0]);
  };

  let binding: Promise<void> | null = null;
  const ensureBound = async (): Promise<void> => {
    if (!o.bindDn || client.isBound) return;
    binding ??= client.bind(o.bindDn, password).finally(() => {
      binding = null;
    });
    try {
      await binding;
    } catch (e) {
      if (e instanceof InvalidCredentialsError) throw new LdapQueryError(`bind as ${o.bindDn} refused by ${server}: invalid credentials`);
      throw new LdapQueryError(`bind as ${o.bindDn} at ${server} failed: ${describe(e)}`);
    }
  };

  const search = async (q: LdapSearch): Promise<Array<Record<string, string[]>>> => {
    await ensureBound();
    let result: { searchEntries: Entry[] };
    try {
      result = await client.search(q.base, {
        scope: q.scope,
        filter: q.filter,
        attributes: q.attributes,
        sizeLimit: q.sizeLimit,
        timeLimit: Math.max(1, Math.ceil(q.timeoutMs / 1000)),
      });
    } catch (e) {
      // the base DN does not exist: nothing found, not a failure of the service
      if (e instanceof ResultCodeError && e.code === 32) return [];
      throw new LdapQueryError(`search at ${server} failed: ${describe(e)}`);
    }
    return result.searchEntries.slice(0, q.sizeLimit).map(entryRecord);
  };

  return {
    async search(q) {
      let timer: NodeJS.Timeout | undefined;
      const expired = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new LdapQueryError(`no answer from ${server} within ${q.timeoutMs} ms`)), q.timeoutMs);
      });
      try {
        return await Promise.race([search(q), expired]);
      } catch (e) {
        if (e instanceof LdapQueryError) throw e;
        throw new LdapQueryError(`${server}: ${describe(e)}`);
      } finally {
        clearTimeout(timer);
      }
    },
    async close() {
      await client.unbind().catch(() => undefined);
    },
  };
}

/** Attribute names lower-cased (LDAP names are case-insensitive), values as text; `dn` holds the DN. */
function entryRecord(entry: Entry): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [name, value] of Object.entries(entry)) {
    const values = Array.isArray(value) ? value : [value];
    out[name.toLowerCase()] = values.map((v) => (Buffer.isBuffer(v) ? v.toString('utf8') : String(v)));
  }
  return out;
}
