/** Schema pieces and helpers shared by node modules. */
import type { Exit, Finish, ValueGetter } from '../engine/node-type';
import { OPERATORS, checkRegex } from '../engine/operators';
import type { Outcome } from '../engine/types';

export { nodeRef } from '../engine/schema-walk';

/** Any value a field may hold: a variable name or a literal. */
export const anyValue = { type: ['string', 'number', 'boolean', 'null', 'array'], 'x-var': true };

export const operatorSchema = { type: 'string', enum: [...OPERATORS] };

/** The fields of one condition: tested variable, operator, value. */
export const conditionFields = {
  variable: { type: 'string', minLength: 1, 'x-var': true, description: 'the variable tested (always read as a variable)' },
  operator: { ...operatorSchema, description: 'how the variable is compared (docs/semantics.md, Operators)' },
  value: { ...anyValue, description: 'a variable (var) or literal text (abc) compared with; not used by exists / doesNotExist' },
};

/** Name of a variable the node writes. */
export const writesVariable = { type: 'string', minLength: 1, 'x-writes': true };

/** A checkbox exported as true/false, or "" / "true" / "1" by older editors. */
export const flag = { type: ['boolean', 'string', 'integer', 'null'] };
export const isSet = (v: unknown): boolean => v === true || v === 1 || v === 'true' || v === 'True' || v === '1' || v === 'on';

export const finish = (outcome: Outcome): Finish => ({ finish: outcome });

/**
 * Reads the variable a `variable` field names (the tested variable of a condition, the input of
 * digits manipulation): always a variable, even one only the call descriptor brings; missing = null.
 */
export const readVariable =
  (name: string): ValueGetter =>
  (vars) =>
    vars[name] ?? null;

export type { Exit };

/** Literal regexes of `matches` conditions must compile. */
export function checkConditionRegexes(conditions: Array<{ operator: string; value?: unknown }> | undefined): Array<[string, string]> {
  const problems: Array<[string, string]> = [];
  (conditions ?? []).forEach((cond, i) => {
    const err = cond.operator === 'matches' ? checkRegex(cond.value) : null;
    if (err) problems.push([`conditions/${i}/value`, err]);
  });
  return problems;
}
