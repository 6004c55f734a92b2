import { LRUCache } from 'lru-cache';
import { NodeRunError, type NodeType, type ValueGetter } from '../engine/node-type';
import { DB_OPERATORS, listOf } from '../engine/operators';
import { SECRET_COLUMN_PATTERN } from '../engine/secrets';
import type { CdValue, RecordRow, Scalar } from '../engine/types';
import {
  queryOf,
  type AorOwnershipPort,
  type ColumnRef,
  type DirectoryCondition,
  type DirectoryOperator,
  type DirectoryPort,
  type DirectoryQuery,
} from '../engine/ports';
import { anyValue, nodeRef } from './common';

interface Values {
  tables: string[];
  fields: Array<{ field: string; storeInto: string }>;
  joins?: Array<{ leftField: string; operator?: string; rightField: string }>;
  conditions?: Array<{ field: string; operator: DirectoryOperator; value?: unknown }>;
  logic?: 'and' | 'or';
  orderBy?: Array<{ field: string; direction?: 'asc' | 'desc' } | string>;
  offset?: number | string;
  joinType?: DirectoryQuery['joinType'];
  fetch?: 'first' | 'all';
  storeIntoRecordsList?: string;
  ifRecordFound?: number | string;
  ifnoRecordFound?: number | string;
  caching?: number | string;
}

const column = { type: 'string', pattern: '^[A-Za-z_][A-Za-z0-9_]*(\\.[A-Za-z_][A-Za-z0-9_]*){1,2}$', 'x-column': true };
const JOIN_OPERATORS = ['is', 'isNot', 'lessThan', 'lessOrEqual', 'greaterThan', 'greaterOrEqual'];
/**
 * Cached results per node (`caching` > 0): an lru-cache of at most this many entries, least
 * recently used dropped first (a whole subscriber base fits; its index arrays, ≈ 4 MB, are
 * allocated when the node is compiled). Entries live `caching` seconds by the run's clock, and
 * the whole table is forgotten when the directory changes (`ctx.directoryChanges`, bumped by the
 * write paths: services/directory/changes.ts).
 */
const MAX_CACHE_ENTRIES = 100_000;

/** Short table name of a `table.column` (or `schema.table.column`) reference. */
const tableOf = (ref: string): string => {
  const p = ref.split('.');
  return p[p.length - 2];
};
const shortName = (table: string): string => table.split('.').pop()!;

/**
 * Database query (SRE's generic query): reads the directory, stores the first row's fields into
 * variables and optionally all rows into a list variable. SQL is built by the directory adapter
 * with knex, from identifiers checked against the introspected schema.
 */
