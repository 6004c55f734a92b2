/**
 * The consumers of call events (sip/call-events.ts) one SIP thread's front ends report to: each
 * SIP thread (the main thread in single-thread mode, or a worker) builds one set and shares it
 * between its listeners, so a call is followed once whichever listener its messages arrive on.
 */
import type { RunContext } from '../engine/types';
import type { LogPort } from '../engine/ports';
import { fanOut, type CallEvents } from '../sip/call-events';
import type { Config } from './config';
import { createCallSlotReleaser } from '../services/call-limit/releaser';

export function callConsumers(config: Config, ctx: RunContext, log?: LogPort): CallEvents | undefined {
  const consumers: CallEvents[] = [];
  // call admission control: a call's slots are freed when it ends (analysis.callLimit)
  if (ctx.callLimits) consumers.push(createCallSlotReleaser(ctx.callLimits, { slotTimeoutSec: config.callLimit.slotTimeoutSec, log }));
  return fanOut(consumers, (e) => log?.log('error', `call event consumer failed: ${(e as Error)?.message ?? String(e)}`));
}
