/**
 * The call history in the directory database (PGlite or PostgreSQL; tables made by the directory
 * migration directory_003_call_history): the batched writer the recorders' segments go to, the
 * queries of GET /api/v1/calls and /api/v1/calls/{callId}, and retention.
 *
 * Layout: `call_history`, one row per Call-ID, upserted by each segment (record.ts CallDetail as
 * the recorder emits it): started_at the earliest, ended_at the latest, the counts and `bytes`
 * (the segments' JSON size) summed, the summary columns (method, calling, called, aor, source,
 * outcome, status, logic) the latest segment's — the recorder carries a call's summary from one
 * segment to the next. Indexes on started_at, ended_at, calling, called, aor: every list filter.
 * `call_history_segments`, one row per segment (messages and runs as JSON text), deleted with its
 * call (ON DELETE CASCADE): a later BYE or re-REGISTER is one cheap INSERT, never a rewrite.
 *
 * Writes: services/accounting/writer.ts's queue (batchSize, flushMs, backlogMax): a slow or down
 * database keeps segments in a bounded backlog, beyond which they are dropped and counted
 * (onDropped); the SIP path only pushes. One batch is one transaction: the segments of one
 * Call-ID within a batch are folded into one upsert (PostgreSQL refuses to update a row twice in
 * one statement). The embedded PGlite runs on the dispatching thread and a segment costs it about
 * half a millisecond: batches are small (history.batchSize) and the writer yields to I/O after
 * each, so SIP messages are dispatched between two batches.
 *
 * Retention (`purge()`, every purgeEverySec on an unref'd timer): calls whose last message is
 * older than maxAgeDays, then the oldest calls (by last message) beyond maxBytes of segments.
 * Limits: list returns at most LIST_MAX calls.
 */
import type { Knex } from 'knex';
import type { LogPort } from '../../engine/ports';
import { CdrWriter, type CdrSink } from '../accounting/writer';
import { isPgliteClient } from '../directory/knex-internals';
import type { CallDetail, CallOutcome, CallSummary, HistoryMessage, HistoryRun } from './record';

export const CALLS_TABLE = 'call_history';
export const SEGMENTS_TABLE = 'call_history_segments';
/** Calls per list at most. */
export const LIST_MAX = 500;
export const CALL_OUTCOMES: readonly CallOutcome[] = ['success', 'redirect', 'challenged', 'failed'];

export interface HistoryStoreConfig {
  maxAgeDays: number;
  maxBytes: number;
  purgeEverySec: number;
  batchSize: number;
  flushMs: number;
  backlogMax: number;
  /** The share of the dispatching thread's time the writes may take (services/accounting/writer.ts maxBusyShare). */
  maxWriteShare: number;
}

export interface HistoryStoreOptions {
  log?: LogPort;
  /** Segments written (count). */
  onWritten?: (n: number) => void;
  /** A segment dropped: the backlog was full. */
  onDropped?: (reason: 'backlog') => void;
  /** Run retention on a timer (default true). */
  timer?: boolean;
}

export interface CallFilter {
  callId?: string;
  /** calling or called, exactly. */
  number?: string;
  aor?: string;
  /** started at or after / before (ms). */
  from?: number;
  to?: number;
  outcome?: CallOutcome;
  limit?: number;
}

type Row = Record<string, unknown>;

/** Segments of one Call-ID in one batch, folded into the values of its call row. */
function callRow(segments: StoredSegment[]) {
  const last = segments[segments.length - 1];
  const sum = (f: (d: StoredSegment) => number) => segments.reduce((n, d) => n + f(d), 0);
  return {
    call_id: last.callId,
    started_at: new Date(Math.min(...segments.map((d) => Date.parse(d.startedAt)))),
    ended_at: new Date(Math.max(...segments.map((d) => Date.parse(d.endedAt)))),
    method: last.method,
    calling: last.calling,
    called: last.called,
    aor: last.aor,
    source: last.source,
    outcome: last.outcome,
    status: last.status,
    logic: last.logic,
    message_count: sum((d) => d.messageCount),
    run_count: sum((d) => d.runCount),
    dropped_messages: sum((d) => d.droppedMessages),
    bytes: 0,
  };
}

/**
 * A segment as it is stored: the summary fields, with messages and runs already JSON text. A SIP
 * worker thread makes it (storedSegment) before posting: a string crosses threads as one copy,
 * where the nested objects of a CallDetail are cloned one by one, and the dispatching thread,
 * which also writes PGlite, no longer serializes them.
 */
export type StoredSegment = Omit<CallDetail, 'messages' | 'runs'> & { messages: string; runs: string };

export function storedSegment(d: CallDetail): StoredSegment {
  return { ...d, messages: JSON.stringify(d.messages), runs: JSON.stringify(d.runs) };
}

