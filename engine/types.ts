/**
 * Core contracts of the engine: call descriptor, outcomes, and the run context bundling the
 * ports through which nodes reach the world (declared in engine/ports.ts). The engine itself
 * never does I/O; everything effectful is a port.
 */
import type {
  AorOwnershipPort,
  AuthPort,
  Binding,
  CachePort,
  CallLimitPort,
  Clock,
  DigestCredentials,
  DirectoryPort,
  DnsPort,
  HttpPort,
  LdapPort,
  LocationPort,
  LogPort,
  RecordRow,
  SyslogPort,
  Scalar,
} from './ports';
import type { NameAddr, Parsed, SipUri } from '../grammar/sip-values';

export type { RecordRow, Scalar } from './ports';

// ---------------------------------------------------------------- call descriptor

export type CdValue = Scalar | RecordRow[];

/** SIP headers of the message: lower-case full header name → values in message order. */
export type SipHeaders = Record<string, string[]>;

/**
 * Header values of a request already parsed, each with the text it was parsed from: filled by the
 * SIP parser's checks (sip/message.ts RequestValues) and the CD builder (engine/cd.ts
 * fillPredefined), read instead of parsing the same text again (grammar/sip-values.ts `reuse`).
 */
export interface ParsedValues {
  from?: Parsed<NameAddr>;
  to?: Parsed<NameAddr>;
  fromUri?: Parsed<SipUri>;
  toUri?: Parsed<SipUri>;
  /** The Request-URI as received. */
  requestUri?: Parsed<SipUri>;
}

/**
 * The call descriptor: the flat variable map SRE logics read and write, plus the message's
 * headers (read by header extraction, authentication and the registrar).
 */
export interface CallDescriptor {
  vars: Record<string, CdValue>;
  headers: SipHeaders;
  /**
   * The Request-URI of the message as received, set by the CD builders before any logic runs
   * (the `requestURI` variable may be rewritten by a logic; this is not a variable). The
   * authenticate node checks the digest `uri` against it.
   */
  requestUri?: string;
  /**
   * The stream connection the request arrived on (StreamConnection.id), set by the SIP front end;
   * not a variable, so no logic can tie a binding to another connection.
   */
  connectionId?: number;
  /** Message body, when the front end has one (not used by the shipped nodes). */
  body?: string;
  /**
   * The request's first credentials header (Authorization for REGISTER, Proxy-Authorization
   * otherwise) as the CD builder parsed it: the authenticate node uses it for that header value
   * instead of parsing it a second time.
   */
  credentials?: { header: string; parsed: DigestCredentials };
  /**
   * Header edits of action.sipHeaders, in the order the logic made them: applied by the front end
   * to the request it relays and to the response a reply or redirect outcome sends
   * (sip/header-edits.ts). Not a variable, so no logic can forge one through a variable write.
   */
  headerEdits?: HeaderEdit[];
  /**
   * Custom fields of the call's CDR (action.accounting), written by the logic and read by
   * accounting when the call ends (services/accounting). Not a variable.
   */
  cdrFields?: Record<string, Scalar>;
  /**
   * Call-admission slots this call holds (analysis.callLimit): the limit keys, released when the
   * call ends (services/call-limit). Not a variable, so no logic can release another call's slot.
   */
  callSlots?: string[];
  /** From, To, their URIs and the Request-URI as the CD builder parsed them, for the nodes that read them (nodes/extract-header.ts). */
  parsed?: ParsedValues;
}

/** One header edit: `name` is the lower-case full name (compact forms expanded), `value` a checked single line. */
export interface HeaderEdit {
  op: 'add' | 'replace' | 'remove';
  name: string;
  value?: string;
}

