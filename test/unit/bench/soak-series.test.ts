import { buckets, leastSquares, maxOf, parseProm, quantileBetween, sumOf, trendOf, verdictLine } from '../../../bench/soak/series';
import { parseOptions } from '../../../bench/soak/run';

const MB = 1024 * 1024;
const minutes = (n: number, f: (m: number) => number) => Array.from({ length: n }, (_, i) => ({ minute: i + 1, bytes: f(i + 1) }));

describe('parseProm', () => {
  const text = [
    '# HELP sipflow_process_resident_memory_bytes Resident memory size in bytes.',
    '# TYPE sipflow_process_resident_memory_bytes gauge',
    'sipflow_process_resident_memory_bytes 314572800',
    'sipflow_sip_threads_heap_used_bytes{thread="0"} 1000',
    'sipflow_sip_threads_heap_used_bytes{thread="1"} 2500',
    'sipflow_sip_threads_eventloop_delay_seconds{thread="0",quantile="0.99"} 0.004',
    'sipflow_sip_threads_eventloop_delay_seconds{thread="1",quantile="0.99"} 0.012',
    'sipflow_requests_total{method="REGISTER",outcome="reply",status="200"} 12',
    'odd{label="a \\"quoted\\" value"} 1',
    'sipflow_location_seconds_bucket{le="+Inf",op="lookup",result="ok"} 7',
  ].join('\n');
  const s = parseProm(text);

  test('one sample per line, labels parsed, comments skipped', () => {
    expect(s).toHaveLength(8);
    expect(s[0]).toEqual({ name: 'sipflow_process_resident_memory_bytes', labels: {}, value: 314572800 });
    expect(s[3].labels).toEqual({ thread: '0', quantile: '0.99' });
    expect(s[6].labels.label).toBe('a "quoted" value');
  });

  test('sums and maxima over the series of one name, by label subset', () => {
    expect(sumOf(s, 'sipflow_sip_threads_heap_used_bytes')).toBe(3500);
    expect(sumOf(s, 'sipflow_sip_threads_heap_used_bytes', { thread: '1' })).toBe(2500);
    expect(maxOf(s, 'sipflow_sip_threads_eventloop_delay_seconds', { quantile: '0.99' })).toBe(0.012);
    expect(sumOf(s, 'absent')).toBeNull();
    expect(buckets(s, 'sipflow_location_seconds').get(Infinity)).toBe(7);
  });
});

describe('quantileBetween (one minute of a latency histogram)', () => {
  const hist = (counts: Record<string, number>) => new Map(Object.entries(counts).map(([k, v]) => [k === '+Inf' ? Infinity : Number(k), v]));

  test('interpolates within the bucket over the difference of two scrapes', () => {
    const before = hist({ '0.001': 100, '0.005': 100, '0.01': 100, '+Inf': 100 });
    // this minute: 50 below 1 ms, 50 between 1 and 5 ms
    const now = hist({ '0.001': 150, '0.005': 200, '0.01': 200, '+Inf': 200 });
    expect(quantileBetween(before, now, 0.5)).toBeCloseTo(0.001, 9);
    expect(quantileBetween(before, now, 0.75)).toBeCloseTo(0.003, 9);
    expect(quantileBetween(before, now, 0.99)).toBeCloseTo(0.001 + 0.004 * (49 / 50), 9);
  });

  test('the +Inf bucket answers the largest finite bound; nothing observed: null', () => {
    const before = hist({ '0.001': 0, '0.01': 0, '+Inf': 0 });
    expect(quantileBetween(before, hist({ '0.001': 0, '0.01': 0, '+Inf': 10 }), 0.99)).toBe(0.01);
    expect(quantileBetween(before, before, 0.5)).toBeNull();
  });
});

