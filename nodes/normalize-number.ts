/**
 * action.normalizeNumber: a phone number, as SIP brings it, into E.164, national, international
 * or RFC 3966 form through libphonenumber-js, with its `max` metadata (full numbering-plan
 * patterns: a number is valid only when its country's plan allows it, and its type — mobile,
 * fixed line, toll free — is known; the `min` metadata checks lengths only and knows no types).
 * Measured on this machine: loading either takes about 90 ms and ~10 MB, parsing and validating a
 * number ~15 µs. The library is loaded when the first logic using this node is validated or
 * compiled, so processes and SIP threads whose logics never normalise numbers do not pay for it.
 *
 * Accepted input (anything else takes `ifInvalid`):
 * - a number with visual separators (`+33 1 23 45 67 89`, `06.12.34.56.78`, `(650) 253-0000`),
 *   international with `+` or the country's international prefix (`0033…` from FR, `011…` from
 *   US), or national (needs a country);
 * - a `tel:` URI (`tel:+33123456789`; a local number with `phone-context=+33` takes that calling
 *   code), or a `sip:`/`sips:` URI whose user part is such a number (`sip:0123456789@host;user=phone`,
 *   also without user=phone; user parameters such as `;npdi` are ignored, `;phone-context=` is
 *   honoured as in tel), alone or in a name-addr (`"Alice" <sip:…>`).
 * Extensions (`;ext=`) are dropped. Input beyond 256 characters is refused unread.
 *
 * The country of national numbers is the node's `country` (ISO 3166-1 alpha-2, placeholders
 * allowed), else `nodes.numbers.defaultCountry` of the configuration (the run context's `numbers`),
 * else none: only international numbers are then valid. An international number is valid when it
 * is valid in its own country, whatever `country` says.
 *
 * On `next` the node writes `storeInto` and the optional country, calling code and type variables;
 * on `ifInvalid` only `statusVariable` (the reason), so a number normalised in place is left alone.
 */
import type * as Phone from 'libphonenumber-js/max';
import type { NodeType } from '../engine/node-type';
import { parseNameAddr, parseParams, parseUri } from '../grammar/sip-values';
import { toText } from '../engine/values';
import { anyValue, nodeRef, writesVariable } from './common';

type Format = 'E.164' | 'national' | 'nationalDigits' | 'international' | 'RFC3966';

interface Values {
  value: unknown;
  country?: string;
  format?: Format;
  storeInto: string;
  countryVariable?: string;
  callingCodeVariable?: string;
  typeVariable?: string;
  statusVariable?: string;
  next?: number | string;
  ifInvalid?: number | string;
}

/** Longest input read (a SIP URI holding a number; libphonenumber itself stops at 250). */
export const MAX_NUMBER_INPUT = 256;

let phone: typeof Phone | undefined;
/** libphonenumber-js/max, loaded on first use (see the header comment). */
function lib(): typeof Phone {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- deferred load: ~90 ms and ~10 MB only for logics using this node
  return (phone ??= require('libphonenumber-js/max') as typeof Phone);
}

/** libphonenumber's parse errors, as `statusVariable` says them. */
const PARSE_ERRORS: Record<string, string> = {
  NOT_A_NUMBER: 'notANumber',
  INVALID_COUNTRY: 'noCountry',
  TOO_SHORT: 'tooShort',
  TOO_LONG: 'tooLong',
  INVALID_LENGTH: 'invalidLength',
};

/** The number text and calling code context of a raw value: a bare number, a tel: or a sip: URI. */
function numberOf(raw: string): { text: string; callingCode?: string } | null {
  let s = raw.trim();
  if (s.includes('<')) s = parseNameAddr(s)?.uri ?? '';
  if (!/^(tel|sips?):/i.test(s)) return { text: s };
  const uri = parseUri(s);
  if (!uri || !uri.user || (uri.scheme !== 'tel' && uri.scheme !== 'sip' && uri.scheme !== 'sips')) return null;
  // sip: the user part may carry telephone-subscriber parameters (`;npdi`, `;phone-context=`)
  const semi = uri.scheme === 'tel' ? -1 : uri.user.indexOf(';');
  const text = semi >= 0 ? uri.user.slice(0, semi) : uri.user;
  const params = uri.scheme === 'tel' ? uri.params : semi >= 0 ? parseParams(uri.user.slice(semi)) : {};
  const context = params['phone-context'];
  const callingCode = !text.startsWith('+') && context && /^\+\d{1,3}$/.test(context) ? context.slice(1) : undefined;
  return { text, callingCode };
}

