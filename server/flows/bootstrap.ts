/**
 * Bootstrap of the flows store: seeding the shipped `.slid` files into an empty store, and the
 * poll through which an instance notices other instances' activations.
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'fs';
import path from 'path';

/** Reads the name of a flow from a file name (`flows/pbx.slid` → `pbx`). */
export const flowNameOf = (file: string) => path.basename(file).replace(/\.slid$/i, '');

/** The `.slid` files a config `flows` entry names: every one of a folder (sorted), or the one file. */
export function shippedFlowFiles(dir: string): Array<{ file: string; name: string; read(): string; readTests(): string | undefined }> {
  const single = statSync(dir).isFile();
  const files = single ? [path.basename(dir)] : readdirSync(dir).filter((f) => f.endsWith('.slid')).sort();
  const folder = single ? path.dirname(dir) : dir;
  return files.map((file) => ({
    file,
    name: flowNameOf(file),
    read: () => readFileSync(path.join(folder, file), 'utf8'),
    // the test cases beside it (`<name>.tests.json`), when there are any
    readTests: () => {
      const tests = path.join(folder, `${flowNameOf(file)}.tests.json`);
      return existsSync(tests) ? readFileSync(tests, 'utf8') : undefined;
    },
  }));
}

/** What seeding needs of the store. */
export interface SeedTarget {
  /** Number of stored flows. */
  count(): Promise<number>;
  saveDevelopment(name: string, text: string): Promise<unknown>;
  release(name: string, note: string): Promise<{ version: number }>;
  /** Activates at start (listeners see source 'start'). */
  activate(name: string, version: number): Promise<unknown>;
  /** Loads the active set (source 'start'). */
  reload(): Promise<unknown>;
  /** Stores the flow's test cases (`<name>.tests.json` beside the `.slid`), before its release freezes them. */
  saveTests?(name: string, text: string): Promise<unknown>;
  warn(message: string, err?: unknown): void;
}

/**
 * On an empty store: imports every `*.slid` of `dir` (or the one file `dir` names) as a flow named
 * after its file, released as v1 and activated; returns the names imported. On a store that has
 * flows: loads the active set and imports nothing.
 */
export async function seedShippedFlows(dir: string, t: SeedTarget): Promise<string[]> {
  if (await t.count() > 0) { await t.reload(); return []; }
  const imported: string[] = [];
  for (const { file, name, read, readTests } of shippedFlowFiles(dir)) {
    const text = read();
    try {
      await t.saveDevelopment(name, text);
    } catch (e) {
      // Another instance bootstrapping at the same moment, or a broken shipped file: skip it.
      t.warn(`bootstrap: ${file} not imported: ${(e as Error).message}`, e);
      continue;
    }
    const tests = t.saveTests ? readTests() : undefined;
    if (tests !== undefined) {
      // a bad test file does not keep its flow out: the flow is imported without its tests
      await t.saveTests!(name, tests).catch((e: Error) => t.warn(`bootstrap: ${name}.tests.json not imported: ${e.message}`, e));
    }
    const rel = await t.release(name, `imported from ${file}`);
    await t.activate(name, rel.version);
    imported.push(name);
  }
  await t.reload();
  return imported;
}

/** Calls `refresh` every `ms` (never two at once; unref'd timer); returns the stop function. */
export function startPolling(refresh: () => Promise<unknown>, ms: number, warn: (message: string, err?: unknown) => void): () => void {
  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    refresh().catch((e) => warn(`flow activation poll failed: ${(e as Error).message}`, e)).finally(() => { running = false; });
  }, ms);
  timer.unref();
  return () => clearInterval(timer);
}
