/**
 * SIP message parser (RFC 3261 §7, §25) for one datagram or one stream-framed message.
 *
 * Single pass, no regexes on the message, never throws. Syntax and framing errors (RFC 4475
 * "invalid" messages) fail the parse; a failing request carries `status: 400` and, when the
 * headers needed to answer were readable, `partial`. Messages that parse but are semantically
 * wrong (bad version, missing headers, CSeq mismatch, unknown scheme…) parse fine here and are
 * judged by `checkRequest` / `checkResponse` in message.ts.
 *
 * Header values are unfolded (CRLF + whitespace → one SP) and trimmed; names are mapped to
 * lower-case full names (compact forms expanded). The headers the transaction layer and the
 * registrar rely on are validated: Via, From, To, Contact, Route, Record-Route, CSeq,
 * Max-Forwards, Content-Length, Date.
 */
import type { SipHeaders } from '../engine/types';
import { isNameAddr, isNameAddrList, isToken, isTokenChar, parseNameAddr, parseUri, reuse, type NameAddr, type Parsed } from '../grammar/sip-values';
import { fullHeaderName, matchHeaderName } from './headers';
import { createHeaders, parseCSeq, parseContentLength, parseMaxForwards, parseViaList, type RequestValues, type SipMessage, type Via } from './message';

export interface PartialRequest {
  method?: string;
  uri?: string;
  /** Whatever headers were readable; contains at least Via, From, To, Call-ID and CSeq. */
  headers: SipHeaders;
}

/** `values`: what the checks parsed (the top Via line, From, To, a request's sip/sips Request-URI), for the message's next readers. */
export type ParseResult = { ok: true; message: SipMessage; values: RequestValues } | { ok: false; error: string; status?: 400; partial?: PartialRequest };

const CRLFCRLF = Buffer.from('\r\n\r\n');
const EMPTY = Buffer.alloc(0);

/**
 * Parses one SIP message from a datagram (or a frame cut by StreamFramer). Never throws.
 * `peeked`: the first Via line as sip/request-peek.ts parsed it from the same bytes, not parsed again.
 */
export function parseMessage(input: Buffer | string, peeked?: Parsed<readonly Via[]>): ParseResult {
  try {
    return parse(typeof input === 'string' ? Buffer.from(input, 'utf8') : input, peeked);
  } catch (e) {
    // Defensive only: the fuzz test asserts this branch is never taken.
    return { ok: false, error: `internal parser error: ${(e as Error).message}` };
  }
}