async function writeBatch(knex: Knex, batch: readonly StoredSegment[]): Promise<void> {
  const byCall = new Map<string, StoredSegment[]>();
  for (const d of batch) {
    const list = byCall.get(d.callId);
    if (list) list.push(d);
    else byCall.set(d.callId, [d]);
  }
  const segments = batch.map((d) => ({
    row: { call_id: d.callId, at: new Date(d.startedAt), messages: d.messages, runs: d.runs },
    bytes: d.messages.length + d.runs.length,
  }));
  const calls = [...byCall.values()].map((list) => {
    const row = callRow(list);
    row.bytes = segments.filter((s) => s.row.call_id === row.call_id).reduce((n, s) => n + s.bytes, 0);
    return row;
  });
  const t = CALLS_TABLE;
  await knex.transaction(async (trx) => {
    await trx(t)
      .insert(calls)
      .onConflict('call_id')
      .merge({
        started_at: trx.raw(`least(${t}.started_at, excluded.started_at)`),
        ended_at: trx.raw(`greatest(${t}.ended_at, excluded.ended_at)`),
        method: trx.raw('excluded.method'),
        calling: trx.raw('excluded.calling'),
        called: trx.raw('excluded.called'),
        aor: trx.raw('excluded.aor'),
        source: trx.raw('excluded.source'),
        outcome: trx.raw('excluded.outcome'),
        status: trx.raw('excluded.status'),
        logic: trx.raw('excluded.logic'),
        message_count: trx.raw(`${t}.message_count + excluded.message_count`),
        run_count: trx.raw(`${t}.run_count + excluded.run_count`),
        dropped_messages: trx.raw(`${t}.dropped_messages + excluded.dropped_messages`),
        bytes: trx.raw(`${t}.bytes + excluded.bytes`),
      });
    await trx(SEGMENTS_TABLE).insert(segments.map((s) => s.row));
  });
  // PGlite runs in this thread, the one that dispatches SIP messages: let them in between batches
  await yieldToIo();
}

/** Calls deleted per retention statement. */
export const PURGE_CHUNK = 500;

/** Lets the SIP messages waiting on this thread in (PGlite runs here). */
const yieldToIo = () => new Promise<void>((resolve) => setImmediate(resolve));

const iso = (v: unknown) => new Date(v as string | Date).toISOString();
const jsonOf = <T>(v: unknown): T => (typeof v === 'string' ? (JSON.parse(v) as T) : (v as T));

function summaryOf(r: Row): CallSummary {
  return {
    callId: r.call_id as string,
    startedAt: iso(r.started_at),
    endedAt: iso(r.ended_at),
    method: r.method as string,
    calling: (r.calling as string | null) ?? null,
    called: (r.called as string | null) ?? null,
    aor: (r.aor as string | null) ?? null,
    source: r.source as string,
    outcome: r.outcome as CallOutcome,
    status: r.status === null ? null : Number(r.status),
    logic: (r.logic as string | null) ?? null,
    messageCount: Number(r.message_count),
    runCount: Number(r.run_count),
  };
}

/** A segment waiting in the writer, with whom to tell once it is written (HistoryStore.accept). */
interface Pending {
  segment: StoredSegment;
  settled?: () => void;
}

export class HistoryStore {
  readonly writer: CdrWriter<Pending>;
  private readonly timer: NodeJS.Timeout | null = null;
  private purging: Promise<number> | null = null;

  constructor(
    private readonly knex: Knex,
    private readonly c: HistoryStoreConfig,
    private readonly o: HistoryStoreOptions = {},
  ) {
    const sink: CdrSink<Pending> = {
      name: 'database',
      write: async (batch) => {
        await writeBatch(
          knex,
          batch.map((p) => p.segment),
        );
        for (const p of batch) p.settled?.();
      },
    };
    this.writer = new CdrWriter<Pending>([sink], {
      batchSize: c.batchSize,
      flushMs: c.flushMs,
      backlogMax: c.backlogMax,
      // the share applies to the embedded PGlite only: it runs on this thread; a PostgreSQL server's work is not ours to pace
      maxBusyShare: isPgliteClient(knex) ? c.maxWriteShare : 1,
      log: o.log,
      label: { block: 'history', records: 'call records' },
      onOverflow: () => o.onDropped?.('backlog'),
      onWritten: (_sink, n) => o.onWritten?.(n),
    });
    if (o.timer !== false) {
      this.timer = setInterval(() => {
        void this.purge().catch((e: Error) => o.log?.log('warn', `history: retention failed (${e.message}); retrying in ${c.purgeEverySec} s`));
      }, c.purgeEverySec * 1000);
      this.timer.unref();
    }
  }

