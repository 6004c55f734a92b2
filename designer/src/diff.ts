/**
 * The difference between two `.slid` documents, per logic: logics added and removed; per logic, nodes
 * added, removed and changed (each changed value by JSON pointer, old → new; name, type, description
 * and archived are values like the others, at `name`, `type`, …), and the nodes only moved (x, y)
 * reported apart. Pure (no engine, no DOM): the designer's release-diff and conflict views and the
 * tests use it.
 */

export type Json = unknown;

export interface ValueChange {
  /** JSON pointer inside the node (`values/conditions/0/value`, `name`, `x-sipflow/vars`). */
  pointer: string;
  /** undefined when absent on that side. */
  before: Json;
  after: Json;
}

export interface NodeRef {
  id: string;
  name: string;
  type: string;
}

export interface NodeChange extends NodeRef {
  changes: ValueChange[];
  /** The position changed too. */
  moved: boolean;
}

export interface LogicDiff {
  id: string;
  name: string;
  status: 'added' | 'removed' | 'changed' | 'same';
  added: NodeRef[];
  removed: NodeRef[];
  changed: NodeChange[];
  /** Nodes whose only change is their position. */
  moved: NodeRef[];
  /** Changes of the logic's own fields (name, description, designer data), nodes excluded. */
  logicChanges: ValueChange[];
}

export interface DocDiff {
  logics: LogicDiff[];
  /** True when nothing but positions changed (or nothing at all). */
  onlyMoves: boolean;
  /** True when the documents are equal (positions included). */
  same: boolean;
}

type Obj = Record<string, Json>;
const isObj = (v: Json): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);
const esc = (k: string) => k.replace(/~/g, '~0').replace(/\//g, '~1');

/** Every leaf (scalar, empty object or array) of `v` by pointer below `base`. */
function leaves(v: Json, base: string, out: Map<string, Json>): Map<string, Json> {
  if (Array.isArray(v) && v.length) v.forEach((x, i) => leaves(x, base ? `${base}/${i}` : String(i), out));
  else if (isObj(v) && Object.keys(v).length) for (const [k, x] of Object.entries(v)) leaves(x, base ? `${base}/${esc(k)}` : esc(k), out);
  else out.set(base, v);
  return out;
}

const same = (a: Json, b: Json) => JSON.stringify(a) === JSON.stringify(b);

/** The value changes between two objects (every key but `skip`), by pointer, in a stable order. */
export function valueChanges(a: Obj | undefined, b: Obj | undefined, skip: string[] = []): ValueChange[] {
  const strip = (o: Obj | undefined) => Object.fromEntries(Object.entries(o ?? {}).filter(([k]) => !skip.includes(k)));
  const la = leaves(strip(a), '', new Map());
  const lb = leaves(strip(b), '', new Map());
  const out: ValueChange[] = [];
  for (const p of new Set([...la.keys(), ...lb.keys()])) {
    if (p === '') continue;
    const before = la.get(p);
    const after = lb.get(p);
    if (!same(before, after)) out.push({ pointer: p, before, after });
  }
  return out;
}

/** A logic's nodes by id (object or array form). */
function nodesOf(logic: Json): Map<string, Obj> {
  const nodes = isObj(logic) ? logic.nodes : undefined;
  const list = Array.isArray(nodes) ? nodes : isObj(nodes) ? Object.values(nodes) : [];
  const m = new Map<string, Obj>();
  for (const n of list) if (isObj(n) && n.id !== undefined) m.set(String(n.id), n);
  return m;
}

const ref = (n: Obj): NodeRef => ({ id: String(n.id), name: typeof n.name === 'string' ? n.name : '', type: String(n.type ?? '') });
const byId = (a: { id: string }, b: { id: string }) => Number(a.id) - Number(b.id) || a.id.localeCompare(b.id);

export function diffLogic(id: string, a: Json, b: Json): LogicDiff {
  const name = String((isObj(b) ? b.name : undefined) ?? (isObj(a) ? a.name : undefined) ?? '');
  const na = nodesOf(a);
  const nb = nodesOf(b);
  const d: LogicDiff = { id, name, status: 'same', added: [], removed: [], changed: [], moved: [], logicChanges: [] };
  if (a === undefined || b === undefined) {
    d.status = a === undefined ? 'added' : 'removed';
    (a === undefined ? d.added : d.removed).push(...[...(a === undefined ? nb : na).values()].map(ref).sort(byId));
    return d;
  }
  d.logicChanges = valueChanges(a as Obj, b as Obj, ['nodes']);
  for (const [nid, n] of nb) if (!na.has(nid)) d.added.push(ref(n));
  for (const [nid, n] of na) {
    const m = nb.get(nid);
    if (!m) {
      d.removed.push(ref(n));
      continue;
    }
    const changes = valueChanges(n, m, ['x', 'y']);
    const moved = !same(n.x, m.x) || !same(n.y, m.y);
    if (changes.length) d.changed.push({ ...ref(m), changes, moved });
    else if (moved) d.moved.push(ref(m));
  }
  d.added.sort(byId);
  d.removed.sort(byId);
  d.changed.sort(byId);
  d.moved.sort(byId);
  const edits = d.added.length + d.removed.length + d.changed.length + d.logicChanges.length;
  d.status = edits || d.moved.length ? 'changed' : 'same';
  return d;
}

/** The difference from document `a` (before) to `b` (after). */
export function diffDocs(a: Json, b: Json): DocDiff {
  const oa = isObj(a) ? a : {};
  const ob = isObj(b) ? b : {};
  const ids = [...new Set([...Object.keys(oa), ...Object.keys(ob)])].sort((x, y) => Number(x) - Number(y) || x.localeCompare(y));
  const logics = ids.map((id) => diffLogic(id, oa[id], ob[id]));
  const edits = logics.some(
    (l) => l.status === 'added' || l.status === 'removed' || l.added.length || l.removed.length || l.changed.length || l.logicChanges.length,
  );
  return { logics, onlyMoves: !edits, same: logics.every((l) => l.status === 'same') };
}

/** A value as the diff view shows it (short JSON; `—` when absent). */
export function showValue(v: Json): string {
  if (v === undefined) return '—';
  const s = JSON.stringify(v);
  return s.length > 120 ? `${s.slice(0, 117)}…` : s;
}

/** One line per change, for tests and plain-text summaries. */
export function diffSummary(d: DocDiff): string[] {
  const out: string[] = [];
  for (const l of d.logics) {
    if (l.status === 'added' || l.status === 'removed') {
      out.push(`logic ${l.id} "${l.name}" ${l.status}`);
      continue;
    }
    for (const c of l.logicChanges) out.push(`logic ${l.id}: ${c.pointer}: ${showValue(c.before)} → ${showValue(c.after)}`);
    for (const n of l.added) out.push(`logic ${l.id}: + node ${n.id} "${n.name}" (${n.type})`);
    for (const n of l.removed) out.push(`logic ${l.id}: - node ${n.id} "${n.name}" (${n.type})`);
    for (const n of l.changed) for (const c of n.changes) out.push(`logic ${l.id}: node ${n.id} ${c.pointer}: ${showValue(c.before)} → ${showValue(c.after)}`);
    if (l.moved.length) out.push(`logic ${l.id}: ${l.moved.length} node(s) moved`);
  }
  return out;
}
