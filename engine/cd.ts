/**
 * The one call-descriptor builder (`callDescriptorFrom`): every front end (sipflow's own SIP front
 * end, the drachtio one through the execute contract), the CLI, the HTTP API and the simulator
 * build the CD's variables with it, so a logic sees the same variables whatever the request came
 * through: a map without a prototype (a variable named `constructor`, `__proto__` or `toString`
 * is missing unless the request gives it), the given variables first, then the predefined ones
 * derived from the headers.
 *
 * `buildCallDescriptor` takes outside input (CLI JSON, HTTP API, simulator): type-checked with
 * zod, aliases mapped to SRE names, header names normalized, then handed to `callDescriptorFrom`.
 */
import { z } from 'zod';
import type { DigestCredentials } from './ports';
import type { CallDescriptor, CdValue, ParsedValues, SipHeaders } from './types';
import { parseNameAddr, parseUri, reuse, type Parsed, type SipUri } from '../grammar/sip-values';

const scalar = z.union([z.string(), z.number(), z.boolean(), z.null()]);
const recordList = z.array(z.record(z.string(), scalar));
const headerValue = z.union([z.string(), z.array(z.string())]);
const variableValue = z.union([scalar, recordList]);

export const callDescriptorInputSchema = z
  .object({
    headers: z.record(z.string(), headerValue).optional(),
    body: z.string().optional(),
  })
  .catchall(variableValue);

export type CallDescriptorInput = z.input<typeof callDescriptorInputSchema>;

/** Accepted spellings → SRE variable names. */
const ALIASES: Record<string, string> = {
  method: 'requestMethod',
  requestUri: 'requestURI',
  ruri: 'requestURI',
  fromUri: 'fromURI',
  toUri: 'toURI',
  callid: 'callId',
  'call-id': 'callId',
  source: 'sourceAddress',
  sourceIp: 'sourceAddress',
};

/** Compact form → lower-case full name (RFC 3261 §7.3.3 and the IANA SIP header registry); the SIP parser uses it too. */
export const COMPACT_HEADERS: Readonly<Record<string, string>> = {
  a: 'accept-contact',
  b: 'referred-by',
  c: 'content-type',
  d: 'request-disposition',
  e: 'content-encoding',
  f: 'from',
  i: 'call-id',
  j: 'reject-contact',
  k: 'supported',
  l: 'content-length',
  m: 'contact',
  n: 'identity-info',
  o: 'event',
  r: 'refer-to',
  s: 'subject',
  t: 'to',
  u: 'allow-events',
  v: 'via',
  x: 'session-expires',
  y: 'identity',
};

export function normalizeHeaderName(name: string): string {
  const lower = name.trim().toLowerCase();
  return Object.hasOwn(COMPACT_HEADERS, lower) ? COMPACT_HEADERS[lower] : lower;
}

export class CallDescriptorError extends Error {}

/**
 * Variable maps have no Object.prototype in their chain, so a variable named `constructor`,
 * `toString` or `__proto__` reads as missing (not as a function) and is a plain key when set;
 * built like sip/message.ts's header maps, they stay fast-mode objects (the SIP hot path).
 */
function VariableBag(this: Record<string, CdValue>): void {
  /* empty */
}
VariableBag.prototype = Object.create(null);

/** An empty variable map, safe for any variable name. */
export function newVariables(): Record<string, CdValue> {
  return new (VariableBag as unknown as new () => Record<string, CdValue>)();
}

export interface BuildOptions {
  /**
   * Parses a Digest credentials header (services/auth): its username gives `authUsername`, and the
   * parsed credentials ride on the CD (`credentials`) so the authenticate node does not parse the
   * same header again.
   */
  credentials?: (headerValue: string) => DigestCredentials | null;
  /** Where `called` comes from: the Request-URI user (default, as SRE) or the To user (overrides a given `called`). */
  called?: 'requestUri' | 'to';
}

