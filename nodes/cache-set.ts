import type { NodeType } from '../engine/node-type';
import { toText } from '../engine/values';
import { anyValue, nodeRef } from './common';

interface Values {
  key: string;
  value?: unknown;
  ttlSec?: number | string;
  next?: number | string;
  ifNotStored?: number | string;
}

/** Longest TTL: a day; a value kept longer belongs in the directory. */
export const MAX_CACHE_TTL_SEC = 86_400;

/**
 * Cache set: a value into the instance cache (ctx.cache: services/cache, shared by every SIP thread
 * of the instance) under a key built from the logic's template. Keys are one namespace for the
 * whole instance: give each use a constant prefix (`route:[called]`), since a caller supplies
 * only the placeholders' values and can then reach no key outside that prefix. A value over
 * `nodes.cache.maxValueBytes` (or a key over 1024 bytes) is not stored, the key's previous value is
 * removed, and the node takes `ifNotStored` (unset: `next`); so does a run with no cache.
 */
export const cacheSetNode: NodeType<Values> = {
  type: 'action.cacheSet',
  title: 'Cache set',
  summary: '{key} = {value}',
  category: 'cache',
  description:
    'Stores a value in the instance cache (shared by all SIP threads) under a key, for ttlSec seconds. A value over nodes.cache.maxValueBytes is not stored (ifNotStored).',
  valuesSchema: {
    type: 'object',
    required: ['key'],
    properties: {
      key: {
        type: 'string',
        minLength: 1,
        maxLength: 1024,
        description: 'key text with [name] placeholders, e.g. route:[called] (one namespace per instance: use a prefix)',
      },
      value: { ...anyValue, description: 'value stored: literal, variable or [name] template (a list is stored as its JSON text)' },
      ttlSec: {
        type: ['integer', 'string'],
        pattern: '^[1-9][0-9]*$',
        minimum: 1,
        maximum: MAX_CACHE_TTL_SEC,
        default: 60,
        description: `seconds the value lives (1 to ${MAX_CACHE_TTL_SEC})`,
      },
      next: nodeRef,
      ifNotStored: { ...nodeRef, 'x-optional': true, description: 'taken when the value was not stored (over the size caps, or no cache); unset: next' },
    },
  },
  check: (v) => (Number(v.ttlSec ?? 60) > MAX_CACHE_TTL_SEC ? [['ttlSec', `must be at most ${MAX_CACHE_TTL_SEC}`]] : []),
  compile(values, c) {
    const key = c.value(values.key);
    const value = c.value(values.value ?? null);
    const ttlSec = Number(values.ttlSec ?? 60);
    const next = c.exit('next');
    const notStored = c.exit('ifNotStored');
    // exits are resolved after every node is compiled: decided per visit
    const refused = () => (notStored.node ? notStored : next);
    return async (s) => {
      const cache = s.ctx.cache;
      if (!cache) return refused();
      const v = value(s.cd.vars);
      const stored = await cache.set(toText(key(s.cd.vars)), Array.isArray(v) ? JSON.stringify(v) : v, ttlSec).catch(() => false);
      return stored ? next : refused();
    };
  },
};
