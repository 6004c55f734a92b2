/**
 * Stateless nonces: any instance sharing the secret can check a nonce another issued, and no
 * nonce table is needed to reject forged or expired ones.
 *
 *   nonce = base64url( issueTimeMs (8 bytes, big-endian) || HMAC-SHA256(secret, issueTimeMs || realm)[0..16) )
 *
 * Binding the realm into the MAC stops a nonce issued for one domain from being used in another.
 * 128 bits of MAC are ample against forgery within a nonce's lifetime.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export type NonceStatus = 'valid' | 'expired' | 'invalid';

const TIME_BYTES = 8;
const MAC_BYTES = 16;
/** 24 bytes of base64url without padding. */
const NONCE_RE = /^[A-Za-z0-9_-]{32}$/;

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
    const time = Buffer.alloc(TIME_BYTES);
    time.writeBigUInt64BE(BigInt(Math.max(0, Math.floor(now))));
    return Buffer.concat([time, this.mac(time, realm)]).toString('base64url');
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
    const time = raw.subarray(0, TIME_BYTES);
    if (!timingSafeEqual(raw.subarray(TIME_BYTES), this.mac(time, realm))) return null;
    return Number(time.readBigUInt64BE(0));
  }

  private mac(time: Buffer, realm: string): Buffer {
    return createHmac('sha256', this.secret).update(time).update(realm, 'utf8').digest().subarray(0, MAC_BYTES);
  }
}

function decode(nonce: unknown): Buffer | null {
  if (typeof nonce !== 'string' || !NONCE_RE.test(nonce)) return null;
  // 24 bytes are exactly 32 base64url characters with no padding bits, so each nonce has a single
  // spelling (which matters: the nonce-count table is keyed by the string).
  return Buffer.from(nonce, 'base64url');
}
