/**
 * Location service port (Kamailio usrloc semantics). The registrar logic (RFC 3261 §10.3) sits
 * above a store; stores (memory, SQL, MongoDB) only persist bindings in usrloc schema v9.
 */

/** One binding, field for field Kamailio's usrloc `location` row (schema version 9). */
export interface Binding {
  ruid: string;
  username: string;          // AoR user part
  domain: string | null;     // AoR domain when multi-domain, else null
  contact: string;
  received: string | null;
  path: string | null;
  expires: Date;             // absolute expiry
  q: number;                 // -1 = unspecified (Kamailio), else 0..1
  callid: string;
  cseq: number;
  last_modified: Date;
  flags: number;
  cflags: number;
  user_agent: string;
  socket: string | null;     // e.g. udp:10.0.12.26:5060
  methods: number | null;
  instance: string | null;
  reg_id: number;
  server_id: number;
  connection_id: number;
  keepalive: number;
  partition: number;
}

/** What the save node hands the registrar: the REGISTER as far as RFC 3261 §10.3 needs it. */
export interface RegisterRequest {
  username: string;
  domain: string | null;
  /** Raw Contact header values (each may hold several comma-separated contacts, or `*`). */
  contacts: string[];
  /** Expires header value, if present. */
  expiresHeader: string | null;
  callId: string;
  cseq: number;
  userAgent: string;
  /** Source of the request as `ip:port`, stored as `received` when it differs from the contact. */
  received: string | null;
  socket: string | null;
  path: string | null;
  now: Date;
  /** Allow header value(s), comma-joined; the registrar stores it as Kamailio's `methods` bitmask (null when absent). */
  allow?: string | null;
}

export interface RegisterResult {
  status: number; // 200, 400, 423, 403 (too many contacts), 500/503 (store)
  reason: string;
  headers?: Record<string, string>;
  /** Every current binding of the AoR after the update. */
  bindings: Binding[];
}

export class LocationUnavailableError extends Error {
  constructor(message: string, readonly retryAfter = 5) { super(message); }
}

export interface LocationPort {
  /** Applies a REGISTER (add/refresh/remove per contact) and returns all current bindings. */
  register(req: RegisterRequest): Promise<RegisterResult>;
  /** Live bindings of an AoR, highest q first. */
  lookup(username: string, domain: string | null, now: Date): Promise<Binding[]>;
}

/** A search over bindings across AoRs (administration: API, designer, operators). */
export interface BindingQuery {
  /** Exact AoR: `user` or `user@domain` (single-domain bindings, domain null, match any domain). */
  aor?: string;
  /** Case-insensitive substring of the username. */
  search?: string;
  limit: number;
  offset: number;
  /** Include expired bindings not yet purged. */
  expired?: boolean;
  now: Date;
}

/** `sip:user@domain`, `user@domain` or `user` → username and domain (null when absent). */
export function splitAor(aor: string): { username: string; domain: string | null } {
  const bare = aor.replace(/^sips?:/i, '');
  const i = bare.lastIndexOf('@');
  if (i < 0) return { username: bare, domain: null };
  return { username: bare.slice(0, i), domain: bare.slice(i + 1) };
}

/** Persistence beneath the registrar; adapters implement this. */
export interface LocationStore {
  /** Bindings of an AoR including expired ones (the registrar filters). */
  find(username: string, domain: string | null): Promise<Binding[]>;
  /** Inserts or replaces the binding with the same ruid. Resolves only once durable. */
  upsert(binding: Binding): Promise<void>;
  /** Deletes bindings by ruid; resolves to how many existed. */
  remove(ruids: string[]): Promise<number>;
  /** Bindings across AoRs matching the query, ordered by username then ruid, and the total. */
  list(q: BindingQuery): Promise<{ rows: Binding[]; total: number }>;
  /** Live bindings (expires > now). */
  count(now: Date): Promise<number>;
  /** Deletes bindings that expired before `now`; returns how many. */
  purgeExpired(now: Date): Promise<number>;
  /**
   * Every binding, expired ones included, in no particular order: what a write-through cache
   * loads when it opens (services/location/write-through.ts). Optional: without it the cache pages
   * through `list`.
   */
  all?(): Promise<Binding[]>;
  close(): Promise<void>;
}
