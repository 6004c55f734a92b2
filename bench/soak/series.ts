/**
 * The soak's arithmetic (bench/soak/run.ts), pure so that test/unit/bench/soak-series.test.ts can
 * check it without a server: Prometheus text → samples, a latency histogram's quantiles over one
 * minute (the difference of two scrapes), and the growth verdict on the per-minute memory series.
 *
 * The verdict: after the warm-up (the first `warmupMin` minutes: caches filling, JIT, the heap
 * finding its size), a least-squares line through the samples. Its slope is the growth rate; the
 * growth over the window is slope × (last minute − first minute). A series "grows" when that growth
 * exceeds both `minPct` % of the series' mean and `minMb` MB: a garbage-collected heap swings by a few
 * MB from one sample to the next, so a small absolute drift or a small relative one is noise, while
 * a leak of 1 MB/min over 25 minutes (25 MB, about 10 % of a 250 MB process) is not. Fewer than
 * `minSamples` samples after the warm-up: no verdict ("too short").
 */

export interface PromSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses the Prometheus text exposition (format 0.0.4): one sample per line, comments skipped. */
export function parseProm(text: string): PromSample[] {
  const out: PromSample[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    if (m[2])
      for (const l of m[2].matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g))
        labels[l[1]] = l[2].replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    const value = m[3] === '+Inf' ? Infinity : m[3] === '-Inf' ? -Infinity : Number(m[3]);
    out.push({ name: m[1], labels, value });
  }
  return out;
}

const matches = (s: PromSample, labels: Record<string, string>) => Object.entries(labels).every(([k, v]) => s.labels[k] === v);

/** Sum of the samples named `name` whose labels include `labels` (null: none). */
export function sumOf(samples: PromSample[], name: string, labels: Record<string, string> = {}): number | null {
  let n: number | null = null;
  for (const s of samples) if (s.name === name && matches(s, labels) && Number.isFinite(s.value)) n = (n ?? 0) + s.value;
  return n;
}

/** Largest of the samples named `name` whose labels include `labels` (null: none). */
export function maxOf(samples: PromSample[], name: string, labels: Record<string, string> = {}): number | null {
  let n: number | null = null;
  for (const s of samples) if (s.name === name && matches(s, labels) && Number.isFinite(s.value)) n = Math.max(n ?? -Infinity, s.value);
  return n;
}

/** Cumulative bucket counts of histogram `name` (every label set summed), by upper bound `le`. */
export function buckets(samples: PromSample[], name: string, labels: Record<string, string> = {}): Map<number, number> {
  const out = new Map<number, number>();
  for (const s of samples) {
    if (s.name !== `${name}_bucket` || !matches(s, labels) || s.labels.le === undefined) continue;
    const le = s.labels.le === '+Inf' ? Infinity : Number(s.labels.le);
    out.set(le, (out.get(le) ?? 0) + s.value);
  }
  return out;
}

/**
 * Quantile `q` (0..1) of the observations made between two scrapes of a histogram (cumulative
 * buckets `now` minus `before`), interpolated linearly within the bucket as Prometheus'
 * histogram_quantile does; an answer in the +Inf bucket is the largest finite bound. Null when
 * nothing was observed.
 */
export function quantileBetween(before: Map<number, number>, now: Map<number, number>, q: number): number | null {
  const bounds = [...now.keys()].sort((a, b) => a - b);
  const counts = bounds.map((b) => Math.max(0, (now.get(b) ?? 0) - (before.get(b) ?? 0)));
  const total = counts[counts.length - 1] ?? 0;
  if (!(total > 0)) return null;
  const rank = q * total;
  for (let i = 0; i < bounds.length; i++) {
    if (counts[i] < rank) continue;
    if (bounds[i] === Infinity) return i > 0 ? bounds[i - 1] : null;
    const lower = i > 0 ? bounds[i - 1] : 0;
    const below = i > 0 ? counts[i - 1] : 0;
    const inBucket = counts[i] - below;
    return inBucket > 0 ? lower + (bounds[i] - lower) * ((rank - below) / inBucket) : bounds[i];
  }
  return bounds[bounds.length - 1] === Infinity ? (bounds[bounds.length - 2] ?? null) : (bounds[bounds.length - 1] ?? null);
}

