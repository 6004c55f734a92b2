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
 * Two lanes. Past capacity a worker's queue holds seconds of work, and a REGISTER with credentials
 * (the second half of a call whose challenge was already paid for) waited behind new calls that
 * would then be shed for their age anyway: at the start of an overload step the calls completed fell
 * to a tenth of the worker's capacity while every new call got its challenge (docs/performance.md,
 * "What bounds the goodput past capacity"). For a second after the thread dropped a request (shed or
 * stale), sip-thread.ts pushes work under way to the first lane, handled before new work; new work
 * waits, and past `sip.shedAfterMs` the front end sheds it. Otherwise everything goes to the other
 * lane, in arrival order.
 *
 * Contract:
 * - `push` queues an item and schedules a slice (setImmediate) unless one is scheduled already; it
 *   never calls the handler itself.
 * - Each item is handled once. Items pushed with `first` are handled before the others (also those
 *   pushed before them); within a lane, in the order pushed. A slice ends once both lanes are empty
 *   or `sliceMs` have passed, checked every `CHECK_EVERY` items (a clock read per item would cost
 *   more than most items); the next slice is scheduled if items remain.
 * - A handler that throws (a bug: the SIP thread's never does) costs its item only: `onError` is
 *   told, and the queue goes on with the next.
 * - Age is the handler's business: a stale request is dropped there (sip-thread.ts onSip).
 * - Memory: handled items are let go at the end of each slice, or, in a long backlog, once more
 *   than `COMPACT_AFTER` of them sit before a lane's head.
 */

/** Items handled between two reads of the clock. */
const CHECK_EVERY = 8;
/** Handled items kept before the head of a queue that still holds more. */
const COMPACT_AFTER = 1024;

/** One lane: an array consumed from `head`, compacted now and then. */
class Lane<T> {
  items: T[] = [];
  head = 0;

  get size(): number {
    return this.items.length - this.head;
  }

  /** After a slice: let handled items go. */
  settle(): void {
    if (this.head >= this.items.length) {
      this.items = [];
      this.head = 0;
    } else if (this.head > COMPACT_AFTER) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
  }
}

export class SlicedQueue<T> {
  private readonly first = new Lane<T>();
  private readonly rest = new Lane<T>();
  private scheduled = false;

  constructor(
    private readonly handle: (item: T) => void,
    private readonly sliceMs: number,
    /** Told of an item whose handler threw; the queue goes on with the next. */
    private readonly onError: (e: unknown, item: T) => void,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Items waiting, in both lanes. */
  get size(): number {
    return this.first.size + this.rest.size;
  }

  /** Queues `item`; with `first`, ahead of every item pushed without it (work under way). */
  push(item: T, first = false): void {
    (first ? this.first : this.rest).items.push(item);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.slice);
    }
  }

  private readonly slice = (): void => {
    const until = this.now() + this.sliceMs;
    const first = this.first;
    const rest = this.rest;
    let n = 0;
    for (;;) {
      let item: T;
      if (first.head < first.items.length) item = first.items[first.head++];
      else if (rest.head < rest.items.length) item = rest.items[rest.head++];
      else break;
      try {
        this.handle(item);
      } catch (e) {
        this.onError(e, item);
      }
      if (++n % CHECK_EVERY === 0 && this.now() >= until) break;
    }
    first.settle();
    rest.settle();
    if (first.size === 0 && rest.size === 0) {
      this.scheduled = false;
      return;
    }
    setImmediate(this.slice);
  };
}
