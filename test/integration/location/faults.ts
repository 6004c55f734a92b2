/** Helpers for the fault suites: timing a rejection and catching unhandled rejections. */

/** Awaits `p`, which must reject; returns the error and how long it took. */
export async function rejection(p: Promise<unknown>): Promise<{ error: unknown; ms: number }> {
  const t0 = Date.now();
  try {
    await p;
  } catch (error) {
    return { error, ms: Date.now() - t0 };
  }
  throw new Error('expected a rejection, the operation succeeded');
}

/** Collects unhandled rejections while installed (a store must never leave one behind). */
export function watchUnhandledRejections(): { seen: unknown[]; stop(): void } {
  const seen: unknown[] = [];
  const onRejection = (reason: unknown) => { seen.push(reason); };
  process.on('unhandledRejection', onRejection);
  return { seen, stop: () => { process.off('unhandledRejection', onRejection); } };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
