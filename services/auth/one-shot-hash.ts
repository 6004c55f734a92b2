/**
 * One hash of one input in one call. crypto.hash (Node ≥ 20.12) needs no Hash object, which costs
 * more than hashing the few dozen bytes of a digest or a nonce; on an older Node 20, createHash.
 * Used by the digest computations (digest.ts) and the nonce's MAC (nonce.ts).
 */
import * as crypto from 'node:crypto';
import { createHash } from 'node:crypto';

type OneShot = { (alg: string, data: string, enc: 'hex'): string; (alg: string, data: Buffer, enc: 'buffer'): Buffer };
const oneShot = (crypto as { hash?: OneShot }).hash;

/** Lowercase hex of the hash of a string's UTF-8. */
export const hashHex: (alg: string, data: string) => string = oneShot
  ? (alg, data) => oneShot(alg, data, 'hex')
  : (alg, data) => createHash(alg).update(data, 'utf8').digest('hex');

/** The hash of some bytes. */
export const hashBytes: (alg: string, data: Buffer) => Buffer = oneShot
  ? (alg, data) => oneShot(alg, data, 'buffer')
  : (alg, data) => createHash(alg).update(data).digest();
