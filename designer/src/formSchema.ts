/**
 * Turns a node type's `valuesSchema` into the schema of its property form: exit fields removed
 * (they are edited by dragging edges), union types narrowed to the type of the current value (the
 * form library draws one widget per field), and pickers offered as `examples` (a datalist) for
 * variables (`x-var`, `x-writes`), tables (`x-table`), columns (`x-column`) and logics (`x-logic`).
 */
import type { Json } from './model';

export interface Pickers {
  variables: string[];
  tables: string[];
  columns: string[];
  logics: string[];
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

export function formSchema(schema: Json, value: Json, p: Pickers): Json {
  if (!schema || typeof schema !== 'object') return schema;
  const out: Json = {};
  for (const [k, v] of Object.entries(schema)) {
    if (k.startsWith('x-') || k === 'properties' || k === 'items' || k === 'required' || k === 'type') continue;
    out[k] = v;
  }
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

  const examples = schema['x-column']
    ? p.columns
    : schema['x-table']
      ? p.tables
      : schema['x-logic']
        ? p.logics
        : schema['x-var'] || schema['x-writes']
          ? p.variables
          : undefined;
  if (examples && type === 'string' && !schema.enum) out.examples = examples;

  if (schema.properties && (type === 'object' || type === undefined)) {
    out.properties = {};
    const required: string[] = [];
    for (const [key, sub] of Object.entries<Json>(schema.properties)) {
      if (sub['x-exit']) continue;
      out.properties[key] = formSchema(sub, value && typeof value === 'object' ? value[key] : undefined, p);
      if ((schema.required ?? []).includes(key)) required.push(key);
    }
    if (required.length) out.required = required;
  }
  if (schema.items && (type === 'array' || type === undefined)) {
    const first = Array.isArray(value) ? value[0] : undefined;
    out.items = formSchema(schema.items, first, p);
  }
  return out;
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
