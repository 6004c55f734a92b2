/**
 * The set of node types a service runs with. Every JSON Schema (envelope and each node's
 * values) is compiled once here, when the registry is built.
 */
import Ajv, { type ErrorObject, type ValidateFunction } from 'ajv';
import type { ExitField, NodeType } from './node-type';
import { exitsFromSchema, secretsFromSchema, writesFromSchema } from './schema-walk';
import { slidEnvelopeSchema } from '../schemas/slid';

/** Annotations our schemas carry for tools (designer forms, exits, variable pickers). */
export const SCHEMA_ANNOTATIONS = [
  'x-exit',
  'x-writes',
  'x-var',
  'x-optional',
  'x-column',
  'x-table',
  'x-widget',
  'x-order',
  'x-logic',
  'x-secret',
  'x-exit-label',
];

export function createAjv(): Ajv {
  const ajv = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true });
  ajv.addVocabulary(SCHEMA_ANNOTATIONS);
  return ajv;
}

export interface SchemaError {
  pointer: string;
  message: string;
}

/** One readable message per ajv error, with the pointer it concerns. */
export function formatAjvErrors(errors: ErrorObject[] | null | undefined): SchemaError[] {
  const out: SchemaError[] = [];
  for (const e of errors ?? []) {
    let pointer = e.instancePath.replace(/^\//, '');
    let message = e.message ?? 'is invalid';
    if (e.keyword === 'enum') {
      message = `must be one of ${(e.params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
    } else if (e.keyword === 'required') {
      pointer = pointer ? `${pointer}/${e.params.missingProperty}` : String(e.params.missingProperty);
      message = 'is required';
    } else if (e.keyword === 'type') {
      message = `must be ${String(e.params.type).replace(/,/g, ' or ')}`;
    } else if (e.keyword === 'additionalProperties') {
      pointer = pointer ? `${pointer}/${e.params.additionalProperty}` : String(e.params.additionalProperty);
      message = 'is not allowed here';
    }
    out.push({ pointer, message });
  }
  return out;
}

interface Entry {
  type: NodeType;
  validate: ValidateFunction;
}

export class NodeRegistry {
  private readonly entries = new Map<string, Entry>();
  readonly validateEnvelope: ValidateFunction;

  constructor(types: NodeType[]) {
    const ajv = createAjv();
    this.validateEnvelope = ajv.compile(slidEnvelopeSchema);
    for (const type of types) {
      if (this.entries.has(type.type)) throw new Error(`node type ${type.type} registered twice`);
      this.entries.set(type.type, { type, validate: ajv.compile(type.valuesSchema) });
    }
  }

  get(type: string): NodeType | undefined {
    return this.entries.get(type)?.type;
  }
  has(type: string): boolean {
    return this.entries.has(type);
  }
  list(): NodeType[] {
    return [...this.entries.values()].map((e) => e.type);
  }

  validateValues(type: string, values: unknown): SchemaError[] {
    const entry = this.entries.get(type);
    if (!entry) return [];
    return entry.validate(values) ? [] : formatAjvErrors(entry.validate.errors);
  }

  exits(type: NodeType, values: unknown): ExitField[] {
    return type.exits ? type.exits(values) : exitsFromSchema(type.valuesSchema, values);
  }

  writes(type: NodeType, values: unknown): string[] {
    return type.writes ? type.writes(values) : writesFromSchema(type.valuesSchema, values);
  }

  secrets(type: NodeType, values: unknown, isSecret: (name: string) => boolean): string[] {
    return type.secrets ? type.secrets(values, isSecret) : secretsFromSchema(type.valuesSchema, values, isSecret);
  }
}