export const queryDatabaseNode: NodeType<Values> = {
  type: 'query.queryDatabaseGeneric',
  title: 'Database query',
  summary: '{tables|last}{if conditions} where {each conditions " {logic|default:and} "}{field|last} {operator|sym} {value}{end}{end}',
  category: 'query',
  description: 'Queries the directory (tables, joins, conditions incl. longest prefix match) and stores fields into variables.',
  valuesSchema: {
    type: 'object',
    required: ['tables', 'fields'],
    properties: {
      tables: {
        type: 'array',
        minItems: 1,
        description: 'directory tables the query reads (schema.table); the column pickers offer their columns',
        items: { type: 'string', pattern: '^[A-Za-z_][A-Za-z0-9_]*(\\.[A-Za-z_][A-Za-z0-9_]*)?$', 'x-table': true },
      },
      fields: {
        type: 'array',
        description: 'columns to read from the first row found, each into a variable',
        items: {
          type: 'object',
          required: ['field', 'storeInto'],
          // a password / HA1 / secret / token column makes its variable a secret (engine/secrets.ts)
          properties: {
            field: { ...column, description: 'table.column to read' },
            storeInto: {
              type: 'string',
              'x-writes': true,
              title: 'Store into',
              description: 'variable receiving the value',
              'x-secret': { when: 'field', matches: SECRET_COLUMN_PATTERN },
            },
          },
        },
      },
      joins: {
        type: 'array',
        description: 'how the listed tables are tied: left column = right column',
        items: {
          type: 'object',
          required: ['leftField', 'rightField'],
          properties: {
            leftField: { ...column, title: 'Left column', description: 'table.column of one listed table' },
            operator: { type: 'string', enum: JOIN_OPERATORS, description: 'comparison of the two columns' },
            rightField: { ...column, title: 'Right column', description: 'table.column of another listed table' },
          },
        },
      },
      conditions: {
        type: 'array',
        description: 'which rows match: a column compared with a variable or a literal',
        items: {
          type: 'object',
          required: ['field', 'operator'],
          properties: {
            field: { ...column, title: 'Column', description: 'table.column compared' },
            operator: { type: 'string', enum: [...DB_OPERATORS], description: 'isLongestPrefixMatchOf: the longest stored prefix of the value' },
            value: { ...anyValue, description: 'a variable (var) or literal text (abc)' },
          },
        },
      },
      logic: { type: 'string', enum: ['and', 'or'], title: 'Combine conditions with', description: 'and: every condition holds; or: at least one' },
      orderBy: {
        type: 'array',
        title: 'Order by',
        description: 'sort of the rows found (the first one is read)',
        items: {
          type: ['object', 'string'],
          required: ['field'],
          properties: {
            field: { ...column, title: 'Column', description: 'table.column sorted on' },
            direction: { type: 'string', enum: ['asc', 'desc', 'ASC', 'DESC'], description: 'asc (default) or desc' },
          },
        },
      },
      offset: { type: ['integer', 'string'], pattern: '^\\d*$', minimum: 0, description: 'rows skipped before the first one read' },
      joinType: {
        type: 'string',
        enum: ['JOIN', 'INNER JOIN', 'LEFT JOIN', 'RIGHT JOIN', 'FULL JOIN'],
        title: 'Join type',
        description: 'SQL join of the listed tables (JOIN = INNER JOIN)',
      },
      fetch: { type: 'string', enum: ['first', 'all'], description: 'first: the first row only; all: every row into the records list' },
      storeIntoRecordsList: {
        type: 'string',
        'x-writes': true,
        title: 'Store into records list',
        description: 'optional: a list variable receiving every row found (for each row, aggregate column)',
      },
      ifRecordFound: { ...nodeRef, 'x-exit-label': 'found', title: 'If record found', description: 'taken when a row matched' },
      ifnoRecordFound: { ...nodeRef, 'x-exit-label': 'not found', title: 'If no record found', description: 'taken when no row matched' },
      caching: { type: ['number', 'string'], pattern: '^\\d*(\\.\\d+)?$', minimum: 0, description: 'seconds a result is reused (0 = no cache)' },
    },
  },
  check(v) {
    const problems: Array<[string, string]> = [];
    const tables = new Set((v.tables ?? []).map(shortName));
    const known = (ref: unknown, where: string) => {
      if (typeof ref === 'string' && ref.includes('.') && !tables.has(tableOf(ref))) {
        problems.push([where, `table ${tableOf(ref)} is not among the query's tables (${[...tables].join(', ')})`]);
      }
    };
    (v.fields ?? []).forEach((f, i) => known(f?.field, `fields/${i}/field`));
    (v.conditions ?? []).forEach((f, i) => known(f?.field, `conditions/${i}/field`));
    (v.joins ?? []).forEach((j, i) => {
      known(j?.leftField, `joins/${i}/leftField`);
      known(j?.rightField, `joins/${i}/rightField`);
    });
    (v.orderBy ?? []).forEach((o, i) => known(typeof o === 'string' ? o : o?.field, `orderBy/${i}/field`));
    return problems;
  },
  compile(values, c) {
    const fields = values.fields.map((f) => f.field);
    const stores = values.fields.map((f) => f.storeInto);
    const conditions = (values.conditions ?? []).map((cond) => ({ field: cond.field, operator: cond.operator, value: c.value(cond.value) }));
    const base: Omit<DirectoryQuery, 'conditions'> = {
      tables: values.tables,
      fields,
      joins: (values.joins ?? []).map((j) => ({
        left: j.leftField,
        operator: (j.operator ?? 'is') as DirectoryQuery['joins'][number]['operator'],
        right: j.rightField,
      })),
      joinType: values.joinType ?? 'JOIN',
      logic: values.logic ?? 'and',
      orderBy: (values.orderBy ?? []).map((o) =>
        typeof o === 'string' ? { field: o, direction: 'asc' as const } : { field: o.field, direction: (o.direction ?? 'asc').toLowerCase() as 'asc' | 'desc' },
      ),
      offset: Number(values.offset || 0),
      limit: values.fetch === 'all' ? undefined : 1,
    };
    const listVar = values.storeIntoRecordsList || null;
    const cacheMs = Number(values.caching || 0) * 1000;
    /** The run's clock (ctx.clock), read once per run, is the cache's clock. */
    let clockNow = 0;
    /** The directory revision the cached rows were read at; another one empties the cache. */
    let cachedRevision = 0;
    const cache =
      cacheMs > 0
        ? new LRUCache<string, RecordRow[]>({
            max: MAX_CACHE_ENTRIES,
            ttl: Math.max(1, Math.round(cacheMs)),
            ttlResolution: 0,
            perf: { now: () => clockNow },
          })
        : null;
    /** The fields to read when this query also reads the owned AoR (AorOwnershipPort.alongside), for the context last seen. */
    let alongside: ColumnRef[] | null = null;
    let ownershipSeen: AorOwnershipPort | null | undefined = undefined;
    let directorySeen: DirectoryPort | undefined;
    const found = c.exit('ifRecordFound');
    const notFound = c.exit('ifnoRecordFound');

    const any = base.logic === 'or';
    /**
     * Resolved conditions, or null when no row can match. A condition whose value is null (a
     * missing variable) holds for no row, as in SQL; only exists/doesNotExist test for null. So
     * with `and` the query cannot match and is not sent (the challenge pass of a REGISTER, which
     * has no authUsername yet, costs no round trip); with `or` that condition drops out.
     */
    const resolve = (vars: Record<string, CdValue>): DirectoryCondition[] | null => {
      const out: DirectoryCondition[] = [];
      for (const cond of conditions) {
        const value = conditionValue(cond.operator, cond.value, vars);
        if (value === null && cond.operator !== 'exists' && cond.operator !== 'doesNotExist') {
          if (!any) return null;
          continue;
        }
        out.push({ field: cond.field, operator: cond.operator, value });
      }
      return any && conditions.length > 0 && out.length === 0 ? null : out;
    };

    return async (s) => {
      const resolved = resolve(s.cd.vars);
      if (resolved === null) return notFound;
      let rows: RecordRow[] | undefined;
      const key = cache ? JSON.stringify(resolved) : '';
      let now = 0;
      let revision = 0;
      if (cache) {
        now = s.ctx.clock.now();
        revision = s.ctx.directoryChanges?.revision ?? 0;
        if (revision !== cachedRevision) {
          cache.clear();
          cachedRevision = revision;
        }
        clockNow = now;
        rows = cache.get(key);
      }
      if (!rows) {
        const ownership = s.ctx.ownership;
        if (ownership !== ownershipSeen || s.ctx.directory !== directorySeen) {
          ownershipSeen = ownership;
          directorySeen = s.ctx.directory;
          alongside = ownership?.alongside?.(directorySeen, base, conditions) ?? null;
        }
        if (alongside !== null) {
          // the credentials' row: its owned AoR read in the same statement (services/directory/ownership.ts)
          try {
            rows = await s.ctx.directory.query(queryOf(base, alongside, resolved));
            const username = resolved[0].value;
            if (typeof username === 'string') s.noteOwnedRead(username, ownership!.ownedFrom!(username, rows));
          } catch (err) {
            // a directory without that column (the ownership's own read would fail there too, but a
            // logic that never saves a binding must not): read as the logic asks, from now on
            if (!(err instanceof NodeRunError)) throw err;
            alongside = null;
            rows = await s.ctx.directory.query(queryOf(base, base.fields, resolved));
          }
        } else rows = await s.ctx.directory.query(queryOf(base, base.fields, resolved));
        // not kept when the directory changed while the query ran
        if (cache && revision === (s.ctx.directoryChanges?.revision ?? 0) && revision === cachedRevision) {
          clockNow = now; // the entry lives from when the query was made, as before
          cache.set(key, rows);
        }
      }
      if (rows.length === 0) return notFound;
      const first = rows[0];
      for (let i = 0; i < fields.length; i++) if (stores[i]) s.set(stores[i], first[fields[i]] ?? null);
      if (listVar) {
        s.set(
          listVar,
          rows.map((row) => {
            const out: RecordRow = {};
            for (let i = 0; i < fields.length; i++) out[stores[i] || fields[i]] = row[fields[i]] ?? null;
            return out;
          }),
        );
      }
      return found;
    };
  },
};

/** `in` takes a list; every other operator a single value. */
function conditionValue(operator: DirectoryOperator, get: ValueGetter, vars: Record<string, CdValue>): Scalar | Scalar[] {
  const v = get(vars);
  // the same lists as the engine's `in`: comma list, JSON-array literal, list-of-records variable
  if (operator === 'in') return listOf(v).map((x) => (Array.isArray(x) || (x !== null && typeof x === 'object') ? JSON.stringify(x) : x));
  return Array.isArray(v) ? JSON.stringify(v) : v;
}
