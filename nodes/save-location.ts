import type { NodeType, RunState } from '../engine/node-type';
import { bindingView, type CdValue, type ReplyOutcome } from '../engine/types';
import { finish, flag } from './common';
import { aorParts } from './lookup-location';

interface Values {
  aor?: string;
  domain?: string;
  checkOwnership?: boolean | string | number | null;
}

/** The variable the ownership decision is written to (trace, simulator, later nodes). */
export const AOR_CHECK_VARIABLE = 'aorCheck';

const FORBIDDEN: ReplyOutcome = { kind: 'reply', status: 403, reason: 'Forbidden (AoR not owned by these credentials)' };

/** Off only when the export says so explicitly: a missing field (every SRE export) keeps the check. */
const ownershipOff = (v: Values['checkOwnership']): boolean => v === false || v === 0 || v === 'false' || v === 'False' || v === '0' || v === 'off';

/**
 * The AoR ownership tie (registrar.ownership): after authentication, the credentials may change
 * only the bindings of the AoR their username owns. Returns null when allowed, else the refusal;
 * writes the decision to `aorCheck` either way, so traces and the simulator show it.
 */
async function ownershipRefusal(s: RunState, user: string, domain: string | null): Promise<ReplyOutcome | null> {
  const identity = s.authenticated;
  if (identity === null) return null; // the logic did not authenticate this request: its choice
  const port = s.ctx.ownership;
  if (port === null) {
    s.set(AOR_CHECK_VARIABLE, `not checked (registrar.ownership.mode off): ${identity} saves ${user}`);
    return null;
  }
  // read beside the credentials earlier in this run, for this very username: the same row ownedAor would read
  const read = s.ownedRead;
  const owned =
    port === undefined ? { user: identity, domain: null } : read !== null && read.username === identity ? read.owned : await port.ownedAor(identity);
  const rule = port === undefined ? 'AoR user = auth username' : port.rule;
  const ok =
    owned !== null &&
    owned.user === user &&
    (!port?.matchDomain || owned.domain === null || domain === null || owned.domain.toLowerCase() === domain.toLowerCase());
  const ownedText = owned === null ? 'no AoR' : owned.domain && port?.matchDomain ? `${owned.user}@${owned.domain}` : owned.user;
  const asked = domain && port?.matchDomain ? `${user}@${domain}` : user;
  if (ok) {
    s.set(AOR_CHECK_VARIABLE, `${identity} owns ${asked} (${rule})`);
    return null;
  }
  s.set(AOR_CHECK_VARIABLE, `refused: ${identity} owns ${ownedText}, not ${asked} (${rule})`);
  return FORBIDDEN;
}

/** An IPv6 address in brackets, as in a URI and in Kamailio's socket column. */
const bracketed = (address: string): string => (address.includes(':') && !address.startsWith('[') ? `[${address}]` : address);

const text = (v: CdValue | undefined): string | null => (v === null || v === undefined || Array.isArray(v) ? null : String(v));

/**
 * Save in location service: applies the REGISTER to the AoR's bindings (RFC 3261 §10.3) through
 * the location port, and answers with every current binding. The write is durable before the
 * outcome exists, so no 200 OK can precede it.
 *
 * When the request was authenticated (the authenticate node verified it earlier in this run),
 * the AoR must be the one the credentials own (`ownershipRefusal`): 403 and nothing stored or
 * removed otherwise, for additions, refreshes and `Contact: *` alike. SRE exports carry no such
 * field, so they get the check; `checkOwnership: false` turns it off for one node, and
 * `sipflow validate` warns about it (`reviewAfterAuth`).
 */
export const saveLocationNode: NodeType<Values> = {
  type: 'output.nit.registrar.saveLocationService',
  title: 'Save in location service',
  summary: 'save bindings of {aor|default:the To user}{if domain} @ {domain}{end}',
  category: 'registrar',
  description: 'Stores, refreshes or removes the bindings of the REGISTER (AoR = To user by default) and answers 200 OK with all bindings.',
  valuesSchema: {
    type: 'object',
    properties: {
      aor: { type: 'string', 'x-var': true, description: 'AoR (user or user@domain); default: the To URI user' },
      domain: { type: 'string', 'x-var': true, description: 'AoR domain, for multi-domain location services' },
      checkOwnership: {
        ...flag,
        description: 'after authentication, refuse (403) an AoR the credentials do not own (registrar.ownership); on unless set to false',
      },
    },
  },
  writes: () => [AOR_CHECK_VARIABLE],
  reviewAfterAuth(values) {
    return ownershipOff(values.checkOwnership)
      ? [
          [
            'checkOwnership',
            "saves bindings after authentication without the AoR ownership tie: any subscriber's credentials can register, refresh or remove any AoR",
          ],
        ]
      : [];
  },
  compile(values, c) {
    const aor = c.value(values.aor || 'toUsername');
    const domain = values.domain ? c.value(values.domain) : null;
    const checkOwnership = !ownershipOff(values.checkOwnership);
    return async (s) => {
      const vars = s.cd.vars;
      const h = s.cd.headers;
      const [username, aorDomain] = aorParts(aor(vars));
      if (!username) return finish({ kind: 'reply', status: 400, reason: 'Bad Request (no AoR user in To)' });
      const saveDomain = domain ? text(domain(vars)) : aorDomain;
      if (checkOwnership) {
        // the domain compared (matchDomain) is the one saved, else the To URI's
        const refused = await ownershipRefusal(s, username, saveDomain ?? aorParts(vars.toURI ?? null)[1]);
        if (refused) return finish(refused);
      }
      const cseq = Number.parseInt((h.cseq?.[0] ?? '').trim(), 10);
      const source = text(vars.sourceAddress);
      const transport = (text(vars.transport) ?? 'udp').toLowerCase();
      const local = text(vars.destinationAddress);
      // one instant for the update and for the remaining expires answered (no second-boundary drift)
      const now = new Date(s.ctx.clock.now());
      const result = await s.ctx.location.register({
        username,
        domain: saveDomain,
        contacts: h.contact ?? [],
        expiresHeader: h.expires?.[0] ?? null,
        callId: text(vars.callId) ?? h['call-id']?.[0] ?? '',
        cseq: Number.isFinite(cseq) ? cseq : 0,
        userAgent: h['user-agent']?.[0] ?? '',
        received: source ? `sip:${bracketed(source)}:${text(vars.sourcePort) ?? '5060'}` : null,
        socket: local ? `${transport}:${bracketed(local)}:${text(vars.destinationPort) ?? '5060'}` : null,
        via: h.via?.[0] ?? null,
        connectionId: s.cd.connectionId ?? null,
        path: h.path?.length ? h.path.join(',') : null,
        allow: h.allow?.length ? h.allow.join(', ') : null,
        now,
      });
      return finish({
        kind: 'register',
        status: result.status,
        reason: result.reason,
        aor: username,
        bindings: result.bindings.map((b) => bindingView(b, now)),
        ...(result.headers ? { headers: result.headers } : {}),
      });
    };
  },
};
