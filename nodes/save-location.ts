import type { NodeType } from '../engine/node-type';
import type { CdValue } from '../engine/types';
import { bindingView } from '../services/location/registrar';
import { finish } from './common';
import { aorParts } from './lookup-location';

interface Values { aor?: string; domain?: string }

const text = (v: CdValue | undefined): string | null => (v === null || v === undefined || Array.isArray(v) ? null : String(v));

/**
 * Save in location service: applies the REGISTER to the AoR's bindings (RFC 3261 §10.3) through
 * the location port, and answers with every current binding. The write is durable before the
 * outcome exists, so no 200 OK can precede it.
 */
export const saveLocationNode: NodeType<Values> = {
  type: 'output.nit.registrar.saveLocationService',
  title: 'Save in location service',
  category: 'registrar',
  description: 'Stores, refreshes or removes the bindings of the REGISTER (AoR = To user by default) and answers 200 OK with all bindings.',
  valuesSchema: {
    type: 'object',
    properties: {
      aor: { type: 'string', 'x-var': true, description: 'AoR (user or user@domain); default: the To URI user' },
      domain: { type: 'string', 'x-var': true, description: 'AoR domain, for multi-domain location services' },
    },
  },
  compile(values, c) {
    const aor = c.value(values.aor || 'toUsername');
    const domain = values.domain ? c.value(values.domain) : null;
    return async (s) => {
      const vars = s.cd.vars;
      const h = s.cd.headers;
      const [username, aorDomain] = aorParts(aor(vars));
      if (!username) return finish({ kind: 'reply', status: 400, reason: 'Bad Request (no AoR user in To)' });
      const cseq = Number.parseInt((h.cseq?.[0] ?? '').trim(), 10);
      const source = text(vars.sourceAddress);
      const transport = (text(vars.transport) ?? 'udp').toLowerCase();
      const local = text(vars.destinationAddress);
      // one instant for the update and for the remaining expires answered (no second-boundary drift)
      const now = new Date(s.ctx.clock.now());
      const result = await s.ctx.location.register({
        username,
        domain: domain ? text(domain(vars)) : aorDomain,
        contacts: h.contact ?? [],
        expiresHeader: h.expires?.[0] ?? null,
        callId: text(vars.callId) ?? h['call-id']?.[0] ?? '',
        cseq: Number.isFinite(cseq) ? cseq : 0,
        userAgent: h['user-agent']?.[0] ?? '',
        received: source ? `sip:${source.includes(':') ? `[${source}]` : source}:${text(vars.sourcePort) ?? '5060'}` : null,
        socket: local ? `${transport}:${local}:${text(vars.destinationPort) ?? '5060'}` : null,
        path: h.path?.length ? h.path.join(',') : null,
        allow: h.allow?.length ? h.allow.join(', ') : null,
        now,
      });
      return finish({
        kind: 'register', status: result.status, reason: result.reason, aor: username,
        bindings: result.bindings.map((b) => bindingView(b, now)),
        ...(result.headers ? { headers: result.headers } : {}),
      });
    };
  },
};
