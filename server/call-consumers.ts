/**
 * The consumers of call events (sip/call-events.ts) one SIP thread's front ends report to: each
 * SIP thread (the main thread in single-thread mode, or a worker) builds one set and shares it
 * between its listeners, so a call is followed once whichever listener its messages arrive on.
 */
import type { RunContext } from '../engine/types';
import type { LogPort } from '../engine/ports';
import { CdrBuilder, type CdrRecord } from '../services/accounting';
import { fanOut, type CallEvents } from '../sip/call-events';
import type { Config } from './config';
import type { Metrics } from './metrics';
import { createCallSlotReleaser } from '../services/call-limit/releaser';

export interface CallConsumerSinks {
  /** Where this thread's CDRs go: the writer (main thread) or the outbox to it (a worker). */
  cdrs?: (r: CdrRecord) => void;
  /** This thread's metrics (calls not followed by accounting). */
  metrics?: Metrics;
}

export function callConsumers(config: Config, ctx: RunContext, log?: LogPort, sinks: CallConsumerSinks = {}): CallEvents | undefined {
  const consumers: CallEvents[] = [];
  // accounting (CDRs): one builder per SIP thread, its sweep on an unref'd interval
  const a = config.accounting;
  const cdrs = sinks.cdrs;
  if (a.enabled && cdrs !== undefined) {
    const untracked = sinks.metrics?.cdrUntracked;
    consumers.push(new CdrBuilder({ ...a, log, onUntracked: untracked ? () => untracked.inc() : undefined }, cdrs).startSweeping());
  }
  // call admission control: a call's slots are freed when it ends (analysis.callLimit)
  if (ctx.callLimits) consumers.push(createCallSlotReleaser(ctx.callLimits, { slotTimeoutSec: config.callLimit.slotTimeoutSec, log }));
  return fanOut(consumers, (e) => log?.log('error', `call event consumer failed: ${(e as Error)?.message ?? String(e)}`));
}
