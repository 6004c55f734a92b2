/**
 * services/auth/credentials.ts reads credentials by character codes; this holds it to the former
 * reader (string indexing, a regular expression per value), copied below verbatim, on random
 * headers made of the characters that matter: quotes, escapes, commas, '=', whitespace, control
 * characters, U+FFFD and surrogates. The parse runs on every authenticated request, and every
 * difference here would be a credential accepted or refused differently.
 */
import { invalidCharIn, parseDigestCredentials } from '../../../services/auth/credentials';

// ---------------------------------------------------------------- the former reader, verbatim

const MAX_HEADER_LENGTH = 8192;
// eslint-disable-next-line no-control-regex -- control characters are what this refuses
const INVALID_VALUE_CHAR = /[\u0000-\u001f\u007f-\u009f\ufffd]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
const hasInvalidChar = (value: string): boolean => INVALID_VALUE_CHAR.test(value);
const REQUIRED = ['username', 'realm', 'nonce', 'uri', 'response'] as const;
const isWs = (ch: string): boolean => ch === ' ' || ch === '\t' || ch === '\r' || ch === '\n';
const TOKEN_CHARS = new Uint8Array(128);
for (const ch of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!#$%&'*+.^_`|~-") TOKEN_CHARS[ch.charCodeAt(0)] = 1;
const isTokenChar = (ch: string | undefined): boolean => {
  if (ch === undefined || ch.length !== 1) return false;
  const c = ch.charCodeAt(0);
  return c < 128 && TOKEN_CHARS[c] === 1;
};

/** The former parse, up to its params (the credentials object is built from them as before). */
function reference(input: unknown): Record<string, string> | null {
  if (typeof input !== 'string' || input.length > MAX_HEADER_LENGTH) return null;
  const s = input;
  let i = 0;
  const skipWs = (): void => {
    while (i < s.length && isWs(s[i])) i++;
  };
  const readToken = (): string => {
    const start = i;
    while (i < s.length && isTokenChar(s[i])) i++;
    return s.slice(start, i);
  };

  skipWs();
  const scheme = readToken();
  if (scheme.toLowerCase() !== 'digest') return null;
  // The scheme must be followed by whitespace (or nothing, which then fails the required check).
  if (i < s.length && !isWs(s[i])) return null;

  const params: Record<string, string> = {};
  for (;;) {
    // Empty list elements (",,") are allowed by the HTTP list rule (RFC 7230 §7).
    skipWs();
    while (i < s.length && s[i] === ',') {
      i++;
      skipWs();
    }
    if (i >= s.length) break;

    const name = readToken().toLowerCase();
    if (!name) return null;
    skipWs();
    if (s[i] !== '=') return null;
    i++;
    skipWs();

    let value: string;
    if (s[i] === '"') {
      i++;
      const close = s.indexOf('"', i);
      const esc = s.indexOf('\\', i);
      if (close >= 0 && (esc < 0 || esc > close)) {
        // no quoted-pair inside: the value is the plain slice
        value = s.slice(i, close);
        i = close + 1;
        if (Object.prototype.hasOwnProperty.call(params, name)) return null;
        params[name] = value;
        skipWs();
        if (i < s.length && s[i] !== ',') return null;
        continue;
      }
      let out = '';
      for (;;) {
        if (i >= s.length) return null; // unterminated quoted-string
        const ch = s[i++];
        if (ch === '"') break;
        if (ch === '\\') {
          if (i >= s.length) return null;
          out += s[i++]; // quoted-pair: the escaped character stands for itself
        } else {
          out += ch;
        }
      }
      value = out;
    } else {
      // Unquoted value (nc, qop, algorithm are tokens). Lenient: some UAs also send nonces or
      // URIs unquoted, so accept anything up to whitespace, comma or quote.
      const start = i;
      while (i < s.length && !isWs(s[i]) && s[i] !== ',' && s[i] !== '"') i++;
      value = s.slice(start, i);
      if (!value) return null;
    }

    // A duplicated parameter makes the credentials ambiguous (which one did the UA hash?).
    if (Object.prototype.hasOwnProperty.call(params, name)) return null;
    params[name] = value;

    skipWs();
    if (i < s.length && s[i] !== ',') return null; // two params without a separating comma
  }

  for (const k of REQUIRED) if (!Object.prototype.hasOwnProperty.call(params, k)) return null;
  // Every value, not only the required ones: nothing with a NUL or an invalid byte goes further.
  for (const k in params) if (hasInvalidChar(params[k])) return null;
  return params;
}

// ---------------------------------------------------------------- random headers

/** mulberry32: reproducible, and every bit of it random (an LCG in doubles loses its low bits). */
let seed = 7;
const next = (n: number): number => {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n) | 0;
};
const ALPHABET = [
  '"',
  '\\',
  ',',
  '=',
  ' ',
  '\t',
  '\r\n',
  'a',
  'Z',
  '0',
  '-',
  ':',
  '@',
  '\u0000',
  '\u007f',
  '\u0085',
  '\ufffd',
  '\ud83d',
  '\ude00',
  '\ud83d\ude00',
  'é',
];
const randomText = (max: number): string => {
  let s = '';
  for (let j = next(max); j > 0; j--) s += ALPHABET[next(ALPHABET.length)];
  return s;
};
const NAMES = ['username', 'realm', 'nonce', 'uri', 'response', 'x', 'Realm', 'cnonce', 'nc', 'qop', 'algorithm', 'opaque'];
/** A header that is well-formed more often than not, then damaged at random. */
function randomHeader(): string {
  const params: string[] = [];
  for (let k = 0; k < 7; k++) {
    // the required five, then two more: now and then a duplicate
    const name = k < 5 ? NAMES[k] : next(4) === 0 ? NAMES[next(NAMES.length)] : NAMES[5 + k];
    const value = next(6) === 0 ? randomText(6) : 'v' + next(1000);
    params.push(next(2) ? `${name}="${value}"` : `${name}=${value}`);
  }
  let h = ['Digest ', 'digest  ', 'DIGEST\t', 'Digest ', 'Basic ', 'Digest'][next(6)] + params.join([', ', ',', ' ,, ', ','][next(4)]);
  if (next(3) === 0) {
    const at = next(h.length + 1);
    h = h.slice(0, at) + randomText(3) + h.slice(at + next(3));
  }
  return h;
}

