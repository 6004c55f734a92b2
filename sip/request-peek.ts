/**
 * A request's method and top Via read straight from its bytes, without parsing the message.
 *
 * Why: past capacity most of what reaches a SIP thread is retransmissions — the UA's Timer E/A
 * fires because our answer is late — and a retransmission only needs its transaction key
 * (§17.2.3: branch, sent-by, method) to be answered from the transaction table or the challenge
 * cache. Parsing the whole message first (every header, the call descriptor's inputs) cost each
 * of them as much as a new request's parse, so the busier the server, the more of its time went
 * to requests it had already answered (docs/performance.md, "Overload"). sip/front-end.ts matches
 * with this first and parses only what it did not match.
 *
 * Contract: `peekRequest(bytes)` returns the request line's method and the first value of the
 * first Via header (compact `v` too), parsed by the parser's own `parseViaList`, so a key built
 * from it equals the one the full parse gives (sip/parser.ts takes that line's parse from here,
 * `viaLine`, instead of parsing it again); null for a response, or when the request line or the
 * Via cannot be read this way (no Via, a folded Via line, anything odd): the caller then takes
 * the full path, which judges the message. Nothing here validates a message; a match only ever
 * resends an answer already given for that key.
 *
 * `startsNewWork(bytes, method)` tells a request that would start new work (outside a dialog, no
 * credentials) from one that finishes work under way, for an overloaded thread to shed the former
 * first (FrontEnd.onMessage's `behind`). A sender can put an Authorization header on anything to
 * escape shedding; that only brings its request back to the full path every request took before
 * shedding existed (the flood guard, services/guard, still limits it per source).
 *
 * Limits: looks at most MAX_PEEK_HEADERS header lines before giving up.
 */
import type { Parsed } from '../grammar/sip-values';
import { parseViaList, type Via } from './message';

export interface RequestPeek {
  method: string;
  via: Via;
  /** The whole first Via line as parsed (`via` is its first via-parm): the parser takes it instead of parsing that line again. */
  viaLine: Parsed<readonly Via[]>;
}

const SP = 0x20;
const HT = 0x09;
const CR = 0x0d;
const LF = 0x0a;
const COLON = 0x3a;
const LOWER = 0x20;

/** Longest method taken (extension methods are tokens; SUBSCRIBE and NOTIFY are 9 and 6). */
const MAX_METHOD = 32;
/** Header lines looked at for the Via (it is normally the first). */
export const MAX_PEEK_HEADERS = 32;

type NameTest = (data: Uint8Array, s: number, e: number) => boolean;

/** True when the header name data[s..e) is `via` or `v`, any case. */
const isViaName: NameTest = (data, s, e) =>
  e - s === 1 ? (data[s] | LOWER) === 0x76 : e - s === 3 && (data[s] | LOWER) === 0x76 && (data[s + 1] | LOWER) === 0x69 && (data[s + 2] | LOWER) === 0x61;

/** True when the header name data[s..e) is `to` or `t`, any case. */
const isToName: NameTest = (data, s, e) =>
  e - s === 1 ? (data[s] | LOWER) === 0x74 : e - s === 2 && (data[s] | LOWER) === 0x74 && (data[s + 1] | LOWER) === 0x6f;

/**
 * The value of the first header line whose name passes `isName`, after the request line at
 * `from`: [start, end) of the value (after the colon, its surrounding whitespace and the CR left
 * out); null when the headers end first, after MAX_PEEK_HEADERS lines, or when the line is folded
 * or cut.
 */
function headerValue(data: Buffer, from: number, isName: NameTest): [number, number] | null {
  const n = data.length;
  let lf = data.indexOf(LF, from);
  for (let lines = 0; lf >= 0 && lines < MAX_PEEK_HEADERS; lines++) {
    const s = lf + 1;
    if (s >= n || data[s] === CR || data[s] === LF) return null; // end of the headers
    lf = data.indexOf(LF, s);
    let e = s;
    while (e < n && data[e] !== COLON && data[e] !== SP && data[e] !== HT && data[e] !== LF) e++;
    if (!isName(data, s, e)) continue;
    if (lf < 0 || lf + 1 >= n) return null;
    const next = data[lf + 1];
    if (next === SP || next === HT) return null; // folded onto the next line: the parser's job
    let c = e;
    while (c < lf && (data[c] === SP || data[c] === HT)) c++;
    if (data[c] !== COLON) return null;
    // trimmed as the parser trims it: the same text, so the parser can take this parse (parseMessage's `peeked`)
    let vs = c + 1;
    let ve = data[lf - 1] === CR ? lf - 1 : lf;
    while (vs < ve && (data[vs] === SP || data[vs] === HT)) vs++;
    while (ve > vs && (data[ve - 1] === SP || data[ve - 1] === HT)) ve--;
    return [vs, ve];
  }
  return null;
}

export function peekRequest(data: Buffer): RequestPeek | null {
  const n = data.length;
  let i = 0;
  while (i < n && i <= MAX_METHOD && data[i] !== SP) i++;
  if (i === 0 || i >= n || data[i] !== SP) return null;
  const method = data.toString('latin1', 0, i);
  if (method.startsWith('SIP/')) return null; // a status line
  const at = headerValue(data, i, isViaName);
  if (at === null) return null;
  const text = data.toString('utf8', at[0], at[1]);
  const vias = parseViaList(text);
  return vias === null ? null : { method, via: vias[0], viaLine: { text, value: vias } };
}

/** Requests that go on with something already started: never shed as new work. */
const ONGOING = new Set(['ACK', 'CANCEL', 'BYE', 'PRACK', 'UPDATE', 'INFO', 'NOTIFY', 'REFER']);
const CREDENTIALS = Buffer.from('uthorization:');
const TAG = /;\s*tag\s*=/i;

/**
 * Whether the To header of a raw message carries a tag (the message belongs to a dialog); null
 * when its To header cannot be read this way (see headerValue).
 */
export function toHasTag(data: Buffer): boolean | null {
  const to = headerValue(data, 0, isToName);
  return to === null ? null : TAG.test(data.toString('utf8', to[0], to[1]));
}

/**
 * Whether a request (method from `peekRequest`) starts new work rather than finishing work under
 * way: not a method of an ongoing dialog or transaction, no To tag (not within a dialog), no
 * credentials (not the second half of a challenge, whose first half was already paid for). An
 * overloaded thread sheds these first (sip/front-end.ts). When unsure (a To header it cannot read
 * this way) it answers false: the request is kept.
 */
export function startsNewWork(data: Buffer, method: string): boolean {
  if (ONGOING.has(method)) return false;
  if (data.indexOf(CREDENTIALS) >= 0) return false; // Authorization / Proxy-Authorization, canonical case
  return toHasTag(data) === false;
}
