/**
 * What the SIP front end lets observers see of its traffic, for the consumers that keep or copy
 * it: the call history (services/history: GET /api/v1/calls, the designer's Calls view) and the
 * HEP v3 capture to Homer (services/hep), as Kamailio's siptrace sees a message before and after
 * the script.
 *
 * Two small contracts, both called on the SIP thread that holds the Call-ID (sip/dispatch.ts):
 *
 *  - `MessageTap`: every SIP message the front end receives (before parsing: a message it then
 *    drops is seen too) and every one it sends (responses, relayed requests and responses,
 *    CANCEL, ACK, retransmissions, stateless replies). The sends are caught in one place,
 *    `tapSender` wrapping the SipSender the front end, its transactions and its proxy share.
 *  - `RunTap`: per logic run, `wants` first (synchronously, right after the request's own
 *    `received` and the 100 Trying): true makes the front end trace the run (engine/run.ts
 *    `trace`) and copy the call descriptor's variables before it, then report the run to `ran`.
 *    False costs nothing more than the call.
 *
 * Consumers must not throw (they are isolated anyway: an exception is logged, never the SIP path's)
 * and must not block; they may keep the Buffer they are given (the front end never reuses one).
 * `at`: ms since the epoch.
 */
import type { CdValue, LogicRun } from '../engine/types';
import type { LocalEndpoint, Peer, SipSender, SendCallback } from './transport';

export type { LogicRun };

export interface MessageTap {
  /** A message from `peer`, arrived on `local`. */
  received(data: Buffer, peer: Peer, local: LocalEndpoint, at: number): void;
  /** A message sent to `peer`; `from`: the socket's address as Via names it (SipSender.origin), null when unknown. */
  sent(data: Buffer, peer: Peer, from: { host: string; port: number } | null, at: number): void;
}

export interface RunTap {
  /** Whether to trace and report this run: the recorder's choice (mode, sampling, debug filter on `vars`). */
  wants(callId: string, method: string, vars: Readonly<Record<string, CdValue>>): boolean;
  ran(callId: string, run: LogicRun): void;
}

/** Several message taps as one (each isolated: one that throws does not stop the others). */
export function fanOutTaps(taps: readonly MessageTap[], onError?: (e: unknown) => void): MessageTap | undefined {
  if (taps.length === 0) return undefined;
  if (taps.length === 1 && onError === undefined) return taps[0];
  return {
    received(data, peer, local, at) {
      for (const t of taps) {
        try {
          t.received(data, peer, local, at);
        } catch (e) {
          onError?.(e);
        }
      }
    },
    sent(data, peer, from, at) {
      for (const t of taps) {
        try {
          t.sent(data, peer, from, at);
        } catch (e) {
          onError?.(e);
        }
      }
    },
  };
}

/** The sender with every send reported to `tap` (after the send is handed to the transport). */
export function tapSender(sender: SipSender, tap: MessageTap): SipSender {
  const from = (peer: Peer) => sender.origin?.(peer.proto, peer.address) ?? { host: sender.advertised, port: sender.ports.get(peer.proto) ?? 0 };
  return {
    get advertised() {
      return sender.advertised;
    },
    get ports() {
      return sender.ports;
    },
    send(buf: Buffer, peer: Peer, cb?: SendCallback) {
      sender.send(buf, peer, cb);
      tap.sent(buf, peer, from(peer), Date.now());
    },
    ...(sender.origin ? { origin: sender.origin.bind(sender) } : {}),
    ...(sender.isOurs ? { isOurs: sender.isOurs.bind(sender) } : {}),
    ...(sender.connection ? { connection: sender.connection.bind(sender) } : {}),
  };
}

/**
 * The Call-ID of a raw SIP message (header `Call-ID` or compact `i`), without parsing the rest:
 * null when there is none within the first 64 KiB. Used by taps that see bytes before the parser.
 */
export function callIdOf(data: Buffer): string | null {
  const end = Math.min(data.length, 65536);
  let line = 0;
  for (;;) {
    const nl = data.indexOf(10, line);
    if (nl < 0 || nl >= end) return null;
    const start = nl + 1;
    if (start >= end || data[start] === 13 || data[start] === 10) return null; // end of headers
    const c = data[start] | 0x20;
    if (c === 0x63 /* c */ || c === 0x69 /* i */) {
      const colon = data.indexOf(58, start);
      const next = data.indexOf(10, start);
      if (colon > start && (next < 0 || colon < next)) {
        const name = data.toString('latin1', start, colon).trim().toLowerCase();
        if (name === 'call-id' || name === 'i') {
          const v = data.toString('utf8', colon + 1, next < 0 ? end : next).trim();
          return v === '' ? null : v;
        }
      }
    }
    line = start;
  }
}