/** Least-squares line through (x, y): slope and intercept; null for fewer than two distinct x. */
export function leastSquares(points: ReadonlyArray<{ x: number; y: number }>): { slope: number; intercept: number } | null {
  const n = points.length;
  if (n < 2) return null;
  const mx = points.reduce((s, p) => s + p.x, 0) / n;
  const my = points.reduce((s, p) => s + p.y, 0) / n;
  let sxx = 0;
  let sxy = 0;
  for (const p of points) {
    sxx += (p.x - mx) ** 2;
    sxy += (p.x - mx) * (p.y - my);
  }
  if (sxx === 0) return null;
  const slope = sxy / sxx;
  return { slope, intercept: my - slope * mx };
}

export interface TrendOptions {
  /** Minutes at the start left out of the fit. */
  warmupMin: number;
  /** Growth over the window must exceed this share of the mean (%)… */
  minPct?: number;
  /** …and this many MB to count as a growth trend. */
  minMb?: number;
  /** Samples needed after the warm-up for a verdict. */
  minSamples?: number;
}

export interface Trend {
  name: string;
  /** Samples after the warm-up. */
  samples: number;
  /** Mean over the window (MB). */
  meanMb: number;
  /** Slope of the least-squares line (MB/min). */
  slopeMbPerMin: number;
  /** slope × window length (MB) and as % of the mean. */
  growthMb: number;
  growthPct: number;
  /** grows: over both thresholds; flat: not; short: not enough samples to say. */
  verdict: 'flat' | 'grows' | 'short';
}

const MB = 1024 * 1024;
export const DEFAULT_TREND = { minPct: 5, minMb: 10, minSamples: 3 };

/** The trend of one series of per-minute samples in bytes (minute = the sample's minute of the run, from 1). */
export function trendOf(name: string, samples: ReadonlyArray<{ minute: number; bytes: number | null }>, o: TrendOptions): Trend {
  const minPct = o.minPct ?? DEFAULT_TREND.minPct;
  const minMb = o.minMb ?? DEFAULT_TREND.minMb;
  const need = Math.max(2, o.minSamples ?? DEFAULT_TREND.minSamples);
  const pts = samples.filter((s) => s.minute > o.warmupMin && s.bytes !== null && Number.isFinite(s.bytes)).map((s) => ({ x: s.minute, y: s.bytes! / MB }));
  const meanMb = pts.length ? pts.reduce((s, p) => s + p.y, 0) / pts.length : 0;
  const fit = pts.length >= need ? leastSquares(pts) : null;
  if (!fit) return { name, samples: pts.length, meanMb, slopeMbPerMin: 0, growthMb: 0, growthPct: 0, verdict: 'short' };
  const span = pts[pts.length - 1].x - pts[0].x;
  const growthMb = fit.slope * span;
  const growthPct = meanMb > 0 ? (100 * growthMb) / meanMb : 0;
  return {
    name,
    samples: pts.length,
    meanMb,
    slopeMbPerMin: fit.slope,
    growthMb,
    growthPct,
    verdict: growthMb > minMb && growthPct > minPct ? 'grows' : 'flat',
  };
}

/** The verdict line over every judged series: "no growth trend …", "growth: …" or "too short …". */
export function verdictLine(trends: readonly Trend[], o: TrendOptions): string {
  const minPct = o.minPct ?? DEFAULT_TREND.minPct;
  const minMb = o.minMb ?? DEFAULT_TREND.minMb;
  const rule = `growth over the window > ${minPct} % of the mean and > ${minMb} MB`;
  const grows = trends.filter((t) => t.verdict === 'grows');
  if (grows.length > 0)
    return `verdict: growth: ${grows.map((t) => `${t.name} +${t.slopeMbPerMin.toFixed(2)} MB/min (+${t.growthMb.toFixed(1)} MB, +${t.growthPct.toFixed(1)} %)`).join('; ')} (${rule})`;
  if (trends.length === 0 || trends.some((t) => t.verdict === 'short'))
    return `verdict: too short to judge (fewer than ${o.minSamples ?? DEFAULT_TREND.minSamples} samples after the ${o.warmupMin}-minute warm-up)`;
  return `verdict: no growth trend after the ${o.warmupMin}-minute warm-up in ${trends.map((t) => t.name).join(', ')} (${rule})`;
}

/** One line per series: its fit. */
export function trendLine(t: Trend): string {
  if (t.verdict === 'short') return `${t.name.padEnd(22)} ${t.samples} sample(s) after the warm-up: no fit`;
  const sign = (v: number, d: number) => (v >= 0 ? '+' : '') + v.toFixed(d);
  return `${t.name.padEnd(22)} mean ${t.meanMb.toFixed(1).padStart(7)} MB  slope ${sign(t.slopeMbPerMin, 3).padStart(8)} MB/min  over the window ${sign(t.growthMb, 1).padStart(7)} MB (${sign(t.growthPct, 1)} %)  ${t.verdict}`;
}
