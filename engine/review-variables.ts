/**
 * Review warnings located at the field: a value that names a variable nobody sets (read as
 * literal text or as an always-unset variable), a value marked literal that the engine would read
 * as a variable, and an exit left unconnected. Pure (no I/O), so the loader, the API's validation,
 * the CLI and the designer all report the same warnings (engine/load.ts calls it).
 *
 * A value field (schema `x-var`) counts as "used as a variable" when
 *   - the designer marked it so: `node["x-sipflow"].vars` holds its pointer (relative to `values`);
 *   - without a mark, it is the variable side of a check: a `variable` field (conditions, digits,
 *     regex extraction: always read as a variable), authenticate's `password`, the registrar's
 *     `aor` / `domain`, holding an identifier-like string;
 *   - or it is a near miss of a known variable (one edit away, four characters or more): `caled`.
 * `node["x-sipflow"].literals` marks a field literal: no warning that it names no variable, but a
 * warning when it names a known one (the engine reads the variable, whatever the mark says).
 */
import type { ExitField, JsonSchema } from './node-type';
import { walk } from './schema-walk';
import type { SlidNode } from './slid';

/** One warning: pointer relative to the node (`values/conditions/0/value`). */
export interface FieldWarning {
  pointer: string;
  message: string;
}

/** What the review needs of a node's type. */
export interface ReviewedType {
  valuesSchema: JsonSchema;
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;
const PLACEHOLDER = /\[([A-Za-z_][A-Za-z0-9_.-]*)\]/g;

/** Fields a node type reads as a variable name when they hold one (besides every `variable` field). */
const VARIABLE_SIDE: Record<string, readonly string[]> = {
  'analysis.nit.registrar.authenticate': ['password'],
  'output.nit.registrar.lookupLocationService': ['aor', 'domain'],
  'action.nit.registrar.saveLocationService': ['aor', 'domain'],
};

/** The front end's answer when a top-level logic ends with no outcome (sip/response-for.ts). */
export const UNCONNECTED_EXIT_ANSWER =
  'the front end answers its default route (sip.defaultRoute: 404 Not Found unless configured); in a sub-logic the caller goes on at its call node’s next';

/** Levenshtein distance, stopping early above 1 (all the review needs). */
function withinOneEdit(a: string, b: string): boolean {
  if (a === b) return true;
  if (Math.abs(a.length - b.length) > 1) return false;
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  let j = 0;
  while (j < a.length - i && j < b.length - i && a[a.length - 1 - j] === b[b.length - 1 - j]) j++;
  return a.length - i - j <= 1 && b.length - i - j <= 1;
}

/** The known variable `name` is one edit away from, if any (case-insensitive equality counts too). */
export function nearMiss(name: string, known: ReadonlySet<string>): string | undefined {
  if (name.length < 4 || known.has(name)) return undefined;
  const lower = name.toLowerCase();
  for (const k of known) if (k.length >= 3 && (k.toLowerCase() === lower || withinOneEdit(name, k))) return k;
  return undefined;
}

const strings = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);

/** The designer's explicit marks of a node (contract: `node["x-sipflow"].vars / .literals`). */
export function marksOf(node: SlidNode): { vars: Set<string>; literals: Set<string> } {
  const meta = node['x-sipflow'];
  const m = meta !== null && typeof meta === 'object' && !Array.isArray(meta) ? (meta as Record<string, unknown>) : {};
  return { vars: new Set(strings(m.vars)), literals: new Set(strings(m.literals)) };
}

/** True when the field at `pointer` (its last segment `key`) of a node of `type` is always read as a variable name. */
export function readsAsVariable(nodeType: string, pointer: string): boolean {
  const key = pointer.slice(pointer.lastIndexOf('/') + 1);
  return key === 'variable' || (VARIABLE_SIDE[nodeType] ?? []).includes(pointer);
}

/** Warnings of a node's value fields, given the variables known to its file. */
export function reviewValueFields(node: SlidNode, type: ReviewedType, known: ReadonlySet<string>): FieldWarning[] {
  const out: FieldWarning[] = [];
  const { vars, literals } = marksOf(node);
  walk(type.valuesSchema, node.values, '', true, (schema, value, pointer) => {
    if (typeof value !== 'string' || value === '' || !pointer || schema['x-exit']) return;
    // a `[name]` placeholder one edit away from a known variable: `[caled]` stays as that text
    if (value.includes('[') && !literals.has(pointer))
      for (const m of value.matchAll(PLACEHOLDER)) {
        const hint = known.has(m[1]) ? undefined : nearMiss(m[1], known);
        if (hint)
          out.push({
            pointer: `values/${pointer}`,
            message: `placeholder [${m[1]}] names no variable (did you mean ${hint}?): it stays as the text "[${m[1]}]"`,
          });
      }
    if (!schema['x-var']) return;
    const at = `values/${pointer}`;
    const hint = nearMiss(value, known);
    const didYouMean = hint ? ` (did you mean ${hint}?)` : '';
    // `variable` fields are read with readVariable (nodes/common.ts): always a variable, never literal text
    const alwaysVariable = pointer.slice(pointer.lastIndexOf('/') + 1) === 'variable';
    if (literals.has(pointer)) {
      if (known.has(value) && !alwaysVariable)
        out.push({ pointer: at, message: `is marked literal but names the variable ${value}: the engine reads the variable, not the text "${value}"` });
      return;
    }
    if (known.has(value)) return;
    const markedVar = vars.has(pointer);
    const variableSide = readsAsVariable(node.type, pointer) && IDENTIFIER.test(value);
    if (!markedVar && !variableSide && !hint) return;
    const what = `${value} is no predefined variable and no node of this file sets it${didYouMean}`;
    if (alwaysVariable) out.push({ pointer: at, message: `${what}: the engine reads it as a variable that is always unset (null)` });
    else out.push({ pointer: at, message: `${what}: the engine will read it as the literal text "${value}"` });
  });
  return out;
}

/** Warnings of a node's unconnected exits (exits the schema marks `x-optional` do not warn: unset has a meaning of its own). */
export function reviewExits(exits: readonly ExitField[]): FieldWarning[] {
  const out: FieldWarning[] = [];
  for (const e of exits) {
    const unset = e.target === undefined || e.target === null || e.target === '';
    // a required exit left unset is already an error ("must point to a node")
    if (!unset || e.required || e.optional) continue;
    out.push({
      pointer: `values/${e.pointer}`,
      message: `exit ${e.pointer} is not connected: a call taking it ends this logic with no answer of its own, as an exit node does; ${UNCONNECTED_EXIT_ANSWER}`,
    });
  }
  return out;
}
