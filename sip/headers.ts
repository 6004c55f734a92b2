/**
 * Header names: compact forms (RFC 3261 §7.3.3 and the extensions that registered one),
 * canonical spelling for serialization, and which headers are comma lists.
 * Inside sipflow a header is always keyed by its lower-case full name.
 */

import { COMPACT_HEADERS } from '../engine/cd';
import { detached } from '../engine/detached';

/** Compact form → lower-case full name: one table for the parser and the call descriptor input. */
export const COMPACT_FORMS = COMPACT_HEADERS;

/** Lower-case full name → spelling used on the wire (only where simple word capitalisation is wrong). */
const CANONICAL: Record<string, string> = {
  'call-id': 'Call-ID',
  cseq: 'CSeq',
  'www-authenticate': 'WWW-Authenticate',
  'mime-version': 'MIME-Version',
  rack: 'RAck',
  rseq: 'RSeq',
  'sip-etag': 'SIP-ETag',
  'sip-if-match': 'SIP-If-Match',
  'p-asserted-identity': 'P-Asserted-Identity',
  'identity-info': 'Identity-Info',
  'content-id': 'Content-ID',
  'remote-party-id': 'Remote-Party-ID',
  'p-charging-vector': 'P-Charging-Vector',
};

/**
 * Spellings made by capitalisation, kept: every response's Via, From, To, Contact… was spelled
 * again character by character (a concatenation and a toUpperCase each), about 1 µs a call. At
 * most SPELLED_MAX names (extension headers copied from requests are many), then spelled each time.
 */
const spelled = new Map<string, string>();
const SPELLED_MAX = 512;

/** Headers whose value is a comma-separated list (RFC 3261 §7.3.1 allows combining/splitting them). */
export const LIST_HEADERS: ReadonlySet<string> = new Set([
  'via',
  'contact',
  'route',
  'record-route',
  'path',
  'service-route',
  'allow',
  'allow-events',
  'supported',
  'require',
  'proxy-require',
  'unsupported',
  'accept',
  'accept-encoding',
  'accept-language',
  'content-encoding',
  'content-language',
  'in-reply-to',
  'warning',
  'call-info',
  'alert-info',
  'error-info',
  'p-asserted-identity',
  'p-preferred-identity',
  'p-associated-uri',
  'diversion',
  'history-info',
  'reason',
  'security-client',
  'security-server',
  'security-verify',
  'accept-contact',
  'reject-contact',
  'request-disposition',
]);

/** Headers that may appear only once in a message (RFC 3261 §20, and §7.3.1 for list rules). */
export const SINGLE_HEADERS: ReadonlySet<string> = new Set(['call-id', 'cseq', 'from', 'to', 'max-forwards', 'content-length', 'content-type', 'expires']);

/**
 * Exact spellings seen on the wire → lower-case full name. A hit skips toLowerCase and the
 * compact lookup for the common headers on the hot path; misses take the general route.
 */
const FAST = new Map<string, string>();
for (const full of [
  'via',
  'from',
  'to',
  'call-id',
  'cseq',
  'contact',
  'max-forwards',
  'content-length',
  'content-type',
  'expires',
  'authorization',
  'proxy-authorization',
  'user-agent',
  'allow',
  'supported',
  'route',
  'record-route',
  'www-authenticate',
  'proxy-authenticate',
  'server',
  'accept',
  'require',
  'event',
  'subject',
  'date',
  'timestamp',
  'path',
  'organization',
  'unsupported',
  'min-expires',
]) {
  FAST.set(full, full);
  FAST.set(canonicalHeaderName(full), full);
}
for (const [k, v] of Object.entries(COMPACT_FORMS)) {
  FAST.set(k, v);
  FAST.set(k.toUpperCase(), v);
}
FAST.set('Call-Id', 'call-id');
FAST.set('CSEQ', 'cseq');
FAST.set('Cseq', 'cseq');

/** FAST spellings grouped by first char code, so a name can be matched in place without slicing or hashing. */
const BY_FIRST: Array<Array<[string, string]> | undefined> = [];
for (const [spelling, full] of FAST) (BY_FIRST[spelling.charCodeAt(0)] ??= []).push([spelling, full]);

/**
 * Lower-case full name of the header name text[start, end) when it is one of the common
 * spellings, else undefined (then slice it and use fullHeaderName). Hot-path helper for the parser.
 */
export function matchHeaderName(text: string, start: number, end: number): string | undefined {
  const cands = BY_FIRST[text.charCodeAt(start)];
  if (cands === undefined) return undefined;
  const len = end - start;
  for (let i = 0; i < cands.length; i++) {
    const c = cands[i];
    if (c[0].length === len && text.startsWith(c[0], start)) return c[1];
  }
  return undefined;
}

/** Any spelling (any case, compact or full) → lower-case full name. */
export function fullHeaderName(name: string): string {
  const hit = FAST.get(name);
  if (hit !== undefined) return hit;
  const lower = name.toLowerCase();
  return lower.length === 1 ? (COMPACT_FORMS[lower] ?? lower) : lower;
}

/** Lower-case full name → canonical wire spelling ('call-id' → 'Call-ID', 'x-foo-bar' → 'X-Foo-Bar'). */
export function canonicalHeaderName(lower: string): string {
  // own entries only: a header named constructor or toString is spelled, not Object.prototype's member
  const known = Object.hasOwn(CANONICAL, lower) ? CANONICAL[lower] : spelled.get(lower);
  if (known !== undefined) return known;
  let out = '';
  let up = true;
  for (let i = 0; i < lower.length; i++) {
    const ch = lower[i];
    out += up ? ch.toUpperCase() : ch;
    up = ch === '-';
  }
  // flat copies: a name cut from a message must not keep it alive
  if (spelled.size < SPELLED_MAX) spelled.set(detached(lower), detached(out));
  return out;
}

export function isListHeader(name: string): boolean {
  return LIST_HEADERS.has(fullHeaderName(name));
}
