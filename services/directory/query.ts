/**
 * The directory adapter behind `query.queryDatabaseGeneric`: turns a structured DirectoryQuery
 * into SQL with knex only. Every table and column is checked against the introspected schema and
 * passed to knex as an identifier; every value is a binding. Nothing from a flow or a call is
 * ever concatenated into SQL text.
 */
import { createHash } from 'crypto';
import type { Knex } from 'knex';
import type { RecordRow, Scalar } from '../../engine/types';
import {
  DirectoryError, DirectoryOperator, DirectoryPort, DirectoryQuery, DirectorySchema,
} from './types';
import { createSchemaCache } from './schema';
import { toDirectoryError } from './errors';
import { isPgClient } from './connect';

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

/** Everything about a query that does not depend on its values; cached per query shape. */
interface Plan {
  from: string;
  joinMethod: 'innerJoin' | 'leftJoin' | 'rightJoin' | 'fullOuterJoin';
  joins: JoinPlan[];
  select: Array<{ alias: string; id: string; ref: string }>;
  conditions: Array<{ column: Column; operator: DirectoryOperator }>;
  logic: 'and' | 'or';
  orderBy: Array<{ id: string; direction: 'asc' | 'desc' }>;
}

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
/** On an unknown table/column, re-read the schema (a table may have been added) at most this often. */
const SCHEMA_RETRY_INTERVAL_MS = 10_000;

export interface Directory extends DirectoryPort {
  /** Re-reads the schema after DDL; cached query plans are dropped. */
  refreshSchema(): Promise<DirectorySchema>;
  /** Closes the database (the knex instance given to createDirectory). */
  close(): Promise<void>;
}

export function createDirectory(knex: Knex): Directory {
  const schemaCache = createSchemaCache(knex);
  const plans = new Map<string, Plan>();
  // Named statements make `pg` parse each query shape once per connection (the auth lookup runs on
  // every REGISTER). PGlite is in-process, so there is nothing to save there.
  const namedStatements = isPgClient(knex);

  async function planFor(q: DirectoryQuery): Promise<Plan> {
    const key = shapeKey(q);
    const cached = plans.get(key);
    if (cached) return cached;
    let plan: Plan;
    try {
      plan = compile(q, await schemaCache.get());
    } catch (err) {
      if (!(err instanceof DirectoryError) || Date.now() - schemaCache.loadedAt < SCHEMA_RETRY_INTERVAL_MS) throw err;
      plans.clear();
      plan = compile(q, await schemaCache.refresh());
    }
    if (plans.size >= PLAN_CACHE_MAX) plans.clear();
    plans.set(key, plan);
    return plan;
  }

  return {
    async query(q) {
      const plan = await planFor(q);
      const builder = build(knex, plan, q);
      if (namedStatements) {
        const sql = builder.toSQL().sql;
        builder.options({ name: `sipflow_dir_${createHash('sha1').update(sql).digest('hex').slice(0, 24)}` });
      }
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
    },
    schema: () => schemaCache.get(),
    async refreshSchema() {
      plans.clear();
      return schemaCache.refresh();
    },
    close: () => knex.destroy(),
  };
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

  const conditions = (q.conditions ?? []).map((c, i) => {
    if (!OPERATORS.has(c.operator)) throw invalid(`conditions[${i}] has unknown operator "${String(c.operator)}"`);
    return { column: column(c.field, `conditions[${i}].field`), operator: c.operator };
  });

  const orderBy = (q.orderBy ?? []).map((o, i) => {
    const direction = (o.direction ?? 'asc').toLowerCase();
    if (direction !== 'asc' && direction !== 'desc') throw invalid(`orderBy[${i}] has unknown direction "${o.direction}"`);
    return { id: column(o.field, `orderBy[${i}].field`).id, direction: direction as 'asc' | 'desc' };
  });

  return { from: tables[0], joinMethod, joins, select, conditions, logic: q.logic ?? 'and', orderBy };
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

// ---------------------------------------------------------------- build (with values)

function build(knex: Knex, plan: Plan, q: DirectoryQuery): Knex.QueryBuilder {
  const qb = knex.from(plan.from);
  for (const j of plan.joins) {
    qb[plan.joinMethod](j.table, function (this: Knex.JoinClause) {
      j.on.forEach((c, i) => (i === 0 ? this.on(c.left, c.op, c.right) : this.andOn(c.left, c.op, c.right)));
    });
  }
  if (plan.select.length > 0) qb.select(plan.select.map((s) => ({ [s.alias]: s.id })));
  else qb.select(knex.raw('1 as ??', ['c_'])); // no fields: the caller only wants to know whether rows exist

  if (plan.conditions.length > 0) {
    qb.where((group) => {
      plan.conditions.forEach((c, i) => {
        const apply = (b: Knex.QueryBuilder) => { applyCondition(b, c.column, c.operator, q.conditions[i].value, i); };
        if (plan.logic === 'or') group.orWhere(apply); else group.where(apply);
      });
    });
  }
  // The longest prefix wins: it orders before any explicit orderBy.
  plan.conditions.forEach((c) => {
    if (c.operator === 'isLongestPrefixMatchOf') qb.orderByRaw('length(CAST(?? AS text)) DESC', [c.column.id]);
  });
  for (const o of plan.orderBy) qb.orderBy(o.id, o.direction);

  const offset = count(q.offset, 'offset');
  if (offset) qb.offset(offset);
  if (q.limit !== undefined && q.limit !== null) qb.limit(count(q.limit, 'limit') ?? 0);
  return qb;
}

function count(v: unknown, what: string): number | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  const n = typeof v === 'string' ? Number(v.trim()) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0) throw invalid(`${what} must be a non-negative integer`);
  return n;
}

