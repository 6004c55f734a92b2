/**
 * ENUM lookup (`query.enum`, RFC 6116): the number's NAPTR records under `e164.arpa` (or another
 * suffix) through the run context's DnsPort, the first usable rule applied to the number (RFC
 * 3402 §4) and the resulting URI stored into a variable.
 *
 * Why so careful: the number usually comes from an unauthenticated SIP sender and the records
 * from a DNS server the operator may not control. So
 * - only digits reach the DNS name: visual separators (space, `-`, `.`, `(`, `)`) and one
 *   leading `+` are dropped, anything else makes the number invalid (at most 15 digits, E.164);
 * - a record's regular expression is compiled only when it cannot backtrack catastrophically
 *   (see `compileNaptrRegexp`: at most 256 characters, no backreference, lookaround or quantified
 *   group, at most 6 quantifiers and 6 alternatives), and it runs on the 16-character AUS only;
 * - the result must be a sip:, sips: or tel: URI of at most 256 printable characters, else the
 *   record is skipped.
 *
 * Rules (RFC 3403 §4.1, RFC 3402 §4): records sorted by order then preference; the first whose
 * service is accepted and whose flags are `u` (terminal) with a regexp that matches gives the
 * URI, and records of a higher order are not considered once an order had a usable record. A
 * non-terminal record (empty flags, a replacement domain) is followed, at most 4 lookups in all.
 *
 * Exits: ifFound (URI stored), ifNotFound (no record, no usable record, NXDOMAIN, or an invalid
 * number), ifTimeout (no answer in time, and also a server failure such as SERVFAIL or REFUSED:
 * in both cases the DNS said nothing about the number). The status variable says which.
 */
import type { NodeType } from '../engine/node-type';
import { DnsQueryError, type NaptrRecord } from '../engine/ports';
import { toText } from '../engine/values';
import { parseUri } from '../grammar/sip-values';
import { anyValue, nodeRef, writesVariable } from './common';

interface Values {
  number: unknown;
  suffix?: string;
  service?: string;
  timeoutMs?: number;
  storeInto: string;
  storeStatusInto?: string;
  ifFound?: number | string;
  ifNotFound?: number | string;
  ifTimeout?: number | string;
}

/** E.164: at most 15 digits (ITU-T E.164 §6). */
const MAX_DIGITS = 15;
/** DNS lookups per visit: the first plus non-terminal rules followed. */
const MAX_LOOKUPS = 4;
const MAX_REGEXP_LENGTH = 256;
const MAX_QUANTIFIERS = 6;
const MAX_ALTERNATIVES = 6;
const MAX_URI_LENGTH = 256;
const DEFAULT_STATUS_VARIABLE = 'enumStatus';

