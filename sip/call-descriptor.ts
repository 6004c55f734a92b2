/**
 * SIP request → call descriptor with the SRE predefined variables:
 * callId, called, calling, requestMethod, requestURI, requestUsername, fromURI, fromUsername,
 * toURI, toUsername, sourceAddress, sourcePort, destinationAddress, destinationPort, transport,
 * originalCalled, originalCalling, authStatus (0) and authUsername (username of Authorization
 * for REGISTER, of Proxy-Authorization otherwise; absent without credentials).
 *
 * The message's header map is shared with the CD (same shape: lower-case full names), not copied.
 */
import { fillPredefined } from '../engine/cd';
import type { CallDescriptor, CdValue } from '../engine/types';
import type { AuthPort } from '../engine/ports';
import type { SipRequest } from './message';
import type { LocalEndpoint, Peer } from './transport';

export type CalledSource = 'requestUri' | 'to';

export interface CdOptions {
  /** Where `called` comes from: the Request-URI user (default, as SRE) or the To user. */
  called?: CalledSource;
}

export type CdBuilder = (req: SipRequest, peer: Peer, local: LocalEndpoint) => CallDescriptor;

/** A CD builder bound to the auth port (its credentials parser gives `authUsername`). */
export function cdBuilder(auth: AuthPort, o: CdOptions = {}): CdBuilder {
  const fillOpts = { credentialsUsername: (v: string) => auth.parseCredentials(v)?.username ?? null };
  const toCalled = o.called === 'to';
  return (req, peer, local) => {
    const vars: Record<string, CdValue> = {
      requestMethod: req.method,
      requestURI: req.uri,
      sourceAddress: peer.address,
      sourcePort: peer.port,
      destinationAddress: local.address,
      destinationPort: local.port,
      transport: peer.proto,
    };
    fillPredefined(vars, req.headers, fillOpts);
    if (toCalled) {
      vars.called = vars.toUsername ?? null;
      vars.originalCalled = vars.called;
    }
    // requestUri: the received Request-URI, out of reach of the logic (the digest uri is checked against it)
    const cd: CallDescriptor = { vars, headers: req.headers, requestUri: req.uri };
    const body = req.body;
    if (body.length > 0) cd.body = typeof body === 'string' ? body : body.toString('utf8');
    return cd;
  };
}
