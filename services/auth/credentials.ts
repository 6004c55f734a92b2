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
 * Characters refused inside a parameter value: C0 controls, DEL, C1 controls, U+FFFD and lone
 * surrogates (a high one not followed by a low one, a low one not preceded by a high one).
 */
// eslint-disable-next-line no-control-regex -- control characters are what this refuses
const INVALID_VALUE_CHAR = /[\u0000-\u001f\u007f-\u009f\ufffd]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** True when a parameter value holds a control character or an invalid byte (see INVALID_VALUE_CHAR). */
export function hasInvalidChar(value: string): boolean {
  return INVALID_VALUE_CHAR.test(value);
}

const isWs = (ch: string): boolean => ch === ' ' || ch === '\t' || ch === '\r' || ch === '\n';
/** RFC 7230 tchar (a superset is harmless here: names are only looked up, never echoed). */
const TOKEN_CHARS = new Uint8Array(128);
for (const ch of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!#$%&'*+.^_`|~-") TOKEN_CHARS[ch.charCodeAt(0)] = 1;
const isTokenChar = (ch: string | undefined): boolean => {
  if (ch === undefined || ch.length !== 1) return false;
  const c = ch.charCodeAt(0);
  return c < 128 && TOKEN_CHARS[c] === 1;
};

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
  let i = 0;
  const skipWs = (): void => {
    while (i < s.length && isWs(s[i])) i++;
  };
  const readToken = (): string => {
    const start = i;
    while (i < s.length && isTokenChar(s[i])) i++;
    return s.slice(start, i);
  };

  skipWs();
  const scheme = readToken();
  if (scheme.toLowerCase() !== 'digest') return null;
  // The scheme must be followed by whitespace (or nothing, which then fails the required check).
  if (i < s.length && !isWs(s[i])) return null;

  const params: Record<string, string> = {};
  for (;;) {
    // Empty list elements (",,") are allowed by the HTTP list rule (RFC 7230 §7).
    skipWs();
    while (i < s.length && s[i] === ',') {
      i++;
      skipWs();
    }
    if (i >= s.length) break;

    const name = readToken().toLowerCase();
    if (!name) return null;
    skipWs();
    if (s[i] !== '=') return null;
    i++;
    skipWs();

    let value: string;
    if (s[i] === '"') {
      i++;
      const close = s.indexOf('"', i);
      const esc = s.indexOf('\\', i);
      if (close >= 0 && (esc < 0 || esc > close)) {
        // no quoted-pair inside: the value is the plain slice
        value = s.slice(i, close);
        i = close + 1;
        if (Object.prototype.hasOwnProperty.call(params, name)) return null;
        params[name] = value;
        skipWs();
        if (i < s.length && s[i] !== ',') return null;
        continue;
      }
      let out = '';
      for (;;) {
        if (i >= s.length) return null; // unterminated quoted-string
        const ch = s[i++];
        if (ch === '"') break;
        if (ch === '\\') {
          if (i >= s.length) return null;
          out += s[i++]; // quoted-pair: the escaped character stands for itself
        } else {
          out += ch;
        }
      }
      value = out;
    } else {
      // Unquoted value (nc, qop, algorithm are tokens). Lenient: some UAs also send nonces or
      // URIs unquoted, so accept anything up to whitespace, comma or quote.
      const start = i;
      while (i < s.length && !isWs(s[i]) && s[i] !== ',' && s[i] !== '"') i++;
      value = s.slice(start, i);
      if (!value) return null;
    }

    // A duplicated parameter makes the credentials ambiguous (which one did the UA hash?).
    if (Object.prototype.hasOwnProperty.call(params, name)) return null;
    params[name] = value;

    skipWs();
    if (i < s.length && s[i] !== ',') return null; // two params without a separating comma
  }

  for (const k of REQUIRED) if (!Object.prototype.hasOwnProperty.call(params, k)) return null;
  // Every value, not only the required ones: nothing with a NUL or an invalid byte goes further.
  for (const k in params) if (hasInvalidChar(params[k])) return null;

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
