/** Address helpers shared by the transport modules. */
import dns from 'node:dns';
import net from 'node:net';

/**
 * dgram's address lookup for sends: an IP literal (what the proxy and the transaction layer always
 * pass; names are resolved before) is answered at once. dns.lookup answers it too, but only on the
 * next tick, which costs every UDP response a deferral.
 */
export function literalFirstLookup(address: string, family: unknown, cb: (err: Error | null, address: string, family: number) => void): void {
  const v = net.isIP(address);
  if (v !== 0) {
    cb(null, address, v);
    return;
  }
  dns.lookup(address, family as number, cb as never);
}

/** '::ffff:1.2.3.4' → '1.2.3.4'. */
export function plainAddress(a: string): string {
  return a.length > 7 && a.charCodeAt(0) === 58 && a.startsWith('::ffff:') && a.indexOf('.') > 0 ? a.slice(7) : a;
}