export const normalizeNumberNode: NodeType<Values> = {
  type: 'action.normalizeNumber',
  title: 'Normalize number',
  summary: '{value} → {storeInto}{if format} ({format}){end}',
  category: 'manipulation',
  description:
    'Normalises a phone number (digits with separators, 00/+ international, tel: or sip: URI) to E.164, national, international or RFC 3966 form with libphonenumber-js; ifInvalid when it is no valid number.',
  valuesSchema: {
    type: 'object',
    required: ['value', 'storeInto'],
    properties: {
      value: { ...anyValue, default: 'called', description: 'the number: a variable (called, calling, toURI…) or text with [name] placeholders' },
      country: {
        type: 'string',
        pattern: '^([A-Za-z]{2}|.*\\[[A-Za-z_][A-Za-z0-9_.-]*\\].*)?$',
        default: '',
        description:
          'ISO 3166-1 alpha-2 country of national numbers (FR, US), or a [name] placeholder; empty: nodes.numbers.defaultCountry of the configuration',
      },
      format: {
        type: 'string',
        enum: ['E.164', 'national', 'nationalDigits', 'international', 'RFC3966'],
        default: 'E.164',
        description:
          'E.164 (+33123456789), national (01 23 45 67 89), nationalDigits (0123456789), international (+33 1 23 45 67 89), RFC3966 (tel:+33123456789)',
      },
      storeInto: { ...writesVariable, description: 'variable receiving the normalised number' },
      countryVariable: { ...writesVariable, description: "optional: receives the number's country (FR), or null for non-geographic numbers" },
      callingCodeVariable: { ...writesVariable, description: 'optional: receives the country calling code (33)' },
      typeVariable: { ...writesVariable, description: 'optional: receives MOBILE, FIXED_LINE, FIXED_LINE_OR_MOBILE, TOLL_FREE, PREMIUM_RATE, VOIP, … or null' },
      statusVariable: {
        ...writesVariable,
        description: 'optional: receives valid, or why not: missing, tooLong, notANumber, noCountry, unknownCountry, tooShort, invalidLength, invalid',
      },
      next: { ...nodeRef, description: 'taken with a valid number' },
      ifInvalid: { ...nodeRef, description: 'taken when the value is missing or is no valid number (default: the run ends, as for any unset exit)' },
    },
  },
  check(v) {
    const country = v.country;
    if (typeof country !== 'string' || !/^[A-Za-z]{2}$/.test(country)) return [];
    return lib().isSupportedCountry(country.toUpperCase())
      ? []
      : [['country', `unknown country "${country}" (an ISO 3166-1 alpha-2 code libphonenumber knows: FR, US, …)`]];
  },
  compile(values, c) {
    const { parsePhoneNumberWithError, isSupportedCountry } = lib();
    const input = c.value(values.value);
    const country = values.country ? c.value(values.country) : null;
    const format = values.format ?? 'E.164';
    const { storeInto, countryVariable, callingCodeVariable, typeVariable, statusVariable } = values;
    const next = c.exit('next');
    const invalid = c.exit('ifInvalid');
    return (s) => {
      const vars = s.cd.vars;
      const fail = (status: string) => {
        if (statusVariable) s.set(statusVariable, status);
        return invalid;
      };
      const raw = input(vars);
      if (raw === null || raw === '') return fail('missing');
      const text = toText(raw);
      if (text.length > MAX_NUMBER_INPUT) return fail('tooLong');
      const number = numberOf(text);
      if (!number) return fail('notANumber');
      const wanted = (country ? toText(country(vars)) : (s.ctx.numbers?.defaultCountry ?? '')).toUpperCase();
      if (wanted !== '' && !isSupportedCountry(wanted)) return fail('unknownCountry');
      let parsed: Phone.PhoneNumber;
      try {
        parsed = parsePhoneNumberWithError(number.text, {
          defaultCountry: wanted === '' ? undefined : (wanted as Phone.CountryCode),
          defaultCallingCode: number.callingCode,
          extract: false,
        });
      } catch (e) {
        return fail(PARSE_ERRORS[(e as Error).message] ?? 'notANumber');
      }
      if (!parsed.isValid()) return fail('invalid');
      // extensions are dropped: formats print them (" ext. 5")
      if (parsed.ext) parsed = parsePhoneNumberWithError(parsed.number);
      s.set(storeInto, formatted(parsed, format));
      if (countryVariable) s.set(countryVariable, parsed.country ?? null);
      if (callingCodeVariable) s.set(callingCodeVariable, parsed.countryCallingCode);
      if (typeVariable) s.set(typeVariable, parsed.getType() ?? null);
      if (statusVariable) s.set(statusVariable, 'valid');
      return next;
    };
  },
};

function formatted(p: Phone.PhoneNumber, format: Format): string {
  switch (format) {
    case 'national':
      return p.formatNational();
    case 'nationalDigits':
      return p.formatNational().replace(/\D/g, '');
    case 'international':
      return p.formatInternational();
    case 'RFC3966':
      return p.getURI();
    default:
      return p.number;
  }
}
