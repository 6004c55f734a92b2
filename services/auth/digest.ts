/**
 * Digest computations (RFC 7616 §3.4.1-3.4.3; RFC 2069 compatibility when qop is absent).
 * Pure functions: no clock, no state. All strings are hashed as UTF-8 and hashes are lowercase hex.
 */
import { hashHex } from './one-shot-hash';
import type { DigestAlgorithm } from './types';

export const DIGEST_ALGORITHMS: readonly DigestAlgorithm[] = ['MD5', 'MD5-sess', 'SHA-256', 'SHA-256-sess'];

/**
 * Maps an algorithm name as sent to its canonical spelling, or null when unsupported.
 * Matching is case-insensitive because UAs in the field send `md5` as well as `MD5`.
 */
export function normalizeAlgorithm(name: string | undefined): DigestAlgorithm | null {
  if (name === undefined) return 'MD5';
  const lower = name.toLowerCase();
  return DIGEST_ALGORITHMS.find((a) => a.toLowerCase() === lower) ?? null;
}

export const isSess = (alg: DigestAlgorithm): boolean => alg.endsWith('-sess');

/** The node:crypto hash behind an algorithm (the -sess variants use the same hash). */
export const hashName = (alg: DigestAlgorithm): 'md5' | 'sha256' => (alg.startsWith('SHA-256') ? 'sha256' : 'md5');

const H = (alg: DigestAlgorithm, data: string): string => hashHex(hashName(alg), data);

/** HA1 = H(username:realm:password). For -sess algorithms this is the *base* HA1 (see sessHa1). */
export function ha1(alg: DigestAlgorithm, username: string, realm: string, password: string): string {
  return H(alg, `${username}:${realm}:${password}`);
}

/** -sess HA1 = H(H(username:realm:password):nonce:cnonce) (RFC 7616 §3.4.2). */
export function sessHa1(alg: DigestAlgorithm, baseHa1: string, nonce: string, cnonce: string): string {
  return H(alg, `${baseHa1}:${nonce}:${cnonce}`);
}

export interface ResponseInput {
  algorithm: DigestAlgorithm;
  /** The base HA1, H(username:realm:password); the -sess step is applied here when needed. */
  ha1: string;
  nonce: string;
  /** Required with qop (8 hex digits as sent; hashed verbatim). */
  nc?: string;
  /** Required with qop and with -sess algorithms. */
  cnonce?: string;
  qop?: 'auth' | 'auth-int';
  method: string;
  uri: string;
  /** Message body for qop=auth-int (absent = empty body). */
  body?: string;
}

let memoAlg: DigestAlgorithm | null = null;
let memoA2 = '';
let memoHa2 = '';

/**
 * H(method:uri), the last one remembered: a registrar's REGISTERs all send one Request-URI (the
 * domain), so every REGISTER of a call and of every other call has the same HA2, a hash saved per
 * check (one of the three). One entry, so nothing an attacker sends can grow it.
 */
function lastHa2(alg: DigestAlgorithm, a2: string): string {
  if (a2 !== memoA2 || alg !== memoAlg) {
    memoHa2 = H(alg, a2);
    memoA2 = a2;
    memoAlg = alg;
  }
  return memoHa2;
}

/**
 * The request-digest a UA must send. Throws when a required input is missing (callers that
 * verify untrusted credentials check their shape first).
 */
export function computeResponse(r: ResponseInput): string {
  const { algorithm: alg } = r;
  let a1 = r.ha1.toLowerCase();
  if (isSess(alg)) {
    if (r.cnonce === undefined) throw new Error(`${alg} requires a cnonce`);
    a1 = sessHa1(alg, a1, r.nonce, r.cnonce);
  }
  const ha2 = r.qop === 'auth-int' ? H(alg, `${r.method}:${r.uri}:${H(alg, r.body ?? '')}`) : lastHa2(alg, `${r.method}:${r.uri}`);
  if (r.qop === undefined) return H(alg, `${a1}:${r.nonce}:${ha2}`); // RFC 2069 compatibility
  if (r.nc === undefined || r.cnonce === undefined) throw new Error('qop requires nc and cnonce');
  return H(alg, `${a1}:${r.nonce}:${r.nc}:${r.cnonce}:${r.qop}:${ha2}`);
}

/**
 * Constant-time comparison of two hex digests (case-insensitive). Lengths are compared first:
 * the digest length depends only on the algorithm, which is public, so that leaks nothing.
 */
export function responsesEqual(expected: string, received: string): boolean {
  if (expected.length !== received.length) return false;
  // every character compared, A–Z folded to a–z: a hex digest's characters are ASCII, and no other
  // character lowercases to a hex digit, so this is toLowerCase's answer without two copies
  let diff = 0;
  for (let i = 0; i < expected.length; i++) diff |= lowerAscii(expected.charCodeAt(i)) ^ lowerAscii(received.charCodeAt(i));
  return diff === 0;
}

const lowerAscii = (c: number): number => (c >= 0x41 && c <= 0x5a ? c | 0x20 : c);