/**
 * The call descriptor of one request: `given` variables (SRE names; undefined ones skipped) in a
 * prototype-free map, the predefined variables derived from the headers where not given
 * (`fillPredefined`), `requestUri` = the `requestURI` variable as received, and the body.
 * `headers` is kept as is (the SIP front end shares the message's header map), and so is `parsed`:
 * the values the caller already parsed (the SIP front end: its parser's), to which fillPredefined
 * adds its own, kept as the CD's `parsed` for the nodes.
 */
export function callDescriptorFrom(
  given: Iterable<readonly [string, CdValue | undefined]>,
  headers: SipHeaders,
  body: string | undefined,
  opts: BuildOptions = {},
  parsed: ParsedValues = {},
): CallDescriptor {
  const vars = newVariables();
  for (const [name, value] of given) if (value !== undefined) vars[name] = value;
  return callDescriptorOf(vars, headers, body, opts, parsed);
}

/**
 * callDescriptorFrom for variables already given, in a map of newVariables(): the SIP front end
 * (sip/call-descriptor.ts) sets its own by name, so every request's map takes the same V8 shape.
 */
export function callDescriptorOf(
  vars: Record<string, CdValue>,
  headers: SipHeaders,
  body: string | undefined,
  opts: BuildOptions = {},
  parsed: ParsedValues = {},
): CallDescriptor {
  const credentials = fillPredefined(vars, headers, opts, parsed);
  if (opts.called === 'to') {
    vars.called = vars.toUsername ?? null;
    vars.originalCalled = vars.called;
  }
  const cd: CallDescriptor = { vars, headers, parsed };
  if (credentials !== null) cd.credentials = credentials;
  // The request's Request-URI as given, kept apart from the variable a logic may rewrite.
  if (typeof vars.requestURI === 'string') cd.requestUri = vars.requestURI;
  if (body !== undefined) cd.body = body;
  return cd;
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * A `__proto__` key of the input (JSON.parse makes it an own property) that zod's output object
 * would swallow as its prototype: checked on its own and kept as an entry.
 */
function protoEntry<T>(o: unknown, schema: z.ZodType<T>, where: string): Array<[string, T]> {
  if (!isRecord(o) || !Object.hasOwn(o, '__proto__')) return [];
  const r = schema.safeParse(o.__proto__);
  if (!r.success) throw new CallDescriptorError(`invalid call descriptor: ${where}__proto__: ${r.error.issues[0]?.message ?? 'invalid'}`);
  return [['__proto__', r.data]];
}

export function buildCallDescriptor(input: unknown, opts: BuildOptions = {}): CallDescriptor {
  const parsed = callDescriptorInputSchema.safeParse(input);
  if (!parsed.success) {
    const msg = parsed.error.issues.map((i) => `${i.path.join('/') || '(root)'}: ${i.message}`).join('; ');
    throw new CallDescriptorError(`invalid call descriptor: ${msg}`);
  }
  const { headers: rawHeaders, body, ...rest } = parsed.data;
  const headers = Object.create(null) as SipHeaders;
  const headerEntries = [...Object.entries(rawHeaders ?? {}), ...protoEntry(isRecord(input) ? input.headers : undefined, headerValue, 'headers/')];
  for (const [name, value] of headerEntries) {
    const key = normalizeHeaderName(name);
    const list = Object.hasOwn(headers, key) ? headers[key] : (headers[key] = []);
    list.push(...(Array.isArray(value) ? value : [value]));
  }
  const given = [...Object.entries(rest), ...protoEntry(input, variableValue, '')].map(
    ([name, value]) => [Object.hasOwn(ALIASES, name) ? ALIASES[name] : name, value as CdValue] as const,
  );
  return callDescriptorFrom(given, headers, body, opts);
}

/** The user of a URI, or null when it has none or is unparsable (the variable is then null, not missing). */
const userOf = (uri: Parsed<SipUri> | null): CdValue => uri?.value.user ?? null;

/**
 * The method of a CSeq value: its second whitespace-separated word (`cseq.trim().split(/\s+/)[1]`).
 * "1 REGISTER", one space between two words of printable ASCII, is read by one indexOf; anything
 * else (other whitespace, which `\s` takes in Unicode's sense) by that expression.
 */
export function cseqMethod(cseq: string): string | undefined {
  const sp = cseq.indexOf(' ');
  if (sp > 0 && sp < cseq.length - 1) {
    let plain = true;
    for (let i = 0; i < cseq.length && plain; i++) {
      const c = cseq.charCodeAt(i);
      plain = i === sp || (c > 0x20 && c < 0x7f);
    }
    if (plain) return cseq.slice(sp + 1);
  }
  return cseq.trim().split(/\s+/)[1];
}

/**
 * Fills what the SIP front end fills, without overriding what the input gives; returns the first
 * credentials header of the method's kind as parsed (null: none, unparsable, or no parser given).
 * `parsed`: values already parsed, taken where their text is the one read here (`reuse`); what
 * is parsed here is added to it.
 */
export function fillPredefined(
  vars: Record<string, CdValue>,
  headers: SipHeaders,
  opts: BuildOptions = {},
  parsed: ParsedValues = {},
): CallDescriptor['credentials'] | null {
  // Each variable read and set by its name, not through a helper taking the name: a site that
  // sees one name is a monomorphic property access, one that sees them all a megamorphic lookup
  // (2 % of a SIP thread's time).
  if (vars.callId === undefined) {
    const callId = headers['call-id']?.[0];
    if (callId !== undefined) vars.callId = callId;
  }
  const cseq = headers.cseq?.[0];
  if (cseq && vars.requestMethod === undefined) {
    const method = cseqMethod(cseq);
    if (method !== undefined) vars.requestMethod = method;
  }
  const fromValue = headers.from?.[0];
  const from = fromValue ? reuse(parsed.from, fromValue, parseNameAddr) : null;
  if (from) {
    parsed.from = from;
    if (vars.fromURI === undefined) vars.fromURI = from.value.uri;
    const uri = reuse(parsed.fromUri, from.value.uri, parseUri);
    if (uri) parsed.fromUri = uri;
    if (vars.fromUsername === undefined) vars.fromUsername = userOf(uri);
  }
  const toValue = headers.to?.[0];
  const to = toValue ? reuse(parsed.to, toValue, parseNameAddr) : null;
  if (to) {
    parsed.to = to;
    if (vars.toURI === undefined) vars.toURI = to.value.uri;
    const uri = reuse(parsed.toUri, to.value.uri, parseUri);
    if (uri) parsed.toUri = uri;
    if (vars.toUsername === undefined) vars.toUsername = userOf(uri);
  }
  if (typeof vars.requestURI === 'string') {
    const uri = reuse(parsed.requestUri, vars.requestURI, parseUri);
    if (uri) parsed.requestUri = uri;
    if (vars.requestUsername === undefined) vars.requestUsername = userOf(uri);
  }
  if (vars.called === undefined) {
    const called = vars.requestUsername ?? vars.toUsername;
    if (called !== undefined) vars.called = called;
  }
  if (vars.calling === undefined && vars.fromUsername !== undefined) vars.calling = vars.fromUsername;
  if (vars.originalCalled === undefined && vars.called !== undefined) vars.originalCalled = vars.called;
  if (vars.originalCalling === undefined && vars.calling !== undefined) vars.originalCalling = vars.calling;
  if (vars.authStatus === undefined) vars.authStatus = 0;
  if (!opts.credentials) return null;
  const header = vars.requestMethod === 'REGISTER' ? headers.authorization?.[0] : headers['proxy-authorization']?.[0];
  if (header === undefined) return null;
  const credentials = opts.credentials(header);
  if (credentials === null) return null;
  if (vars.authUsername === undefined) vars.authUsername = credentials.username;
  return { header, parsed: credentials };
}

/** The CD as printed by the CLI and returned by the API. */
export function callDescriptorJson(cd: CallDescriptor): Record<string, unknown> {
  return { ...cd.vars, headers: cd.headers };
}
