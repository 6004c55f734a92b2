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
 * from it equals the one the full parse gives; null for a response, or when the request line or
 * the Via cannot be read this way (no Via, a folded Via line, anything odd): the caller then takes
 * the full path, which judges the message. Nothing here validates a message; a match only ever
 * resends an answer already given for that key.
 *
 * Limits: looks at most MAX_PEEK_HEADERS header lines before giving up.
 */
import { parseViaList, type Via } from './message';

export interface RequestPeek {
  method: string;
  via: Via;
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

/** True when the header name data[s..e) is `via` or `v`, any case. */
function isViaName(data: Uint8Array, s: number, e: number): boolean {
  if (e - s === 1) return (data[s] | LOWER) === 0x76;
  return e - s === 3 && (data[s] | LOWER) === 0x76 && (data[s + 1] | LOWER) === 0x69 && (data[s + 2] | LOWER) === 0x61;
}

export function peekRequest(data: Buffer): RequestPeek | null {
  const n = data.length;
  let i = 0;
  while (i < n && i <= MAX_METHOD && data[i] !== SP) i++;
  if (i === 0 || i >= n || data[i] !== SP) return null;
  const method = data.toString('latin1', 0, i);
  if (method.startsWith('SIP/')) return null; // a status line
  let lf = data.indexOf(LF, i);
  for (let lines = 0; lf >= 0 && lines < MAX_PEEK_HEADERS; lines++) {
    const s = lf + 1;
    if (s >= n || data[s] === CR || data[s] === LF) return null; // end of the headers: no Via
    lf = data.indexOf(LF, s);
    let e = s;
    while (e < n && data[e] !== COLON && data[e] !== SP && data[e] !== HT && data[e] !== LF) e++;
    if (!isViaName(data, s, e)) continue;
    if (lf < 0 || lf + 1 >= n) return null;
    const next = data[lf + 1];
    if (next === SP || next === HT) return null; // folded onto the next line: the parser's job
    let c = e;
    while (c < lf && (data[c] === SP || data[c] === HT)) c++;
    if (data[c] !== COLON) return null;
    const end = data[lf - 1] === CR ? lf - 1 : lf;
    const vias = parseViaList(data.toString('utf8', c + 1, end));
    return vias === null ? null : { method, via: vias[0] };
  }
  return null;
}
