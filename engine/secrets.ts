/**
 * Which variables of a service hold secrets, and the redaction of call descriptors and traces
 * before they leave the process (API answers). Pure functions, no I/O.
 *
 * The rule (docs/security.md, "Secrets"):
 *  - a variable an authenticate node uses as its `password` (`x-secret: true` in its schema);
 *  - a variable a database query stores from a column whose name matches SECRET_NAME
 *    (`customers.password`, `ha1`, `sip_secret`, `api_token`, …);
 *  - a variable an extract-header node fills from Authorization or Proxy-Authorization;
 *  - a copy of a secret (set variables, digits manipulation reading a secret variable, by name or
 *    as a `[name]` placeholder), to a fixed point;
 *  - any variable whose own name matches SECRET_NAME, declared or brought by the front end;
 *  - the credentials headers (Authorization, Proxy-Authorization), and any value that is digest
 *    credentials (it carries the digest `response`), whatever variable holds it.
 * Node types declare it next to `x-writes` with an `x-secret` marker (engine/schema-walk.ts), or
 * with their own `secrets()`; it is computed once per compiled file (`CompiledService.secrets`).
 */
import type { NodeRegistry } from './registry';
import { nodeEntries, type SlidDocument } from './slid';
import type { CdValue, TraceStep } from './types';

/** What replaces a secret in an API answer (the same placeholder as in the logs). */
export const REDACTED = '[redacted]';

/** Names of columns and variables that hold secrets. */
export const SECRET_NAME = /pass|secret|ha1|token/i;
/** `x-secret` `matches` for a `table.column` field: the column name (last segment) matches SECRET_NAME. */
export const SECRET_COLUMN_PATTERN = '(pass|secret|ha1|token)[^.]*$';
/** `x-secret` `matches` for a header name: the credentials headers. */
export const CREDENTIALS_HEADER_PATTERN = '^(authorization|proxy-authorization)$';
/** Headers of the call descriptor (lower-case, as the CD keeps them) whose values are credentials. */
export const CREDENTIALS_HEADERS: ReadonlySet<string> = new Set(['authorization', 'proxy-authorization']);

/** Digest credentials (`Digest username="…", …, response="…"`): the whole value is a secret. */
const DIGEST_CREDENTIALS = /^\s*digest\s[^]*\bresponse\s*=/i;

/**
 * The secret variables of a `.slid` file (all of its logics: sub-logics share the call
 * descriptor). Live nodes only; copies of secrets are followed to a fixed point.
 */
export function secretVariables(doc: SlidDocument, registry: NodeRegistry, known: Iterable<string> = []): Set<string> {
  const secrets = new Set<string>();
  for (const name of known) if (SECRET_NAME.test(name)) secrets.add(name);
  const isSecret = (name: string) => secrets.has(name);
  const nodes = Object.values(doc)
    .flatMap((logic) => nodeEntries(logic).map(([, n]) => n))
    .filter((n) => n.archived !== true);
  for (let changed = true; changed;) {
    changed = false;
    for (const node of nodes) {
      const type = registry.get(node.type);
      if (!type) continue;
      for (const v of registry.secrets(type, node.values, isSecret)) {
        if (!secrets.has(v)) {
          secrets.add(v);
          changed = true;
        }
      }
    }
  }
  return secrets;
}

/** A service's secret variables (CompiledService.secrets), or anything that answers the same question. */
export type SecretSet = Pick<ReadonlySet<string>, 'has'>;

const NONE: SecretSet = new Set<string>();

/** True when variable `name` is a secret under `secrets` (a service's set) or by its name. */
export function isSecretVariable(name: string, secrets: SecretSet = NONE): boolean {
  return secrets.has(name) || SECRET_NAME.test(name);
}

const isCredentials = (v: unknown): boolean => typeof v === 'string' && DIGEST_CREDENTIALS.test(v);

/** A variable's value as an API answer may show it. */
export function redactValue(name: string, value: CdValue, secrets: SecretSet = NONE): CdValue {
  if (value === null || value === undefined) return value;
  if (isSecretVariable(name, secrets) || isCredentials(value)) return REDACTED;
  if (Array.isArray(value)) {
    // a records list: its rows carry the stored fields under their variable (or column) names
    return value.map((row) => {
      if (row === null || typeof row !== 'object') return row;
      let out: Record<string, unknown> | null = null;
      for (const [k, v] of Object.entries(row)) {
        if (v !== null && (isSecretVariable(k, secrets) || isCredentials(v))) (out ??= { ...row })[k] = REDACTED;
      }
      return (out ?? row) as typeof row;
    });
  }
  return value;
}

/** Variables with every secret replaced by REDACTED (a copy; `vars` is left alone). */
export function redactVariables<T extends Record<string, unknown>>(vars: T, secrets: SecretSet = NONE): T {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(vars)) out[k] = redactValue(k, v as CdValue, secrets);
  return out as T;
}

/** Headers (name → value or values) with the credentials headers' values replaced. */
export function redactHeaders<T extends Record<string, unknown>>(headers: T): T {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(headers)) {
    const secret = CREDENTIALS_HEADERS.has(k.toLowerCase());
    out[k] = secret ? (Array.isArray(v) ? v.map(() => REDACTED) : REDACTED) : v;
  }
  return out as T;
}

/** The JSON of a call descriptor (`callDescriptorJson`: variables + `headers`) with its secrets redacted. */
export function redactCallDescriptorJson(json: Record<string, unknown>, secrets: SecretSet = NONE): Record<string, unknown> {
  const { headers, ...vars } = json;
  const out = redactVariables(vars, secrets);
  if (headers !== undefined) out.headers = headers !== null && typeof headers === 'object' ? redactHeaders(headers as Record<string, unknown>) : headers;
  return out;
}

/** A trace whose steps' `set` carry no secret. */
export function redactTrace(trace: TraceStep[], secrets: SecretSet = NONE): TraceStep[] {
  return trace.map((step) => (step.set ? { ...step, set: redactVariables(step.set, secrets) } : step));
}