/** Variables the front end fills for every message (SRE names). */
export const PREDEFINED_VARIABLES = [
  'callId',
  'called',
  'calling',
  'requestMethod',
  'requestURI',
  'requestUsername',
  'fromURI',
  'fromUsername',
  'toURI',
  'toUsername',
  'sourceAddress',
  'sourcePort',
  'destinationAddress',
  'destinationPort',
  'originalCalled',
  'originalCalling',
  'authStatus',
  'authUsername',
  'transport',
  // set by the front end after each failed relay attempt (output.relay's failover, SRE's crankback)
  'lastCode',
  'lastRequestURI',
] as const;

// ---------------------------------------------------------------- outcomes

export interface ChallengeOutcome {
  kind: 'challenge';
  status: 401 | 407;
  /** WWW-Authenticate (REGISTER) or Proxy-Authenticate (other methods). */
  header: 'WWW-Authenticate' | 'Proxy-Authenticate';
  realm: string;
  nonce: string;
  qop: string;
  /** The preferred algorithm; every offered one is in `challenges`. */
  algorithm: string;
  stale: boolean;
  /** Complete header values, one per offered algorithm, most preferred first (RFC 8760 §2.4). */
  challenges: string[];
}

/** A binding as answered to the UA in the 200 OK of a REGISTER. */
export interface BindingView {
  contact: string;
  /** Remaining seconds, rounded up, never negative. */
  expires: number;
  /** As stored: -1 means "no q" and should be left out of the Contact. */
  q: number;
}

/** What the 200 OK lists for a binding. */
export function bindingView(b: Binding, now: Date): BindingView {
  const remaining = Math.ceil((b.expires.getTime() - now.getTime()) / 1000);
  return { contact: b.contact, expires: Math.max(0, remaining), q: b.q };
}

export interface RegisterOutcome {
  kind: 'register';
  status: number; // 200, or 400/423/500/503 decided by the registrar
  reason: string;
  aor: string;
  bindings: BindingView[];
  headers?: Record<string, string>; // e.g. Min-Expires on 423
}

export interface RelayTarget {
  uri: string;
  /** Where to send it, when not derived from the URI (received/path of a binding). */
  received?: string | null;
  path?: string[] | null;
  q?: number;
  /**
   * The binding is tied to a stream connection (usrloc's connection_id and server_id, and its
   * socket `proto:ip:port`): the proxy of that server sends over that connection only.
   */
  connection?: { id: number; serverId: number; socket: string | null };
}

export interface RelayOutcome {
  kind: 'relay';
  status: null;
  targets: RelayTarget[];
  /** Further attempts when this one fails (SRE's crankback, Kamailio's dispatcher failover). */
  failover?: RelayFailover;
}

/**
 * Serial failover of a relay: `targets` is the first attempt (forked in parallel when several);
 * when it ends without a 2xx with a status `codes` accepts (a timeout counts as 408), the next
 * attempt of `alternatives` is relayed, and so on. A CANCEL from the caller stops the sequence;
 * a 2xx ends it.
 */
export interface RelayFailover {
  alternatives: RelayTarget[][];
  codes: (status: number) => boolean;
  /** An attempt with no response at all within this many ms is given up as 408 (Kamailio's fr_timer); absent: Timer B. */
  attemptTimeoutMs?: number;
}

export interface ReplyOutcome {
  kind: 'reply';
  status: number;
  reason: string;
  headers?: Record<string, string>;
}

export interface RedirectOutcome {
  kind: 'redirect';
  status: number; // 3xx
  reason: string;
  contacts: string[];
}

export interface ExitOutcome {
  kind: 'exit';
  status: null;
}

export interface ErrorOutcome {
  kind: 'error';
  status: 500 | 503;
  reason: string;
  retryAfter?: number;
  /** Where it happened: `logic 24 "registration" › node 5 "retrieve password"`. */
  where?: string;
}

export type Outcome = ChallengeOutcome | RegisterOutcome | RelayOutcome | ReplyOutcome | RedirectOutcome | ExitOutcome | ErrorOutcome;

// ---------------------------------------------------------------- run

