import { limitKeyProblem, slotHolder } from '../engine/call-slots';
import type { NodeType, ValueGetter } from '../engine/node-type';
import type { CallLimitRule } from '../engine/ports';
import type { CallDescriptor, CdValue } from '../engine/types';
import { toText } from '../engine/values';
import { parseNameAddr } from '../grammar/sip-values';
import { nodeRef, writesVariable } from './common';

interface Values {
  key: string;
  maxConcurrent?: number | string;
  maxPerSecond?: number | string;
  storeStatusInto?: string;
  ifAllowed?: number | string;
  ifRejected?: number | string;
}

/** Highest rate a key may be given (the sliding window holds one timestamp per call admitted in it). */
export const MAX_CALLS_PER_SECOND = 10_000;

/**
 * Call admission control: the call takes a slot of a key (a customer, a trunk, a number: the key
 * text with [var] placeholders) unless the key has `maxConcurrent` calls already, or admitted
 * `maxPerSecond` new calls in the last second (services/call-limit gives the window precisely).
 * The slot is held until the call ends (BYE, CANCEL, a final failure: the releaser follows the
 * call events) or expires (`callLimit.slotTimeoutSec`). The key is appended to the call's
 * `callSlots` (not a variable: no logic can release another call's slot).
 *
 * Only an initial INVITE (no To tag) takes a slot; any other request goes `ifAllowed`, status
 * `not counted`. Idempotent per call and key: the restart after authentication and the INVITE
 * answering a challenge find the slot already theirs. Refused (`ifRejected`, fail closed): a key
 * that resolves to empty text or one of whose variables is empty (`customer:[customer]` with no
 * customer), over 256 bytes or holding a control character (`no key`); a limit
 * read from a variable that is not a number (`invalid limit`); the limiter unreachable (the
 * shared database down, its key table full: `unavailable`; a logic answers 503 on it). With no
 * limiter in the run (a one-shot `sipflow run`, a dry run) the call goes `ifAllowed`, `unlimited`.
 */
