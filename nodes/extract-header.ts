import type { NodeType } from '../engine/node-type';
import { normalizeHeaderName } from '../engine/cd';
import { parseNameAddr, parseParams, parseUri, reuse, splitHeaderList } from '../grammar/sip-values';
import { CREDENTIALS_HEADER_PATTERN } from '../engine/secrets';
import type { ParsedValues, Scalar } from '../engine/types';
import { flag, isSet, nodeRef, writesVariable } from './common';

type Part = 'auto' | 'value' | 'uri' | 'user' | 'host' | 'port' | 'displayName' | 'param';

interface Extraction {
  header: string;
  part?: Part;
  param?: string;
  index?: 'first' | 'last';
  storeInto: string;
  onlyIfNotSet?: boolean | string;
}
interface Values {
  extractions: Array<Extraction>;
  next?: number | string;
  ifNotFound?: number | string;
}

/** Headers whose values are name-addr: `auto` extracts their URI. */
const NAME_ADDR_HEADERS = new Set([
  'from',
  'to',
  'contact',
  'diversion',
  'p-asserted-identity',
  'p-preferred-identity',
  'remote-party-id',
  'refer-to',
  'referred-by',
  'reply-to',
  'history-info',
  'route',
  'record-route',
  'path',
]);

/** List headers may carry several comma-separated entries. */
const LIST_HEADERS = new Set(['contact', 'diversion', 'p-asserted-identity', 'route', 'record-route', 'path', 'history-info', 'via']);

/** `parsed`: the CD's parsed values; From and To (and their URIs) are taken from it when the text is theirs. */
function extract(values: string[] | undefined, header: string, e: Extraction, parsed: ParsedValues | undefined): Scalar {
  if (!values || values.length === 0) return null;
  const entries = LIST_HEADERS.has(header) ? values.flatMap(splitHeaderList) : values;
  if (entries.length === 0) return null;
  const raw = e.index === 'last' ? entries[entries.length - 1] : entries[0];
  const part = e.part ?? 'auto';
  if (part === 'value' || (part === 'auto' && !NAME_ADDR_HEADERS.has(header))) return raw.trim();
  const peer = header === 'from' || header === 'to' ? header : null;
  const na = peer !== null ? (reuse(parsed?.[peer], raw, parseNameAddr)?.value ?? null) : parseNameAddr(raw);
  if (!na) return null;
  if (part === 'auto' || part === 'uri') return na.uri;
  if (part === 'displayName') return na.displayName;
  const uri = peer !== null ? (reuse(parsed?.[peer === 'from' ? 'fromUri' : 'toUri'], na.uri, parseUri)?.value ?? null) : parseUri(na.uri);
  if (part === 'param') {
    // header parameter first (e.g. Diversion reason), then URI parameter (e.g. Contact tgrp, RFC 4904)
    const name = (e.param ?? '').toLowerCase();
    if (name in na.params) return na.params[name] ?? '';
    if (uri && name in uri.params) return uri.params[name] ?? '';
    // user-part parameters of a telephone-subscriber user (RFC 4904 §5: tgrp, trunk-context)
    const semi = uri?.user ? uri.user.indexOf(';') : -1;
    if (semi >= 0) {
      const userParams = parseParams(uri!.user!.slice(semi));
      if (name in userParams) return userParams[name] ?? '';
    }
    return null;
  }
  if (!uri) return null;
  if (part === 'user') return uri.user;
  if (part === 'host') return uri.host || null;
  return uri.port;
}

/**
 * Extract SIP header: copies a header, or its URI, URI user, host, port, display name or a
 * parameter (Contact `tgrp`, …), into variables. The `only if not set` flag gives priority
 * chains such as Diversion → P-Asserted-Identity → Remote-Party-ID → From.
 */
export const extractHeaderNode: NodeType<Values> = {
  type: 'analysis.extractSipHeader',
  title: 'Extract SIP header',
  summary: '{each extractions ", "}{header}{if part} {part}{end} → {storeInto}{end}',
  category: 'analysis',
  description: 'Stores header values (or their URI, user, host, port, display name, parameter) into variables.',
  valuesSchema: {
    type: 'object',
    required: ['extractions'],
    properties: {
      extractions: {
        type: 'array',
        minItems: 1,
        description: 'each copies a part of a header into a variable, in order',
        items: {
          type: 'object',
          required: ['header', 'storeInto'],
          properties: {
            header: {
              type: 'string',
              minLength: 1,
              pattern: "^[A-Za-z0-9!%*_+`'~.-]+$",
              description: 'header name, e.g. P-Asserted-Identity',
            },
            part: {
              type: 'string',
              enum: ['auto', 'value', 'uri', 'user', 'host', 'port', 'displayName', 'param'],
              description: 'what to copy: the whole value, its URI, URI user, host, port, display name or a parameter',
            },
            param: { type: 'string', description: 'the parameter copied when part is param (e.g. tgrp)' },
            index: { type: 'string', enum: ['first', 'last'], description: 'which header when it occurs several times' },
            storeInto: {
              ...writesVariable,
              'x-secret': { when: 'header', matches: CREDENTIALS_HEADER_PATTERN },
              title: 'Store into',
              description: 'variable receiving the value',
            },
            onlyIfNotSet: { ...flag, title: 'Only if not set', description: 'keep the variable when an earlier extraction already set it (priority chains)' },
          },
        },
      },
      next: nodeRef,
      ifNotFound: { ...nodeRef, 'x-optional': true, description: 'taken when no extraction found a value (default: next)' },
    },
  },
  check: (v) =>
    (v.extractions ?? []).flatMap((e, i) =>
      e?.part === 'param' && !e.param ? [[`extractions/${i}/param`, 'is required when part is "param"'] as [string, string]] : [],
    ),
  compile(values, c) {
    const items = values.extractions.map((e) => ({ ...e, header: normalizeHeaderName(e.header), onlyIfNotSet: isSet(e.onlyIfNotSet) }));
    const next = c.exit('next');
    const notFound = c.exit('ifNotFound');
    return (s) => {
      let any = false;
      for (const e of items) {
        const current = s.cd.vars[e.storeInto];
        if (e.onlyIfNotSet && current !== undefined && current !== null) {
          any = true;
          continue;
        }
        const value = extract(s.cd.headers[e.header], e.header, e, s.cd.parsed);
        if (value !== null) {
          s.set(e.storeInto, value);
          any = true;
        }
      }
      return !any && notFound.node ? notFound : next;
    };
  },
};
