/**
 * Node schemas annotate their fields for tools: `x-exit` (the field names a node), `x-writes`
 * (the field names a variable the node writes), `x-var` (the field is usually a variable
 * reference: the designer offers a picker), `x-secret` (the variable the field names holds a
 * secret: see engine/secrets.ts). Exits, written variables and secret variables are derived from
 * these annotations, so a node type declares each field once.
 */
import type { ExitField, JsonSchema } from './node-type';

export type Visit = (schema: JsonSchema, value: unknown, pointer: string, required: boolean, parent: unknown) => void;

/** Visits every field of `value` that `schema` describes, with its pointer relative to `value`. */
export function walk(schema: JsonSchema, value: unknown, pointer: string, required: boolean, visit: Visit, parent: unknown = undefined): void {
  visit(schema, value, pointer, required, parent);
  const props = schema.properties as Record<string, JsonSchema> | undefined;
  if (props && value !== null && typeof value === 'object' && !Array.isArray(value)) {
    const req = new Set((schema.required as string[] | undefined) ?? []);
    for (const [key, sub] of Object.entries(props)) {
      walk(sub, (value as Record<string, unknown>)[key], pointer ? `${pointer}/${key}` : key, req.has(key), visit, value);
    }
  }
  const items = schema.items as JsonSchema | undefined;
  if (items && Array.isArray(value)) {
    value.forEach((item, i) => walk(items, item, pointer ? `${pointer}/${i}` : String(i), true, visit, value));
  }
}

export function exitsFromSchema(schema: JsonSchema, values: unknown): ExitField[] {
  const out: ExitField[] = [];
  walk(schema, values, '', true, (s, v, pointer, required) => {
    if (s['x-exit']) {
      const optional = s['x-optional'] === true;
      out.push(optional ? { pointer, target: v, required: false, optional } : { pointer, target: v, required });
    }
  });
  return out;
}

export function writesFromSchema(schema: JsonSchema, values: unknown): string[] {
  const out: string[] = [];
  walk(schema, values, '', true, (s, v) => {
    if (s['x-writes'] && typeof v === 'string' && v !== '') out.push(v);
  });
  return out;
}

/**
 * `x-secret` on a field naming a variable (see engine/secrets.ts for the rule):
 *   true                                    the variable always holds a secret (authenticate's `password`);
 *   { when: 'sibling', matches: 'regex' }   when the sibling field's value matches (case-insensitive),
 *                                           e.g. a query's `storeInto` beside a password `field`;
 *   { from: 'sibling' }                     when the sibling field reads a secret variable (by name or
 *                                           as a `[name]` placeholder): a copy of a secret is a secret.
 */
export type SecretMarker = true | { when: string; matches: string } | { from: string };

/** Variables named by `x-secret` fields of these values; `isSecret` tells which variables are secret so far. */
export function secretsFromSchema(schema: JsonSchema, values: unknown, isSecret: (name: string) => boolean): string[] {
  const out: string[] = [];
  walk(schema, values, '', true, (s, v, _pointer, _required, parent) => {
    const marker = s['x-secret'] as SecretMarker | undefined;
    if (!marker || typeof v !== 'string' || v === '') return;
    const sibling = (key: string) => (parent !== null && typeof parent === 'object' ? (parent as Record<string, unknown>)[key] : undefined);
    if (marker === true) out.push(v);
    else if ('when' in marker) {
      const other = sibling(marker.when);
      if (typeof other === 'string' && new RegExp(marker.matches, 'i').test(other)) out.push(v);
    } else if ('from' in marker && readsSecret(sibling(marker.from), isSecret)) out.push(v);
  });
  return out;
}

const PLACEHOLDER = /\[([A-Za-z_][A-Za-z0-9_.-]*)\]/g;

/** True when a value field reads a secret variable: it names one, or has a `[name]` placeholder of one. */
export function readsSecret(raw: unknown, isSecret: (name: string) => boolean): boolean {
  if (typeof raw !== 'string' || raw === '') return false;
  if (isSecret(raw)) return true;
  for (const m of raw.matchAll(PLACEHOLDER)) if (isSecret(m[1])) return true;
  return false;
}

/** Reads the value at a pointer relative to `values`. */
export function atPointer(values: unknown, pointer: string): unknown {
  let cur: unknown = values;
  for (const part of pointer.split('/')) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

/** Shared schema pieces. */
export const nodeRef: JsonSchema = {
  type: ['integer', 'string', 'null'],
  'x-exit': true,
  description: 'id of the next node',
};
