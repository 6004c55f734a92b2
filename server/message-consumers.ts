/**
 * The observers of one SIP thread's traffic (sip/message-tap.ts): the call history's recorder
 * (services/history) and the HEP v3 capture (services/hep). Each SIP thread (the main thread in
 * single-thread mode, or a worker) builds one set and shares it between its listeners, so the
 * messages of a Call-ID meet one recorder whichever listener they arrive on (a relayed request
 * leaving from another listener's socket, its responses coming back there).
 */
import type { LogPort } from '../engine/ports';
import { createHepSender, type HepSender } from '../services/hep/sender';
import { CallRecorder, type CallDetail } from '../services/history';
import { callIdOf, fanOutTaps, type MessageTap, type RunTap } from '../sip/message-tap';
import type { Config } from './config';
import type { Metrics } from './metrics';

export interface MessageConsumerSinks {
  /** This thread's metrics. */
  metrics?: Metrics;
  /**
   * Call history: where this thread's recorded calls go (the main thread's writer, or the worker's
   * outbox) and the debug filter now; none: no recorder. `sink` gets a `settled` to call once the
   * segment is written or dropped (a worker's come back as HistorySettled items instead, to
   * MessageConsumers.history.settled); `window`: segments in flight at most (recorder.ts).
   */
  history?: { sink: (detail: CallDetail, settled: () => void) => void; debugNumbers: readonly string[]; window: number };
}

export interface MessageConsumers {
  /** Every message received and sent (FrontEndOptions.tap); undefined: none wanted. */
  tap?: MessageTap;
  /** The logic runs (FrontEndOptions.runs); undefined: none wanted. */
  runs?: RunTap;
  /** The call history's recorder (its debug filter is switched at run time). */
  history?: CallRecorder;
  /** Writes what is pending (a draining thread) and stops the consumers' timers and sockets. */
  close(): Promise<void>;
}

export function messageConsumers(config: Config, log?: LogPort, sinks: MessageConsumerSinks = {}): MessageConsumers {
  const taps: MessageTap[] = [];
  const closers: Array<() => Promise<void> | void> = [];
  let runs: RunTap | undefined;

  // HEP v3 capture (services/hep): a copy of every message to the collector, fire and forget
  const hep = config.hep;
  if (hep.collector !== null) {
    const { metrics } = sinks;
    const sender = createHepSender({
      collector: hep.collector,
      captureId: hep.captureId,
      password: hep.password,
      maxInFlight: hep.maxInFlight,
      resolveEverySec: hep.resolveEverySec,
      log,
      onSent: metrics ? () => metrics.hepSent.inc() : undefined,
      onDropped: metrics ? (reason) => metrics.hepDropped.inc({ reason }) : undefined,
    });
    taps.push(hepTap(sender));
    closers.push(() => sender.close());
  }

  // ---- call history (services/history): always there when a sink is, so the debug filter can switch it on
  let history: CallRecorder | undefined;
  if (sinks.history !== undefined) {
    const { metrics } = sinks;
    const { sink, window } = sinks.history;
    const settled = () => recorder.settled();
    const recorder: CallRecorder = new CallRecorder(
      { ...config.history, debugNumbers: sinks.history.debugNumbers },
      {
        sink: (detail) => sink(detail, settled),
        window,
        callIdOf,
        onRecorded: () => metrics?.historyRecorded.inc(),
        onDropped: (reason) => metrics?.historyDropped.inc({ reason }),
      },
    );
    taps.push(recorder);
    runs = recorder;
    history = recorder;
    closers.push(() => recorder.close());
  }

  return {
    tap: fanOutTaps(taps, (e) => log?.log('error', `message tap failed: ${(e as Error)?.message ?? String(e)}`)),
    runs,
    history,
    async close() {
      for (const c of closers) await c();
    },
  };
}

/** The front end's messages as the HEP sender describes them: received from the peer, sent to it; the Call-ID as correlation id. */
export function hepTap(sender: HepSender): MessageTap {
  return {
    received(data, peer, local, at) {
      sender.capture({
        proto: peer.proto,
        src: { address: peer.address, port: peer.port },
        dst: { address: local.address, port: local.port },
        at,
        payload: data,
        correlationId: callIdOf(data),
        remote: 'src',
      });
    },
    sent(data, peer, from, at) {
      sender.capture({
        proto: peer.proto,
        src: { address: from?.host ?? '', port: from?.port ?? 0 },
        dst: { address: peer.address, port: peer.port },
        at,
        payload: data,
        correlationId: callIdOf(data),
        remote: 'dst',
      });
    },
  };
}
