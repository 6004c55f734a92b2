/**
 * Prometheus metrics (prom-client). One `Metrics` object per process (`processMetrics()`), on its
 * own registry, shared by the HTTP API and the SIP front end: both record into the same objects.
 *
 *   sipflow_requests_total{method,outcome,status}        SIP requests run through a flow
 *   sipflow_flow_execution_seconds{outcome}              runLogic latency per request
 *   sipflow_directory_query_seconds{result}              directory port queries
 *   sipflow_location_seconds{op,result}                  location port register / lookup
 *   sipflow_bindings                                     live bindings (sampled, cached)
 *   sipflow_auth_failures_total{kind}                    HTTP API token failures (kind=api) and
 *                                                        SIP digest challenges after credentials (kind=sip)
 *   sipflow_http_requests_total{method,route,status}     HTTP API requests
 *   sipflow_flow_activations_total{flow}                 activations applied by this instance
 *   sipflow_security_dropped_total{reason}               SIP messages dropped unanswered by the guard
 *                                                        (reason=banned|rate|scanner; main thread)
 *   sipflow_security_bans_total{kind,reason}             bans (kind=source) and locks (kind=user) taken
 *   sipflow_security_active_bans{kind}                   bans / locks in force now
 *   sipflow_tcp_connections                              inbound SIP TCP connections open (main thread)
 *   sipflow_tcp_refused_total{reason}                    inbound SIP TCP connections refused
 *                                                        (reason=max_connections|max_per_source)
 *   sipflow_tcp_closed_total{reason}                     SIP TCP connections closed by a defence (reason=
 *                                                        message_timeout|idle_timeout|bad_framing|not_reading|
 *                                                        tls_handshake|client_certificate)
 *   sipflow_cdrs_written_total{sink}                     CDRs written (sink=database|file; main thread)
 *   sipflow_cdrs_dropped_total{sink}                     CDRs dropped because the sink's backlog was full
 *   sipflow_cdrs_backlog{sink}                           CDRs waiting to be written
 *   sipflow_cdrs_untracked_calls_total                   calls without CDR (accounting.maxCalls calls followed)
 *   sipflow_hep_sent_total                               SIP messages copied to the HEP collector (hep.collector)
 *   sipflow_hep_dropped_total{reason}                    SIP messages not copied (reason=unresolved|overload|
 *                                                        send_error|too_large|address)
 *   sipflow_history_recorded_total                       calls (segments) the call history recorded (SIP threads)
 *   sipflow_history_dropped_total{reason}                not recorded: reason=open_calls (history.maxOpenCalls), backlog (history.backlogMax)
 *   sipflow_history_written_total                        call history segments written to the database (main thread)
 *   sipflow_sip_dispatched_total{to}                     SIP messages the dispatching thread handed on: to=worker (a
 *                                                        worker thread), inline (its own front end, sip.inlineMaxRate)
 *   sipflow_sip_messages_total{kind}                     what the SIP front ends did with their messages: taken (kind=
 *   sipflow_sip_retransmissions_total                    request|response), retransmissions answered from memory, new work
 *   sipflow_sip_shed_total{answer}                       shed while behind (answer=none|503), not run (reason=stale|
 *   sipflow_sip_dropped_total{reason}                    unparsable|unmatched), failed (server/front-end-metrics.ts)
 *   sipflow_sip_errors_total
 *   sipflow_sip_threads_heap_used_bytes{thread}          per SIP thread (thread = the worker's index, or main: the
 *   sipflow_sip_threads_heap_total_bytes{thread}         dispatching thread; server/sip-threads/thread-metrics.ts):
 *   sipflow_sip_threads_heap_live_bytes{thread}          V8 heap (used, reserved, live = after the last full collection),
 *   sipflow_sip_threads_external_bytes{thread}           external memory (now, live), ArrayBuffers, and event-loop
 *   sipflow_sip_threads_external_live_bytes{thread}      delay since the previous scrape (quantile 0.5, 0.99, 1 = max)
 *   sipflow_sip_threads_array_buffers_bytes{thread}
 *   sipflow_sip_threads_eventloop_delay_seconds{thread,quantile}
 * plus prom-client's default process metrics (sipflow_process_*, sipflow_nodejs_*).
 */
