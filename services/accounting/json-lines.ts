/**
 * The writer's file sink: one JSON object per line (JSON escapes CR, LF and quotes, so a value a
 * caller chose stays data), appended one batch per write. Rotation by size: when a batch would
 * take the file past `rotateBytes`, `file` becomes `file.1` (`file.1` → `file.2`, …) and a new
 * `file` starts; `keep` rotated files are kept, older ones removed. A batch is never split across
 * two files. Mode 0600: a record may name subscribers and numbers.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { CdrRecord } from './record';
import type { CdrSink } from './writer';

export interface JsonLinesOptions {
  file: string;
  rotateBytes: number;
  /** Rotated files kept (file.1 … file.N). */
  keep: number;
}

/** A record as a JSON line: times as ISO 8601. */
export function cdrLine(r: CdrRecord): string {
  const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
  return (
    JSON.stringify({
      kind: r.kind,
      callId: r.callId,
      at: iso(r.at),
      setupAt: iso(r.setupAt),
      connectAt: iso(r.connectAt),
      endAt: iso(r.endAt),
      duration: r.duration,
      calling: r.calling,
      called: r.called,
      source: r.source,
      destination: r.destination,
      status: r.status,
      reason: r.reason,
      logic: r.logic,
      variables: r.variables,
      fields: r.fields,
    }) + '\n'
  );
}

export function jsonLinesSink(o: JsonLinesOptions): CdrSink {
  let size: number | null = null; // unknown until the first write
  const rotate = async () => {
    await fs.rm(`${o.file}.${o.keep}`, { force: true });
    for (let i = o.keep - 1; i >= 1; i--) await fs.rename(`${o.file}.${i}`, `${o.file}.${i + 1}`).catch(() => undefined);
    if (o.keep >= 1) await fs.rename(o.file, `${o.file}.1`).catch(() => undefined);
    else await fs.rm(o.file, { force: true });
    size = 0;
  };
  return {
    name: 'file',
    async write(batch) {
      const text = batch.map(cdrLine).join('');
      const bytes = Buffer.byteLength(text);
      if (size === null) {
        await fs.mkdir(path.dirname(o.file), { recursive: true });
        size = await fs.stat(o.file).then(
          (s) => s.size,
          () => 0,
        );
      }
      if (size > 0 && size + bytes > o.rotateBytes) await rotate();
      await fs.appendFile(o.file, text, { mode: 0o600 });
      size += bytes;
    },
  };
}
