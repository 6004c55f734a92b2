/**
 * Stateless nonces: any instance sharing the secret can check a nonce another issued, and no
 * nonce table is needed to reject forged or expired ones.
 *
 *   nonce = base64url( issueTimeMs (8 bytes, big-endian) || clockTag (2) || draw (3) || counter (4)
 *                      || SHA-512/256(key || issueTimeMs || clockTag || draw || counter || realm)[0..16) )
 *
 *   key = SHA-512/256("sipflow nonce key" || 0 || secret)
 *
 * The unique part (a random draw per issuer — each SIP thread has its own — and a counter) makes
 * every challenge's nonce unique, so two UAs challenged in the same millisecond never share a nonce
 * (and its nonce-count). Binding the realm into the MAC stops a nonce issued for one domain from
 * being used in another. 128 bits of MAC are ample against forgery within a nonce's lifetime.
 *
 * The MAC is a keyed hash, not HMAC. HMAC's two passes guard a hash open to length extension
 * (SHA-256: a tag for m gives one for m || padding || x without the key) and keys of any length.
 * Here the key has a fixed length (derived above) and comes first, the head has a fixed length and
 * the realm is the verifier's own; and SHA-512/256 is not open to length extension at all (its
 * output is half its state). One hash in one call (crypto.hash) in place of an HMAC object per
 * challenge and per check: an HMAC cost 6 µs in the SIP path, two per call (docs/performance.md,
 * "The nonce's MAC and the location's crossing"). Nonces of the HMAC-SHA256 MAC of earlier
 * versions (an instance sharing the secret, during a rolling upgrade) are 'expired', not 'invalid':
 * their UAs retry silently with a fresh nonce (stale=true) instead of counting as failed
 * authentications.
 *
 * Lifetime and clock skew. Times are wall-clock ms (Date.now()) of the issuer, compared with the
 * verifier's clock. A nonce is 'valid' for `lifetimeSec` (default 300 s) after its issue time,
 * then 'expired' (answered stale=true when the response is right, so the UA retries with a fresh
 * nonce without asking its user). Instances sharing the secret verify each other's nonces; their
 * clocks may differ by up to `maxSkewMs` (default 5 s): a nonce dated more than that in the
 * verifier's future is 'invalid' (forged or a badly wrong clock: answered like a wrong response),
 * and a peer whose clock lags by d gives its nonces d ms more life here (ahead: d ms less).
 *
 * Boot epoch (replay after a restart). Nonce-counts live in memory (nonce-count.ts), so a process
 * cannot know how often a nonce was used before it started: a REGISTER captured before a restart
 * would be accepted once after it. With `bootEpoch` set (sipflow serve passes the time the process
 * started, the same to every SIP thread), a nonce issued before it is 'predates-boot' — answered
 * like an expired one (stale=true with the right response, a plain challenge otherwise) — so only
 * nonces whose every use this process has seen are accepted. How much before counts:
 * - a nonce dated by this machine's clock (the clockTag names the clock: the kernel's boot id —
 *   one clock for every process and container of a Linux kernel — else the host name) must be
 *   issued at or after the boot epoch, exactly: the process that ran before a restart on this
 *   machine issued every nonce it ever did before we started, however fast the restart;
 * - a nonce from another machine (same secret, its own clock) is accepted when issued at or after
 *   bootEpoch − maxSkewMs, so a peer whose clock lags ours does not see its fresh nonces refused
 *   just after we started. A restart that moves the instance to another machine within maxSkewMs
 *   leaves that one window; the clock tag is 16 bits, so one foreign machine in 65 536 is taken for
 *   this one (its nonces then get the exact rule: at worst a stale round trip after our start).
 * If the wall clock steps back before the boot epoch (NTP at boot), the epoch follows it down
 * (the earliest time this issuer has seen), so this process's own nonces never look older than
 * its start: the window reopens by the size of the step, instead of every nonce turning stale.
 * Without `bootEpoch` (the CLI's one-shot `run`, tests) there is no such check.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { hashLatin1 } from './one-shot-hash';

/** 'predates-boot': authentic, within its lifetime, but issued before this process's boot epoch. */
export type NonceStatus = 'valid' | 'expired' | 'predates-boot' | 'invalid';

