import { LoopGuard } from '../../../sip/loop-guard';

describe('LoopGuard', () => {
  test('more than N occurrences of the same calling/called/call-id in the window → loop', () => {
    const g = new LoopGuard({ maxPerCallId: 3, windowSec: 5 });
    const t = 1_000_000;
    expect([1, 2, 3, 4].map((i) => g.check('alice', 'bob', 'c1', t + i))).toEqual([false, false, false, true]);
    // another call-id is counted apart
    expect(g.check('alice', 'bob', 'c2', t + 5)).toBe(false);
    // a new window starts after windowSec
    expect(g.check('alice', 'bob', 'c1', t + 5001)).toBe(false);
    g.close();
  });

  test('defaults allow the three-pass authentication and retransmission-free repeats (10 in 5 s)', () => {
    const g = new LoopGuard();
    const r = Array.from({ length: 11 }, (_, i) => g.check('a', 'b', 'x', 1000 + i));
    expect(r.slice(0, 10).every((x) => !x)).toBe(true);
    expect(r[10]).toBe(true);
    g.close();
  });

  test('calling/called guard (any call-id) when enabled; 0 disables the call-id guard', () => {
    const g = new LoopGuard({ maxPerCallId: 0, maxPerCallingCalled: 2 });
    expect([g.check('a', 'b', '1', 1), g.check('a', 'b', '2', 2), g.check('a', 'b', '3', 3)]).toEqual([false, false, true]);
    g.close();
  });

  test('memory is bounded by maxKeys', () => {
    const g = new LoopGuard({ maxKeys: 100 });
    for (let i = 0; i < 1000; i++) g.check('a', 'b', String(i), 1);
    expect(g.tracked).toBeLessThanOrEqual(100);
    g.close();
  });

  test('past maxKeys the oldest window goes first; a key counted again in its window keeps its place', () => {
    const g = new LoopGuard({ maxPerCallId: 1, maxKeys: 3 });
    const hit = (k: string) => g.check('a', 'b', k, 1000);
    expect(['1', '2', '3'].map(hit)).toEqual([false, false, false]);
    expect(hit('4')).toBe(false); // 1 dropped
    expect(hit('3')).toBe(true); // 3 kept its count
    expect(hit('1')).toBe(false); // counted afresh; 2 dropped
    expect(hit('4')).toBe(true);
    expect(hit('2')).toBe(false);
    expect(g.tracked).toBe(3);
    g.close();
  });

  test('the sweep drops the windows that ended, oldest first, and keeps the running ones', () => {
    jest.useFakeTimers({ now: 100_000 });
    try {
      const g = new LoopGuard({ windowSec: 5 });
      g.check('a', 'b', 'old-1', 90_000);
      g.check('a', 'b', 'old-2', 94_000);
      g.check('a', 'b', 'running', 99_000);
      expect(g.tracked).toBe(3);
      jest.advanceTimersByTime(1000); // sweep at 101 000: windows started before 96 000 ended
      expect(g.tracked).toBe(1);
      expect(g.check('a', 'b', 'running', 101_000)).toBe(false);
      g.close();
    } finally {
      jest.useRealTimers();
    }
  });
});
