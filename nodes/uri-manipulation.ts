/**
 * action.uriManipulation: a SIP, SIPS or TEL URI into its parts (mode `parse`), or a URI built
 * from parts (mode `build`).
 *
 * parse: the URI (a bare URI, or a name-addr `"Name" <sip:…>;tag=…` whose URI is taken) is read
 * with grammar/sip-values.ts `parseUri`, the one URI parser of the project. The scheme, user
 * (unescaped), host, port, chosen URI parameters (a flag parameter reads "") and chosen headers
 * (`?name=value`, unescaped) go into variables; a part the URI lacks writes null, so nothing of
 * an earlier message lingers. A password (`sip:user:pw@host`) is never stored.
 *
 * build: scheme, user, host, port, parameters and headers are value fields (variables, `[name]`
 * placeholders), so a caller may control them. Each part is escaped or checked so that it stays
 * in its place (RFC 3261 §25.1):
 * - the user is %-escaped except unreserved characters and `& = + $ , /`, so `@`, `:`, `;`, `?`,
 *   `>` and `%` in a caller's value cannot end the user part, add a password, parameters or
 *   headers, or change the host; a TEL number must be digits and visual separators;
 * - the host must be a host name, IPv4 or [IPv6] address, the port 1–65535;
 * - parameter and header names are literal tokens; their values are %-escaped except the
 *   characters RFC 3261 allows there.
 * The result is then parsed back with `parseUri` and must give exactly the parts it was built
 * from; otherwise the node takes `ifInvalid`. Built URIs are at most 4096 characters.
 *
 * `statusVariable` (optional): valid, or missing, tooLong, invalid (parse); invalidUser,
 * invalidHost, invalidPort, tooLong, invalid (build).
 */
import type { NodeType, ValueGetter } from '../engine/node-type';
import type { CdValue } from '../engine/types';
import { parseNameAddr, parseUri, unescapeUri, type SipUri } from '../grammar/sip-values';
import { toText } from '../engine/values';
import { anyValue, nodeRef, writesVariable } from './common';

interface Values {
  mode: 'parse' | 'build';
  uri?: unknown;
  schemeVariable?: string;
  userVariable?: string;
  hostVariable?: string;
  portVariable?: string;
  storeParams?: Array<{ name: string; variable: string }>;
  storeHeaders?: Array<{ name: string; variable: string }>;
  scheme?: 'sip' | 'sips' | 'tel';
  user?: unknown;
  host?: unknown;
  port?: unknown;
  params?: Array<{ name: string; value?: unknown }>;
  headers?: Array<{ name: string; value?: unknown }>;
  storeInto?: string;
  statusVariable?: string;
  next?: number | string;
  ifInvalid?: number | string;
}

/** Longest URI read or built (a Request-URI is a few hundred bytes). */
export const MAX_URI_LENGTH = 4096;

const tokenName = { type: 'string', minLength: 1, pattern: "^[A-Za-z0-9!%*_+`'~.-]+$" };

