/**
 * Building SQL with knex, and compiling a plan's variant into a Statement.
 *
 * Why: knex is the only source of SQL text (identifiers from the plan, checked against the
 * schema; values only ever as bindings). Compiling a variant ONCE with knex and keeping the SQL
 * (execute.ts runs it) saves building and compiling the same query on every REGISTER.
 *
 * Contract:
 * - `build(knex, plan, variants, values, offset, limit)` is the knex query for one query (the
 *   builder path: knex also runs it);
 * - `prepare(knex, plan, q, …)` builds the query once with a Slot for each value and the
 *   LIMIT_PLACEHOLDER / OFFSET_PLACEHOLDER numbers, compiles it with knex's public `toSQL().toNative()`
 *   and maps the compiled bindings back onto their sources: each Slot once, each placeholder once
 *   when expected, anything else a constant knex bound itself. When the bindings are not exactly
 *   that, the variant is UNPREPARABLE and the caller builds it with knex per query, so a surprise
 *   in knex's compilation costs speed, never correctness.
 *
 * Limits: knex only takes numbers for LIMIT and OFFSET, hence the placeholders: numbers no query
 * binds at compile time (values are Slots; knex's own constants are small), and checked to occur
 * exactly once each.
 */
import type { Knex } from 'knex';
import { SOURCE_LIMIT, SOURCE_OFFSET, constantSource, statementName, type Statement } from './execute';
import { variants, type ConditionVariant } from './bind';
import { invalid, type ConditionPlan, type Plan } from './plan';
import type { DirectoryOperator, DirectoryQuery } from './types';

/** Stands for the `index`-th value of a query while knex compiles its shape. */
export class Slot {
  constructor(readonly index: number) {}
}

/** Bound in place of LIMIT / OFFSET while compiling a variant (see Limits above). */
export const LIMIT_PLACEHOLDER = 1_000_000_007;
export const OFFSET_PLACEHOLDER = 1_000_000_009;

/** A variant's compilation: its Statement, or UNPREPARABLE (built with knex per query). */
export const UNPREPARABLE = false;
export type Prepared = Statement | typeof UNPREPARABLE;

const COMPARISONS: Partial<Record<DirectoryOperator, string>> = {
  greaterThan: '>',
  greaterOrEqual: '>=',
  lessThan: '<',
  lessOrEqual: '<=',
};

/**
 * Compiles one variant of a plan (that of `q`, whose converted values number `valueCount`) into a
 * Statement, or UNPREPARABLE.
 */
export function prepare(knex: Knex, plan: Plan, q: DirectoryQuery, valueCount: number, hasLimit: boolean, hasOffset: boolean): Prepared {
  try {
    const slots = Array.from({ length: valueCount }, (_, j) => new Slot(j));
    const compiled = build(knex, plan, variants(plan, q), slots, hasOffset ? OFFSET_PLACEHOLDER : undefined, hasLimit ? LIMIT_PLACEHOLDER : undefined).toSQL();
    return toStatement(compiled.toNative(), compiled.sql, valueCount, hasLimit, hasOffset);
  } catch {
    return UNPREPARABLE;
  }
}

/**
 * Turns knex's compilation of a variant (built with Slot 0…valueCount-1 and the placeholders) into a
 * Statement; UNPREPARABLE when the bindings are not exactly what was put in.
 */
export function toStatement(
  native: { sql: string; bindings: readonly unknown[] },
  sql: string,
  valueCount: number,
  hasLimit: boolean,
  hasOffset: boolean,
): Prepared {
  const seen = new Array<boolean>(valueCount).fill(false);
  let limits = 0;
  let offsets = 0;
  const sources: number[] = [];
  const constants: unknown[] = [];
  for (const b of native.bindings) {
    if (b instanceof Slot) {
      if (b.index < 0 || b.index >= valueCount || seen[b.index]) return UNPREPARABLE;
      seen[b.index] = true;
      sources.push(b.index);
    } else if (b === LIMIT_PLACEHOLDER) {
      limits++;
      sources.push(SOURCE_LIMIT);
    } else if (b === OFFSET_PLACEHOLDER) {
      offsets++;
      sources.push(SOURCE_OFFSET);
    } else {
      sources.push(constantSource(constants.length));
      constants.push(b);
    }
  }
  if (seen.includes(false) || limits !== (hasLimit ? 1 : 0) || offsets !== (hasOffset ? 1 : 0)) return UNPREPARABLE;
  return { name: statementName(sql), text: native.sql, sources, constants };
}

