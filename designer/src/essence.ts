/**
 * What a node does, in one line on its body, and what each exit means: rendered from templates the
 * node types declare as data (NodeTypeInfo.summary, `x-exit-label` on an exit field of the values
 * schema), so plug-in types can declare theirs too and a type without one gets a generic line.
 *
 * The template language, small on purpose:
 *   {path}                 the value at `path` (`a/b/0` or `a.b`) of the current object; a list of
 *                          scalars is joined with ", "; missing, null and "" render as nothing
 *   {path|filter|…}        filters: op (operator as words: `is`, `does not contain`), sym (`=`, `≠`,
 *                          `>`…, words for the rest), last (last dotted segment: `customers.aor` → `aor`),
 *                          reason (SIP reason phrase of a status code), logic (called logic's name),
 *                          join (`any`/`or` → `or`, else `and`), count (items of a list),
 *                          default:text (text when empty)
 *   {# }                   1-based index of the current list item (inside `each`, or of an item exit)
 *   {each path "sep"}…{end}  the body once per item of the list at `path` (the item is the current
 *                          object), joined by sep (itself a template over the enclosing object)
 *   {if path}…{else}…{end}   the first body when `path` is not empty, else the second
 */
import type { NodeTypeInfo } from './api';
import type { Json } from './model';
import { SIP_REASONS } from '../../grammar/sip-reasons';

export interface EssenceContext {
  /** Logic id → name, for the `logic` filter. */
  logics?: Record<string, string | undefined>;
}

type Part =
  | { k: 'text'; text: string }
  | { k: 'value'; path: string; filters: string[] }
  | { k: 'index' }
  | { k: 'each'; path: string; sep: Part[]; body: Part[] }
  | { k: 'if'; path: string; then: Part[]; else: Part[] };

const OP_WORDS: Record<string, string> = {
  is: 'is',
  isNot: 'is not',
  exists: 'exists',
  doesNotExist: 'does not exist',
  contains: 'contains',
  doesNotContain: 'does not contain',
  startsWith: 'starts with',
  endsWith: 'ends with',
  matches: 'matches',
  greaterThan: '>',
  greaterOrEqual: '≥',
  lessThan: '<',
  lessOrEqual: '≤',
  in: 'in',
  isLongestPrefixMatchOf: 'longest prefix of',
};
const OP_SYMBOLS: Record<string, string> = { ...OP_WORDS, is: '=', isNot: '≠' };
/** Operators that take no value: `{value}` after them renders as nothing. */
const UNARY = new Set(['exists', 'doesNotExist']);

/** Readable name of a condition operator (`doesNotContain` → `does not contain`). */
export const operatorWords = (op: unknown): string => OP_WORDS[String(op)] ?? String(op ?? '');

// ---------------------------------------------------------------- parsing

const cache = new Map<string, Part[]>();

export function parseTemplate(src: string): Part[] {
  const hit = cache.get(src);
  if (hit) return hit;
  let i = 0;
  const parseUntil = (stops: string[]): { parts: Part[]; stop: string | null } => {
    const parts: Part[] = [];
    let text = '';
    const flush = () => {
      if (text) parts.push({ k: 'text', text });
      text = '';
    };
    while (i < src.length) {
      const c = src[i];
      if (c !== '{') {
        text += c;
        i++;
        continue;
      }
      const close = findClose(src, i);
      if (close < 0) {
        text += src.slice(i);
        i = src.length;
        break;
      }
      const tag = src.slice(i + 1, close).trim();
      i = close + 1;
      if (stops.includes(tag)) {
        flush();
        return { parts, stop: tag };
      }
      flush();
      if (tag === '#') parts.push({ k: 'index' });
      else if (tag.startsWith('each ')) {
        const m = /^each\s+(\S+)(?:\s+"((?:[^"\\]|\\.)*)")?$/.exec(tag);
        const body = parseUntil(['end']).parts;
        if (m) parts.push({ k: 'each', path: m[1], sep: parseTemplate(m[2] ?? ', '), body });
      } else if (tag.startsWith('if ')) {
        const path = tag.slice(3).trim();
        const first = parseUntil(['else', 'end']);
        const second = first.stop === 'else' ? parseUntil(['end']).parts : [];
        parts.push({ k: 'if', path, then: first.parts, else: second });
      } else {
        const [path, ...filters] = tag.split('|').map((s) => s.trim());
        parts.push({ k: 'value', path, filters });
      }
    }
    flush();
    return { parts, stop: null };
  };
  const parts = parseUntil([]).parts;
  cache.set(src, parts);
  return parts;
}

/** The `}` closing the tag opened at `open` (quoted separators may hold braces). */
function findClose(src: string, open: number): number {
  let depth = 0;
  let quoted = false;
  for (let j = open; j < src.length; j++) {
    const c = src[j];
    if (c === '\\') j++;
    else if (c === '"') quoted = !quoted;
    else if (!quoted && c === '{') depth++;
    else if (!quoted && c === '}' && --depth === 0) return j;
  }
  return -1;
}

// ---------------------------------------------------------------- rendering

function at(obj: Json, path: string): Json {
  if (path === '.' || path === '') return obj;
  let cur = obj;
  for (const part of path.split(/[/.]/)) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = cur[part];
  }
  return cur;
}

const isEmpty = (v: Json): boolean => v === undefined || v === null || v === '' || (Array.isArray(v) && v.length === 0);

