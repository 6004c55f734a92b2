import { formatAllocations, summariseAllocations, type SamplingHeapProfileNode } from '../../../bench/sip/alloc-profile';

const frame = (functionName: string, url: string, selfSize: number, children: SamplingHeapProfileNode[] = []): SamplingHeapProfileNode => ({
  callFrame: { functionName, url, lineNumber: 9 },
  selfSize,
  children,
});

describe('bench/sip/alloc-profile.ts: allocations per call from a sampling heap profile', () => {
  const profile = {
    head: frame('(root)', '', 0, [
      frame('onMessage', 'file:///repo/dist/sip/front-end.js', 100, [
        frame('parse', 'file:///repo/dist/sip/parser.js', 3000, [
          frame('slice', 'node:buffer', 500),
          frame('get', 'file:///repo/node_modules/lru-cache/dist/index.js', 200),
        ]),
        frame('slice', 'node:buffer', 1000),
      ]),
      frame('processTimers', 'node:internal/timers', 400),
    ]),
  };

  test('totals, the allocating function, and the nearest frame of sipflow code up the stack', () => {
    const s = summariseAllocations(profile, 10);
    expect(s.bytes).toBe(5200);
    expect(s.byFunction).toEqual([
      ['parse  sip/parser.js:10', 3000],
      ['slice  node:buffer:10', 1500],
      ['processTimers  node:internal/timers:10', 400],
      ['get  npm:lru-cache/dist/index.js:10', 200],
      ['onMessage  sip/front-end.js:10', 100],
    ]);
    expect(s.byOwnFrame).toEqual([
      ['parse  sip/parser.js:10', 3700],
      ['onMessage  sip/front-end.js:10', 1100],
      ['(outside sipflow code)', 400],
    ]);
  });

  test('the printed figures are per call', () => {
    const text = formatAllocations(summariseAllocations(profile, 10), 2);
    expect(text).toContain('over 10 calls: 0.5 KiB per call');
    expect(text).toContain('    300 B/call  parse  sip/parser.js:10');
    expect(text).toContain('    370 B/call  parse  sip/parser.js:10');
    expect(text).not.toContain('onMessage  sip/front-end.js:10\n'); // top 2 of by-function leaves it out
  });

  test('no calls: refused', () => {
    expect(() => summariseAllocations(profile, 0)).toThrow('calls must be a positive number');
  });
});
