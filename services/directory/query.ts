/**
 * The directory adapter behind `query.queryDatabaseGeneric`: turns a structured DirectoryQuery
 * into SQL with knex only. Every table and column is checked against the introspected schema and
 * passed to knex as an identifier; every value is a binding. Nothing from a flow or a call is
 * ever concatenated into SQL text.
 *
 * Each query shape is compiled once (statement.ts): knex generates its SQL from the checked plan
 * with placeholders for the values, and later queries of that shape only convert their values and
 * run the stored statement (a named prepared statement on PostgreSQL). `mode: 'builder'` keeps the
 * former path, where knex builds and compiles every query.
 */
import type { Knex } from 'knex';
import type { RecordRow, Scalar } from '../../engine/types';
import {
  DirectoryError, DirectoryOperator, DirectoryPort, DirectoryQuery, DirectorySchema,
} from './types';
import { createSchemaCache } from './schema';
import { toDirectoryError } from './errors';
import { isPgClient } from './connect';
import { coalescing } from './coalesce';
import {
  Execute, LIMIT_SENTINEL, OFFSET_SENTINEL, Slot, Statement, bindingsOf, isPgliteClient, pgExecute, pgliteExecute,
  statementName, toStatement,
} from './statement';

type ColumnKind = 'boolean' | 'number' | 'text' | 'other';

interface Column {
  /** As the flow wrote it: `customers.password`. */
  ref: string;
  /** `registration.customers` */
  table: string;
  /** Fully qualified identifier for knex: `registration.customers.password`. */
  id: string;
  type: string;
  kind: ColumnKind;
}

interface JoinPlan { table: string; on: Array<{ left: string; op: string; right: string }> }

/** How a condition takes its value: not at all (exists), as a list (in), or as one value. */
type Takes = 'nothing' | 'list' | 'one';

interface ConditionPlan {
  column: Column;
  operator: DirectoryOperator;
  takes: Takes;
  /** `conditions[0] (customers.username is)`, for messages. */
  where: string;
}

/** Everything about a query that does not depend on its values; cached per query shape. */
interface Plan {
  from: string;
  joinMethod: 'innerJoin' | 'leftJoin' | 'rightJoin' | 'fullOuterJoin';
  joins: JoinPlan[];
  select: Array<{ alias: string; id: string; ref: string }>;
  conditions: ConditionPlan[];
  logic: 'and' | 'or';
  orderBy: Array<{ id: string; direction: 'asc' | 'desc' }>;
  /**
   * Compiled statements by the value-dependent part of the shape (see `bind`); null: knex could
   * not be mapped onto a statement for it, build that variant per query.
   */
  statements: Map<number | string, Statement | null>;
}

/** The value-dependent part of a condition's SQL. */
interface ConditionVariant {
  /** A single value that is null/undefined (IS NULL, IS NOT NULL, or false). */
  absent: boolean;
  /** A single value holding a NUL (see hasNul): the condition is false. */
  never: boolean;
  /** `in`: how many non-null elements, and whether a null element adds OR … IS NULL. */
  present: number;
  withNull: boolean;
}

/**
 * A NUL character cannot be sent as text to PostgreSQL or PGlite ("invalid byte sequence for
 * encoding UTF8: 0x00", an error that used to end the logic in a 500) and no text stored there can
 * hold one. So a condition whose value holds a NUL matches no row, whatever its operator
 * (`isNot` and `doesNotContain` included: fail closed), without the value reaching the database;
 * in an `in` list such an element matches nothing and the others still count.
 */
const hasNul = (v: unknown): boolean => typeof v === 'string' && v.indexOf('\u0000') >= 0;

/** A query's values converted for its column types, in condition order, and its variant key. */
interface Bound { key: number | string; values: unknown[] }