function scalarText(v: Json): string {
  if (isEmpty(v)) return '';
  if (Array.isArray(v)) return v.map(scalarText).filter(Boolean).join(', ');
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

function applyFilter(v: Json, f: string, ctx: EssenceContext, item: Json): Json {
  const [name, ...rest] = f.split(':');
  const arg = rest.join(':');
  switch (name) {
    case 'op':
      return isEmpty(v) ? v : operatorWords(v);
    case 'sym':
      return isEmpty(v) ? v : (OP_SYMBOLS[String(v)] ?? String(v));
    case 'last':
      return Array.isArray(v) ? v.map((x) => String(x).split('.').pop()) : isEmpty(v) ? v : String(v).split('.').pop();
    case 'reason':
      return SIP_REASONS[Number(v)] ?? '';
    case 'logic': {
      if (isEmpty(v)) return v;
      const name = ctx.logics?.[String(v)];
      return name ?? String(v);
    }
    case 'join':
      return v === 'any' || v === 'or' ? 'or' : 'and';
    case 'count':
      return Array.isArray(v) ? v.length : 0;
    case 'default':
      return isEmpty(v) ? arg : v;
    case 'value':
      // a condition's value, nothing after a unary operator
      return item && typeof item === 'object' && UNARY.has(String(item.operator)) ? '' : v;
    default:
      return v;
  }
}

function render(parts: Part[], obj: Json, index: number | null, ctx: EssenceContext): string {
  let out = '';
  for (const p of parts) {
    switch (p.k) {
      case 'text':
        out += p.text;
        break;
      case 'index':
        out += index === null ? '' : String(index + 1);
        break;
      case 'value': {
        let v = at(obj, p.path);
        if (p.path === 'value') v = applyFilter(v, 'value', ctx, obj);
        for (const f of p.filters) v = applyFilter(v, f, ctx, obj);
        out += scalarText(v);
        break;
      }
      case 'each': {
        const list = at(obj, p.path);
        if (!Array.isArray(list)) break;
        const sep = render(p.sep, obj, index, ctx);
        out += list
          .map((item, i) => render(p.body, item, i, ctx).trim())
          .filter(Boolean)
          .join(sep);
        break;
      }
      case 'if':
        out += render(isEmpty(at(obj, p.path)) ? p.else : p.then, obj, index, ctx);
        break;
    }
  }
  return out;
}

/** Renders a template over `values` (one line, spaces collapsed). */
export function renderTemplate(template: string, values: Json, ctx: EssenceContext = {}, index: number | null = null): string {
  return render(parseTemplate(template), values ?? {}, index, ctx)
    .replace(/\s+/g, ' ')
    .trim();
}

// ---------------------------------------------------------------- node essence and exit labels

/**
 * The essence of a node: its type's `summary` over its values, else a generic line (the first
 * two plain values that are not exits, as `key: value`).
 */
export function essenceOf(info: NodeTypeInfo | undefined, values: Json, ctx: EssenceContext = {}): string {
  if (!info) return '';
  if (info.summary) return renderTemplate(info.summary, values, ctx);
  const props: Record<string, Json> = (info.valuesSchema as Json)?.properties ?? {};
  const parts: string[] = [];
  for (const [key, s] of Object.entries(props)) {
    if (s?.['x-exit'] || parts.length >= 2) continue;
    const text = scalarText(values?.[key]);
    if (text && text.length < 200) parts.push(`${key}: ${text}`);
  }
  return parts.join(' · ');
}

/** The schema of the field at a values pointer (`conditions/3/ifTrue` → items → ifTrue). */
function schemaAt(schema: Json, pointer: string): { field: Json; parentPath: string; index: number | null } {
  let cur = schema;
  const parts = pointer.split('/');
  let parentPath = '';
  let index: number | null = null;
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i];
    if (!cur || typeof cur !== 'object') return { field: undefined, parentPath, index };
    if (/^\d+$/.test(p) && cur.items) {
      cur = cur.items;
      index = Number(p);
      parentPath = parts.slice(0, i + 1).join('/');
    } else cur = cur.properties?.[p];
  }
  return { field: cur, parentPath, index };
}

/** Words of a camelCase exit name: `ifNotFound` → `not found`, `ifAllFailed` → `all failed`. */
function words(name: string): string {
  const bare = name.replace(/^if(?=[A-Z])/, '');
  return bare.replace(/([a-z0-9])([A-Z])/g, '$1 $2').toLowerCase();
}

/**
 * What an exit means, for its handle and its edges: the exit field's `x-exit-label` template
 * (rendered over the list item holding the exit, or over `values`), else the exit's name in words.
 */
export function exitMeaning(info: NodeTypeInfo | undefined, values: Json, pointer: string, ctx: EssenceContext = {}): string {
  const { field, parentPath, index } = info ? schemaAt(info.valuesSchema, pointer) : { field: undefined, parentPath: '', index: null };
  const tpl = field?.['x-exit-label'];
  const last = pointer.split('/').pop() ?? pointer;
  if (typeof tpl === 'string') {
    const over = parentPath ? at(values, parentPath) : values;
    const text = renderTemplate(tpl, over, ctx, index);
    if (text) return text;
  }
  const m = /^(\w+)\/(\d+)\/(\w+)$/.exec(pointer);
  if (m) return `${m[1]} ${Number(m[2]) + 1}: ${words(m[3])}`;
  return words(last);
}

/** Long text for a node body: cut at `max` characters with an ellipsis (the full text goes in a tooltip). */
export function truncate(text: string, max = 60): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}
