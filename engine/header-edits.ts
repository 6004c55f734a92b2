/**
 * The rules of header edits (action.sipHeaders), shared by the node that records them (checked at
 * load and when it runs) and by the SIP stack that applies them (sip/header-edits.ts), which
 * checks them again so that no edit it is handed can break a transaction or inject a line.
 *
 * Protected headers, never edited by a logic:
 *  - Via, Call-ID, CSeq, From, To: they identify the transaction and the dialog (tags);
 *  - Content-Length, Content-Type: the body is relayed unchanged and they describe it;
 *  - Max-Forwards: the proxy's loop protection (it decrements it itself);
 *  - Route, Record-Route: routing and the dialog signature of our Record-Route (sip/proxy.ts);
 *  - Contact: where in-dialog requests go (the caller's on a relayed request, ours on a response);
 *  - Authorization, Proxy-Authorization, WWW-Authenticate, Proxy-Authenticate: credentials and
 *    challenges belong to the authentication exchange, not to a logic.
 * Compact forms (v, i, f, t, l, c, m) are the same headers.
 *
 * Limits: 32 operations per node, 64 edits per message, 1024 characters per value; a value is one
 * line of text: no control character but HTAB (no CR/LF: no header injection).
 */
import { normalizeHeaderName } from './cd';

/** RFC 3261 §25.1 token: what a header name may be. */
export const HEADER_NAME_PATTERN = "^[A-Za-z0-9!%*_+`'~.-]{1,64}$";
const HEADER_NAME = new RegExp(HEADER_NAME_PATTERN);

export const PROTECTED_HEADERS: ReadonlySet<string> = new Set([
  'via',
  'call-id',
  'cseq',
  'from',
  'to',
  'content-length',
  'content-type',
  'max-forwards',
  'route',
  'record-route',
  'contact',
  'authorization',
  'proxy-authorization',
  'www-authenticate',
  'proxy-authenticate',
]);

export const MAX_HEADER_OPERATIONS = 32;
export const MAX_HEADER_EDITS_PER_MESSAGE = 64;
export const MAX_HEADER_VALUE_CHARS = 1024;

/** Control characters (C0 but HTAB, DEL, C1): CR and LF would start a header of the sender's choosing. */
// eslint-disable-next-line no-control-regex -- control characters are what this refuses
const CONTROL = /[\x00-\x08\x0a-\x1f\x7f-\x9f]/;

/** Why a header name cannot be edited, or null. */
export function headerNameProblem(name: string): string | null {
  if (!HEADER_NAME.test(name)) return 'is not a header name (an RFC 3261 token of at most 64 characters)';
  const full = normalizeHeaderName(name);
  return PROTECTED_HEADERS.has(full) ? `${name} is protected: the transaction, the dialog or the routing depend on it` : null;
}

/** Why a header value cannot be sent, or null. */
export function headerValueProblem(value: string): string | null {
  if (value.length > MAX_HEADER_VALUE_CHARS) return `is longer than ${MAX_HEADER_VALUE_CHARS} characters`;
  return CONTROL.test(value) ? 'holds a control character (CR, LF, …)' : null;
}
