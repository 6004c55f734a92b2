/**
 * Contact handling for the registrar: parsing REGISTER Contact values, URI equivalence for
 * binding identity (RFC 3261 §19.1.4), and Kamailio's method bitmask for the `methods` column.
 * Pure functions, no I/O.
 */
import { parseNameAddr, parseUri, splitHeaderList, type SipUri } from '../../grammar/sip-values';

export interface ParsedContact {
  /** The URI text as written (Kamailio stores the URI only, not display name or header params). */
  uri: string;
  parsed: SipUri;
  /** Header parameters of the Contact entry (expires, q, +sip.instance, reg-id, methods, …). */
  params: Readonly<Record<string, string | null>>;
}

export type ContactList = { kind: 'star' } | { kind: 'contacts'; contacts: ParsedContact[] } | { kind: 'error'; reason: string };

/**
 * Parses every Contact header value of a REGISTER (each may be a comma list).
 * `*` is returned as its own kind only when it is the sole contact; mixed with others it is an error.
 */
export function parseContactHeaders(values: readonly string[]): ContactList {
  const entries: string[] = [];
  for (const v of values) for (const e of splitHeaderList(v)) entries.push(e);
  let star = false;
  const contacts: ParsedContact[] = [];
  for (const entry of entries) {
    if (entry === '*') {
      star = true;
      continue;
    }
    const na = parseNameAddr(entry);
    const parsed = na ? parseUri(na.uri) : null;
    if (!na || !parsed) return { kind: 'error', reason: `Invalid Contact: ${entry}` };
    contacts.push({ uri: na.uri, parsed, params: na.params });
  }
  if (star) {
    if (entries.length > 1) return { kind: 'error', reason: 'Invalid Contact: * used with other contacts' };
    return { kind: 'star' };
  }
  return { kind: 'contacts', contacts };
}

/** RFC 3261 qvalue: 0[.ddd] or 1[.000]. Returns null when malformed. */
export function parseQ(value: string | null): number | null {
  if (value == null) return null;
  const t = value.trim();
  if (!/^(0(\.\d{0,3})?|1(\.0{0,3})?)$/.test(t)) return null;
  return Number(t);
}

// URI parameters that must match whenever either URI carries them (RFC 3261 §19.1.4).
const SIGNIFICANT_PARAMS = ['user', 'ttl', 'method', 'maddr', 'transport'] as const;
// Everything but userinfo compares case-insensitively (§19.1.4), parameter values included.
function paramEq(a: string | null, b: string | null): boolean {
  if (a === null || b === null) return a === b;
  return a.toLowerCase() === b.toLowerCase();
}

/**
 * URI equivalence per RFC 3261 §19.1.4: scheme, user and password case-sensitive (user already
 * unescaped by parseUri), host case-insensitive (parseUri lower-cases it), port must match
 * exactly (an omitted default port is *not* equal to an explicit 5060), the significant params
 * must match when present in either, other params only when present in both, headers must match.
 */
export function sameUri(a: SipUri, b: SipUri): boolean {
  if (a.scheme !== b.scheme || a.user !== b.user || a.password !== b.password) return false;
  if (a.host !== b.host || a.port !== b.port) return false;
  for (const p of SIGNIFICANT_PARAMS) {
    if (!paramEq(a.params[p] ?? null, b.params[p] ?? null)) return false;
  }
  for (const p of Object.keys(a.params)) {
    if (p in b.params && !paramEq(a.params[p], b.params[p])) return false;
  }
  return (a.headers ?? '').toLowerCase() === (b.headers ?? '').toLowerCase();
}

// Kamailio's METHOD_* flags (parser/msg_parser.h); `methods` in usrloc is this bitmask.
const METHOD_BITS: Record<string, number> = {
  INVITE: 1,
  CANCEL: 2,
  ACK: 4,
  BYE: 8,
  INFO: 16,
  REGISTER: 32,
  SUBSCRIBE: 64,
  NOTIFY: 128,
  MESSAGE: 256,
  OPTIONS: 512,
  PRACK: 1024,
  UPDATE: 2048,
  REFER: 4096,
  PUBLISH: 8192,
  KDMQ: 16384,
  GET: 32768,
  POST: 65536,
  PUT: 131072,
  DELETE: 262144,
};
const METHOD_OTHER = 524288;

/** Bitmask of a method list (Allow header or a contact's `methods` param); null when absent. */
export function methodsMask(list: string | null | undefined): number | null {
  if (list == null) return null;
  let mask = 0;
  for (const m of list.split(',')) {
    const name = m.trim().toUpperCase();
    if (name) mask |= METHOD_BITS[name] ?? METHOD_OTHER;
  }
  return mask;
}
