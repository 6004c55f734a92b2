/**
 * query.httpRequest: asks an HTTP(S) API (a routing service, a number portability database) and
 * stores parts of its answer into variables, through the run context's HttpPort (services/http:
 * pooled undici connections, the response size cap, HTTPS trust).
 *
 * Layout: the values schema; templates (`[var]` placeholders, each place with its own escaping);
 * response paths (JSON Pointer, XPath), compiled once; the node's closure.
 *
 * Placeholders carry values a SIP sender controls (`called`, header values), so each place
 * escapes them (docs/semantics.md, "HTTP requests"):
 *  - URL: only after the host (path, query, fragment); each value percent-encoded as a URI
 *    component (`/`, `?`, `&`, `#` included), and a value that would make a `.`/`..` path segment
 *    is refused: a value cannot change the URL's origin, path structure or query structure;
 *  - header values: a value holding CR, LF or another control character is refused (no header
 *    injection);
 *  - body: JSON-escaped (as the inside of a JSON string) when the literal Content-Type is JSON,
 *    percent-encoded when it is application/x-www-form-urlencoded, as is otherwise.
 * A refused value takes ifFailure, the request unsent.
 *
 * Trace: the node writes the status, the elapsed time and a one-line summary
 * (`GET http://… → 200 in 3 ms`) beside the stored variables. Header values never appear in it;
 * placeholders of secret variables show as `[redacted]` in the summary's URL.
 *
 * Limits: timeoutMs 1..60000 (default 2000); the body cap is the adapter's
 * (`nodes.http.maxResponseBytes`); redirects are not followed (a 3xx takes ifFailure).
 */
import { DOMParser } from '@xmldom/xmldom';
import * as xpath from 'xpath';
import type { CompileContext, NodeType } from '../engine/node-type';
import { HttpQueryError, type HttpAnswer, type HttpQuery } from '../engine/ports';
import { REDACTED } from '../engine/secrets';
import type { CdValue, Scalar } from '../engine/types';
import { toText } from '../engine/values';
import { nodeRef, writesVariable } from './common';

type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE' | 'HEAD';
type Format = 'auto' | 'json' | 'xml' | 'text';

interface Values {
  method?: Method;
  url: string;
  headers?: Record<string, string>;
  body?: string;
  timeoutMs?: number;
  responseFormat?: Format;
  storeInto?: Array<{ path?: string; variable: string }>;
  statusVariable?: string;
  elapsedVariable?: string;
  summaryVariable?: string;
  ifSuccess?: number | string;
  ifFailure?: number | string;
  ifTimeout?: number | string;
}

const DEFAULT_TIMEOUT_MS = 2000;
const MAX_TIMEOUT_MS = 60_000;
const DEFAULTS = { statusVariable: 'httpStatus', elapsedVariable: 'httpElapsedMs', summaryVariable: 'httpSummary' } as const;

