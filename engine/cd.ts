/**
 * Building a call descriptor from outside input (CLI JSON, HTTP API, simulator): type-checked with
 * zod, aliases mapped to SRE names, header names normalized, and the predefined variables the
 * front end would fill derived from the headers when the input leaves them out.
 */
import { z } from 'zod';
import type { CallDescriptor, CdValue, SipHeaders } from './types';
import { parseNameAddr, parseUri } from '../grammar/sip-values';

const scalar = z.union([z.string(), z.number(), z.boolean(), z.null()]);
const recordList = z.array(z.record(z.string(), scalar));
const headerValue = z.union([z.string(), z.array(z.string())]);

export const callDescriptorInputSchema = z.object({
  headers: z.record(z.string(), headerValue).optional(),
  body: z.string().optional(),
}).catchall(z.union([scalar, recordList]));

export type CallDescriptorInput = z.input<typeof callDescriptorInputSchema>;

/** Accepted spellings → SRE variable names. */
const ALIASES: Record<string, string> = {
  method: 'requestMethod', requestUri: 'requestURI', ruri: 'requestURI', fromUri: 'fromURI', toUri: 'toURI',
  callid: 'callId', 'call-id': 'callId', source: 'sourceAddress', sourceIp: 'sourceAddress',
};

/** Compact form → lower-case full name (RFC 3261 §7.3.3 and the IANA SIP header registry); the SIP parser uses it too. */
export const COMPACT_HEADERS: Readonly<Record<string, string>> = {
  a: 'accept-contact', b: 'referred-by', c: 'content-type', d: 'request-disposition',
  e: 'content-encoding', f: 'from', i: 'call-id', j: 'reject-contact', k: 'supported',
  l: 'content-length', m: 'contact', n: 'identity-info', o: 'event', r: 'refer-to',
  s: 'subject', t: 'to', u: 'allow-events', v: 'via', x: 'session-expires', y: 'identity',
};

export function normalizeHeaderName(name: string): string {
  const lower = name.trim().toLowerCase();
  return Object.hasOwn(COMPACT_HEADERS, lower) ? COMPACT_HEADERS[lower] : lower;
}

export class CallDescriptorError extends Error {}

/** A variable map without a prototype, so a variable named `constructor` reads as missing, not as a function. */
export function newVariables(): Record<string, CdValue> {
  return Object.create(null) as Record<string, CdValue>;
}

export interface BuildOptions {
  /** Username of a Digest credentials header (services/auth), for `authUsername`. */
  credentialsUsername?: (headerValue: string) => string | null;
}

export function buildCallDescriptor(input: unknown, opts: BuildOptions = {}): CallDescriptor {
  const parsed = callDescriptorInputSchema.safeParse(input);
  if (!parsed.success) {
    const msg = parsed.error.issues.map((i) => `${i.path.join('/') || '(root)'}: ${i.message}`).join('; ');
    throw new CallDescriptorError(`invalid call descriptor: ${msg}`);
  }
  const { headers: rawHeaders, body, ...rest } = parsed.data;
  const headers = Object.create(null) as SipHeaders;
  for (const [name, value] of Object.entries(rawHeaders ?? {})) {
    const key = normalizeHeaderName(name);
    const list = Object.hasOwn(headers, key) ? headers[key] : (headers[key] = []);
    list.push(...(Array.isArray(value) ? value : [value]));
  }
  const vars = newVariables();
  for (const [name, value] of Object.entries(rest)) vars[Object.hasOwn(ALIASES, name) ? ALIASES[name] : name] = value as CdValue;
  fillPredefined(vars, headers, opts);
  const cd: CallDescriptor = { vars, headers };
  // The request's Request-URI as given, kept apart from the variable a logic may rewrite.
  if (typeof vars.requestURI === 'string') cd.requestUri = vars.requestURI;
  if (body !== undefined) cd.body = body;
  return cd;
}

const first = (headers: SipHeaders, name: string): string | undefined => headers[name]?.[0];

/** Fills what the SIP front end fills, without overriding what the input gives. */
export function fillPredefined(vars: Record<string, CdValue>, headers: SipHeaders, opts: BuildOptions = {}): void {
  const setIfAbsent = (name: string, value: CdValue | undefined) => {
    if (vars[name] === undefined && value !== undefined) vars[name] = value;
  };
  setIfAbsent('callId', first(headers, 'call-id'));
  const cseq = first(headers, 'cseq');
  if (cseq) setIfAbsent('requestMethod', cseq.trim().split(/\s+/)[1]);
  for (const [header, uriVar, userVar] of [['from', 'fromURI', 'fromUsername'], ['to', 'toURI', 'toUsername']] as const) {
    const value = first(headers, header);
    const na = value ? parseNameAddr(value) : null;
    if (na) {
      setIfAbsent(uriVar, na.uri);
      setIfAbsent(userVar, parseUri(na.uri)?.user ?? null);
    }
  }
  if (typeof vars.requestURI === 'string') setIfAbsent('requestUsername', parseUri(vars.requestURI)?.user ?? null);
  setIfAbsent('called', vars.requestUsername ?? vars.toUsername);
  setIfAbsent('calling', vars.fromUsername);
  setIfAbsent('originalCalled', vars.called);
  setIfAbsent('originalCalling', vars.calling);
  setIfAbsent('authStatus', 0);
  if (vars.authUsername === undefined && opts.credentialsUsername) {
    const header = vars.requestMethod === 'REGISTER' ? 'authorization' : 'proxy-authorization';
    const value = first(headers, header);
    const username = value ? opts.credentialsUsername(value) : null;
    if (username !== null) vars.authUsername = username;
  }
}

/** The CD as printed by the CLI and returned by the API. */
export function callDescriptorJson(cd: CallDescriptor): Record<string, unknown> {
  return { ...cd.vars, headers: cd.headers };
}
