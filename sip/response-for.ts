/**
 * Outcome → SIP response parts: the one mapping both front ends use (sipflow's own, sip/front-end.ts
 * `apply()`, and the drachtio one, sip/drachtio/front-end.ts `applyOutcome()`). Pure: no I/O, no
 * clock (the caller passes `now`), no logging; each front end renders the parts its way (sipflow:
 * buildResponse, one header line per value; drachtio: res.send with comma-joined values).
 *
 *  - challenge → 401 / 407 with one WWW-/Proxy-Authenticate per offered algorithm, `stateless`
 *    (sent once, no transaction kept: sip/challenge-replies.ts);
 *  - register → the registrar's status and reason; on 2xx a Contact per binding (`;expires`, `;q`
 *    when given), Date (RFC 3261 §10.3 step 8) and the request's Path echoed (RFC 3327 §5.3);
 *    the registrar's own headers (Min-Expires on 423) last, replacing a same-named one;
 *  - relay → the targets (none: 480 Temporarily Unavailable) and the header edits of the logic
 *    (action.sipHeaders) for the relayed request;
 *  - reply → status, reason and headers as the logic gives them, then its header edits;
 *  - redirect → 3xx with a Contact per target (bracketed when bare), then the header edits;
 *  - exit → the configured default route (`sip.defaultRoute`, 404 Not Found by default);
 *  - error → 503 + Retry-After (the outcome's, else `retryAfter`, else 5 s) or 500; the detail
 *    stays off the wire (the front end logs it).
 *
 * The reason phrase, the reply's headers and the redirect's contacts may come from `[var]`
 * placeholders a SIP sender fills: their control characters (CR, LF, …) become spaces here, so a
 * value can never end a header line and start another (response splitting).
 */
import type { HeaderEdit, Outcome, RelayTarget, SipHeaders } from '../engine/types';
import { editResponseHeaders } from './header-edits';
import { reasonPhrase } from './serializer';

/** Header name (as it goes out: canonical case, or as the logic spelled it) and its values, one per header line. */
export type ResponseHeader = [name: string, values: string[]];

export interface ResponseParts {
  kind: 'response';
  status: number;
  reason: string;
  /** In order; names unique (case-insensitively); never an empty value list. */
  headers: ResponseHeader[];
  /** Sent once and no transaction kept (challenges). */
  stateless: boolean;
}

export interface RelayParts {
  kind: 'relay';
  targets: RelayTarget[];
  /** For the relayed request (sip/header-edits.ts); absent when the logic made none. */
  headerEdits?: readonly HeaderEdit[];
}

export interface ResponseForOptions {
  /** Now, ms since the epoch (the Date header of a 2xx REGISTER). */
  now: number;
  /** Answer when a top-level logic exits (default 404 Not Found). */
  exit?: { status: number; reason?: string };
  /** Retry-After of a 503 when the error outcome gives none (default 5). */
  retryAfter?: number;
  /** The logic's header edits (CallDescriptor.headerEdits): applied to relays, replies and redirects only. */
  headerEdits?: readonly HeaderEdit[];
}

/** RFC 1123 date of a second, as the Date header carries it; the last one is reused. */
let dateCache = '';
let dateSec = NaN;
export function httpDate(now: number): string {
  const s = Math.floor(now / 1000);
  if (s !== dateSec) {
    dateSec = s;
    dateCache = new Date(s * 1000).toUTCString();
  }
  return dateCache;
}

/** Sets a header, replacing a same-named one (any case) where it stands. */
function put(headers: ResponseHeader[], name: string, values: string[]): void {
  if (values.length === 0) return;
  const lower = name.toLowerCase();
  const i = headers.findIndex(([n]) => n.toLowerCase() === lower);
  if (i >= 0) headers[i] = [name, values];
  else headers.push([name, values]);
}

const bracket = (c: string): string => (c.indexOf('<') >= 0 ? c : `<${c}>`);

/**
 * The response an outcome asks for, or the targets to relay to. `requestHeaders`: the request's
 * header map (lower-case full names; only Path is read).
 */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL = /[\x00-\x08\x0a-\x1f\x7f-\x9f]/g;
/** A value written into a header line or the status line: control characters (tab kept) become spaces. */
const oneLine = (v: string): string => v.replace(CONTROL, ' ');

export function responseFor(outcome: Outcome, requestHeaders: Readonly<SipHeaders>, o: ResponseForOptions): ResponseParts | RelayParts {
  const headers: ResponseHeader[] = [];
  const response = (status: number, reason?: string, stateless = false): ResponseParts => ({
    kind: 'response',
    status,
    reason: reason === undefined ? reasonPhrase(status) : oneLine(reason),
    headers,
    stateless,
  });
  switch (outcome.kind) {
    case 'challenge':
      put(headers, outcome.header, outcome.challenges.slice());
      return response(outcome.status, undefined, true);
    case 'register': {
      if (outcome.status >= 200 && outcome.status < 300) {
        put(
          headers,
          'Contact',
          outcome.bindings.map((b) => (b.q >= 0 ? `<${b.contact}>;expires=${b.expires};q=${b.q}` : `<${b.contact}>;expires=${b.expires}`)),
        );
        put(headers, 'Date', [httpDate(o.now)]);
        // RFC 3327 §5.3: the Path an edge proxy (SBC) inserted goes back in the 200, so it learns it is on the route
        const path = requestHeaders.path;
        if (path !== undefined) put(headers, 'Path', path.slice());
      }
      if (outcome.headers) for (const k in outcome.headers) put(headers, k, [outcome.headers[k]]);
      return response(outcome.status, outcome.reason);
    }
    case 'relay':
      if (outcome.targets.length === 0) return response(480);
      return o.headerEdits?.length ? { kind: 'relay', targets: outcome.targets, headerEdits: o.headerEdits } : { kind: 'relay', targets: outcome.targets };
    case 'reply':
      if (outcome.headers) for (const k in outcome.headers) put(headers, k, [oneLine(outcome.headers[k])]);
      if (o.headerEdits?.length) editResponseHeaders(headers, o.headerEdits);
      return response(outcome.status, outcome.reason);
    case 'redirect':
      put(
        headers,
        'Contact',
        outcome.contacts.map((c) => bracket(oneLine(c))),
      );
      if (o.headerEdits?.length) editResponseHeaders(headers, o.headerEdits);
      return response(outcome.status, outcome.reason);
    case 'exit':
      return response(o.exit?.status ?? 404, o.exit?.reason);
    case 'error':
      if (outcome.status === 503) {
        put(headers, 'Retry-After', [String(outcome.retryAfter ?? o.retryAfter ?? 5)]);
        return response(503);
      }
      return response(500);
    default:
      return response(500);
  }
}
