/**
 * The widths of usrloc's text columns (Kamailio's `location` table, schema version 9; the DDL in
 * services/location/sql.ts), which every binding must fit whatever store holds it.
 *
 * Why here and not in the SQL store: a binding that does not fit fails its INSERT, and the SQL store
 * writes concurrent REGISTERs' bindings as one statement (services/location/batcher.ts), so one
 * REGISTER with a 600-character Contact made PostgreSQL refuse the batch and every REGISTER in it
 * got a 500. The registrar (services/location/registrar.ts) measures each value first and refuses
 * that one REGISTER with a 400 naming the field, as Kamailio's registrar does ("Contact/received too
 * long"), on every store alike: a binding the memory store accepts would fail once the operator moves
 * to PostgreSQL or shares the table with Kamailio. The user agent is cut to its width instead, as
 * Kamailio's registrar cuts it: it is informative, and a long one is no reason to refuse service.
 *
 * PostgreSQL counts a varchar's width in characters (code points); a JavaScript string's length
 * counts UTF-16 units, so a string over the width by length is measured again by code points.
 * `test/integration/location/batching.test.ts` holds these figures to the table PostgreSQL and
 * PGlite create; `test/unit/location/registrar.test.ts` the registrar to them.
 */
import type { Binding } from './types';

export const BINDING_WIDTHS = {
  ruid: 64,
  username: 64,
  domain: 64,
  contact: 512,
  received: 128,
  path: 512,
  callid: 255,
  user_agent: 255,
  socket: 64,
  instance: 255,
} as const satisfies Partial<Record<keyof Binding, number>>;

export type WidthField = keyof typeof BINDING_WIDTHS;

/** Characters (code points) of `s`, as PostgreSQL counts a varchar's. */
function characters(s: string): number {
  let n = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        n--;
        i++;
      }
    }
  }
  return n;
}

/** True when `value` fits `field`'s column (null always does). */
export function fits(field: WidthField, value: string | null | undefined): boolean {
  if (value == null) return true;
  const width = BINDING_WIDTHS[field];
  return value.length <= width || characters(value) <= width;
}

/**
 * Why `value` cannot be stored in `field`'s column, or null when it can: wider than the column, or
 * holding a NUL character, which PostgreSQL's text types cannot hold (SIP's grammar excludes it
 * from every value, but a lenient parser passes it through in free text such as User-Agent).
 */
export function unstorable(field: WidthField, value: string | null | undefined): 'width' | 'nul' | null {
  if (value == null) return null;
  if (value.includes('\0')) return 'nul';
  return fits(field, value) ? null : 'width';
}

/** `value` cut to `field`'s width, never inside a surrogate pair. */
export function cutToWidth(field: WidthField, value: string): string {
  if (fits(field, value)) return value;
  const width = BINDING_WIDTHS[field];
  let end = 0;
  for (let kept = 0; kept < width && end < value.length; kept++) {
    const c = value.charCodeAt(end);
    const pair = c >= 0xd800 && c <= 0xdbff && end + 1 < value.length && (value.charCodeAt(end + 1) & 0xfc00) === 0xdc00;
    end += pair ? 2 : 1;
  }
  return value.slice(0, end);
}
