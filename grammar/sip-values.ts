/**
 * Pure parsing of the SIP header values the engine and registrar need (RFC 3261 §25):
 * name-addr / addr-spec, SIP URIs, header parameters, comma-separated header lists.
 * No I/O, no exceptions: malformed input gives null.
 *
 * A leaf: it imports nothing of the project, so engine/, nodes/, sip/ and services/ all share
 * one grammar without engine/ depending on sip/ (test/unit/layers.test.ts holds it to that).
 *
 * Every scanner here is a single left-to-right pass over char codes (no backtracking
 * regexes), so hostile input costs linear time. The SIP parser runs these on the hot path.
 */

export interface SipUri {
  readonly scheme: string; // sip, sips, tel, … (lower-case)
  readonly user: string | null; // unescaped user part
  readonly password: string | null;
  readonly host: string; // lower-case; IPv6 keeps its brackets
  readonly port: number | null;
  readonly params: Readonly<Record<string, string | null>>; // lower-case names; names and values unescaped once
  readonly headers: string | null; // raw text after '?', still escaped
}

export interface NameAddr {
  readonly displayName: string | null; // quoted form is unquoted and unescaped
  readonly uri: string; // the URI text as written
  readonly params: Readonly<Record<string, string | null>>; // header parameters (tag, expires, q, tgrp, …), lower-case names
}

/**
 * A header value with what it parsed to, handed on with its message so the message's later readers
 * do not parse it again (`reuse`). Readonly: every reader of the message shares it.
 */
export interface Parsed<T> {
  readonly text: string;
  readonly value: T;
}

/**
 * `text` parsed: `kept` itself when it was parsed from that very text (equal text, equal parse:
 * the parsers are pure), else a fresh parse (null: unparsable). A value rewritten since it was
 * parsed (a Request-URI a strict route replaced, a stamped Via) is thus parsed afresh, never
 * served stale.
 */
export function reuse<T>(kept: Parsed<T> | undefined, text: string, parse: (text: string) => T | null): Parsed<T> | null {
  if (kept !== undefined && kept.text === text) return kept;
  const value = parse(text);
  return value === null ? null : { text, value };
}

// ---------------------------------------------------------------- character classes

function table(chars: string): Uint8Array {
  const t = new Uint8Array(128);
  for (let i = 0; i < chars.length; i++) t[chars.charCodeAt(i)] = 1;
  return t;
}
const ALNUM = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
/** RFC 3261 `token` characters. */
const TOKEN = table(ALNUM + "-.!%*_+`'~");
/** Characters a SIP/absolute URI may hold inside `<>`: unreserved, reserved, '%' escapes, IPv6 brackets. */
const URIC = table(ALNUM + "-_.!~*'()" + ';/?:@&=+$,' + '%[]');
/** Unquoted generic-param value: token / host (IPv6 references bring ':' '[' ']'). */
const GENVAL = table(ALNUM + "-.!%*_+`'~" + ':[]');
/** hostname / IPv4 characters ('_' tolerated: common in the wild, harmless). */
const HOSTC = table(ALNUM + '-._');
const HEX6 = table('0123456789abcdefABCDEF:.');

export function isTokenChar(c: number): boolean {
  return c < 128 && TOKEN[c] === 1;
}

/** True when `s` is a non-empty RFC 3261 token (method, header name, param name, option tag). */
export function isToken(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) if (!isTokenChar(s.charCodeAt(i))) return false;
  return true;
}

export function skipWs(s: string, i: number): number {
  while (i < s.length) {
    const c = s.charCodeAt(i);
    if (c !== 32 && c !== 9) break;
    i++;
  }
  return i;
}

/** `s[i]` is '"': returns the index just past the closing quote, or -1 when unterminated. */
export function scanQuoted(s: string, i: number): number {
  for (let k = i + 1; k < s.length; k++) {
    const c = s.charCodeAt(k);
    if (c === 92 /* \ */)
      k++; // quoted-pair: the next char is literal, even '"'
    else if (c === 34 /* " */) return k + 1;
  }
  return -1;
}

