/**
 * The allow-list of the guard (`security.trustedSources`): trunks, SBCs, monitoring. A trusted
 * source is never banned, rate-limited or dropped as a scanner.
 *
 * Why a cache: `net.BlockList.check()` walks its rules and parses the address on every call
 * (≈ 1 µs with a few rules); the dispatching thread asks once per SIP message, and the busiest
 * sources (an SBC, the benchmark's SIPp on 127.0.0.1) are exactly the trusted ones. The decision
 * per address is kept in an LRU (lru-cache), so a known address costs one map lookup.
 *
 * Layout: a BlockList holding every entry (addresses and CIDR blocks, IPv4 and IPv6), and an
 * LRU address → boolean of at most `cacheSize` decisions (the least recently used is forgotten;
 * asking again only costs the BlockList walk). With an empty list nothing is cached at all.
 *
 * Addresses are normalised first: an IPv4-mapped IPv6 address (`::ffff:192.0.2.1`, what a
 * dual-stack socket reports for an IPv4 peer) is the IPv4 address, so an IPv4 rule covers it and
 * bans and counts key on one spelling.
 *
 * Concurrency: none; owned by one thread (the guard's). Limits: the list is fixed at start.
 */
import net from 'node:net';
import { LRUCache } from 'lru-cache';

/** `::ffff:a.b.c.d` → `a.b.c.d`; anything else unchanged. */
export function normalizeAddress(address: string): string {
  if (address.length > 7 && address.charCodeAt(0) === 58 && address.startsWith('::ffff:') && address.indexOf('.', 7) > 0) return address.slice(7);
  return address;
}

/** A BlockList of `entries` (`10.0.0.0/8`, `192.0.2.7`, `2001:db8::/32`); throws naming a bad entry. */
export function parseTrusted(entries: readonly string[]): net.BlockList {
  const list = new net.BlockList();
  for (const raw of entries) {
    const entry = raw.trim();
    const slash = entry.indexOf('/');
    const addr = normalizeAddress(slash < 0 ? entry : entry.slice(0, slash));
    const family = net.isIP(addr);
    if (family === 0) throw new Error(`security.trustedSources: "${raw}" is not an IP address or CIDR block`);
    const type = family === 6 ? 'ipv6' : 'ipv4';
    if (slash < 0) {
      list.addAddress(addr, type);
      continue;
    }
    const bits = entry.slice(slash + 1);
    const prefix = /^\d{1,3}$/.test(bits) ? Number(bits) : NaN;
    if (!(prefix >= 0 && prefix <= (family === 6 ? 128 : 32))) throw new Error(`security.trustedSources: "${raw}" has a bad prefix length`);
    list.addSubnet(addr, prefix, type);
  }
  return list;
}

export class TrustedSources {
  private readonly list: net.BlockList | null;
  private readonly cache: LRUCache<string, boolean> | null;

  constructor(entries: readonly string[], cacheSize = 10_000) {
    this.list = entries.length ? parseTrusted(entries) : null;
    this.cache = this.list ? new LRUCache<string, boolean>({ max: Math.max(1, cacheSize) }) : null;
  }

  /** True when the (normalised) address is on the list. One map lookup once the address is known. */
  has(address: string): boolean {
    const cache = this.cache;
    if (cache === null) return false;
    const known = cache.get(address);
    if (known !== undefined) return known;
    const family = net.isIP(address);
    const v = family !== 0 && this.list!.check(address, family === 6 ? 'ipv6' : 'ipv4');
    cache.set(address, v);
    return v;
  }
}
