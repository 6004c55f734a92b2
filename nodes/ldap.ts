/**
 * LDAP search (`query.ldap`): one search through the run context's LdapPort (services/ldap,
 * `nodes.ldap`), attributes of the first entry into variables.
 *
 * Why the escaping: `[var]` placeholders of the filter and the base usually carry what a SIP
 * sender wrote (a From user, a called number). Each substituted value is escaped, in the filter
 * per RFC 4515 §3 (`*`, `(`, `)`, `\` and NUL as `\2a`, `\28`, `\29`, `\5c`, `\00`), in the base
 * DN per RFC 4514 §2.4, so a value such as `*)(uid=*` matches itself only and cannot widen the
 * filter or move the base. The literal text around the placeholders is the designer's and is
 * taken as written (checked for balanced parentheses at load).
 *
 * Limits: sizeLimit entries at most (≤ 1000; the first gives the variables, all of them the
 * optional list of records), timeoutMs (≤ 30 s) for the whole search.
 *
 * Exits: ifFound, ifNotFound (no entry), ifFailure (no LDAP server configured, bind refused,
 * server down, timeout, a refused search); the status variable says which, never with the bind
 * password.
 */
import type { NodeType } from '../engine/node-type';
import { SECRET_COLUMN_PATTERN } from '../engine/secrets';
import type { CdValue, RecordRow } from '../engine/types';
import { toText } from '../engine/values';
import { nodeRef, writesVariable } from './common';

interface Attribute {
  attribute: string;
  variable: string;
  multiple?: 'first' | 'join';
}
interface Values {
  base: string;
  scope?: 'base' | 'one' | 'sub';
  filter: string;
  attributes: Attribute[];
  separator?: string;
  sizeLimit?: number;
  timeoutMs?: number;
  storeIntoRecordsList?: string;
  storeStatusInto?: string;
  ifFound?: number | string;
  ifNotFound?: number | string;
  ifFailure?: number | string;
}

const PLACEHOLDER = /\[([A-Za-z_][A-Za-z0-9_.-]*)\]/g;
const DEFAULT_STATUS_VARIABLE = 'ldapStatus';

/** RFC 4515 §3: a value inside a filter. */
export function escapeFilterValue(v: string): string {
  return v.replace(/[*()\\\0]/g, (c) => '\\' + c.charCodeAt(0).toString(16).padStart(2, '0'));
}

