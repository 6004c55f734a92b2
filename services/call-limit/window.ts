/**
 * The rate window of analysis.callLimit's `maxPerSecond`, shared by every store so an instance
 * limit and a database-shared one admit the same calls.
 *
 * A sliding window log: a new call is admitted when fewer than `count` calls of the key were
 * admitted in the last `windowMs` milliseconds (start times t with now - windowMs < t ≤ now),
 * where count = max(1, floor(maxPerSecond)) and windowMs = 1000 × count / maxPerSecond. For a
 * whole maxPerSecond N that is "at most N new calls in any 1 s"; 0.5 is one call in any 2 s,
 * 2.5 two in any 800 ms. No burst beyond `count` is ever admitted, whatever came before.
 */
export interface RateWindow {
  count: number;
  windowMs: number;
}

export function rateWindow(maxPerSecond: number): RateWindow {
  const count = Math.max(1, Math.floor(maxPerSecond));
  return { count, windowMs: (1000 * count) / maxPerSecond };
}

/** Start times still inside the window at `nowMs` (ascending input, ascending output). */
export function inWindow(starts: readonly number[], w: RateWindow, nowMs: number): number[] {
  const from = nowMs - w.windowMs;
  let i = 0;
  while (i < starts.length && starts[i] <= from) i++;
  return i === 0 ? (starts as number[]) : starts.slice(i);
}
