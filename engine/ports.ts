/**
 * The ports: everything effectful a node reaches, declared here by the engine that needs it and
 * implemented by the adapters under services/ (directory, location, auth, AoR ownership) and the
 * server (clock, log). This file imports nothing, so the engine depends on no adapter
 * (test/unit/layers.test.ts holds engine/ to that).
 */

// ---------------------------------------------------------------- failures

/**
 * A backing service (directory database, location store) cannot answer now: engine/run.ts ends
 * the run with 503 and Retry-After `retryAfter` seconds, so the UA retries later or fails over
 * (RFC 3261 §21.5.4) instead of taking a 500 for a fault that is not its own. Adapters throw it
 * or a subclass (services/location/types.ts, services/directory/types.ts).
 */
export class ServiceUnavailableError extends Error {
  constructor(
    message: string,
    readonly retryAfter = 5,
  ) {
    super(message);
  }
}

// ---------------------------------------------------------------- values

/** A variable or column value (engine/types.ts builds the call descriptor's values on it). */
export type Scalar = string | number | boolean | null;
/** A row of a database query stored with `storeIntoRecordsList`. */
export type RecordRow = Record<string, Scalar>;

// ---------------------------------------------------------------- clock, log

export interface Clock {
  now(): number; /* ms since epoch */
}

export interface LogPort {
  log(level: 'debug' | 'info' | 'warn' | 'error', message: string, fields?: Record<string, unknown>): void;
}

// ---------------------------------------------------------------- directory

/**
 * Directory port: the subscriber/number database as the query node sees it. The node hands over
 * a structured query whose values are already resolved from the call descriptor; the adapter
 * (services/directory/query.ts) checks every table and column against the introspected schema
 * and builds the SQL with knex.
 */
export interface DirectoryPort {
  /**
   * Runs the query. Throws services/directory/types.ts's DirectoryError: 'invalid' on unknown
   * table/column (a NodeRunError), 'unavailable' when the store is down (a ServiceUnavailableError).
   */
  query(q: DirectoryQuery): Promise<RecordRow[]>;
  /** The introspected schema (tables and columns), for validation and the designer's pickers. */
  schema(): Promise<DirectorySchema>;
}

/** Condition operators a directory query understands (the engine's operators plus longest prefix). */
export type DirectoryOperator =
  | 'is'
  | 'isNot'
  | 'exists'
  | 'doesNotExist'
  | 'contains'
  | 'doesNotContain'
  | 'startsWith'
  | 'endsWith'
  | 'greaterThan'
  | 'greaterOrEqual'
  | 'lessThan'
  | 'lessOrEqual'
  | 'in'
  | 'matches'
  | 'isLongestPrefixMatchOf';

/** `table.column` (table by its short name, as the export writes it) */
export type ColumnRef = string;

export interface DirectoryCondition {
  field: ColumnRef;
  operator: DirectoryOperator;
  /** Resolved value; an array for `in`. */
  value: Scalar | Scalar[];
}

export interface DirectoryJoin {
  left: ColumnRef;
  operator: 'is' | 'isNot' | 'lessThan' | 'lessOrEqual' | 'greaterThan' | 'greaterOrEqual';
  right: ColumnRef;
}

export interface DirectoryQuery {
  /** Fully qualified tables, `schema.table` as the export writes them (`registration.customers`). */
  tables: string[];
  /** Columns to return; each row is keyed by the ColumnRef string (`customers.password`). */
  fields: ColumnRef[];
  joins: DirectoryJoin[];
  joinType: 'JOIN' | 'LEFT JOIN' | 'RIGHT JOIN' | 'FULL JOIN' | 'INNER JOIN';
  conditions: DirectoryCondition[];
  logic: 'and' | 'or';
  orderBy: Array<{ field: ColumnRef; direction: 'asc' | 'desc' }>;
  offset: number;
  /** Max rows (1 for fetch first; undefined for all). */
  limit?: number;
}

