/**
 * An AoR as operators and designers write one: `user@domain`, `sip:user@domain;params`,
 * `<sips:user@domain>` or just `user`. A lenient reading of a directory column or a node's value,
 * not the RFC 3261 URI grammar (grammar/sip-values.ts parses URIs): the save and lookup nodes and
 * the AoR ownership rule (services/directory/ownership.ts) read AoRs with it, once per REGISTER.
 *
 * What it does, in order: trim; drop a leading `<` and a trailing `>`; drop a `sip:` or `sips:`
 * scheme (any case); the user is what precedes the last `@` (all of it without one), the domain what
 * follows it up to the first `;`, `:` or `>`. Empty parts are null. Scanned by character codes: no
 * regular expression, no intermediate strings (test/unit/aor-text.test.ts holds it to the regular
 * expressions it replaced).
 */

const isChar = (c: number, lower: number): boolean => c === lower || c === lower - 32;

/** [user, domain] of an AoR's text; null for a part that is absent or empty. */
export function aorText(raw: string): [string | null, string | null] {
  const s = raw.trim();
  let start = s.charCodeAt(0) === 60 /* < */ ? 1 : 0;
  const end = s.length > start && s.charCodeAt(s.length - 1) === 62 /* > */ ? s.length - 1 : s.length;
  // sip: or sips:
  if (end - start >= 4 && isChar(s.charCodeAt(start), 115) && isChar(s.charCodeAt(start + 1), 105) && isChar(s.charCodeAt(start + 2), 112)) {
    const c = s.charCodeAt(start + 3);
    if (c === 58) start += 4;
    else if (isChar(c, 115) && end - start >= 5 && s.charCodeAt(start + 4) === 58) start += 5;
  }
  if (start >= end) return [null, null];
  const at = s.lastIndexOf('@', end - 1);
  if (at < start) return [s.slice(start, end), null];
  let stop = at + 1;
  while (stop < end) {
    const c = s.charCodeAt(stop);
    if (c === 59 /* ; */ || c === 58 /* : */ || c === 62 /* > */) break;
    stop++;
  }
  return [at > start ? s.slice(start, at) : null, stop > at + 1 ? s.slice(at + 1, stop) : null];
}