/** The parameters as JSON with their names in order: the reader keeps the ones a verification reads first, in an order of its own. */
const sorted = (params: Record<string, string> | null | undefined): string =>
  params ? JSON.stringify(Object.fromEntries(Object.entries(params).sort(([a], [b]) => (a < b ? -1 : 1)))) : 'null';

describe('the credentials reader by character codes', () => {
  test('reads 50,000 random headers as the former reader did', () => {
    let parsed = 0;
    const differ: string[] = [];
    for (let i = 0; i < 50_000; i++) {
      const h = randomHeader();
      const expected = reference(h);
      const got = parseDigestCredentials(h);
      if (got !== null) parsed++;
      if (sorted(got?.params ?? null) !== sorted(expected)) differ.push(h);
    }
    expect(differ.slice(0, 5)).toEqual([]);
    // the mix holds both outcomes in number, so both paths are compared
    expect(parsed).toBeGreaterThan(5_000);
    expect(parsed).toBeLessThan(45_000);
  });

  test('invalidCharIn answers as the former regular expression on 50,000 random strings and on their parts', () => {
    let invalid = 0;
    for (let i = 0; i < 50_000; i++) {
      const s = randomText(8);
      const from = next(s.length + 1);
      const to = from + next(s.length - from + 1);
      expect([s, from, to, invalidCharIn(s, from, to)]).toEqual([s, from, to, hasInvalidChar(s.slice(from, to))]);
      if (hasInvalidChar(s)) invalid++;
    }
    expect(invalid).toBeGreaterThan(10_000);
  });
});
