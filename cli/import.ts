/** `sipflow import`: CSV batch provisioning, all rows or none, every row error listed. */
import { SingleBar, Presets } from 'cli-progress';
import path from 'path';
import { CsvError, parseCsv, type ImportFile, type RawRow, type Subscribers } from '../services/directory';

export async function runImport(
  s: Subscribers,
  files: Partial<Record<ImportFile, string>>,
  readText: (file: string, what: string) => string,
): Promise<boolean> {
  const batch: { customers?: RawRow[]; numbers?: RawRow[] } = {};
  const bar = process.stderr.isTTY
    ? new SingleBar({ format: 'import [{bar}] {percentage}% {value}/{total} {step}', stream: process.stderr }, Presets.shades_classic)
    : null;
  const kinds = (Object.keys(files) as ImportFile[]).filter((k) => files[k]);
  bar?.start(kinds.length + 1, 0, { step: 'reading' });
  for (const kind of kinds) {
    const file = files[kind]!;
    try {
      batch[kind] = parseCsv(readText(file, `${kind} CSV`), kind);
    } catch (e) {
      bar?.stop();
      if (e instanceof CsvError) {
        console.error(`${path.basename(file)}: ${e.message}`);
        return false;
      }
      throw e;
    }
    bar?.increment(1, { step: `${kind}: ${batch[kind]!.length} rows` });
  }
  bar?.update({ step: 'validating and writing' });
  const result = await s.importBatch(batch);
  bar?.increment(1, { step: result.ok ? 'done' : 'rejected' });
  bar?.stop();
  if (result.ok) {
    console.log(`imported ${result.customers} customer(s) and ${result.numbers} number(s)`);
    return true;
  }
  for (const e of result.errors) {
    const file = files[e.file] ? path.basename(files[e.file]!) : e.file;
    console.error(`${file} row ${e.row}${e.column ? ` column ${e.column}` : ''}: ${e.message}`);
  }
  console.error(`nothing imported: ${result.errors.length} row error(s)`);
  return false;
}
