/**
 * Nonce-count replay protection (RFC 7616 §3.4, §5.12) shared by every thread of a process.
 *
 * Why: SIP processing runs in several worker_threads, datagrams dispatched to a thread by
 * Call-ID. NonceCounter keeps its table in a per-thread Map, so a replayed Authorization sent with
 * another Call-ID lands on another thread, finds no count there and is accepted. Kamailio's auth
 * module has the same problem with its worker processes and keeps its nonce-count arrays in shared
 * memory; this is the same idea with a SharedArrayBuffer: `SharedNonceCounter.create(slots)` once
 * (dispatching thread), hand the buffer to every worker (workerData / postMessage shares it, no
 * copy), and `new SharedNonceCounter(buffer)` in each. Every attached instance sees one table.
 *
 * Layout (Int32 words of the buffer; Float64 / BigInt64 where noted):
 *
 *   header  [magic, version, buckets, slotsPerBucket, seed, 0, evictedUpTo (BigInt64, ms)]
 *   bucket  [lock, 0] + slotsPerBucket × slot
 *   slot    [hashA, hashB, used, 0, nc (f64; Infinity = no-qop use), issuedAt (f64, ms), expiresAt (f64, ms)]
 *
 * A key (nonce + username) hashes to 64 bits (two 32-bit lanes, seeded per table); its bucket is
 * chosen by the low bits of the first lane and the slot found by comparing both lanes. Two live
 * keys of one bucket with equal hashes would share a count: with the bucket bits shared that is a
 * 2^-(64 - log2 buckets) ≈ 2^-49 chance per pair, negligible (the worst outcome is a false
 * 'replay', answered like a wrong response, and the UA is challenged again).
 *
 * Each bucket has a spinlock (Atomics.compareExchange to take it, Atomics.store to release);
 * the critical sections are a few reads and writes of one bucket, so contention costs nanoseconds
 * (more only if the OS preempts a holder) and no thread ever sleeps: no Atomics.wait, the main
 * thread that dispatches datagrams must never block. The
 * non-atomic slot accesses are ordered by the lock's atomics (data-race free under the JS memory
 * model). `evictedUpTo` is a single BigInt64 word raised with a compare-exchange max loop.
 *
 * `record()` is check-and-set: it updates the count only if it is still 'fresh' and returns what
 * `check()` would have answered at that instant. Two threads verifying the same (nonce, nc) at
 * once both pass `check()`, but only one `record()` answers 'fresh'; the caller refuses the other.
 *
 * Behaviour as NonceCounter: strictly increasing nc per key; a no-qop use consumes the key;
 * expired entries are reused first; when a bucket is full of live entries its oldest (by issue
 * time) is evicted and `evictedUpTo` raised, so a later check of a key without entry whose nonce
 * was issued at or before it answers 'forgotten' (the caller answers stale, never accepts a
 * possible replay).
 *
 * Limits:
 * - Capacity is fixed at creation (buckets × 8 slots) and the table never grows. A bucket holds
 *   8 entries, so evictions start before the table is full: size it well above the live counts
 *   (keys used within one nonce lifetime; the default 2^18 slots is meant for ~100 000, where
 *   under 0.5% of the buckets overflow). An eviction costs at most an extra challenge round
 *   trip (stale) for a nonce issued before the evicted one, never an accepted replay.
 * - One process only: threads of one process share memory, separate processes or hosts do not
 *   (there, as with NonceCounter, a replay is only bounded by the nonce lifetime).
 * - A thread terminated while holding a bucket lock (Worker.terminate() in the middle of the few
 *   instructions of a critical section) would leave that bucket locked: the others give up after
 *   a long spin and throw rather than hang. Stop SIP threads by draining, not terminate().
 * - `size` is a lock-free scan of the whole table: approximate and O(capacity), for diagnostics.
 */
import { randomBytes } from 'node:crypto';
import type { CountCheck, NonceCountTable } from './nonce-count';

/** Default capacity: 2^15 buckets × 8 slots (≈ 10.7 MB), comfortable for ~100 000 live counts. */
export const DEFAULT_SHARED_NONCE_SLOTS = 1 << 18;

const MAGIC = 0x544e434e; // 'NCNT'
const VERSION = 1;
const SLOTS_PER_BUCKET = 8;

// Header, in Int32 words (8 words = 32 bytes, keeps what follows 8-byte aligned).
const H_MAGIC = 0;
const H_VERSION = 1;
const H_BUCKETS = 2;
const H_SLOTS = 3;
const H_SEED = 4;
const H_EVICTED_BIG = 3; // BigInt64 index (bytes 24..31)
const HEADER_WORDS = 8;

// Bucket: lock word + padding, then the slots.
const BUCKET_HEAD_WORDS = 2;
// Slot, in Int32 words from its start (always even, so f64 index = word / 2).
const S_HASH_A = 0;
const S_HASH_B = 1;
const S_USED = 2;
const S_NC = 4; // f64
const S_ISSUED = 6; // f64
const S_EXPIRES = 8; // f64
const SLOT_WORDS = 10;
const BUCKET_WORDS = BUCKET_HEAD_WORDS + SLOTS_PER_BUCKET * SLOT_WORDS;