const JOIN_METHODS: Record<DirectoryQuery['joinType'], Plan['joinMethod']> = {
  'JOIN': 'innerJoin', 'INNER JOIN': 'innerJoin', 'LEFT JOIN': 'leftJoin',
  'RIGHT JOIN': 'rightJoin', 'FULL JOIN': 'fullOuterJoin',
};
const JOIN_OPERATORS: Record<string, string> = {
  is: '=', isNot: '<>', lessThan: '<', lessOrEqual: '<=', greaterThan: '>', greaterOrEqual: '>=',
};
const COMPARISONS: Partial<Record<DirectoryOperator, string>> = {
  greaterThan: '>', greaterOrEqual: '>=', lessThan: '<', lessOrEqual: '<=',
};
const OPERATORS = new Set<DirectoryOperator>([
  'is', 'isNot', 'exists', 'doesNotExist', 'contains', 'doesNotContain', 'startsWith', 'endsWith',
  'greaterThan', 'greaterOrEqual', 'lessThan', 'lessOrEqual', 'in', 'matches', 'isLongestPrefixMatchOf',
]);
const NUMERIC_TYPES = new Set(['smallint', 'integer', 'bigint', 'numeric', 'decimal', 'real', 'double precision']);
const TEXT_TYPES = new Set(['text', 'character varying', 'character', 'char', 'name', 'citext']);

const PLAN_CACHE_MAX = 1000;
/** Variants (null values, `in` list lengths, offset/limit) kept per plan; past it they are recompiled. */
const STATEMENTS_PER_PLAN_MAX = 64;
/** Plans kept per stable query object (its condition lists may differ when `or` drops null conditions). */
const PLANS_PER_SHAPE_MAX = 8;
/** On an unknown table/column, re-read the schema (a table may have been added) at most this often. */
const SCHEMA_RETRY_INTERVAL_MS = 10_000;
const DEFAULT_QUERY_TIMEOUT_MS = 10_000;

export interface DirectoryOptions {
  /**
   * 'prepared' (default): each query shape is compiled by knex once, then run as a prepared
   * statement. 'builder': knex builds and compiles every query (the former path; for comparison).
   */
  mode?: 'prepared' | 'builder';
  /**
   * PostgreSQL (`pg`), prepared mode: a query not answered within this many ms fails as
   * DirectoryError('unavailable') and its connection is discarded. Default 10000; 0 = no limit.
   */
  queryTimeoutMs?: number;
  /**
   * PostgreSQL, prepared mode: queries of one statement waiting together go out as one statement
   * (coalesce.ts). Default true.
   */
  coalesce?: boolean;
}

export interface Directory extends DirectoryPort {
  /** Re-reads the schema after DDL; cached query plans are dropped. */
  refreshSchema(): Promise<DirectorySchema>;
  /** Closes the database (the knex instance given to createDirectory). */
  close(): Promise<void>;
}

/**
 * The static part of a query object as last seen, keyed by its `fields` array: the query node
 * builds its queries as `{ ...base, conditions }`, so tables, fields, joins and orderBy are the same
 * arrays every time. Their contents are compared with this copy (cheap, and safe against a caller
 * reusing an array with new contents), then the condition list with the plans' own.
 */
interface ShapeEntry {
  generation: number;
  tables: unknown[];
  fields: unknown[];
  /** left, operator, right of each join */
  joins: unknown[];
  /** field, direction of each orderBy entry */
  orderBy: unknown[];
  joinType: unknown;
  logic: unknown;
  plans: Plan[];
}

const NONE: readonly never[] = [];