/** Content of the quoted string s[i..end) with quoted-pairs resolved. */
function unquote(s: string, i: number, end: number): string {
  const inner = s.slice(i + 1, end - 1);
  return inner.indexOf('\\') < 0 ? inner : inner.replace(/\\([\s\S])/g, '$1');
}

/** s[start, end) is `scheme ":" something` with an RFC 3986 scheme. */
function hasScheme(s: string, start: number, end: number): boolean {
  const c0 = s.charCodeAt(start) | 0x20;
  if (start >= end || !(c0 >= 97 && c0 <= 122)) return false;
  for (let i = start + 1; i < end; i++) {
    const c = s.charCodeAt(i);
    if (c === 58 /* : */) return i + 1 < end;
    const l = c | 0x20;
    if (!((l >= 97 && l <= 122) || (c >= 48 && c <= 57) || c === 43 || c === 45 || c === 46)) return false;
  }
  return false;
}

// ---------------------------------------------------------------- lists

/** Splits a header value on top-level commas (not inside quotes or <>). Lenient: empty items are dropped. */
export function splitHeaderList(value: string): string[] {
  const out: string[] = [];
  let depthAngle = 0;
  let inQuote = false;
  let start = 0;
  for (let i = 0; i < value.length; i++) {
    const ch = value.charCodeAt(i);
    if (inQuote) {
      if (ch === 92 /* \ */) i++;
      else if (ch === 34 /* " */) inQuote = false;
    } else if (ch === 34) inQuote = true;
    else if (ch === 60 /* < */) depthAngle++;
    else if (ch === 62 /* > */) depthAngle = Math.max(0, depthAngle - 1);
    else if (ch === 44 /* , */ && depthAngle === 0) {
      const part = value.slice(start, i).trim();
      if (part) out.push(part);
      start = i + 1;
    }
  }
  const last = value.slice(start).trim();
  if (last) out.push(last);
  return out;
}

/**
 * Strict form of splitHeaderList for validation: null when an item is empty (`a,,b`, a trailing
 * comma), a quote is unterminated or a '<' is never closed. An all-blank value gives [].
 */
export function splitHeaderListStrict(value: string): string[] | null {
  const out: string[] = [];
  let start = 0;
  const n = value.length;
  for (let i = 0; i < n; i++) {
    const c = value.charCodeAt(i);
    if (c === 34) {
      const e = scanQuoted(value, i);
      if (e < 0) return null;
      i = e - 1;
    } else if (c === 60) {
      const gt = value.indexOf('>', i);
      if (gt < 0) return null;
      i = gt;
    } else if (c === 44) {
      const part = value.slice(start, i).trim();
      if (!part) return null;
      out.push(part);
      start = i + 1;
    }
  }
  const last = value.slice(start).trim();
  if (!last) return out.length === 0 ? out : null;
  out.push(last);
  return out;
}

// ---------------------------------------------------------------- parameters

/** Parses `;name=value;flag` parameters (value may be a quoted string). Lenient: never fails. */
export function parseParams(text: string): Record<string, string | null> {
  const params: Record<string, string | null> = {};
  let i = 0;
  while (i < text.length) {
    while (i < text.length && (text[i] === ';' || text[i] === ' ' || text[i] === '\t')) i++;
    if (i >= text.length) break;
    let j = i;
    while (j < text.length && text[j] !== '=' && text[j] !== ';') j++;
    const name = text.slice(i, j).trim().toLowerCase();
    let value: string | null = null;
    if (text[j] === '=') {
      j++;
      while (j < text.length && (text[j] === ' ' || text[j] === '\t')) j++;
      if (text[j] === '"') {
        const e = scanQuoted(text, j);
        const end = e < 0 ? text.length : e;
        value = e < 0 ? text.slice(j + 1) : unquote(text, j, e);
        j = end;
        while (j < text.length && text[j] !== ';') j++;
      } else {
        let k = j;
        while (k < text.length && text[k] !== ';') k++;
        value = text.slice(j, k).trim();
        j = k;
      }
    }
    if (name && name !== '__proto__') params[name] = value;
    i = j;
  }
  return params;
}

