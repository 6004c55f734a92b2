import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadOrCreateSecret, resolveSecret, secretFromString } from '../../../services/auth/secret';

describe('nonce secret', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'sipflow-secret-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('creates a 32-byte hex secret with mode 0600, creating the directory', () => {
    const dataDir = join(dir, 'a', 'b');
    const key = loadOrCreateSecret(dataDir);
    expect(key.length).toBe(32);
    const file = join(dataDir, 'nonce-secret');
    expect(readFileSync(file, 'utf8').trim()).toBe(key.toString('hex'));
    if (process.platform !== 'win32') expect(statSync(file).mode & 0o777).toBe(0o600);
  });

  it('reuses the existing secret', () => {
    const first = loadOrCreateSecret(dir);
    expect(loadOrCreateSecret(dir).equals(first)).toBe(true);
  });

  it('reads a hand-written hex file and refuses a corrupt one without echoing it', () => {
    writeFileSync(join(dir, 'nonce-secret'), 'ab'.repeat(20) + '\n');
    expect(loadOrCreateSecret(dir).toString('hex')).toBe('ab'.repeat(20));
    writeFileSync(join(dir, 'nonce-secret'), 'not-hex-TOPSECRET');
    expect(() => loadOrCreateSecret(dir)).toThrow(/hex secret/);
    try {
      loadOrCreateSecret(dir);
    } catch (e) {
      expect(String(e)).not.toContain('TOPSECRET');
    }
  });

  it('lets a configured value win over the data directory', () => {
    const fromFile = loadOrCreateSecret(dir);
    const key = resolveSecret({ env: 'a passphrase of enough length', dataDir: dir });
    expect(key.toString('utf8')).toBe('a passphrase of enough length');
    expect(key.equals(fromFile)).toBe(false);
    expect(resolveSecret({ env: '', dataDir: dir }).equals(fromFile)).toBe(true);
  });

  it('decodes a hex value so a copied nonce-secret file gives the same key', () => {
    const fromFile = loadOrCreateSecret(dir);
    expect(resolveSecret({ env: fromFile.toString('hex') }).equals(fromFile)).toBe(true);
  });

  it('reads SIPFLOW_NONCE_SECRET by default', () => {
    const saved = process.env.SIPFLOW_NONCE_SECRET;
    process.env.SIPFLOW_NONCE_SECRET = 'from the environment!';
    try {
      expect(resolveSecret({ dataDir: dir }).toString()).toBe('from the environment!');
    } finally {
      if (saved === undefined) delete process.env.SIPFLOW_NONCE_SECRET;
      else process.env.SIPFLOW_NONCE_SECRET = saved;
    }
  });

  it('refuses short secrets and a missing source', () => {
    expect(() => secretFromString('short')).toThrow();
    const saved = process.env.SIPFLOW_NONCE_SECRET;
    delete process.env.SIPFLOW_NONCE_SECRET;
    try {
      expect(() => resolveSecret({})).toThrow(/no nonce secret/);
    } finally {
      if (saved !== undefined) process.env.SIPFLOW_NONCE_SECRET = saved;
    }
  });
});
