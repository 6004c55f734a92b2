import { SlicedQueue } from '../../../server/sip-threads/sliced-queue';

/** Resolves after the turn scheduled now: every setImmediate queued before it has run. */
const nextTurn = () => new Promise<void>((r) => setImmediate(r));
const fail = (e: unknown) => {
  throw e;
};

describe('SlicedQueue: the SIP messages a SIP thread handles in slices', () => {
  test('push only queues: the items are handled in a later turn, in the order pushed', async () => {
    const seen: number[] = [];
    const q = new SlicedQueue<number>((n) => seen.push(n), 5, fail);
    q.push(1);
    q.push(2);
    q.push(3);
    expect(seen).toEqual([]);
    expect(q.size).toBe(3);
    await nextTurn();
    expect(seen).toEqual([1, 2, 3]);
    expect(q.size).toBe(0);
  });

  test('a slice ends after sliceMs; what was scheduled meanwhile (a store reply) runs before the next slice', async () => {
    let clock = 0;
    const log: string[] = [];
    // each item takes 1 ms of the fake clock
    const q = new SlicedQueue<number>(
      (n) => {
        log.push(`item ${n}`);
        clock += 1;
      },
      5,
      fail,
      () => clock,
    );
    for (let i = 1; i <= 20; i++) q.push(i);
    // queued after the first slice was scheduled, as a port's store reply handled between turns
    setImmediate(() => log.push('reply'));
    await nextTurn();
    await nextTurn();
    await nextTurn();
    await nextTurn();
    // the clock is read every 8 items: the first slice ends after 8 (8 ms ≥ 5), then the reply
    expect(log.slice(0, 9)).toEqual(['item 1', 'item 2', 'item 3', 'item 4', 'item 5', 'item 6', 'item 7', 'item 8', 'reply']);
    expect(log.filter((l) => l.startsWith('item'))).toEqual(Array.from({ length: 20 }, (_, i) => `item ${i + 1}`));
    expect(q.size).toBe(0);
  });

  test('a quick handler empties a long queue in one slice', async () => {
    let handled = 0;
    const q = new SlicedQueue<number>(
      () => handled++,
      5,
      fail,
      () => 0,
    );
    for (let i = 0; i < 5000; i++) q.push(i);
    await nextTurn();
    expect(handled).toBe(5000);
  });

  test('pushes during a backlog join its end; every item is handled exactly once', async () => {
    let clock = 0;
    const seen: number[] = [];
    const q = new SlicedQueue<number>(
      (n) => {
        seen.push(n);
        clock += 1;
      },
      2,
      fail,
      () => clock,
    );
    for (let i = 0; i < 3000; i++) q.push(i);
    for (let turn = 0; turn < 10; turn++) {
      q.push(3000 + turn);
      await nextTurn();
    }
    while (q.size > 0) await nextTurn();
    expect(seen).toHaveLength(3010);
    expect(new Set(seen).size).toBe(3010);
    expect(seen.slice(0, 3000)).toEqual(Array.from({ length: 3000 }, (_, i) => i));
  });

  test('a handler that throws costs its item only: onError is told, the next ones are handled', async () => {
    const seen: number[] = [];
    const errors: Array<[string, number]> = [];
    const q = new SlicedQueue<number>(
      (n) => {
        if (n === 2) throw new Error('bug');
        seen.push(n);
      },
      5,
      (e, n) => errors.push([(e as Error).message, n]),
    );
    q.push(1);
    q.push(2);
    q.push(3);
    await nextTurn();
    expect(errors).toEqual([['bug', 2]]);
    expect(seen).toEqual([1, 3]);
    expect(q.size).toBe(0);
  });
});
