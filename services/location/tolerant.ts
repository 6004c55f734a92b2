/**
 * Reads a usrloc record as the other writers of a shared location leave it: a MongoDB document or
 * an SQL row (Kamailio's usrloc schema v9) turned into a Binding, never throwing.
 *
 * Why a reader of its own: Kamailio's db_mongodb leaves empty fields out of the document instead
 * of writing null (received, path, methods, instance, domain…: seen with Kamailio 5.6 in
 * test/integration/location/kamailio-written.test.ts), operators insert rows by hand, and a
 * collection has no schema at all. One garbage record must not make a whole AoR, or a
 * write-through load, fail: it is skipped with a note naming it, and the others are read.
 *
 * Defaults are Kamailio's (usrloc's dbrow2info in udomain.c, and the column defaults of its
 * usrloc-create.sql) where they are safe:
 *   q missing → -1 (Q_UNSPECIFIED, ranked as 1.0)        methods missing → null (all methods)
 *   flags, cflags, reg_id, server_id, keepalive, partition missing → 0
 *   connection_id missing → -1 (usrloc sets tcpconn_id = -1 for what it loads: no connection)
 *   cseq missing → 0; callid, user_agent missing → ''; last_modified missing → the epoch
 *   expires 0 or the epoch → permanent (usrloc: a contact whose expires is 0 never expires);
 *   expires as a number → seconds since the epoch (usrloc's expires_type = 1 writes a bigint)
 * and skipped, as Kamailio skips them (LM_CRIT "bad contact", "empty expire"): no username, no
 * contact, no expires. A value of the wrong type is coerced when the coercion is unambiguous (a
 * numeric string, a number where a string belongs, an Int32/Long/Double/Decimal128 from the
 * driver) and the record is skipped otherwise. Strings longer than MAX_FIELD_CHARS are refused:
 * they would be copied into every 200 OK and fork.
 */
import type { Binding } from './types';

/** Longest string field read (Kamailio's widest column is 512; Path grows with hops): 8 KiB. */
export const MAX_FIELD_CHARS = 8192;

export type ReadResult = { ok: true; binding: Binding } | { ok: false; reason: string };

class Skip extends Error {}

/** What a driver hands back for a number: a JS number, bigint, or a BSON wrapper (Int32, Long, Double, Decimal128). */
function asNumber(v: unknown, field: string): number | undefined {
  if (v === null || v === undefined) return undefined;
  if (typeof v === 'number') {
    if (Number.isFinite(v)) return v;
    throw new Skip(`${field} is not a finite number`);
  }
  if (typeof v === 'bigint') return Number(v);
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (typeof v === 'string') {
    const t = v.trim();
    if (t.length > 0 && t.length <= 32 && Number.isFinite(Number(t))) return Number(t);
    throw new Skip(`${field} is not a number`);
  }
  if (typeof v === 'object' && !Array.isArray(v)) {
    // BSON number wrappers (and anything else with a numeric valueOf/toString, but nothing bigger)
    const o = v as { _bsontype?: unknown; valueOf(): unknown; toString(): string };
    if (typeof o._bsontype === 'string') {
      const n = o._bsontype === 'Decimal128' ? Number(o.toString()) : Number(o.valueOf());
      if (Number.isFinite(n)) return n;
    }
  }
  throw new Skip(`${field} is not a number`);
}

