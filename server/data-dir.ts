/**
 * The data directory holds secrets: the API token, the nonce secret and, with the embedded
 * directory, PGlite's files (the subscribers' clear-text passwords, in the tables and the WAL).
 * Only the user running sipflow may read them: folders 0700, files 0600.
 *
 *  - `restrictUmask()` at the start of every command that writes there: whatever creates a file
 *    afterwards (PGlite, its WAL segments, the token) gets no group/other bits;
 *  - `secureDataDir()` tightens what is already there (an older install, a copied backup, files
 *    written before the umask): every folder to 0700 and every file to its owner bits only,
 *    symbolic links left alone; the caller logs one warning when anything had to be fixed.
 */
import { chmodSync, lstatSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';

/** Group and other permission bits. */
const LOOSE = 0o077;

/** The process umask becomes 0o077 (no group/other bits on anything created from now on). No-op where the platform refuses (worker threads). */
export function restrictUmask(): void {
  try {
    process.umask(0o077);
  } catch {
    /* worker threads cannot change the umask: the main thread did */
  }
}

export interface SecureResult {
  /** The folder did not exist and was created (0700). */
  created: boolean;
  /** Paths (relative to the folder, '.' for itself) whose group/other bits were removed. */
  fixed: string[];
  /** Paths that could not be fixed (not ours), with the reason. */
  failed: Array<{ path: string; error: string }>;
}

/**
 * Makes `dir` and everything under it private to its owner. `create` (default true) creates it
 * with 0700 when missing; otherwise a missing folder is left missing.
 */
export function secureDataDir(dir: string, o: { create?: boolean } = {}): SecureResult {
  const result: SecureResult = { created: false, fixed: [], failed: [] };
  let st;
  try {
    st = statSync(dir); // the data dir itself may be a link (e.g. to a volume): secure what it points to
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    if (o.create === false) return result;
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    chmodSync(dir, 0o700); // mkdir's mode is masked by the umask: set it exactly
    result.created = true;
    return result;
  }
  const visit = (p: string, rel: string, isDir: boolean, mode: number) => {
    if ((mode & LOOSE) !== 0) {
      try {
        chmodSync(p, isDir ? (mode & 0o700) | 0o700 : mode & 0o700);
        result.fixed.push(rel);
      } catch (e) {
        result.failed.push({ path: rel, error: (e as NodeJS.ErrnoException).code ?? (e as Error).message });
      }
    }
    if (!isDir) return;
    let entries;
    try {
      entries = readdirSync(p, { withFileTypes: true });
    } catch (e) {
      result.failed.push({ path: rel, error: (e as NodeJS.ErrnoException).code ?? (e as Error).message });
      return;
    }
    for (const entry of entries) {
      if (entry.isSymbolicLink()) continue; // chmod would change the link's target, maybe outside the data dir
      const child = path.join(p, entry.name);
      const childRel = rel === '.' ? entry.name : path.join(rel, entry.name);
      let cst;
      try {
        cst = lstatSync(child);
      } catch {
        continue;
      } // removed meanwhile
      if (cst.isDirectory() || cst.isFile()) visit(child, childRel, cst.isDirectory(), cst.mode);
    }
  };
  if (st.isDirectory()) visit(dir, '.', true, st.mode);
  return result;
}

/** One warning line's worth: what was loose and has been fixed (never file contents). */
export function describeFixed(dir: string, r: SecureResult): { message: string; fields: Record<string, unknown> } | null {
  if (r.fixed.length === 0 && r.failed.length === 0) return null;
  const fields: Record<string, unknown> = { dataDir: dir, fixed: r.fixed.length, examples: r.fixed.slice(0, 5) };
  if (r.failed.length) fields.notFixed = r.failed.slice(0, 5);
  const message = r.failed.length
    ? `data dir ${dir}: ${r.fixed.length} file(s)/folder(s) were readable or writable by group/other and are now 0600/0700; ${r.failed.length} could not be changed (not owned by this user?)`
    : `data dir ${dir}: ${r.fixed.length} file(s)/folder(s) were readable or writable by group/other; tightened to 0600 (files) and 0700 (folders)`;
  return { message, fields };
}

/**
 * The start of a command that writes to the data dir: umask 0o077, then `secureDataDir` on each
 * folder given (the data dir, and a PGlite directory outside it), and one warning through `warn`
 * when anything was loose. Returns what was fixed.
 */
export function hardenDataDirs(
  dirs: Array<{ dir: string; create?: boolean }>,
  warn: (message: string, fields: Record<string, unknown>) => void,
): SecureResult[] {
  restrictUmask();
  const seen = new Set<string>();
  const results: SecureResult[] = [];
  const ordered = dirs.map((d) => ({ ...d, abs: path.resolve(d.dir) })).sort((a, b) => a.abs.length - b.abs.length);
  for (const { dir, create, abs } of ordered) {
    if ([...seen].some((s) => abs === s || abs.startsWith(s + path.sep))) continue; // inside one already done
    seen.add(abs);
    const r = secureDataDir(abs, { create });
    results.push(r);
    const w = describeFixed(dir, r);
    if (w) warn(w.message, w.fields);
  }
  return results;
}