/** The query for a plan, one variant of its conditions and their values (converted, in `bind` order). */
export function build(
  knex: Knex,
  plan: Plan,
  vs: ConditionVariant[],
  values: readonly unknown[],
  offset: number | undefined,
  limit: number | undefined,
): Knex.QueryBuilder {
  const qb = knex.from(plan.from);
  for (const j of plan.joins) {
    qb[plan.joinMethod](j.table, function (this: Knex.JoinClause) {
      j.on.forEach((c, i) => (i === 0 ? this.on(c.left, c.op, c.right) : this.andOn(c.left, c.op, c.right)));
    });
  }
  if (plan.select.length > 0) qb.select(plan.select.map((s) => ({ [s.alias]: s.id })));
  else qb.select(knex.raw('1 as ??', ['c_'])); // no fields: the caller only wants to know whether rows exist

  if (plan.conditions.length > 0) {
    let next = 0;
    const starts = vs.map((v) => {
      const at = next;
      next += v.present;
      return at;
    });
    qb.where((group) => {
      plan.conditions.forEach((c, i) => {
        const apply = (b: Knex.QueryBuilder) => {
          applyCondition(b, c, vs[i], values, starts[i]);
        };
        if (plan.logic === 'or') group.orWhere(apply);
        else group.where(apply);
      });
    });
  }
  // The longest prefix wins: it orders before any explicit orderBy.
  plan.conditions.forEach((c) => {
    if (c.operator === 'isLongestPrefixMatchOf') qb.orderByRaw('length(CAST(?? AS text)) DESC', [c.column.id]);
  });
  for (const o of plan.orderBy) qb.orderBy(o.id, o.direction);

  if (offset) qb.offset(offset);
  if (limit !== undefined) qb.limit(limit);
  return qb;
}

/** One condition; its bindings are values[at…] (already converted, or Slots). */
function applyCondition(b: Knex.QueryBuilder, c: ConditionPlan, v: ConditionVariant, values: readonly unknown[], at: number): void {
  const { column: col, operator: op } = c;
  // Text operators on a non-text column compare its text form.
  const asText = col.kind === 'text' ? '??' : 'CAST(?? AS text)';
  if (op === 'exists') {
    b.whereNotNull(col.id);
    return;
  }
  if (op === 'doesNotExist') {
    b.whereNull(col.id);
    return;
  }
  if (op === 'in') {
    b.whereIn(col.id, values.slice(at, at + v.present) as Knex.Value[]);
    if (v.withNull) b.orWhereNull(col.id);
    return;
  }
  if (v.never) {
    b.whereRaw('false');
    return;
  } // a NUL in the value: no stored text can match it
  if (v.absent) {
    if (op === 'is') b.whereNull(col.id);
    else if (op === 'isNot') b.whereNotNull(col.id);
    else b.whereRaw('false'); // nothing is greater than, contains, or matches an absent value
    return;
  }
  const value = values[at] as Knex.Value;
  switch (op) {
    case 'is':
      b.where(col.id, '=', value);
      return;
    case 'isNot':
      b.where(col.id, '<>', value);
      return;
    case 'contains':
    case 'startsWith':
    case 'endsWith':
      b.whereRaw(`${asText} LIKE ?`, [col.id, value]);
      return;
    case 'doesNotContain':
      b.whereRaw(`${asText} NOT LIKE ?`, [col.id, value]);
      return;
    case 'matches':
      b.whereRaw(`${asText} ~ ?`, [col.id, value]);
      return;
    case 'isLongestPrefixMatchOf':
      b.whereRaw(`starts_with(?, ${asText})`, [value, col.id]);
      return;
    default: {
      const sqlOp = COMPARISONS[op];
      if (!sqlOp) throw invalid(`${c.where}: unknown operator`);
      b.where(col.id, sqlOp, value);
    }
  }
}
