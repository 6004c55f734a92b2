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
 * The parameters a Digest verification reads, by their place in `known` (parse). A name read from
 * the header is a new string, and looking it up as a property (`hasOwnProperty`, a keyed store)
 * makes V8 hash and internalize it first: that was a fifth of the parse. The switch compares
 * characters, and an array is read by number. Other names (rare) go to an object of their own.
 */
const USERNAME = 0;
const REALM = 1;
const NONCE = 2;
const URI = 3;
const RESPONSE = 4;
const ALGORITHM = 5;
const CNONCE = 6;
const NC = 7;
const QOP = 8;
const OPAQUE = 9;
const KNOWN = 10;

function knownIndex(name: string): number {
  switch (name) {
    case 'username':
      return USERNAME;
    case 'realm':
      return REALM;
    case 'nonce':
      return NONCE;
    case 'uri':
      return URI;
    case 'response':
      return RESPONSE;
    case 'algorithm':
      return ALGORITHM;
    case 'cnonce':
      return CNONCE;
    case 'nc':
      return NC;
    case 'qop':
      return QOP;
    case 'opaque':
      return OPAQUE;
    default:
      return -1;
  }
}

/** Stores one parameter; false when it was given already (a duplicated parameter makes the credentials ambiguous: which one did the UA hash?). */
function keep(known: Array<string | undefined>, others: Record<string, string>, name: string, value: string): boolean {
  const k = knownIndex(name);
  if (k >= 0) {
    if (known[k] !== undefined) return false;
    known[k] = value;
  } else {
    if (Object.prototype.hasOwnProperty.call(others, name)) return false;
    others[name] = value;
  }
  return true;
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

  const known: Array<string | undefined> = new Array<string | undefined>(KNOWN).fill(undefined);
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

  const username = known[USERNAME];
  const realm = known[REALM];
  const nonce = known[NONCE];
  const uri = known[URI];
  const response = known[RESPONSE];
  if (username === undefined || realm === undefined || nonce === undefined || uri === undefined || response === undefined) return null;
  const algorithm = known[ALGORITHM];
  const cnonce = known[CNONCE];
  const nc = known[NC];
  const qop = known[QOP];
  const opaque = known[OPAQUE];

  // every parameter as sent: the known ones in one order (one object shape), then the others
  const params: Record<string, string> = { username, realm, nonce, uri, response };
  if (algorithm !== undefined) params.algorithm = algorithm;
  if (cnonce !== undefined) params.cnonce = cnonce;
  if (nc !== undefined) params.nc = nc;
  if (qop !== undefined) params.qop = qop;
  if (opaque !== undefined) params.opaque = opaque;
  for (const k in others) params[k] = others[k];

  const creds: DigestCredentials = {
    scheme: 'Digest',
    username,
    realm,
    nonce,
    uri,
    response,
    algorithm: algorithm ?? 'MD5', // RFC 7616 §3.3: absent means MD5
    params,
  };
  if (cnonce !== undefined) creds.cnonce = cnonce;
  if (nc !== undefined) creds.nc = nc;
  if (qop !== undefined) creds.qop = qop;
  if (opaque !== undefined) creds.opaque = opaque;
  return creds;
}
