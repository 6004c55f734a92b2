/**
 * The challenges the front end sent statelessly, kept only to answer a retransmission with the
 * same bytes.
 *
 * Why: a 401/407 to an unauthenticated request keeps no transaction (docs/security.md, "Challenges
 * are stateless"): no timers, no retransmission by us, so a spoofed flood leaves nothing behind and
 * the amplification stays at one answer per request. But a client that retransmits its request
 * (its own Timer E/A: the first 401 was late or lost) must get the SAME 401 back. A new run would
 * answer with a new nonce and a new To tag, which a client that already took the first challenge
 * sees as an unexpected message (SIPp aborts the call), and it would run the logic again on an
 * overloaded server, the positive feedback that turns a busy second into a collapse. Kamailio
 * gets the same effect from a nonce that is constant within the second and sl's stable To tag.
 *
 * Contract: `remember(key, bytes)` after sending; `replay(key)` returns those bytes while they are
 * at most `ttlMs` old (default 32 s, Timer F = 64·T1: no client retransmits past it), else
 * undefined. Keys are server-transaction keys (`serverTxKey`), so an ACK for a stateless 407
 * finds its INVITE's entry. Bounded: at most `max` entries (default 20,000, ≈ 10 MB of 500-byte
 * challenges), least recently used forgotten first; a flood of spoofed sources only evicts, and
 * an evicted challenge just means a retransmission runs the logic again.
 *
 * Per SIP thread: retransmissions of one request carry its Call-ID, so dispatch brings them to
 * the thread that answered first.
 */
import type { LRUCache } from 'lru-cache';
import { growingLru } from '../engine/lru';

/**
 * Kept as latin1 strings (one character per byte, so the bytes come back exactly), not Buffers. A
 * serialized response is a slice of Node's 8 KiB Buffer pool (Buffer.from of a short string), and
 * a kept slice pins its whole slab: one 500-byte challenge kept 8 KiB of external memory alive, so
 * the `max` entries up to 160 MB per SIP thread. A Buffer of its own (allocUnsafeSlow) was one
 * ArrayBuffer made and later freed per challenge, that is per call; a string is one allocation on
 * the heap. The rare retransmission pays for a Buffer again.
 */
export class ChallengeReplies {
  private readonly sent: LRUCache<string, string>;

  constructor(o: { max?: number; ttlMs?: number } = {}) {
    this.sent = growingLru<string, string>(o.max ?? 20_000, { ttl: o.ttlMs ?? 32_000, ttlAutopurge: false });
  }

  remember(key: string, bytes: Buffer): void {
    this.sent.set(key, bytes.toString('latin1'));
  }

  /** The bytes remembered for `key`, as a Buffer of their own, or undefined. */
  replay(key: string): Buffer | undefined {
    const kept = this.sent.get(key);
    return kept === undefined ? undefined : Buffer.from(kept, 'latin1');
  }

  /** Whether a challenge is remembered for `key` (the ACK of a stateless 407), without making its bytes. */
  has(key: string): boolean {
    return this.sent.has(key);
  }

  get size(): number {
    return this.sent.size;
  }
}