export function createDirectory(knex: Knex, options: DirectoryOptions = {}): Directory {
  const schemaCache = createSchemaCache(knex);
  const plans = new Map<string, Plan>();
  let shapes = new WeakMap<object, ShapeEntry>();
  /** Bumped whenever cached plans may no longer match the schema. */
  let generation = 0;
  // Named statements make `pg` parse each query shape once per connection (the auth lookup runs on
  // every REGISTER). PGlite is in-process, so there is nothing to save there.
  const namedStatements = isPgClient(knex);
  const execute: Execute | undefined = options.mode === 'builder' || (knex.client as { config?: { postProcessResponse?: unknown } }).config?.postProcessResponse
    ? undefined
    : namedStatements
      ? (options.coalesce === false ? pgExecute(knex, options.queryTimeoutMs ?? DEFAULT_QUERY_TIMEOUT_MS)
        : coalescing(knex, pgExecute(knex, options.queryTimeoutMs ?? DEFAULT_QUERY_TIMEOUT_MS)))
      : isPgliteClient(knex) ? pgliteExecute(knex) : undefined;

  function dropPlans(): void {
    plans.clear();
    shapes = new WeakMap();
    generation++;
  }

  async function planFor(q: DirectoryQuery): Promise<Plan> {
    const key = shapeKey(q);
    const cached = plans.get(key);
    if (cached) return cached;
    let plan: Plan;
    try {
      plan = compile(q, await schemaCache.get());
    } catch (err) {
      if (!(err instanceof DirectoryError) || Date.now() - schemaCache.loadedAt < SCHEMA_RETRY_INTERVAL_MS) throw err;
      dropPlans();
      plan = compile(q, await schemaCache.refresh());
    }
    if (plans.size >= PLAN_CACHE_MAX) plans.clear();
    plans.set(key, plan);
    return plan;
  }

  /** The plan of a query object seen before, without building a key; undefined when not (or changed). */
  function knownPlan(q: DirectoryQuery): Plan | undefined {
    const fields = q.fields as unknown;
    if (!Array.isArray(fields)) return undefined;
    const e = shapes.get(fields);
    if (e === undefined || e.generation !== generation || !sameStatic(e, q)) return undefined;
    const cs = q.conditions ?? NONE;
    for (const p of e.plans) if (sameConditions(p, cs)) return p;
    return undefined;
  }

  function remember(q: DirectoryQuery, plan: Plan, gen: number): void {
    const fields = q.fields as unknown;
    if (!Array.isArray(fields) || gen !== generation) return;
    let e = shapes.get(fields);
    if (e === undefined || e.generation !== generation || !sameStatic(e, q)) {
      e = snapshot(q, generation);
      shapes.set(fields, e);
    }
    if (!e.plans.includes(plan)) {
      e.plans.unshift(plan);
      if (e.plans.length > PLANS_PER_SHAPE_MAX) e.plans.pop();
    }
  }

  /** The former path: knex builds, compiles and runs the query (named on `pg`). */
  async function viaBuilder(plan: Plan, q: DirectoryQuery, bound: Bound, limit: number | undefined, offset: number | undefined): Promise<RecordRow[]> {
    const builder = build(knex, plan, variants(plan, q), bound.values, offset, limit);
    if (namedStatements) builder.options({ name: statementName(builder.toSQL().sql) });
    let rows: Array<Record<string, unknown>>;
    try {
      rows = await builder;
    } catch (err) {
      throw toDirectoryError(err);
    }
    return rows.map((row) => {
      const out: RecordRow = {};
      for (const s of plan.select) out[s.ref] = toScalar(row[s.alias]);
      return out;
    });
  }

  return {
    async query(q) {
      let plan = execute ? knownPlan(q) : undefined;
      if (plan === undefined) {
        const gen = generation;
        plan = await planFor(q);
        if (execute) remember(q, plan, gen);
      }
      const offset = count(q.offset, 'offset') || undefined;
      const limit = q.limit !== undefined && q.limit !== null ? count(q.limit, 'limit') ?? 0 : undefined;
      const bound = bind(plan, q, limit !== undefined, offset !== undefined);
      if (execute === undefined) return viaBuilder(plan, q, bound, limit, offset);

      let st = plan.statements.get(bound.key);
      if (st === undefined) {
        st = prepare(knex, plan, q, bound.values.length, limit !== undefined, offset !== undefined);
        if (plan.statements.size >= STATEMENTS_PER_PLAN_MAX) plan.statements.clear();
        plan.statements.set(bound.key, st);
      }
      if (st === null) return viaBuilder(plan, q, bound, limit, offset);

      const rows = await execute(st, bindingsOf(st, bound.values, limit, offset));
      const select = plan.select;
      const out = new Array<RecordRow>(rows.length);
      for (let r = 0; r < rows.length; r++) {
        const row = rows[r];
        const o: RecordRow = {};
        for (let i = 0; i < select.length; i++) o[select[i].ref] = toScalar(row[i]);
        out[r] = o;
      }
      return out;
    },
    schema: () => schemaCache.get(),
    async refreshSchema() {
      dropPlans();
      return schemaCache.refresh();
    },
    close: () => knex.destroy(),
  };
}

