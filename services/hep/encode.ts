/**
 * HEP v3 (sipcapture's "HEP3" encapsulation) of one SIP message, as Kamailio's siptrace sends it,
 * so that Homer (heplify-server) shows sipflow's traffic the way it shows Kamailio's.
 *
 * Why a hand-written encoder: the format is a dozen fixed chunks; building the datagram in one
 * Buffer per message is all the SIP thread pays (no library, no intermediate objects).
 *
 * Layout (all integers big-endian):
 *
 *   header  "HEP3" | total length (u16, header included)
 *   chunk   vendor id (u16, 0x0000 = generic) | type id (u16) | length (u16, these 6 bytes included) | value
 *
 * in siptrace's order: 0x0001 IP family (u8: 2 = IPv4, 10 = IPv6, Linux's AF_INET/AF_INET6 as
 * siptrace and heplify send), 0x0002 IP protocol (u8), 0x0003/0x0004 IPv4 source/destination
 * (4 bytes) or 0x0005/0x0006 IPv6 (16 bytes), 0x0007/0x0008 ports (u16), 0x0009 seconds and
 * 0x000a microseconds of the capture time (u32 each), 0x000b protocol type (u8, 1 = SIP),
 * 0x000c capture agent id (u32), 0x0011 correlation id (the Call-ID, when the message has one),
 * 0x000e authentication key (when configured), 0x000f the SIP message, byte for byte.
 *
 * IP protocol: udp → 17, tcp → 6; tls, ws and wss → 22 (IPPROTO_IDP), the value siptrace marks
 * its TLS and WebSocket traffic with and Homer shows as TLS; sctp → 132; any other (stream)
 * transport → 6.
 *
 * Addresses: the remote peer's is always an IP literal (the address a socket received from or
 * sends to) and decides the family. The local side is the socket's address as Via names it,
 * which may be a host name (sip.advertised) or of the other family: it is then written as the
 * unspecified address of the peer's family (0.0.0.0 or ::) rather than resolved, since a DNS
 * lookup per message has no place on the SIP path. IPv4-mapped IPv6 addresses (::ffff:a.b.c.d,
 * as dual-stack sockets report IPv4 peers) are written as IPv4. A peer that is not an IP literal
 * gives no datagram ('address').
 *
 * Limits: the total length is a u16, so a message whose datagram would exceed 65,535 bytes (a
 * large TCP message) gives none ('too_large'); the caller counts it as dropped.
 */
import { isIP } from 'node:net';

/** What one datagram says about one message. */
export interface HepMessage {
  /** The SIP transport name ('udp', 'tcp', 'tls', 'ws', 'wss', …). */
  proto: string;
  src: { address: string; port: number };
  dst: { address: string; port: number };
  /** Capture time, ms since the epoch (fractions kept to the microsecond). */
  at: number;
  /** The SIP message as sent or received. */
  payload: Buffer;
  /** The Call-ID (chunk 0x0011); null or empty: no chunk. */
  correlationId: string | null;
  /** Which side is the remote peer (received: src, sent: dst): its address decides the family. */
  remote: 'src' | 'dst';
}

/** Who captured: the agent id and the collector's key, fixed per sender. */
export interface HepAgent {
  captureId: number;
  /** Authentication key (chunk 0x000e); null or empty: no chunk. */
  password: string | null;
}

export const HEP_MAX_BYTES = 65535;

export const HEP_FAMILY_IPV4 = 2;
export const HEP_FAMILY_IPV6 = 10;
export const HEP_PROTO_TYPE_SIP = 1;

/** The IP protocol number HEP carries for a SIP transport (chunk 0x0002). */
export function hepIpProtocol(transport: string): number {
  switch (transport.toLowerCase()) {
    case 'udp':
      return 17;
    case 'tls':
    case 'ws':
    case 'wss':
      return 22;
    case 'sctp':
      return 132;
    default:
      return 6;
  }
}

const MAPPED_V4 = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i;

/** An address as its family (4, 6) and normal text; null when not an IP literal. */
function ipOf(address: string): { family: 4 | 6; text: string } | null {
  const bare = address.startsWith('[') && address.endsWith(']') ? address.slice(1, -1) : address;
  const mapped = MAPPED_V4.exec(bare);
  if (mapped && isIP(mapped[1]) === 4) return { family: 4, text: mapped[1] };
  const zoneless = bare.replace(/%.*$/, ''); // fe80::1%eth0: the zone is local, not on the wire
  const f = isIP(zoneless);
  return f === 4 || f === 6 ? { family: f, text: zoneless } : null;
}