/**
 * Strict `*( SEMI generic-param )` from `start` to the end of `s` (RFC 3261 §25.1):
 * null on an empty parameter (`;;`), a missing value after '=', an unterminated quote or trailing garbage.
 * Whitespace (unfolded LWS) is allowed around ';' and '='.
 */
export function parseParamsStrict(s: string, start = 0): Record<string, string | null> | null {
  const out: Record<string, string | null> = {};
  return scanParams(s, start, out) ? out : null;
}

/** The scanner behind parseParamsStrict; with `out` null it only validates (no allocation). */
function scanParams(s: string, start: number, out: Record<string, string | null> | null): boolean {
  const n = s.length;
  let i = start;
  for (;;) {
    i = skipWs(s, i);
    if (i >= n) return true;
    if (s.charCodeAt(i) !== 59 /* ; */) return false;
    i = skipWs(s, i + 1);
    const ns = i;
    let upper = false;
    while (i < n) {
      const c = s.charCodeAt(i);
      if (c >= 128 || TOKEN[c] !== 1) break;
      if (c >= 65 && c <= 90) upper = true;
      i++;
    }
    if (i === ns) return false;
    const ne = i;
    i = skipWs(s, i);
    let vs = -1;
    let ve = -1;
    if (i < n && s.charCodeAt(i) === 61 /* = */) {
      i = skipWs(s, i + 1);
      vs = i;
      if (i < n && s.charCodeAt(i) === 34) {
        i = scanQuoted(s, i);
        if (i < 0) return false;
      } else {
        while (i < n) {
          const c = s.charCodeAt(i);
          if (c < 128 && GENVAL[c] === 1) i++;
          else break;
        }
        if (i === vs) return false;
      }
      ve = i;
    }
    if (out !== null) {
      const name = upper ? s.slice(ns, ne).toLowerCase() : s.slice(ns, ne);
      if (name !== '__proto__') {
        out[name] = vs < 0 ? null : s.charCodeAt(vs) === 34 ? unquote(s, vs, ve) : s.slice(vs, ve);
      }
    }
  }
}

// ---------------------------------------------------------------- URIs

/** Decodes %HH escapes exactly once ('%25%34%31' → '%41'); invalid escapes stay literal. */
export function unescapeUri(s: string): string {
  if (s.indexOf('%') < 0) return s;
  try {
    return decodeURIComponent(s);
  } catch {
    /* bad escape or not UTF-8: decode byte-wise */
  }
  return s.replace(/%([0-9A-Fa-f]{2})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16)));
}

function unescapeParams(p: Record<string, string | null>): Record<string, string | null> {
  let escaped = false;
  for (const k in p)
    if (k.indexOf('%') >= 0 || (p[k] ?? '').indexOf('%') >= 0) {
      escaped = true;
      break;
    }
  if (!escaped) return p;
  const out: Record<string, string | null> = {};
  for (const k in p) {
    const name = unescapeUri(k).toLowerCase();
    if (name !== '__proto__') out[name] = p[k] === null ? null : unescapeUri(p[k] as string);
  }
  return out;
}

const SCHEME_RE = /^[a-z][a-z0-9+.-]*$/;

/**
 * Parses a URI (`sip:user:pw@host:port;params?headers`, `tel:+31…;params`, or an absolute URI).
 * For sip/sips the userinfo ends at the first '@' (it may hold ';', '?', ',' and '/' but never a
 * raw '@', RFC 3261 §25.1), so '?' only starts the headers after the host.
 */
