/**
 * services/accounting/writer.ts maxBusyShare: a sink that runs on the writer's thread (the
 * embedded PGlite) takes at most its share of the thread's idle time: after a batch that took t,
 * the next starts once the thread has been idle t × (1/share − 1) (so no sooner than that, and
 * not while the thread is kept busy); what cannot be written meanwhile waits in the
 * bounded backlog and beyond it is dropped and counted; close() writes the rest without pauses.
 * Only lower bounds on gaps are asserted (a timer never fires early), never an upper one.
 */
import { CdrWriter, type CdrSink } from '../../../services/accounting/writer';

/** A sink whose write takes `ms` and which notes when each batch started and ended. */
function slowSink(ms: number) {
  const spans: Array<{ start: number; end: number; size: number }> = [];
  const sink: CdrSink<number> = {
    name: 'slow',
    async write(batch) {
      const start = performance.now();
      await new Promise((r) => setTimeout(r, ms));
      spans.push({ start, end: performance.now(), size: batch.length });
    },
  };
  return { sink, spans };
}

test('share 0.25: after each batch the writer pauses three times as long as the batch took', async () => {
  const { sink, spans } = slowSink(20);
  const writer = new CdrWriter<number>([sink], { batchSize: 2, flushMs: 1, backlogMax: 100, maxBusyShare: 0.25 });
  for (let i = 0; i < 6; i++) writer.accept(i);
  await writer.idle();
  expect(spans.map((s) => s.size)).toEqual([2, 2, 2]);
  for (let i = 1; i < spans.length; i++) {
    const took = spans[i - 1].end - spans[i - 1].start;
    // the pause is measured from the writer's side (it includes the await around the write): at least 3 × the sink's own time, less a millisecond of timer slack
    expect(spans[i].start - spans[i - 1].end).toBeGreaterThanOrEqual(3 * took - 1);
  }
  await writer.close();
});

test('the pause counts idle time only: while the thread is kept busy, the next batch waits', async () => {
  const { sink, spans } = slowSink(20);
  const writer = new CdrWriter<number>([sink], { batchSize: 1, flushMs: 1, backlogMax: 100, maxBusyShare: 0.5 });
  writer.accept(1);
  writer.accept(2);
  while (spans.length === 0) await new Promise((r) => setTimeout(r, 1));
  // 300 ms of work in 20 ms slices, the event loop turning (timers fire) but never waiting between them
  const busyUntil = performance.now() + 300;
  while (performance.now() < busyUntil) {
    const end = performance.now() + 20;
    while (performance.now() < end);
    await new Promise((r) => setImmediate(r));
  }
  expect(spans).toHaveLength(1);
  await writer.idle();
  // the second batch needed about 20 ms of idle time: it came only after the busy spell (paced by wall time it would have started inside it)
  expect(spans[1].start).toBeGreaterThanOrEqual(busyUntil);
  await writer.close();
});

test('while it pauses, the backlog fills and then drops (counted); close() writes the rest at once', async () => {
  const { sink, spans } = slowSink(10);
  const dropped: string[] = [];
  const writer = new CdrWriter<number>([sink], { batchSize: 1, flushMs: 1, backlogMax: 3, maxBusyShare: 0.1, onOverflow: (s) => dropped.push(s) });
  for (let i = 0; i < 10; i++) writer.accept(i);
  // 3 kept (the first batch is among them until written), 7 dropped at once
  expect(dropped).toHaveLength(7);
  expect(writer.dropped()).toEqual({ slow: 7 });
  await writer.close();
  expect(spans.map((s) => s.size).reduce((a, b) => a + b, 0)).toBe(3);
});

test('control: share 1 (the default) writes batch after batch without a pause of that size', async () => {
  const { sink, spans } = slowSink(20);
  const writer = new CdrWriter<number>([sink], { batchSize: 2, flushMs: 1, backlogMax: 100 });
  for (let i = 0; i < 6; i++) writer.accept(i);
  await writer.idle();
  expect(spans).toHaveLength(3);
  // the pacing above would leave 60 ms between batches; without it the gaps are what a few awaits take
  const gaps = spans.slice(1).map((s, i) => s.start - spans[i].end);
  expect(Math.min(...gaps)).toBeLessThan(50);
  await writer.close();
});
