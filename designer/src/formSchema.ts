/**
 * Turns a node type's `valuesSchema` into the schema of its property form: exit fields removed
 * (they are edited by dragging edges), union types narrowed to the type of the current value (the
 * form library draws one widget per field), each field titled (its schema `title`, else its name
 * humanised: `storeIntoRecordsList` → "Store into records list"), and pickers offered as
 * `examples` (a datalist) for variables (`x-writes`), tables (`x-table`), columns (`x-column`:
 * only those of the node's own `tables`) and logics (`x-logic`). Value fields (`x-var`) get the
 * var/abc widget (./VarWidget.tsx) through the form's uiSchema (`formUiSchema`).
 */
import type { ForeignKey } from './formAssist';
import type { Json } from './model';

export interface Pickers {
  variables: string[];
  tables: string[];
  columns: string[];
  logics: string[];
  /** Directory table (full name, `registration.customers`) → its columns as `customers.name`. */
  tableColumns?: Record<string, string[]>;
  /** The directory's foreign keys (a query's join is proposed from them: ./formAssist.ts). */
  foreignKeys?: ForeignKey[];
}

/** `storeIntoRecordsList` → "Store into records list", `ifnoRecordFound` → "Ifno record found", `joinType` → "Join type". */
export function humanise(name: string): string {
  const words = name
    .replace(/[_-]+/g, ' ')
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .replace(/([A-Z]+)([A-Z][a-z])/g, '$1 $2')
    .trim()
    .toLowerCase();
  const fixed = words.replace(/\b(uri|sip|aor|ttl|ms|id|url|dn|jwt|cdr|dns|ldap|http|json|ha1)\b/g, (w) => (w === 'ms' ? 'ms' : w.toUpperCase()));
  return fixed.charAt(0).toUpperCase() + fixed.slice(1);
}

/** The form library titles array items `Tables-1`: that becomes "Table 1" (numbered from 1). */
export function itemLabel(label: string): string {
  const m = /^(.+)-(\d+)$/.exec(label);
  if (!m) return label;
  const base = m[1].endsWith('ies') ? `${m[1].slice(0, -3)}y` : m[1].endsWith('s') && !m[1].endsWith('ss') ? m[1].slice(0, -1) : m[1];
  return `${base} ${m[2]}`;
}

/**
 * The columns a node's column pickers offer: those of the tables its `tables` field lists (by full
 * or short name), so a query on `customers` is not offered every column of the directory.
 */
export function nodePickers(p: Pickers, values: Json): Pickers {
  const listed: unknown = values?.tables;
  if (!p.tableColumns || !Array.isArray(listed)) return p;
  const wanted = new Set(listed.filter((t): t is string => typeof t === 'string' && t !== ''));
  const columns: string[] = [];
  for (const [table, cols] of Object.entries(p.tableColumns)) if (wanted.has(table) || wanted.has(table.split('.').pop()!)) columns.push(...cols);
  return { ...p, columns };
}

const typeOfValue = (v: Json): string | undefined => {
  if (v === undefined) return undefined;
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
};

function narrow(types: string[], value: Json): string {
  const actual = typeOfValue(value);
  if (actual && types.includes(actual)) return actual;
  if (actual === 'integer' && types.includes('number')) return 'number';
  if (types.includes('string')) return 'string';
  return types.find((t) => t !== 'null') ?? types[0];
}

export function formSchema(schema: Json, value: Json, p: Pickers, key?: string): Json {
  if (!schema || typeof schema !== 'object') return schema;
  const out: Json = {};
  for (const [k, v] of Object.entries(schema)) {
    if (k.startsWith('x-') || k === 'properties' || k === 'items' || k === 'required' || k === 'type') continue;
    out[k] = v;
  }
  if (key !== undefined && typeof schema.title !== 'string') out.title = humanise(key);
  let type = schema.type;
  if (Array.isArray(type)) type = narrow(type, value);
  if (type !== undefined) out.type = type;
  if (type !== 'string' && type !== 'integer' && type !== 'number') {
    delete out.pattern;
    delete out.minLength;
  }
  if (type !== 'integer' && type !== 'number') {
    delete out.minimum;
    delete out.maximum;
  }

  const examples = schema['x-column'] ? p.columns : schema['x-table'] ? p.tables : schema['x-logic'] ? p.logics : schema['x-writes'] ? p.variables : undefined;
  if (examples && type === 'string' && !schema.enum) out.examples = examples;

  if (schema.properties && (type === 'object' || type === undefined)) {
    out.properties = {};
    const required: string[] = [];
    for (const [key, sub] of Object.entries<Json>(schema.properties)) {
      if (sub['x-exit']) continue;
      out.properties[key] = formSchema(sub, value && typeof value === 'object' ? value[key] : undefined, p, key);
      if ((schema.required ?? []).includes(key)) required.push(key);
    }
    if (required.length) out.required = required;
  }
  if (schema.items && (type === 'array' || type === undefined)) {
    const first = Array.isArray(value) ? value[0] : undefined;
    out.items = formSchema(schema.items, first, p, key);
    // the item's own title would hide the numbering ("Table 1"): the array's title names them
    delete out.items.title;
  }
  return out;
}

