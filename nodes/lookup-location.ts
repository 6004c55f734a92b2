import type { NodeType } from '../engine/node-type';
import type { CdValue } from '../engine/types';
import { splitHeaderList } from '../grammar/sip-values';
import { aorText } from '../grammar/aor';
import { finish, nodeRef } from './common';
import { checkFailover, compileFailover, failoverProperties, type FailoverValues } from './failover';

interface Values extends FailoverValues {
  aor?: string;
  ifNotFound?: number | string;
  notFoundCode?: number;
  notFoundReason?: string;
}

/** `user@domain`, `sip:user@domain` or `user` → [user, domain|null] (grammar/aor.ts). */
export function aorParts(v: CdValue): [string | null, string | null] {
  if (v === null || Array.isArray(v)) return [null, null];
  return aorText(String(v));
}

/**
 * Lookup in location service: relays to the AoR's live bindings (highest q first, forked in
 * parallel); with none, takes the not-found exit, or answers 404 when that exit is unset. When the
 * bindings fail (no answer, 5xx, 6xx), the alternatives follow (nodes/failover.ts), e.g. voicemail.
 */
export const lookupLocationNode: NodeType<Values> = {
  type: 'output.nit.registrar.lookupLocationService',
  title: 'Lookup in location service',
  summary: 'relay to the contacts of {aor|default:the Request-URI user}',
  category: 'registrar',
  description: 'Finds the registered contacts of an AoR and relays the request to them; not registered → not-found exit or 404.',
  valuesSchema: {
    type: 'object',
    properties: {
      aor: { type: 'string', 'x-var': true, description: 'AoR to look up (user or user@domain); default: the Request-URI user' },
      ifNotFound: {
        ...nodeRef,
        'x-exit-label': 'not found',
        'x-optional': true,
        description: 'taken when the AoR has no binding; unset: the node answers notFoundCode (404 by default)',
      },
      notFoundCode: {
        type: 'integer',
        minimum: 400,
        maximum: 699,
        title: 'Not found code',
        description: 'answered when the AoR has no binding and ifNotFound is unset (default 404)',
      },
      notFoundReason: { type: 'string', title: 'Not found reason', description: 'its reason phrase (default: the code’s)' },
      ...failoverProperties,
    },
  },
  check: checkFailover,
  compile(values, c) {
    const aor = c.value(values.aor || 'requestUsername');
    const notFound = c.exit('ifNotFound');
    const code = values.notFoundCode ?? 404;
    const reason = values.notFoundReason ?? (code === 404 ? 'Not Found' : code === 480 ? 'Temporarily Unavailable' : 'Not Found');
    const failover = compileFailover(values, c);
    const ifAllFailed = c.exit('ifAllFailed');
    return async (s) => {
      const [username, domain] = aorParts(aor(s.cd.vars));
      const bindings = username ? await s.ctx.location.lookup(username, domain, new Date(s.ctx.clock.now())) : [];
      if (bindings.length === 0) return notFound.node ? notFound : finish({ kind: 'reply', status: code, reason });
      const targets = bindings.map((b) => ({
        uri: b.contact,
        received: b.received,
        path: b.path ? splitHeaderList(b.path) : null,
        q: b.q,
        ...(b.connection_id >= 0 ? { connection: { id: b.connection_id, serverId: b.server_id, socket: b.socket } } : {}),
      }));
      if (failover === null) return finish({ kind: 'relay', status: null, targets });
      return { finish: { kind: 'relay', status: null, targets, failover: failover(s) }, resume: ifAllFailed };
    };
  },
};
