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
 * finds its INVITE's entry. Bounded: at most `max` entries (default 20,000) and `maxBytes` of
 * challenges (default 16 MiB), the oldest forgotten first; a flood of spoofed sources only evicts,
 * and an evicted challenge just means a retransmission runs the logic again.
 *
 * Per SIP thread: retransmissions of one request carry its Call-ID, so dispatch brings them to
 * the thread that answered first.
 */
import { ResponseQueue, type Kept } from './response-ring';

/** A challenge kept: where its bytes are in the ring, and until when it is answered. */
interface Sent extends Kept {
  readonly key: string;
  readonly expiresAt: number;
}

/**
 * The bytes are kept in a ring (sip/response-ring.ts), as the completed transactions' responses
 * are, not as the Buffers sent: a serialized response is a slice of Node's 8 KiB Buffer pool, and a
 * kept slice pins its whole slab (one 500-byte challenge kept 8 KiB alive). Kept as latin1 strings
 * they were one string a call for the collector to copy into the old generation and free there.
 * All of them live the same `ttlMs`, so they expire in the order they were sent: the oldest is the
 * queue's, and its bytes at the ring's tail. The rare retransmission gets a copy.
 */
export class ChallengeReplies {
  private readonly sent = new Map<string, Sent>();
  private readonly kept: ResponseQueue<Sent>;
  private readonly ttlMs: number;

  constructor(o: { max?: number; ttlMs?: number; maxBytes?: number } = {}) {
    this.ttlMs = o.ttlMs ?? 32_000;
    // a challenge is a datagram: 64 KiB at most; a key remembered again later has its own entry
    this.kept = new ResponseQueue<Sent>(Math.max(1, o.max ?? 20_000), Math.max(o.maxBytes ?? 16 * 1024 * 1024, 65_536), (s) => {
      if (this.sent.get(s.key) === s) this.sent.delete(s.key);
    });
  }

  remember(key: string, bytes: Buffer): void {
    const now = Date.now();
    this.kept.expire(now);
    if (bytes.length > this.kept.capacity) return;
    const s: Sent = { key, keptAt: -1, keptLength: 0, expiresAt: now + this.ttlMs };
    this.kept.push(s, bytes);
    this.sent.set(key, s);
  }

  /** The bytes remembered for `key`, as a Buffer of their own, or undefined. */
  replay(key: string): Buffer | undefined {
    const s = this.live(key);
    return s === undefined ? undefined : (this.kept.copy(s) ?? undefined);
  }

  /** Whether a challenge is remembered for `key` (the ACK of a stateless 407), without making its bytes. */
  has(key: string): boolean {
    return this.live(key) !== undefined;
  }

  get size(): number {
    return this.sent.size;
  }

  private live(key: string): Sent | undefined {
    const s = this.sent.get(key);
    return s !== undefined && s.expiresAt > Date.now() ? s : undefined;
  }
}
