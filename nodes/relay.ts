import type { NodeType } from '../engine/node-type';
import { toText } from '../engine/values';
import { finish } from './common';

interface Values {
  destination: string;
}

/** Relay to destination: proxies the request to a URI (literal, variable or `[name]` template). */
export const relayNode: NodeType<Values> = {
  type: 'output.relay',
  title: 'Relay to destination',
  category: 'output',
  description: 'Proxies the request to a SIP URI, e.g. sip:[called]@gateway.example:5060.',
  valuesSchema: {
    type: 'object',
    required: ['destination'],
    properties: { destination: { type: 'string', minLength: 1, 'x-var': true } },
  },
  compile(values, c) {
    const destination = c.value(values.destination);
    return (s) => {
      const uri = toText(destination(s.cd.vars));
      if (!uri) return finish({ kind: 'error', status: 500, reason: 'Server Internal Error (empty relay destination)', where: c.where });
      return finish({ kind: 'relay', status: null, targets: [{ uri: /^[a-z][a-z0-9+.-]*:/i.test(uri) ? uri : `sip:${uri}` }] });
    };
  },
};
