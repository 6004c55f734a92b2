/**
 * Memory and event-loop delay of each thread of the SIP front end: every SIP worker thread
 * (server/sip-threads/sip-thread.ts, `thread` = its index) and the dispatching main thread (server/metrics.ts,
 * `thread` = main), so /metrics shows each beside the process.
 *
 * Why: the SIP front end runs in worker threads (host.ts). Each thread is a V8 isolate with its own
 * heap and event loop; prom-client's default metrics (sipflow_nodejs_*) describe only the main
 * thread's, and the process RSS alone does not say which thread grows. A soak (bench/soak) needs
 * every heap to judge a growth trend, and an operator needs to see a thread whose loop lags.
 *
 *   sipflow_sip_threads_heap_used_bytes{thread}       V8 heap in use (garbage not yet collected included)
 *   sipflow_sip_threads_heap_total_bytes{thread}      V8 heap reserved
 *   sipflow_sip_threads_heap_live_bytes{thread}       V8 heap in use right after the last full (mark-sweep) collection
 *   sipflow_sip_threads_external_bytes{thread}        memory of C++ objects bound to JS objects (Buffers included)
 *   sipflow_sip_threads_external_live_bytes{thread}   the same right after the last full collection
 *   sipflow_sip_threads_array_buffers_bytes{thread}   of the external memory, ArrayBuffers and Buffers
 *   sipflow_sip_threads_eventloop_delay_seconds{thread,quantile}  event-loop delay since the previous scrape:
 *                                                     quantile = 0.5, 0.99, 1 (the maximum)
 *
 * The live figures are what a leak shows in: heap used swings by the young generation's size (up
 * to 96 MB per worker, host.ts resourceLimits) with the moment of the scrape, the heap after a full
 * collection does not. Until a thread's first full collection they equal the current figures.
 * `thread` keeps the main thread's aggregation (metrics.ts addSource: sums by label set) at one series per
 * thread. The delay histogram (perf_hooks, a timer every EVENT_LOOP_SAMPLE_MS) is reset at each
 * scrape: the figures cover the interval between two scrapes, and are the delay beyond the timer's
 * interval (an idle loop shows 0; prom-client's sipflow_nodejs_eventloop_lag_*, sampled by the same
 * period in metrics.ts, include it).
 * Cost: a few process.memoryUsage() per scrape, a timer every EVENT_LOOP_SAMPLE_MS, and one observer
 * callback per batch of garbage collections (one v8.getHeapStatistics() per full collection).
 */
import { constants, monitorEventLoopDelay, PerformanceObserver, type IntervalHistogram, type PerformanceEntry } from 'node:perf_hooks';
import { getHeapStatistics } from 'node:v8';
import { Gauge, type Registry } from 'prom-client';

export interface ThreadMetrics {
  /** Stops the event-loop delay timer and the collection observer (the thread is stopping). */
  stop(): void;
}

const NS = 1e-9;

/**
 * The event-loop delay timers' period (this file's and prom-client's eventloop_lag). Each tick wakes
 * a sleeping thread, and a wake-up costs 20–90 µs on a VM (docs/performance.md, "What a wake-up
 * costs"): at 20 ms here and prom-client's default 10 ms, an idle worker woke 50 times a second and
 * the dispatching thread 150 times. Any stall of 50 ms or more still delays a tick and is seen;
 * shorter ones are seen in proportion to their length.
 */
export const EVENT_LOOP_SAMPLE_MS = 50;

export function registerThreadMetrics(registry: Registry, thread: number | string, o: { resolutionMs?: number } = {}): ThreadMetrics {
  const labels = { thread: String(thread) };
  const resolutionMs = o.resolutionMs ?? EVENT_LOOP_SAMPLE_MS;
  const delay: IntervalHistogram = monitorEventLoopDelay({ resolution: resolutionMs });
  delay.enable();
  let live: { heap: number; external: number } | null = null;
  const gcs = new PerformanceObserver((list) => {
    if (list.getEntries().some((e) => (e as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR)) {
      const h = getHeapStatistics();
      live = { heap: h.used_heap_size, external: h.external_memory };
    }
  });
  gcs.observe({ entryTypes: ['gc'] });
  const gauge = (name: string, help: string, read: (m: NodeJS.MemoryUsage) => number) =>
    new Gauge({
      name,
      help,
      labelNames: ['thread'] as const,
      registers: [registry],
      collect() {
        this.set(labels, read(process.memoryUsage()));
      },
    });
  gauge('sipflow_sip_threads_heap_used_bytes', 'V8 heap in use, per SIP thread', (m) => m.heapUsed);
  gauge('sipflow_sip_threads_heap_total_bytes', 'V8 heap reserved, per SIP thread', (m) => m.heapTotal);
  gauge('sipflow_sip_threads_heap_live_bytes', 'V8 heap in use right after the last full garbage collection, per SIP thread', (m) => live?.heap ?? m.heapUsed);
  gauge('sipflow_sip_threads_external_bytes', 'memory of C++ objects bound to JavaScript objects (Buffers included), per SIP thread', (m) => m.external);
  gauge(
    'sipflow_sip_threads_external_live_bytes',
    'external memory right after the last full garbage collection, per SIP thread',
    (m) => live?.external ?? m.external,
  );
  gauge('sipflow_sip_threads_array_buffers_bytes', 'memory of ArrayBuffers and Buffers, per SIP thread', (m) => m.arrayBuffers);
  new Gauge({
    name: 'sipflow_sip_threads_eventloop_delay_seconds',
    help: 'event-loop delay of each SIP thread since the previous scrape: quantile 0.5, 0.99 and 1 (the maximum)',
    labelNames: ['thread', 'quantile'] as const,
    registers: [registry],
    collect() {
      // nothing measured yet (a scrape right after start): no sample rather than NaN
      if (delay.count > 0) {
        // the histogram records the timer's whole interval: the delay is what exceeds the resolution
        const late = (ns: number) => Math.max(0, ns * NS - resolutionMs / 1000);
        this.set({ ...labels, quantile: '0.5' }, late(delay.percentile(50)));
        this.set({ ...labels, quantile: '0.99' }, late(delay.percentile(99)));
        this.set({ ...labels, quantile: '1' }, late(delay.max));
      }
      delay.reset();
    },
  });
  return {
    stop: () => {
      delay.disable();
      gcs.disconnect();
    },
  };
}
