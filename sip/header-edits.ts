/**
 * Applies the header edits of action.sipHeaders (CallDescriptor.headerEdits) to an outgoing
 * message: the copy of a request the proxy relays (sip/proxy.ts), the headers of a response the
 * logic's outcome asks for (sip/response-for.ts). Edits apply in order: add appends a line,
 * replace makes the header that one line (where it stood, else last), remove drops every line.
 *
 * The node checked every edit already; an edit that would still touch a protected header or
 * carry a control character (engine/header-edits.ts) is skipped here, so nothing handed to this
 * module can break the transaction or inject a line. Header arrays are never changed in place:
 * the relayed copy shares them with the received request.
 */
import { PROTECTED_HEADERS, headerValueProblem } from '../engine/header-edits';
import type { HeaderEdit, SipHeaders } from '../engine/types';
import { canonicalHeaderName, fullHeaderName } from './headers';
import type { ResponseHeader } from './response-for';

const usable = (e: HeaderEdit): boolean =>
  !PROTECTED_HEADERS.has(e.name) && (e.op === 'remove' || (e.value !== undefined && headerValueProblem(e.value) === null));

/** Edits a request's header map (lower-case full names) in place; its value arrays are replaced, never mutated. */
export function editRequestHeaders(headers: SipHeaders, edits: readonly HeaderEdit[]): void {
  for (const e of edits) {
    if (!usable(e)) continue;
    if (e.op === 'remove') delete headers[e.name];
    else if (e.op === 'replace') headers[e.name] = [e.value!];
    else headers[e.name] = headers[e.name] === undefined ? [e.value!] : [...headers[e.name], e.value!];
  }
}

/** Edits a response's header list (names unique case-insensitively), in place. */
export function editResponseHeaders(headers: ResponseHeader[], edits: readonly HeaderEdit[]): void {
  for (const e of edits) {
    if (!usable(e)) continue;
    const i = headers.findIndex(([n]) => fullHeaderName(n) === e.name);
    if (e.op === 'remove') {
      if (i >= 0) headers.splice(i, 1);
    } else if (i < 0) headers.push([canonicalHeaderName(e.name), [e.value!]]);
    else headers[i] = [headers[i][0], e.op === 'replace' ? [e.value!] : [...headers[i][1], e.value!]];
  }
}