// ---------------------------------------------------------------- shape identity

function snapshot(q: DirectoryQuery, generation: number): ShapeEntry {
  const joins: unknown[] = [];
  for (const j of q.joins ?? NONE) joins.push(j?.left, j?.operator, j?.right);
  const orderBy: unknown[] = [];
  for (const o of q.orderBy ?? NONE) orderBy.push(o?.field, o?.direction);
  return {
    generation, tables: [...q.tables], fields: [...q.fields], joins, orderBy, joinType: q.joinType, logic: q.logic, plans: [],
  };
}

function sameList(copy: readonly unknown[], list: readonly unknown[]): boolean {
  if (!Array.isArray(list) || list.length !== copy.length) return false;
  for (let i = 0; i < copy.length; i++) if (copy[i] !== list[i]) return false;
  return true;
}

function sameStatic(e: ShapeEntry, q: DirectoryQuery): boolean {
  if (e.joinType !== q.joinType || e.logic !== q.logic || !sameList(e.fields, q.fields) || !sameList(e.tables, q.tables)) return false;
  const joins = q.joins ?? NONE;
  if (!Array.isArray(joins) || joins.length * 3 !== e.joins.length) return false;
  for (let i = 0, k = 0; i < joins.length; i++, k += 3) {
    const j = joins[i];
    if (j?.left !== e.joins[k] || j?.operator !== e.joins[k + 1] || j?.right !== e.joins[k + 2]) return false;
  }
  const orderBy = q.orderBy ?? NONE;
  if (!Array.isArray(orderBy) || orderBy.length * 2 !== e.orderBy.length) return false;
  for (let i = 0, k = 0; i < orderBy.length; i++, k += 2) {
    const o = orderBy[i];
    if (o?.field !== e.orderBy[k] || o?.direction !== e.orderBy[k + 1]) return false;
  }
  return true;
}

function sameConditions(plan: Plan, cs: DirectoryQuery['conditions']): boolean {
  const pc = plan.conditions;
  if (!Array.isArray(cs) || cs.length !== pc.length) return false;
  for (let i = 0; i < pc.length; i++) {
    const c = cs[i];
    if (c?.field !== pc[i].column.ref || c?.operator !== pc[i].operator) return false;
  }
  return true;
}

// ---------------------------------------------------------------- compile (shape only)

function shapeKey(q: DirectoryQuery): string {
  return JSON.stringify([q.tables, q.fields, q.joins, q.joinType, q.logic, q.orderBy,
    (q.conditions ?? []).map((c) => [c.field, c.operator])]);
}

function invalid(message: string): DirectoryError {
  return new DirectoryError(`directory query: ${message}`, 'invalid');
}

