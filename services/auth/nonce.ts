/**
 * Stateless nonces: any instance sharing the secret can check a nonce another issued, and no
 * nonce table is needed to reject forged or expired ones.
 *
 *   nonce = base64url( issueTimeMs (8 bytes, big-endian) || unique (9 bytes)
 *                      || HMAC-SHA256(secret, issueTimeMs || unique || realm)[0..16) )
 *
 * The unique part (a random draw per issuer — each SIP thread has its own — and a counter) makes
 * every challenge's nonce unique, so two UAs challenged in the same millisecond never share a nonce
 * (and its nonce-count). Binding the realm into the MAC stops a nonce issued for one domain from
 * being used in another.
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
  private prefix: Buffer | null = null;
  private counter = 0;

  constructor(private readonly secret: Buffer, opts: NonceOptions = {}) {
    if (secret.length === 0) throw new Error('nonce secret must not be empty');
    const lifetimeSec = opts.lifetimeSec ?? DEFAULT_NONCE_LIFETIME_SEC;
    if (!(lifetimeSec > 0) || !Number.isFinite(lifetimeSec)) throw new Error('nonce lifetime must be a positive number of seconds');
    this.lifetimeMs = lifetimeSec * 1000;
    this.maxSkewMs = opts.maxSkewMs ?? DEFAULT_MAX_SKEW_MS;
  }

  issue(realm: string, now: number): string {
    const raw = Buffer.allocUnsafe(HEAD_BYTES + MAC_BYTES);
    const t = Math.max(0, Math.floor(now));
    // 8-byte big-endian ms without a BigInt: high and low 32-bit words
    raw.writeUInt32BE(Math.floor(t / 0x100000000), 0);
    raw.writeUInt32BE(t >>> 0, 4);
    this.unique(raw);
    this.mac(raw.subarray(0, HEAD_BYTES), realm).copy(raw, HEAD_BYTES, 0, MAC_BYTES);
    return raw.toString('base64url');
  }

  /**
   * The 9 "random" bytes: 5 random bytes drawn per issuer (redrawn every 2^32 nonces) and a
   * 32-bit counter. Every nonce an issuer hands out differs from its others, and two issuers
   * (threads, processes, instances) collide only if their 40-bit draws do; without a CSPRNG call per challenge. Unpredictability
   * is not needed here: the MAC makes nonces unforgeable, this part only makes them unique.
   */
  private unique(raw: Buffer): void {
    if (this.counter === 0xffffffff || this.prefix === null) {
      this.prefix = randomBytes(RANDOM_BYTES - 4);
      this.counter = 0;
    }
    this.prefix.copy(raw, TIME_BYTES);
    raw.writeUInt32BE(++this.counter, TIME_BYTES + RANDOM_BYTES - 4);
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
    return raw ? StatelessNonces.timeOf(raw) : null;
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
    return StatelessNonces.timeOf(head);
  }

  private mac(head: Buffer, realm: string): Buffer {
    return createHmac('sha256', this.secret).update(head).update(realm, 'utf8').digest().subarray(0, MAC_BYTES);
  }

  /** Issue time of a well-formed nonce (first 8 bytes, big-endian ms). */
  static timeOf(raw: Buffer): number {
    return raw.readUInt32BE(0) * 0x100000000 + raw.readUInt32BE(4);
  }
}

function decode(nonce: unknown): Buffer | null {
  if (typeof nonce !== 'string' || !NONCE_RE.test(nonce)) return null;
  // 33 bytes are exactly 44 base64url characters with no padding bits, so each nonce has a single
  // spelling (which matters: the nonce-count table is keyed by the string).
  return Buffer.from(nonce, 'base64url');
}