/** A DNS name of letters, digits and hyphens (the suffix, a replacement). */
const DOMAIN = /^(?=.{1,253}\.?$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.?$/;
/** Visual separators of a dialled number (ITU-T E.123); a tab, newline or other space is not one. */
const SEPARATORS = /[ \-.()]/g;
/** POSIX character classes inside bracket expressions (`[[:digit:]]`), as JavaScript ranges. */
const POSIX_CLASSES: Record<string, string> = { digit: '0-9', alpha: 'A-Za-z', alnum: 'A-Za-z0-9', upper: 'A-Z', lower: 'a-z', xdigit: '0-9A-Fa-f' };
const POSIX_CLASS = /\[:(digit|alpha|alnum|upper|lower|xdigit):\]/g;
/** A URI as it may be stored: printable ASCII, no space, quote or angle bracket. */
const URI_TEXT = /^(sips?|tel):[!#-;=?-~]+$/i;

/**
 * The digits of a number as they go into the DNS name, or null when it is not an E.164 number
 * (letters, a second `+`, more than 15 digits, nothing).
 */
export function enumDigits(number: string): string | null {
  const compact = number.replace(SEPARATORS, '');
  const digits = compact.startsWith('+') ? compact.slice(1) : compact;
  return digits.length >= 1 && digits.length <= MAX_DIGITS && /^\d+$/.test(digits) ? digits : null;
}

/** `4.3.2.1.e164.arpa` for 1234 (RFC 6116 §2.4). */
export function enumDomain(digits: string, suffix: string): string {
  return `${digits.split('').reverse().join('.')}.${suffix.replace(/^\.+|\.+$/g, '')}`;
}

export interface NaptrRule {
  regex: RegExp;
  replacement: string;
}

/**
 * Parses a NAPTR regexp field `<delim><ERE><delim><replacement><delim>[i]` (RFC 3402 §3.2) into
 * a JavaScript regex and its replacement, or returns why it is refused. POSIX classes such as
 * `[[:digit:]]` become ranges; ERE and JavaScript agree on the rest. The ERE is accepted only
 * in a form whose backtracking stays bounded on a 16-character subject: no backreference,
 * lookaround or other `(?` group, no quantifier on a group, few quantifiers and alternatives.
 */
export function compileNaptrRegexp(field: string): NaptrRule | string {
  if (field.length < 4 || field.length > MAX_REGEXP_LENGTH) return `regexp of ${field.length} characters (4 to ${MAX_REGEXP_LENGTH})`;
  const delim = field[0];
  if (/[0-9\\i]/.test(delim)) return `delimiter ${JSON.stringify(delim)} is not allowed`;
  const parts: string[] = [];
  let cur = '';
  for (let i = 1; i < field.length; i++) {
    const ch = field[i];
    if (ch === '\\' && i + 1 < field.length) {
      // an escaped delimiter stands for itself; other escapes are kept for the ERE / replacement
      cur += field[i + 1] === delim ? delim : ch + field[i + 1];
      i++;
    } else if (ch === delim) {
      parts.push(cur);
      cur = '';
    } else cur += ch;
  }
  if (parts.length !== 2 || (cur !== '' && cur !== 'i')) return 'regexp is not <delim>ERE<delim>replacement<delim>[i]';
  const [posixEre, replacement] = parts;
  const ere = posixEre.replace(POSIX_CLASS, (_, name: string) => POSIX_CLASSES[name]);
  const unsafe = unsafeEre(ere);
  if (unsafe) return unsafe;
  try {
    return { regex: new RegExp(ere, cur === 'i' ? 'i' : ''), replacement };
  } catch (e) {
    return `invalid ERE: ${(e as Error).message}`;
  }
}

/** Why an ERE could backtrack without bound (or uses what ERE has not), or null. */
function unsafeEre(ere: string): string | null {
  let quantifiers = 0;
  let alternatives = 0;
  let depth = 0;
  for (let i = 0; i < ere.length; i++) {
    const ch = ere[i];
    if (ch === '\\') {
      if (/[1-9k]/.test(ere[i + 1] ?? '')) return 'backreferences are not allowed';
      i++;
    } else if (ch === '[') {
      // a bracket expression is one atom: skip to its end (a leading `]` or `^]` is literal)
      let j = i + 1;
      if (ere[j] === '^') j++;
      if (ere[j] === ']') j++;
      while (j < ere.length && ere[j] !== ']') j += ere[j] === '\\' ? 2 : 1;
      i = j;
    } else if (ch === '(') {
      if (ere[i + 1] === '?') return 'groups with (? are not allowed';
      depth++;
    } else if (ch === ')') {
      depth--;
      if (/[*+?{]/.test(ere[i + 1] ?? '')) return 'a quantified group is not allowed';
    } else if (ch === '*' || ch === '+' || ch === '?' || ch === '{') {
      if (++quantifiers > MAX_QUANTIFIERS) return `more than ${MAX_QUANTIFIERS} quantifiers`;
    } else if (ch === '|') {
      if (++alternatives > MAX_ALTERNATIVES) return `more than ${MAX_ALTERNATIVES} alternatives`;
    }
  }
  return depth === 0 ? null : 'unbalanced parentheses';
}

/** The replacement with `\1`…`\9` substituted and `\x` read as x (RFC 3402 §3.2). */
export function applyNaptrRule(rule: NaptrRule, aus: string): string | null {
  const m = rule.regex.exec(aus);
  if (!m) return null;
  return rule.replacement.replace(/\\(.)/g, (_, c: string) => (c >= '1' && c <= '9' ? (m[Number(c)] ?? '') : c));
}

/** A URI ENUM may hand to the routing logic: sip:, sips: (a host is required) or tel:, bounded. */
export function acceptableUri(uri: string): boolean {
  if (uri.length > MAX_URI_LENGTH || !URI_TEXT.test(uri)) return false;
  const parsed = parseUri(uri);
  return parsed !== null && (parsed.scheme === 'tel' ? !!parsed.user : !!parsed.host);
}

/** Accepted services, lower case (`E2U+sip`, `E2U+voice:sip`). */
function servicesOf(list: string): Set<string> {
  return new Set(
    list
      .split(',')
      .map((s) => s.trim().toLowerCase())
      .filter(Boolean),
  );
}

type Choice = { uri: string } | { next: string } | null;

/** The first usable record of a NAPTR set, per RFC 3403 §4.1 order / preference. */
export function chooseNaptr(records: NaptrRecord[], services: ReadonlySet<string>, aus: string): Choice {
  const sorted = [...records].sort((a, b) => a.order - b.order || a.preference - b.preference);
  let usableOrder: number | null = null;
  for (const r of sorted) {
    if (usableOrder !== null && r.order !== usableOrder) break;
    const flags = r.flags.toLowerCase();
    if (flags === '' && r.regexp === '' && r.replacement && r.replacement !== '.' && DOMAIN.test(r.replacement)) {
      // non-terminal: the rule continues at another domain (RFC 3402 §4, RFC 6116 §3.4.3)
      return { next: r.replacement };
    }
    if (!services.has(r.service.toLowerCase()) || flags !== 'u') continue;
    const rule = compileNaptrRegexp(r.regexp);
    if (typeof rule === 'string') continue;
    usableOrder = r.order;
    const uri = applyNaptrRule(rule, aus);
    if (uri !== null && acceptableUri(uri)) return { uri };
  }
  return null;
}

export const enumNode: NodeType<Values> = {
  type: 'query.enum',
  title: 'ENUM lookup',
  summary: 'ENUM {number}',
  category: 'query',
  description:
    'ENUM (RFC 6116) NAPTR lookup of an E.164 number; the URI of the first usable record (order, preference, service, flag "u") into a variable. ' +
    'A DNS server failure takes ifTimeout like no answer; the status variable says which.',
  valuesSchema: {
    type: 'object',
    required: ['number', 'storeInto'],
    properties: {
      number: {
        ...anyValue,
        description: 'the number: a variable or text with [var] placeholders; E.164 with or without "+", spaces, dashes, dots and parentheses ignored',
        default: 'called',
      },
      suffix: { type: 'string', pattern: DOMAIN.source, description: 'ENUM domain the reversed digits go under', default: 'e164.arpa' },
      service: {
        type: 'string',
        minLength: 1,
        description: 'accepted NAPTR services, comma-separated, case-insensitive (E2U+sip, E2U+voice:sip, …)',
        default: 'E2U+sip',
      },
      timeoutMs: { type: 'integer', minimum: 1, maximum: 30000, description: 'time allowed for the whole lookup (ms)', default: 2000 },
      storeInto: { ...writesVariable, description: 'variable receiving the URI (sip:, sips: or tel:)' },
      storeStatusInto: {
        ...writesVariable,
        description: `variable receiving found, notFound, invalidNumber, timeout or failure: … (default ${DEFAULT_STATUS_VARIABLE})`,
        default: DEFAULT_STATUS_VARIABLE,
      },
      ifFound: { ...nodeRef, description: 'a URI was stored' },
      ifNotFound: { ...nodeRef, description: 'no usable record, NXDOMAIN, or not an E.164 number' },
      ifTimeout: { ...nodeRef, description: 'no answer in time, or a DNS server failure (SERVFAIL, REFUSED, unreachable)' },
    },
  },
  writes: (v) => [v.storeInto, v.storeStatusInto || DEFAULT_STATUS_VARIABLE].filter((x): x is string => typeof x === 'string' && x !== ''),
  compile(values, c) {
    const number = c.value(values.number);
    const suffix = values.suffix ?? 'e164.arpa';
    const services = servicesOf(values.service ?? 'E2U+sip');
    const timeoutMs = values.timeoutMs ?? 2000;
    const storeInto = values.storeInto;
    const status = values.storeStatusInto || DEFAULT_STATUS_VARIABLE;
    const found = c.exit('ifFound');
    const notFound = c.exit('ifNotFound');
    const timeout = c.exit('ifTimeout');
    return async (s) => {
      const digits = enumDigits(toText(number(s.cd.vars)));
      if (digits === null) {
        s.set(status, 'invalidNumber');
        return notFound;
      }
      const dns = s.ctx.dns;
      if (!dns) {
        s.set(status, 'failure: no DNS resolver in this context');
        return timeout;
      }
      const aus = `+${digits}`;
      const deadline = s.ctx.clock.now() + timeoutMs;
      let domain = enumDomain(digits, suffix);
      try {
        for (let lookup = 0; lookup < MAX_LOOKUPS; lookup++) {
          const left = deadline - s.ctx.clock.now();
          if (left <= 0) throw new DnsQueryError('no answer in time', 'timeout');
          const choice = chooseNaptr(await dns.naptr(domain, left), services, aus);
          if (choice === null) break;
          if ('uri' in choice) {
            s.set(storeInto, choice.uri);
            s.set(status, 'found');
            return found;
          }
          domain = choice.next;
        }
        s.set(status, 'notFound');
        return notFound;
      } catch (e) {
        const kind = e instanceof DnsQueryError ? e.kind : 'failure';
        s.set(status, kind === 'timeout' ? 'timeout' : `failure: ${(e as Error).message}`);
        return timeout;
      }
    };
  },
};