/**
 * A query of a fixed part (`base`, built once per node or rule) with these fields and conditions,
 * as one object literal: every query then has the same V8 shape, so the caches and the planner read
 * its properties at monomorphic sites. `{ ...base, conditions }` made a copy by spread per query,
 * whose shape the readers saw in several forms.
 */
export function queryOf(base: Omit<DirectoryQuery, 'conditions'>, fields: ColumnRef[], conditions: DirectoryCondition[]): DirectoryQuery {
  return {
    tables: base.tables,
    fields,
    joins: base.joins,
    joinType: base.joinType,
    conditions,
    logic: base.logic,
    orderBy: base.orderBy,
    offset: base.offset,
    limit: base.limit,
  };
}

/** Table → column → type name, as introspected from the database. */
export type DirectorySchema = Record<string, Record<string, string>>;

// ---------------------------------------------------------------- location

/**
 * Location service port (Kamailio usrloc semantics): the registrar (services/location/registrar.ts,
 * RFC 3261 §10.3) over a store. Store failures reject with a ServiceUnavailableError.
 */
export interface LocationPort {
  /** Applies a REGISTER (add/refresh/remove per contact) and returns all current bindings. */
  register(req: RegisterRequest): Promise<RegisterResult>;
  /** Live bindings of an AoR, highest q first. */
  lookup(username: string, domain: string | null, now: Date): Promise<Binding[]>;
}

