/**
 * Counters and histograms for what is recorded per SIP message: requests by outcome, flow latency,
 * directory and location latency (server/metrics.ts). They sit in prom-client's registry beside its
 * own metrics and are exported exactly as its Counter and Histogram would export them.
 *
 * Why not prom-client's Counter and Histogram here: each `inc(labels)` / `observe(labels, v)`
 * builds a closure and a label-value pair, validates the labels and hashes the label object into
 * a string, about 1 µs. A REGISTER call records four to six of them, 3 % of its CPU at the memory
 * pairing's best rate (docs/performance.md). Here the label values find their slot through one
 * small Map per label (no string built), and recording is an add.
 *
 * Contract: prom-client's registry takes any object with `name`, `help`, `type`, `aggregator`,
 * `get()` and `reset()`. `get()` returns what prom-client's own metric of that type returns for the
 * same records (metric names, labels in `labelNames` order, `le` first, cumulative buckets, `+Inf`,
 * `_sum` and `_count`; a label set appears once it has been recorded), so the text exposition and
 * the sum over SIP threads (AggregatorRegistry) are unchanged. test/unit/server/hot-metrics.test.ts
 * holds both to prom-client's output for the same records.
 *
 * Limits: at most three labels (what the per-message metrics have); label values are strings.
 * Slots are never dropped but by `reset()`: label values must come from small sets, as Prometheus
 * asks of every label.
 */
import type { Registry } from 'prom-client';

interface MetricValue {
  labels: Record<string, string | number>;
  value: number;
  metricName?: string;
}

interface MetricJson {
  name: string;
  help: string;
  type: 'counter' | 'histogram';
  values: MetricValue[];
  aggregator: 'sum';
}

interface Options<L extends string> {
  name: string;
  help: string;
  labelNames: readonly L[];
  registers: Registry[];
}

/** Label values → slot, one Map level per label (the last level holds the slots). */
class Slots<S> {
  private readonly root = new Map<string, unknown>();
  private readonly n: number;
  /** The slot of a metric without labels. */
  private only: S | undefined;
  readonly all: Array<{ labels: Record<string, string>; slot: S }> = [];

  constructor(
    private readonly labelNames: readonly string[],
    private readonly make: () => S,
  ) {
    if (labelNames.length > 3) throw new Error('hot-metrics: at most three labels');
    this.n = labelNames.length;
  }

  /** The slot of these label values (in `labelNames` order; the ones past the labels are ignored), made on first use. */
  at(a: string, b: string, c: string): S {
    const n = this.n;
    if (n === 0) return this.only ?? this.add(a, b, c);
    let x = this.root.get(a);
    if (n >= 2 && x !== undefined) x = (x as Map<string, unknown>).get(b);
    if (n === 3 && x !== undefined) x = (x as Map<string, unknown>).get(c);
    return x === undefined ? this.add(a, b, c) : (x as S);
  }

  private add(a: string, b: string, c: string): S {
    const slot = this.make();
    const values = [a, b, c].slice(0, this.n);
    const labels: Record<string, string> = {};
    values.forEach((v, i) => (labels[this.labelNames[i]] = v));
    this.all.push({ labels, slot });
    if (this.n === 0) return (this.only = slot);
    let level = this.root;
    for (let i = 0; i < this.n - 1; i++) {
      let next = level.get(values[i]) as Map<string, unknown> | undefined;
      if (next === undefined) level.set(values[i], (next = new Map()));
      level = next;
    }
    level.set(values[this.n - 1], slot);
    return slot;
  }

  clear(): void {
    this.root.clear();
    this.only = undefined;
    this.all.length = 0;
  }
}

abstract class HotMetric<L extends string, S> {
  readonly name: string;
  readonly help: string;
  readonly aggregator = 'sum' as const;
  protected slots: Slots<S>;

  constructor(o: Options<L>, make: () => S) {
    this.name = o.name;
    this.help = o.help;
    this.slots = new Slots(o.labelNames, make);
    for (const r of o.registers) r.registerMetric(this as never);
  }

  reset(): void {
    this.slots.clear();
  }
}

/** A counter (prom-client `Counter` semantics: only goes up). */
export class HotCounter<L extends string> extends HotMetric<L, { value: number }> {
  readonly type = 'counter' as const;

  constructor(o: Options<L>) {
    super(o, () => ({ value: 0 }));
  }

  /** Adds n (default 1) for these label values, in `labelNames` order. */
  add(n: number, a = '', b = '', c = ''): void {
    if (!(n >= 0)) throw new Error(`${this.name}: a counter only goes up (got ${n})`);
    this.slots.at(a, b, c).value += n;
  }

  async get(): Promise<MetricJson> {
    return {
      name: this.name,
      help: this.help,
      type: this.type,
      values: this.slots.all.map(({ labels, slot }) => ({ labels: { ...labels }, value: slot.value })),
      aggregator: this.aggregator,
    };
  }
}

interface HistogramSlot {
  /** Observations per bucket (not cumulative); index = the first upper bound ≥ the value, bounds.length = above all. */
  counts: Float64Array;
  sum: number;
  count: number;
}

/** A histogram with fixed upper bounds (prom-client `Histogram` semantics, without exemplars). */
export class HotHistogram<L extends string> extends HotMetric<L, HistogramSlot> {
  readonly type = 'histogram' as const;
  private readonly bounds: readonly number[];

  constructor(o: Options<L> & { buckets: readonly number[] }) {
    const bounds = [...o.buckets].sort((x, y) => x - y);
    super(o, () => ({ counts: new Float64Array(bounds.length + 1), sum: 0, count: 0 }));
    this.bounds = bounds;
  }

  /** Records v for these label values, in `labelNames` order. */
  record(v: number, a = '', b = '', c = ''): void {
    if (!Number.isFinite(v)) throw new TypeError(`${this.name}: not a finite number: ${v}`);
    this.put(this.slots.at(a, b, c), v);
  }

  private put(s: HistogramSlot, v: number): void {
    const b = this.bounds;
    let i = 0;
    while (i < b.length && v > b[i]) i++;
    s.counts[i]++;
    s.sum += v;
    s.count++;
  }

  async get(): Promise<MetricJson> {
    const values: MetricValue[] = [];
    const bucket = `${this.name}_bucket`;
    for (const { labels, slot } of this.slots.all) {
      let acc = 0;
      for (let i = 0; i < this.bounds.length; i++) {
        acc += slot.counts[i];
        values.push({ labels: { le: this.bounds[i], ...labels }, value: acc, metricName: bucket });
      }
      values.push({ labels: { le: '+Inf', ...labels }, value: slot.count, metricName: bucket });
      values.push({ labels: { ...labels }, value: slot.sum, metricName: `${this.name}_sum` });
      values.push({ labels: { ...labels }, value: slot.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }
}