describe('trend and verdict', () => {
  const o = { warmupMin: 5, minPct: 5, minMb: 10 };

  test('least squares recovers a known line', () => {
    const fit = leastSquares([1, 2, 3, 4].map((x) => ({ x, y: 3 * x + 7 })));
    expect(fit!.slope).toBeCloseTo(3, 12);
    expect(fit!.intercept).toBeCloseTo(7, 12);
    expect(leastSquares([{ x: 1, y: 1 }])).toBeNull();
  });

  test('a leak of 25 MB/min after warm-up is a growth trend, with its rate and share', () => {
    const t = trendOf(
      'external',
      minutes(30, (m) => (200 + 25 * m) * MB),
      o,
    );
    expect(t.verdict).toBe('grows');
    expect(t.slopeMbPerMin).toBeCloseTo(25, 9);
    expect(t.growthMb).toBeCloseTo(25 * 24, 6); // minutes 6..30
    expect(t.samples).toBe(25);
    expect(verdictLine([t], o)).toMatch(/^verdict: growth: external \+25\.00 MB\/min/);
  });

  test('warm-up growth then a flat, noisy plateau: no growth trend', () => {
    // fills for 5 minutes (caches, JIT), then swings ±6 MB with garbage collection around 300 MB
    const t = trendOf(
      'heap',
      minutes(30, (m) => (m <= 5 ? 100 + 40 * m : 300 + (m % 2 ? 6 : -6)) * MB),
      o,
    );
    expect(t.verdict).toBe('flat');
    expect(Math.abs(t.growthMb)).toBeLessThan(2);
    expect(verdictLine([t], o)).toMatch(/^verdict: no growth trend after the 5-minute warm-up in heap/);
    // the same series judged from minute 0 would be growth: the warm-up matters
    expect(
      trendOf(
        'heap',
        minutes(30, (m) => (m <= 5 ? 100 + 40 * m : 300) * MB),
        { ...o, warmupMin: 0 },
      ).verdict,
    ).toBe('grows');
  });

  test('both thresholds must be exceeded: a large relative drift of a small series, a small one of a large series', () => {
    // 0.3 MB/min on a 20 MB series: 7.2 MB (36 %) over the window, under 10 MB
    expect(
      trendOf(
        'small',
        minutes(30, (m) => (20 + 0.3 * m) * MB),
        o,
      ).verdict,
    ).toBe('flat');
    // 1 MB/min on a 2 GB series: 24 MB, about 1 %
    expect(
      trendOf(
        'large',
        minutes(30, (m) => (2048 + m) * MB),
        o,
      ).verdict,
    ).toBe('flat');
    // 1 MB/min on a 250 MB series: 24 MB, about 9 %
    expect(
      trendOf(
        'mid',
        minutes(30, (m) => (250 + m) * MB),
        o,
      ).verdict,
    ).toBe('grows');
  });

  test('too few samples after the warm-up: no verdict; missing samples are skipped', () => {
    const t = trendOf(
      'rss',
      minutes(6, (m) => m * MB),
      o,
    );
    expect(t.verdict).toBe('short');
    expect(verdictLine([t], o)).toMatch(/too short/);
    const gaps = trendOf('rss', [...minutes(10, () => 300 * MB), { minute: 11, bytes: null }], o);
    expect(gaps.samples).toBe(5);
    expect(gaps.verdict).toBe('flat');
  });
});

describe('bench/soak options', () => {
  test('defaults: 30 minutes, capacity measured, PostgreSQL, 5-minute warm-up', () => {
    expect(parseOptions([])).toMatchObject({ minutes: 30, rate: null, store: 'pgsql', warmupMin: 5 });
    expect(parseOptions(['--minutes', '4']).warmupMin).toBe(1);
    expect(parseOptions(['--minutes=10', '--rate=300', '--store', 'memory'])).toMatchObject({ minutes: 10, rate: 300, store: 'memory' });
  });

  test('bad values are refused with the option named', () => {
    expect(() => parseOptions(['--minutes', 'ten'])).toThrow(/--minutes: expected a whole number/);
    expect(() => parseOptions(['--store', 'mongo'])).toThrow(/--store: expected pgsql or memory/);
    expect(() => parseOptions(['--rate'])).toThrow(/--rate: .*got nothing/);
    expect(() => parseOptions(['--minutes', '5', '--warmup-min', '5'])).toThrow(/--warmup-min \(5\) must be less than --minutes/);
    expect(() => parseOptions(['--bogus'])).toThrow(/unknown option "--bogus"/);
  });
});
