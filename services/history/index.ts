/**
 * The call history (issue 16): the recorder on each SIP thread (recorder.ts), the store and its
 * writer on the dispatching thread (store.ts), the record's shape (record.ts), and the debug
 * filter switched at run time (PUT /api/v1/calls/debug-filter) that every recorder follows.
 */
import type { Knex } from 'knex';
import type { LogPort } from '../../engine/ports';
import { HistoryStore, type HistoryStoreConfig } from './store';

export {
  CallRecorder,
  callIdHash32,
  outcomeOf,
  redactMessageText,
  RECENT_MAX,
  REFUSED_MAX,
  SWEEP_SLICE,
  REMEMBER_MS,
  type HistoryMode,
  type RecordedRun,
  type RecorderConfig,
  type RecorderOptions,
} from './recorder';
export {
  HistoryStore,
  CALLS_TABLE,
  SEGMENTS_TABLE,
  LIST_MAX,
  CALL_OUTCOMES,
  type CallFilter,
  type HistoryStoreConfig,
  type HistoryStoreOptions,
} from './store';
export type { CallDetail, CallOutcome, CallSummary, HistoryMessage, HistoryRun } from './record';

/**
 * The segments in flight one SIP thread's recorder may hold (RecorderOptions.window): the writer's
 * backlog shared by `threads` recorders, so together they never overflow it.
 */
export function historyWindow(backlogMax: number, threads: number): number {
  return Math.max(16, Math.floor(backlogMax / Math.max(1, threads)));
}

/** The debug filter's numbers as the API sets them; the recorders of every SIP thread follow (onChange). */
export class DebugFilter {
  private list: string[];
  private readonly listeners = new Set<(numbers: readonly string[]) => void>();

  constructor(initial: readonly string[] = []) {
    this.list = [...initial];
  }

  get numbers(): readonly string[] {
    return this.list;
  }

  set(numbers: readonly string[]): void {
    this.list = [...new Set(numbers)];
    for (const l of this.listeners) l(this.list);
  }

  onChange(listener: (numbers: readonly string[]) => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }
}

/** What the dispatching thread holds: the store (writer, queries, retention) and the debug filter. */
export interface History {
  store: HistoryStore;
  debug: DebugFilter;
  close(): Promise<void>;
}

export function openHistory(
  c: HistoryStoreConfig & { debugNumbers: readonly string[] },
  deps: { knex: Knex; log?: LogPort; onWritten?: (n: number) => void; onDropped?: (reason: 'backlog') => void },
): History {
  const store = new HistoryStore(deps.knex, c, { log: deps.log, onWritten: deps.onWritten, onDropped: deps.onDropped });
  return { store, debug: new DebugFilter(c.debugNumbers), close: () => store.close() };
}
