/**
 * What the SIP front ends did with the messages they were given, on /metrics: how many were
 * retransmissions answered from memory, how many were shed while a thread was behind, and how many
 * were dropped and why. These are an operator's view of overload (docs/performance.md, Overload):
 * a rising `sipflow_sip_shed_total` says a SIP thread is behind and turning new work away;
 * `sipflow_sip_dropped_total{reason="stale"}` that requests waited past `sip.maxQueueMs`;
 * `sipflow_sip_retransmissions_total` against `sipflow_sip_messages_total` how much of the traffic
 * is UAs repeating themselves.
 *
 *   sipflow_sip_messages_total{kind}             requests and responses the front ends took (kind=request|response),
 *                                                retransmissions and shed requests included
 *   sipflow_sip_retransmissions_total            retransmitted requests answered again from memory, no logic run
 *   sipflow_sip_shed_total{answer}               new work shed while behind (sip.shedAfterMs): answer=none (dropped, the UA
 *                                                retransmits) or 503 (sip.shedRetryAfterSec)
 *   sipflow_sip_dropped_total{reason}            messages no logic ran on: reason=stale (dropped, queued past sip.maxQueueMs),
 *                                                unparsable (answered 400 when its headers could be read), unmatched (an ACK
 *                                                of nothing of ours, dropped)
 *   sipflow_sip_errors_total                     messages whose handling failed (logged)
 *
 * Each front end counts in plain fields (sip/front-end.ts FrontEndStats: one message costs an
 * increment, no metrics call), read at each scrape. A SIP thread adds its front ends to its own
 * registry's counters (server/sip-threads/sip-thread.ts), and the main thread's registry sums the
 * threads' (server/metrics.ts addSource), so the figures are the instance's; in process
 * (`sip.workers: 1`) the front ends are added to the process's registry (server/serve.ts).
 */
import { Counter, type Registry } from 'prom-client';
import type { FrontEndStats } from '../sip/front-end';

/** Where the counters read: every source's front ends, summed at each scrape. */
export interface FrontEndMetrics {
  /** Adds a thread's (or a process's) front ends; returns the function that removes them. */
  add(stats: () => Iterable<FrontEndStats>): () => void;
}

/** One counter: its series, each a label value (or none) and what it reads from a front end's counts. */
interface CounterSpec {
  name: string;
  help: string;
  label?: string;
  series: Array<[labelValue: string | null, read: (s: FrontEndStats) => number]>;
}

const COUNTERS: CounterSpec[] = [
  {
    name: 'sipflow_sip_messages_total',
    help: 'SIP messages the front ends took, by kind (request, response); retransmissions and shed requests included',
    label: 'kind',
    series: [
      ['request', (s) => s.requests],
      ['response', (s) => s.responses],
    ],
  },
  {
    name: 'sipflow_sip_retransmissions_total',
    help: 'retransmitted requests answered again from memory, without parsing or running logic',
    series: [[null, (s) => s.retransmissions]],
  },
  {
    name: 'sipflow_sip_shed_total',
    help: 'new work shed while a SIP thread was behind (sip.shedAfterMs): answer=none (dropped, the UA retransmits) or 503 (sip.shedRetryAfterSec)',
    label: 'answer',
    series: [
      ['none', (s) => s.shed - s.shedAnswered],
      ['503', (s) => s.shedAnswered],
    ],
  },
  {
    name: 'sipflow_sip_dropped_total',
    help: 'SIP messages no logic ran on: reason=stale (dropped, queued past sip.maxQueueMs), unparsable (answered 400 when its headers could be read, else dropped), unmatched (an ACK of no transaction or dialog, dropped)',
    label: 'reason',
    series: [
      ['stale', (s) => s.stale],
      ['unparsable', (s) => s.unparsable],
      ['unmatched', (s) => s.unmatched],
    ],
  },
  {
    name: 'sipflow_sip_errors_total',
    help: 'SIP messages whose handling failed (a fault of sipflow; logged)',
    series: [[null, (s) => s.errors]],
  },
];

/** Registers the counters on `registry` (server/metrics.ts createMetrics: once per registry). */
export function registerFrontEndMetrics(registry: Registry): FrontEndMetrics {
  const sources = new Set<() => Iterable<FrontEndStats>>();
  const sum = (read: (s: FrontEndStats) => number): number => {
    let n = 0;
    for (const source of sources) for (const s of source()) n += read(s);
    return n;
  };
  for (const spec of COUNTERS) {
    const { label } = spec;
    new Counter({
      name: spec.name,
      help: spec.help,
      labelNames: label === undefined ? [] : [label],
      registers: [registry],
      // the counts are the front ends' own totals: each scrape sets them (reset, then one inc);
      // with no front end (an HTTP-only process, a thread starting) no labelled series at all
      collect() {
        this.reset();
        if (sources.size === 0) return;
        for (const [value, read] of spec.series) {
          if (label === undefined || value === null) this.inc(sum(read));
          else this.inc({ [label]: value }, sum(read));
        }
      },
    });
  }
  return {
    add(stats) {
      sources.add(stats);
      return () => {
        sources.delete(stats);
      };
    },
  };
}
