/**
 * Stateless nonces: any instance sharing the secret can check a nonce another issued, and no
 * nonce table is needed to reject forged or expired ones.
 *
 *   nonce = base64url( issueTimeMs (8 bytes, big-endian) || random (9 bytes)
 *                      || HMAC-SHA256(secret, issueTimeMs || random || realm)[0..16) )
 *
 * The random part makes every challenge's nonce unique, so two UAs challenged in the same
 * millisecond never share a nonce (and its nonce-count). Binding the realm into the MAC stops a
 * nonce issued for one domain from being used in another.
 * 128 bits of MAC are ample against forgery within a nonce's lifetime.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export type NonceStatus = 'valid' | 'expired' | 'invalid';

const TIME_BYTES = 8;
const RANDOM_BYTES = 9;
const MAC_BYTES = 16;
const HEAD_BYTES = TIME_BYTES + RANDOM_BYTES;
/** 33 bytes are exactly 44 base64url characters without padding. */
const NONCE_RE = /^[A-Za-z0-9_-]{44}$/;

export const DEFAULT_NONCE_LIFETIME_SEC = 300;
/** Tolerated clock difference between instances: a nonce "from the future" beyond it is forged. */
export const DEFAULT_MAX_SKEW_MS = 5000;

export interface NonceOptions {
  lifetimeSec?: number;
  maxSkewMs?: number;
}

export class StatelessNonces {
  readonly lifetimeMs: number;
  private readonly maxSkewMs: number;

  constructor(private readonly secret: Buffer, opts: NonceOptions = {}) {
    if (secret.length === 0) throw new Error('nonce secret must not be empty');
    const lifetimeSec = opts.lifetimeSec ?? DEFAULT_NONCE_LIFETIME_SEC;
    if (!(lifetimeSec > 0) || !Number.isFinite(lifetimeSec)) throw new Error('nonce lifetime must be a positive number of seconds');
    this.lifetimeMs = lifetimeSec * 1000;
    this.maxSkewMs = opts.maxSkewMs ?? DEFAULT_MAX_SKEW_MS;
  }

  issue(realm: string, now: number): string {
    const head = Buffer.alloc(HEAD_BYTES);
    head.writeBigUInt64BE(BigInt(Math.max(0, Math.floor(now))));
    randomBytes(RANDOM_BYTES).copy(head, TIME_BYTES);
    return Buffer.concat([head, this.mac(head, realm)]).toString('base64url');
  }

  check(nonce: string, realm: string, now: number): NonceStatus {
    const issuedAt = this.authenticIssueTime(nonce, realm);
    if (issuedAt === null) return 'invalid';
    if (issuedAt > now + this.maxSkewMs) return 'invalid';
    return now - issuedAt > this.lifetimeMs ? 'expired' : 'valid';
  }

  /** Issue time (ms) of a well-formed nonce, without checking its MAC (use after check()). */
  issuedAt(nonce: string): number | null {
    const raw = decode(nonce);
    return raw ? Number(raw.readBigUInt64BE(0)) : null;
  }

  /** When the nonce stops being valid (ms). */
  expiresAt(nonce: string): number | null {
    const t = this.issuedAt(nonce);
    return t === null ? null : t + this.lifetimeMs;
  }

  private authenticIssueTime(nonce: string, realm: string): number | null {
    const raw = decode(nonce);
    if (!raw) return null;
    const head = raw.subarray(0, HEAD_BYTES);
    if (!timingSafeEqual(raw.subarray(HEAD_BYTES), this.mac(head, realm))) return null;
    return Number(head.readBigUInt64BE(0));
  }

  private mac(head: Buffer, realm: string): Buffer {
    return createHmac('sha256', this.secret).update(head).update(realm, 'utf8').digest().subarray(0, MAC_BYTES);
  }
}

function decode(nonce: unknown): Buffer | null {
  if (typeof nonce !== 'string' || !NONCE_RE.test(nonce)) return null;
  // 33 bytes are exactly 44 base64url characters with no padding bits, so each nonce has a single
  // spelling (which matters: the nonce-count table is keyed by the string).
  return Buffer.from(nonce, 'base64url');
}