/** %-escapes `text` except unreserved characters (RFC 3261) and those in `keep`. */
function escapeExcept(text: string, keep: RegExp): string {
  return encodeURIComponent(text).replace(/%([0-9A-F]{2})/g, (m, hex: string) => {
    const ch = String.fromCharCode(parseInt(hex, 16));
    return keep.test(ch) ? ch : m;
  });
}
/** user-unreserved without `;` and `?`, which would start user or URI parameters / headers. */
const USER_KEEP = /^[&=+$,/]$/;
/** param-unreserved (RFC 3261 and RFC 3966). */
const PARAM_KEEP = /^[[\]/:&+$]$/;
/** hnv-unreserved. */
const HEADER_KEEP = /^[[\]/?:+$]$/;
/** A TEL number: digits (hex for local numbers), '+', '*', '#', visual separators. */
const TEL_NUMBER = /^\+?[0-9A-Fa-f*#().-]+$/;
const PORT = /^\d{1,5}$/;

export const uriManipulationNode: NodeType<Values> = {
  type: 'action.uriManipulation',
  title: 'URI manipulation',
  summary: '{mode} {uri}',
  category: 'manipulation',
  description:
    'Parses a SIP/SIPS/TEL URI into scheme, user, host, port, parameters and headers, or builds one from parts (each part escaped so a caller value cannot inject parameters or change the host).',
  valuesSchema: {
    type: 'object',
    required: ['mode'],
    properties: {
      mode: { type: 'string', enum: ['parse', 'build'], default: 'parse', description: 'parse a URI into variables, or build one from parts' },
      uri: { ...anyValue, default: 'requestURI', description: 'parse: the URI (or a name-addr holding one)' },
      schemeVariable: { ...writesVariable, description: 'parse: receives sip, sips or tel' },
      userVariable: { ...writesVariable, description: 'parse: receives the user part, unescaped (the number of a tel URI)' },
      hostVariable: { ...writesVariable, description: 'parse: receives the host (lower-case; null for tel)' },
      portVariable: { ...writesVariable, description: 'parse: receives the port number, or null' },
      storeParams: {
        type: 'array',
        default: [],
        description: 'parse: URI parameters to store (a flag parameter reads "", an absent one null)',
        items: {
          type: 'object',
          required: ['name', 'variable'],
          properties: {
            name: { ...tokenName, description: 'parameter name (case-insensitive)' },
            variable: { ...writesVariable, description: 'variable receiving its value' },
          },
        },
      },
      storeHeaders: {
        type: 'array',
        default: [],
        description: 'parse: URI headers (?name=value) to store, unescaped',
        items: {
          type: 'object',
          required: ['name', 'variable'],
          properties: {
            name: { ...tokenName, description: 'header name (case-insensitive)' },
            variable: { ...writesVariable, description: 'variable receiving its value' },
          },
        },
      },
      scheme: { type: 'string', enum: ['sip', 'sips', 'tel'], default: 'sip', description: 'build: the scheme' },
      user: { ...anyValue, description: 'build: the user part (escaped), or the number of a tel URI' },
      host: { ...anyValue, description: 'build: host name, IPv4 or [IPv6] address (sip, sips)' },
      port: { ...anyValue, description: 'build: port (empty: none)' },
      params: {
        type: 'array',
        default: [],
        description: 'build: URI parameters, in order',
        items: {
          type: 'object',
          required: ['name'],
          properties: {
            name: { ...tokenName, description: 'parameter name' },
            value: { ...anyValue, description: 'its value (escaped); empty: a flag parameter such as lr' },
          },
        },
      },
      headers: {
        type: 'array',
        default: [],
        description: 'build: URI headers (?name=value&…), sip and sips only',
        items: {
          type: 'object',
          required: ['name'],
          properties: { name: { ...tokenName, description: 'header name' }, value: { ...anyValue, description: 'its value (escaped)' } },
        },
      },
      storeInto: { ...writesVariable, description: 'build: variable receiving the URI' },
      statusVariable: {
        ...writesVariable,
        description: 'optional: receives valid, or why not (missing, tooLong, invalid, invalidUser, invalidHost, invalidPort)',
      },
      next: nodeRef,
      ifInvalid: { ...nodeRef, description: 'taken when the URI cannot be parsed or built (default: the run ends, as for any unset exit)' },
    },
  },
  check(v) {
    const problems: Array<[string, string]> = [];
    if (v.mode === 'build') {
      if (!v.storeInto) problems.push(['storeInto', 'is required to build a URI']);
      if ((v.scheme ?? 'sip') === 'tel') {
        if (isEmpty(v.user)) problems.push(['user', 'a tel URI needs a number']);
        if (!isEmpty(v.host)) problems.push(['host', 'a tel URI has no host']);
        if (Array.isArray(v.headers) && v.headers.length > 0) problems.push(['headers', 'a tel URI has no headers']);
      } else if (isEmpty(v.host)) problems.push(['host', 'is required to build a sip or sips URI']);
      const seen = new Set<string>();
      // check() also sees values the schema refused: read them defensively
      (Array.isArray(v.params) ? v.params : []).forEach((p, i) => {
        const name = typeof p?.name === 'string' ? p.name.toLowerCase() : '';
        if (seen.has(name)) problems.push([`params/${i}/name`, `parameter "${p.name}" is given twice`]);
        seen.add(name);
      });
    } else if (v.mode === 'parse' && (v.uri === '' || v.uri === null)) problems.push(['uri', 'is required to parse a URI (absent: requestURI)']);
    return problems;
  },
  compile(values, c) {
    const next = c.exit('next');
    const invalid = c.exit('ifInvalid');
    const status = values.statusVariable || null;
    const run = values.mode === 'build' ? compileBuild(values, c) : compileParse(values, c);
    return (s) => {
      const result = run(s.cd.vars, (name, value) => s.set(name, value));
      if (status) s.set(status, result);
      return result === 'valid' ? next : invalid;
    };
  },
};

const isEmpty = (v: unknown) => v === undefined || v === null || v === '';

type Part = (vars: Record<string, CdValue>, set: (name: string, value: CdValue) => void) => string;

function compileParse(values: Values, c: { value(raw: unknown): ValueGetter }): Part {
  const input = c.value(values.uri ?? 'requestURI');
  const params = (values.storeParams ?? []).map((p) => ({ name: p.name.toLowerCase(), variable: p.variable }));
  const headers = (values.storeHeaders ?? []).map((h) => ({ name: h.name.toLowerCase(), variable: h.variable }));
  const { schemeVariable, userVariable, hostVariable, portVariable } = values;
  return (vars, set) => {
    const raw = input(vars);
    if (raw === null || raw === '') return 'missing';
    const text = toText(raw).trim();
    if (text.length > MAX_URI_LENGTH) return 'tooLong';
    const uri = readUri(text);
    if (!uri) return 'invalid';
    if (schemeVariable) set(schemeVariable, uri.scheme);
    if (userVariable) set(userVariable, uri.user);
    if (hostVariable) set(hostVariable, uri.host || null);
    if (portVariable) set(portVariable, uri.port);
    for (const p of params) set(p.variable, Object.hasOwn(uri.params, p.name) ? (uri.params[p.name] ?? '') : null);
    if (headers.length > 0) {
      const all = uriHeaders(uri.headers);
      for (const h of headers) set(h.variable, all.get(h.name) ?? null);
    }
    return 'valid';
  };
}

/** A sip, sips or tel URI, bare or inside a name-addr. */
function readUri(text: string): SipUri | null {
  const bare = /^(sips?|tel):/i.test(text) && !text.includes('<') ? text : parseNameAddr(text)?.uri;
  const uri = bare ? parseUri(bare) : null;
  if (!uri || (uri.scheme !== 'sip' && uri.scheme !== 'sips' && uri.scheme !== 'tel')) return null;
  return uri;
}

/** `?name=value&…` → lower-case name → unescaped value (the first of a repeated name). */
function uriHeaders(raw: string | null): Map<string, string> {
  const out = new Map<string, string>();
  for (const pair of (raw ?? '').split('&')) {
    if (!pair) continue;
    const eq = pair.indexOf('=');
    const name = unescapeUri(eq < 0 ? pair : pair.slice(0, eq)).toLowerCase();
    if (!out.has(name)) out.set(name, eq < 0 ? '' : unescapeUri(pair.slice(eq + 1)));
  }
  return out;
}

/** A host name, IPv4 or [IPv6] address alone: `sip:<host>` reads back as that host and nothing else. */
function isHost(h: string): boolean {
  if (h === '') return false;
  const alone = parseUri(`sip:${h}`);
  return alone !== null && alone.host === h && alone.user === null && alone.port === null && alone.headers === null && Object.keys(alone.params).length === 0;
}

function compileBuild(values: Values, c: { value(raw: unknown): ValueGetter }): Part {
  const scheme = values.scheme ?? 'sip';
  const tel = scheme === 'tel';
  const user = c.value(values.user ?? null);
  const host = c.value(values.host ?? null);
  const port = c.value(values.port ?? null);
  const params = (values.params ?? []).map((p) => ({ name: p.name, value: c.value(p.value ?? null) }));
  const headers = (values.headers ?? []).map((h) => ({ name: h.name, value: c.value(h.value ?? null) }));
  const target = values.storeInto!;
  const build: Part = (vars, set) => {
    const u = toText(user(vars));
    if (tel ? !TEL_NUMBER.test(u) : u.length > MAX_URI_LENGTH) return 'invalidUser';
    const h = toText(host(vars)).toLowerCase();
    if (!tel && !isHost(h)) return 'invalidHost';
    const p = toText(port(vars));
    if (p !== '' && (tel || !PORT.test(p) || Number(p) < 1 || Number(p) > 65535)) return 'invalidPort';
    let out = tel ? `tel:${u}` : `${scheme}:${u === '' ? '' : `${escapeExcept(u, USER_KEEP)}@`}${h}${p === '' ? '' : `:${Number(p)}`}`;
    const wanted: Record<string, string | null> = {};
    for (const param of params) {
      const v = toText(param.value(vars));
      wanted[param.name.toLowerCase()] = v === '' ? null : v;
      out += v === '' ? `;${param.name}` : `;${param.name}=${escapeExcept(v, PARAM_KEEP)}`;
      if (out.length > MAX_URI_LENGTH) return 'tooLong';
    }
    const query = headers.map((hd) => `${hd.name}=${escapeExcept(toText(hd.value(vars)), HEADER_KEEP)}`).join('&');
    if (query) out += `?${query}`;
    if (out.length > MAX_URI_LENGTH) return 'tooLong';
    // the built text must read back as exactly these parts: no part leaked into another
    const back = parseUri(out);
    if (!back) return tel ? 'invalidUser' : 'invalidHost';
    if (back.user !== (tel || u !== '' ? u : null)) return 'invalidUser';
    if (!tel && back.host !== h) return 'invalidHost';
    if (back.scheme !== scheme || back.password !== null || back.port !== (p === '' ? null : Number(p))) return 'invalid';
    if (back.headers !== (query || null)) return 'invalid';
    // parseUri unescapes sip parameters itself, not tel ones
    const readBack = (v: string | null) => (v === null || !tel ? v : unescapeUri(v));
    const names = Object.keys(back.params);
    if (names.length !== Object.keys(wanted).length || names.some((n) => !Object.hasOwn(wanted, n) || wanted[n] !== readBack(back.params[n]))) return 'invalid';
    set(target, out);
    return 'valid';
  };
  return (vars, set) => {
    try {
      return build(vars, set);
    } catch (e) {
      // encodeURIComponent refuses lone surrogates: text no SIP parser produces, but a logic could
      if (e instanceof URIError) return 'invalid';
      throw e;
    }
  };
}
