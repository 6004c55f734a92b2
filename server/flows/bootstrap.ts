/**
 * Bootstrap of the flows store: importing a flows folder (the shipped `.slid` files, or `--flows`)
 * at start, and the poll through which an instance notices other instances' activations.
 *
 * The first start (an empty store) imports every file as release 1 and activates it. A later start
 * never activates: each file whose content (the `.slid` and its `.tests.json`, hashed) was not
 * imported before becomes a new release of its flow, not active, and a note names the file, the
 * release and how to activate it; an unchanged file is skipped silently (sipflow.shipped_imports,
 * ./repository.ts). So an operator's edit of a shipped file, an upgrade's new shipped flows or a
 * `--flows` folder on a later start is neither lost silently nor put in service behind the
 * operator's back. Runs under the startup lock (server/serve.ts openFlows): instances starting
 * together import each file once.
 */
import { createHash } from 'crypto';
import { existsSync, readFileSync, readdirSync, statSync } from 'fs';
import path from 'path';

/**
 * The flows shipped with sipflow: `flows/` of the installation, found from this module (the
 * sources under ts-jest, dist/ once built), never from the working directory.
 */
export function shippedFlowsDir(): string {
  for (const up of ['../..', '../../..']) {
    const dir = path.resolve(__dirname, up, 'flows');
    if (existsSync(path.join(dir, 'registration.slid'))) return dir;
  }
  throw new Error(`the shipped flows/ folder is not in the sipflow installation (${path.resolve(__dirname, '../..')}): reinstall sipflow, or give flows / --flows`);
}

/** Reads the name of a flow from a file name (`flows/pbx.slid` → `pbx`). */
export const flowNameOf = (file: string) => path.basename(file).replace(/\.slid$/i, '');

/** The `.slid` files a config `flows` entry names: every one of a folder (sorted), or the one file. */
export function shippedFlowFiles(dir: string): Array<{ file: string; path: string; name: string; read(): string; readTests(): string | undefined }> {
  const single = statSync(dir).isFile();
  const files = single ? [path.basename(dir)] : readdirSync(dir).filter((f) => f.endsWith('.slid')).sort();
  const folder = single ? path.dirname(dir) : dir;
  return files.map((file) => ({
    file,
    path: path.resolve(folder, file),
    name: flowNameOf(file),
    read: () => readFileSync(path.join(folder, file), 'utf8'),
    // the test cases beside it (`<name>.tests.json`), when there are any
    readTests: () => {
      const tests = path.join(folder, `${flowNameOf(file)}.tests.json`);
      return existsSync(tests) ? readFileSync(tests, 'utf8') : undefined;
    },
  }));
}

/** The hash an import is recorded under: the `.slid` and its test cases. */
const contentHash = (slid: string, tests: string | undefined) =>
  createHash('sha256').update(slid).update('\0').update(tests ?? '').digest('hex');

/** What seeding needs of the store. */
export interface SeedTarget {
  /** Number of stored flows. */
  count(): Promise<number>;
  exists(name: string): Promise<boolean>;
  saveDevelopment(name: string, text: string): Promise<unknown>;
  release(name: string, note: string): Promise<{ version: number }>;
  /** A release of this text and test cases, the development copy untouched (compiled first: FlowProblemsError). */
  releaseCopy(name: string, text: string, tests: string | null, note: string): Promise<{ version: number }>;
  /** The newest release with exactly this text and test cases. */
  releaseMatching(name: string, text: string, tests: string | null): Promise<number | undefined>;
  activeVersion(name: string): Promise<number | undefined>;
  /** Activates at start (listeners see source 'start'). */
  activate(name: string, version: number): Promise<unknown>;
  /** Loads the active set (source 'start'). */
  reload(): Promise<unknown>;
  /** Stores the flow's test cases (`<name>.tests.json` beside the `.slid`), before its release freezes them. */
  saveTests?(name: string, text: string): Promise<unknown>;
  imported(name: string, sha256: string): Promise<boolean>;
  record(row: { flow: string; sha256: string; file: string; version: number | null }): Promise<void>;
  warn(message: string, err?: unknown): void;
  /** What a later start imported, for the operator (a log line). */
  note(message: string): void;
}

