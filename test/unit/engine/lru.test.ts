import { growingLru } from '../../../engine/lru';

describe('growingLru (engine/lru.ts)', () => {
  it('holds at most max entries, least recently used evicted first', () => {
    const c = growingLru<string, number>(3);
    c.set('a', 1).set('b', 2).set('c', 3);
    expect(c.get('a')).toBe(1); // a is now the most recent
    c.set('d', 4);
    expect(c.size).toBe(3);
    expect(c.has('b')).toBe(false);
    expect([...c.keys()].sort()).toEqual(['a', 'c', 'd']);
  });

  it('allocates no index for max up front (lru-cache given max does)', () => {
    const c = growingLru<string, number>(1_000_000);
    expect(c.max).toBe(0); // lru-cache's fixed-size index is only built from `max`
    expect(c.maxSize).toBe(1_000_000);
    for (let i = 0; i < 10; i++) c.set(`k${i}`, i);
    expect(c.size).toBe(10);
    expect(c.calculatedSize).toBe(10);
  });

  it('keeps per-entry TTLs', () => {
    let now = 1000;
    const c = growingLru<string, number>(10, { ttl: 100, ttlResolution: 0, perf: { now: () => now } });
    c.set('x', 1);
    now += 50;
    expect(c.get('x')).toBe(1);
    now += 60;
    expect(c.get('x')).toBeUndefined();
  });

  it('refuses a bound below one entry', () => {
    expect(() => growingLru(0)).toThrow(/at least one entry/);
  });
});
