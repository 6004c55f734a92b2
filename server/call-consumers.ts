/**
 * The consumers of call events (sip/call-events.ts) one SIP thread's front ends report to: each
 * SIP thread (the main thread in single-thread mode, or a worker) builds one set and shares it
 * between its listeners, so a call is followed once whichever listener its messages arrive on.
 */
import type { RunContext } from '../engine/types';
import type { LogPort } from '../engine/ports';
import { fanOut, type CallEvents } from '../sip/call-events';
import type { Config } from './config';

export function callConsumers(config: Config, ctx: RunContext, log?: LogPort): CallEvents | undefined {
  const consumers: CallEvents[] = [];
  void config;
  void ctx;
  return fanOut(consumers, (e) => log?.log('error', `call event consumer failed: ${(e as Error)?.message ?? String(e)}`));
}