function asString(v: unknown, field: string): string | undefined {
  if (v === null || v === undefined) return undefined;
  if (typeof v === 'string') {
    if (v.length > MAX_FIELD_CHARS) throw new Skip(`${field} is longer than ${MAX_FIELD_CHARS} characters`);
    return v;
  }
  if (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean') return String(v);
  throw new Skip(`${field} is not a string`);
}

function asDate(v: unknown, field: string): Date | undefined {
  if (v === null || v === undefined) return undefined;
  let ms: number;
  if (v instanceof Date) {
    ms = v.getTime();
    if (Number.isFinite(ms)) return v; // the driver's own Date: no copy
  } else if (typeof v === 'object' && !Array.isArray(v) && typeof (v as Date).getTime === 'function')
    ms = Number((v as Date).getTime()); // a Date of another realm
  else if (typeof v === 'string') ms = v.length <= 64 ? Date.parse(v) : NaN;
  else {
    const n = asNumber(v, field);
    ms = n === undefined ? NaN : n * 1000; // usrloc's expires_type = 1: seconds since the epoch
  }
  if (!Number.isFinite(ms) || Math.abs(ms) > 8.64e15) throw new Skip(`${field} is not a date`);
  return new Date(ms);
}

const int = (v: unknown, field: string, dflt: number): number => {
  const n = asNumber(v, field);
  return n === undefined ? dflt : Math.trunc(n);
};

/** Reads one usrloc record (MongoDB document or SQL row); never throws. */
export function readBinding(raw: unknown): ReadResult {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return { ok: false, reason: 'not a document' };
  const r = raw as Record<string, unknown>;
  try {
    const username = asString(r.username, 'username');
    if (!username) return { ok: false, reason: 'no username' };
    const contact = asString(r.contact, 'contact');
    if (!contact) return { ok: false, reason: 'no contact' };
    const expires = asDate(r.expires, 'expires');
    if (!expires) return { ok: false, reason: 'no expires' };
    const q = asNumber(r.q, 'q');
    const methods = asNumber(r.methods, 'methods');
    const binding: Binding = {
      ruid: asString(r.ruid, 'ruid') ?? '',
      username,
      domain: asString(r.domain, 'domain') || null,
      contact,
      received: asString(r.received, 'received') || null,
      path: asString(r.path, 'path') || null,
      expires,
      // REAL is float4 in SQL: 0.8 comes back as 0.800000011920929; q has 3 decimals at most (RFC 3261).
      q: q === undefined ? -1 : q < 0 ? -1 : Math.min(1, Math.round(q * 1000) / 1000),
      callid: asString(r.callid, 'callid') ?? '',
      cseq: int(r.cseq, 'cseq', 0),
      last_modified: asDate(r.last_modified, 'last_modified') ?? new Date(0),
      flags: int(r.flags, 'flags', 0),
      cflags: int(r.cflags, 'cflags', 0),
      user_agent: asString(r.user_agent, 'user_agent') ?? '',
      socket: asString(r.socket, 'socket') || null,
      methods: methods === undefined ? null : Math.trunc(methods),
      instance: asString(r.instance, 'instance') || null,
      reg_id: int(r.reg_id, 'reg_id', 0),
      server_id: int(r.server_id, 'server_id', 0),
      connection_id: int(r.connection_id, 'connection_id', -1),
      keepalive: int(r.keepalive, 'keepalive', 0),
      partition: int(r.partition, 'partition', 0),
    };
    return { ok: true, binding };
  } catch (e) {
    if (e instanceof Skip) return { ok: false, reason: e.message };
    return { ok: false, reason: 'unreadable' };
  }
}

/** How a skipped record is named in a note: its _id, else ruid, else username, quoted and cut short. */
export function recordName(raw: unknown): string {
  if (raw === null || typeof raw !== 'object') return '(not a document)';
  const r = raw as Record<string, unknown>;
  for (const k of ['_id', 'id', 'ruid', 'username']) {
    const v = r[k];
    if (v === null || v === undefined) continue;
    let s: string;
    try {
      s =
        typeof v === 'object' && typeof (v as { toHexString?: unknown }).toHexString === 'function'
          ? (v as { toHexString(): string }).toHexString()
          : String(v);
    } catch {
      continue;
    }
    // JSON quoting: a hostile value cannot forge a log line (newlines, control characters)
    return `${k} ${JSON.stringify(s.length > 64 ? `${s.slice(0, 64)}…` : s)}`;
  }
  return '(no _id, ruid or username)';
}

/** Notes at most `perMinute` a minute; the rest are counted and said in one line when the minute ends. */
export function limitNotes(onNote: ((message: string) => void) | undefined, perMinute = 20, clock: () => number = Date.now): (message: string) => void {
  if (!onNote) return () => {};
  let windowStart = -Infinity;
  let said = 0;
  let held = 0;
  return (message) => {
    const now = clock();
    if (now - windowStart >= 60_000) {
      if (held > 0) onNote(`${held} more location notes in the last minute not logged`);
      windowStart = now;
      said = 0;
      held = 0;
    }
    if (said < perMinute) {
      said++;
      onNote(message);
    } else held++;
  };
}

/**
 * Reads records into bindings, skipping the unreadable ones with a note each ("skipped location
 * document _id "…": no contact"). `kind` names the store in the note.
 */
export function readBindings(records: readonly unknown[], kind: 'document' | 'row', note: (message: string) => void): Binding[] {
  const out: Binding[] = [];
  for (const raw of records) {
    const r = readBinding(raw);
    if (r.ok) out.push(r.binding);
    else note(`skipped location ${kind} ${recordName(raw)}: ${r.reason}`);
  }
  return out;
}
