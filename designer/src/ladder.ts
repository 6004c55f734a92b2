/**
 * A recorded call as a ladder diagram (RFC 3665 style, as the registrar note's §6.3 draws a
 * REGISTER): one column per host — every distinct "address:port" a message came from or went to —,
 * one arrow per message, in order. sipflow's own addresses (where a message arrived, where one
 * left from) are the columns labelled "sipflow"; the first sender stands left of them, the hosts
 * sipflow relays to right of them. Pure, for ./Ladder.tsx and the tests.
 *
 * Also the call descriptor a recorded run is replayed with: the run's input variables and the
 * headers of the request that started it. Imports only pure modules and types (no DOM): unit-tested
 * under test/unit/designer/.
 */
import type { CdValue } from '../../engine/types';
import type { HistoryMessage, HistoryRun } from '../../services/history/record';
import { REDACTED } from '../../engine/secrets';

export interface LadderColumn {
  address: string;
  /** One of sipflow's own addresses. */
  ours: boolean;
  label: string;
}

export interface LadderArrow {
  /** Index of the message in the call's list. */
  index: number;
  from: number;
  to: number;
  /** The method of a request, "status reason" of a response. */
  label: string;
  /** ms since the call's first message. */
  offsetMs: number;
  /** The same bytes between the same hosts as an earlier message: a retransmission. */
  retransmission: boolean;
  request: boolean;
}

export interface Ladder {
  columns: LadderColumn[];
  arrows: LadderArrow[];
}

/** "401 Unauthorized" of "SIP/2.0 401 Unauthorized"; the method of a request. */
export function arrowLabel(m: HistoryMessage): string {
  if (m.status === null) return m.method;
  const reason = /^SIP\/2\.0\s+\d{3}\s*(.*)$/.exec(m.firstLine)?.[1]?.trim();
  return reason ? `${m.status} ${reason}` : String(m.status);
}

/** "+12 ms", "+3.41 s" beyond 10 s. */
export function formatOffset(ms: number): string {
  return ms < 10_000 ? `+${Math.round(ms)} ms` : `+${(ms / 1000).toFixed(2)} s`;
}

export function buildLadder(messages: HistoryMessage[]): Ladder {
  const ours = new Set<string>();
  for (const m of messages) ours.add(m.direction === 'in' ? m.dst : m.src);
  const seen: string[] = [];
  for (const m of messages) for (const a of [m.src, m.dst]) if (!seen.includes(a)) seen.push(a);
  const theirs = seen.filter((a) => !ours.has(a));
  const first = messages.length ? (ours.has(messages[0].src) ? messages[0].dst : messages[0].src) : undefined;
  const order = [...theirs.filter((a) => a === first), ...seen.filter((a) => ours.has(a)), ...theirs.filter((a) => a !== first)];
  const columns = order.map((address) => ({ address, ours: ours.has(address), label: ours.has(address) ? 'sipflow' : address }));
  const col = new Map(order.map((a, i) => [a, i]));
  const t0 = messages[0]?.at ?? 0;
  const sent = new Set<string>();
  const arrows = messages.map((m, index) => {
    const key = `${m.src}\n${m.dst}\n${m.text}`;
    const retransmission = sent.has(key);
    sent.add(key);
    return { index, from: col.get(m.src)!, to: col.get(m.dst)!, label: arrowLabel(m), offsetMs: m.at - t0, retransmission, request: m.status === null };
  });
  return { columns, arrows };
}

/** The headers of a message's text (folded lines joined; a repeated header gives a list); the body after them. */
export function parseHeaders(text: string): { headers: Record<string, string | string[]>; body: string } {
  const end = text.indexOf('\r\n\r\n');
  const head = end < 0 ? text : text.slice(0, end);
  const lines = head.split(/\r?\n/).slice(1);
  const headers: Record<string, string | string[]> = {};
  let last: string | null = null;
  for (const line of lines) {
    if (/^[ \t]/.test(line) && last !== null) {
      const v = headers[last];
      if (Array.isArray(v)) v[v.length - 1] += ` ${line.trim()}`;
      else headers[last] = `${v} ${line.trim()}`;
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim();
    const value = line.slice(colon + 1).trim();
    const had = headers[name];
    headers[name] = had === undefined ? value : Array.isArray(had) ? [...had, value] : [had, value];
    last = name;
  }
  return { headers, body: end < 0 ? '' : text.slice(end + 4) };
}

/** The request a run ran for: the last request of its method that came in before the run started. */
export function requestOf(messages: HistoryMessage[], run: HistoryRun): HistoryMessage | undefined {
  let found: HistoryMessage | undefined;
  for (const m of messages) if (m.direction === 'in' && m.status === null && m.method === run.method && m.at <= run.at) found = m;
  return found;
}

/**
 * The call descriptor to replay a run with: its input variables, and the headers and body of its
 * request. A credentials header whose digest was redacted is left out (it could only fail):
 * `dropped` names it.
 */
export function replayDescriptor(messages: HistoryMessage[], run: HistoryRun): { cd: Record<string, unknown>; dropped: string[] } {
  const cd: Record<string, CdValue | Record<string, string | string[]> | string> = { ...run.input };
  const request = requestOf(messages, run);
  const dropped: string[] = [];
  if (request && !request.truncated) {
    const { headers, body } = parseHeaders(request.text);
    for (const [name, value] of Object.entries(headers)) {
      if ((Array.isArray(value) ? value : [value]).some((v) => v.includes(REDACTED))) {
        delete headers[name];
        dropped.push(name);
      }
    }
    cd.headers = headers;
    if (body) cd.body = body;
  }
  return { cd, dropped };
}