import { AggregatorRegistry, Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { Outcome, RunContext } from '../engine/types';
import { EVENT_LOOP_SAMPLE_MS, registerThreadMetrics } from './sip-threads/thread-metrics';
import { HotCounter, HotHistogram } from './hot-metrics';
import { registerFrontEndMetrics, type FrontEndMetrics } from './front-end-metrics';
import type { DirectoryPort } from '../services/directory/types';
import type { LocationPort } from '../services/location/types';

const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

export interface Metrics {
  registry: Registry;
  /** Recorded per message: prom-client's format at a fraction of its cost (server/hot-metrics.ts). */
  requests: HotCounter<'method' | 'outcome' | 'status'>;
  flowExecution: HotHistogram<'outcome'>;
  directoryQuery: HotHistogram<'result'>;
  location: HotHistogram<'op' | 'result'>;
  bindings: Gauge;
  authFailures: Counter<'kind'>;
  httpRequests: Counter<'method' | 'route' | 'status'>;
  activations: Counter<'flow'>;
  tcpConnections: Gauge;
  tcpRefused: Counter<'reason'>;
  tcpClosed: Counter<'reason'>;
  securityDropped: Counter<'reason'>;
  securityBans: Counter<'kind' | 'reason'>;
  securityActiveBans: Gauge<'kind'>;
  dispatched: Counter<'to'>;
  cdrsWritten: Counter<'sink'>;
  historyRecorded: Counter;
  historyDropped: Counter<'reason'>;
  historyWritten: Counter;
  cdrsDropped: Counter<'sink'>;
  cdrBacklog: Gauge<'sink'>;
  cdrUntracked: Counter;
  hepSent: Counter;
  hepDropped: Counter<'reason'>;
  /** The SIP front ends' counts (server/front-end-metrics.ts): `frontEnds.add` for each thread's or process's front ends. */
  frontEnds: FrontEndMetrics;
  /** Where the CDR backlog gauge reads its values (the writer, services/accounting); null = none. */
  setCdrBacklogSource(backlog: (() => Record<string, number>) | null): void;
  /** Where the dispatched-messages counter reads its counts (server/sip-threads/host.ts); null = none. */
  setDispatchSource(counts: (() => { inline: number; worker: number }) | null): void;
  /** Where the active-bans gauge reads its values (the process's guard, services/guard); null = none. */
  setSecuritySource(count: (() => { sources: number; users: number }) | null): void;
  /** Where the bindings gauge reads its value (e.g. a `count` on the location store); null = unknown. */
  setBindingsSource(count: (() => Promise<number | null>) | null, cacheMs?: number): void;
  /**
   * Records one request run through a flow (method = SIP method, outcome = its kind, status = SIP
   * status or "none"). A challenge (not stale) answered to a request that carried credentials (authUsername set)
   * counts as a SIP authentication failure.
   */
  observeRun(method: string | null | undefined, outcome: Outcome, seconds: number, opts?: { hadCredentials?: boolean }): void;
  /**
   * Adds registries of other threads (SIP workers count requests and flow latency in their own):
   * `text()` then sums them with this one. Returns the function that removes the source.
   */
  addSource(source: () => Promise<unknown[][]>): () => void;
  /** Prometheus text exposition. */
  text(): Promise<string>;
}

export interface MetricsOptions {
  /** Node.js process metrics (CPU, memory, event loop lag). Default true. */
  defaultMetrics?: boolean;
}

export function createMetrics(options: MetricsOptions = {}): Metrics {
  const registry = new Registry();
  if (options.defaultMetrics !== false) {
    collectDefaultMetrics({ register: registry, prefix: 'sipflow_', eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS });
    // this (dispatching) thread among the SIP threads; each worker registers its own (worker.ts)
    registerThreadMetrics(registry, 'main');
  }

  let source: (() => Promise<number | null>) | null = null;
  let securitySource: (() => { sources: number; users: number }) | null = null;
  let dispatchSource: (() => { inline: number; worker: number }) | null = null;
  let cdrBacklogSource: (() => Record<string, number>) | null = null;
  const sources = new Set<() => Promise<unknown[][]>>();
  let cacheMs = 10_000;
  let cached: { at: number; value: number | null } | null = null;

  const m: Metrics = {
    registry,
    requests: new HotCounter({
      name: 'sipflow_requests_total',
      help: 'SIP requests run through a flow, by SIP method, outcome kind and status',
      labelNames: ['method', 'outcome', 'status'] as const,
      registers: [registry],
    }),
    flowExecution: new HotHistogram({
      name: 'sipflow_flow_execution_seconds',
      help: 'flow execution latency per request (all passes, store calls included)',
      labelNames: ['outcome'] as const,
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    }),
    directoryQuery: new HotHistogram({
      name: 'sipflow_directory_query_seconds',
      help: 'directory query latency',
      labelNames: ['result'] as const,
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    }),
    location: new HotHistogram({
      name: 'sipflow_location_seconds',
      help: 'location service latency by operation',
      labelNames: ['op', 'result'] as const,
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    }),
    bindings: new Gauge({
      name: 'sipflow_bindings',
      help: 'live registrations (bindings) in the location service; sampled at most every 10 s',
      registers: [registry],
      async collect() {
        if (!source) return;
        const now = Date.now();
        if (!cached || now - cached.at >= cacheMs) {
          let value: number | null;
          try {
            value = await source();
          } catch {
            value = null;
          }
          cached = { at: now, value };
        }
        if (cached.value !== null) this.set(cached.value);
      },
    }),
    authFailures: new Counter({
      name: 'sipflow_auth_failures_total',
      help: 'authentication failures: kind=api (HTTP bearer token), kind=sip (digest credentials rejected)',
      labelNames: ['kind'] as const,
      registers: [registry],
    }),
    httpRequests: new Counter({
      name: 'sipflow_http_requests_total',
      help: 'HTTP API requests by method, route pattern and status',
      labelNames: ['method', 'route', 'status'] as const,
      registers: [registry],
    }),
    activations: new Counter({
      name: 'sipflow_flow_activations_total',
      help: 'flow activations applied by this instance (local or noticed from another instance)',
      labelNames: ['flow'] as const,
      registers: [registry],
    }),
    securityDropped: new Counter({
      name: 'sipflow_security_dropped_total',
      help: 'SIP messages dropped without an answer: reason=banned (source banned), rate (over its rate limit), scanner (scanner User-Agent)',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
    securityBans: new Counter({
      name: 'sipflow_security_bans_total',
      help: 'bans taken: kind=source (source address banned) or user (username locked), by reason (auth, rate, scanner)',
      labelNames: ['kind', 'reason'] as const,
      registers: [registry],
    }),
    securityActiveBans: new Gauge({
      name: 'sipflow_security_active_bans',
      help: 'bans in force in this instance: kind=source (banned addresses) or user (locked usernames)',
      labelNames: ['kind'] as const,
      registers: [registry],
      collect() {
        if (!securitySource) return;
        const c = securitySource();
        this.set({ kind: 'source' }, c.sources);
        this.set({ kind: 'user' }, c.users);
      },
    }),
    setSecuritySource(count) {
      securitySource = count;
    },
    // counted by the dispatcher as plain numbers (one message costs no prom-client call), read here
    dispatched: new Counter({
      name: 'sipflow_sip_dispatched_total',
      help: 'SIP messages the dispatching thread handed on: to=worker (a SIP worker thread) or inline (its own front end while under sip.inlineMaxRate)',
      labelNames: ['to'] as const,
      registers: [registry],
      collect() {
        if (!dispatchSource) return;
        const c = dispatchSource();
        this.reset();
        this.inc({ to: 'inline' }, c.inline);
        this.inc({ to: 'worker' }, c.worker);
      },
    }),
    setDispatchSource(counts) {
      dispatchSource = counts;
    },
    historyRecorded: new Counter({
      name: 'sipflow_history_recorded_total',
      help: 'calls (segments of a Call-ID) the call history recorded and handed to its writer',
      registers: [registry],
    }),
    historyDropped: new Counter({
      name: 'sipflow_history_dropped_total',
      help: 'calls the call history did not keep: reason=open_calls (history.maxOpenCalls calls being recorded on the SIP thread), backlog (history.backlogMax segments waiting for the database)',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
    historyWritten: new Counter({
      name: 'sipflow_history_written_total',
      help: 'call history segments written to the directory database',
      registers: [registry],
    }),
    cdrsWritten: new Counter({
      name: 'sipflow_cdrs_written_total',
      help: 'call detail records written, by sink (database, file)',
      labelNames: ['sink'] as const,
      registers: [registry],
    }),
    cdrsDropped: new Counter({
      name: 'sipflow_cdrs_dropped_total',
      help: 'call detail records dropped because the sink could not be written and its backlog was full (accounting.backlogMax)',
      labelNames: ['sink'] as const,
      registers: [registry],
    }),
    cdrBacklog: new Gauge({
      name: 'sipflow_cdrs_backlog',
      help: 'call detail records waiting to be written, by sink',
      labelNames: ['sink'] as const,
      registers: [registry],
      collect() {
        if (!cdrBacklogSource) return;
        for (const [sink, n] of Object.entries(cdrBacklogSource())) this.set({ sink }, n);
      },
    }),
    cdrUntracked: new Counter({
      name: 'sipflow_cdrs_untracked_calls_total',
      help: 'calls that got no CDR because accounting.maxCalls calls were followed on their SIP thread',
      registers: [registry],
    }),
    hepSent: new Counter({
      name: 'sipflow_hep_sent_total',
      help: 'SIP messages sent and received copied to the HEP collector (hep.collector), one datagram each',
      registers: [registry],
    }),
    hepDropped: new Counter({
      name: 'sipflow_hep_dropped_total',
      help: 'SIP messages not copied to the HEP collector: reason=unresolved (collector name not resolved), overload (hep.maxInFlight datagrams pending), send_error, too_large (datagram over 65,535 bytes), address (peer not an IP address)',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
    frontEnds: registerFrontEndMetrics(registry),
    setCdrBacklogSource(backlog) {
      cdrBacklogSource = backlog;
    },
    tcpConnections: new Gauge({
      name: 'sipflow_tcp_connections',
      help: 'inbound SIP TCP connections open (counted against sip.tcp.maxConnections)',
      registers: [registry],
    }),
    tcpRefused: new Counter({
      name: 'sipflow_tcp_refused_total',
      help: 'inbound SIP TCP connections refused (reset at once): reason=max_connections (sip.tcp.maxConnections) or max_per_source (sip.tcp.maxConnectionsPerSource)',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
    tcpClosed: new Counter({
      name: 'sipflow_tcp_closed_total',
      help: 'SIP TCP connections closed by a defence: reason=message_timeout (incomplete message), idle_timeout, bad_framing, not_reading (peer not reading responses), tls_handshake (failed or timed out), client_certificate (refused per sip.tls.verifyClient)',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
    setBindingsSource(count, ms = 10_000) {
      source = count;
      cacheMs = ms;
      cached = null;
    },
    observeRun(method, outcome, seconds, opts) {
      if (outcome.kind === 'challenge' && !outcome.stale && opts?.hadCredentials) m.authFailures.inc({ kind: 'sip' }); // stale = right password, old nonce
      m.requests.add(1, method || 'unknown', outcome.kind, outcome.status === null ? 'none' : String(outcome.status));
      m.flowExecution.record(seconds, outcome.kind);
    },
    addSource(get) {
      sources.add(get);
      return () => {
        sources.delete(get);
      };
    },
    async text() {
      if (sources.size === 0) return registry.metrics();
      const parts: unknown[][] = [await registry.getMetricsAsJSON()];
      for (const get of sources) parts.push(...(await get()));
      return AggregatorRegistry.aggregate(parts.filter((p) => p.length > 0)).metrics();
    },
  };
  return m;
}

let shared: Metrics | undefined;
/** The process-wide metrics (the SIP front end and the HTTP API record into these). */
export function processMetrics(): Metrics {
  return (shared ??= createMetrics());
}

const since = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e9;

/** The directory port, timing every query into `sipflow_directory_query_seconds`. */
export function instrumentDirectory<D extends DirectoryPort>(directory: D, metrics: Metrics): D {
  const wrapped = Object.create(directory) as D;
  wrapped.query = async (q) => {
    const t0 = process.hrtime.bigint();
    try {
      const rows = await directory.query(q);
      metrics.directoryQuery.record(since(t0), 'ok');
      return rows;
    } catch (e) {
      metrics.directoryQuery.record(since(t0), 'error');
      throw e;
    }
  };
  return wrapped;
}

/** The location port, timing register and lookup into `sipflow_location_seconds`. */
export function instrumentLocation<L extends LocationPort>(location: L, metrics: Metrics): L {
  const wrapped = Object.create(location) as L;
  const time = async <T>(op: string, fn: () => Promise<T>): Promise<T> => {
    const t0 = process.hrtime.bigint();
    try {
      const r = await fn();
      metrics.location.record(since(t0), op, 'ok');
      return r;
    } catch (e) {
      metrics.location.record(since(t0), op, 'error');
      throw e;
    }
  };
  wrapped.register = (req) => time('register', () => location.register(req));
  wrapped.lookup = (u, d, now) => time('lookup', () => location.lookup(u, d, now));
  return wrapped;
}

/** A run context whose directory and location ports record their latency (other ports unchanged). */
export function instrumentContext(ctx: RunContext, metrics: Metrics): RunContext {
  return { ...ctx, directory: instrumentDirectory(ctx.directory, metrics), location: instrumentLocation(ctx.location, metrics) };
}
