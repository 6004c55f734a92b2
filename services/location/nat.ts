/**
 * NAT detection for the registrar (Kamailio nathelper's nat_uac_test, RFC 3581): is the device
 * that sent a REGISTER behind a NAT, so that its Contact cannot be reached and calls must go to
 * the address the request came from (`received`) or back over its connection?
 *
 * The tests, each a reason:
 *   via-address        the top Via's sent-by host (an IP literal) is not the source address
 *                      (nat_uac_test 2); a `.invalid` host (RFC 7118 WebSocket clients) counts
 *   via-port           datagram transports only: the sent-by port is not the source port
 *                      (nat_uac_test 16; on a stream the source port is ephemeral by nature)
 *   private-contact    the Contact host is a private, shared or link-local address while the
 *                      source is not (nat_uac_test 1, narrowed: on a LAN every address is private)
 *   unreachable-contact the Contact host is a `.invalid` name (RFC 7118 §5)
 *
 * Not a test on its own: the Contact naming another address than the source. A REGISTER sent on
 * behalf of another device (an SBC, a provisioning tool: RFC 3261 §10.2's third-party
 * registration) names that device in its Contact while its own Via matches the source; storing
 * the source as `received` would send that device's calls to the sender.
 *
 * Pure functions, no I/O. Limits: a Via sent-by given as a host name (not `.invalid`) is not
 * compared (no DNS here), so such a device counts as not NATed unless its Contact says otherwise.
 */
import { BlockList, isIP } from 'node:net';
import type { SipUri } from '../../grammar/sip-values';
import { splitHeaderList } from '../../grammar/sip-values';

export type NatReason = 'via-address' | 'via-port' | 'private-contact' | 'unreachable-contact';

/** Sent-by of a Via: host (brackets stripped, lower case) and port (null when absent). */
export interface SentBy {
  host: string;
  port: number | null;
}

/** The sent-by of the first via-parm of a Via header value, or null when malformed. */
export function sentByOf(via: string | null | undefined): SentBy | null {
  if (!via) return null;
  const first = via.indexOf(',') >= 0 ? splitHeaderList(via)[0] : via;
  const m = /^\s*SIP\s*\/\s*2\.0\s*\/\s*[A-Za-z0-9-]+\s+(\[[0-9A-Fa-f:.]+\]|[^\s;:[\]]+)\s*(?::\s*(\d{1,5}))?/i.exec(first ?? '');
  if (!m) return null;
  const host = (m[1].charCodeAt(0) === 91 ? m[1].slice(1, -1) : m[1]).toLowerCase();
  return { host, port: m[2] === undefined ? null : Number(m[2]) };
}

const bare = (host: string): string => (host.charCodeAt(0) === 91 ? host.slice(1, -1) : host).toLowerCase();

/** A name RFC 7118 clients make up (`abc.invalid`): nobody can reach it. */
export function isInvalidHost(host: string): boolean {
  return bare(host).endsWith('.invalid');
}

/**
 * RFC 1918 and RFC 6598 (carrier-grade NAT) IPv4, IPv4 link-local 169.254/16; IPv6 unique local
 * (fc00::/7) and link-local (fe80::/10). Loopback is not private here. Node's BlockList parses and
 * matches (IPv4-mapped IPv6 addresses included).
 */
const PRIVATE_IPV4: ReadonlyArray<readonly [net: string, prefix: number]> = [
  ['10.0.0.0', 8],
  ['172.16.0.0', 12],
  ['192.168.0.0', 16],
  ['100.64.0.0', 10],
  ['169.254.0.0', 16],
];
const PRIVATE = new BlockList();
for (const [net, prefix] of PRIVATE_IPV4) PRIVATE.addSubnet(net, prefix, 'ipv4');
PRIVATE.addSubnet('fc00::', 7, 'ipv6');
PRIVATE.addSubnet('fe80::', 10, 'ipv6');