function parse(buf: Buffer, peeked: Parsed<readonly Via[]> | undefined): ParseResult {
  const len = buf.length;
  // RFC 3261 §7.5: CRLFs before the start-line are ignored (keep-alives, stream leftovers).
  let start = 0;
  while (start < len && (buf[start] === 13 || buf[start] === 10)) start++;
  if (start >= len) return { ok: false, error: 'empty message' };

  // End of the header block. A datagram without the empty line (RFC 4475 baddn) ends its
  // headers at the end of the datagram. Bare-LF line ends are tolerated when no CRLFCRLF exists.
  let headEnd = buf.indexOf(CRLFCRLF, start);
  let bodyStart: number;
  if (headEnd >= 0) bodyStart = headEnd + 4;
  else {
    headEnd = len;
    bodyStart = len;
    for (let i = buf.indexOf(10, start); i >= 0 && i + 1 < len; i = buf.indexOf(10, i + 1)) {
      if (buf[i + 1] === 10) {
        headEnd = i;
        bodyStart = i + 2;
        break;
      }
    }
  }
  const head = buf.toString('utf8', start, headEnd);

  // ---- start-line
  let p = head.indexOf('\n');
  if (p < 0) p = head.length;
  const startLine = head.charCodeAt(p - 1) === 13 ? head.slice(0, p - 1) : head.slice(0, p);
  let error: string | null = null;
  const values: RequestValues = {};
  let method: string | undefined;
  let uri: string | undefined;
  let version = '';
  let status = 0;
  let reason = '';
  const isResp = startLine.length >= 4 && startLine.slice(0, 4).toUpperCase() === 'SIP/';
  if (isResp) {
    // SIP-Version SP Status-Code SP Reason-Phrase (reason may be empty; the SP before it may be missing)
    const sp = startLine.indexOf(' ');
    version = sp < 0 ? startLine : startLine.slice(0, sp);
    const code = sp < 0 ? '' : startLine.slice(sp + 1, sp + 4);
    const after = startLine.charCodeAt(sp + 4);
    if (!validVersion(version)) error = 'bad SIP version';
    else if (!/^[1-6]\d\d$/.test(code) || !(Number.isNaN(after) || after === 32)) error = 'bad status code';
    else {
      status = Number(code);
      reason = startLine.slice(sp + 5);
    }
  } else {
    // Method SP Request-URI SP SIP-Version, single SPs, nothing else (RFC 4475 lwsstart/trws/lwsruri)
    const sp1 = startLine.indexOf(' ');
    const sp2 = startLine.lastIndexOf(' ');
    if (sp1 <= 0 || sp2 === sp1) error = 'bad request line';
    else {
      method = startLine.slice(0, sp1);
      uri = startLine.slice(sp1 + 1, sp2);
      version = startLine.slice(sp2 + 1);
      if (!isToken(method)) error = 'bad method';
      else if (!validVersion(version)) error = 'bad SIP version';
      else error = checkRequestUri(uri, values);
    }
  }

  // ---- header lines (collected even after an error, to answer 400 with them)
  const headers = createHeaders();
  let name: string | null = null;
  let value = '';
  let folded = false;
  const n = head.length;
  p++;
  while (p < n) {
    let e = head.indexOf('\n', p);
    if (e < 0) e = n;
    const le = e > p && head.charCodeAt(e - 1) === 13 ? e - 1 : e;
    const c0 = head.charCodeAt(p);
    if (c0 === 32 || c0 === 9) {
      // folded continuation line: joins the previous value with one SP
      if (name === null) error ??= 'continuation line without a header';
      else {
        value += ' ' + head.slice(p, le).trim();
        folded = true;
      }
    } else if (le > p) {
      if (name !== null) add(headers, name, folded ? value.trim() : value);
      name = null;
      folded = false;
      const colon = head.indexOf(':', p);
      if (colon < 0 || colon >= le) error ??= 'header line without colon';
      else {
        let ne = colon;
        while (ne > p && (head.charCodeAt(ne - 1) === 32 || head.charCodeAt(ne - 1) === 9)) ne--;
        const known = matchHeaderName(head, p, ne);
        if (known !== undefined) name = known;
        else {
          const raw = head.slice(p, ne);
          if (isHeaderName(raw)) name = fullHeaderName(raw);
          else error ??= 'bad header name';
        }
        if (name !== null) {
          // value without surrounding whitespace, sliced once
          let vs = colon + 1;
          let ve = le;
          while (vs < ve && (head.charCodeAt(vs) === 32 || head.charCodeAt(vs) === 9)) vs++;
          while (ve > vs && (head.charCodeAt(ve - 1) === 32 || head.charCodeAt(ve - 1) === 9)) ve--;
          value = head.slice(vs, ve);
        }
      }
    }
    p = e + 1;
  }
  if (name !== null) add(headers, name, folded ? value.trim() : value);

  if (error === null) error = checkHeaders(headers, values, peeked);

  // ---- body, by Content-Length; without one a datagram's body is the rest of it
  let body: Buffer = EMPTY;
  if (error === null) {
    const cl = headers['content-length'];
    const avail = len - bodyStart;
    if (cl === undefined) body = avail > 0 ? buf.subarray(bodyStart) : EMPTY;
    else {
      const length = parseContentLength(cl[0]);
      if (length === null) error = 'bad Content-Length';
      else if (length > avail) error = 'Content-Length exceeds the message';
      else if (length > 0) body = buf.subarray(bodyStart, bodyStart + length);
    }
  }

  if (error !== null) {
    if (isResp) return { ok: false, error };
    const h = headers;
    const answerable = h.via && h.from && h.to && h['call-id'] && h.cseq;
    return answerable ? { ok: false, error, status: 400, partial: { method, uri, headers } } : { ok: false, error, status: 400 };
  }
  const message: SipMessage = isResp ? { status, reason, version, headers, body } : { method: method as string, uri: uri as string, version, headers, body };
  return { ok: true, message, values };
}

function add(headers: SipHeaders, name: string, v: string): void {
  const list = headers[name];
  if (list === undefined) headers[name] = [v];
  else list.push(v);
}

function isHeaderName(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) if (!isTokenChar(s.charCodeAt(i))) return false;
  return true;
}

