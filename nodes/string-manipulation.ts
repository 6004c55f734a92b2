/**
 * action.stringManipulation: an ordered list of operations applied to one value, the result
 * into a variable. One node does a whole clean-up (`trim` → `replace` → `substring` → `pad`)
 * instead of a chain of nodes and temporary variables.
 *
 * Operations: `replace` (literal text, or a regular expression with `regex`; every occurrence,
 * or the first with `all` off), `substring` (`start`, negative = from the end; `length`, absent =
 * to the end), `upperCase`, `lowerCase`, `trim`, `pad` (`side` left/right to `length` with `char`).
 * Positions and lengths count UTF-16 code units, as JavaScript strings do.
 *
 * Literal search text and replacements are value fields (variables, `[name]` placeholders). A
 * regex is a literal (never placeholders: `[0-9]` is a character class), checked and compiled at
 * load (nodes/regex-safety.ts). In a regex replacement, `$1`, `$<name>`, `$&` written in the field
 * refer to the match; text a placeholder brings is inserted as it is (a caller's `$1` stays
 * `$1`). In a literal replacement `$` is never special.
 *
 * Limits: the input and every intermediate result are at most `maxLength` characters; beyond,
 * the node writes null to `storeInto` and takes `ifTooLong` (default: `next`). A missing input
 * (null) writes nothing and takes `next`.
 */
import type { CompileContext, NodeType, ValueGetter } from '../engine/node-type';
import type { CdValue } from '../engine/types';
import { toText } from '../engine/values';
import { anyValue, flag, isSet, nodeRef, writesVariable } from './common';
import { checkPattern, groupsOf, regexFlags } from './regex-safety';

type OperationName = 'replace' | 'substring' | 'upperCase' | 'lowerCase' | 'trim' | 'pad';

interface Operation {
  operation: OperationName;
  search?: unknown;
  replacement?: unknown;
  regex?: boolean | string;
  flags?: string;
  all?: boolean | string;
  start?: number;
  length?: number;
  side?: 'left' | 'right';
  char?: string;
}

interface Values {
  value: unknown;
  operations: Operation[];
  storeInto: string;
  maxLength?: number;
  next?: number | string;
  ifTooLong?: number | string;
}

const DEFAULT_MAX_LENGTH = 4096;
/** `[name]` placeholders, as engine/values.ts reads them (split() alternates text and names). */
const PLACEHOLDERS = /\[([A-Za-z_][A-Za-z0-9_.-]*)\]/g;

/** One operation: the new text, or null when it would exceed `max` characters. */
type Step = (text: string, vars: Record<string, CdValue>, max: number) => string | null;

/** Thrown inside a replacer when the result grows past the cap (caught by the step). */
const TOO_LONG = new Error('too long');

