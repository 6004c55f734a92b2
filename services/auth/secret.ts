/**
 * The nonce secret shared by every sipflow instance (so any instance verifies another's nonces).
 * Never log it: whoever holds it can mint nonces that pass the MAC check.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const SECRET_FILE = 'nonce-secret';
const SECRET_BYTES = 32;
/** Shorter secrets are refused: a guessable secret lets anyone forge nonces. */
export const MIN_SECRET_BYTES = 16;

/**
 * A configured secret string as key bytes. Hex of at least MIN_SECRET_BYTES bytes is decoded, so
 * pasting the content of a `nonce-secret` file into SIPFLOW_NONCE_SECRET yields the same key as
 * an instance reading that file; any other string is used as its UTF-8 bytes.
 */
export function secretFromString(value: string): Buffer {
  const v = value.trim();
  const key = /^(?:[0-9a-fA-F]{2}){16,}$/.test(v) ? Buffer.from(v, 'hex') : Buffer.from(v, 'utf8');
  if (key.length < MIN_SECRET_BYTES) throw new Error(`nonce secret must be at least ${MIN_SECRET_BYTES} bytes`);
  return key;
}

/** Reads `<dataDir>/nonce-secret` (hex), creating it (32 random bytes, mode 0600) when absent. */
export function loadOrCreateSecret(dataDir: string): Buffer {
  const file = join(dataDir, SECRET_FILE);
  const existing = readSecretFile(file);
  if (existing) return existing;
  mkdirSync(dataDir, { recursive: true, mode: 0o700 }); // the data dir holds secrets: owner only
  const key = randomBytes(SECRET_BYTES);
  try {
    // 'wx': never overwrite. If another process created the file meanwhile, use its secret so
    // both instances agree.
    writeFileSync(file, key.toString('hex') + '\n', { mode: 0o600, flag: 'wx' });
    return key;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    const raced = readSecretFile(file);
    if (!raced) throw new Error(`${file} is empty`, { cause: err });
    return raced;
  }
}

function readSecretFile(file: string): Buffer | null {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  // A corrupt file is an error, not a reason to regenerate: a new secret would silently
  // invalidate the nonces of every instance still using the old one. (Message omits the content.)
  const hex = text.trim();
  if (!/^(?:[0-9a-fA-F]{2})+$/.test(hex) || hex.length / 2 < MIN_SECRET_BYTES) {
    throw new Error(`${file} does not hold a hex secret of at least ${MIN_SECRET_BYTES} bytes`);
  }
  return Buffer.from(hex, 'hex');
}

export interface ResolveSecretOptions {
  /** Configured value (config file or SIPFLOW_NONCE_SECRET); wins over the data directory. */
  env?: string;
  dataDir?: string;
}

/** The configured secret when there is one, else the data directory's (created if needed). */
export function resolveSecret({ env = process.env.SIPFLOW_NONCE_SECRET, dataDir }: ResolveSecretOptions = {}): Buffer {
  if (env !== undefined && env.trim() !== '') return secretFromString(env);
  if (dataDir === undefined) throw new Error('no nonce secret: set SIPFLOW_NONCE_SECRET or a data directory');
  return loadOrCreateSecret(dataDir);
}
