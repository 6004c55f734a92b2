/**
 * The call history's record: what one call (all requests of one Call-ID within a recording
 * window) did, as the recorder (services/history/recorder.ts) builds it on a SIP thread, the
 * writer stores it in the directory database, and GET /api/v1/calls and /api/v1/calls/{callId}
 * return it (server/http/routes/calls.ts) to the designer's Calls view (designer/src/Calls.tsx).
 *
 * A call may be recorded in segments (a BYE or re-REGISTER after the recorder flushed the call):
 * the recorder hands each segment over as a CallDetail whose messages, runs, counts, startedAt
 * and endedAt are the segment's and whose other fields are the call's summary so far; the store
 * merges the segments of a Call-ID, so the API answers whole calls.
 *
 * Plain JSON (crosses from a SIP worker thread to the main thread by structured clone). Every
 * secret is redacted before a record leaves the recorder: digest `response` / `cnonce` values of
 * Authorization and Proxy-Authorization headers in the messages, and the variables the logic
 * holds secrets in (engine/secrets.ts) in the runs' input and path — "[redacted]".
 */
import type { CdValue, TraceStep } from '../../engine/types';

/** One SIP message as it went in or out. */
export interface HistoryMessage {
  /** ms since the epoch. */
  at: number;
  direction: 'in' | 'out';
  /** Transport name: udp, tcp, tls, ws, wss. */
  transport: string;
  /** "address:port" ("[v6]:port") of the sender and of the receiver. */
  src: string;
  dst: string;
  /** The request's method, or the CSeq method of a response. */
  method: string;
  /** A response's status; null for a request. */
  status: number | null;
  /** The first line: "INVITE sip:bob@example.com SIP/2.0" or "SIP/2.0 200 OK". */
  firstLine: string;
  /** The whole message as text, redacted, cut at history.maxMessageBytes. */
  text: string;
  /** Whether `text` was cut. */
  truncated?: boolean;
}

/** One logic run: the engine's trace, with the variables before the run (the designer rebuilds the CD after each step from them). */
export interface HistoryRun {
  at: number;
  durationMs: number;
  /** The request's method. */
  method: string;
  logicId: string;
  logic: string;
  /** The flow (server/flows) the logic came from; null when unknown. */
  flow: string | null;
  input: Record<string, CdValue>;
  path: TraceStep[];
  /** Outcome kind ('register', 'relay', 'reply', 'challenge', 'error', …) and its status (null: a relay or none). */
  outcome: string;
  status: number | null;
  /** Where an error outcome happened. */
  where: string | null;
}

/**
 * How a call ended: `success` (final 2xx), `redirect` (3xx), `challenged` (its last request got a
 * 401/407 and no credentials had been refused: a client that stopped there, a scanner), `failed`
 * (a final 4xx–6xx other than a challenge, a challenge answering credentials — a wrong password —,
 * an error outcome, or no final response at all).
 */
export type CallOutcome = 'success' | 'redirect' | 'challenged' | 'failed';

/** What GET /api/v1/calls lists (`{ calls: CallSummary[] }`, newest first). */
export interface CallSummary {
  callId: string;
  /** ISO 8601 instants of the first and the last message. */
  startedAt: string;
  endedAt: string;
  /** The first request's method. */
  method: string;
  /** The calling and called numbers (CD `calling` / `called`) of the first run; null when none ran. */
  calling: string | null;
  called: string | null;
  /** The AoR (user@domain): a REGISTER's To, else the From of the first request. */
  aor: string | null;
  /** "address:port" of the first request's sender. */
  source: string;
  outcome: CallOutcome;
  /** The final status of the last transaction of the first request's method (null: none sent). */
  status: number | null;
  /** The logic of the first run; null when none ran. */
  logic: string | null;
  messageCount: number;
  runCount: number;
}

/** What GET /api/v1/calls/{callId} returns: the call and every message and run, in order. */
export interface CallDetail extends CallSummary {
  messages: HistoryMessage[];
  runs: HistoryRun[];
  /** Messages seen but not kept (history.maxMessagesPerCall). */
  droppedMessages: number;
}