/** Nothing evicted yet: below any issue time (the BigInt64 minimum). */
const NOTHING_EVICTED = -(2n ** 63n);
/** ≈ a second of spinning: far beyond any critical section, so the holder must be gone. */
const SPIN_LIMIT = 200_000_000;
const MAX_BUCKETS = 1 << 24;

const isSharedArrayBuffer = (b: unknown): b is SharedArrayBuffer => Object.prototype.toString.call(b) === '[object SharedArrayBuffer]';

export class SharedNonceCounter implements NonceCountTable {
  private readonly i32: Int32Array;
  private readonly f64: Float64Array;
  private readonly big: BigInt64Array;
  private readonly bucketMask: number;
  private readonly seed: number;
  /** Hash of the last key (set by hash(); an instance is used by one thread). */
  private hA = 0;
  private hB = 0;

  /**
   * A zeroed, initialised table to share between threads. `slots` is rounded up to a power of two
   * buckets of 8 slots.
   */
  static create(slots: number = DEFAULT_SHARED_NONCE_SLOTS): SharedArrayBuffer {
    if (!(slots >= 1) || !Number.isFinite(slots)) throw new Error('nonce-count table needs at least 1 slot');
    let buckets = 1;
    while (buckets * SLOTS_PER_BUCKET < slots) buckets *= 2;
    if (buckets > MAX_BUCKETS) throw new Error(`nonce-count table too large (${slots} slots)`);
    const buffer = new SharedArrayBuffer((HEADER_WORDS + buckets * BUCKET_WORDS) * 4);
    const i32 = new Int32Array(buffer);
    i32[H_MAGIC] = MAGIC;
    i32[H_VERSION] = VERSION;
    i32[H_BUCKETS] = buckets;
    i32[H_SLOTS] = SLOTS_PER_BUCKET;
    // A random seed per table: keys that collide cannot be prepared in advance.
    i32[H_SEED] = randomBytes(4).readInt32LE(0);
    new BigInt64Array(buffer, 0, HEADER_WORDS / 2)[H_EVICTED_BIG] = NOTHING_EVICTED;
    return buffer; // shared with the threads by postMessage / workerData: happens-after these writes
  }

  constructor(buffer: SharedArrayBuffer) {
    if (!isSharedArrayBuffer(buffer)) throw new Error('SharedNonceCounter needs the SharedArrayBuffer from SharedNonceCounter.create()');
    if (buffer.byteLength < HEADER_WORDS * 4) throw new Error('not a nonce-count table (too short)');
    this.i32 = new Int32Array(buffer);
    const buckets = this.i32[H_BUCKETS];
    if (
      this.i32[H_MAGIC] !== MAGIC ||
      this.i32[H_VERSION] !== VERSION ||
      this.i32[H_SLOTS] !== SLOTS_PER_BUCKET ||
      !(buckets >= 1) ||
      (buckets & (buckets - 1)) !== 0 ||
      buffer.byteLength !== (HEADER_WORDS + buckets * BUCKET_WORDS) * 4
    ) {
      throw new Error('not a nonce-count table (bad header or size)');
    }
    this.f64 = new Float64Array(buffer);
    this.big = new BigInt64Array(buffer, 0, HEADER_WORDS / 2);
    this.bucketMask = buckets - 1;
    this.seed = this.i32[H_SEED];
  }

  /** Slots in the table (all threads together). */
  get capacity(): number {
    return (this.bucketMask + 1) * SLOTS_PER_BUCKET;
  }

  /** Occupied slots, expired ones not yet reused included. Lock-free scan: approximate, O(capacity). */
  get size(): number {
    let n = 0;
    for (let b = 0; b <= this.bucketMask; b++) {
      const base = HEADER_WORDS + b * BUCKET_WORDS + BUCKET_HEAD_WORDS;
      for (let s = 0; s < SLOTS_PER_BUCKET; s++) if (Atomics.load(this.i32, base + s * SLOT_WORDS + S_USED) !== 0) n++;
    }
    return n;
  }

  /** Issue time (ms) at or before which an entry may have been evicted; -Infinity if none was. */
  get evictedUpTo(): number {
    const v = Atomics.load(this.big, H_EVICTED_BIG);
    return v === NOTHING_EVICTED ? -Infinity : Number(v);
  }

  /** Would this nc be acceptable? Does not record it (record only after the response verified). */
  check(key: string, nc: number | null, issuedAt: number): CountCheck {
    const lock = this.lockBucket(key);
    try {
      return this.lookup(lock, nc, issuedAt);
    } finally {
      Atomics.store(this.i32, lock, 0);
    }
  }