/** `[name]` placeholders: the syntax of engine/values.ts. */
const PLACEHOLDER = /\[([A-Za-z_][A-Za-z0-9_.-]*)\]/g;
const BARE_NAME = /^[A-Za-z_][A-Za-z0-9_.-]*$/;
/** RFC 9110 field-name (token). */
const HEADER_NAME = "^[A-Za-z0-9!#$%&'*+.^_`|~-]+$";
/** What an HTTP/1.1 field value may hold (RFC 9110 §5.5, obs-text allowed): no CR, LF, NUL or other control. */
const FIELD_VALUE_FORBIDDEN = /[^\t\x20-\x7e\x80-\xff]/;
/** Set by the client itself, or meaningless per request. */
const RESERVED_HEADERS = new Set(['content-length', 'transfer-encoding', 'connection', 'keep-alive', 'upgrade', 'expect', 'te', 'trailer']);
/** Start of the URL up to the end of its authority: placeholders come after it. */
const ORIGIN = /^https?:\/\/[^/?#]+(?=[/?#]|$)/i;

// ---------------------------------------------------------------- templates

type Vars = Record<string, CdValue>;
type Template = (vars: Vars) => string;

/**
 * A text with `[name]` placeholders of known variables (unknown names stay literal, as in
 * engine/values.ts), each value passed through `encode`; `mask` names shown as `[redacted]`.
 */
function compileTemplate(raw: string, c: CompileContext, encode: (text: string) => string, mask?: (name: string) => boolean): Template {
  const parts = raw.split(PLACEHOLDER);
  const texts: string[] = [];
  const names: string[] = [];
  let text = parts[0];
  for (let i = 1; i < parts.length; i += 2) {
    if (c.isVariable(parts[i])) {
      texts.push(text);
      names.push(parts[i]);
      text = parts[i + 1];
    } else text += `[${parts[i]}]${parts[i + 1]}`;
  }
  texts.push(text);
  if (names.length === 0) return () => text;
  const masked = names.map((n) => mask?.(n) === true);
  return (vars) => {
    let out = texts[0];
    for (let i = 0; i < names.length; i++) out += (masked[i] ? REDACTED : encode(toText(vars[names[i]] ?? null))) + texts[i + 1];
    return out;
  };
}

/** A header value or a body: a bare known variable name reads that variable as is; else a template. */
function compileText(raw: string, c: CompileContext, encode: (text: string) => string): Template {
  if (c.isVariable(raw)) return (vars) => toText(vars[raw] ?? null);
  return compileTemplate(raw, c, encode);
}

const identity = (s: string) => s;
/** As the URL, but a value the URL refuses (a lone surrogate) still shows in the summary. */
function encodeForDisplay(s: string): string {
  try {
    return encodeURIComponent(s);
  } catch {
    return encodeURIComponent(s.replace(/[\ud800-\udfff]/gu, '\ufffd'));
  }
}
/** The inside of a JSON string: a value cannot close the string or add members. */
const jsonEscape = (s: string) => JSON.stringify(s).slice(1, -1);

type BodyEncoding = 'json' | 'form' | 'raw';
function bodyEncoding(headers: Record<string, string>): BodyEncoding {
  const ct = Object.entries(headers).find(([k]) => k.toLowerCase() === 'content-type')?.[1] ?? '';
  const media = ct.split(';')[0].trim().toLowerCase();
  if (media === 'application/json' || media.endsWith('+json')) return 'json';
  if (media === 'application/x-www-form-urlencoded') return 'form';
  return 'raw';
}

/** The URL with every placeholder replaced by a sample, as check() parses it. */
const sampleUrl = (url: string) => url.replace(PLACEHOLDER, 'x');

// ---------------------------------------------------------------- response paths

/** RFC 6901: "" (the whole document) or `/`-separated tokens with `~0` and `~1` escapes. */
function parsePointer(path: string): string[] | null {
  if (path === '') return [];
  if (!path.startsWith('/') || /~(?![01])/.test(path)) return null;
  return path
    .slice(1)
    .split('/')
    .map((t) => t.replace(/~1/g, '/').replace(/~0/g, '~'));
}

const ARRAY_INDEX = /^(0|[1-9]\d*)$/;

/** The value at a pointer; undefined when it matches nothing (own properties only). */
function resolvePointer(doc: unknown, tokens: string[]): unknown {
  let cur = doc;
  for (const t of tokens) {
    if (Array.isArray(cur)) {
      if (!ARRAY_INDEX.test(t)) return undefined;
      cur = cur[Number(t)];
    } else if (cur !== null && typeof cur === 'object' && Object.hasOwn(cur, t)) cur = (cur as Record<string, unknown>)[t];
    else return undefined;
    if (cur === undefined) return undefined;
  }
  return cur;
}

/** What the xpath package's parse() gives (its typings leave it out). */
interface XPathResultValue {
  stringValue(): string;
  numberValue(): number;
  booleanValue(): boolean;
  nodeset?: () => { size: number };
}
interface XPathExpression {
  evaluate(o: { node: unknown }): XPathResultValue;
}
type ResultClass = abstract new (...args: never[]) => XPathResultValue;
const xpathLib = xpath as unknown as { parse(expr: string): XPathExpression; XNodeSet: ResultClass; XNumber: ResultClass; XBoolean: ResultClass };

function compileXPath(path: string): XPathExpression | string {
  try {
    return xpathLib.parse(path);
  } catch (e) {
    return (e as Error).message || 'invalid XPath';
  }
}

/** JSON values into variables: scalars as they are, objects and arrays as JSON text. */
const jsonScalar = (v: unknown): Scalar => (v === null || typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' ? v : JSON.stringify(v));

/** XPath results: the first node's text for a node-set (undefined when empty), else the number, boolean or string. */
function xpathValue(r: XPathResultValue): Scalar | undefined {
  const is = (kind: ResultClass): boolean => r instanceof kind;
  if (is(xpathLib.XNodeSet)) return r.nodeset!().size === 0 ? undefined : r.stringValue();
  if (is(xpathLib.XNumber)) return r.numberValue();
  if (is(xpathLib.XBoolean)) return r.booleanValue();
  return r.stringValue();
}

/** A document without DTD entity expansion (xmldom expands none) whose errors throw instead of printing. */
function parseXml(body: string): unknown {
  const parser = new DOMParser({
    onError: (level, message) => {
      if (level !== 'warning') throw new Error(message);
    },
  });
  return parser.parseFromString(body, 'text/xml');
}

function formatOf(format: Format, answer: HttpAnswer): 'json' | 'xml' | 'text' {
  if (format !== 'auto') return format;
  const media = (answer.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
  if (media === 'application/json' || media.endsWith('+json')) return 'json';
  if (media === 'application/xml' || media === 'text/xml' || media.endsWith('+xml')) return 'xml';
  return 'text';
}

interface Store {
  path: string;
  variable: string;
  pointer: string[] | null;
  xpath: XPathExpression | null;
}

/** The stored values in order, or the reason the body is unreadable / a path matched nothing. */
function extract(stores: Store[], format: 'json' | 'xml' | 'text', body: string): Scalar[] | string {
  if (format === 'text') {
    const bad = stores.find((s) => s.path !== '');
    return bad ? `a text response has no path "${bad.path}" (leave it empty for the whole body)` : stores.map(() => body);
  }
  let doc: unknown;
  try {
    doc = format === 'json' ? JSON.parse(body) : parseXml(body);
  } catch (e) {
    return `the body is not ${format === 'json' ? 'JSON' : 'XML'} (${(e as Error).message})`;
  }
  const out: Scalar[] = [];
  for (const s of stores) {
    let v: Scalar | undefined;
    if (format === 'json') {
      if (!s.pointer) return `"${s.path}" is not a JSON Pointer`;
      const found = resolvePointer(doc, s.pointer);
      v = found === undefined ? undefined : jsonScalar(found);
    } else if (s.path === '') v = body;
    else {
      if (!s.xpath) return `"${s.path}" is not an XPath`;
      v = xpathValue(s.xpath.evaluate({ node: doc }));
    }
    if (v === undefined) return `${s.path} matched nothing`;
    out.push(v);
  }
  return out;
}

// ---------------------------------------------------------------- the node

const METHODS: Method[] = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD'];
const names = (v: Values) => ({
  status: v.statusVariable || DEFAULTS.statusVariable,
  elapsed: v.elapsedVariable || DEFAULTS.elapsedVariable,
  summary: v.summaryVariable || DEFAULTS.summaryVariable,
});

export const httpRequestNode: NodeType<Values> = {
  type: 'query.httpRequest',
  title: 'HTTP request',
  summary: '{method|default:GET} {url}',
  category: 'query',
  description:
    'Sends an HTTP(S) request (placeholders in URL, headers and body, each escaped for its place) and stores parts of the JSON, XML or text answer into variables; status, elapsed time and a summary line go into variables too.',
  valuesSchema: {
    type: 'object',
    required: ['url'],
    properties: {
      method: { type: 'string', enum: METHODS, default: 'GET', description: 'HTTP method (default GET)' },
      url: {
        type: 'string',
        minLength: 1,
        default: 'http://127.0.0.1:8080/route?called=[called]',
        description:
          'http:// or https:// URL; [var] placeholders after the host only, each value percent-encoded (it cannot change the path or query structure)',
      },
      headers: {
        type: 'object',
        propertyNames: { pattern: HEADER_NAME },
        additionalProperties: { type: 'string' },
        default: {},
        description: 'request headers, name → value ([var] placeholders; a value holding CR, LF or another control character is refused); never traced',
      },
      body: {
        type: 'string',
        default: '',
        description:
          'request body (not for GET or HEAD); [var] placeholders JSON-escaped when Content-Type is JSON (write them inside quotes), percent-encoded for a form, as is otherwise',
      },
      timeoutMs: {
        type: 'integer',
        minimum: 1,
        maximum: MAX_TIMEOUT_MS,
        default: DEFAULT_TIMEOUT_MS,
        description: 'milliseconds for the whole exchange (connection, answer, body), 1..60000, default 2000; then ifTimeout',
      },
      responseFormat: {
        type: 'string',
        enum: ['auto', 'json', 'xml', 'text'],
        default: 'auto',
        description: 'how the body is read (default auto: from Content-Type, JSON, XML, else text)',
      },
      storeInto: {
        type: 'array',
        default: [],
        description: 'values of the answer into variables (all or none: a path matching nothing takes ifFailure and stores nothing)',
        items: {
          type: 'object',
          required: ['variable'],
          properties: {
            path: {
              type: 'string',
              default: '',
              description: 'JSON Pointer (/route/0/uri) for JSON, XPath (/route/@uri) for XML; empty = the whole body (the only choice for text)',
            },
            variable: { ...writesVariable, description: 'variable receiving the value (JSON objects and arrays as JSON text)' },
          },
        },
      },
      statusVariable: {
        ...writesVariable,
        default: DEFAULTS.statusVariable,
        description: 'receives the HTTP status, 0 when no answer came (default httpStatus)',
      },
      elapsedVariable: {
        ...writesVariable,
        default: DEFAULTS.elapsedVariable,
        description: 'receives the milliseconds the exchange took (default httpElapsedMs)',
      },
      summaryVariable: {
        ...writesVariable,
        default: DEFAULTS.summaryVariable,
        description: 'receives one line for the trace: `GET http://… → 200 in 3 ms`, or why the request failed (default httpSummary)',
      },
      ifSuccess: { ...nodeRef, description: 'taken on a 2xx answer whose stored paths all matched' },
      ifFailure: {
        ...nodeRef,
        description:
          'taken on another status, an unreadable body, a path matching nothing, a refused connection or certificate, a body over nodes.http.maxResponseBytes, a refused placeholder value',
      },
      ifTimeout: { ...nodeRef, description: 'taken when no complete answer came within timeoutMs' },
    },
  },
  writes(v) {
    const n = names(v);
    return [...(v.storeInto ?? []).map((s) => s.variable).filter((x) => typeof x === 'string' && x !== ''), n.status, n.elapsed, n.summary];
  },
  check(v) {
    const problems: Array<[string, string]> = [];
    if (typeof v.url === 'string' && v.url !== '') problems.push(...checkUrl(v.url).map((m): [string, string] => ['url', m]));
    const headers = v.headers ?? {};
    for (const [name, value] of Object.entries(headers)) {
      if (RESERVED_HEADERS.has(name.toLowerCase())) problems.push([`headers/${name}`, 'is set by the HTTP client, not by a logic']);
      else if (typeof value === 'string' && FIELD_VALUE_FORBIDDEN.test(value)) problems.push([`headers/${name}`, 'holds a control character (CR, LF, …)']);
    }
    const method = v.method ?? 'GET';
    if (v.body && (method === 'GET' || method === 'HEAD')) problems.push(['body', `a ${method} request has no body`]);
    if (v.body && bodyEncoding(headers) === 'json' && !BARE_NAME.test(v.body)) {
      try {
        JSON.parse(v.body.replace(PLACEHOLDER, '0'));
      } catch (e) {
        problems.push(['body', `is not JSON (Content-Type is JSON) once placeholders are replaced: ${(e as Error).message}`]);
      }
    }
    const format = v.responseFormat ?? 'auto';
    (v.storeInto ?? []).forEach((s, i) => {
      const path = s?.path ?? '';
      if (path === '') return;
      const where = `storeInto/${i}/path`;
      const pointer = parsePointer(path) !== null;
      const xpathOk = typeof compileXPath(path) !== 'string';
      if (format === 'text') problems.push([where, 'a text response is stored whole: leave the path empty']);
      else if (format === 'json' && !pointer) problems.push([where, 'is not a JSON Pointer (RFC 6901: /name/0, ~0 for ~, ~1 for /)']);
      else if (format === 'xml' && !xpathOk) problems.push([where, `is not an XPath: ${compileXPath(path) as string}`]);
      else if (format === 'auto' && !pointer && !xpathOk) problems.push([where, 'is neither a JSON Pointer nor an XPath']);
    });
    return problems;
  },
  compile(values, c) {
    const method = values.method ?? 'GET';
    const timeoutMs = values.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const format = values.responseFormat ?? 'auto';
    const n = names(values);
    const ok = c.exit('ifSuccess');
    const failed = c.exit('ifFailure');
    const timedOut = c.exit('ifTimeout');

    const url = compileTemplate(values.url, c, encodeURIComponent);
    const shownUrl = compileTemplate(values.url, c, encodeForDisplay, (name) => c.isSecret?.(name) === true);
    // where the path starts and whether a placeholder sits in it (a `..` value is refused there)
    const origin = ORIGIN.exec(values.url)?.[0].length ?? 0;
    const firstPlaceholder = values.url.search(PLACEHOLDER);
    const queryStart = values.url.search(/[?#]/);
    const pathPlaceholders = firstPlaceholder >= 0 && (queryStart < 0 || firstPlaceholder < queryStart);

    const headerList = Object.entries(values.headers ?? {}).map(([name, raw]) => ({ name, value: compileText(raw, c, identity) }));
    const encoding = bodyEncoding(values.headers ?? {});
    const body =
      values.body && method !== 'GET' && method !== 'HEAD'
        ? compileText(values.body, c, encoding === 'json' ? jsonEscape : encoding === 'form' ? encodeURIComponent : identity)
        : null;
    const stores: Store[] = (values.storeInto ?? []).map((s) => {
      const path = s.path ?? '';
      const expr = path === '' ? null : compileXPath(path);
      return { path, variable: s.variable, pointer: parsePointer(path), xpath: typeof expr === 'string' ? null : expr };
    });

    /** The request, or why a placeholder value is refused. */
    const build = (vars: Vars): HttpQuery | string => {
      const u = url(vars);
      if (pathPlaceholders) {
        const end = u.slice(origin).search(/[?#]/);
        const path = end < 0 ? u.slice(origin) : u.slice(origin, origin + end);
        if (/(^|\/)\.\.?(\/|$)/.test(path)) return 'a placeholder value made a "." or ".." segment in the URL path';
      }
      const headers: Record<string, string> = {};
      for (const h of headerList) {
        const value = h.value(vars);
        if (FIELD_VALUE_FORBIDDEN.test(value)) return `header ${h.name}: the value holds a control character (CR, LF, …)`;
        headers[h.name] = value;
      }
      return { method, url: u, headers, body: body ? body(vars) : null, timeoutMs };
    };

    return async (s) => {
      const vars = s.cd.vars;
      const shown = `${method} ${shownUrl(vars)}`;
      const done = (status: number, elapsedMs: number, summary: string) => {
        s.set(n.status, status);
        s.set(n.elapsed, Math.round(elapsedMs));
        s.set(n.summary, summary);
      };
      let q: HttpQuery | string;
      try {
        q = build(vars);
      } catch (e) {
        // encodeURIComponent refuses lone surrogates
        q = `a placeholder value cannot be encoded (${(e as Error).message})`;
      }
      if (typeof q === 'string') {
        done(0, 0, `${shown} → not sent: ${q}`);
        return failed;
      }
      if (!s.ctx.http) {
        done(0, 0, `${shown} → not sent: no HTTP client in this run context`);
        return failed;
      }
      let answer: HttpAnswer;
      const started = performance.now();
      try {
        answer = await s.ctx.http.request(q);
      } catch (e) {
        const elapsed = performance.now() - started;
        if (e instanceof HttpQueryError && e.kind === 'timeout') {
          done(0, elapsed, `${shown} → timeout after ${timeoutMs} ms`);
          return timedOut;
        }
        done(0, elapsed, `${shown} → failed: ${(e as Error).message} (${Math.round(elapsed)} ms)`);
        return failed;
      }
      const line = `${shown} → ${answer.status} in ${Math.round(answer.elapsedMs)} ms`;
      if (answer.status < 200 || answer.status > 299) {
        done(answer.status, answer.elapsedMs, line);
        return failed;
      }
      let got: Scalar[] | string;
      try {
        got = stores.length === 0 ? [] : extract(stores, formatOf(format, answer), answer.body);
      } catch (e) {
        // an XPath function that fails on this document, a document nested too deep for the stack
        got = `the body could not be read (${(e as Error).message})`;
      }
      if (typeof got === 'string') {
        done(answer.status, answer.elapsedMs, `${line}; ${got}`);
        return failed;
      }
      done(answer.status, answer.elapsedMs, line);
      for (let i = 0; i < stores.length; i++) s.set(stores[i].variable, got[i]);
      return ok;
    };
  },
};

/** Problems of a URL known before any message: http(s), credentials, placeholders in the origin. */
function checkUrl(url: string): string[] {
  const origin = ORIGIN.exec(url);
  const first = url.search(PLACEHOLDER);
  if (first >= 0 && (!origin || first < origin[0].length)) {
    return ['placeholders are allowed after the host only (path, query): a value must not choose where the request goes'];
  }
  let parsed: URL;
  try {
    parsed = new URL(sampleUrl(url));
  } catch {
    return ['is not a URL (placeholders replaced by a sample value)'];
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') return ['must be an http:// or https:// URL'];
  if (parsed.username || parsed.password) return ['holds credentials: send them in an Authorization header'];
  return [];
}