export const stringManipulationNode: NodeType<Values> = {
  type: 'action.stringManipulation',
  title: 'String manipulation',
  summary: '{value} → {storeInto}',
  category: 'manipulation',
  description:
    'Applies operations in order (replace, substring, upper/lower case, trim, pad) to a value and stores the result; regexes are checked and compiled at load.',
  valuesSchema: {
    type: 'object',
    required: ['value', 'operations', 'storeInto'],
    properties: {
      value: { ...anyValue, description: 'the input: a variable, or text with [name] placeholders' },
      operations: {
        type: 'array',
        minItems: 1,
        maxItems: 32,
        description: 'applied in order, each to the result of the previous one',
        items: {
          type: 'object',
          required: ['operation'],
          properties: {
            operation: { type: 'string', enum: ['replace', 'substring', 'upperCase', 'lowerCase', 'trim', 'pad'], description: 'what this step does' },
            search: { ...anyValue, description: 'replace: the text to find, or the regular expression when regex is on' },
            replacement: { ...anyValue, default: '', description: 'replace: what replaces it ($1, $<name> refer to regex groups when written here)' },
            regex: { ...flag, default: false, description: 'replace: search is a regular expression (literal, checked at load)' },
            flags: regexFlags,
            all: { ...flag, default: true, description: 'replace: every occurrence (off: the first only)' },
            start: { type: 'integer', default: 0, description: 'substring: first position (0-based; negative counts from the end)' },
            length: { type: 'integer', minimum: 0, description: 'substring: how many characters (absent: to the end); pad: the length to reach' },
            side: { type: 'string', enum: ['left', 'right'], default: 'left', description: 'pad: where the padding goes' },
            char: { type: 'string', minLength: 1, maxLength: 1, default: '0', description: 'pad: the padding character' },
          },
        },
      },
      storeInto: { ...writesVariable, 'x-secret': { from: 'value' }, description: 'variable receiving the result' },
      maxLength: { type: 'integer', minimum: 1, maximum: 65536, default: DEFAULT_MAX_LENGTH, description: 'longest input and result (characters)' },
      next: nodeRef,
      ifTooLong: {
        ...nodeRef,
        'x-optional': true,
        description: 'taken when the input or a result exceeds maxLength (default: next); storeInto is set to null',
      },
    },
  },
  check(v) {
    const problems: Array<[string, string]> = [];
    // check() also sees values the schema refused: read them defensively
    (Array.isArray(v.operations) ? v.operations : []).forEach((op, i) => {
      if (op?.operation === 'replace') {
        if (op.search === undefined || op.search === null || op.search === '') problems.push([`operations/${i}/search`, 'is required by replace']);
        else if (isSet(op.regex)) {
          const err = typeof op.search === 'string' ? checkPattern(op.search, op.flags) : 'a regular expression must be text';
          if (err) problems.push([`operations/${i}/${/^flags/.test(err) ? 'flags' : 'search'}`, err]);
        }
      }
      if (op?.operation === 'pad' && (op.length === undefined || op.length > (v.maxLength ?? DEFAULT_MAX_LENGTH)))
        problems.push([`operations/${i}/length`, `pad needs a length of at most maxLength (${v.maxLength ?? DEFAULT_MAX_LENGTH})`]);
    });
    return problems;
  },
  compile(values, c) {
    const input = c.value(values.value);
    const steps = values.operations.map((op) => compileOperation(op, c));
    const max = values.maxLength ?? DEFAULT_MAX_LENGTH;
    const target = values.storeInto;
    const next = c.exit('next');
    const tooLong = c.exit('ifTooLong');
    return (s) => {
      const vars = s.cd.vars;
      const raw = input(vars);
      if (raw === null) return next;
      let text: string | null = toText(raw);
      for (let i = 0; i < steps.length && text !== null && text.length <= max; i++) text = steps[i](text, vars, max);
      if (text === null || text.length > max) {
        s.set(target, null);
        return tooLong.node ? tooLong : next;
      }
      s.set(target, text);
      return next;
    };
  },
};

function compileOperation(op: Operation, c: CompileContext): Step {
  switch (op.operation) {
    case 'upperCase':
      return (t) => t.toUpperCase();
    case 'lowerCase':
      return (t) => t.toLowerCase();
    case 'trim':
      return (t) => t.trim();
    case 'substring': {
      const start = op.start ?? 0;
      const length = op.length;
      return (t) => {
        const from = start < 0 ? Math.max(0, t.length + start) : start;
        return length === undefined ? t.slice(from) : t.slice(from, from + length);
      };
    }
    case 'pad': {
      const length = op.length ?? 0;
      const char = op.char || '0';
      return op.side === 'right' ? (t) => t.padEnd(length, char) : (t) => t.padStart(length, char);
    }
    case 'replace':
      return isSet(op.regex) ? regexReplace(op, c) : literalReplace(op, c);
    default:
      throw new Error(`unknown operation ${String(op.operation)}`);
  }
}

/**
 * Runs a replace whose replacer adds `grow(match)` characters per match, stopping as soon as the
 * result would pass `max` (a pattern matching the empty string at every position, times a long
 * replacement, would otherwise build a string of gigabytes).
 */
function bounded(t: string, max: number, run: (check: (added: number) => void) => string): string | null {
  let length = t.length;
  try {
    return run((added) => {
      length += added;
      if (length > max) throw TOO_LONG;
    });
  } catch (e) {
    if (e === TOO_LONG) return null;
    throw e;
  }
}

/** `all` defaults to on: an unset checkbox ("" or null from older editors) too. */
const everyOccurrence = (op: Operation) => (op.all === undefined || op.all === null || op.all === '' ? true : isSet(op.all));