export interface RunLimits {
  /** Max state transitions per message (default 1000). */
  maxTransitions: number;
  /** Max restarts after successful authentication per message (default 2). */
  maxRestarts: number;
  /** Max nesting of sub-logic calls (default 16). */
  maxCallDepth: number;
}

/** Everything a node may touch while running. Same shape in tests, CLI, simulator and production. */
export interface RunContext {
  directory: DirectoryPort;
  location: LocationPort;
  auth: AuthPort;
  clock: Clock;
  log?: LogPort;
  /** Registrar/auth domain; when unset the realm is the From URI host (as the registrar technical note says). */
  realm?: string;
  /**
   * AoR ownership for location saves after authentication. Undefined: the AoR user must equal
   * the authenticated username (Kamailio's auth_check with its To-user check); null: no tie
   * (`registrar.ownership.mode: off`, a deliberate and logged choice).
   */
  ownership?: AorOwnershipPort | null;
  /**
   * The directory's change counter (services/directory/changes.ts): bumped after every write this
   * process (or, in a SIP worker thread, its dispatching thread) makes to the directory. Node-level
   * caches of directory results forget what they hold when it moves. Absent: never changes.
   */
  directoryChanges?: { readonly revision: number };

  /**
   * The clock of the date and time nodes when it is not `clock` (server/calendar.ts: `nodes.now`
   * starts it at a chosen instant); absent: they read `clock`.
   */
  calendar?: Clock;

  /** HTTP client of query.httpRequest; absent: the node takes its failure exit. */
  http?: HttpPort;

  /** DNS resolver of query.enum; absent: the node takes its timeout exit. */
  dns?: DnsPort;

  /** LDAP client of query.ldap (`nodes.ldap`); absent: the node takes its failure exit. */
  ldap?: LdapPort;

  /** The collector of output.syslog (`nodes.syslog.target`); absent: its messages are dropped. */
  syslog?: SyslogPort;

  /** Instance-wide cache of action.cacheSet / query.cacheGet. */
  cache?: CachePort;

  /**
   * Call admission control of analysis.callLimit (`callLimit` of the configuration). Absent (a
   * one-shot `sipflow run`, the designer's dry runs): no limit is configured, the node admits
   * the call with status `unlimited` and takes no slot (there are no call events to release it).
   */
  callLimits?: CallLimitPort;

  /** action.normalizeNumber: `nodes.numbers` of the configuration (the country of national numbers when the node names none). */
  numbers?: { defaultCountry?: string };
}

// ---------------------------------------------------------------- trace

export interface TraceStep {
  step: number;
  logic: string;
  nodeId: string;
  nodeName: string;
  type: string;
  /** Exit taken (`next`, `ifTrue`, `conditions/0/ifTrue`, …) or the outcome kind that ended the run. */
  exit: string;
  /** Variables written by this node. */
  set?: Record<string, CdValue>;
}

/**
 * One run of a logic for one request, as the SIP front end reports it to the call history
 * (sip/message-tap.ts RunTap, services/history/recorder.ts): here, where both layers may import it.
 */
export interface LogicRun {
  /** When the request arrived (ms). */
  at: number;
  /** How long the run took (ms, fractional). */
  durationMs: number;
  method: string;
  /** The logic's id and name (the route's top-level logic). */
  logicId: string;
  logic: string;
  /** The flow file the logic came from (the service's name), when known: the designer opens it. */
  flow?: string;
  /** The call descriptor's variables before the run (a shallow copy; not yet redacted). */
  input: Record<string, CdValue>;
  /** The engine's trace (nodes, exits, variables written); a run resumed after failover adds its steps. */
  trace: TraceStep[];
  /** Outcome kind ('register', 'relay', 'reply', 'challenge', 'error', …) and the status it answers with (null: a relay, or none). */
  outcome: string;
  status: number | null;
  /** Where an error outcome happened (engine/run.ts `where`). */
  where?: string;
  /** Whether a variable holds a secret (the compiled service's `secrets`, engine/secrets.ts): the history redacts it. */
  isSecret?: (name: string) => boolean;
}
