/**
 * Query plans: everything about a directory query that does not depend on its values.
 *
 * Why: a flow's query names tables, columns, joins and operators as text; each must be checked
 * against the introspected schema (only what exists can be read, and every identifier reaches SQL
 * through knex as an identifier, never as text). Doing that once per query SHAPE instead of once
 * per query is what makes the REGISTER path cheap.
 *
 * Contract: `compilePlan(q, schema)` resolves every table and column the query names and returns
 * a Plan, or throws DirectoryError('invalid') naming the first problem (its position in the query,
 * never a value). A Plan depends only on `shapeKey(q)` and the schema; it also holds the
 * Statements compiled for its variants (build.ts), filled by the caller.
 *
 * Limits: a plan is as good as the schema it was checked against; callers drop their plans when
 * the schema is re-read (plan-cache.ts).
 */
import { LRUCache } from 'lru-cache';
import { DirectoryError, type DirectoryOperator, type DirectoryQuery, type DirectorySchema } from './types';
import type { Prepared } from './build';
import type { VariantKey } from './bind';

export type ColumnKind = 'boolean' | 'number' | 'text' | 'other';

export interface Column {
  /** As the flow wrote it: `customers.password`. */
  ref: string;
  /** `registration.customers` */
  table: string;
  /** Fully qualified identifier for knex: `registration.customers.password`. */
  id: string;
  type: string;
  kind: ColumnKind;
}

export interface JoinPlan {
  table: string;
  on: Array<{ left: string; op: string; right: string }>;
}

/** How a condition takes its value: not at all (exists), as a list (in), or as one value. */
export type Takes = 'nothing' | 'list' | 'one';

export interface ConditionPlan {
  column: Column;
  operator: DirectoryOperator;
  takes: Takes;
  /** `conditions[0] (customers.username is)`, for messages. */
  where: string;
}

/** Everything about a query that does not depend on its values; cached per query shape. */
export interface Plan {
  from: string;
  joinMethod: 'innerJoin' | 'leftJoin' | 'rightJoin' | 'fullOuterJoin';
  joins: JoinPlan[];
  select: Array<{ alias: string; id: string; ref: string }>;
  /** The flow's column reference of each selected column, in select order (the records' keys). */
  refs: string[];
  conditions: ConditionPlan[];
  logic: 'and' | 'or';
  orderBy: Array<{ id: string; direction: 'asc' | 'desc' }>;
  /**
   * Compiled statements by variant (the value-dependent part of the shape, bind.ts): at most
   * STATEMENTS_PER_PLAN_MAX, least recently used dropped (then compiled again when needed).
   */
  statements: LRUCache<VariantKey, Prepared>;
}

/** Variants (null values, `in` list lengths, offset/limit) kept per plan; past it they are recompiled. */
export const STATEMENTS_PER_PLAN_MAX = 64;

const JOIN_METHODS: Record<DirectoryQuery['joinType'], Plan['joinMethod']> = {
  JOIN: 'innerJoin',
  'INNER JOIN': 'innerJoin',
  'LEFT JOIN': 'leftJoin',
  'RIGHT JOIN': 'rightJoin',
  'FULL JOIN': 'fullOuterJoin',
};
const JOIN_OPERATORS: Record<string, string> = {
  is: '=',
  isNot: '<>',
  lessThan: '<',
  lessOrEqual: '<=',
  greaterThan: '>',
  greaterOrEqual: '>=',
};
const OPERATORS = new Set<DirectoryOperator>([
  'is',
  'isNot',
  'exists',
  'doesNotExist',
  'contains',
  'doesNotContain',
  'startsWith',
  'endsWith',
  'greaterThan',
  'greaterOrEqual',
  'lessThan',
  'lessOrEqual',
  'in',
  'matches',
  'isLongestPrefixMatchOf',
]);
const NUMERIC_TYPES = new Set(['smallint', 'integer', 'bigint', 'numeric', 'decimal', 'real', 'double precision']);
const TEXT_TYPES = new Set(['text', 'character varying', 'character', 'char', 'name', 'citext']);

/** The key of a query's shape: equal keys, equal plans (for one schema). */
export function shapeKey(q: DirectoryQuery): string {
  return JSON.stringify([q.tables, q.fields, q.joins, q.joinType, q.logic, q.orderBy, (q.conditions ?? []).map((c) => [c.field, c.operator])]);
}

export function invalid(message: string): DirectoryError {
  return new DirectoryError(`directory query: ${message}`, 'invalid');
}

/** Resolves and checks everything a query names; throws DirectoryError('invalid') on the first problem. */
export function compilePlan(q: DirectoryQuery, schema: DirectorySchema): Plan {
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
    if (existing) {
      existing.on.push(on);
      return;
    }
    const hasLeft = inQuery.has(left.table);
    const hasRight = inQuery.has(right.table);
    if (hasLeft && hasRight) {
      throw invalid(
        `joins[${i}] (${j.left} ${j.operator} ${j.right}): both tables are already in the query; ` + 'put this condition right after the join between them',
      );
    }
    if (!hasLeft && !hasRight) {
      throw invalid(
        `joins[${i}] (${j.left} ${j.operator} ${j.right}): the left table ${left.table} must already ` +
          `be in the query (the first table, ${tables[0]}, or one joined before)`,
      );
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

  return {
    from: tables[0],
    joinMethod,
    joins,
    select,
    conditions,
    logic: q.logic ?? 'and',
    orderBy,
    refs: select.map((s) => s.ref),
    statements: new LRUCache<VariantKey, Prepared>({ max: STATEMENTS_PER_PLAN_MAX }),
  };
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
  const candidates = parts.length === 3 ? tables.filter((t) => t === tableName) : tables.filter((t) => t.slice(t.indexOf('.') + 1) === tableName);
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
