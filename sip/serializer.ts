/**
 * SIP message serialization and response construction (RFC 3261 §7, §8.2.6).
 * Header names go out in canonical case, one line per stored value, in stored order;
 * Content-Length is always computed from the body (any stored one is ignored).
 */
import { randomBytes } from 'node:crypto';
import type { SipHeaders } from '../engine/types';
import { parseNameAddr } from '../grammar/sip-values';
import { canonicalHeaderName, fullHeaderName } from './headers';
import { createHeaders, isRequest, type SipMessage, type SipResponse } from './message';
import { reasonPhrase } from '../grammar/sip-reasons';

export { reasonPhrase } from '../grammar/sip-reasons';

/** Serializes a request or response; the body is written as is, Content-Length computed. */
export function serializeMessage(msg: SipMessage): Buffer {
  let head = isRequest(msg) ? `${msg.method} ${msg.uri} ${msg.version || 'SIP/2.0'}\r\n` : `${msg.version || 'SIP/2.0'} ${msg.status} ${msg.reason}\r\n`;
  for (const name in msg.headers) {
    if (name === 'content-length') continue;
    const wire = canonicalHeaderName(name);
    for (const v of msg.headers[name]) head += `${wire}: ${v}\r\n`;
  }
  const body = msg.body;
  if (typeof body === 'string') {
    return Buffer.from(`${head}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`, 'utf8');
  }
  head += `Content-Length: ${body.length}\r\n\r\n`;
  return body.length === 0 ? Buffer.from(head, 'utf8') : Buffer.concat([Buffer.from(head, 'utf8'), body]);
}

// Tags: a random per-process prefix plus a counter is unique and far cheaper than randomBytes per call.
const TAG_PREFIX = randomBytes(4).toString('hex');
let tagCounter = 0;

/** A fresh globally unique tag (RFC 3261 §19.3: at least 32 bits of randomness). */
export function newTag(): string {
  tagCounter = (tagCounter + 1) % 0x100000000;
  return TAG_PREFIX + tagCounter.toString(36);
}

const TAG_HINT = /tag/i;
/** The common To forms `<sip:…>` / `sip:…` with nothing odd in them are name-addrs; anything else goes through the parser. */
const SIMPLE_TO = /^\s*(?:<[^<>"]+>|[a-z][a-z0-9+.-]*:[^\s<>";,]+)\s*$/i;
const parseable = (v: string): boolean => SIMPLE_TO.test(v) || parseNameAddr(v) !== null;

/**
 * Builds a response to a request per RFC 3261 §8.2.6: Via (all values, in order), From, Call-ID,
 * CSeq copied; To copied with a tag added when the request had none and status > 100 (`toTag`
 * lets a transaction reuse the same tag; otherwise a new one is made); Timestamp echoed on 100.
 * Works on a PartialRequest too (answering 400 to an unparsable request). `extraHeaders` names
 * may be in any spelling; their values are appended after the copied headers.
 */
export function buildResponse(
  request: { headers: SipHeaders },
  status: number,
  reason?: string,
  extraHeaders?: Record<string, string | string[]>,
  toTag?: string,
): SipResponse {
  const src = request.headers;
  const headers = createHeaders();
  // one access per header by its name, in one order: a loop over the names made every one of them
  // megamorphic, and the response's map takes the same shape every time
  const via = src.via;
  if (via !== undefined) headers.via = via.slice();
  const from = src.from;
  if (from !== undefined) headers.from = from.slice();
  const toValues = src.to;
  if (toValues !== undefined) headers.to = toValues.slice();
  const callId = src['call-id'];
  if (callId !== undefined) headers['call-id'] = callId.slice();
  const cseq = src.cseq;
  if (cseq !== undefined) headers.cseq = cseq.slice();
  const to = headers.to;
  if (to !== undefined && status > 100) {
    // no "tag" anywhere in the value: it has no tag parameter, skip the name-addr parse
    const t = to[0];
    if (!TAG_HINT.test(t)) {
      if (parseable(t)) to[0] = `${t};tag=${toTag ?? newTag()}`;
    } else {
      const na = parseNameAddr(t);
      if (na && na.params.tag === undefined) to[0] = `${t};tag=${toTag ?? newTag()}`;
    }
  }
  if (status === 100 && src.timestamp !== undefined) headers.timestamp = src.timestamp.slice();
  if (extraHeaders) {
    for (const [k, v] of Object.entries(extraHeaders)) {
      const name = fullHeaderName(k);
      const values = Array.isArray(v) ? v : [v];
      const list = headers[name];
      if (list === undefined) headers[name] = values.slice();
      else list.push(...values);
    }
  }
  return { status, reason: reason ?? reasonPhrase(status), version: 'SIP/2.0', headers, body: '' };
}
