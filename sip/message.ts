/**
 * SIP message model and the value helpers the front end needs on every message:
 * first/all values of a header, Via, CSeq, numeric headers, and the RFC 3261 §8.2 / RFC 4475
 * semantic checks that come after a successful parse (version, required headers, CSeq method,
 * Require, schemes, content types).
 */
import type { ParsedValues, SipHeaders } from '../engine/types';
import { isToken, parseParamsStrict, parseNameAddr, reuse, skipWs, splitHeaderList, splitHeaderListStrict, type Parsed } from '../grammar/sip-values';
import { LIST_HEADERS, SINGLE_HEADERS, canonicalHeaderName, fullHeaderName } from './headers';

export type { SipHeaders };

export interface SipRequest {
  method: string;
  uri: string;
  version: string;
  /** Lower-case full names → raw values in message order (one per header line, lists not split). */
  headers: SipHeaders;
  body: Buffer | string;
}

export interface SipResponse {
  status: number;
  reason: string;
  version: string;
  headers: SipHeaders;
  body: Buffer | string;
}

export type SipMessage = SipRequest | SipResponse;

export function isRequest(m: SipMessage): m is SipRequest {
  return (m as SipRequest).method !== undefined;
}

export function isResponse(m: SipMessage): m is SipResponse {
  return (m as SipResponse).status !== undefined;
}

type HasHeaders = { headers: SipHeaders };

/**
 * Header maps have no Object.prototype in their chain, so names such as `constructor` or
 * `__proto__` are plain keys, yet (unlike Object.create(null)) they stay fast-mode objects.
 */
function HeaderBag(this: SipHeaders): void {
  /* empty */
}
HeaderBag.prototype = Object.create(null);

/** An empty header map, safe for any header name. */
export function createHeaders(): SipHeaders {
  return new (HeaderBag as unknown as new () => SipHeaders)();
}

/** First value of a header (any spelling of the name), or undefined. */
export function header(msg: HasHeaders, name: string): string | undefined {
  const v = msg.headers[fullHeaderName(name)];
  return v === undefined ? undefined : v[0];
}

/**
 * Every value of a header. List headers (Via, Contact, Route, Allow, Supported…) are split on
 * top-level commas; others (Authorization, WWW-Authenticate, Date…) contain commas that are not
 * separators, so their values are returned as written.
 */
export function headerList(msg: HasHeaders, name: string): string[] {
  const full = fullHeaderName(name);
  const v = msg.headers[full];
  if (v === undefined) return [];
  if (!LIST_HEADERS.has(full)) return v.slice();
  const out: string[] = [];
  for (const value of v) {
    if (value.indexOf(',') < 0) {
      if (value) out.push(value);
    } else for (const part of splitHeaderList(value)) out.push(part);
  }
  return out;
}

// ---------------------------------------------------------------- Via

export interface Via {
  /** 'SIP/2.0' (whitespace around '/' removed, upper-case). */
  readonly protocol: string;
  /** 'UDP', 'TCP', 'TLS', 'SCTP', 'WS', 'WSS' or any extension token, upper-case. */
  readonly transport: string;
  /** sent-by host; lower-case; IPv6 keeps its brackets. */
  readonly host: string;
  readonly port: number | null;
  /** All parameters, lower-case names (branch, received, rport, maddr, ttl, extensions). */
  readonly params: Readonly<Record<string, string | null>>;
  readonly branch: string | null;
  readonly received: string | null;
  /** rport=<n> when a value is present (RFC 3581). */
  readonly rport: number | null;
  /** ';rport' present, with or without a value. */
  readonly hasRport: boolean;
}

function scanToken(s: string, i: number): number {
  while (i < s.length && isTokenCode(s.charCodeAt(i))) i++;
  return i;
}
function isTokenCode(c: number): boolean {
  // token characters minus '/', which never is one (kept local for speed)
  return (
    (c >= 97 && c <= 122) ||
    (c >= 65 && c <= 90) ||
    (c >= 48 && c <= 57) ||
    c === 45 ||
    c === 46 ||
    c === 33 ||
    c === 37 ||
    c === 42 ||
    c === 95 ||
    c === 43 ||
    c === 96 ||
    c === 39 ||
    c === 126
  );
}

/** Upper-case transport without allocating for the usual spellings. */
function upperToken(t: string): string {
  switch (t) {
    case 'UDP':
    case 'TCP':
    case 'TLS':
    case 'SCTP':
    case 'WS':
    case 'WSS':
      return t;
    default:
      return t.toUpperCase();
  }
}

