import { Registry } from 'prom-client';
import { createMetrics } from '../../server/metrics';
import { registerThreadMetrics, type ThreadMetrics } from '../../server/sip-threads/thread-metrics';

type Json = Array<{ name: string; values: Array<{ value: number; labels: Record<string, string | number> }> }>;

const started: ThreadMetrics[] = [];
afterAll(() => started.forEach((t) => t.stop()));

function threadRegistry(thread: number): Registry {
  const registry = new Registry();
  started.push(registerThreadMetrics(registry, thread, { resolutionMs: 10 }));
  return registry;
}

const series = (json: Json, name: string) => json.find((m) => m.name === name)?.values ?? [];

describe('SIP thread metrics (server/sip-threads/thread-metrics.ts)', () => {
  test('memory gauges of the thread, labelled with its index; the heap grows with what the thread holds', async () => {
    const registry = threadRegistry(3);
    const before = series((await registry.getMetricsAsJSON()) as Json, 'sipflow_sip_threads_array_buffers_bytes')[0];
    expect(before.labels).toEqual({ thread: '3' });
    const held = Buffer.alloc(16 * 1024 * 1024, 1);
    const json = (await registry.getMetricsAsJSON()) as Json;
    const after = series(json, 'sipflow_sip_threads_array_buffers_bytes')[0];
    expect(after.value - before.value).toBeGreaterThanOrEqual(held.byteLength);
    for (const name of ['sipflow_sip_threads_heap_used_bytes', 'sipflow_sip_threads_heap_total_bytes', 'sipflow_sip_threads_external_bytes']) {
      const [v] = series(json, name);
      expect(v.labels).toEqual({ thread: '3' });
      expect(v.value).toBeGreaterThan(1024 * 1024);
    }
    expect(series(json, 'sipflow_sip_threads_heap_total_bytes')[0].value).toBeGreaterThanOrEqual(series(json, 'sipflow_sip_threads_heap_used_bytes')[0].value);
    expect(held[0]).toBe(1);
  });

  test('event-loop delay: a blocked loop shows in the maximum, and the next scrape starts afresh', async () => {
    const registry = threadRegistry(0);
    await registry.getMetricsAsJSON(); // resets the histogram
    const until = Date.now() + 150;
    while (Date.now() < until) {
      /* block the loop */
    }
    await new Promise((r) => setTimeout(r, 40));
    const delay = (json: Json) =>
      Object.fromEntries(series(json, 'sipflow_sip_threads_eventloop_delay_seconds').map((v) => [String(v.labels.quantile), v.value]));
    const blocked = delay((await registry.getMetricsAsJSON()) as Json);
    expect(blocked['1']).toBeGreaterThanOrEqual(0.1);
    expect(blocked['0.5']).toBeLessThanOrEqual(blocked['0.99']);
    expect(blocked['0.99']).toBeLessThanOrEqual(blocked['1']);
    await new Promise((r) => setTimeout(r, 60));
    const calm = delay((await registry.getMetricsAsJSON()) as Json);
    expect(calm['1']).toBeLessThan(0.1);
  });

  test('/metrics of the process lists every thread separately (aggregation keeps the thread label)', async () => {
    const metrics = createMetrics({ defaultMetrics: false });
    const a = threadRegistry(0);
    const b = threadRegistry(1);
    metrics.addSource(async () => [await a.getMetricsAsJSON(), await b.getMetricsAsJSON()]);
    const text = await metrics.text();
    const lines = text.split('\n').filter((l) => l.startsWith('sipflow_sip_threads_heap_used_bytes{'));
    expect(lines.map((l) => /thread="(\d+)"/.exec(l)?.[1]).sort()).toEqual(['0', '1']);
    for (const l of lines) expect(Number(l.split(' ')[1])).toBeGreaterThan(0);
  });
});
