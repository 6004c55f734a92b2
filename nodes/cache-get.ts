import type { NodeType } from '../engine/node-type';
import { toText } from '../engine/values';
import { nodeRef, writesVariable } from './common';

interface Values {
  key: string;
  storeInto: string;
  ifFound?: number | string;
  ifNotFound?: number | string;
}

/**
 * Cache get: the value a cache set stored under the key (built from the same kind of template),
 * if it has not expired. Not found (never set, expired, evicted, no cache, or the cache could not
 * be reached) → `ifNotFound`, the variable left as it was.
 */
export const cacheGetNode: NodeType<Values> = {
  type: 'query.cacheGet',
  title: 'Cache get',
  summary: '{key} → {storeInto}',
  category: 'cache',
  description: 'Reads a value of the instance cache into a variable: ifFound, or ifNotFound when the key holds nothing (never set, expired, evicted).',
  valuesSchema: {
    type: 'object',
    required: ['key', 'storeInto'],
    properties: {
      key: { type: 'string', minLength: 1, maxLength: 1024, description: 'key text with [name] placeholders, as the cache set node built it' },
      storeInto: { ...writesVariable, description: 'variable the value is written to when found' },
      ifFound: nodeRef,
      ifNotFound: { ...nodeRef, description: 'taken when the key holds no value (the variable is left as it was)' },
    },
  },
  compile(values, c) {
    const key = c.value(values.key);
    const found = c.exit('ifFound');
    const notFound = c.exit('ifNotFound');
    return async (s) => {
      const cache = s.ctx.cache;
      if (!cache) return notFound;
      const v = await cache.get(toText(key(s.cd.vars))).catch(() => undefined);
      if (v === undefined) return notFound;
      s.set(values.storeInto, v);
      return found;
    };
  },
};