function literalReplace(op: Operation, c: CompileContext): Step {
  const all = everyOccurrence(op);
  const search = c.value(op.search);
  const replacement = c.value(op.replacement ?? '');
  return (t, vars, max) => {
    const find = toText(search(vars));
    if (find === '') return t;
    const by = toText(replacement(vars));
    // a function replacer: '$' in the text is never a pattern
    return bounded(t, max, (check) => {
      const replacer = () => {
        check(by.length - find.length);
        return by;
      };
      return all ? t.replaceAll(find, replacer) : t.replace(find, replacer);
    });
  };
}

/** A piece of a regex replacement: text, a group by number or name, the match, what precedes or follows it. */
type Piece = string | number | { name: string } | '$&' | '$`' | "$'" | ValueGetter;

function regexReplace(op: Operation, c: CompileContext): Step {
  const all = everyOccurrence(op);
  const pattern = String(op.search);
  const flags = op.flags ?? '';
  const re = new RegExp(pattern, flags + (all ? 'g' : '')); // checked at load
  const { count, names } = groupsOf(pattern, flags);
  const pieces = replacementPieces(op.replacement ?? '', c, count, names.length > 0);
  return (t, vars, max) => {
    // a variable's text is inserted as it is ($ not special), read once per message
    const texts = pieces.map((p) => (typeof p === 'function' ? toText(p(vars)) : null));
    return bounded(t, max, (check) =>
      t.replace(re, (...args: unknown[]) => {
        const match = args[0] as string;
        const offset = args[count + 1] as number;
        const groups = names.length > 0 ? (args[count + 3] as Record<string, string | undefined>) : undefined;
        let out = '';
        for (let i = 0; i < pieces.length; i++) {
          const p = pieces[i];
          if (typeof p === 'function') out += texts[i];
          else if (typeof p === 'number') out += (args[p] as string | undefined) ?? '';
          else if (typeof p === 'object') out += groups?.[p.name] ?? '';
          else if (p === '$&') out += match;
          else if (p === '$`') out += t.slice(0, offset);
          else if (p === "$'") out += t.slice(offset + match.length);
          else out += p;
          if (out.length > max) throw TOO_LONG;
        }
        check(out.length - match.length);
        return out;
      }),
    );
  };
}

/**
 * Splits a regex replacement into pieces. `$$`, `$&`, `` $` ``, `$'`, `$n`, `$nn`, `$<name>` as
 * JavaScript reads them, but only in the text written in the field: a whole-field variable or a
 * `[name]` placeholder becomes a piece inserted as it is.
 */
function replacementPieces(raw: unknown, c: CompileContext, groupCount: number, named: boolean): Piece[] {
  if (c.isVariable(raw)) return [c.value(raw)];
  if (typeof raw !== 'string') return [toText(c.value(raw)({}))];
  const parts = raw.split(PLACEHOLDERS);
  const pieces: Piece[] = [];
  parts.forEach((part, i) => {
    if (i % 2 === 1) pieces.push(c.isVariable(part) ? c.value(part) : `[${part}]`);
    else pieces.push(...templatePieces(part, groupCount, named));
  });
  return pieces;
}

function templatePieces(s: string, groupCount: number, named: boolean): Piece[] {
  const out: Piece[] = [];
  let text = '';
  const flush = () => {
    if (text) out.push(text);
    text = '';
  };
  for (let i = 0; i < s.length; i++) {
    const ch = s[i];
    const nx = s[i + 1];
    if (ch !== '$' || nx === undefined) {
      text += ch;
      continue;
    }
    if (nx === '$') {
      text += '$';
      i++;
    } else if (nx === '&' || nx === '`' || nx === "'") {
      flush();
      out.push(`$${nx}` as Piece);
      i++;
    } else if (nx >= '0' && nx <= '9') {
      const two = Number(s.slice(i + 1, i + 3));
      const one = Number(nx);
      if (/^\d\d$/.test(s.slice(i + 1, i + 3)) && two >= 1 && two <= groupCount) {
        flush();
        out.push(two);
        i += 2;
      } else if (one >= 1 && one <= groupCount) {
        flush();
        out.push(one);
        i++;
      } else text += ch;
    } else if (nx === '<' && named) {
      const close = s.indexOf('>', i + 2);
      if (close < 0) text += ch;
      else {
        flush();
        out.push({ name: s.slice(i + 2, close) });
        i = close;
      }
    } else text += ch;
  }
  flush();
  return out;
}