/** Parses one via-parm: `SIP / 2.0 / UDP host[:port] *(;param)`, whitespace allowed around '/', ':' and ';'. */
export function parseVia(value: string): Via | null {
  const s = value;
  const n = s.length;
  let i = skipWs(s, 0);
  const p0 = i;
  i = scanToken(s, i);
  if (i === p0) return null;
  const pname = s.slice(p0, i);
  i = skipWs(s, i);
  if (s.charCodeAt(i) !== 47) return null;
  i = skipWs(s, i + 1);
  const v0 = i;
  i = scanToken(s, i);
  if (i === v0) return null;
  const pver = s.slice(v0, i);
  i = skipWs(s, i);
  if (s.charCodeAt(i) !== 47) return null;
  i = skipWs(s, i + 1);
  const t0 = i;
  i = scanToken(s, i);
  if (i === t0) return null;
  const transport = upperToken(s.slice(t0, i));
  const ws = i;
  i = skipWs(s, i);
  if (i === ws) return null; // LWS required before sent-by
  let host: string;
  if (s.charCodeAt(i) === 91 /* [ */) {
    const end = s.indexOf(']', i);
    if (end < 0) return null;
    for (let k = i + 1; k < end; k++) {
      const c = s.charCodeAt(k);
      if (!((c >= 48 && c <= 58) || ((c | 0x20) >= 97 && (c | 0x20) <= 102) || c === 46)) return null;
    }
    if (end === i + 1) return null;
    host = s.slice(i, end + 1).toLowerCase();
    i = end + 1;
  } else {
    const h0 = i;
    let upper = false;
    while (i < n) {
      const c = s.charCodeAt(i);
      if ((c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c === 45 || c === 46 || c === 95) i++;
      else if (c >= 65 && c <= 90) {
        upper = true;
        i++;
      } else break;
    }
    if (i === h0) return null;
    host = upper ? s.slice(h0, i).toLowerCase() : s.slice(h0, i);
  }
  let port: number | null = null;
  i = skipWs(s, i);
  if (s.charCodeAt(i) === 58 /* : */) {
    i = skipWs(s, i + 1);
    const d0 = i;
    let p = 0;
    while (i < n && i - d0 < 6) {
      const c = s.charCodeAt(i) - 48;
      if (c < 0 || c > 9) break;
      p = p * 10 + c;
      i++;
    }
    if (i === d0 || p > 65535) return null;
    port = p;
  }
  const params = parseParamsStrict(s, i);
  if (!params) return null;
  const rp = params.rport;
  let rport: number | null = null;
  if (rp) {
    rport = rp.length <= 5 ? parseBoundedInt(rp, 65535) : null;
    if (rport === null) return null;
  }
  return {
    protocol: pname === 'SIP' && pver === '2.0' ? 'SIP/2.0' : (pname + '/' + pver).toUpperCase(),
    transport,
    host,
    port,
    params,
    branch: params.branch ?? null,
    received: params.received ?? null,
    rport,
    hasRport: rp !== undefined,
  };
}

/** Parses a Via header value that may hold several comma-separated via-parms; null if any is bad. */
export function parseViaList(value: string): Via[] | null {
  const parts = value.indexOf(',') < 0 ? [value] : splitHeaderListStrict(value);
  if (!parts || parts.length === 0) return null;
  const out: Via[] = [];
  for (const p of parts) {
    const v = parseVia(p);
    if (!v) return null;
    out.push(v);
  }
  return out;
}

/**
 * What the parser's checks parsed of a request (sip/parser.ts parseMessage), handed on with it so
 * that checkRequest, the front end and the call descriptor (ParsedValues) do not parse the same
 * values again: the first Via header line's via-parms, From, To and a sip/sips Request-URI.
 */
export interface RequestValues extends ParsedValues {
  via?: Parsed<readonly Via[]>;
}

/** Top Via of a message (first value of the first Via header), parsed. */
export function topVia(msg: HasHeaders): Via | null {
  const v = msg.headers.via?.[0];
  if (v === undefined) return null;
  const list = parseViaList(v);
  return list ? list[0] : null;
}

// ---------------------------------------------------------------- scalars

/** Parses `1*DIGIT` into a number not above `max` without overflow; leading zeros allowed. */
export function parseBoundedInt(s: string, max: number): number | null {
  const n = s.length;
  if (n === 0) return null;
  let v = 0;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return null;
    v = v * 10 + c;
    if (v > max) return null; // stops long before a double loses precision
  }
  return v;
}

export interface CSeq {
  seq: number;
  method: string;
}

