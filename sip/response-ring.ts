/**
 * The responses of completed transactions, kept in one block per SIP thread and let go in the
 * order they were kept.
 *
 * Why: a completed non-INVITE transaction keeps its last response for the 32 s of Timer J, only to
 * resend it to a retransmission (sip/transactions.ts). Kept as the Buffer it was sent from, the
 * response pinned its 8 KiB pool slab: about 100 MB per SIP thread at 100,000 transactions. Kept
 * as a string, it was copied twice by the young generation's collector and then freed by the old
 * one's, 100,000 strings per thread. The transactions complete and expire in the same order (one
 * Timer J for all), so their responses fit a ring: written at the head, let go at the tail,
 * never moved, never seen by the collector.
 *
 * Contract: `put(bytes)` copies the bytes in and returns where they are, or -1 when there is no
 * room between the head and the oldest response still kept (the caller lets its oldest go and
 * tries again). `release(at, length)` lets go of the oldest response kept: calls come in the order
 * of the `put`s that returned those offsets. `copy(at, length)` gives a kept response back as a
 * Buffer of its own, so a later `put` cannot change what was sent. The block is allocated at the
 * first `put` and its pages touched as the head first reaches them; then they are reused.
 *
 * Layout: the kept responses lie one after the other from `tail` to `head`, wrapping once: a
 * response goes to the start of the block as soon as there is room for it before the tail (or
 * when it does not fit before the end), and what is left after the last one before the wrap is
 * free again once the tail passes it. So the span in use stays about what is kept.
 */
export class ResponseRing {
  private block: Buffer | null = null;
  /** Where the next response goes. */
  private head = 0;
  /** Where the oldest response kept starts. */
  private tail = 0;
  private count = 0;

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`a response ring needs a positive whole capacity, not ${capacity}`);
  }

  /** Responses kept. */
  get size(): number {
    return this.count;
  }

  put(bytes: Buffer): number {
    const n = bytes.length;
    if (n > this.capacity) return -1;
    if (this.count === 0) this.head = this.tail = 0;
    let at: number;
    if (this.count === 0 || this.head > this.tail) {
      // free: from 0 to the tail, and from the head to the end; the start first, so that the
      // responses stay as near it as what is kept allows (a quiet thread touches a few pages of
      // the block, not all of them in turn)
      if (n <= this.tail) at = 0;
      else if (this.head + n <= this.capacity) at = this.head;
      else return -1;
    } else if (this.head + n <= this.tail)
      at = this.head; // free: from the head to the tail
    else return -1;
    this.block ??= Buffer.allocUnsafeSlow(this.capacity);
    bytes.copy(this.block, at);
    this.head = at + n;
    this.count++;
    return at;
  }

  release(at: number, length: number): void {
    if (this.count === 0) return;
    this.count--;
    this.tail = at + length;
    if (this.count === 0) this.head = this.tail = 0;
  }

  /** Lets go of every response kept. */
  reset(): void {
    this.count = 0;
    this.head = this.tail = 0;
  }

  copy(at: number, length: number): Buffer {
    const out = Buffer.allocUnsafe(length);
    this.block!.copy(out, 0, at, at + length);
    return out;
  }
}

/** Where a ResponseQueue keeps an entry's response in its ring (-1: nowhere), its length, and when the entry expires (ms). */
export interface Kept {
  keptAt: number;
  keptLength: number;
  readonly expiresAt: number;
}

/**
 * Entries kept oldest first, each with its response in a ResponseRing: what the completed
 * transactions (sip/transactions.ts) and the stateless challenges (sip/challenge-replies.ts) both
 * are. Bounded by count and by the ring's bytes: past either, the oldest is let go first and told
 * to `onLetGo`, as it is when its owner lets it go on expiry (`letGoOldest`, in the order pushed).
 */
export class ResponseQueue<T extends Kept> {
  private order: T[] = [];
  private first = 0;
  private readonly ring: ResponseRing;

  constructor(
    private readonly maxEntries: number,
    maxBytes: number,
    private readonly onLetGo: (item: T) => void,
  ) {
    this.ring = new ResponseRing(maxBytes);
  }

  /** The largest response that can be kept. */
  get capacity(): number {
    return this.ring.capacity;
  }

  get size(): number {
    return this.order.length - this.first;
  }

  /** The oldest entry still kept. */
  get oldest(): T | undefined {
    return this.first < this.order.length ? this.order[this.first] : undefined;
  }

  /** Keeps `item` and a copy of `bytes`, letting the oldest go to make room; bytes larger than the ring are not kept (`keptAt` -1). */
  push(item: T, bytes: Buffer): void {
    if (this.size >= this.maxEntries) this.letGoOldest();
    let at = -1;
    if (bytes.length <= this.ring.capacity) while ((at = this.ring.put(bytes)) < 0 && this.letGoOldest());
    item.keptAt = at;
    item.keptLength = bytes.length;
    this.order.push(item);
  }

  /** The response kept for `item`, as a Buffer of its own, or null. */
  copy(item: T): Buffer | null {
    return item.keptAt >= 0 ? this.ring.copy(item.keptAt, item.keptLength) : null;
  }

  /** Lets go, oldest first, of the entries whose `expiresAt` is `now` or earlier (pushed with one ttl, they expire in order). */
  expire(now: number): void {
    for (let item = this.oldest; item !== undefined && item.expiresAt <= now; item = this.oldest) this.letGoOldest();
  }

  /** Lets the oldest entry go; false when there is none. */
  letGoOldest(): boolean {
    if (this.first >= this.order.length) return false;
    const item = this.order[this.first];
    this.order[this.first++] = undefined as unknown as T;
    if (item.keptAt >= 0) this.ring.release(item.keptAt, item.keptLength);
    item.keptAt = -1;
    this.onLetGo(item);
    if (this.first > 4096 && this.first * 2 > this.order.length) {
      this.order = this.order.slice(this.first);
      this.first = 0;
    }
    return true;
  }

  /** Forgets every entry without telling `onLetGo`. */
  clear(): void {
    this.order = [];
    this.first = 0;
    this.ring.reset();
  }
}
