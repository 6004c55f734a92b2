/**
 * A fixed instant for a run's clock: `sipflow run --now` and the simulator's `now` run a logic at
 * any moment (the date and time nodes read ctx.clock). The text must be an ISO 8601 date-time
 * with its offset (`2026-12-24T18:30:00+01:00`, `2026-12-24T17:30Z`): without one it would name a
 * different instant on every machine.
 */
import { DateTime } from 'luxon';

const WITH_OFFSET = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}(:?\d{2})?)$/i;

/** Epoch ms of the instant, or an Error saying what is wrong with the text. */
export function parseInstant(text: string): number | Error {
  if (!WITH_OFFSET.test(text)) return new Error('must be an ISO 8601 date-time with an offset, e.g. 2026-12-24T18:30:00+01:00 or 2026-12-24T17:30:00Z');
  const d = DateTime.fromISO(text, { setZone: true });
  if (!d.isValid) return new Error(`not a valid date-time (${d.invalidExplanation ?? d.invalidReason})`);
  return d.toMillis();
}
