/**
 * analysis.regexExtract: a regular expression applied to a variable or to a SIP header value;
 * its groups (by number or name) go into variables, and the node takes `ifMatched` or
 * `ifNotMatched`.
 *
 * The input comes from a SIP sender, the pattern from the designer: the pattern is a literal
 * (no placeholders: a pattern built from caller input would be an injection), checked at load
 * for syntax, flags and nested quantifiers, compiled once (nodes/regex-safety.ts); the input is
 * refused beyond `maxInputLength` characters. A header is read as the header extraction node
 * reads it (names case-insensitive, compact forms): `index` picks one of its values as received
 * (0 = first, -1 = last), so a comma-separated list on one line is one value.
 *
 * `statusVariable` (optional) says why: `matched`, `notMatched`, `missing` (no such variable or
 * header value), `tooLong`.
 */
import type { NodeType } from '../engine/node-type';
import { normalizeHeaderName } from '../engine/cd';
import { CREDENTIALS_HEADERS } from '../engine/secrets';
import { toText } from '../engine/values';
import { nodeRef, writesVariable } from './common';
import { DEFAULT_MAX_INPUT, checkPattern, groupsOf, maxInputLength, regexFlags } from './regex-safety';

interface Values {
  variable?: string;
  header?: string;
  index?: number;
  pattern: string;
  flags?: string;
  storeInto?: Array<{ group: number | string; variable: string }>;
  maxInputLength?: number;
  statusVariable?: string;
  ifMatched?: number | string;
  ifNotMatched?: number | string;
}

const HEADER_NAME = "^[A-Za-z0-9!%*_+`'~.-]+$";

export const regexExtractNode: NodeType<Values> = {
  type: 'analysis.regexExtract',
  title: 'Regex extract',
  summary: '{variable}{header} ~ /{pattern}/',
  category: 'manipulation',
  description:
    'Applies a regular expression to a variable or a SIP header value and stores its groups (number or name) into variables; takes ifMatched or ifNotMatched.',
  valuesSchema: {
    type: 'object',
    required: ['pattern'],
    properties: {
      variable: { type: 'string', 'x-var': true, description: 'variable the pattern is applied to (give this or header)' },
      header: {
        type: 'string',
        pattern: `${HEADER_NAME}|^$`,
        description: 'SIP header the pattern is applied to (give this or variable; compact forms accepted)',
      },
      index: { type: 'integer', minimum: -100, maximum: 100, default: 0, description: 'which value of the header: 0 = first, 1 = second, -1 = last' },
      pattern: { type: 'string', minLength: 1, description: 'JavaScript regular expression, literal (no placeholders); nested quantifiers are refused' },
      flags: regexFlags,
      storeInto: {
        type: 'array',
        default: [],
        description: 'groups to store; an optional group that did not take part stores null',
        items: {
          type: 'object',
          required: ['group', 'variable'],
          properties: {
            group: { type: ['integer', 'string'], minimum: 0, minLength: 1, description: 'group number (0 = the whole match) or name' },
            variable: { ...writesVariable, description: 'variable receiving the group' },
          },
        },
      },
      maxInputLength,
      statusVariable: { ...writesVariable, description: 'optional: receives matched, notMatched, missing or tooLong' },
      ifMatched: { ...nodeRef, description: 'taken when the pattern matched' },
      ifNotMatched: { ...nodeRef, description: 'taken when it did not, or the input is missing or too long' },
    },
  },
  secrets(v, isSecret) {
    // a group of a secret (a password variable, a credentials header) is a secret
    const fromSecret =
      (typeof v.variable === 'string' && v.variable !== '' && isSecret(v.variable)) ||
      (typeof v.header === 'string' && CREDENTIALS_HEADERS.has(normalizeHeaderName(v.header)));
    return fromSecret && Array.isArray(v.storeInto) ? v.storeInto.map((s) => s?.variable).filter((x): x is string => typeof x === 'string' && x !== '') : [];
  },
  check(v) {
    const problems: Array<[string, string]> = [];
    const hasVariable = typeof v.variable === 'string' && v.variable !== '';
    const hasHeader = typeof v.header === 'string' && v.header !== '';
    if (hasVariable === hasHeader) problems.push([hasVariable ? 'header' : 'variable', 'give either variable or header (exactly one)']);
    const err = checkPattern(v.pattern, v.flags);
    if (err) {
      problems.push([/^flags/.test(err) ? 'flags' : 'pattern', err]);
      return problems;
    }
    if (typeof v.pattern !== 'string') return problems;
    const groups = groupsOf(v.pattern, typeof v.flags === 'string' ? v.flags : '');
    // check() also sees values the schema refused: read them defensively
    (Array.isArray(v.storeInto) ? v.storeInto : []).forEach((s, i) => {
      const g = s?.group;
      if (typeof g === 'number' && g > groups.count) problems.push([`storeInto/${i}/group`, `the pattern has ${groups.count} group(s)`]);
      if (typeof g === 'string' && !/^\d+$/.test(g) && !groups.names.includes(g))
        problems.push([`storeInto/${i}/group`, `the pattern has no group named "${g}"`]);
      if (typeof g === 'string' && /^\d+$/.test(g) && Number(g) > groups.count)
        problems.push([`storeInto/${i}/group`, `the pattern has ${groups.count} group(s)`]);
    });
    return problems;
  },
  compile(values, c) {
    const re = new RegExp(values.pattern, values.flags ?? ''); // checked at load; no g/y, so no state between messages
    const max = values.maxInputLength ?? DEFAULT_MAX_INPUT;
    const stores = (values.storeInto ?? []).map((s) => ({
      variable: s.variable,
      // "2" from a text field is group 2; any other text is a name
      group: typeof s.group === 'string' && /^\d+$/.test(s.group) ? Number(s.group) : s.group,
    }));
    const status = values.statusVariable || null;
    const matched = c.exit('ifMatched');
    const notMatched = c.exit('ifNotMatched');
    const variable = values.variable || null;
    const header = values.header ? normalizeHeaderName(values.header) : null;
    const index = values.index ?? 0;
    return (s) => {
      let input: string | null = null;
      if (variable !== null) {
        const v = s.cd.vars[variable];
        input = v === null || v === undefined ? null : toText(v);
      } else if (header !== null) {
        const all = s.cd.headers[header];
        input = all?.[index < 0 ? all.length + index : index] ?? null;
      }
      if (input === null || input.length > max) {
        if (status) s.set(status, input === null ? 'missing' : 'tooLong');
        return notMatched;
      }
      const m = re.exec(input);
      if (status) s.set(status, m ? 'matched' : 'notMatched');
      if (!m) return notMatched;
      for (const st of stores) {
        const g = typeof st.group === 'number' ? m[st.group] : m.groups?.[st.group];
        s.set(st.variable, g ?? null);
      }
      return matched;
    };
  },
};
