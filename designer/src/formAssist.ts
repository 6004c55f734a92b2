/**
 * What a form fills in for the designer when an edit makes the next step obvious, so that a common
 * edit takes one action instead of three (docs/designer.md, "Properties"):
 *
 * - a condition or join added to a list gets the operator `is` (the one most conditions use);
 * - a query whose listed tables become two related tables (a foreign key of the directory, as
 *   `registration.customer_numbers.customer_id` → `registration.customers.id`) and that has no join
 *   yet gets that join.
 *
 * Only a change made in the form is assisted (`before` → `after`): a document as loaded is never
 * touched, so an unedited document still saves byte for byte. Pure: the caller applies the result.
 */
import type { Json } from './model';

/** A single-column foreign key, both ends `schema.table.column`. */
export interface ForeignKey {
  from: string;
  to: string;
}

const OPERATOR = 'is';
const isObject = (v: Json): boolean => v !== null && typeof v === 'object' && !Array.isArray(v);

/** A table as the node names it: the short name when no other listed table shares it. */
function tableRef(full: string, listed: string[]): string {
  const short = full.split('.').pop()!;
  return listed.filter((t) => t.split('.').pop() === short).length > 1 ? full : short;
}

/** The listed table (as written in the node) that a full `schema.table` name designates, if any. */
function listedAs(full: string, listed: string[]): string | undefined {
  return listed.find((t) => t === full) ?? listed.find((t) => !t.includes('.') && t === full.split('.').pop());
}

/** New items of each top-level list whose item schema has an `operator` offering `is`: given `is`. */
function defaultOperators(schema: Json, before: Json, after: Json): Json {
  let out = after;
  for (const [key, prop] of Object.entries((schema?.properties ?? {}) as Record<string, Json>)) {
    const op = prop?.items?.properties?.operator;
    if (!op || !(Array.isArray(op.enum) ? op.enum.includes(OPERATOR) : op.type === 'string')) continue;
    const was: Json[] = Array.isArray(before?.[key]) ? before[key] : [];
    const now: Json[] = Array.isArray(after?.[key]) ? after[key] : [];
    if (now.length <= was.length) continue;
    // the form adds an item as undefined or {} (no defaults are filled in: see Inspector.tsx)
    const bare = (item: Json, i: number) =>
      i >= was.length && (item === undefined || item === null || (isObject(item) && (item.operator === undefined || item.operator === '')));
    if (!now.some(bare)) continue;
    out = { ...out, [key]: now.map((item, i) => (bare(item, i) ? { ...(isObject(item) ? item : {}), operator: OPERATOR } : item)) };
  }
  return out;
}

/** The join between two listed tables from a foreign key between them (first listed table on the left). */
export function proposeJoins(listed: string[], keys: ForeignKey[]): Json[] {
  const joins: Json[] = [];
  for (const k of keys) {
    const [fromTable, toTable] = [k.from, k.to].map((c) => c.slice(0, c.lastIndexOf('.')));
    if (fromTable === toTable) continue;
    const left = listedAs(fromTable, listed);
    const right = listedAs(toTable, listed);
    if (left === undefined || right === undefined) continue;
    joins.push({
      leftField: `${tableRef(fromTable, listed)}.${k.from.slice(k.from.lastIndexOf('.') + 1)}`,
      operator: OPERATOR,
      rightField: `${tableRef(toTable, listed)}.${k.to.slice(k.to.lastIndexOf('.') + 1)}`,
    });
  }
  return joins;
}

/** `after` with what the form fills in (see the header); `schema` is the node type's valuesSchema. */
export function assistValues(schema: Json, before: Json, after: Json, keys: ForeignKey[]): Json {
  let out = defaultOperators(schema, before, after);
  const props = (schema?.properties ?? {}) as Record<string, Json>;
  if (props.tables?.items?.['x-table'] && props.joins?.type === 'array') {
    const listed = (Array.isArray(out.tables) ? out.tables : []).filter((t: Json): t is string => typeof t === 'string' && t !== '');
    const wasListed = Array.isArray(before?.tables) ? before.tables : [];
    const noJoins = !Array.isArray(out.joins) || out.joins.length === 0;
    if (noJoins && listed.length >= 2 && JSON.stringify(listed) !== JSON.stringify(wasListed)) {
      const joins = proposeJoins(listed, keys);
      if (joins.length > 0) out = { ...out, joins };
    }
  }
  return out;
}

/** The foreign keys of a directory schema answer (columns carrying `references`). */
export function foreignKeysOf(tables: Array<{ name: string; columns: Array<{ name: string; references?: string }> }>): ForeignKey[] {
  return tables.flatMap((t) => t.columns.filter((c) => c.references).map((c) => ({ from: `${t.name}.${c.name}`, to: c.references! })));
}
