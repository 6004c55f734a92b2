/**
 * Node schemas annotate their fields for tools: `x-exit` (the field names a node), `x-writes`
 * (the field names a variable the node writes), `x-var` (the field is usually a variable
 * reference: the designer offers a picker). Exits and written variables are derived from these
 * annotations, so a node type declares each field once.
 */
import type { ExitField, JsonSchema } from './node-type';

type Visit = (schema: JsonSchema, value: unknown, pointer: string, required: boolean) => void;

function walk(schema: JsonSchema, value: unknown, pointer: string, required: boolean, visit: Visit): void {
  visit(schema, value, pointer, required);
  const props = schema.properties as Record<string, JsonSchema> | undefined;
  if (props && value !== null && typeof value === 'object' && !Array.isArray(value)) {
    const req = new Set((schema.required as string[] | undefined) ?? []);
    for (const [key, sub] of Object.entries(props)) {
      walk(sub, (value as Record<string, unknown>)[key], pointer ? `${pointer}/${key}` : key, req.has(key), visit);
    }
  }
  const items = schema.items as JsonSchema | undefined;
  if (items && Array.isArray(value)) {
    value.forEach((item, i) => walk(items, item, pointer ? `${pointer}/${i}` : String(i), true, visit));
  }
}

export function exitsFromSchema(schema: JsonSchema, values: unknown): ExitField[] {
  const out: ExitField[] = [];
  walk(schema, values, '', true, (s, v, pointer, required) => {
    if (s['x-exit']) out.push({ pointer, target: v, required: required && s['x-optional'] !== true });
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
