/**
 * Regular expressions written by a logic's designer and run on text a SIP sender controls
 * (analysis.regexExtract, the regex replace of action.stringManipulation).
 *
 * JavaScript's engine backtracks, so a pattern such as `(a+)+$` or `(a|a)*$` takes time
 * exponential in the input length: one crafted header could hold a SIP thread for minutes. Two
 * limits together keep a match cheap:
 * - at load, `checkPattern` refuses a repeated group (`*`, `+`, `{n,}`, `{n,m}` with m > 1) that
 *   holds an unbounded quantifier or an alternation, at any depth: the nested-quantifier forms
 *   behind exponential backtracking. It is conservative: `(\.\d+)*` is refused too (write
 *   `[.\d]*`), while `(\d{1,3}\.){3}` (bounded inside) and `(?:sip|tel):` (not repeated) pass;
 * - at run time the nodes give the regex at most `maxInputLength` characters (a field, default
 *   1024): polynomial forms the check lets through (`.*.*.*x`) stay bounded.
 * Flags are limited to i, m, s, u (no g/y: the nodes decide global matching themselves, and a
 * sticky or global regex would carry lastIndex from one message to the next).
 */
export const REGEX_FLAGS_PATTERN = '^[imsu]*$';

/** Schema of a flags field. */
export const regexFlags = {
  type: 'string',
  pattern: REGEX_FLAGS_PATTERN,
  default: '',
  description: 'regular expression flags: i (ignore case), m (multi-line), s (dot matches newlines), u (Unicode)',
};

/** Schema of the input cap. */
export const maxInputLength = {
  type: 'integer',
  minimum: 1,
  maximum: 65536,
  default: 1024,
  description: 'longest input the regular expression sees (characters); a longer input is refused (status `tooLong`)',
};
export const DEFAULT_MAX_INPUT = 1024;

/** Problem with a designer's pattern (syntax, flags, nested quantifiers), or null when it may be used; a flags problem starts with "flags". */
export function checkPattern(pattern: unknown, flags: unknown = ''): string | null {
  if (typeof pattern !== 'string') return null;
  const f = typeof flags === 'string' ? flags : '';
  if (!new RegExp(REGEX_FLAGS_PATTERN).test(f) || new Set(f).size !== f.length) return 'flags may only be i, m, s, u, each once';
  try {
    new RegExp(pattern, f);
  } catch (e) {
    return `invalid regular expression: ${(e as Error).message}`;
  }
  return nestedQuantifier(pattern);
}

interface Frame {
  /** The group holds an unbounded quantifier or an alternation (directly or in a nested group). */
  risky: boolean;
}

/** Reads a quantifier at `i`: its end index and whether it repeats (max > 1) and is unbounded. */
function quantifierAt(p: string, i: number): { end: number; repeats: boolean; unbounded: boolean } | null {
  const c = p[i];
  if (c === '*' || c === '+') return { end: i + 1, repeats: true, unbounded: true };
  if (c === '?') return { end: i + 1, repeats: false, unbounded: false };
  if (c !== '{') return null;
  const m = /^\{(\d+)(,(\d*))?\}/.exec(p.slice(i));
  if (!m) return null; // a literal '{' (without the u flag)
  const max = m[2] === undefined ? Number(m[1]) : m[3] === '' ? Infinity : Number(m[3]);
  return { end: i + m[0].length, repeats: max > 1, unbounded: max === Infinity };
}

/** Star height > 1 or a repeated alternation: the shapes of catastrophic backtracking. */
function nestedQuantifier(p: string): string | null {
  const stack: Frame[] = [{ risky: false }];
  /** The atom just read was a group, and it was risky. */
  let lastGroupRisky = false;
  for (let i = 0; i < p.length;) {
    const c = p[i];
    const q = quantifierAt(p, i);
    if (q) {
      const top = stack[stack.length - 1];
      if (q.repeats && lastGroupRisky)
        return `nested quantifier at ${i} (a repeated group holding a repetition or an alternation can backtrack exponentially on hostile input)`;
      if (q.unbounded || (q.repeats && lastGroupRisky)) top.risky = true;
      lastGroupRisky = false;
      i = q.end;
      if (p[i] === '?') i++; // lazy
      continue;
    }
    lastGroupRisky = false;
    if (c === '\\') {
      i += 2;
    } else if (c === '[') {
      // a character class: quantifier characters inside are literal
      i++;
      if (p[i] === '^') i++;
      if (p[i] === ']') i++;
      while (i < p.length && p[i] !== ']') i += p[i] === '\\' ? 2 : 1;
      i++;
    } else if (c === '(') {
      stack.push({ risky: false });
      i++;
      // (?:…) (?=…) (?!…) (?<=…) (?<!…) (?<name>…): the '?' is no quantifier
      if (p[i] === '?') {
        const named = /^\?<([A-Za-z_$][\w$]*)>/.exec(p.slice(i));
        i += named ? named[0].length : p[i + 1] === '<' ? 3 : 2;
      }
    } else if (c === ')') {
      const frame = stack.pop()!;
      if (frame.risky) stack[stack.length - 1].risky = true;
      lastGroupRisky = frame.risky;
      i++;
    } else if (c === '|') {
      if (stack.length > 1) stack[stack.length - 1].risky = true;
      i++;
    } else i++;
  }
  return null;
}

/** Group numbers and names a pattern defines (for checking `storeInto` groups at load). */
export function groupsOf(pattern: string, flags: string): { count: number; names: string[] } {
  const m = new RegExp(`${pattern}|`, flags).exec('')!;
  return { count: m.length - 1, names: Object.keys(m.groups ?? {}) };
}