export function parseUri(text: string): SipUri | null {
  const t = text.trim();
  const colon = t.indexOf(':');
  if (colon <= 0) return null;
  const scheme = t.slice(0, colon).toLowerCase();
  if (!SCHEME_RE.test(scheme)) return null;
  let rest = t.slice(colon + 1);
  if (scheme === 'sip' || scheme === 'sips') return parseSipUri(scheme, rest);
  let headers: string | null = null;
  const q = rest.indexOf('?');
  if (q >= 0) {
    headers = rest.slice(q + 1);
    rest = rest.slice(0, q);
  }
  if (scheme === 'tel') {
    const semi = rest.indexOf(';');
    const number = semi >= 0 ? rest.slice(0, semi) : rest;
    if (!number) return null;
    return { scheme, user: unescapeUri(number), password: null, host: '', port: null, params: semi >= 0 ? parseParams(rest.slice(semi)) : {}, headers };
  }
  if (!rest) return null;
  return { scheme, user: null, password: null, host: rest, port: null, params: {}, headers };
}

function parseSipUri(scheme: string, rest: string): SipUri | null {
  let user: string | null = null;
  let password: string | null = null;
  const atPos = rest.indexOf('@');
  if (atPos >= 0) {
    const userinfo = rest.slice(0, atPos);
    rest = rest.slice(atPos + 1);
    const pc = userinfo.indexOf(':');
    user = unescapeUri(pc >= 0 ? userinfo.slice(0, pc) : userinfo);
    if (!user) return null;
    password = pc >= 0 ? unescapeUri(userinfo.slice(pc + 1)) : null;
  }
  let headers: string | null = null;
  const q = rest.indexOf('?');
  if (q >= 0) {
    headers = rest.slice(q + 1);
    rest = rest.slice(0, q);
  }
  const semi = rest.indexOf(';');
  const hostport = semi >= 0 ? rest.slice(0, semi) : rest;
  const params = semi >= 0 ? unescapeParams(parseParams(rest.slice(semi))) : {};
  let host: string;
  let port: number | null = null;
  if (hostport.charCodeAt(0) === 91 /* [ */) {
    const end = hostport.indexOf(']');
    if (end < 0) return null;
    host = hostport.slice(0, end + 1);
    for (let i = 1; i < end; i++) {
      const c = host.charCodeAt(i);
      if (c >= 128 || HEX6[c] !== 1) return null;
    }
    const after = hostport.slice(end + 1);
    if (after.startsWith(':')) port = toPort(after.slice(1));
    else if (after) return null;
  } else {
    const pc = hostport.lastIndexOf(':');
    if (pc >= 0) {
      host = hostport.slice(0, pc);
      port = toPort(hostport.slice(pc + 1));
    } else host = hostport;
    for (let i = 0; i < host.length; i++) {
      const c = host.charCodeAt(i);
      if (c >= 128 || HOSTC[c] !== 1) return null;
    }
  }
  if (!host || Number.isNaN(port)) return null;
  return { scheme, user, password, host: host.toLowerCase(), port, params, headers };
}

function toPort(s: string): number {
  if (s.length < 1 || s.length > 5) return NaN;
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return NaN;
    n = n * 10 + c;
  }
  return n <= 65535 ? n : NaN;
}

// ---------------------------------------------------------------- name-addr

/**
 * Parses one name-addr or addr-spec with header parameters (From, To, Contact entry, Route,
 * Diversion, PAI, RPID). Follows RFC 3261 §20.10/§25.1, with the tolerances RFC 4475 asks for
 * (no space needed before '<', UTF-8 in an unquoted display name). Null on: unterminated quote,
 * unquoted display name with non-token characters (`Bell, Alexander <…>`), whitespace or other
 * non-URI characters inside `<>`, a bare addr-spec holding ',' or '?' (it must be bracketed),
 * empty or malformed parameters.
 */
export function parseNameAddr(value: string): NameAddr | null {
  return nameAddr(value, true);
}

