/**
 * server/hot-metrics.ts against prom-client: the same records into a HotCounter / HotHistogram and
 * into prom-client's Counter / Histogram must give the same text exposition and the same JSON (what
 * the SIP threads send to be summed), and the sum over registries (AggregatorRegistry) must match.
 */
import { AggregatorRegistry, Counter, Histogram, Registry } from 'prom-client';
import { HotCounter, HotHistogram } from '../../server/hot-metrics';

const BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

/** The text of a registry with its lines sorted (prom-client and we may list label sets in another order). */
async function lines(r: Registry): Promise<string[]> {
  return (await r.metrics()).split('\n').sort();
}

/** Deterministic values spread over the buckets, bounds themselves included. */
function samples(n: number): number[] {
  const out: number[] = [...BUCKETS, 0, 7.5];
  let x = 12345;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    out.push((x / 2 ** 31) * 3);
  }
  return out;
}

describe('HotCounter', () => {
  it('exports what prom-client Counter exports for the same increments, labels in labelNames order', async () => {
    const ours = new Registry();
    const theirs = new Registry();
    const hot = new HotCounter({ name: 'x_requests_total', help: 'requests', labelNames: ['method', 'outcome', 'status'] as const, registers: [ours] });
    const ref = new Counter({ name: 'x_requests_total', help: 'requests', labelNames: ['method', 'outcome', 'status'] as const, registers: [theirs] });
    const records: Array<[string, string, string, number]> = [
      ['REGISTER', 'challenge', '401', 1],
      ['REGISTER', 'reply', '200', 1],
      ['REGISTER', 'reply', '200', 3],
      ['OPTIONS', 'reply', '200', 1],
      ['REGISTER', 'challenge', '401', 1],
      ['INVITE', 'relay', 'none', 2],
    ];
    for (const [method, outcome, status, n] of records) {
      hot.add(n, method, outcome, status);
      ref.inc({ method, outcome, status }, n);
    }
    hot.add(1, 'BYE', 'reply', '200');
    ref.inc({ method: 'BYE', outcome: 'reply', status: '200' });
    expect(await lines(ours)).toEqual(await lines(theirs));
    expect(await ours.metrics()).toMatch(/^x_requests_total\{method="REGISTER",outcome="reply",status="200"\} 4$/m);
  });

  it('without labels, and reset', async () => {
    const ours = new Registry();
    const theirs = new Registry();
    const hot = new HotCounter({ name: 'x_total', help: 'h', labelNames: [], registers: [ours] });
    const ref = new Counter({ name: 'x_total', help: 'h', registers: [theirs] });
    hot.add(2);
    hot.add(1);
    ref.inc(3);
    expect(await lines(ours)).toEqual(await lines(theirs));
    ours.resetMetrics();
    expect(await ours.metrics()).not.toMatch(/^x_total /m);
  });

  it('refuses to go down, as prom-client does', () => {
    const hot = new HotCounter({ name: 'x_total', help: 'h', labelNames: ['a'] as const, registers: [] });
    expect(() => hot.add(-1, 'v')).toThrow(/only goes up/);
    expect(() => hot.add(Number.NaN, 'v')).toThrow(/only goes up/);
  });
});

describe('HotHistogram', () => {
  it('exports what prom-client Histogram exports for the same observations (buckets, +Inf, sum, count)', async () => {
    const ours = new Registry();
    const theirs = new Registry();
    const hot = new HotHistogram({ name: 'x_seconds', help: 'latency', labelNames: ['op', 'result'] as const, buckets: BUCKETS, registers: [ours] });
    const ref = new Histogram({ name: 'x_seconds', help: 'latency', labelNames: ['op', 'result'] as const, buckets: BUCKETS, registers: [theirs] });
    const values = samples(200);
    values.forEach((v, i) => {
      const op = i % 3 === 0 ? 'lookup' : 'register';
      const result = i % 7 === 0 ? 'error' : 'ok';
      hot.record(v, op, result);
      ref.observe({ op, result }, v);
    });
    expect(await lines(ours)).toEqual(await lines(theirs));
    expect(await ours.metrics()).toMatch(/^x_seconds_bucket\{le="\+Inf",op="register",result="ok"\} \d+$/m);
  });

  it('sums over registries as prom-client metrics do (the SIP threads)', async () => {
    const threads = [0, 1, 2].map(() => ({ ours: new Registry(), theirs: new Registry() }));
    threads.forEach(({ ours, theirs }, t) => {
      const hot = new HotHistogram({ name: 'x_seconds', help: 'h', labelNames: ['outcome'] as const, buckets: BUCKETS, registers: [ours] });
      const ref = new Histogram({ name: 'x_seconds', help: 'h', labelNames: ['outcome'] as const, buckets: BUCKETS, registers: [theirs] });
      const hc = new HotCounter({ name: 'x_total', help: 'h', labelNames: ['outcome'] as const, registers: [ours] });
      const rc = new Counter({ name: 'x_total', help: 'h', labelNames: ['outcome'] as const, registers: [theirs] });
      samples(50 + t * 10).forEach((v, i) => {
        const outcome = i % 2 ? 'reply' : 'challenge';
        hot.record(v, outcome);
        ref.observe({ outcome }, v);
        hc.add(1, outcome);
        rc.inc({ outcome });
      });
    });
    const sum = async (pick: 'ours' | 'theirs') =>
      (await AggregatorRegistry.aggregate(await Promise.all(threads.map((t) => t[pick].getMetricsAsJSON()))).metrics()).split('\n').sort();
    expect(await sum('ours')).toEqual(await sum('theirs'));
  });

  it('refuses a value that is not a finite number', () => {
    const hot = new HotHistogram({ name: 'x_seconds', help: 'h', labelNames: [], buckets: BUCKETS, registers: [] });
    expect(() => hot.record(Number.NaN)).toThrow(/finite/);
    expect(() => hot.record(Number.POSITIVE_INFINITY)).toThrow(/finite/);
  });

  it('refuses more than three labels', () => {
    expect(() => new HotCounter({ name: 'x', help: 'h', labelNames: ['a', 'b', 'c', 'd'] as const, registers: [] })).toThrow(/at most three/);
  });
});
