/**
 * The SIP messages a SIP thread was handed and has not handled yet (sip-thread.ts), handled in
 * slices of bounded length, each in an event-loop turn of its own.
 *
 * Why: the dispatcher hands a SIP thread its datagrams in batches over the thread's port (host.ts,
 * Outbox), and the same port brings the answers to the thread's store calls (a REGISTER's binding
 * saved, a directory read). Node's port handler takes every message already waiting, at least
 * 1,000 of them, in one turn. Past capacity a worker handling each batch as it came spent seconds
 * in one such turn: a store reply queued behind the backlog waited that long, and so did the
 * thread's timers, its outbox's among them (the outbox carries its store calls). A call under way
 * stalled behind new work that was then shed for its age anyway, and its UA retransmitted. Now the
 * port's handler only queues SIP messages here and resolves store replies at once; the messages
 * are handled in slices, and replies and timers get their turn between two slices
 * (docs/performance.md, Overload).
 *
 * Contract:
 * - `push` queues an item and schedules a slice (setImmediate) unless one is scheduled already; it
 *   never calls the handler itself.
 * - Items are handled in the order pushed, each once. A slice ends once the queue is empty or
 *   `sliceMs` have passed, checked every `CHECK_EVERY` items (a clock read per item would cost more
 *   than most items); the next slice is scheduled if items remain.
 * - A handler that throws (a bug: the SIP thread's never does) costs its item only: `onError` is
 *   told, and the queue goes on with the next.
 * - Age is the handler's business: a stale request is dropped there (sip-thread.ts onSip).
 * - Memory: handled items are let go at the end of each slice, or, in a long backlog, once more
 *   than `COMPACT_AFTER` of them sit before the head.
 */

/** Items handled between two reads of the clock. */
const CHECK_EVERY = 8;
/** Handled items kept before the head of a queue that still holds more. */
const COMPACT_AFTER = 1024;

export class SlicedQueue<T> {
  private items: T[] = [];
  private head = 0;
  private scheduled = false;

  constructor(
    private readonly handle: (item: T) => void,
    private readonly sliceMs: number,
    /** Told of an item whose handler threw; the queue goes on with the next. */
    private readonly onError: (e: unknown, item: T) => void,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Items waiting. */
  get size(): number {
    return this.items.length - this.head;
  }

  push(item: T): void {
    this.items.push(item);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.slice);
    }
  }

  private readonly slice = (): void => {
    const until = this.now() + this.sliceMs;
    const items = this.items;
    let n = 0;
    while (this.head < items.length) {
      const item = items[this.head++];
      try {
        this.handle(item);
      } catch (e) {
        this.onError(e, item);
      }
      if (++n % CHECK_EVERY === 0 && this.now() >= until) break;
    }
    if (this.head >= items.length) {
      this.items = [];
      this.head = 0;
      this.scheduled = false;
      return;
    }
    if (this.head > COMPACT_AFTER) {
      this.items = items.slice(this.head);
      this.head = 0;
    }
    setImmediate(this.slice);
  };
}