/** One binding, field for field Kamailio's usrloc `location` row (schema version 9). */
export interface Binding {
  ruid: string;
  username: string; // AoR user part
  domain: string | null; // AoR domain when multi-domain, else null
  contact: string;
  received: string | null;
  path: string | null;
  expires: Date; // absolute expiry
  q: number; // -1 = unspecified (Kamailio), else 0..1
  callid: string;
  cseq: number;
  last_modified: Date;
  flags: number;
  cflags: number;
  user_agent: string;
  socket: string | null; // e.g. udp:10.0.12.26:5060
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
  /**
   * Source of the request as `sip:ip:port` (`ip:port` accepted), stored as `received` only when
   * the registrar detects a NAT (services/location/nat.ts).
   */
  received: string | null;
  /** The local socket as Kamailio writes it: `proto:ip:port` (`proto:[v6]:port`). */
  socket: string | null;
  /** The top Via header value as received (its sent-by is compared with the source: NAT detection). */
  via?: string | null;
  /**
   * Id of the stream connection the REGISTER arrived on (StreamConnection.id), absent or null for
   * datagrams: a binding of the sender's own contact is tied to it (`connection_id`).
   */
  connectionId?: number | null;
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

// ---------------------------------------------------------------- auth

/**
 * Digest authentication port (RFC 7616 / RFC 8760 for SIP), implemented by services/auth. Nonces
 * are stateless, MACed under the shared secret, so any instance verifies another's; replay protection is by nonce-count.
 */
export interface AuthPort {
  parseCredentials(headerValue: string): DigestCredentials | null;
  challenge(realm: string, stale: boolean, now: number): Challenge;
  verify(req: VerifyRequest): VerifyResult;
}

export type DigestAlgorithm = 'MD5' | 'MD5-sess' | 'SHA-256' | 'SHA-256-sess';

/** Parsed Authorization / Proxy-Authorization credentials. */
export interface DigestCredentials {
  scheme: string; // 'Digest'
  username: string;
  realm: string;
  nonce: string;
  uri: string;
  response: string;
  algorithm: DigestAlgorithm | string; // as sent; unknown ones fail verification
  cnonce?: string;
  nc?: string;
  qop?: string;
  opaque?: string;
  /** Every parameter as sent (lower-case names). */
  params: Record<string, string>;
}

export interface VerifyRequest {
  credentials: DigestCredentials;
  method: string;
  /** Clear-text password, or HA1 (hex) when `isHa1`. */
  password: string;
  isHa1: boolean;
  realm: string;
  /**
   * The Request-URI of the message as received (never a variable a logic may have rewritten): the
   * credentials' `uri` must designate it (services/auth/uri.ts), else the verification fails
   * ('bad'). null when the request has none known: nothing can match, the result is 'bad'.
   */
  requestUri: string | null;
  /** Body for qop=auth-int (not offered by sipflow, verified if a client uses it). */
  body?: string;
  now: number;
}

/**
 * ok; stale = right response on a nonce that is no longer accepted — expired, issued before this
 * process started (its boot epoch, services/auth/nonce.ts), or whose count was evicted — so the
 * UA retries with a new nonce without asking its user (RFC 7616 stale=true); bad = wrong,
 * replayed, forged, or credentials for another realm or another Request-URI.
 */
export type VerifyResult = 'ok' | 'stale' | 'bad';

export interface Challenge {
  realm: string;
  nonce: string;
  qop: string;
  stale: boolean;
  /** Offered algorithms, most preferred first. */
  algorithms: DigestAlgorithm[];
  /** One header value per algorithm: `Digest realm="…", nonce="…", qop="auth", algorithm=MD5[, stale=true]`. */
  headerValues: string[];
}

// ---------------------------------------------------------------- AoR ownership

/** The AoR an authenticated username may register for (user part; domain when the mapping has one). */
export interface OwnedAor {
  user: string;
  domain: string | null;
}

/**
 * Who owns which AoR (`registrar.ownership`): the tie between the credentials a REGISTER was
 * authenticated with and the AoR whose bindings it changes. Implemented over the directory
 * (services/directory/ownership.ts: `customers.username` → `customers.aor` by default).
 */
export interface AorOwnershipPort {
  /** The AoR `username` owns; null when it owns none (unknown username). Throws like the directory when it is down. */
  ownedAor(username: string): Promise<OwnedAor | null>;
  /**
   * The owned AoR read with the credentials, as Kamailio's auth_db reads extra columns of the
   * subscriber row beside the password (`load_credentials`): for a query of `directory` that reads
   * this rule's row for one username (its table alone, one `is` condition on its username column,
   * no offset), the fields to read instead, the AoR column added; null for any other query. The
   * rows of such a query hold the answer ownedAor would give for that username (`ownedFrom`).
   */
  alongside?(
    directory: DirectoryPort,
    q: Omit<DirectoryQuery, 'conditions'>,
    conditions: ReadonlyArray<Pick<DirectoryCondition, 'field' | 'operator'>>,
  ): ColumnRef[] | null;
  /** What ownedAor answers, from the rows of a query `alongside` widened. */
  ownedFrom?(username: string, rows: readonly RecordRow[]): OwnedAor | null;
  /** The rule in words, for traces and docs: `registration.customers.username → aor`. */
  readonly rule: string;
  /** Compare the AoR domain too (multi-domain registrars); else the user part alone. */
  readonly matchDomain: boolean;
}

// ---------------------------------------------------------------- external queries (query.httpRequest)

/** An HTTP request as query.httpRequest hands it over: placeholders already resolved. */
export interface HttpQuery {
  method: string;
  url: string;
  headers: Record<string, string>;
  body: string | null;
  timeoutMs: number;
}

/** The answer; a body over the size cap or a failed connection rejects (HttpQueryError). */
export interface HttpAnswer {
  status: number;
  /** Lower-case names. */
  headers: Record<string, string>;
  body: string;
  elapsedMs: number;
}

/**
 * HTTP client port (services/http): pooled connections per origin, HTTPS, a response size cap.
 * Rejects with HttpQueryError: 'timeout' when timeoutMs passed, 'failure' otherwise.
 */
export interface HttpPort {
  request(q: HttpQuery): Promise<HttpAnswer>;
}

export class HttpQueryError extends Error {
  constructor(
    message: string,
    readonly kind: 'timeout' | 'failure',
  ) {
    super(message);
  }
}

// ---------------------------------------------------------------- external queries (query.enum)

/** One NAPTR record as the resolver answers it (RFC 3403). */
export interface NaptrRecord {
  order: number;
  preference: number;
  flags: string;
  service: string;
  regexp: string;
  replacement: string;
}

/**
 * DNS port for ENUM (services/enum): NAPTR records of a domain. Resolves [] for a name with no
 * record (NXDOMAIN, NODATA); rejects with DnsQueryError otherwise.
 */
export interface DnsPort {
  naptr(domain: string, timeoutMs: number): Promise<NaptrRecord[]>;
}

export class DnsQueryError extends Error {
  constructor(
    message: string,
    readonly kind: 'timeout' | 'failure',
  ) {
    super(message);
  }
}

// ---------------------------------------------------------------- external queries (query.ldap)

/** An LDAP search as query.ldap hands it over: the filter's placeholders already resolved and escaped (RFC 4515). */
export interface LdapSearch {
  base: string;
  scope: 'base' | 'one' | 'sub';
  filter: string;
  attributes: string[];
  sizeLimit: number;
  timeoutMs: number;
}

/**
 * LDAP port (services/ldap): searches over one bound connection pool. Entries map attribute
 * name → values. Rejects with LdapQueryError (bind refused, server down, timeout).
 */
export interface LdapPort {
  search(q: LdapSearch): Promise<Array<Record<string, string[]>>>;
}

export class LdapQueryError extends Error {}

// ---------------------------------------------------------------- cache (action.cacheSet, query.cacheGet)

/**
 * A key-value cache shared by every SIP thread of an instance (services/cache): values live in
 * the dispatching thread; SIP worker threads reach it over their store calls. Bounded in entries
 * and value size; a value past its TTL is gone.
 */
export interface CachePort {
  get(key: string): Promise<Scalar | undefined>;
  /** False when the value was not stored (its key or value over the size caps: the key's previous value is removed too). */
  set(key: string, value: Scalar, ttlSec: number): Promise<boolean>;
}

// ---------------------------------------------------------------- syslog (output.syslog)

/** One message of output.syslog; the adapter writes the RFC 5424 header around it. */
export interface SyslogMessage {
  /** RFC 5424 facility code (0 kern … 23 local7). */
  facility: number;
  /** RFC 5424 severity (0 emergency … 7 debug). */
  severity: number;
  appName: string;
  msgId: string | null;
  text: string;
  /** When it happened (ms since epoch, the run's clock). */
  at: number;
}

/**
 * Syslog port (services/syslog/udp.ts): one datagram per message to the configured collector
 * (RFC 5426), fire and forget: a lost datagram or an unreachable collector never holds a call.
 */
export interface SyslogPort {
  send(m: SyslogMessage): void;
}

// ---------------------------------------------------------------- call admission control (analysis.callLimit)

/** The limits of one key as a node states them (at least one set). */
export interface CallLimitRule {
  /** Calls holding a slot of the key at once (0: none admitted). */
  maxConcurrent?: number;
  /** New calls per second of the key (services/call-limit: the precise window). */
  maxPerSecond?: number;
}

/** allowed: the call holds a slot of the key; concurrent / rate: the limit reached, nothing taken. */
export type CallLimitVerdict = 'allowed' | 'concurrent' | 'rate';

/**
 * Call admission control (services/call-limit): slots per key held by calls, released when the
 * call ends (the releaser follows the call events) or when they expire. `holder` identifies the
 * call (engine/call-slots.ts slotHolder: its Call-ID and From tag): a holder takes at most one slot
 * per key, so acquiring again (the restart after authentication, the INVITE that answers a
 * challenge) is 'allowed' without counting twice. Rejects with a ServiceUnavailableError when the
 * state cannot be reached (the shared database down, the key table full).
 */
export interface CallLimitPort {
  acquire(holder: string, key: string, rule: CallLimitRule, nowMs: number): Promise<CallLimitVerdict>;
  /** Frees the holder's slots of these keys; a slot it does not hold is left alone (idempotent). */
  release(holder: string, keys: readonly string[]): Promise<void>;
}