export const callLimitNode: NodeType<Values> = {
  type: 'analysis.callLimit',
  title: 'Call limit',
  summary: '{key}{if maxConcurrent} ≤ {maxConcurrent} calls{end}{if maxPerSecond} ≤ {maxPerSecond}/s{end}',
  category: 'analysis',
  description:
    'Call admission control: an initial INVITE takes a slot of the key (ifAllowed) unless the key holds maxConcurrent calls or admitted maxPerSecond calls in the last second (ifRejected). Slots are released when the call ends or expires.',
  valuesSchema: {
    type: 'object',
    required: ['key'],
    properties: {
      key: {
        type: 'string',
        minLength: 1,
        maxLength: 1024,
        description: 'limit key with [name] placeholders, e.g. customer:[customer] (one namespace per instance, or per database when shared: use a prefix)',
      },
      maxConcurrent: {
        type: ['integer', 'string'],
        minimum: 0,
        minLength: 1,
        'x-var': true,
        description: 'calls of the key at once (0 admits none): a number, or a variable holding one (e.g. from the directory)',
      },
      maxPerSecond: {
        type: ['number', 'string'],
        exclusiveMinimum: 0,
        maximum: MAX_CALLS_PER_SECOND,
        minLength: 1,
        'x-var': true,
        description: `new calls of the key per second (above 0, at most ${MAX_CALLS_PER_SECOND}; 0.5 = one every 2 s): a number, or a variable holding one`,
      },
      storeStatusInto: {
        ...writesVariable,
        default: 'callLimitStatus',
        description:
          'variable set to allowed, concurrent (limit reached), rate, no key, invalid limit, unavailable, not counted (not an initial INVITE) or unlimited',
      },
      ifAllowed: { ...nodeRef, description: 'the call holds a slot (or is not counted)' },
      ifRejected: { ...nodeRef, description: 'a limit is reached, the key is unusable or the limiter unavailable (see the status variable)' },
    },
  },
  // the status variable is written even when the field is left to its default
  writes: (v) => [v.storeStatusInto || 'callLimitStatus'],
  check(v) {
    const problems: Array<[string, string]> = [];
    if (isUnset(v.maxConcurrent) && isUnset(v.maxPerSecond)) problems.push(['maxConcurrent', 'set maxConcurrent, maxPerSecond or both']);
    return problems;
  },
  compile(values, c) {
    const key = c.value(values.key);
    // the variables the key is built from: one that is empty leaves no key (`customer:` is not a customer)
    const parts = c.isVariable(values.key) ? [values.key] : [...values.key.matchAll(PLACEHOLDER)].map((m) => m[1]).filter((n) => c.isVariable(n));
    const maxConcurrent = isUnset(values.maxConcurrent) ? null : c.value(values.maxConcurrent);
    const maxPerSecond = isUnset(values.maxPerSecond) ? null : c.value(values.maxPerSecond);
    const statusVar = values.storeStatusInto || 'callLimitStatus';
    const allowed = c.exit('ifAllowed');
    const rejected = c.exit('ifRejected');
    return async (s) => {
      const done = (status: string, admit: boolean) => {
        s.set(statusVar, status);
        return admit ? allowed : rejected;
      };
      if (!isInitialInvite(s.cd)) return done('not counted', true);
      const limiter = s.ctx.callLimits;
      if (!limiter) return done('unlimited', true);
      const k = toText(key(s.cd.vars));
      const problem = parts.some((n) => toText(s.cd.vars[n]) === '') ? 'a variable of the key is empty' : limitKeyProblem(k);
      if (problem !== null) {
        s.ctx.log?.log('debug', `call limit: ${problem}`, { where: c.where });
        return done('no key', false);
      }
      const rule = ruleOf(s.cd.vars, maxConcurrent, maxPerSecond);
      if (rule === null) return done('invalid limit', false);
      const verdict = await limiter.acquire(slotHolder(s.cd), k, rule, s.ctx.clock.now()).catch((e: unknown) => {
        s.ctx.log?.log('warn', `call limit unavailable: ${(e as Error)?.message ?? String(e)}`, { where: c.where });
        return 'unavailable' as const;
      });
      if (verdict !== 'allowed') return done(verdict, false);
      const slots = (s.cd.callSlots ??= []);
      if (!slots.includes(k)) slots.push(k);
      return done('allowed', true);
    };
  },
};

const PLACEHOLDER = /\[([A-Za-z_][A-Za-z0-9_.-]*)\]/g;

const isUnset = (v: unknown): boolean => v === undefined || v === null || v === '';

/** An INVITE outside a dialog: its To has no tag. */
function isInitialInvite(cd: CallDescriptor): boolean {
  if (cd.vars.requestMethod !== 'INVITE') return false;
  const to = cd.headers['to']?.[0];
  return to === undefined || parseNameAddr(to)?.params.tag == null;
}

/** The limits as this run resolves them; null when one is not a number in its range. */
function ruleOf(vars: Record<string, CdValue>, maxConcurrent: ValueGetter | null, maxPerSecond: ValueGetter | null): CallLimitRule | null {
  const rule: CallLimitRule = {};
  if (maxConcurrent) {
    const n = numberOf(maxConcurrent(vars));
    if (n === null || !Number.isInteger(n) || n < 0) return null;
    rule.maxConcurrent = n;
  }
  if (maxPerSecond) {
    const n = numberOf(maxPerSecond(vars));
    if (n === null || n <= 0 || n > MAX_CALLS_PER_SECOND) return null;
    rule.maxPerSecond = n;
  }
  return rule;
}

function numberOf(v: CdValue): number | null {
  if (typeof v === 'number') return Number.isFinite(v) ? v : null;
  if (typeof v !== 'string' || !/^\s*\d+(\.\d+)?\s*$/.test(v)) return null;
  return Number(v);
}