const TIME_BYTES = 8;
const CLOCK_TAG_BYTES = 2;
/** clockTag + draw + counter */
const RANDOM_BYTES = 9;
const DRAW_BYTES = RANDOM_BYTES - CLOCK_TAG_BYTES - 4;
const MAC_BYTES = 16;
const HEAD_BYTES = TIME_BYTES + RANDOM_BYTES;
const MAC_HASH = 'sha512-256';
const KEY_BYTES = 32;
/** Realms up to this many UTF-8 bytes are hashed from the issuer's scratch buffer; longer ones from a buffer of their own. */
const SCRATCH_REALM_BYTES = 128;
/** 33 bytes are exactly 44 base64url characters without padding. */
const NONCE_RE = /^[A-Za-z0-9_-]{44}$/;

export const DEFAULT_NONCE_LIFETIME_SEC = 300;
/** Tolerated clock difference between instances: a nonce "from the future" beyond it is forged. */
export const DEFAULT_MAX_SKEW_MS = 5000;

export interface NonceOptions {
  lifetimeSec?: number;
  maxSkewMs?: number;
  /**
   * Time (ms) this process started: nonces issued before it are 'predates-boot' (see above). Every
   * SIP thread of a process must get the same value. Absent: no boot check.
   */
  bootEpoch?: number;
  /**
   * Names the clock that dates this issuer's nonces (default: the kernel's boot id, else the host
   * name). Only tests set it, to play another machine.
   */
  clockDomain?: string;
}

let localDomain: string | undefined;
/** This machine's clock: the Linux kernel boot id (shared by its processes and containers), else the host name. */
export function localClockDomain(): string {
  if (localDomain === undefined) {
    let id = '';
    try {
      id = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    } catch {
      /* not Linux */
    }
    localDomain = id ? `boot-id:${id}` : `host:${hostname()}`;
  }
  return localDomain;
}

/** The 2-byte tag of a clock domain carried in the nonces. */
export function clockTagOf(domain: string): Buffer {
  return createHash('sha256').update('sipflow nonce clock\0').update(domain, 'utf8').digest().subarray(0, CLOCK_TAG_BYTES);
}

export class StatelessNonces {
  readonly lifetimeMs: number;
  readonly maxSkewMs: number;
  private readonly clockTag: Buffer;
  /** The boot epoch, lowered to the earliest time seen if the clock steps back before it; NaN = no boot check. */
  private boot: number;
  private prefix: Buffer | null = null;
  private counter = 0;
  /** key || head || realm, rewritten per MAC: the key stays in its first KEY_BYTES. */
  private readonly scratch: Buffer;
  /** The realm of the last MAC and its UTF-8 length (one realm per issuer, as a rule; never a table an attacker could grow). */
  private lastRealm = '';
  private lastRealmBytes = 0;

  constructor(
    private readonly secret: Buffer,
    opts: NonceOptions = {},
  ) {
    if (secret.length === 0) throw new Error('nonce secret must not be empty');
    this.scratch = Buffer.alloc(KEY_BYTES + HEAD_BYTES + SCRATCH_REALM_BYTES);
    createHash(MAC_HASH).update('sipflow nonce key\0').update(secret).digest().copy(this.scratch, 0, 0, KEY_BYTES);
    const lifetimeSec = opts.lifetimeSec ?? DEFAULT_NONCE_LIFETIME_SEC;
    if (!(lifetimeSec > 0) || !Number.isFinite(lifetimeSec)) throw new Error('nonce lifetime must be a positive number of seconds');
    this.lifetimeMs = lifetimeSec * 1000;
    this.maxSkewMs = opts.maxSkewMs ?? DEFAULT_MAX_SKEW_MS;
    if (!(this.maxSkewMs >= 0) || !Number.isFinite(this.maxSkewMs)) throw new Error('maximum clock skew must be a non-negative number of ms');
    if (opts.bootEpoch !== undefined && !Number.isFinite(opts.bootEpoch)) throw new Error('boot epoch must be a time in ms');
    this.boot = opts.bootEpoch ?? NaN;
    this.clockTag = clockTagOf(opts.clockDomain ?? localClockDomain());
  }

  /** The boot epoch in force (ms), or null without a boot check. */
  get bootEpoch(): number | null {
    return Number.isNaN(this.boot) ? null : this.boot;
  }

  issue(realm: string, now: number): string {
    const raw = Buffer.allocUnsafe(HEAD_BYTES + MAC_BYTES);
    const t = Math.max(0, Math.floor(now));
    if (t < this.boot) this.boot = t; // the clock stepped back before our start: our own nonces stay acceptable
    // 8-byte big-endian ms without a BigInt: high and low 32-bit words
    raw.writeUInt32BE(Math.floor(t / 0x100000000), 0);
    raw.writeUInt32BE(t >>> 0, 4);
    this.unique(raw);
    raw.write(this.mac(raw.subarray(0, HEAD_BYTES), realm), HEAD_BYTES, MAC_BYTES, 'latin1');
    return raw.toString('base64url');
  }