/** Names (lower case) of text fields drawn as a textarea: code, templates, long text. */
const LONG_TEXT = /^(script|body|template|filter|expression|json|payload)$/i;

/**
 * The form's uiSchema: value fields (`x-var`, string) use the var/abc widget; long text a textarea.
 * Follows the narrowed form schema (`formSchema`), so it matches what the form draws.
 */
export function formUiSchema(schema: Json, form: Json, key?: string): Json {
  if (!schema || typeof schema !== 'object' || !form || typeof form !== 'object') return {};
  const ui: Json = {};
  if (form.type === 'string' && !form.enum) {
    if (schema['x-var']) ui['ui:widget'] = 'VarWidget';
    else if (schema['x-widget'] === 'textarea' || (key && LONG_TEXT.test(key) && !schema['x-column'] && !schema['x-table'])) ui['ui:widget'] = 'textarea';
  }
  if (form.properties && schema.properties)
    for (const [k, sub] of Object.entries<Json>(form.properties)) {
      const u = formUiSchema(schema.properties[k], sub, k);
      if (Object.keys(u).length) ui[k] = u;
    }
  if (form.items && schema.items) {
    const u = formUiSchema(schema.items, form.items, key);
    if (Object.keys(u).length) ui.items = u;
  }
  return ui;
}

/**
 * The pointer (relative to `values`) of the form field with this id (`root_conditions_0_value` →
 * `conditions/0/value`), following the schema so that names holding `_` are not split.
 */
export function pointerOfId(schema: Json, id: string): string | undefined {
  if (!id.startsWith('root')) return undefined;
  const walk = (s: Json, rest: string, at: string[]): string | undefined => {
    if (rest === '') return at.join('/');
    if (!rest.startsWith('_') || !s || typeof s !== 'object') return undefined;
    rest = rest.slice(1);
    if (s.items) {
      const m = /^\d+/.exec(rest);
      if (m) return walk(s.items, rest.slice(m[0].length), [...at, m[0]]);
    }
    const keys = Object.keys(s.properties ?? {}).sort((a, b) => b.length - a.length);
    for (const k of keys)
      if (rest === k || rest.startsWith(`${k}_`)) {
        const r = walk(s.properties[k], rest.slice(k.length), [...at, k]);
        if (r !== undefined) return r;
      }
    return undefined;
  };
  return walk(schema, id.slice(4), []);
}

export const deepEqual = (a: Json, b: Json): boolean => {
  if (a === b) return true;
  if (typeof a !== typeof b || a === null || b === null || typeof a !== 'object') return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a).filter((k) => a[k] !== undefined);
  const kb = Object.keys(b).filter((k) => b[k] !== undefined);
  if (ka.length !== kb.length) return false;
  return ka.every((k) => deepEqual(a[k], b[k]));
};

/**
 * Applies what changed from `orig` to `after` and nothing else: equal subtrees keep their identity
 * and key order, keys the form does not know (exits, unknown keys) stay as they were.
 */
export function mergeChanged(orig: Json, after: Json): Json {
  if (deepEqual(orig, after)) return orig;
  const plain = (v: Json) => v !== null && typeof v === 'object' && !Array.isArray(v);
  if (plain(orig) && plain(after)) {
    const out: Json = {};
    for (const k of Object.keys(orig))
      if (k in after) {
        if (after[k] !== undefined) out[k] = mergeChanged(orig[k], after[k]);
      } else out[k] = orig[k];
    for (const k of Object.keys(after)) if (!(k in orig) && after[k] !== undefined) out[k] = after[k];
    return out;
  }
  if (Array.isArray(orig) && Array.isArray(after) && orig.length === after.length) return after.map((a, i) => mergeChanged(orig[i], a));
  return after;
}

/** True when the form draws a field (not an object or array) at this pointer relative to `values`. */
export function isFormField(form: Json, pointer: string): boolean {
  let s = form;
  for (const part of pointer.split('/')) {
    if (!s || typeof s !== 'object') return false;
    if (s.properties && part in s.properties) s = s.properties[part];
    else if (s.items && /^\d+$/.test(part)) s = s.items;
    else return false;
  }
  return !!s && s.type !== 'object' && s.type !== 'array';
}
