/**
 * Parser for `Authorization` / `Proxy-Authorization` Digest credentials (RFC 7616 §3.4,
 * RFC 3261 §25.1). Written as a small hand-rolled scanner rather than a regex so that hostile
 * input cannot trigger backtracking, and so every malformed header yields null instead of a throw.
 *
 * Parameter values are refused (null, so the request is challenged: 401/407) when they hold a
 * character no credentials legitimately carry: a C0 control (NUL, tab, CR, LF, …), DEL, a C1
 * control, U+FFFD (what the SIP parser's UTF-8 decoding makes of an invalid byte sequence) or a
 * lone UTF-16 surrogate (only possible from JSON input). So a username such as "franc\0esco"
 * never reaches `authUsername`, a directory query (PostgreSQL rejects NUL in text: that was an
 * unauthenticated 500 per request) or a log line. Whitespace between parameters is untouched.
 */
import type { DigestCredentials } from './types';

/** Headers longer than this are rejected outright: real credentials are a few hundred bytes. */
const MAX_HEADER_LENGTH = 8192;

/**
 * True when `s` from `from` to `to` holds a character refused inside a parameter value: a C0
 * control, DEL, a C1 control, U+FFFD, or a lone surrogate (a high one not followed by a low one
 * within the range, a low one not preceded by a high one). Read by character codes: it runs on every
 * value of every authenticated request. Held to the regular expression it replaced on random strings
 * by test/unit/auth/credentials-scan.test.ts.
 */
export function invalidCharIn(s: string, from: number, to: number): boolean {
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || (c >= 0x7f && c <= 0x9f) || c === 0xfffd) return true;
    if (c >= 0xd800 && c <= 0xdfff) {
      if (c > 0xdbff) return true; // a low surrogate alone
      const low = i + 1 < to ? s.charCodeAt(i + 1) : 0;
      if (low < 0xdc00 || low > 0xdfff) return true;
      i++; // the pair is whole
    }
  }
  return false;
}

/** True when a parameter value holds a control character or an invalid byte (see invalidCharIn). */
export const hasInvalidChar = (value: string): boolean => invalidCharIn(value, 0, value.length);

