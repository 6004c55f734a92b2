/**
 * Failover of the relaying nodes (output.relay, output.nit.registrar.lookupLocationService): SRE's
 * crankback, Kamailio's dispatcher failover. The node's own destination is the first attempt;
 * `alternatives` (destinations, placeholders allowed) and then the rows of `alternativesList` (a
 * list-of-records variable, the URI in `alternativesColumn`) are tried one after the other when
 * an attempt times out or answers a status `failoverCodes` accepts. When every attempt failed,
 * the logic continues at `ifAllFailed` with `lastCode` and `lastRequestURI` set (the front end
 * sets them after each failed attempt); without `ifAllFailed` the last attempt's response goes to
 * the caller. The proxy carries the sequence out (sip/proxy.ts RelaySequence): a CANCEL stops it,
 * a 2xx ends it.
 *
 * Codes: entries `408`, `5xx`, `6xx`, and exclusions `!486`, `!603`, applied in that order
 * (every inclusion, then every exclusion), compiled once into a 700-entry table.
 *
 * Limits: MAX_ATTEMPTS alternatives per relay (destinations and rows together; more are ignored
 * and the node says so in the log); a destination that resolves to nothing, or to text that is
 * no URI, is skipped (logged), never relayed; `attemptTimeoutMs` bounds the wait for a first
 * response from each attempt (Kamailio's fr_timer) so a dead gateway fails over in that time
 * rather than after Timer B (32 s).
 */
import type { CompileContext, RunState } from '../engine/node-type';
import type { RelayFailover, RelayTarget } from '../engine/types';
import { hasControlChar, toText } from '../engine/values';
import { parseUri } from '../grammar/sip-values';
import { nodeRef } from './common';
import { cellOf, columnName, listVariable, readList } from './list';

/** Attempts after the first, at most. */
export const MAX_ATTEMPTS = 16;

export const DEFAULT_FAILOVER_CODES = ['408', '5xx', '6xx', '!486', '!600', '!603'];

export interface FailoverValues {
  alternatives?: string[];
  alternativesList?: string;
  alternativesColumn?: string;
  failoverCodes?: string[];
  attemptTimeoutMs?: number;
  ifAllFailed?: number | string;
}

/** The failover fields, declared once for both relaying nodes. */
export const failoverProperties = {
  alternatives: {
    type: 'array',
    maxItems: MAX_ATTEMPTS,
    items: { type: 'string', minLength: 1, 'x-var': true },
    description: 'destinations tried in order when the previous attempt fails (placeholders allowed), e.g. sip:[called]@gw2.example',
  },
  alternativesList: {
    ...listVariable,
    description: 'a list variable whose rows are tried after the alternatives, in row order (e.g. the routes a query returned)',
  },
  alternativesColumn: { ...columnName, default: 'uri', description: 'column of alternativesList holding each row’s destination URI' },
  failoverCodes: {
    type: 'array',
    items: { type: 'string', pattern: '^!?[3-6]([0-9]{2}|xx)$' },
    default: DEFAULT_FAILOVER_CODES,
    description: 'statuses that move on to the next destination: a code (408), a class (5xx), an exclusion (!486); a timeout counts as 408',
  },
  attemptTimeoutMs: {
    type: 'integer',
    minimum: 100,
    maximum: 32000,
    description: 'give an attempt up (as 408) when no response at all came within this time; default: the SIP transaction timeout (32 s)',
  },
  ifAllFailed: {
    ...nodeRef,
    'x-optional': true,
    description: 'taken when every destination failed, with lastCode and lastRequestURI set; unset: the last response goes to the caller',
  },
} as const;

/** Located problems of literal alternatives (placeholders are checked when they are filled). */
export function checkFailover(values: FailoverValues): Array<[string, string]> {
  const problems: Array<[string, string]> = [];
  (values.alternatives ?? []).forEach((a, i) => {
    if (typeof a === 'string' && !a.includes('[') && !isUri(withScheme(a))) problems.push([`alternatives/${i}`, `not a SIP URI: ${a}`]);
  });
  return problems;
}

/** A destination as a URI: `sip:` added when it has no scheme (`gw.example:5080` is a host and port, not a scheme). */
export function withScheme(uri: string): string {
  return /^[a-z][a-z0-9+.-]*:/i.test(uri) && !/^[^:@;]+:\d+(?:[;?]|$)/.test(uri) ? uri : `sip:${uri}`;
}

/** A SIP URI with a host and no control character (a sender's CR LF never reaches a request line). */
function isUri(uri: string): boolean {
  if (hasControlChar(uri)) return false;
  const u = parseUri(uri);
  return u !== null && (u.scheme === 'sip' || u.scheme === 'sips') && u.host !== '';
}

/** `failoverCodes` as a predicate on a status. */
export function failoverCodeTable(codes: readonly string[]): (status: number) => boolean {
  const table = new Uint8Array(700);
  const mark = (code: string, on: number) => {
    const c = code.startsWith('!') ? code.slice(1) : code;
    if (c.endsWith('xx')) table.fill(on, Number(c[0]) * 100, Number(c[0]) * 100 + 100);
    else table[Number(c)] = on;
  };
  for (const c of codes) if (!c.startsWith('!')) mark(c, 1);
  for (const c of codes) if (c.startsWith('!')) mark(c, 0);
  return (status) => status >= 0 && status < 700 && table[status] === 1;
}

/**
 * Compiles a node's failover fields: null when it has none (a plain relay, as before), else a
 * function building the run's RelayFailover (its alternatives filled from the call descriptor).
 */
export function compileFailover(values: FailoverValues, c: CompileContext): ((s: RunState) => RelayFailover) | null {
  const fixed = (values.alternatives ?? []).map((a) => c.value(a));
  const list = values.alternativesList || null;
  const column = values.alternativesColumn || 'uri';
  const hasExit = values.ifAllFailed !== undefined && values.ifAllFailed !== null && values.ifAllFailed !== '';
  if (fixed.length === 0 && list === null && !hasExit) return null;
  const codes = failoverCodeTable(values.failoverCodes ?? DEFAULT_FAILOVER_CODES);
  const attemptTimeoutMs = values.attemptTimeoutMs;
  return (s) => {
    const uris: string[] = fixed.map((get) => toText(get(s.cd.vars)));
    if (list !== null) for (const row of readList(s.cd.vars, list)) uris.push(toText(cellOf(row, column)));
    const alternatives: RelayTarget[][] = [];
    let skipped = 0;
    for (const raw of uris) {
      const uri = raw.trim();
      if (alternatives.length === MAX_ATTEMPTS) {
        skipped++;
        continue;
      }
      if (uri === '' || !isUri(withScheme(uri))) {
        skipped++;
        continue;
      }
      alternatives.push([{ uri: withScheme(uri) }]);
    }
    if (skipped > 0) s.ctx.log?.log('warn', `${c.where}: ${skipped} alternative destination(s) empty, not a SIP URI or beyond ${MAX_ATTEMPTS}: skipped`);
    return attemptTimeoutMs === undefined ? { alternatives, codes } : { alternatives, codes, attemptTimeoutMs };
  };
}
