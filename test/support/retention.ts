/**
 * Whether a store keeps the memory blocks the bytes it was given were cut from.
 *
 * A serialized SIP message is a slice of Node's 8 KiB Buffer pool: a store that keeps the slice
 * keeps the whole slab (sip/challenge-replies.ts, sip/response-ring.ts). `blocksAlive` cuts `n`
 * pieces, each from the middle of a 64 KiB block of its own, hands each to `keep`, and counts the
 * blocks still alive after a full collection. Weak references to the blocks: what the store kept
 * is what the collector could not free (deterministic, unlike the process's external memory
 * figure, which helper threads lower some time after the collection).
 */
import v8 from 'node:v8';
import vm from 'node:vm';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

const BLOCK = 64 * 1024;

/** `bytes(i)` in the middle of a block of its own, as a slice of a slab would be. */
function cut(bytes: Buffer): Buffer {
  const block = Buffer.allocUnsafeSlow(BLOCK);
  bytes.copy(block, 1000);
  return block.subarray(1000, 1000 + bytes.length);
}

/** Made in a function of its own, so that no block is held by the caller's frame across its await. */
function fill(n: number, bytes: (i: number) => Buffer, keep: (piece: Buffer, i: number) => void): Array<WeakRef<ArrayBufferLike>> {
  const refs: Array<WeakRef<ArrayBufferLike>> = [];
  for (let i = 0; i < n; i++) {
    const piece = cut(bytes(i));
    refs.push(new WeakRef(piece.buffer));
    keep(piece, i);
  }
  return refs;
}

export async function blocksAlive(n: number, bytes: (i: number) => Buffer, keep: (piece: Buffer, i: number) => void): Promise<number> {
  const refs = fill(n, bytes, keep);
  // a WeakRef holds its target until the end of the job that made it
  await new Promise((resolve) => setImmediate(resolve));
  gc();
  return refs.filter((r) => r.deref() !== undefined).length;
}