  /**
   * Records this use if it is still 'fresh' and returns what check() answers at this instant
   * (atomically with the update): anything but 'fresh' means another thread got there first.
   */
  record(key: string, nc: number | null, issuedAt: number, expiresAt: number, now: number): CountCheck {
    if (!Number.isFinite(issuedAt)) throw new RangeError('issuedAt must be a finite time (ms)');
    const lock = this.lockBucket(key);
    try {
      const s = this.find(lock);
      if (s >= 0) {
        if (nc === null) return 'replay';
        const stored = (s + S_NC) / 2;
        if (!(nc > this.f64[stored])) return 'replay';
        this.f64[stored] = nc;
        return 'fresh';
      }
      if (issuedAt <= this.evictedUpTo) return 'forgotten';
      // A no-qop use consumes the key for good; mixing modes on one nonce is then refused too.
      this.insert(lock, nc === null ? Infinity : nc, issuedAt, expiresAt, now);
      return 'fresh';
    } finally {
      Atomics.store(this.i32, lock, 0);
    }
  }

  /** check()'s answer; the bucket lock is held. */
  private lookup(lock: number, nc: number | null, issuedAt: number): CountCheck {
    const s = this.find(lock);
    if (s < 0) return issuedAt <= this.evictedUpTo ? 'forgotten' : 'fresh';
    if (nc === null) return 'replay'; // already used (with or without qop)
    return nc > this.f64[(s + S_NC) / 2] ? 'fresh' : 'replay';
  }

  /** Word index of the key's slot in the locked bucket, or -1. */
  private find(lock: number): number {
    const i32 = this.i32;
    const first = lock + BUCKET_HEAD_WORDS;
    for (let s = first, end = first + SLOTS_PER_BUCKET * SLOT_WORDS; s < end; s += SLOT_WORDS) {
      if (i32[s + S_USED] !== 0 && i32[s + S_HASH_A] === this.hA && i32[s + S_HASH_B] === this.hB) return s;
    }
    return -1;
  }

  /** New entry in the locked bucket: a free or expired slot, else the oldest live one is evicted. */
  private insert(lock: number, nc: number, issuedAt: number, expiresAt: number, now: number): void {
    const i32 = this.i32,
      f64 = this.f64;
    const first = lock + BUCKET_HEAD_WORDS;
    let free = -1,
      oldest = -1,
      oldestIssued = Infinity;
    for (let s = first, end = first + SLOTS_PER_BUCKET * SLOT_WORDS; s < end; s += SLOT_WORDS) {
      if (i32[s + S_USED] !== 0 && now > f64[(s + S_EXPIRES) / 2]) i32[s + S_USED] = 0; // nonce expired: its count is moot
      if (i32[s + S_USED] === 0) {
        if (free < 0) free = s;
      } else if (f64[(s + S_ISSUED) / 2] < oldestIssued) {
        oldest = s;
        oldestIssued = f64[(s + S_ISSUED) / 2];
      }
    }
    if (free < 0) {
      // Full of live entries: the oldest goes, and every nonce issued up to it loses its count.
      this.raiseEvictedUpTo(oldestIssued);
      free = oldest;
    }
    i32[free + S_HASH_A] = this.hA;
    i32[free + S_HASH_B] = this.hB;
    f64[(free + S_NC) / 2] = nc;
    f64[(free + S_ISSUED) / 2] = issuedAt;
    f64[(free + S_EXPIRES) / 2] = expiresAt;
    i32[free + S_USED] = 1;
  }

  private raiseEvictedUpTo(issuedAt: number): void {
    // Rounded up: conservative for fractional times (issue times are whole ms in practice).
    const v = BigInt(Math.ceil(issuedAt));
    let cur = Atomics.load(this.big, H_EVICTED_BIG);
    while (v > cur) {
      const seen = Atomics.compareExchange(this.big, H_EVICTED_BIG, cur, v);
      if (seen === cur) return;
      cur = seen;
    }
  }

  /** Hashes the key (sets hA/hB), takes its bucket's lock and returns the lock's word index. */
  private lockBucket(key: string): number {
    this.hash(key);
    const lock = HEADER_WORDS + (this.hA & this.bucketMask) * BUCKET_WORDS;
    const i32 = this.i32;
    if (Atomics.compareExchange(i32, lock, 0, 1) === 0) return lock;
    for (let spins = 0; ; spins++) {
      // Test-and-test-and-set: spin on a load, try the exchange only when it looks free.
      if (Atomics.load(i32, lock) === 0 && Atomics.compareExchange(i32, lock, 0, 1) === 0) return lock;
      if (spins > SPIN_LIMIT) throw new Error('nonce-count bucket lock held for too long (a thread died holding it?)');
    }
  }

  /**
   * 64-bit hash of the key's UTF-16 code units in two 32-bit lanes (cyrb53's mixing, without its
   * truncation to 53 bits), seeded per table. Not cryptographic: see the collision note above.
   */
  private hash(key: string): void {
    let h1 = 0xdeadbeef ^ this.seed,
      h2 = 0x41c6ce57 ^ this.seed;
    for (let i = 0; i < key.length; i++) {
      const c = key.charCodeAt(i);
      h1 = Math.imul(h1 ^ c, 2654435761);
      h2 = Math.imul(h2 ^ c, 1597334677);
    }
    h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507);
    h1 ^= Math.imul(h2 ^ (h2 >>> 13), 3266489909);
    h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507);
    h2 ^= Math.imul(h1 ^ (h1 >>> 13), 3266489909);
    this.hA = h1 | 0;
    this.hB = h2 | 0;
  }
}