  /**
   * The 9 "unique" bytes: the clock tag, 3 random bytes drawn per issuer (redrawn every 2^32
   * nonces) and a 32-bit counter. Every nonce an issuer hands out differs from its others, and two
   * issuers (threads, processes, instances) of one clock collide only if their 24-bit draws do,
   * without a CSPRNG call per challenge. Unpredictability is not needed here: the MAC makes nonces
   * unforgeable, this part only makes them unique (and a collision costs nothing but a shared
   * nonce-count between two UAs of the same username: at worst a re-challenge).
   */
  private unique(raw: Buffer): void {
    if (this.counter === 0xffffffff || this.prefix === null) {
      this.prefix = Buffer.concat([this.clockTag, randomBytes(DRAW_BYTES)]);
      this.counter = 0;
    }
    this.prefix.copy(raw, TIME_BYTES);
    raw.writeUInt32BE(++this.counter, TIME_BYTES + RANDOM_BYTES - 4);
  }

  check(nonce: string, realm: string, now: number): NonceStatus {
    const raw = decode(nonce);
    if (!raw) return 'invalid';
    const head = raw.subarray(0, HEAD_BYTES);
    if (!macEqual(raw, this.mac(head, realm))) {
      // an earlier version's nonce (HMAC-SHA256, same secret): authentic but to be replaced
      return timingSafeEqual(raw.subarray(HEAD_BYTES), this.hmacOfEarlierVersions(head, realm)) ? 'expired' : 'invalid';
    }
    const issuedAt = StatelessNonces.timeOf(head);
    if (issuedAt > now + this.maxSkewMs) return 'invalid';
    if (now - issuedAt > this.lifetimeMs) return 'expired';
    if (now < this.boot) this.boot = now; // the clock stepped back before our start (see above)
    // Same clock: exactly at or after our start; another machine's: within the tolerated skew.
    const sameClock = head[TIME_BYTES] === this.clockTag[0] && head[TIME_BYTES + 1] === this.clockTag[1];
    if (issuedAt < (sameClock ? this.boot : this.boot - this.maxSkewMs)) return 'predates-boot';
    return 'valid';
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

  /** The MAC of a head for a realm: the keyed hash's bytes as latin1 characters, of which the first MAC_BYTES are the MAC. */
  private mac(head: Buffer, realm: string): string {
    const s = this.scratch;
    head.copy(s, KEY_BYTES);
    let realmBytes: number;
    if (realm === this.lastRealm) realmBytes = this.lastRealmBytes;
    else {
      realmBytes = Buffer.byteLength(realm, 'utf8');
      if (realmBytes > SCRATCH_REALM_BYTES) return hashLatin1(MAC_HASH, Buffer.concat([s.subarray(0, KEY_BYTES + HEAD_BYTES), Buffer.from(realm, 'utf8')]));
      s.write(realm, KEY_BYTES + HEAD_BYTES, 'utf8');
      this.lastRealm = realm;
      this.lastRealmBytes = realmBytes;
    }
    return hashLatin1(MAC_HASH, s.subarray(0, KEY_BYTES + HEAD_BYTES + realmBytes));
  }

  /** The MAC of the nonces sipflow issued before its keyed hash (see the header). */
  private hmacOfEarlierVersions(head: Buffer, realm: string): Buffer {
    return createHmac('sha256', this.secret).update(head).update(realm, 'utf8').digest().subarray(0, MAC_BYTES);
  }

  /** Issue time of a well-formed nonce (first 8 bytes, big-endian ms). */
  static timeOf(raw: Buffer): number {
    return raw.readUInt32BE(0) * 0x100000000 + raw.readUInt32BE(4);
  }
}

/**
 * Whether a decoded nonce's MAC (its bytes from HEAD_BYTES) is the first MAC_BYTES of `mac` (latin1),
 * in time independent of where they differ: every byte is compared, as timingSafeEqual would.
 */
function macEqual(raw: Buffer, mac: string): boolean {
  let diff = raw.length ^ (HEAD_BYTES + MAC_BYTES);
  for (let i = 0; i < MAC_BYTES; i++) diff |= raw[HEAD_BYTES + i] ^ mac.charCodeAt(i);
  return diff === 0;
}

function decode(nonce: unknown): Buffer | null {
  if (typeof nonce !== 'string' || !NONCE_RE.test(nonce)) return null;
  // 33 bytes are exactly 44 base64url characters with no padding bits, so each nonce has a single
  // spelling (which matters: the nonce-count table is keyed by the string).
  return Buffer.from(nonce, 'base64url');
}
