/**
 * action.accounting: custom fields of the call's CDR (services/accounting). Each field's value
 * (a literal, a variable or text with `[var]` placeholders) is computed when the node runs and
 * kept in `cd.cdrFields` (not a variable: no logic reads or forges it); accounting copies them
 * into every record of the call. A later node writing the same name replaces the value.
 *
 * Limits: names identifier-like (at most 64 characters), not one of the record's standard fields,
 * not naming a secret; at most MAX_FIELDS fields per call; text values cut at FIELD_VALUE_MAX
 * characters, control characters (CR, LF, …) replaced by spaces. A value reading a secret
 * variable records `[redacted]` in its place, as the log node does.
 */
import type { NodeType } from '../engine/node-type';
import { SECRET_NAME } from '../engine/secrets';
import type { CdValue, Scalar } from '../engine/types';
import { toText } from '../engine/values';
import { maskSecrets } from './log';
import { anyValue, nodeRef } from './common';

interface Values {
  fields: Array<{ name: string; value?: unknown }>;
  next?: number | string;
}

/** Custom fields per call at most (further names are ignored, the trace says so). */
export const MAX_FIELDS = 32;
/** Text values are cut to this many characters. */
export const FIELD_VALUE_MAX = 256;
/** Identifier-like; not `__proto__` and the like (fields live in a plain object). */
const FIELD_NAME = /^(?!__)[A-Za-z_][A-Za-z0-9_]{0,63}$/;
/** The record's own fields (and their column names in the cdrs table): a custom field cannot shadow them. */
export const CDR_STANDARD_FIELDS: ReadonlySet<string> = new Set([
  'id',
  'kind',
  'callId',
  'call_id',
  'at',
  'setupAt',
  'setup_at',
  'connectAt',
  'connect_at',
  'endAt',
  'end_at',
  'duration',
  'calling',
  'called',
  'source',
  'destination',
  'status',
  'reason',
  'logic',
  'variables',
  'fields',
]);

// eslint-disable-next-line no-control-regex -- control characters are what it removes
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g;
// eslint-disable-next-line no-control-regex -- the same, for a test (no /g state)
const HAS_CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;

function fieldValue(v: CdValue): Scalar {
  if (typeof v === 'boolean') return v;
  if (typeof v === 'number') return Number.isFinite(v) ? v : null;
  if (v === null || v === undefined) return null;
  const text = toText(v).replace(CONTROL, ' ');
  return text.length > FIELD_VALUE_MAX ? text.slice(0, FIELD_VALUE_MAX) : text;
}

export const accountingNode: NodeType<Values> = {
  type: 'action.accounting',
  title: 'Accounting fields',
  summary: '{each fields ", "}{name} = {value}{end}',
  category: 'action',
  description: "Adds custom fields (name → value with [var] placeholders) to the call's CDR; accounting writes them with every record of the call.",
  valuesSchema: {
    type: 'object',
    required: ['fields'],
    properties: {
      fields: {
        type: 'array',
        minItems: 1,
        maxItems: MAX_FIELDS,
        description: `custom CDR fields, in order (at most ${MAX_FIELDS} per call)`,
        items: {
          type: 'object',
          required: ['name'],
          properties: {
            name: {
              type: 'string',
              minLength: 1,
              maxLength: 64,
              description: 'field name: a letter or _ then letters, digits, _ (not a standard CDR field such as calling or status)',
            },
            value: {
              ...anyValue,
              default: '',
              description: `a literal, a variable, or text with [var] placeholders; control characters become spaces, cut at ${FIELD_VALUE_MAX} characters`,
            },
          },
        },
      },
      next: nodeRef,
    },
  },
  check(values) {
    const problems: Array<[string, string]> = [];
    const seen = new Set<string>();
    (values.fields ?? []).forEach((f, i) => {
      const at = `/fields/${i}/name`;
      if (typeof f.name !== 'string' || !FIELD_NAME.test(f.name))
        problems.push([at, 'must be a letter or _ followed by letters, digits or _ (at most 64, not starting with __)']);
      else if (CDR_STANDARD_FIELDS.has(f.name)) problems.push([at, `"${f.name}" is a standard CDR field`]);
      else if (SECRET_NAME.test(f.name)) problems.push([at, `"${f.name}" names a secret (pass, secret, ha1, token): CDRs hold no secrets`]);
      else if (seen.has(f.name)) problems.push([at, `"${f.name}" is set twice`]);
      if (typeof f.name === 'string') seen.add(f.name);
      if (typeof f.value === 'string' && HAS_CONTROL.test(f.value)) problems.push([`/fields/${i}/value`, 'holds a control character (CR, LF, …)']);
    });
    return problems;
  },
  compile(values, c) {
    const fields = values.fields.map((f) => ({ name: f.name, value: maskSecrets(c.value(f.value ?? ''), f.value, c.isSecret) }));
    const next = c.exit('next');
    return (s) => {
      const cd = s.cd;
      const out = (cd.cdrFields ??= {});
      for (const f of fields) {
        if (!Object.hasOwn(out, f.name) && Object.keys(out).length >= MAX_FIELDS) continue;
        out[f.name] = fieldValue(f.value(cd.vars));
      }
      return next;
    };
  },
};