function writeIpv4(buf: Buffer, at: number, text: string): void {
  const parts = text.split('.');
  for (let i = 0; i < 4; i++) buf[at + i] = Number(parts[i]);
}

/** RFC 4291 text (with `::`, or an embedded IPv4 tail) → 16 bytes at `at`. */
function writeIpv6(buf: Buffer, at: number, text: string): void {
  let groups: number[];
  let tail: number[] = [];
  let s = text;
  const v4 = /(\d{1,3}(?:\.\d{1,3}){3})$/.exec(s);
  if (v4) {
    const b = v4[1].split('.').map(Number);
    tail = [(b[0] << 8) | b[1], (b[2] << 8) | b[3]];
    s = s.slice(0, -v4[1].length);
    if (s.endsWith(':') && !s.endsWith('::')) s = s.slice(0, -1);
  }
  const halves = s.split('::');
  const parse = (h: string) => (h === '' ? [] : h.split(':').map((g) => parseInt(g, 16)));
  if (halves.length === 2) {
    const head = parse(halves[0]);
    const rest = [...parse(halves[1]), ...tail];
    groups = [...head, ...new Array<number>(8 - head.length - rest.length).fill(0), ...rest];
  } else {
    groups = [...parse(s), ...tail];
  }
  for (let i = 0; i < 8; i++) buf.writeUInt16BE(groups[i], at + 2 * i);
}

/**
 * The HEP v3 datagram of `m`, or why it cannot be made: 'address' (the peer is not an IP
 * literal), 'too_large' (the datagram would exceed 65,535 bytes).
 */
export function encodeHep(m: HepMessage, agent: HepAgent): Buffer | 'address' | 'too_large' {
  const remote = ipOf(m[m.remote].address);
  if (!remote) return 'address';
  const local = ipOf(m[m.remote === 'src' ? 'dst' : 'src'].address);
  const localText = local && local.family === remote.family ? local.text : remote.family === 4 ? '0.0.0.0' : '::';
  const srcText = m.remote === 'src' ? remote.text : localText;
  const dstText = m.remote === 'dst' ? remote.text : localText;
  const v6 = remote.family === 6;

  const cid = m.correlationId ? Buffer.from(m.correlationId, 'utf8') : null;
  const key = agent.password ? Buffer.from(agent.password, 'utf8') : null;
  const ipLen = v6 ? 16 : 4;
  const length =
    6 + // header
    7 + // family
    7 + // protocol
    2 * (6 + ipLen) +
    2 * 8 + // ports
    2 * 10 + // seconds, microseconds
    7 + // protocol type
    10 + // capture id
    (cid ? 6 + cid.length : 0) +
    (key ? 6 + key.length : 0) +
    6 +
    m.payload.length;
  if (length > HEP_MAX_BYTES) return 'too_large';

  const buf = Buffer.allocUnsafe(length);
  buf.write('HEP3', 0, 'latin1');
  buf.writeUInt16BE(length, 4);
  let o = 6;
  const chunk = (type: number, len: number): number => {
    buf.writeUInt16BE(0x0000, o);
    buf.writeUInt16BE(type, o + 2);
    buf.writeUInt16BE(6 + len, o + 4);
    const at = o + 6;
    o = at + len;
    return at;
  };
  buf.writeUInt8(v6 ? HEP_FAMILY_IPV6 : HEP_FAMILY_IPV4, chunk(0x0001, 1));
  buf.writeUInt8(hepIpProtocol(m.proto), chunk(0x0002, 1));
  if (v6) {
    writeIpv6(buf, chunk(0x0005, 16), srcText);
    writeIpv6(buf, chunk(0x0006, 16), dstText);
  } else {
    writeIpv4(buf, chunk(0x0003, 4), srcText);
    writeIpv4(buf, chunk(0x0004, 4), dstText);
  }
  buf.writeUInt16BE(m.src.port & 0xffff, chunk(0x0007, 2));
  buf.writeUInt16BE(m.dst.port & 0xffff, chunk(0x0008, 2));
  const seconds = Math.floor(m.at / 1000);
  buf.writeUInt32BE(seconds >>> 0, chunk(0x0009, 4));
  buf.writeUInt32BE(Math.min(999999, Math.round((m.at - seconds * 1000) * 1000)), chunk(0x000a, 4));
  buf.writeUInt8(HEP_PROTO_TYPE_SIP, chunk(0x000b, 1));
  buf.writeUInt32BE(agent.captureId >>> 0, chunk(0x000c, 4));
  if (cid) cid.copy(buf, chunk(0x0011, cid.length));
  if (key) key.copy(buf, chunk(0x000e, key.length));
  m.payload.copy(buf, chunk(0x000f, m.payload.length));
  return buf;
}
