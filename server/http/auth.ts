/**
 * Bearer-token authentication of the HTTP API. The token comes from `http.token` in the config or,
 * when unset, is generated once (32 random bytes, hex) into `<dataDir>/api-token` with mode 0600
 * and read from there on later starts. It is compared in constant time and never logged.
 */
import { createHash, randomBytes, timingSafeEqual } from 'crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'fs';
import path from 'path';

export const API_TOKEN_FILE = 'api-token';

/** The API token: configured, else read from (or generated once into) `<dataDir>/api-token`. */
export function resolveApiToken(o: { token?: string; dataDir: string }): string {
  if (o.token) return o.token;
  const file = path.join(o.dataDir, API_TOKEN_FILE);
  const read = () => readFileSync(file, 'utf8').trim();
  try {
    const existing = read();
    if (existing.length >= 16) return existing;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  mkdirSync(o.dataDir, { recursive: true, mode: 0o700 }); // the data dir holds secrets: owner only
  const token = randomBytes(32).toString('hex');
  try {
    // 'wx': when another process created it meanwhile, theirs wins.
    writeFileSync(file, token + '\n', { mode: 0o600, flag: 'wx' });
    return token;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return read();
    throw e;
  }
}

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

/** A checker comparing presented tokens with `token` in constant time (digests of equal length). */
export function tokenChecker(token: string): (authorization: string | undefined) => 'ok' | 'missing' | 'invalid' {
  const expected = digest(token);
  return (authorization) => {
    if (!authorization) return 'missing';
    const m = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    if (!m) return 'missing';
    return timingSafeEqual(digest(m[1]), expected) ? 'ok' : 'invalid';
  };
}
