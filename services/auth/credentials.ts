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

const REQUIRED = ['username', 'realm', 'nonce', 'uri', 'response'] as const;

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

  const params: Record<string, string> = {};
  for (;;) {
    // Empty list elements (",,") are allowed by the HTTP list rule (RFC 7230 §7).
    while (isWs(s.charCodeAt(i))) i++;
    while (s.charCodeAt(i) === COMMA) {
      i++;
      while (isWs(s.charCodeAt(i))) i++;
    }
    if (i >= n) break;

    start = i;
    while (isTokenChar(s.charCodeAt(i))) i++;
    if (i === start) return null;
    const name = s.slice(start, i).toLowerCase();
    while (isWs(s.charCodeAt(i))) i++;
    if (s.charCodeAt(i) !== EQUALS) return null;
    i++;
    while (isWs(s.charCodeAt(i))) i++;

    let value: string;
    let bad: boolean;
    if (s.charCodeAt(i) === DQUOTE) {
      i++;
      const close = s.indexOf('"', i);
      const esc = s.indexOf('\\', i);
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

    // A duplicated parameter makes the credentials ambiguous (which one did the UA hash?).
    if (Object.prototype.hasOwnProperty.call(params, name)) return null;
    // Every value, not only the required ones: nothing with a NUL or an invalid byte goes further.
    if (bad) return null;
    params[name] = value;

    while (isWs(s.charCodeAt(i))) i++;
    if (i < n && s.charCodeAt(i) !== COMMA) return null; // two params without a separating comma
  }

  for (const k of REQUIRED) if (!Object.prototype.hasOwnProperty.call(params, k)) return null;

  const creds: DigestCredentials = {
    scheme: 'Digest',
    username: params.username,
    realm: params.realm,
    nonce: params.nonce,
    uri: params.uri,
    response: params.response,
    algorithm: params.algorithm ?? 'MD5', // RFC 7616 §3.3: absent means MD5
    params,
  };
  if (params.cnonce !== undefined) creds.cnonce = params.cnonce;
  if (params.nc !== undefined) creds.nc = params.nc;
  if (params.qop !== undefined) creds.qop = params.qop;
  if (params.opaque !== undefined) creds.opaque = params.opaque;
  return creds;
}