/** Resolves and checks everything a query names; throws DirectoryError('invalid') on the first problem. */
function compile(q: DirectoryQuery, schema: DirectorySchema): Plan {
  if (!Array.isArray(q.tables) || q.tables.length === 0) throw invalid('names no table');
  const tables = q.tables.map((t, i) => resolveTable(t, schema, `tables[${i}]`));
  if (new Set(tables).size !== tables.length) throw invalid(`tables lists a table twice (${q.tables.join(', ')})`);
  const column = (ref: unknown, where: string) => resolveColumn(ref, tables, schema, where);

  const joinMethod = JOIN_METHODS[q.joinType ?? 'JOIN'];
  if (!joinMethod) throw invalid(`unknown joinType "${String(q.joinType)}"`);
  if (q.logic !== undefined && q.logic !== 'and' && q.logic !== 'or') throw invalid(`unknown logic "${String(q.logic)}"`);

  // FROM the first table; each join brings in the one of its two tables not yet in the query.
  // Several joins between the same two tables are one JOIN with several ON conditions.
  const inQuery = new Set([tables[0]]);
  const joins: JoinPlan[] = [];
  const joinByPair = new Map<string, JoinPlan>();
  (q.joins ?? []).forEach((j, i) => {
    const left = column(j.left, `joins[${i}].left`);
    const right = column(j.right, `joins[${i}].right`);
    const op = JOIN_OPERATORS[j.operator];
    if (!op) throw invalid(`joins[${i}] has unknown operator "${String(j.operator)}"`);
    if (left.table === right.table) throw invalid(`joins[${i}] compares two columns of ${left.table}`);
    const pair = [left.table, right.table].sort().join(' ');
    const on = { left: left.id, op, right: right.id };
    const existing = joinByPair.get(pair);
    if (existing) { existing.on.push(on); return; }
    const hasLeft = inQuery.has(left.table);
    const hasRight = inQuery.has(right.table);
    if (hasLeft && hasRight) {
      throw invalid(`joins[${i}] (${j.left} ${j.operator} ${j.right}): both tables are already in the query; ` +
        'put this condition right after the join between them');
    }
    if (!hasLeft && !hasRight) {
      throw invalid(`joins[${i}] (${j.left} ${j.operator} ${j.right}): the left table ${left.table} must already ` +
        `be in the query (the first table, ${tables[0]}, or one joined before)`);
    }
    const plan: JoinPlan = { table: hasLeft ? right.table : left.table, on: [on] };
    inQuery.add(plan.table);
    joinByPair.set(pair, plan);
    joins.push(plan);
  });
  // A table that is listed but never joined would silently make a Cartesian product.
  for (const t of tables) if (!inQuery.has(t)) throw invalid(`table ${t} is listed but not joined to ${tables[0]}`);

  if (!Array.isArray(q.fields)) throw invalid('fields must be a list of table.column');
  const select = q.fields.map((f, i) => ({ alias: `c${i}`, id: column(f, `fields[${i}]`).id, ref: f }));

  const conditions = (q.conditions ?? []).map((c, i): ConditionPlan => {
    if (!OPERATORS.has(c.operator)) throw invalid(`conditions[${i}] has unknown operator "${String(c.operator)}"`);
    const col = column(c.field, `conditions[${i}].field`);
    const takes: Takes = c.operator === 'exists' || c.operator === 'doesNotExist' ? 'nothing' : c.operator === 'in' ? 'list' : 'one';
    return { column: col, operator: c.operator, takes, where: `conditions[${i}] (${col.ref} ${c.operator})` };
  });

  const orderBy = (q.orderBy ?? []).map((o, i) => {
    const direction = (o.direction ?? 'asc').toLowerCase();
    if (direction !== 'asc' && direction !== 'desc') throw invalid(`orderBy[${i}] has unknown direction "${o.direction}"`);
    return { id: column(o.field, `orderBy[${i}].field`).id, direction: direction as 'asc' | 'desc' };
  });

  return { from: tables[0], joinMethod, joins, select, conditions, logic: q.logic ?? 'and', orderBy, statements: new Map() };
}

/** `registration.customers` must exist; a bare `customers` is accepted when only one schema has it. */
function resolveTable(name: string, schema: DirectorySchema, where: string): string {
  if (typeof name !== 'string') throw invalid(`${where} must be a table name`);
  if (schema[name] && name.includes('.')) return name;
  const matches = name.includes('.') ? [] : Object.keys(schema).filter((t) => t.endsWith(`.${name}`));
  if (matches.length === 1) return matches[0];
  if (matches.length > 1) throw invalid(`${where} names table ${name}, which is ambiguous (${matches.join(', ')})`);
  throw invalid(`${where} names unknown table ${name}`);
}