/** How a note tells the operator to put a release in service. */
const howToActivate = (name: string, version: number) =>
  `activate it in the designer (Releases) or with POST /api/v1/flows/${name}/releases/${version}/activate`;

/**
 * Imports the `*.slid` files of `dir` (or the one file `dir` names) as flows named after their
 * files. On an empty store every one is released as v1 and activated; on a store with flows, a
 * file not imported before becomes a new release, not active (see the header). Returns the names
 * of the flows given a release.
 */
export async function seedShippedFlows(dir: string, t: SeedTarget): Promise<string[]> {
  const first = (await t.count()) === 0;
  const imported: string[] = [];
  for (const f of shippedFlowFiles(dir)) {
    const text = f.read();
    const tests = t.saveTests ? f.readTests() : undefined;
    const sha256 = contentHash(text, tests);
    if (!first && (await t.imported(f.name, sha256))) continue;
    try {
      const version = first ? await importFirst(f, text, tests, t) : await importLater(f, text, tests ?? null, t);
      if (version === null) continue;
      await t.record({ flow: f.name, sha256, file: f.path, version: version.version });
      if (version.imported) imported.push(f.name);
    } catch (e) {
      // A broken file (or a flow the operator named otherwise): the others are imported; this one is said again next start.
      t.warn(`bootstrap: ${f.path} not imported: ${(e as Error).message}`, e);
    }
  }
  await t.reload();
  return imported;
}

type FlowFile = ReturnType<typeof shippedFlowFiles>[number];

/** First start: release 1, active. */
async function importFirst(f: FlowFile, text: string, tests: string | undefined, t: SeedTarget): Promise<{ version: number; imported: boolean }> {
  await t.saveDevelopment(f.name, text);
  if (tests !== undefined) {
    // a bad test file does not keep its flow out: the flow is imported without its tests
    await t.saveTests!(f.name, tests).catch((e: Error) => t.warn(`bootstrap: ${f.name}.tests.json not imported: ${e.message}`, e));
  }
  const rel = await t.release(f.name, `imported from ${f.file}`);
  await t.activate(f.name, rel.version);
  return { version: rel.version, imported: true };
}

/**
 * Later start, content not recorded: already a release (a store from before shipped_imports, a
 * copy of the same file elsewhere) → recorded, nothing said; else a new release, not active, and
 * a note. Null: nothing to record.
 */
async function importLater(f: FlowFile, text: string, tests: string | null, t: SeedTarget): Promise<{ version: number; imported: boolean } | null> {
  if (!(await t.exists(f.name))) {
    await t.saveDevelopment(f.name, text);
    if (tests !== null) await t.saveTests!(f.name, tests).catch((e: Error) => t.warn(`bootstrap: ${f.name}.tests.json not imported: ${e.message}`, e));
    const rel = await t.release(f.name, `imported from ${f.path}`);
    t.note(`flows: ${f.path} is a new flow "${f.name}": imported as release ${rel.version}, not active; ${howToActivate(f.name, rel.version)}`);
    return { version: rel.version, imported: true };
  }
  const same = await t.releaseMatching(f.name, text, tests);
  if (same !== undefined) return { version: same, imported: false };
  const rel = await t.releaseCopy(f.name, text, tests, `imported from ${f.path}`);
  const active = await t.activeVersion(f.name);
  t.note(
    `flows: ${f.path} differs from every release of flow "${f.name}": imported as release ${rel.version}, not active (${active === undefined ? 'no release active' : `release ${active} stays active`}); ${howToActivate(f.name, rel.version)}`,
  );
  return { version: rel.version, imported: true };
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
