/**
 * The CDR writer (dispatching thread): records from every SIP thread are queued per sink (the
 * `cdrs` table, a JSON-lines file) and written in batches of `batchSize`, at most `flushMs` after
 * the first one waiting.
 *
 * A sink that fails (the database is down) keeps its records in its backlog, bounded by
 * `backlogMax`, and retries with a growing delay (flushMs doubling up to RETRY_MAX_MS); each
 * sink has its own backlog so a file write is never repeated because the database failed. Calls
 * never wait for a write. Beyond `backlogMax` a new record is dropped and counted
 * (`onOverflow`); the log says it once per episode (when the first record is dropped, and when
 * the backlog has drained again with how many were dropped), not per record.
 * `close()` writes what is waiting (one more attempt per batch): a graceful shutdown loses nothing
 * that a sink can take.
 *
 * Generic over the record (default CdrRecord): the call history (services/history) writes its
 * calls with the same queue, naming itself in the log lines (`label`).
 */
import { performance } from 'node:perf_hooks';
import type { LogPort } from '../../engine/ports';
import type { CdrRecord } from './record';

/** Where records go: one batch at a time; rejects when nothing of the batch was written. */
export interface CdrSink<T = CdrRecord> {
  /** `database`, `file`: in log lines and metric labels. */
  readonly name: string;
  write(batch: readonly T[]): Promise<void>;
  close?(): Promise<void>;
}

export interface CdrWriterOptions {
  batchSize: number;
  flushMs: number;
  backlogMax: number;
  log?: LogPort;
  /** A record dropped because a sink's backlog was full. */
  onOverflow?: (sink: string) => void;
  /** A batch written (records count). */
  onWritten?: (sink: string, records: number) => void;
  /** How log lines name the block and the records; default accounting / CDRs. */
  label?: { block: string; records: string };
  /**
   * The share of this thread's idle time the writes may take, 0 < share ≤ 1 (default 1: batch
   * after batch). After a batch that took t ms the next waits until the thread has been idle for
   * t × (1 / share − 1) ms (its event loop waiting, performance.eventLoopUtilization): a sink
   * that runs in this thread (the embedded PGlite, on the thread that dispatches SIP messages)
   * takes at most its share of the time the thread does not need, so the busier the thread, the
   * less it writes — nothing at all while the thread is saturated. What it cannot write fills the
   * backlog and is then dropped, never a SIP message delayed. close() writes without pauses.
   */
  maxBusyShare?: number;
}

const CDR_LABEL = { block: 'accounting', records: 'CDRs' };

/** The longest wait between two attempts at a failing sink. */
export const RETRY_MAX_MS = 5000;
/** How often a paced writer looks at its thread's idle time (maxBusyShare). */
export const IDLE_POLL_MS = 50;

class SinkQueue<T> {
  private backlog: T[] = [];
  private timer: NodeJS.Timeout | null = null;
  private writing: Promise<void> | null = null;
  private retryMs = 0;
  private failing = false;
  private droppedInEpisode = 0;
  private idleWaiters: Array<() => void> = [];
  private closing = false;
  /** Records dropped since start. */
  dropped = 0;

  private readonly l: { block: string; records: string };

  constructor(
    readonly sink: CdrSink<T>,
    private readonly o: CdrWriterOptions,
  ) {
    this.l = o.label ?? CDR_LABEL;
  }

  get waiting(): number {
    return this.backlog.length;
  }

  /** False: the backlog was full, the record is dropped. */
  push(r: T): boolean {
    if (this.backlog.length >= this.o.backlogMax) {
      this.dropped++;
      if (this.droppedInEpisode++ === 0)
        this.o.log?.log(
          'error',
          `${this.l.block}: the ${this.sink.name} backlog is full (${this.l.block}.backlogMax = ${this.o.backlogMax}): new ${this.l.records} are dropped until it drains`,
        );
      this.o.onOverflow?.(this.sink.name);
      return false;
    }
    this.backlog.push(r);
    if (this.writing !== null || this.retryMs > 0) return true; // the loop in progress takes it
    if (this.backlog.length >= this.o.batchSize) this.schedule(0);
    else if (this.timer === null) this.schedule(this.o.flushMs);
    return true;
  }

