/**
 * Value fields: a field naming a variable known to the logic reads that variable; anything else
 * is a literal, with `[name]` placeholders substituted and `True`/`False` read as booleans.
 * Everything is decided at compile time, so reading a value per message is one closure call.
 */
import type { ValueGetter } from './node-type';
import type { CdValue } from './types';

const PLACEHOLDER = /\[([A-Za-z_][A-Za-z0-9_.-]*)\]/g;

/** Canonical decimal numbers only: "000112233" (a phone number) stays a string. */
const CANONICAL_NUMBER = /^-?(0|[1-9]\d*)(\.\d+)?$/;

export function isCanonicalNumber(v: unknown): boolean {
  return typeof v === 'number' ? Number.isFinite(v) : typeof v === 'string' && CANONICAL_NUMBER.test(v);
}

export function literal(raw: unknown): CdValue {
  if (raw === 'True') return true;
  if (raw === 'False') return false;
  if (raw === undefined) return null;
  if (Array.isArray(raw)) return raw.map(String).join(',');
  if (raw !== null && typeof raw === 'object') return JSON.stringify(raw);
  return raw as CdValue;
}

export function compileValue(raw: unknown, known: ReadonlySet<string>): ValueGetter {
  if (typeof raw === 'string') {
    if (known.has(raw)) return (vars) => vars[raw] ?? null;
    if (raw.includes('[')) {
      const parts = raw.split(PLACEHOLDER);
      // split() with one capture group alternates literal text and variable names
      if (parts.length > 1 && parts.some((p, i) => i % 2 === 1 && known.has(p))) {
        return (vars) => {
          let out = '';
          for (let i = 0; i < parts.length; i++) {
            if (i % 2 === 0) out += parts[i];
            else if (known.has(parts[i])) out += toText(vars[parts[i]] ?? null);
            else out += `[${parts[i]}]`;
          }
          return out;
        };
      }
    }
  }
  const value = literal(raw);
  return () => value;
}

/** Text form of a value, as placeholders and string operators see it. */
export function toText(v: CdValue | undefined): string {
  if (v === null || v === undefined) return '';
  if (Array.isArray(v)) return JSON.stringify(v);
  return String(v);
}

// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL_CHAR = /[\x00-\x1f\x7f]/;

/**
 * True when text holds a C0 control character or DEL: a value from a sender (a placeholder
 * filled from a header) that must never reach a request line, a header or a stored key (a CR LF
 * would start a new line).
 */
export function hasControlChar(text: string): boolean {
  return CONTROL_CHAR.test(text);
}
