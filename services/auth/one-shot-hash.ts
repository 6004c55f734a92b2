/**
 * One hash of one input in one call. crypto.hash (Node ≥ 20.12) needs no Hash object, which costs
 * more than hashing the few dozen bytes of a digest or a nonce; on an older Node 20, createHash.
 * Used by the digest computations (digest.ts) and the nonce's MAC (nonce.ts).
 */
import * as crypto from 'node:crypto';
import { createHash } from 'node:crypto';

type OneShot = (alg: string, data: string | Buffer, enc: 'hex' | 'latin1') => string;
const oneShot = (crypto as { hash?: OneShot }).hash;

/** Lowercase hex of the hash of a string's UTF-8. */
export const hashHex: (alg: string, data: string) => string = oneShot
  ? (alg, data) => oneShot(alg, data, 'hex')
  : (alg, data) => createHash(alg).update(data, 'utf8').digest('hex');

/**
 * The hash of some bytes as a latin1 string: one character per byte of the hash. Not a Buffer:
 * crypto.hash's 'buffer' output makes an ArrayBuffer per call, which cost 1.2 µs against 0.5 for
 * this (node 20, an 80-byte input).
 */
export const hashLatin1: (alg: string, data: Buffer) => string = oneShot
  ? (alg, data) => oneShot(alg, data, 'latin1')
  : (alg, data) => createHash(alg).update(data).digest('binary');
