/**
 * The DnsPort of query.enum (nodes/enum.ts) over node:dns's c-ares Resolver: NAPTR records of a
 * domain from the configured servers (`nodes.enum.servers`, `ip` or `ip:port`, `[v6]:port`) or
 * the system's.
 *
 * c-ares takes its timeout per Resolver, so there is one Resolver per distinct timeout a node
 * asks for (a handful: node values are literals), each with one try per server. A lookup is also
 * raced against its own timer, so a node never waits longer than it asked even when several
 * servers are configured (c-ares tries them in turn).
 *
 * Answers: records → them; NXDOMAIN / NODATA → [] (not found); ETIMEOUT or the timer →
 * DnsQueryError 'timeout'; anything else (SERVFAIL, REFUSED, a malformed answer) → 'failure'.
 */
import { Resolver } from 'node:dns/promises';
import { DnsQueryError, type DnsPort, type NaptrRecord } from '../../engine/ports';

const NOT_FOUND = new Set(['ENOTFOUND', 'ENODATA']);
/** Distinct timeouts kept (each a Resolver); past it, lookups share a Resolver of the default timeout. */
const MAX_RESOLVERS = 16;
const DEFAULT_TIMEOUT_MS = 2000;

export interface EnumResolver extends DnsPort {
  /** Cancels outstanding lookups (they reject with a failure). */
  close(): void;
}

export function createEnumResolver(servers: readonly string[] = []): EnumResolver {
  const resolvers = new Map<number, Resolver>();
  const resolverFor = (timeoutMs: number): Resolver => {
    const key = resolvers.has(timeoutMs) || resolvers.size < MAX_RESOLVERS ? timeoutMs : DEFAULT_TIMEOUT_MS;
    let r = resolvers.get(key);
    if (!r) {
      r = new Resolver({ timeout: key, tries: 1 });
      if (servers.length > 0) r.setServers([...servers]);
      resolvers.set(key, r);
    }
    return r;
  };
  // an invalid server address fails here, at start, not at the first call
  resolverFor(DEFAULT_TIMEOUT_MS);

  return {
    async naptr(domain: string, timeoutMs: number): Promise<NaptrRecord[]> {
      let timer: NodeJS.Timeout | undefined;
      const expired = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new DnsQueryError(`no answer for ${domain} within ${timeoutMs} ms`, 'timeout')), timeoutMs);
      });
      try {
        return await Promise.race([resolverFor(Math.max(1, Math.round(timeoutMs))).resolveNaptr(domain), expired]);
      } catch (e) {
        if (e instanceof DnsQueryError) throw e;
        const code = (e as NodeJS.ErrnoException).code ?? '';
        if (NOT_FOUND.has(code)) return [];
        if (code === 'ETIMEOUT') throw new DnsQueryError(`no answer for ${domain} within ${timeoutMs} ms`, 'timeout');
        throw new DnsQueryError(`${domain}: ${code || (e as Error).message}`, 'failure');
      } finally {
        clearTimeout(timer);
      }
    },
    close() {
      for (const r of resolvers.values()) r.cancel();
    },
  };
}