  private schedule(ms: number): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.drain();
    }, ms);
  }

  /** Writes batches until the backlog is empty or a write fails (then retries later). */
  private drain(): Promise<void> {
    return (this.writing ??= (async () => {
      try {
        while (this.backlog.length > 0) {
          const batch = this.backlog.slice(0, this.o.batchSize);
          const started = performance.now();
          try {
            await this.sink.write(batch);
          } catch (e) {
            this.retryMs = Math.min(RETRY_MAX_MS, Math.max(this.o.flushMs, this.retryMs * 2, 50));
            if (!this.failing) {
              this.failing = true;
              this.o.log?.log(
                'error',
                `${this.l.block}: writing ${this.l.records} to the ${this.sink.name} failed (${(e as Error).message}); kept in the backlog, retrying`,
              );
            }
            this.schedule(this.retryMs);
            return;
          }
          this.backlog.splice(0, batch.length);
          this.o.onWritten?.(this.sink.name, batch.length);
          this.retryMs = 0;
          if (this.failing) {
            this.failing = false;
            this.o.log?.log('info', `${this.l.block}: writing ${this.l.records} to the ${this.sink.name} again (${this.backlog.length} still waiting)`);
          }
          const share = this.o.maxBusyShare ?? 1;
          if (share < 1 && !this.closing && this.backlog.length > 0) await this.idleFor((performance.now() - started) * (1 / share - 1));
        }
        if (this.droppedInEpisode > 0) {
          this.o.log?.log(
            'warn',
            `${this.l.block}: the ${this.sink.name} backlog has drained; ${this.droppedInEpisode} ${this.l.records} were dropped while it was full`,
          );
          this.droppedInEpisode = 0;
        }
      } finally {
        this.writing = null;
        if (this.backlog.length === 0) for (const resolve of this.idleWaiters.splice(0)) resolve();
      }
    })());
  }

  /** Resolves once this thread's event loop has been idle `ms` in all (looked at every IDLE_POLL_MS at most), or at close(). */
  private async idleFor(ms: number): Promise<void> {
    let idle = 0;
    let last = performance.eventLoopUtilization();
    while (idle < ms && !this.closing) {
      await new Promise((resolve) => setTimeout(resolve, Math.min(Math.max(ms - idle, 1), IDLE_POLL_MS)));
      const now = performance.eventLoopUtilization();
      idle += now.idle - last.idle;
      last = now;
    }
  }

  /** Waits for the write in progress, then writes what waits (one attempt per batch). */
  async close(): Promise<void> {
    this.closing = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    await this.writing;
    this.retryMs = 0;
    await this.drain();
    if (this.timer !== null) clearTimeout(this.timer); // the last attempt failed: no retry after close
    this.timer = null;
    if (this.backlog.length > 0)
      this.o.log?.log('error', `${this.l.block}: ${this.backlog.length} ${this.l.records} could not be written to the ${this.sink.name} at shutdown`);
    for (const resolve of this.idleWaiters.splice(0)) resolve();
    await this.sink.close?.();
  }

  /** Resolves when nothing waits: after the write that empties the backlog (while the sink fails, it waits). */
  idle(): Promise<void> {
    if (this.backlog.length === 0 && this.writing === null) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }
}

export class CdrWriter<T = CdrRecord> {
  private readonly queues: SinkQueue<T>[];
  private closed = false;

  constructor(sinks: readonly CdrSink<T>[], o: CdrWriterOptions) {
    this.queues = sinks.map((s) => new SinkQueue(s, o));
  }

  /** Takes a record (never blocks, never throws); false: some sink dropped it (backlog full) or the writer is closed. */
  accept(r: T): boolean {
    if (this.closed) return false;
    let all = true;
    for (const q of this.queues) all = q.push(r) && all;
    return all;
  }

  /** Records waiting per sink. */
  backlog(): Record<string, number> {
    return Object.fromEntries(this.queues.map((q) => [q.sink.name, q.waiting]));
  }

  /** Records dropped per sink since start. */
  dropped(): Record<string, number> {
    return Object.fromEntries(this.queues.map((q) => [q.sink.name, q.dropped]));
  }

  /** Resolves when every sink has written everything it holds (while a sink fails, it waits). */
  async idle(): Promise<void> {
    await Promise.all(this.queues.map((q) => q.idle()));
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.queues.map((q) => q.close()));
  }
}
