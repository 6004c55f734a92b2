/**
 * Binding: a query's values against its plan.
 *
 * Why: the values of a query (from the call descriptor) never reach SQL text; they are converted
 * for their columns' types and sent as bindings. A few facts about them do change the SQL: a
 * single value that is null (IS NULL, or false), one holding a NUL (false), the length of an `in`
 * list and whether it has a null element, whether there is a LIMIT and an OFFSET. Those facts are
 * the query's VARIANT; one plan has one compiled Statement per variant (build.ts).
 *
 * Contract: `bind(plan, q, hasLimit, hasOffset)` returns the converted values in condition order
 * and the variant key, or throws DirectoryError('invalid') for the first value that does not fit
 * its column (the order the query builder always reported them in; never the value itself). Two
 * queries of one plan with equal keys compile to the same SQL. `variants(plan, q)` spells the same
 * facts out per condition for the builder.
 *
 * Limits: the key is an integer while the only facts are limit, offset and null values among the
 * first NULL_FLAG_CONDITIONS conditions (the common case: no allocation); otherwise a string.
 */
import type { Scalar } from '../../engine/types';
import type { DirectoryQuery } from './types';
import { invalid, type Column, type ConditionPlan, type Plan } from './plan';

/** A variant of a plan (see above): an integer of flags, or that integer and a text part. */
export type VariantKey = number | string;

/** Variant flag: the query has a LIMIT. */
const VARIANT_LIMIT = 1;
/** Variant flag: the query has an OFFSET. */
const VARIANT_OFFSET = 2;
/** Variant flag of single-value condition i being null: bit VARIANT_FIRST_NULL_BIT + i. */
const VARIANT_FIRST_NULL_BIT = 2;
/** Conditions whose null value is a flag bit (2 + 28 bits: the key stays a small integer); later ones go in the text part. */
const NULL_FLAG_CONDITIONS = 28;
/** Text part, per condition `i:` then: the count of an `in` list's values (+ WITH_NULL), NULL_VALUE, or NUL_VALUE. */
const TEXT_WITH_NULL = 'n';
const TEXT_NULL_VALUE = '-';
const TEXT_NUL_VALUE = '0';

/** The value-dependent part of a condition's SQL. */
export interface ConditionVariant {
  /** A single value that is null/undefined (IS NULL, IS NOT NULL, or false). */
  absent: boolean;
  /** A single value holding a NUL (see hasNul): the condition is false. */
  never: boolean;
  /** How many values the condition binds (`in`: its non-null elements). */
  present: number;
  /** `in`: a null element adds OR … IS NULL. */
  withNull: boolean;
}

/** A query's values converted for its column types, in condition order, and its variant key. */
export interface Bound {
  key: VariantKey;
  values: unknown[];
}

/**
 * A NUL character cannot be sent as text to PostgreSQL or PGlite ("invalid byte sequence for
 * encoding UTF8: 0x00", an error that used to end the logic in a 500) and no text stored there can
 * hold one. So a condition whose value holds a NUL matches no row, whatever its operator
 * (`isNot` and `doesNotContain` included: fail closed), without the value reaching the database;
 * in an `in` list such an element matches nothing and the others still count.
 */
const hasNul = (v: unknown): boolean => typeof v === 'string' && v.indexOf('\u0000') >= 0;

/**
 * Converts a query's values for their columns (throwing DirectoryError('invalid') in the order the
 * builder always did: condition by condition) and computes the variant key (see above).
 */