/**
 * The first octets of the private IPv4 blocks (every prefix is 8 bits or longer, so a block has one).
 * `BlockList.check` builds a SocketAddress from the string on every call (1.4 % of a SIP thread's
 * time in the memory benchmark, where every Contact is 127.0.0.1); an address outside these octets
 * is answered without it. Likewise an IPv6 address whose first group does not start with `f` is
 * below f000:: and so outside fc00::/7 and fe80::/10, unless it is IPv4-mapped in hexadecimal
 * (`::ffff:a00:1`), which BlockList matches against the IPv4 blocks: anything holding `ffff` is checked.
 */
const PRIVATE_IPV4_FIRST = new Set(PRIVATE_IPV4.map(([net]) => Number(net.slice(0, net.indexOf('.')))));
const mayBePrivate4 = (a: string): boolean => PRIVATE_IPV4_FIRST.has(parseInt(a, 10));

/** An IPv4-mapped IPv6 address in dotted form (`::ffff:10.1.2.3`): $1 is the IPv4 address. */
const MAPPED_IPV4 = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/;

/** A private, shared or link-local IP literal (brackets allowed); not an IP literal → false. */
export function isPrivateAddress(host: string): boolean {
  const h = bare(host);
  const v = isIP(h);
  if (v === 0) return false;
  if (v === 4) return mayBePrivate4(h) && PRIVATE.check(h, 'ipv4');
  const mapped = MAPPED_IPV4.exec(h);
  if (mapped) return mayBePrivate4(mapped[1]) && PRIVATE.check(mapped[1], 'ipv4');
  return (h.charCodeAt(0) === 102 /* f */ || h.includes('ffff')) && PRIVATE.check(h, 'ipv6');
}

/** Same IP address, whatever the spelling (IPv4-mapped IPv6 equals its IPv4). */
export function sameAddress(a: string, b: string): boolean {
  const unmap = (s: string) => bare(s).replace(MAPPED_IPV4, '$1');
  return unmap(a) === unmap(b);
}

/** What the request says about its sender, once per REGISTER. */
export interface SenderFacts {
  sourceAddress: string;
  sourcePort: number;
  via: SentBy | null;
  /** Datagram transport (no connection): the Via port test applies. */
  datagram: boolean;
}

/** Why the request's sender is behind a NAT (the Via tests), or null. */
export function viaNat(f: SenderFacts): NatReason | null {
  const via = f.via;
  if (!via) return null;
  if (isInvalidHost(via.host)) return 'via-address';
  if (isIP(via.host) && !sameAddress(via.host, f.sourceAddress)) return 'via-address';
  if (f.datagram && (via.port ?? 5060) !== f.sourcePort) return 'via-port';
  return null;
}

/** Why one Contact of the request is behind a NAT, the Via tests included, or null. */
export function contactNat(f: SenderFacts, contact: SipUri, viaReason: NatReason | null): NatReason | null {
  if (viaReason) return viaReason;
  if (isInvalidHost(contact.host)) return 'unreachable-contact';
  if (isPrivateAddress(contact.host) && !isPrivateAddress(f.sourceAddress) && isIP(bare(f.sourceAddress)) !== 0 && !isLoopback(f.sourceAddress)) {
    return 'private-contact';
  }
  return null;
}

function isLoopback(host: string): boolean {
  const h = bare(host);
  return h === '::1' || /^(::ffff:)?127\./.test(h);
}

/**
 * The Contact names the device that sent the request (not a third-party registration): its host
 * is the Via sent-by host, or NAT was detected, or the request has no Via to tell.
 */
export function contactIsSender(f: SenderFacts, contact: SipUri, nat: NatReason | null): boolean {
  if (nat || !f.via) return true;
  return bare(contact.host) === f.via.host || (isIP(bare(contact.host)) !== 0 && isIP(f.via.host) !== 0 && sameAddress(contact.host, f.via.host));
}
