import { ResponseRing } from '../../../sip/response-ring';

/** A response of `n` bytes that says which it is. */
const bytes = (i: number, n: number): Buffer => Buffer.from(`#${i};`.padEnd(n, String.fromCharCode(97 + (i % 26))));

describe('ResponseRing', () => {
  test('what is put comes back byte for byte, as a copy a later put cannot change', () => {
    const ring = new ResponseRing(64);
    const all = Buffer.from(Array.from({ length: 40 }, (_, i) => 255 - i));
    const at = ring.put(all);
    expect(at).toBe(0);
    const back = ring.copy(at, all.length);
    expect(back.equals(all)).toBe(true);
    ring.release(at, all.length);
    ring.put(Buffer.alloc(40, 0));
    expect(back.equals(all)).toBe(true);
  });

  test('full: -1 until the oldest is let go; the responses wrap at the end of the block', () => {
    const ring = new ResponseRing(100);
    const kept: Array<{ i: number; at: number; n: number }> = [];
    for (let i = 0; i < 3; i++) kept.push({ i, at: ring.put(bytes(i, 30)), n: 30 });
    expect(kept.map((k) => k.at)).toEqual([0, 30, 60]);
    expect(ring.put(bytes(3, 30))).toBe(-1); // 10 bytes left at the end, none at the start
    const oldest = kept.shift()!;
    ring.release(oldest.at, oldest.n);
    const at = ring.put(bytes(3, 30)); // wraps to where the oldest was
    expect(at).toBe(0);
    kept.push({ i: 3, at, n: 30 });
    expect(ring.put(bytes(4, 5))).toBe(-1); // from the head (30) to the tail (30): nothing
    for (const k of kept) expect(ring.copy(k.at, k.n).equals(bytes(k.i, k.n))).toBe(true);
    expect(ring.size).toBe(3);
  });

  test('in a long run of puts and releases in order, every kept response is intact and the block is never overrun', () => {
    const ring = new ResponseRing(4096);
    const kept: Array<{ i: number; at: number; n: number }> = [];
    let seed = 7;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    for (let i = 0; i < 20_000; i++) {
      const n = 1 + Math.floor(random() * 700);
      const b = bytes(i, n);
      let at: number;
      while ((at = ring.put(b)) < 0) {
        const oldest = kept.shift();
        expect(oldest).toBeDefined(); // a response no larger than the block always finds room once the ring is empty
        ring.release(oldest!.at, oldest!.n);
      }
      expect(at + n).toBeLessThanOrEqual(4096);
      kept.push({ i, at, n });
      if (random() < 0.3 && kept.length > 0) {
        const oldest = kept.shift()!;
        ring.release(oldest.at, oldest.n);
      }
      if (i % 997 === 0) for (const k of kept) expect(ring.copy(k.at, k.n).equals(bytes(k.i, k.n))).toBe(true);
    }
    for (const k of kept) expect(ring.copy(k.at, k.n).equals(bytes(k.i, k.n))).toBe(true);
    expect(ring.size).toBe(kept.length);
  });

  test('a few responses kept at a time stay near the start of the block, however many pass through it', () => {
    const ring = new ResponseRing(1024 * 1024);
    const kept: Array<{ at: number; n: number }> = [];
    let end = 0;
    for (let i = 0; i < 10_000; i++) {
      const n = 400 + (i % 7) * 50;
      const at = ring.put(bytes(i, n));
      kept.push({ at, n });
      end = Math.max(end, at + n);
      if (kept.length > 3) {
        const oldest = kept.shift()!;
        ring.release(oldest.at, oldest.n);
      }
    }
    // 4 responses of at most 700 bytes kept at once: the head never went far (10,000 in a row would reach 5.5 MB)
    expect(end).toBeLessThanOrEqual(8 * 700);
  });

  test('a response larger than the block is refused; a bad capacity is an error naming it', () => {
    expect(new ResponseRing(10).put(Buffer.alloc(11))).toBe(-1);
    expect(() => new ResponseRing(0)).toThrow(/positive whole capacity, not 0/);
    expect(() => new ResponseRing(1.5)).toThrow(/not 1.5/);
  });
});
