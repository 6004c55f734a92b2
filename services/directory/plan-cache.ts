/**
 * The plans of one directory, cached by query shape, with a fast path keyed on object identity.
 *
 * Why: computing a shape's key (`shapeKey`, a JSON walk of the query) costs more than the rest of
 * binding a REGISTER's auth lookup. The query node builds its queries as `queryOf(base, fields, conditions)`
 * (nodes/query-database.ts), so tables, fields, joins and orderBy are the SAME arrays every time:
 * the plan of a query object seen before is found by its `fields` array (a WeakMap: a flow that is
 * replaced takes its entries with it) without building any key.
 *
 * Contract: `known(q)` returns the plan of a query seen before, or undefined (then call `plan(q)`,
 * which compiles or finds it by key, and `remember(q, plan, generation)`). The fast path never
 * trusts identity alone: the entry keeps a copy of the static parts' contents and compares them
 * (a caller may reuse an array with new contents), then the conditions' fields and operators with
 * the plan's own. `drop()` forgets every plan (the schema changed); a `remember` for a plan made
 * before a drop (its `generation`) is ignored.
 *
 * Limits: PLAN_CACHE_MAX shapes by key (lru-cache, least recently used dropped; recompiled when
 * needed); PLANS_PER_SHAPE_MAX plans per `fields` array (one static part, condition lists that
 * differ when `or` drops null conditions), most recent first. Only the prepared path uses the fast
 * path (the builder path is the slow reference anyway).
 */
import { LRUCache } from 'lru-cache';
import type { DirectoryQuery } from './types';
import { DirectoryError } from './types';
import { compilePlan, shapeKey, type Plan } from './plan';
import type { SchemaCache } from './schema';

/** Shapes kept by key. */
const PLAN_CACHE_MAX = 1000;
/** Plans kept per stable query object (its condition lists may differ when `or` drops null conditions). */
const PLANS_PER_SHAPE_MAX = 8;
/** On an unknown table/column, re-read the schema (a table may have been added) at most this often. */
const SCHEMA_RETRY_INTERVAL_MS = 10_000;

/**
 * The static part of a query object as last seen, keyed by its `fields` array. Contents are
 * compared with this copy, then the condition list with the plans' own.
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

export interface PlanCache {
  /** Bumped by every drop(): pass the value read before `plan()` to `remember()`. */
  readonly generation: number;
  /** The plan of a query object seen before (same `fields` array, same contents), else undefined. */
  known(q: DirectoryQuery): Plan | undefined;
  /** The plan of a query's shape: cached, or compiled (re-reading the schema once if it names something unknown). */
  plan(q: DirectoryQuery): Promise<Plan>;
  /** Makes `known(q)` find `plan` (unless plans were dropped since `generation`). */
  remember(q: DirectoryQuery, plan: Plan, generation: number): void;
  /** Forgets every plan (the schema changed). */
  drop(): void;
}

export function createPlanCache(schemaCache: SchemaCache): PlanCache {
  const plans = new LRUCache<string, Plan>({ max: PLAN_CACHE_MAX });
  let shapes = new WeakMap<object, ShapeEntry>();
  let generation = 0;

  const cache: PlanCache = {
    get generation() {
      return generation;
    },

    known(q) {
      const fields = q.fields as unknown;
      if (!Array.isArray(fields)) return undefined;
      const e = shapes.get(fields);
      if (e === undefined || e.generation !== generation || !sameStatic(e, q)) return undefined;
      const cs = q.conditions ?? NONE;
      for (const p of e.plans) if (sameConditions(p, cs)) return p;
      return undefined;
    },

    async plan(q) {
      const key = shapeKey(q);
      const cached = plans.get(key);
      if (cached) return cached;
      let plan: Plan;
      try {
        plan = compilePlan(q, await schemaCache.get());
      } catch (err) {
        if (!(err instanceof DirectoryError) || Date.now() - schemaCache.loadedAt < SCHEMA_RETRY_INTERVAL_MS) throw err;
        cache.drop();
        plan = compilePlan(q, await schemaCache.refresh());
      }
      plans.set(key, plan);
      return plan;
    },

    remember(q, plan, gen) {
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
    },

    drop() {
      plans.clear();
      shapes = new WeakMap();
      generation++;
    },
  };
  return cache;
}

function snapshot(q: DirectoryQuery, generation: number): ShapeEntry {
  const joins: unknown[] = [];
  for (const j of q.joins ?? NONE) joins.push(j?.left, j?.operator, j?.right);
  const orderBy: unknown[] = [];
  for (const o of q.orderBy ?? NONE) orderBy.push(o?.field, o?.direction);
  return {
    generation,
    tables: [...q.tables],
    fields: [...q.fields],
    joins,
    orderBy,
    joinType: q.joinType,
    logic: q.logic,
    plans: [],
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