const SP = 0x20;
const HTAB = 0x09;
const CR = 0x0d;
const LF = 0x0a;
const COMMA = 0x2c;
const EQUALS = 0x3d;
const DQUOTE = 0x22;
const BACKSLASH = 0x5c;
const isWs = (c: number): boolean => c === SP || c === HTAB || c === CR || c === LF;
/** RFC 7230 tchar (a superset is harmless here: names are only looked up, never echoed). */
const TOKEN_CHARS = new Uint8Array(128);
for (const ch of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!#$%&'*+.^_`|~-") TOKEN_CHARS[ch.charCodeAt(0)] = 1;
/** NaN (past the end) is no token character. */
const isTokenChar = (c: number): boolean => c < 128 && TOKEN_CHARS[c] === 1;

/**
 * Parses one credentials header value. Returns null for anything that is not well-formed Digest
 * credentials carrying username, realm, nonce, uri and response. Never throws.
 */
export function parseDigestCredentials(headerValue: string): DigestCredentials | null {
  try {
    return parse(headerValue);
  } catch {
    return null; // belt and braces: a parser bug must become a 401, not a 500
  }
}

/**
 * The parameters a Digest verification reads, kept as they are scanned. A name read from the
 * header is a new string, and looking it up in an object (`hasOwnProperty`, a keyed store) makes
 * V8 hash and internalize it first: that was a fifth of the parse. Comparing it with these
 * literals is not; other names (rare) go to `others`.
 */
interface Known {
  username?: string;
  realm?: string;
  nonce?: string;
  uri?: string;
  response?: string;
  algorithm?: string;
  cnonce?: string;
  nc?: string;
  qop?: string;
  opaque?: string;
}

/** Stores one parameter; false when it was given already (a duplicated parameter makes the credentials ambiguous: which one did the UA hash?). */
function keep(known: Known, others: Record<string, string>, name: string, value: string): boolean {
  // each name stored by its literal: `known[name]` would hash and internalize `name` again
  switch (name) {
    case 'username':
      if (known.username !== undefined) return false;
      known.username = value;
      return true;
    case 'realm':
      if (known.realm !== undefined) return false;
      known.realm = value;
      return true;
    case 'nonce':
      if (known.nonce !== undefined) return false;
      known.nonce = value;
      return true;
    case 'uri':
      if (known.uri !== undefined) return false;
      known.uri = value;
      return true;
    case 'response':
      if (known.response !== undefined) return false;
      known.response = value;
      return true;
    case 'algorithm':
      if (known.algorithm !== undefined) return false;
      known.algorithm = value;
      return true;
    case 'cnonce':
      if (known.cnonce !== undefined) return false;
      known.cnonce = value;
      return true;
    case 'nc':
      if (known.nc !== undefined) return false;
      known.nc = value;
      return true;
    case 'qop':
      if (known.qop !== undefined) return false;
      known.qop = value;
      return true;
    case 'opaque':
      if (known.opaque !== undefined) return false;
      known.opaque = value;
      return true;
    default:
      if (Object.prototype.hasOwnProperty.call(others, name)) return false;
      others[name] = value;
      return true;
  }
}

function parse(input: unknown): DigestCredentials | null {
  if (typeof input !== 'string' || input.length > MAX_HEADER_LENGTH) return null;
  const s = input;
  const n = s.length;
  let i = 0;
  // charCodeAt past the end is NaN: no whitespace, token, comma, '=' or quote
  while (isWs(s.charCodeAt(i))) i++;
  let start = i;
  while (isTokenChar(s.charCodeAt(i))) i++;
  if (i - start !== 6 || s.slice(start, i).toLowerCase() !== 'digest') return null;
  // The scheme must be followed by whitespace (or nothing, which then fails the required check).
  if (i < n && !isWs(s.charCodeAt(i))) return null;
  // no backslash anywhere (the common case): no quoted value has a quoted-pair to unescape
  const escapes = s.indexOf('\\', i) >= 0;

  const known: Known = {};
  const others: Record<string, string> = {};
  for (;;) {
    // Empty list elements (",,") are allowed by the HTTP list rule (RFC 7230 §7).
    while (isWs(s.charCodeAt(i))) i++;
    while (s.charCodeAt(i) === COMMA) {
      i++;
      while (isWs(s.charCodeAt(i))) i++;
    }
    if (i >= n) break;

    start = i;
    let upper = false;
    for (let c = s.charCodeAt(i); isTokenChar(c); c = s.charCodeAt(++i)) if (c >= 0x41 && c <= 0x5a) upper = true;
    if (i === start) return null;
    const name = upper ? s.slice(start, i).toLowerCase() : s.slice(start, i);
    while (isWs(s.charCodeAt(i))) i++;
    if (s.charCodeAt(i) !== EQUALS) return null;
    i++;
    while (isWs(s.charCodeAt(i))) i++;

    let value: string;
    let bad: boolean;
    if (s.charCodeAt(i) === DQUOTE) {
      i++;
      const close = s.indexOf('"', i);
      const esc = escapes ? s.indexOf('\\', i) : -1;
      if (close >= 0 && (esc < 0 || esc > close)) {
        // no quoted-pair inside: the value is the plain slice
        bad = invalidCharIn(s, i, close);
        value = s.slice(i, close);
        i = close + 1;
      } else {
        let out = '';
        for (;;) {
          if (i >= n) return null; // unterminated quoted-string
          const c = s.charCodeAt(i++);
          if (c === DQUOTE) break;
          if (c === BACKSLASH) {
            if (i >= n) return null;
            out += s[i++]; // quoted-pair: the escaped character stands for itself
          } else {
            out += s[i - 1];
          }
        }
        value = out;
        bad = hasInvalidChar(out);
      }
    } else {
      // Unquoted value (nc, qop, algorithm are tokens). Lenient: some UAs also send nonces or
      // URIs unquoted, so accept anything up to whitespace, comma or quote.
      start = i;
      for (let c = s.charCodeAt(i); i < n && !isWs(c) && c !== COMMA && c !== DQUOTE; c = s.charCodeAt(++i));
      if (i === start) return null;
      bad = invalidCharIn(s, start, i);
      value = s.slice(start, i);
    }

    // Every value, not only the required ones: nothing with a NUL or an invalid byte goes further.
    if (!keep(known, others, name, value) || bad) return null;

    while (isWs(s.charCodeAt(i))) i++;
    if (i < n && s.charCodeAt(i) !== COMMA) return null; // two params without a separating comma
  }

  const { username, realm, nonce, uri, response } = known;
  if (username === undefined || realm === undefined || nonce === undefined || uri === undefined || response === undefined) return null;

  // every parameter as sent: the known ones in one order (one object shape), then the others
  const params: Record<string, string> = { username, realm, nonce, uri, response };
  if (known.algorithm !== undefined) params.algorithm = known.algorithm;
  if (known.cnonce !== undefined) params.cnonce = known.cnonce;
  if (known.nc !== undefined) params.nc = known.nc;
  if (known.qop !== undefined) params.qop = known.qop;
  if (known.opaque !== undefined) params.opaque = known.opaque;
  for (const k in others) params[k] = others[k];

  const creds: DigestCredentials = {
    scheme: 'Digest',
    username,
    realm,
    nonce,
    uri,
    response,
    algorithm: known.algorithm ?? 'MD5', // RFC 7616 §3.3: absent means MD5
    params,
  };
  if (known.cnonce !== undefined) creds.cnonce = known.cnonce;
  if (known.nc !== undefined) creds.nc = known.nc;
  if (known.qop !== undefined) creds.qop = known.qop;
  if (known.opaque !== undefined) creds.opaque = known.opaque;
  return creds;
}
