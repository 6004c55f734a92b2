/**
 * The share of one core the calling thread ran on since the previous reading: how busy the
 * dispatching thread is, for the inline front end's switch (call-owners.ts, `utilization`).
 *
 * Why not event-loop utilisation: that is wall-clock time outside the poll, so a thread waiting for
 * a core reads as busy while it does not run. On two cores shared with PostgreSQL, FerretDB, SIPp and
 * the SIP workers, the dispatcher of the mongodb pairing ran 30 % of a core at 500 calls/s yet read
 * windows over 75 % busy, so it kept sending REGISTERs to the workers, where their hand-offs cost it
 * more (docs/performance.md, "What remains"). What the inline front end competes for is the
 * thread's CPU time, and spreading to the workers frees that, not wall-clock time.
 *
 * Source: the scheduler's exact runtime of the calling thread, the first field of
 * /proc/thread-self/schedstat (Linux, nanoseconds: one read of a 40-byte file per call, every 250 ms
 * in call-owners.ts). Where it cannot be read (another OS, a kernel without it), or stops being
 * readable, event-loop utilisation as before.
 */
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

export interface ThreadCpuOptions {
  /** The thread's total CPU time in ns (default: /proc/thread-self/schedstat); throws when unavailable. */
  runtimeNs?: () => number;
  /** Milliseconds on a monotonic clock (default performance.now). */
  now?: () => number;
}

const schedstatRuntimeNs = (): number => {
  const ns = Number(readFileSync('/proc/thread-self/schedstat', 'latin1').split(' ', 1)[0]);
  if (!Number.isFinite(ns)) throw new Error('/proc/thread-self/schedstat: no runtime');
  return ns;
};

/** A reader of the calling thread's CPU share (0–1) since its previous call (the first: since its creation). */
export function threadCpuShare(o: ThreadCpuOptions = {}): () => number {
  const runtimeNs = o.runtimeNs ?? schedstatRuntimeNs;
  const now = o.now ?? (() => performance.now());
  let loop = performance.eventLoopUtilization();
  const fromEventLoop = (): number => {
    const current = performance.eventLoopUtilization();
    const share = performance.eventLoopUtilization(current, loop).utilization;
    loop = current;
    return share;
  };
  let lastNs: number;
  try {
    lastNs = runtimeNs();
  } catch {
    return fromEventLoop;
  }
  let lastMs = now();
  let source: () => number = () => {
    let ns: number;
    try {
      ns = runtimeNs();
    } catch {
      source = fromEventLoop;
      return fromEventLoop();
    }
    const ms = now();
    const share = ms > lastMs ? (ns - lastNs) / 1e6 / (ms - lastMs) : 0;
    lastNs = ns;
    lastMs = ms;
    return Math.min(1, Math.max(0, share));
  };
  return () => source();
}
