/**
 * The calendar clock: the clock the date and time nodes read (analysis.timeCondition,
 * action.setDateTime; RunContext.calendar). `nodes.now` / `sipflow serve --now` start it at a
 * chosen instant when the process starts, and it runs on in real time from there, so an operator
 * (or an end-to-end test) can try a service's Christmas or night routing today. Only the calendar
 * moves: registrations, nonces and caches keep the real clock (ctx.clock), so a nonce is never
 * judged issued before the process started.
 *
 * Every SIP thread derives the same offset from the process's boot epoch (WorkerInit.bootEpoch),
 * so all threads agree on the calendar's time.
 */
import { parseInstant } from '../engine/instant';
import type { Clock } from '../engine/ports';

/** The calendar for `nodes.now` (an ISO-8601 instant, checked by the config schema), or undefined (the real clock). */
export function calendarClock(start: string | undefined, bootEpoch: number): Clock | undefined {
  if (start === undefined) return undefined;
  const at = parseInstant(start);
  if (at instanceof Error) throw new Error(`nodes.now: ${at.message}`);
  const offset = at - bootEpoch;
  return { now: () => Date.now() + offset };
}
