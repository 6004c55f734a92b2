/**
 * What happens to a call (an INVITE-initiated dialog) as the SIP front end and its proxy see it,
 * for the consumers that follow calls: accounting (services/accounting: CDRs) and call admission
 * control (services/call-limit: slots released when the call ends).
 *
 * Why a contract of its own: the front end and the proxy know when a call is set up, which
 * destinations are tried (failover: SRE's crankback), which final response goes back to the
 * caller and when the BYE passes; they must not know what a CDR or a call slot is (Kamailio's tm
 * callbacks that acc and dialog hook into, as one small API).
 *
 * Order, per Call-ID, all on the SIP thread that holds the call (sip/dispatch.ts routes every
 * message of a Call-ID to one thread): `setup` once per initial INVITE whose logic ran (any
 * outcome: a challenge or a local reject too), then for a relay `attempt` per destination tried,
 * `attemptFailed` when that attempt fails and another follows (or the logic resumes at its
 * `ifAllFailed` exit, which may relay again or reply), then exactly one `final` (the first final
 * response sent upstream: 2xx connects, 3xx–6xx ends; 487 after a CANCEL); after a 2xx,
 * `inDialog` for every in-dialog request relayed (BYE ends the call, re-INVITE / UPDATE refresh
 * it). A retransmitted INVITE produces nothing. Times are ms since the epoch.
 *
 * Consumers must not throw and must not block: they are called on the SIP path.
 */
import type { CallDescriptor } from '../engine/types';

export interface CallSetup {
  callId: string;
  /** When the INVITE arrived (ms). */
  at: number;
  /** Name of the logic that ran (the route's top-level logic). */
  logic: string;
  /** The call descriptor after the logic: vars (calling, called, sourceAddress, …), cdrFields, callSlots. */
  cd: CallDescriptor;
  /** Outcome kind of the logic: 'relay', 'reply', 'redirect', 'challenge', 'exit', 'error'. */
  outcome: string;
}

export interface CallEvents {
  setup(call: CallSetup): void;
  /** A relay attempt starts: its target URIs (one for a destination, one per binding for a location lookup). */
  attempt(callId: string, uris: readonly string[], at: number): void;
  /** The attempt failed with `status` (408 on timeout) and the sequence goes on (crankback). */
  attemptFailed(callId: string, uri: string | null, status: number, reason: string, at: number): void;
  /** The first final response sent to the caller; `uri`: the branch that answered, null when generated here. */
  final(callId: string, status: number, reason: string, uri: string | null, at: number): void;
  /** An in-dialog request relayed after a 2xx (BYE, re-INVITE, UPDATE, INFO, …). */
  inDialog(callId: string, method: string, at: number): void;
}

/** Several consumers as one (each isolated: one that throws does not stop the others). */
export function fanOut(consumers: readonly CallEvents[], onError?: (e: unknown) => void): CallEvents | undefined {
  if (consumers.length === 0) return undefined;
  const each =
    <K extends keyof CallEvents>(k: K) =>
    (...args: Parameters<CallEvents[K]>) => {
      for (const c of consumers) {
        try {
          (c[k] as (...a: Parameters<CallEvents[K]>) => void)(...args);
        } catch (e) {
          onError?.(e);
        }
      }
    };
  return { setup: each('setup'), attempt: each('attempt'), attemptFailed: each('attemptFailed'), final: each('final'), inDialog: each('inDialog') };
}