/** `SIP/1*DIGIT.1*DIGIT`, "SIP" case-insensitive. Any such version parses; 505 is checkRequest's call. */
function validVersion(v: string): boolean {
  if (v.length < 7 || (v.charCodeAt(0) | 0x20) !== 115 || (v.charCodeAt(1) | 0x20) !== 105 || (v.charCodeAt(2) | 0x20) !== 112 || v.charCodeAt(3) !== 47)
    return false;
  let dot = 0;
  let digits = 0;
  for (let i = 4; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c === 46) {
      if (dot++ || digits === 0) return false;
      digits = 0;
    } else if (c >= 48 && c <= 57) {
      if (++digits > 5) return false;
    } else return false;
  }
  return dot === 1 && digits > 0;
}

/**
 * Request-URI: a scheme, then URI characters only (no '<>', quotes, whitespace: RFC 4475
 * ltgtruri). SIP/SIPS URIs must parse (kept in `values`) and carry no '?headers' (RFC 3261
 * §19.1.5, RFC 4475 escruri). Other schemes are opaque here; whether they are served (416) is
 * decided later.
 */
function checkRequestUri(uri: string, values: RequestValues): string | null {
  const colon = uri.indexOf(':');
  if (colon <= 0) return 'bad Request-URI';
  for (let i = 0; i < uri.length; i++) {
    const c = uri.charCodeAt(i);
    if (c <= 32 || c >= 127 || c === 60 || c === 62 || c === 34 || c === 92 || c === 94 || c === 96 || c === 123 || c === 124 || c === 125)
      return 'bad Request-URI';
  }
  const scheme = uri.slice(0, colon).toLowerCase();
  if (!/^[a-z][a-z0-9+.-]*$/.test(scheme)) return 'bad Request-URI';
  if (scheme === 'sip' || scheme === 'sips') {
    const u = parseUri(uri);
    if (!u) return 'bad Request-URI';
    if (u.headers !== null) return 'Request-URI must not carry headers';
    values.requestUri = { text: uri, value: u };
  }
  return null;
}

/** A From or To header: its first value parsed, any other validated (checkRequest refuses the duplicate); null when one is bad. */
function nameAddrs(v: string[]): Parsed<NameAddr> | null {
  const first = parseNameAddr(v[0]);
  if (!first) return null;
  for (let i = 1; i < v.length; i++) if (!isNameAddr(v[i])) return null;
  return { text: v[0], value: first };
}

const DATE_RE = /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d\d:\d\d:\d\d GMT$/;

/**
 * Validates the headers the SIP layer itself uses; returns the first problem or null. The first
 * Via line, From and To are parsed in full (not only validated) into `values`: every request's
 * next readers need them.
 */
function checkHeaders(h: SipHeaders, values: RequestValues, peeked: Parsed<readonly Via[]> | undefined): string | null {
  const via = h.via;
  if (via !== undefined) {
    const top = reuse(peeked, via[0], parseViaList);
    if (!top) return 'bad Via header';
    values.via = top;
    for (let i = 1; i < via.length; i++) if (!parseViaList(via[i])) return 'bad Via header';
  }
  if (h.from !== undefined) {
    const from = nameAddrs(h.from);
    if (from === null) return 'bad From header';
    values.from = from;
  }
  if (h.to !== undefined) {
    const to = nameAddrs(h.to);
    if (to === null) return 'bad To header';
    values.to = to;
  }
  let v = h.contact;
  if (v !== undefined) for (const x of v) if (x !== '*' && !isNameAddrList(x)) return 'bad Contact header';
  v = h.cseq;
  if (v !== undefined) for (const x of v) if (!parseCSeq(x)) return 'bad CSeq header';
  v = h['max-forwards'];
  if (v !== undefined) for (const x of v) if (parseMaxForwards(x) === null) return 'bad Max-Forwards header';
  v = h['content-length'];
  if (v !== undefined) {
    // two different Content-Lengths make framing impossible (RFC 4475 mcl01)
    for (const x of v) if (x !== v[0] || parseContentLength(x) === null) return 'bad Content-Length';
  }
  v = h.route;
  if (v !== undefined) for (const x of v) if (!isNameAddrList(x)) return 'bad Route header';
  v = h['record-route'];
  if (v !== undefined) for (const x of v) if (!isNameAddrList(x)) return 'bad Record-Route header';
  v = h.date;
  if (v !== undefined) for (const x of v) if (!DATE_RE.test(x)) return 'bad Date header';
  return null;
}