/** `customers.password` (short table name among the query's tables) or `registration.customers.password`. */
function resolveColumn(ref: unknown, tables: string[], schema: DirectorySchema, where: string): Column {
  if (typeof ref !== 'string' || !/^[^.]+(\.[^.]+){1,2}$/.test(ref)) {
    throw invalid(`${where} must name a column as table.column, got ${JSON.stringify(ref)}`);
  }
  const parts = ref.split('.');
  const columnName = parts[parts.length - 1];
  const tableName = parts.slice(0, -1).join('.');
  const candidates = parts.length === 3
    ? tables.filter((t) => t === tableName)
    : tables.filter((t) => t.slice(t.indexOf('.') + 1) === tableName);
  if (candidates.length === 0) {
    throw invalid(`${where} names ${ref}, but table ${tableName} is not among the query's tables (${tables.join(', ')})`);
  }
  if (candidates.length > 1) {
    throw invalid(`${where} names ${ref}, which is ambiguous (${candidates.join(', ')}): write schema.table.column`);
  }
  const table = candidates[0];
  const type = schema[table]?.[columnName];
  if (type === undefined) throw invalid(`${where} names unknown column ${ref} of ${table}`);
  return { ref, table, id: `${table}.${columnName}`, type, kind: kindOf(type) };
}

function kindOf(type: string): ColumnKind {
  if (type === 'boolean') return 'boolean';
  if (NUMERIC_TYPES.has(type)) return 'number';
  if (TEXT_TYPES.has(type)) return 'text';
  return 'other';
}

// ---------------------------------------------------------------- values

/**
 * Converts a query's values for their columns (throwing DirectoryError('invalid') in the order the
 * builder always did: condition by condition) and computes the variant key: which single values
 * are null, each `in` list's length and null element, whether there is a limit and an offset.
 * Those are all the ways values change the SQL; the values themselves are only ever bindings.
 */
function bind(plan: Plan, q: DirectoryQuery, hasLimit: boolean, hasOffset: boolean): Bound {
  const values: unknown[] = [];
  let key = (hasLimit ? 1 : 0) | (hasOffset ? 2 : 0);
  let more = '';
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
        else if (!hasNul(v)) { values.push(convert(v, c.column, c.where)); present++; }
      }
      more += `${i}:${present}${withNull ? 'n' : ''},`;
      continue;
    }
    if (Array.isArray(value)) throw invalid(`${c.where} takes a single value, not a list`);
    if (value === null || value === undefined) {
      if (i < 28) key |= 4 << i; else more += `${i}:-,`;
    } else if (hasNul(value)) {
      more += `${i}:0,`;
    } else {
      values.push(bindingOf(c, value));
    }
  }
  return { key: more === '' ? key : `${key}|${more}`, values };
}

/** The binding of a single-value condition: the converted value, or the LIKE pattern. */
function bindingOf(c: ConditionPlan, value: Scalar): unknown {
  switch (c.operator) {
    case 'contains': case 'doesNotContain': return `%${escapeLike(String(value))}%`;
    case 'startsWith': return `${escapeLike(String(value))}%`;
    case 'endsWith': return `%${escapeLike(String(value))}`;
    case 'matches': case 'isLongestPrefixMatchOf': return String(value);
    default: return convert(value, c.column, c.where);
  }
}

