/**
 * Accounting (CDRs): the builder that follows calls on each SIP thread (cdr-builder.ts), the writer
 * on the dispatching thread (writer.ts) and its sinks: the `cdrs` table (database.ts) and
 * JSON-lines files (json-lines.ts). docs/operations.md, "Accounting".
 */
import type { Knex } from 'knex';
import type { LogPort } from '../../engine/ports';
import { databaseSink } from './database';
import { jsonLinesSink } from './json-lines';
import { CdrWriter, type CdrSink } from './writer';

export { CdrBuilder, SWEEP_MS, SETUP_MAX_MS, VALUE_MAX_CHARS, type CdrBuilderOptions, type CdrSwitches, type CallSetupEvent } from './cdr-builder';
export { CdrWriter, RETRY_MAX_MS, type CdrSink, type CdrWriterOptions } from './writer';
export { databaseSink, searchCdrs, CDR_TABLE, CDR_OUTCOMES, SEARCH_MAX, type CdrSearch, type CdrJson, type CdrOutcome } from './database';
export { jsonLinesSink, cdrLine, type JsonLinesOptions } from './json-lines';
export { CDR_KINDS, type CdrKind, type CdrRecord } from './record';

/** The `accounting` config block as the writer reads it. */
export interface AccountingWriterConfig {
  database: boolean;
  file: string | null;
  fileRotateBytes: number;
  fileKeep: number;
  batchSize: number;
  flushMs: number;
  backlogMax: number;
}

/** The writer of the configured sinks (none configured: a writer that drops nothing because it takes nothing). */
export function openCdrWriter(
  c: AccountingWriterConfig,
  deps: { knex?: Knex; log?: LogPort; onOverflow?: (sink: string) => void; onWritten?: (sink: string, n: number) => void },
): CdrWriter {
  const sinks: CdrSink[] = [];
  if (c.database) {
    if (!deps.knex) throw new Error('accounting.database: no directory database to write CDRs to');
    sinks.push(databaseSink(deps.knex));
  }
  if (c.file !== null) sinks.push(jsonLinesSink({ file: c.file, rotateBytes: c.fileRotateBytes, keep: c.fileKeep }));
  return new CdrWriter(sinks, {
    batchSize: c.batchSize,
    flushMs: c.flushMs,
    backlogMax: c.backlogMax,
    log: deps.log,
    onOverflow: deps.onOverflow,
    onWritten: deps.onWritten,
  });
}
export { cdrsCsv, csvCell } from './csv';