export function bind(plan: Plan, q: DirectoryQuery, hasLimit: boolean, hasOffset: boolean): Bound {
  const values: unknown[] = [];
  let key = (hasLimit ? VARIANT_LIMIT : 0) | (hasOffset ? VARIANT_OFFSET : 0);
  let text = '';
  const pcs = plan.conditions;
  for (let i = 0; i < pcs.length; i++) {
    const c = pcs[i];
    if (c.takes === 'nothing') continue;
    const value = q.conditions[i].value;
    if (c.takes === 'list') {
      const list = Array.isArray(value) ? value : [value];
      let present = 0;
      let withNull = false;
      for (const v of list) {
        if (v === null || v === undefined) withNull = true;
        else if (!hasNul(v)) {
          values.push(convert(v, c.column, c.where));
          present++;
        }
      }
      text += `${i}:${present}${withNull ? TEXT_WITH_NULL : ''},`;
      continue;
    }
    if (Array.isArray(value)) throw invalid(`${c.where} takes a single value, not a list`);
    if (value === null || value === undefined) {
      if (i < NULL_FLAG_CONDITIONS) key |= 1 << (VARIANT_FIRST_NULL_BIT + i);
      else text += `${i}:${TEXT_NULL_VALUE},`;
    } else if (hasNul(value)) {
      text += `${i}:${TEXT_NUL_VALUE},`;
    } else {
      values.push(bindingOf(c, value));
    }
  }
  return { key: text === '' ? key : `${key}|${text}`, values };
}

/** The binding of a single-value condition: the converted value, or the LIKE pattern. */
function bindingOf(c: ConditionPlan, value: Scalar): unknown {
  switch (c.operator) {
    case 'contains':
    case 'doesNotContain':
      return `%${escapeLike(String(value))}%`;
    case 'startsWith':
      return `${escapeLike(String(value))}%`;
    case 'endsWith':
      return `%${escapeLike(String(value))}`;
    case 'matches':
    case 'isLongestPrefixMatchOf':
      return String(value);
    default:
      return convert(value, c.column, c.where);
  }
}

/** Per condition, the value-dependent part of its SQL (after `bind` accepted the values). */
export function variants(plan: Plan, q: DirectoryQuery): ConditionVariant[] {
  return plan.conditions.map((c, i) => {
    if (c.takes === 'nothing') return { absent: false, never: false, present: 0, withNull: false };
    const value = q.conditions[i].value;
    if (c.takes === 'list') {
      const list = Array.isArray(value) ? value : [value];
      const present = list.filter((v) => v !== null && v !== undefined && !hasNul(v)).length;
      return { absent: false, never: false, present, withNull: list.some((v) => v === null || v === undefined) };
    }
    const absent = value === null || value === undefined;
    const never = !absent && hasNul(value);
    return { absent, never, present: absent || never ? 0 : 1, withNull: false };
  });
}

/** A LIMIT or OFFSET: a non-negative integer (or its text), undefined when absent. */
export function countOf(v: unknown, what: string): number | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  const n = typeof v === 'string' ? Number(v.trim()) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0) throw invalid(`${what} must be a non-negative integer`);
  return n;
}

/** `\` is PostgreSQL's default LIKE escape character: a value's own %, _ and \ match literally. */
function escapeLike(s: string): string {
  return s.replace(/[\\%_]/g, (c) => `\\${c}`);
}

const TRUE_WORDS = new Set(['true', 't', '1', 'yes', 'y', 'on']);
const FALSE_WORDS = new Set(['false', 'f', '0', 'no', 'n', 'off']);

/**
 * Converts a call-descriptor value to the column's type. Flows write booleans as the literals
 * 'True'/'False' and numbers arrive as strings; a driver would otherwise coerce e.g. 'False' to true.
 * The value itself never appears in the message (it may be a credential).
 */
function convert(v: Scalar, col: Column, where: string): Scalar {
  switch (col.kind) {
    case 'boolean': {
      if (typeof v === 'boolean') return v;
      if (v === 0 || v === 1) return v === 1;
      const w = String(v).trim().toLowerCase();
      if (TRUE_WORDS.has(w)) return true;
      if (FALSE_WORDS.has(w)) return false;
      throw invalid(`${where}: value is not a boolean (${col.table} column is ${col.type})`);
    }
    case 'number': {
      if (typeof v === 'number' && Number.isFinite(v)) return v;
      const s = typeof v === 'string' ? v.trim() : '';
      if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(s)) {
        throw invalid(`${where}: value is not a number (${col.table} column is ${col.type})`);
      }
      const n = Number(s);
      // Integers beyond 2^53 stay strings so PostgreSQL parses them exactly (bigint, numeric).
      return Number.isInteger(n) && !Number.isSafeInteger(n) ? s : n;
    }
    case 'text':
      return typeof v === 'string' ? v : String(v);
    default:
      return v;
  }
}
