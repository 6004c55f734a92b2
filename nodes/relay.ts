import type { NodeType } from '../engine/node-type';
import { toText } from '../engine/values';
import { finish } from './common';
import { checkFailover, compileFailover, failoverProperties, withScheme, type FailoverValues } from './failover';

interface Values extends FailoverValues {
  destination: string;
}

/**
 * Relay to destination: proxies the request to a URI (literal, variable or `[name]` template),
 * with failover to further destinations (nodes/failover.ts).
 */
export const relayNode: NodeType<Values> = {
  type: 'output.relay',
  title: 'Relay to destination',
  summary: '→ {destination}',
  category: 'output',
  description:
    'Proxies the request to a SIP URI, e.g. sip:[called]@gateway.example:5060; when it fails (timeout, 5xx, 6xx), tries the alternatives in order, then continues at ifAllFailed.',
  valuesSchema: {
    type: 'object',
    required: ['destination'],
    properties: { destination: { type: 'string', minLength: 1, 'x-var': true, description: 'the first destination tried' }, ...failoverProperties },
  },
  check: checkFailover,
  compile(values, c) {
    const destination = c.value(values.destination);
    const failover = compileFailover(values, c);
    const ifAllFailed = c.exit('ifAllFailed');
    return (s) => {
      const uri = toText(destination(s.cd.vars));
      if (!uri) return finish({ kind: 'error', status: 500, reason: 'Server Internal Error (empty relay destination)', where: c.where });
      const targets = [{ uri: withScheme(uri) }];
      if (failover === null) return finish({ kind: 'relay', status: null, targets });
      return { finish: { kind: 'relay', status: null, targets, failover: failover(s) }, resume: ifAllFailed };
    };
  },
};
