/**
 * Strings kept long (transaction and loop-guard keys, stored bindings) must not keep the message
 * they were cut from alive. Measured on the heap of a fresh worker thread (a jest worker's heap
 * holds other suites' garbage, which can be freed in the middle of a measurement): 200 messages of
 * 256 KiB each, one short piece of each kept. The control (plain slices and concatenations)
 * retains the messages; the detached forms do not.
 */
import v8 from 'node:v8';
import { Worker } from 'node:worker_threads';
import { detached, flattened } from '../../../engine/detached';

v8.setFlagsFromString('--expose-gc');

const N = 200;
const SIZE = 256 * 1024;
type Kind = 'slice' | 'concat' | 'detached' | 'flattened';

/** Heap growth (MB) in a fresh thread while one piece of each of N large messages is kept. */
function retainedMb(kind: Kind): Promise<number> {
  const code = `
    const { parentPort, workerData } = require('node:worker_threads');
    const detached = ${detached.toString()};
    const flattened = ${flattened.toString()};
    const { N, SIZE, kind } = workerData;
    const cut = (m) => m.slice(m.length - 30);
    const piece = {
      slice: (m) => cut(m),
      concat: (m, i) => cut(m) + '\\x00' + i + '\\x00' + cut(m),
      detached: (m) => detached(cut(m)),
      flattened: (m, i) => flattened(cut(m) + '\\x00' + i + '\\x00' + cut(m)),
    }[kind];
    gc();
    const before = process.memoryUsage().heapUsed;
    const kept = [];
    for (let i = 0; i < N; i++) kept.push(piece(String(i).padEnd(SIZE, 'x') + ';branch=z9hG4bK-' + i + '-0123456789abcdef', i));
    gc();
    parentPort.postMessage({ mb: (process.memoryUsage().heapUsed - before) / 1e6, kept: kept.length });
  `;
  return new Promise((resolve, reject) => {
    const w = new Worker(code, { eval: true, workerData: { N, SIZE, kind } });
    w.once('message', (m: { mb: number; kept: number }) => {
      expect(m.kept).toBe(N);
      resolve(m.mb);
      void w.terminate();
    });
    w.once('error', reject);
  });
}

const messagesMb = (N * SIZE) / 1e6;

test('a plain slice or concatenation keeps its whole message (the control)', async () => {
  expect(await retainedMb('slice')).toBeGreaterThan(messagesMb / 2);
  expect(await retainedMb('concat')).toBeGreaterThan(messagesMb / 2);
});

test('detached() keeps only its own characters', async () => {
  expect(await retainedMb('detached')).toBeLessThan(5);
  expect(detached('z9hG4bK-1-0123456789abcdef')).toBe('z9hG4bK-1-0123456789abcdef');
  expect(detached('')).toBe('');
});

test('flattened() lets the parts of a concatenated key go', async () => {
  expect(await retainedMb('flattened')).toBeLessThan(5);
  expect(flattened('a' + '\x00' + 'b')).toBe('a\x00b');
});
