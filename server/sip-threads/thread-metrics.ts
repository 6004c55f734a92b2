/**
 * Memory and event-loop delay of one SIP worker thread, in its own metrics registry
 * (server/sip-threads/worker.ts), so /metrics shows every thread beside the process.
 *
 * Why: the SIP front end runs in worker threads (host.ts). Each thread is a V8 isolate with its own
 * heap and event loop; prom-client's default metrics (sipflow_nodejs_*) describe only the main
 * thread's, and the process RSS alone does not say which thread grows. A soak (bench/soak) needs
 * every heap to judge a growth trend, and an operator needs to see a thread whose loop lags.
 *
 *   sipflow_sip_threads_heap_used_bytes{thread}       V8 heap in use
 *   sipflow_sip_threads_heap_total_bytes{thread}      V8 heap reserved
 *   sipflow_sip_threads_external_bytes{thread}        memory of C++ objects bound to JS objects (Buffers included)
 *   sipflow_sip_threads_array_buffers_bytes{thread}   of which ArrayBuffers and Buffers
 *   sipflow_sip_threads_eventloop_delay_seconds{thread,quantile}  event-loop delay since the previous scrape:
 *                                                     quantile = 0.5, 0.99, 1 (the maximum)
 *
 * `thread` is the worker's index, so the main thread's aggregation (metrics.ts addSource: sums by
 * label set) keeps one series per thread. The delay histogram (perf_hooks, a 20 ms timer) is reset
 * at each scrape: the figures cover the interval between two scrapes, and are the delay beyond the
 * timer's interval (an idle loop shows 0; prom-client's sipflow_nodejs_eventloop_lag_* of the main
 * thread include its 10 ms interval).
 * Cost: four process.memoryUsage() per scrape (in a worker, heap and external figures are the thread's own); the histogram is a timer every 20 ms.
 */
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { Gauge, type Registry } from 'prom-client';

export interface ThreadMetrics {
  /** Stops the event-loop delay timer (the thread is stopping). */
  stop(): void;
}

const NS = 1e-9;

export function registerThreadMetrics(registry: Registry, thread: number | string, o: { resolutionMs?: number } = {}): ThreadMetrics {
  const labels = { thread: String(thread) };
  const resolutionMs = o.resolutionMs ?? 20;
  const delay: IntervalHistogram = monitorEventLoopDelay({ resolution: resolutionMs });
  delay.enable();
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
  gauge('sipflow_sip_threads_heap_used_bytes', 'V8 heap in use, per SIP worker thread', (m) => m.heapUsed);
  gauge('sipflow_sip_threads_heap_total_bytes', 'V8 heap reserved, per SIP worker thread', (m) => m.heapTotal);
  gauge('sipflow_sip_threads_external_bytes', 'memory of C++ objects bound to JavaScript objects (Buffers included), per SIP worker thread', (m) => m.external);
  gauge('sipflow_sip_threads_array_buffers_bytes', 'memory of ArrayBuffers and Buffers, per SIP worker thread', (m) => m.arrayBuffers);
  new Gauge({
    name: 'sipflow_sip_threads_eventloop_delay_seconds',
    help: 'event-loop delay of each SIP worker thread since the previous scrape: quantile 0.5, 0.99 and 1 (the maximum)',
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
  return { stop: () => delay.disable() };
}