/** RFC 4514 §2.4: a value inside a DN (an attribute value of an RDN). */
export function escapeDnValue(v: string): string {
  return v
    .replace(/[\\,+"<>;=]/g, (c) => '\\' + c)
    .replace(/\0/g, '\\00')
    .replace(/^[ #]/, (c) => '\\' + c)
    .replace(/ $/, '\\ ');
}

/**
 * A template whose known `[var]` placeholders are substituted, each value through `escape`;
 * placeholders naming no known variable stay as written (as every value field does).
 */
function template(raw: string, isVariable: (name: string) => boolean, escape: (v: string) => string): (vars: Record<string, CdValue>) => string {
  const parts = raw.split(PLACEHOLDER);
  return (vars) => {
    let out = parts[0];
    for (let i = 1; i < parts.length; i += 2) {
      out += isVariable(parts[i]) ? escape(toText(vars[parts[i]] ?? null)) : `[${parts[i]}]`;
      out += parts[i + 1];
    }
    return out;
  };
}

/** Why a filter template is not a parenthesised LDAP filter, or null (placeholders stand for values). */
export function filterProblem(filter: string): string | null {
  const t = filter.replace(PLACEHOLDER, 'x').trim();
  if (!t.startsWith('(') || !t.endsWith(')')) return 'must be a parenthesised LDAP filter such as (uid=[fromUsername])';
  let depth = 0;
  for (let i = 0; i < t.length; i++) {
    if (t[i] === '\\') i += 2;
    else if (t[i] === '(') depth++;
    else if (t[i] === ')' && --depth === 0 && i !== t.length - 1) return `text after the filter's closing ")" at character ${i + 2}`;
  }
  return depth === 0 ? null : 'unbalanced "("';
}

export const ldapNode: NodeType<Values> = {
  type: 'query.ldap',
  title: 'LDAP search',
  summary: '{base}{if filter} {filter}{end}',
  category: 'query',
  description:
    'Searches the LDAP directory (nodes.ldap) with a filter whose [var] values are escaped (RFC 4515); attributes of the first entry into variables.',
  valuesSchema: {
    type: 'object',
    required: ['base', 'filter', 'attributes'],
    properties: {
      base: { type: 'string', description: 'base DN; [var] values are escaped as DN values (RFC 4514)', default: 'dc=example,dc=com' },
      scope: {
        type: 'string',
        enum: ['base', 'one', 'sub'],
        description: 'base: the base entry only; one: its children; sub: the whole subtree',
        default: 'sub',
      },
      filter: {
        type: 'string',
        minLength: 2,
        maxLength: 4096,
        description: 'LDAP filter (RFC 4515); [var] values are escaped, so they match themselves only',
        default: '(telephoneNumber=[called])',
      },
      attributes: {
        type: 'array',
        minItems: 1,
        maxItems: 64,
        description: 'attributes of the first entry stored into variables (a missing attribute stores null); "dn" is the entry\'s DN',
        items: {
          type: 'object',
          required: ['attribute', 'variable'],
          properties: {
            attribute: { type: 'string', pattern: '^([A-Za-z][A-Za-z0-9-]*(;[A-Za-z0-9-]+)*|[0-9]+(\\.[0-9]+)+)$', description: 'attribute name or OID' },
            // userPassword and the like make their variable a secret (engine/secrets.ts), redacted in API answers and CLI output
            variable: { ...writesVariable, 'x-secret': { when: 'attribute', matches: SECRET_COLUMN_PATTERN }, description: 'variable receiving the value' },
            multiple: {
              type: 'string',
              enum: ['first', 'join'],
              description: 'an attribute with several values: the first one, or all joined with the separator',
              default: 'first',
            },
          },
        },
      },
      separator: { type: 'string', maxLength: 16, description: 'between the values of a "join" attribute', default: ',' },
      sizeLimit: { type: 'integer', minimum: 1, maximum: 1000, description: 'entries asked for at most', default: 1 },
      timeoutMs: {
        type: 'integer',
        minimum: 1,
        maximum: 30000,
        description: 'time allowed for the search, the connection and bind included (ms)',
        default: 2000,
      },
      storeIntoRecordsList: {
        ...writesVariable,
        description: 'optional: every entry found as a list of records, one column per attribute variable',
      },
      storeStatusInto: {
        ...writesVariable,
        description: `variable receiving found, notFound or failure: … (default ${DEFAULT_STATUS_VARIABLE})`,
        default: DEFAULT_STATUS_VARIABLE,
      },
      ifFound: { ...nodeRef, description: 'at least one entry' },
      ifNotFound: { ...nodeRef, description: 'no entry' },
      ifFailure: { ...nodeRef, description: 'no LDAP server configured, bind refused, server down, timeout or a refused search' },
    },
  },
  writes: (v) =>
    [...(v.attributes ?? []).map((a) => a?.variable), v.storeIntoRecordsList, v.storeStatusInto || DEFAULT_STATUS_VARIABLE].filter(
      (x): x is string => typeof x === 'string' && x !== '',
    ),
  check(v) {
    const problem = typeof v.filter === 'string' ? filterProblem(v.filter) : null;
    return problem ? [['filter', problem]] : [];
  },
  compile(values, c) {
    const isVariable = (name: string) => c.isVariable(name);
    const base = template(values.base, isVariable, escapeDnValue);
    const filter = template(values.filter, isVariable, escapeFilterValue);
    const attributes = values.attributes.map((a) => ({ name: a.attribute.toLowerCase(), variable: a.variable, join: a.multiple === 'join' }));
    const requested = [...new Set(values.attributes.map((a) => a.attribute))];
    const separator = values.separator ?? ',';
    const scope = values.scope ?? 'sub';
    const sizeLimit = values.sizeLimit ?? 1;
    const timeoutMs = values.timeoutMs ?? 2000;
    const listVar = values.storeIntoRecordsList || null;
    const status = values.storeStatusInto || DEFAULT_STATUS_VARIABLE;
    const found = c.exit('ifFound');
    const notFound = c.exit('ifNotFound');
    const failure = c.exit('ifFailure');

    const valueOf = (entry: Record<string, string[]>, a: (typeof attributes)[number]) => {
      const vs = entry[a.name];
      if (!vs || vs.length === 0) return null;
      return a.join ? vs.join(separator) : vs[0];
    };

    return async (s) => {
      const ldap = s.ctx.ldap;
      if (!ldap) {
        s.set(status, 'failure: no LDAP server configured (nodes.ldap.url)');
        return failure;
      }
      let entries: Array<Record<string, string[]>>;
      try {
        const vars = s.cd.vars;
        entries = await ldap.search({ base: base(vars), scope, filter: filter(vars), attributes: requested, sizeLimit, timeoutMs });
      } catch (e) {
        s.set(status, `failure: ${(e as Error).message}`);
        return failure;
      }
      if (entries.length === 0) {
        s.set(status, 'notFound');
        return notFound;
      }
      for (const a of attributes) s.set(a.variable, valueOf(entries[0], a));
      if (listVar) {
        s.set(
          listVar,
          entries.slice(0, sizeLimit).map((entry) => {
            const row: RecordRow = {};
            for (const a of attributes) row[a.variable] = valueOf(entry, a);
            return row;
          }),
        );
      }
      s.set(status, 'found');
      return found;
    };
  },
};