function applyCondition(b: Knex.QueryBuilder, col: Column, op: DirectoryOperator, value: Scalar | Scalar[], i: number): void {
  const where = `conditions[${i}] (${col.ref} ${op})`;
  // Text operators on a non-text column compare its text form.
  const asText = col.kind === 'text' ? '??' : 'CAST(?? AS text)';
  if (op === 'exists') { b.whereNotNull(col.id); return; }
  if (op === 'doesNotExist') { b.whereNull(col.id); return; }
  if (op === 'in') {
    const list = Array.isArray(value) ? value : [value];
    const present = list.filter((v) => v !== null && v !== undefined).map((v) => convert(v, col, where));
    b.whereIn(col.id, present);
    if (present.length < list.length) b.orWhereNull(col.id);
    return;
  }
  if (Array.isArray(value)) throw invalid(`${where} takes a single value, not a list`);
  if (value === null || value === undefined) {
    if (op === 'is') b.whereNull(col.id);
    else if (op === 'isNot') b.whereNotNull(col.id);
    else b.whereRaw('false'); // nothing is greater than, contains, or matches an absent value
    return;
  }
  switch (op) {
    case 'is': b.where(col.id, '=', convert(value, col, where)); return;
    case 'isNot': b.where(col.id, '<>', convert(value, col, where)); return;
    case 'contains': b.whereRaw(`${asText} LIKE ?`, [col.id, `%${escapeLike(String(value))}%`]); return;
    case 'doesNotContain': b.whereRaw(`${asText} NOT LIKE ?`, [col.id, `%${escapeLike(String(value))}%`]); return;
    case 'startsWith': b.whereRaw(`${asText} LIKE ?`, [col.id, `${escapeLike(String(value))}%`]); return;
    case 'endsWith': b.whereRaw(`${asText} LIKE ?`, [col.id, `%${escapeLike(String(value))}`]); return;
    case 'matches': b.whereRaw(`${asText} ~ ?`, [col.id, String(value)]); return;
    case 'isLongestPrefixMatchOf': b.whereRaw(`starts_with(?, ${asText})`, [String(value), col.id]); return;
    default: {
      const sqlOp = COMPARISONS[op];
      if (!sqlOp) throw invalid(`${where}: unknown operator`);
      b.where(col.id, sqlOp, convert(value, col, where));
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
