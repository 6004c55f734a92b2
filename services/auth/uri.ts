/**
 * The digest `uri` against the Request-URI (RFC 7616 §3.4.6, RFC 2617 §3.2.2.5: the server checks
 * that the request-uri of the credentials designates the resource of the request). Without it,
 * credentials computed for one Request-URI could be sent with another: the response hashes
 * `method:uri` of the credentials, not of the request line.
 *
 * SIP UAs put in the credentials the very text of their request line, so the texts are compared
 * first; otherwise both must be equal SIP URIs under RFC 3261 §19.1.4 (scheme, host and parameter
 * values case-insensitive, user and password case-sensitive after unescaping, an omitted port
 * differs from an explicit 5060, `transport`/`user`/`ttl`/`method`/`maddr` compared whenever either
 * URI has them, other parameters only when both have them, headers equal) — the same equality as
 * the registrar's binding identity (services/location/contact.ts). Anything that is not a URI
 * parseUri understands (`*`, garbage) matches only as identical text.
 */
import { parseUri } from '../../grammar/sip-values';
import { sameUri } from '../location/contact';

/** Longer digest URIs are refused without parsing (a Request-URI is a few hundred bytes). */
const MAX_URI_LENGTH = 4096;

export function digestUriMatches(credentialsUri: string, requestUri: string): boolean {
  if (credentialsUri === requestUri) return true;
  if (credentialsUri.length > MAX_URI_LENGTH || requestUri.length > MAX_URI_LENGTH) return false;
  const a = parseUri(credentialsUri);
  const b = parseUri(requestUri);
  return a !== null && b !== null && sameUri(a, b);
}