/** Whether `value` is a valid name-addr / addr-spec with params (same rules as parseNameAddr, no allocation). */
export function isNameAddr(value: string): boolean {
  return nameAddr(value, false) !== null;
}

/** Whether `value` is a valid comma list of name-addrs (Contact, Route, Record-Route…). */
export function isNameAddrList(value: string): boolean {
  if (value.indexOf(',') < 0) return nameAddr(value, false) !== null;
  const parts = splitHeaderListStrict(value);
  if (!parts || parts.length === 0) return false;
  for (const p of parts) if (nameAddr(p, false) === null) return false;
  return true;
}

const VALID: NameAddr = Object.freeze({ displayName: null, uri: '', params: Object.freeze({}) }) as NameAddr;

/** name-addr scanner; `build` false validates only and returns the shared VALID marker. */
function nameAddr(s: string, build: boolean): NameAddr | null {
  const n = s.length;
  let i = skipWs(s, 0);
  if (i >= n) return null;
  let displayName: string | null = null;
  let c = s.charCodeAt(i);
  if (c === 34) {
    const e = scanQuoted(s, i);
    if (e < 0) return null;
    if (build) displayName = unquote(s, i, e);
    i = skipWs(s, e);
    if (i >= n || s.charCodeAt(i) !== 60) return null;
  } else if (c !== 60) {
    let k = i;
    while (k < n) {
      c = s.charCodeAt(k);
      if (c === 32 || c === 9 || c >= 128 || TOKEN[c] === 1) k++;
      else break;
    }
    if (k < n && s.charCodeAt(k) === 60) {
      if (build) displayName = s.slice(i, k).trim() || null;
      i = k;
    } else {
      // addr-spec: the URI runs to the first ';' or whitespace; what follows are header params
      const us = i;
      while (i < n) {
        c = s.charCodeAt(i);
        if (c === 59 || c === 32 || c === 9) break;
        if (c >= 128 || URIC[c] !== 1 || c === 44 || c === 63) return null;
        i++;
      }
      if (!hasScheme(s, us, i)) return null;
      if (!build) return scanParams(s, i, null) ? VALID : null;
      const params: Record<string, string | null> = {};
      return scanParams(s, i, params) ? { displayName: null, uri: s.slice(us, i), params } : null;
    }
  }
  // s[i] is '<'
  const us = i + 1;
  let k = us;
  while (k < n) {
    c = s.charCodeAt(k);
    if (c === 62) break;
    if (c >= 128 || URIC[c] !== 1) return null;
    k++;
  }
  if (k >= n || !hasScheme(s, us, k)) return null;
  if (!build) return scanParams(s, k + 1, null) ? VALID : null;
  const params: Record<string, string | null> = {};
  return scanParams(s, k + 1, params) ? { displayName, uri: s.slice(us, k), params } : null;
}

/** Parses a comma list of name-addrs (Contact, Route, Record-Route, Path, PAI…); null if any entry is malformed. */
export function parseNameAddrList(value: string): NameAddr[] | null {
  if (value.indexOf(',') < 0) {
    // the usual single entry: parseNameAddr does all the checking
    const na = parseNameAddr(value);
    return na ? [na] : null;
  }
  const parts = splitHeaderListStrict(value);
  if (!parts) return null;
  const out: NameAddr[] = [];
  for (const p of parts) {
    const na = parseNameAddr(p);
    if (!na) return null;
    out.push(na);
  }
  return out;
}

/**
 * Expires / delta-seconds (the header and the Contact `expires` parameter): digits only, else null
 * (malformed; an absent value is null too). RFC 3261 §20.19: values above 2^32-1 are taken as 2^32-1.
 */
export function parseExpires(value: string | null | undefined): number | null {
  if (value == null) return null;
  const s = value.trim();
  if (!/^\d+$/.test(s)) return null;
  return s.replace(/^0+(?=\d)/, '').length > 10 ? 0xffffffff : Math.min(Number(s), 0xffffffff);
}
