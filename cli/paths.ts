import path from 'path';
import { parseDirectoryUrl } from '../services/directory/connect';

/**
 * The folders a command writes secrets to: the data dir (API token, nonce secret) and the PGlite
 * directory when it lives elsewhere. Existing ones are made private (0700/0600) before use.
 */
export function secretDirs(dataDir: string, directory: string | undefined): Array<{ dir: string; create: boolean }> {
  const dirs = [{ dir: dataDir, create: false }];
  try {
    const target = parseDirectoryUrl(directory ?? path.join(dataDir, 'directory'));
    if (target.kind === 'pglite-dir') dirs.push({ dir: target.dir, create: false });
  } catch {
    /* a bad URL is reported by the command itself */
  }
  return dirs;
}