/** `CSeq: 1*DIGIT LWS Method`; the number must fit 32 bits (RFC 3261 §8.1.1.5, RFC 4475 §3.1.2.4). */
export function parseCSeq(value: string): CSeq | null {
  const s = value.trim();
  let i = 0;
  while (i < s.length) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) break;
    i++;
  }
  const seq = parseBoundedInt(s.slice(0, i), 0xffffffff);
  if (seq === null) return null;
  const m = skipWs(s, i);
  if (m === i) return null;
  const method = s.slice(m);
  return isToken(method) ? { seq, method } : null;
}

/** Max-Forwards: 0..255. */
export function parseMaxForwards(value: string): number | null {
  return parseBoundedInt(value.trim(), 255);
}

/** Content-Length: a non-negative decimal below 2^31 (a sign or anything else is an error). */
export function parseContentLength(value: string): number | null {
  return parseBoundedInt(value.trim(), 0x7fffffff);
}

/** Expires / delta-seconds: the grammar's (grammar/sip-values.ts), here for the parser's users. */
export { parseExpires } from '../grammar/sip-values';

// ---------------------------------------------------------------- semantic checks

/**
 * What sipflow implements and accepts. An omitted field takes DEFAULT_POLICY's value; null
 * skips that check. Policies are resolved once per object (keep them as constants).
 */
export interface RequestPolicy {
  /** Implemented methods; others get 501 with Allow. */
  methods?: ReadonlySet<string> | null;
  /** Request-URI schemes handled; others get 416. */
  schemes?: ReadonlySet<string> | null;
  /** Option tags understood in Require (and Proxy-Require when `proxy`); others get 420. */
  extensions?: ReadonlySet<string> | null;
  /** Also check Proxy-Require (proxy role). */
  proxy?: boolean;
  /** Body types understood; a request body of another type gets 415. */
  contentTypes?: ReadonlySet<string> | null;
  /** Body types an INVITE would be answered with; an Accept excluding all of them gets 406. */
  answerTypes?: ReadonlySet<string> | null;
}

export const DEFAULT_POLICY: Required<RequestPolicy> = {
  methods: new Set(['INVITE', 'ACK', 'BYE', 'CANCEL', 'OPTIONS', 'REGISTER', 'PRACK', 'SUBSCRIBE', 'NOTIFY', 'PUBLISH', 'INFO', 'REFER', 'MESSAGE', 'UPDATE']),
  schemes: new Set(['sip', 'sips', 'tel']),
  extensions: new Set(['path']),
  proxy: false,
  contentTypes: new Set(['application/sdp', 'multipart/mixed', 'text/plain', 'message/sipfrag', 'application/pidf+xml']),
  answerTypes: new Set(['application/sdp']),
};

const resolved = new WeakMap<RequestPolicy, Required<RequestPolicy>>();

/** Fills omitted (undefined) fields from DEFAULT_POLICY, once per policy object. */
function resolvePolicy(policy: RequestPolicy): Required<RequestPolicy> {
  if (policy === DEFAULT_POLICY) return DEFAULT_POLICY;
  let r = resolved.get(policy);
  if (r === undefined) {
    const d = DEFAULT_POLICY;
    r = {
      methods: policy.methods === undefined ? d.methods : policy.methods,
      schemes: policy.schemes === undefined ? d.schemes : policy.schemes,
      extensions: policy.extensions === undefined ? d.extensions : policy.extensions,
      proxy: policy.proxy ?? d.proxy,
      contentTypes: policy.contentTypes === undefined ? d.contentTypes : policy.contentTypes,
      answerTypes: policy.answerTypes === undefined ? d.answerTypes : policy.answerTypes,
    };
    resolved.set(policy, r);
  }
  return r;
}

export interface CheckResult {
  status: number;
  reason: string;
  /** Headers the answer must carry (Allow on 501, Unsupported on 420, Accept on 415). */
  headers?: Record<string, string>;
}

const REQUIRED_REQUEST = ['via', 'to', 'from', 'call-id', 'cseq'] as const;
const SINGLE_HEADER_LIST = [...SINGLE_HEADERS];

/**
 * Message-level checks after a successful parse, in RFC 3261 §8.2 order: version (505),
 * required and duplicated single-valued headers (400), bare-cookie branch (400), method (501),
 * CSeq method (400), Request-URI scheme (416), REGISTER To scheme (400, §10.3), Require (420),
 * Content-Type (415), Accept for INVITE (406). Null when the request may be processed.
 * Role-dependent answers (483 on Max-Forwards 0 at a proxy, 405) are left to the caller.
 * `known`: the parser's values of this request, used where their text is the one read here.
 */
