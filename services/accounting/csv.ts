/**
 * CSV export of CDRs (GET /api/v1/cdrs.csv): RFC 4180 (CRLF line ends; a cell holding a comma,
 * quote, CR or LF is quoted, quotes doubled) with a guard against formula injection: a text cell
 * starting with = + - @ (or a tab / CR) is prefixed with ' so a spreadsheet shows it as text
 * (OWASP "CSV injection"). Numbers stay numbers. Variables and custom fields become columns
 * `variables.<name>` and `fields.<name>` (the union over the rows exported).
 */
import type { Scalar } from '../../engine/types';
import type { CdrJson } from './database';

const FORMULA_START = /^[=+\-@\t\r]/;

export function csvCell(v: Scalar | undefined): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  const s = FORMULA_START.test(v) ? `'${v}` : v;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

const STANDARD: Array<keyof CdrJson> = [
  'id',
  'kind',
  'callId',
  'at',
  'setupAt',
  'connectAt',
  'endAt',
  'duration',
  'calling',
  'called',
  'source',
  'destination',
  'status',
  'reason',
  'logic',
];

export function cdrsCsv(rows: readonly CdrJson[], variables: readonly string[] = []): string {
  const vars = new Set(variables);
  const fields = new Set<string>();
  for (const r of rows) {
    for (const k of Object.keys(r.variables)) vars.add(k);
    for (const k of Object.keys(r.fields)) fields.add(k);
  }
  const header = [...STANDARD, ...[...vars].map((v) => `variables.${v}`), ...[...fields].map((f) => `fields.${f}`)];
  const lines = [header.map((h) => csvCell(h)).join(',')];
  for (const r of rows) {
    lines.push(
      [
        ...STANDARD.map((k) => csvCell(r[k] as Scalar)),
        ...[...vars].map((v) => csvCell(Object.hasOwn(r.variables, v) ? r.variables[v] : null)),
        ...[...fields].map((f) => csvCell(Object.hasOwn(r.fields, f) ? r.fields[f] : null)),
      ].join(','),
    );
  }
  return lines.join('\r\n') + '\r\n';
}
