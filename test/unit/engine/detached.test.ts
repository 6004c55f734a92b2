/**
 * Strings kept long (transaction and loop-guard keys, stored bindings) must not keep the message
 * they were cut from alive. Measured on the heap: 200 messages of 256 KiB each, one short piece of
 * each kept; the control (plain slices and concatenations) retains the messages, the detached forms
 * do not.
 */
import v8 from 'node:v8';
import vm from 'node:vm';
import { detached, flattened } from '../../../engine/detached';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

const N = 200;
const SIZE = 256 * 1024;

/** Heap growth (MB) while `keep` holds one piece of each of N large messages. */
function retainedMb(piece: (message: string, i: number) => string): number {
  gc();
  const before = process.memoryUsage().heapUsed;
  const kept: string[] = [];
  for (let i = 0; i < N; i++) {
    const message = `${i}|`.padEnd(SIZE, 'x') + `;branch=z9hG4bK-${i}-0123456789abcdef`;
    kept.push(piece(message, i));
  }
  gc();
  const grown = (process.memoryUsage().heapUsed - before) / 1e6;
  expect(kept).toHaveLength(N);
  return grown;
}

const cut = (m: string) => m.slice(m.length - 30);

test('a plain slice or concatenation keeps its whole message (the control)', () => {
  expect(retainedMb((m) => cut(m))).toBeGreaterThan(N * SIZE / 2e6);
  expect(retainedMb((m, i) => cut(m) + '\x00' + i + '\x00' + cut(m))).toBeGreaterThan(N * SIZE / 2e6);
});

test('detached() keeps only its own characters', () => {
  expect(retainedMb((m) => detached(cut(m)))).toBeLessThan(5);
  expect(detached('z9hG4bK-1-0123456789abcdef')).toBe('z9hG4bK-1-0123456789abcdef');
  expect(detached('')).toBe('');
});

test('flattened() lets the parts of a concatenated key go', () => {
  expect(retainedMb((m, i) => flattened(cut(m) + '\x00' + i + '\x00' + cut(m)))).toBeLessThan(5);
  const k = flattened('a' + '\x00' + 'b');
  expect(k).toBe('a\x00b');
});
