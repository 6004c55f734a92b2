/**
 * A call detail record as accounting makes it (services/accounting/cdr-builder.ts) and writes it
 * (writer.ts: the `cdrs` table, JSON-lines files). Plain data: it crosses from a SIP worker
 * thread to the dispatching thread by structured clone.
 */
import type { Scalar } from '../../engine/types';

/** SRE's record kinds: start (connected), interim, stop (ended after connecting), reject (4xx–6xx), redirect (3xx), recurse (a failed attempt before another), timeout (never refreshed). */
export const CDR_KINDS = ['start', 'interim', 'stop', 'reject', 'redirect', 'recurse', 'timeout'] as const;
export type CdrKind = (typeof CDR_KINDS)[number];

export interface CdrRecord {
  kind: CdrKind;
  callId: string;
  /** When this record was made (ms since the epoch). */
  at: number;
  /** When the INVITE arrived. */
  setupAt: number;
  /** When the 2xx went back (null: never connected). */
  connectAt: number | null;
  /** When the call ended (BYE, final failure, timeout); null for start and interim records. */
  endAt: number | null;
  /** Seconds from connect to end (interim: to now); null when never connected. */
  duration: number | null;
  calling: string | null;
  called: string | null;
  /** Where the INVITE came from: address:port. */
  source: string | null;
  /** The destination URI: the branch that answered, else the last one tried (recurse: the attempt's). */
  destination: string | null;
  /** Final status (recurse: the attempt's status; start / interim: 200); null when none yet. */
  status: number | null;
  reason: string | null;
  /** The logic that ran. */
  logic: string;
  /** The configured CD variables (accounting.variables) as the logic left them. */
  variables: Record<string, Scalar>;
  /** Custom fields of action.accounting. */
  fields: Record<string, Scalar>;
}
