import type { NodeType } from '../engine/node-type';
import type { RecordRow } from '../engine/types';
import { toText } from '../engine/values';
import { anyValue, nodeRef, writesVariable } from './common';
import { MAX_LIST_ROWS, newRow, toCell } from './list';

interface Values {
  json: unknown;
  pointer?: string;
  list: string;
  errorInto?: string;
  next?: number | string;
  ifInvalid?: number | string;
}

/** JSON text read at most (longer: ifInvalid); an HTTP body is capped below this (nodes.http.maxResponseBytes). */
export const MAX_JSON_CHARS = 2 * 1024 * 1024;

/** RFC 6901 JSON Pointer: "" (the whole document) or /-separated reference tokens with ~0 (~) and ~1 (/) escapes. */
const JSON_POINTER = '^(/([^~]|~[01])*)*$';

/** The reference tokens of a JSON pointer. */
export function pointerTokens(pointer: string): string[] {
  return pointer === ''
    ? []
    : pointer
        .slice(1)
        .split('/')
        .map((t) => t.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/** The value a pointer designates, or undefined; own properties only (`/constructor` designates nothing on `{}`). */
export function resolvePointer(doc: unknown, tokens: readonly string[]): unknown {
  let cur = doc;
  for (const t of tokens) {
    if (Array.isArray(cur)) {
      if (!/^(0|[1-9]\d*)$/.test(t)) return undefined;
      cur = cur[Number(t)];
    } else if (cur !== null && typeof cur === 'object' && Object.hasOwn(cur, t)) cur = (cur as Record<string, unknown>)[t];
    else return undefined;
  }
  return cur;
}

/**
 * JSON to list: JSON text of an array of objects (or of a document whose array a JSON Pointer
 * designates, e.g. `/routes` of an HTTP answer) → a list of records: one row per object, one
 * column per key; scalar values as they are, objects and arrays as JSON text. Invalid JSON, a
 * pointer designating no array, an element that is not an object, more than MAX_LIST_ROWS rows or
 * text longer than MAX_JSON_CHARS → `ifInvalid` with the reason in `errorInto`. The text may come
 * from anywhere (an HTTP answer, a SIP header): it is only parsed, never evaluated, and keys such
 * as `__proto__` become plain columns.
 */
export const jsonToListNode: NodeType<Values> = {
  type: 'action.jsonToList',
  title: 'JSON to list',
  summary: '{json} → list {list}',
  category: 'list',
  description:
    'Parses JSON text of an array of objects (or the array a JSON Pointer designates in it) into a list of records; nested values become JSON text. Invalid input takes ifInvalid.',
  valuesSchema: {
    type: 'object',
    required: ['json', 'list'],
    properties: {
      json: { ...anyValue, description: 'the JSON text: a variable (an HTTP answer body) or a literal with [name] placeholders' },
      pointer: {
        type: 'string',
        pattern: JSON_POINTER,
        default: '',
        description: 'JSON Pointer (RFC 6901) to the array inside the document, e.g. /data/routes ("" = the document itself)',
      },
      list: { ...writesVariable, description: 'variable the list is written to' },
      errorInto: { ...writesVariable, description: 'variable the reason is written to when the input is invalid' },
      next: nodeRef,
      ifInvalid: { ...nodeRef, description: 'taken when the text is no JSON, or holds no array of objects there' },
    },
  },
  compile(values, c) {
    const json = c.value(values.json);
    const tokens = pointerTokens(values.pointer ?? '');
    const where = values.pointer ? `at ${values.pointer}` : 'the document';
    const next = c.exit('next');
    const invalid = c.exit('ifInvalid');
    return (s) => {
      const raw = json(s.cd.vars);
      const rows = toRows(raw === null ? null : toText(raw), tokens, where);
      if (typeof rows === 'string') {
        if (values.errorInto) s.set(values.errorInto, rows);
        return invalid;
      }
      s.set(values.list, rows);
      return next;
    };
  },
};

/** The rows, or why there are none. */
function toRows(text: string | null, tokens: readonly string[], where: string): RecordRow[] | string {
  if (text === null || text === '') return 'no JSON text';
  if (text.length > MAX_JSON_CHARS) return `JSON text longer than ${MAX_JSON_CHARS} characters`;
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    return `invalid JSON: ${(e as Error).message}`;
  }
  const array = resolvePointer(doc, tokens);
  if (array === undefined) return `${where}: nothing there`;
  if (!Array.isArray(array)) return `${where}: not an array`;
  if (array.length > MAX_LIST_ROWS) return `${where}: ${array.length} elements, more than ${MAX_LIST_ROWS}`;
  const rows: RecordRow[] = [];
  for (let i = 0; i < array.length; i++) {
    const el: unknown = array[i];
    if (el === null || typeof el !== 'object' || Array.isArray(el)) return `${where}: element ${i} is not an object`;
    const row = newRow();
    for (const [k, v] of Object.entries(el)) row[k] = toCell(v);
    rows.push(row);
  }
  return rows;
}
