/**
 * SIP request → call descriptor with the SRE predefined variables:
 * callId, called, calling, requestMethod, requestURI, requestUsername, fromURI, fromUsername,
 * toURI, toUsername, sourceAddress, sourcePort, destinationAddress, destinationPort, transport,
 * originalCalled, originalCalling, authStatus (0) and authUsername (username of Authorization
 * for REGISTER, of Proxy-Authorization otherwise; absent without credentials).
 *
 * The message's header map is shared with the CD (same shape: lower-case full names), not copied.
 */
import { callDescriptorOf, newVariables, type BuildOptions } from '../engine/cd';
import type { CallDescriptor, ParsedValues } from '../engine/types';
import type { AuthPort } from '../engine/ports';
import type { SipRequest } from './message';
import type { LocalEndpoint, Peer } from './transport';

export type CalledSource = NonNullable<BuildOptions['called']>;

export interface CdOptions {
  /** Where `called` comes from: the Request-URI user (default, as SRE) or the To user. */
  called?: CalledSource;
}

/** `parsed`: values of the request already parsed (sip/message.ts RequestValues), not parsed again; the CD keeps it. */
export type CdBuilder = (req: SipRequest, peer: Peer, local: LocalEndpoint, parsed?: ParsedValues) => CallDescriptor;

/**
 * A CD builder bound to the auth port (its credentials parser gives `authUsername` and the CD's parsed `credentials`): the
 * request's facts handed to the one builder the CLI, the API and the simulator use too
 * (engine/cd.ts `callDescriptorOf`; prototype-free variables).
 */
export function cdBuilder(auth: AuthPort, o: CdOptions = {}): CdBuilder {
  const opts: BuildOptions = { credentials: auth.parseCredentials, called: o.called };
  return (req, peer, local, parsed) => {
    const body = req.body;
    // set by name, in one order: every request's variable map has the same V8 shape (engine/cd.ts callDescriptorOf)
    const vars = newVariables();
    vars.requestMethod = req.method;
    // also the CD's requestUri: the received Request-URI, out of reach of the logic (the digest uri is checked against it)
    vars.requestURI = req.uri;
    vars.sourceAddress = peer.address;
    vars.sourcePort = peer.port;
    vars.destinationAddress = local.address;
    vars.destinationPort = local.port;
    vars.transport = peer.proto;
    const cd = callDescriptorOf(vars, req.headers, body.length > 0 ? (typeof body === 'string' ? body : body.toString('utf8')) : undefined, opts, parsed);
    const connectionId = peer.conn?.id ?? peer.connId;
    if (connectionId !== undefined && connectionId >= 0) cd.connectionId = connectionId;
    return cd;
  };
}
