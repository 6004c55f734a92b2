/**
 * Pure parsing of the SIP header values the engine and registrar need (RFC 3261 §25):
 * name-addr / addr-spec, SIP URIs, header parameters, comma-separated header lists.
 * No I/O, no exceptions: malformed input gives null.
 */

export interface SipUri {
  scheme: string;            // sip, sips, tel, …
  user: string | null;       // unescaped user part
  password: string | null;
  host: string;              // IPv6 keeps its brackets
  port: number | null;
  params: Record<string, string | null>;  // lower-case names
  headers: string | null;
}

export interface NameAddr {
  displayName: string | null;
  uri: string;               // the URI text as written
  params: Record<string, string | null>;  // header parameters (tag, expires, q, tgrp, …), lower-case names
}

/** Splits a header value on top-level commas (not inside quotes or <>). */
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

/** Parses `;name=value;flag` parameters (value may be a quoted string). */
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
        let k = j + 1;
        let v = '';
        while (k < text.length && text[k] !== '"') {
          if (text[k] === '\\' && k + 1 < text.length) k++;
          v += text[k++];
        }
        value = v;
        j = k + 1;
        while (j < text.length && text[j] !== ';') j++;
      } else {
        let k = j;
        while (k < text.length && text[k] !== ';') k++;
        value = text.slice(j, k).trim();
        j = k;
      }
    }
    if (name) params[name] = value;
    i = j;
  }
  return params;
}

function unescapeUri(s: string): string {
  if (!s.includes('%')) return s;
  try { return decodeURIComponent(s); } catch { return s; }
}

/** Parses a URI (`sip:user:pw@host:port;params?headers`, `tel:+31…;params`, or an absolute URI). */
export function parseUri(text: string): SipUri | null {
  const t = text.trim();
  const colon = t.indexOf(':');
  if (colon <= 0) return null;
  const scheme = t.slice(0, colon).toLowerCase();
  if (!/^[a-z][a-z0-9+.-]*$/.test(scheme)) return null;
  let rest = t.slice(colon + 1);
  let headers: string | null = null;
  const q = rest.indexOf('?');
  if (q >= 0) { headers = rest.slice(q + 1); rest = rest.slice(0, q); }
  if (scheme === 'tel') {
    const semi = rest.indexOf(';');
    const number = semi >= 0 ? rest.slice(0, semi) : rest;
    if (!number) return null;
    return { scheme, user: unescapeUri(number), password: null, host: '', port: null,
      params: semi >= 0 ? parseParams(rest.slice(semi)) : {}, headers };
  }
  if (scheme !== 'sip' && scheme !== 'sips') {
    return { scheme, user: null, password: null, host: rest, port: null, params: {}, headers };
  }
  let user: string | null = null;
  let password: string | null = null;
  // userinfo cannot hold an unescaped '@' but may hold ';' (user parameters), so the first '@' ends it
  const atPos = rest.indexOf('@');
  if (atPos >= 0) {
    const userinfo = rest.slice(0, atPos);
    rest = rest.slice(atPos + 1);
    const pc = userinfo.indexOf(':');
    user = unescapeUri(pc >= 0 ? userinfo.slice(0, pc) : userinfo);
    password = pc >= 0 ? unescapeUri(userinfo.slice(pc + 1)) : null;
  }
  const semi = rest.indexOf(';');
  const hostport = semi >= 0 ? rest.slice(0, semi) : rest;
  const params = semi >= 0 ? parseParams(rest.slice(semi)) : {};
  let host: string;
  let port: number | null = null;
  if (hostport.startsWith('[')) {
    const end = hostport.indexOf(']');
    if (end < 0) return null;
    host = hostport.slice(0, end + 1);
    const after = hostport.slice(end + 1);
    if (after.startsWith(':')) port = toPort(after.slice(1));
    else if (after) return null;
  } else {
    const pc = hostport.lastIndexOf(':');
    if (pc >= 0) { host = hostport.slice(0, pc); port = toPort(hostport.slice(pc + 1)); }
    else host = hostport;
  }
  if (!host || Number.isNaN(port)) return null;
  return { scheme, user, password, host: host.toLowerCase(), port, params, headers };
}

function toPort(s: string): number {
  if (!/^\d{1,5}$/.test(s)) return NaN;
  const n = Number(s);
  return n <= 65535 ? n : NaN;
}

/** Parses one name-addr or addr-spec with header parameters (From, To, Contact entry, Diversion, PAI, RPID). */
export function parseNameAddr(value: string): NameAddr | null {
  let v = value.trim();
  if (!v) return null;
  let displayName: string | null = null;
  if (v.startsWith('"')) {
    let k = 1;
    let name = '';
    while (k < v.length && v[k] !== '"') {
      if (v[k] === '\\' && k + 1 < v.length) k++;
      name += v[k++];
    }
    if (k >= v.length) return null;
    displayName = name;
    v = v.slice(k + 1).trim();
  }
  const lt = v.indexOf('<');
  if (lt >= 0) {
    const gt = v.indexOf('>', lt);
    if (gt < 0) return null;
    if (displayName === null) {
      const dn = v.slice(0, lt).trim();
      displayName = dn || null;
    }
    const uri = v.slice(lt + 1, gt).trim();
    return { displayName, uri, params: parseParams(v.slice(gt + 1)) };
  }
  if (displayName !== null) return null;
  // addr-spec: parameters after the URI are header parameters (RFC 3261 §20.10)
  const semi = v.indexOf(';');
  const uri = semi >= 0 ? v.slice(0, semi).trim() : v;
  return { displayName: null, uri, params: semi >= 0 ? parseParams(v.slice(semi)) : {} };
}