/** Per condition, the value-dependent part of its SQL (after `bind` accepted the values). */
function variants(plan: Plan, q: DirectoryQuery): ConditionVariant[] {
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

// ---------------------------------------------------------------- build (knex)

/**
 * Compiles one variant of a plan into a Statement: knex builds it with Slots for the values and
 * sentinels for limit/offset. Null when the compiled bindings cannot be mapped back (then that
 * variant is built with knex per query).
 */
function prepare(knex: Knex, plan: Plan, q: DirectoryQuery, valueCount: number, hasLimit: boolean, hasOffset: boolean): Statement | null {
  try {
    const slots = Array.from({ length: valueCount }, (_, j) => new Slot(j));
    const compiled = build(knex, plan, variants(plan, q), slots,
      hasOffset ? OFFSET_SENTINEL : undefined, hasLimit ? LIMIT_SENTINEL : undefined).toSQL();
    return toStatement(compiled.toNative(), compiled.sql, valueCount, hasLimit, hasOffset);
  } catch {
    return null;
  }
}

/** The query for a plan, one variant of its conditions and their values (converted, in `bind` order). */
function build(
  knex: Knex, plan: Plan, vs: ConditionVariant[], values: readonly unknown[], offset: number | undefined, limit: number | undefined,
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
    const starts = vs.map((v) => { const at = next; next += v.present; return at; });
    qb.where((group) => {
      plan.conditions.forEach((c, i) => {
        const apply = (b: Knex.QueryBuilder) => { applyCondition(b, c, vs[i], values, starts[i]); };
        if (plan.logic === 'or') group.orWhere(apply); else group.where(apply);
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

function count(v: unknown, what: string): number | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  const n = typeof v === 'string' ? Number(v.trim()) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0) throw invalid(`${what} must be a non-negative integer`);
  return n;
}

/** One condition; its bindings are values[at…] (already converted, or Slots). */
function applyCondition(b: Knex.QueryBuilder, c: ConditionPlan, v: ConditionVariant, values: readonly unknown[], at: number): void {
  const { column: col, operator: op } = c;
  // Text operators on a non-text column compare its text form.
  const asText = col.kind === 'text' ? '??' : 'CAST(?? AS text)';
  if (op === 'exists') { b.whereNotNull(col.id); return; }
  if (op === 'doesNotExist') { b.whereNull(col.id); return; }
  if (op === 'in') {
    b.whereIn(col.id, values.slice(at, at + v.present) as Knex.Value[]);
    if (v.withNull) b.orWhereNull(col.id);
    return;
  }
  if (v.never) { b.whereRaw('false'); return; } // a NUL in the value: no stored text can match it
  if (v.absent) {
    if (op === 'is') b.whereNull(col.id);
    else if (op === 'isNot') b.whereNotNull(col.id);
    else b.whereRaw('false'); // nothing is greater than, contains, or matches an absent value
    return;
  }
  const value = values[at] as Knex.Value;
  switch (op) {
    case 'is': b.where(col.id, '=', value); return;
    case 'isNot': b.where(col.id, '<>', value); return;
    case 'contains': case 'startsWith': case 'endsWith': b.whereRaw(`${asText} LIKE ?`, [col.id, value]); return;
    case 'doesNotContain': b.whereRaw(`${asText} NOT LIKE ?`, [col.id, value]); return;
    case 'matches': b.whereRaw(`${asText} ~ ?`, [col.id, value]); return;
    case 'isLongestPrefixMatchOf': b.whereRaw(`starts_with(?, ${asText})`, [value, col.id]); return;
    default: {
      const sqlOp = COMPARISONS[op];
      if (!sqlOp) throw invalid(`${c.where}: unknown operator`);
      b.where(col.id, sqlOp, value);
    }
  }
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
    case 'text': return typeof v === 'string' ? v : String(v);
    default: return v;
  }
}

function toScalar(v: unknown): Scalar {
  if (v === null || v === undefined) return null;
  if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return v;
  if (typeof v === 'bigint') return Number.isSafeInteger(Number(v)) ? Number(v) : v.toString();
  if (v instanceof Date) return v.toISOString();
  if (Buffer.isBuffer(v) || v instanceof Uint8Array) return Buffer.from(v).toString('base64');
  return JSON.stringify(v);
}