  /**
   * Takes a recorder's segment (never blocks, never throws). `settled` is called once the segment
   * is written, or at once when the backlog is full and it is dropped: the recorder's window
   * (recorder.ts RecorderOptions.window) opens again.
   */
  readonly accept = (detail: CallDetail, settled?: () => void): void => this.acceptStored(storedSegment(detail), settled);

  /** Takes a segment a SIP worker thread serialized (storedSegment); `settled` as for accept. */
  readonly acceptStored = (segment: StoredSegment, settled?: () => void): void => {
    if (!this.writer.accept({ segment, settled })) settled?.();
  };

  /** Resolves when every accepted segment is written (while the database fails, it waits). */
  idle(): Promise<void> {
    return this.writer.idle();
  }

  /** Calls newest first (by start). */
  async list(f: CallFilter = {}): Promise<CallSummary[]> {
    const b = this.knex(CALLS_TABLE).select('*');
    if (f.callId !== undefined) b.where('call_id', f.callId);
    if (f.number !== undefined) {
      const n = f.number;
      b.where((w) => w.where('calling', n).orWhere('called', n));
    }
    if (f.aor !== undefined) b.where('aor', f.aor);
    if (f.from !== undefined) b.where('started_at', '>=', new Date(f.from));
    if (f.to !== undefined) b.where('started_at', '<', new Date(f.to));
    if (f.outcome !== undefined) b.where('outcome', f.outcome);
    const rows = (await b
      .orderBy([
        { column: 'started_at', order: 'desc' },
        { column: 'call_id', order: 'desc' },
      ])
      .limit(Math.min(f.limit ?? 100, LIST_MAX))) as Row[];
    return rows.map(summaryOf);
  }

  /** One call with every segment's messages and runs in time order; null when unknown. */
  async get(callId: string): Promise<CallDetail | null> {
    const row = (await this.knex(CALLS_TABLE).where('call_id', callId).first()) as Row | undefined;
    if (row === undefined) return null;
    const segments = (await this.knex(SEGMENTS_TABLE)
      .where('call_id', callId)
      .orderBy([{ column: 'at' }, { column: 'id' }])
      .select('messages', 'runs')) as Row[];
    // a stable sort: messages of one instant keep the order they were seen in
    const messages = segments.flatMap((s) => jsonOf<HistoryMessage[]>(s.messages)).sort((a, b) => a.at - b.at);
    const runs = segments.flatMap((s) => jsonOf<HistoryRun[]>(s.runs)).sort((a, b) => a.at - b.at);
    return { ...summaryOf(row), messages, runs, droppedMessages: Number(row.dropped_messages) };
  }

  /**
   * Retention at `now`: calls deleted (by age, then by size), oldest first. One at a time, in
   * statements of PURGE_CHUNK calls with a turn of the event loop between them: PGlite runs on the
   * thread that dispatches SIP messages, and one statement over a large table would hold it.
   */
  purge(now = Date.now()): Promise<number> {
    return (this.purging ??= (async () => {
      try {
        const cutoff = new Date(now - this.c.maxAgeDays * 86_400_000);
        let deleted = 0;
        // by age: the oldest PURGE_CHUNK at a time
        for (;;) {
          const ids = (await this.knex(CALLS_TABLE).where('ended_at', '<', cutoff).orderBy('ended_at').limit(PURGE_CHUNK).pluck('call_id')) as string[];
          if (ids.length > 0) deleted += await this.remove(ids);
          await yieldToIo();
          if (ids.length < PURGE_CHUNK) break;
        }
        // by size: the total, then the oldest calls until what is left fits in maxBytes
        let total = Number(((await this.knex(CALLS_TABLE).sum({ s: 'bytes' }).first()) as { s?: unknown } | undefined)?.s ?? 0);
        while (total > this.c.maxBytes) {
          const oldest = (await this.knex(CALLS_TABLE)
            .select('call_id', 'bytes')
            .orderBy([{ column: 'ended_at' }, { column: 'call_id' }])
            .limit(PURGE_CHUNK)) as Array<{ call_id: string; bytes: unknown }>;
          if (oldest.length === 0) break;
          const ids: string[] = [];
          for (const r of oldest) {
            if (total <= this.c.maxBytes) break;
            ids.push(r.call_id);
            total -= Number(r.bytes);
          }
          deleted += await this.remove(ids);
          await yieldToIo();
        }
        return deleted;
      } finally {
        this.purging = null;
      }
    })());
  }

  /** Deletes these calls (their segments with them); how many were. */
  private async remove(ids: readonly string[]): Promise<number> {
    return ((await this.knex(CALLS_TABLE).whereIn('call_id', ids).delete().returning('call_id')) as unknown[]).length;
  }

  /** Writes what waits (one attempt) and stops retention. */
  async close(): Promise<void> {
    if (this.timer !== null) clearInterval(this.timer);
    await this.writer.close();
    await this.purging?.catch(() => undefined);
  }
}
