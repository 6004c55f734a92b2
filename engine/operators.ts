/**
 * Condition operators. A condition is compiled once into a predicate over the variables;
 * regexes with a literal pattern are compiled at load.
 */
import { LRUCache } from 'lru-cache';
import type { CompileContext, ValueGetter } from './node-type';
import type { CdValue } from './types';
import { isCanonicalNumber, toText } from './values';

export const OPERATORS = [
  'is',
  'isNot',
  'exists',
  'doesNotExist',
  'contains',
  'doesNotContain',
  'startsWith',
  'endsWith',
  'matches',
  'greaterThan',
  'greaterOrEqual',
  'lessThan',
  'lessOrEqual',
  'in',
] as const;
export type Operator = (typeof OPERATORS)[number];

/** Database conditions also know the longest prefix match. */
export const DB_OPERATORS = [...OPERATORS, 'isLongestPrefixMatchOf'] as const;

export interface Condition {
  variable: string;
  operator: Operator;
  value?: unknown;
}

export type Predicate = (vars: Record<string, CdValue>) => boolean;

const missing = (v: CdValue | undefined): v is null | undefined => v === null || v === undefined;

function asBoolean(v: CdValue): boolean | undefined {
  if (typeof v === 'boolean') return v;
  if (v === 1 || v === '1' || v === 'true' || v === 'True') return true;
  if (v === 0 || v === '0' || v === 'false' || v === 'False') return false;
  return undefined;
}

/** Equality as the engine defines it: numbers numerically, booleans against their spellings, else text. */
export function looseEquals(a: CdValue, b: CdValue): boolean {
  if (missing(a) || missing(b)) return missing(a) && missing(b);
  if (typeof a === 'boolean' || typeof b === 'boolean') return asBoolean(a) === asBoolean(b) && asBoolean(a) !== undefined;
  if (isCanonicalNumber(a) && isCanonicalNumber(b)) return Number(a) === Number(b);
  if (Array.isArray(a) || Array.isArray(b)) return toText(a) === toText(b);
  return String(a) === String(b);
}

function order(a: CdValue, b: CdValue): number | undefined {
  if (missing(a) || missing(b) || Array.isArray(a) || Array.isArray(b)) return undefined;
  // numbers as numbers only when both are canonical, as `is` decides: "000112233" stays text
  if (isCanonicalNumber(a) && isCanonicalNumber(b)) return Number(a) - Number(b);
  const sa = String(a);
  const sb = String(b);
  return sa < sb ? -1 : sa > sb ? 1 : 0;
}

/** `in` takes a JSON-array literal, a comma-separated list, or a list-of-records variable. */
export function listOf(v: CdValue): CdValue[] {
  if (missing(v)) return [];
  if (Array.isArray(v)) return v.flatMap((row) => Object.values(row));
  if (typeof v === 'string') {
    const s = v.trim();
    if (s.startsWith('[')) {
      try {
        const parsed = JSON.parse(s);
        if (Array.isArray(parsed)) return parsed as CdValue[];
      } catch {
        /* fall through to comma list */
      }
    }
    return s.split(',').map((x) => x.trim());
  }
  return [v];
}

function contains(hay: CdValue, needle: CdValue): boolean {
  if (Array.isArray(hay)) return hay.some((row) => Object.values(row).some((v) => looseEquals(v, needle)));
  return toText(hay).includes(toText(needle));
}

/** What the regex cache keeps for a pattern that does not compile. */
const INVALID_PATTERN = false;
/**
 * Regex cache for patterns that come from variables (literal ones are compiled at load): an
 * lru-cache of 1000 patterns, least recently used forgotten first.
 */
const dynamicRegex = new LRUCache<string, RegExp | typeof INVALID_PATTERN>({ max: 1000 });
function regexFor(pattern: string): RegExp | null {
  let re = dynamicRegex.get(pattern);
  if (re === undefined) {
    try {
      re = new RegExp(pattern);
    } catch {
      re = INVALID_PATTERN;
    }
    dynamicRegex.set(pattern, re);
  }
  return re === INVALID_PATTERN ? null : re;
}

/** Builds the predicate of one condition. `left` reads the tested variable (missing reads as null). */
export function compilePredicate(left: ValueGetter, operator: Operator, rawValue: unknown, c: CompileContext): Predicate {
  const right = c.value(rawValue);
  switch (operator) {
    case 'exists':
      return (v) => !missing(left(v));
    case 'doesNotExist':
      return (v) => missing(left(v));
    case 'is':
      return (v) => {
        const a = left(v);
        return !missing(a) && looseEquals(a, right(v));
      };
    case 'isNot':
      return (v) => {
        const a = left(v);
        return !missing(a) && !looseEquals(a, right(v));
      };
    case 'contains':
      return (v) => {
        const a = left(v);
        return !missing(a) && contains(a, right(v));
      };
    case 'doesNotContain':
      return (v) => {
        const a = left(v);
        return !missing(a) && !contains(a, right(v));
      };
    case 'startsWith':
      return (v) => {
        const a = left(v);
        return !missing(a) && toText(a).startsWith(toText(right(v)));
      };
    case 'endsWith':
      return (v) => {
        const a = left(v);
        return !missing(a) && toText(a).endsWith(toText(right(v)));
      };
    case 'greaterThan':
      return cmp(left, right, (d) => d > 0);
    case 'greaterOrEqual':
      return cmp(left, right, (d) => d >= 0);
    case 'lessThan':
      return cmp(left, right, (d) => d < 0);
    case 'lessOrEqual':
      return cmp(left, right, (d) => d <= 0);
    case 'in':
      return (v) => {
        const a = left(v);
        return !missing(a) && listOf(right(v)).some((x) => looseEquals(a, x));
      };
    case 'matches': {
      if (!c.isVariable(rawValue) && typeof rawValue === 'string' && !rawValue.includes('[')) {
        const re = new RegExp(rawValue); // syntax checked by validation
        return (v) => {
          const a = left(v);
          return !missing(a) && re.test(toText(a));
        };
      }
      return (v) => {
        const a = left(v);
        const re = regexFor(toText(right(v)));
        return !missing(a) && re !== null && re.test(toText(a));
      };
    }
    default: {
      const never: never = operator;
      throw new Error(`unknown operator ${String(never)}`);
    }
  }
}

function cmp(left: ValueGetter, right: ValueGetter, test: (d: number) => boolean): Predicate {
  return (v) => {
    const d = order(left(v), right(v));
    return d !== undefined && test(d);
  };
}

/** Returns an error message when a literal regex does not compile. */
export function checkRegex(pattern: unknown): string | null {
  if (typeof pattern !== 'string') return null;
  try {
    new RegExp(pattern);
    return null;
  } catch (e) {
    return `invalid regular expression: ${(e as Error).message}`;
  }
}