export function checkRequest(req: SipRequest, policy: RequestPolicy = DEFAULT_POLICY, known?: RequestValues): CheckResult | null {
  const p = resolvePolicy(policy);
  const h = req.headers;
  if (req.version.toUpperCase() !== 'SIP/2.0') return { status: 505, reason: 'Version Not Supported' };
  for (const name of REQUIRED_REQUEST) {
    const v = h[name];
    if (v === undefined || v.length === 0 || v[0] === '') return { status: 400, reason: `Missing ${canonicalHeaderName(name)} header` };
  }
  for (const name of SINGLE_HEADER_LIST) {
    const v = h[name];
    if (v !== undefined && v.length > 1) return { status: 400, reason: `Duplicate ${canonicalHeaderName(name)} header` };
  }
  const via = reuse(known?.via, h.via[0], parseViaList)?.value[0];
  if (!via) return { status: 400, reason: 'Bad Via header' };
  if (via.branch !== null && via.branch.toLowerCase() === 'z9hg4bk') {
    return { status: 400, reason: 'Via branch is only the magic cookie' };
  }
  if (p.methods && !p.methods.has(req.method)) {
    return { status: 501, reason: 'Not Implemented', headers: { allow: [...p.methods].join(', ') } };
  }
  const cseq = parseCSeq(h.cseq[0]);
  if (!cseq || cseq.method !== req.method) return { status: 400, reason: 'CSeq method does not match request method' };
  const colon = req.uri.indexOf(':');
  const scheme = req.uri.slice(0, colon).toLowerCase();
  if (p.schemes && !p.schemes.has(scheme)) return { status: 416, reason: 'Unsupported URI Scheme' };
  if (req.method === 'REGISTER') {
    const to = reuse(known?.to, h.to[0], parseNameAddr)?.value;
    const ts = to ? to.uri.slice(0, to.uri.indexOf(':')).toLowerCase() : '';
    if (ts !== 'sip' && ts !== 'sips') return { status: 400, reason: 'Address-of-record must be a SIP or SIPS URI' };
  }
  if (p.extensions && req.method !== 'ACK' && req.method !== 'CANCEL') {
    const unsupported: string[] = [];
    for (const name of p.proxy ? ['require', 'proxy-require'] : ['require']) {
      if (h[name] === undefined) continue;
      for (const tag of headerList(req, name)) if (!p.extensions.has(tag.toLowerCase())) unsupported.push(tag);
    }
    if (unsupported.length) return { status: 420, reason: 'Bad Extension', headers: { unsupported: unsupported.join(', ') } };
  }
  if (p.contentTypes && req.body.length > 0 && req.method !== 'ACK') {
    const ct = mediaType(h['content-type']?.[0] ?? '');
    if (!p.contentTypes.has(ct)) {
      return { status: 415, reason: 'Unsupported Media Type', headers: { accept: [...p.contentTypes].join(', ') } };
    }
  }
  if (p.answerTypes && req.method === 'INVITE' && h.accept !== undefined) {
    const accepted = headerList(req, 'accept').map(mediaType);
    const ok =
      accepted.length === 0 ||
      accepted.some((a) => a === '*/*' || [...p.answerTypes!].some((t) => t === a || (a.endsWith('/*') && t.startsWith(a.slice(0, -1)))));
    if (!ok) return { status: 406, reason: 'Not Acceptable' };
  }
  return null;
}

/** 'Application/SDP ; charset=x' → 'application/sdp'. */
function mediaType(v: string): string {
  const semi = v.indexOf(';');
  return (semi >= 0 ? v.slice(0, semi) : v).trim().toLowerCase().replace(/\s+/g, '');
}

/**
 * Checks a received response before it is matched or forwarded. Returns why it must be
 * silently dropped (responses are never answered), or null. A Via sent-by of a broadcast
 * address would make a proxy send the response there (RFC 4475 §3.3.10).
 */
export function checkResponse(res: SipResponse): string | null {
  if (res.version.toUpperCase() !== 'SIP/2.0') return 'unsupported SIP version';
  for (const name of REQUIRED_REQUEST) if (!res.headers[name]?.[0]) return `missing ${canonicalHeaderName(name)} header`;
  for (const name of SINGLE_HEADER_LIST) {
    const v = res.headers[name];
    if (v !== undefined && v.length > 1) return `duplicate ${canonicalHeaderName(name)} header`;
  }
  for (const value of res.headers.via) {
    const vias = parseViaList(value);
    if (!vias) return 'bad Via header';
    for (const v of vias) {
      const target = v.received ?? v.host;
      if (target === '255.255.255.255' || target === '0.0.0.0') return `Via sent-by ${target} is not a unicast address`;
    }
  }
  return null;
}
