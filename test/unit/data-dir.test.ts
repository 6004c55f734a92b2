/** The data dir is private: folders 0700, files 0600, one warning when it was not. */
import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from 'fs';
import os from 'os';
import path from 'path';
import { hardenDataDirs, secureDataDir } from '../../server/data-dir';

const mode = (p: string) => statSync(p).mode & 0o777;
let umask: number;
let root: string;
beforeAll(() => {
  umask = process.umask(0o022);
  root = mkdtempSync(path.join(os.tmpdir(), 'sipflow-datadir-'));
});
afterAll(() => {
  process.umask(umask);
  rmSync(root, { recursive: true, force: true });
});

function looseTree(name: string): string {
  const dir = path.join(root, name);
  mkdirSync(path.join(dir, 'directory', 'pg_wal'), { recursive: true });
  chmodSync(dir, 0o755);
  chmodSync(path.join(dir, 'directory'), 0o777);
  writeFileSync(path.join(dir, 'api-token'), 't\n');
  chmodSync(path.join(dir, 'api-token'), 0o644);
  writeFileSync(path.join(dir, 'directory', 'pg_wal', '000000010000000000000001'), 'WAL-CONTENT-pw');
  chmodSync(path.join(dir, 'directory', 'pg_wal', '000000010000000000000001'), 0o666);
  writeFileSync(path.join(dir, 'run.sh'), '#!/bin/sh\n');
  chmodSync(path.join(dir, 'run.sh'), 0o755);
  return dir;
}

test('tightens every folder to 0700 and every file to its owner bits; links are not followed', () => {
  const dir = looseTree('a');
  const outside = path.join(root, 'outside.txt');
  writeFileSync(outside, 'x');
  chmodSync(outside, 0o644);
  symlinkSync(outside, path.join(dir, 'link'));
  const r = secureDataDir(dir);
  expect(r.created).toBe(false);
  expect(r.fixed.sort()).toEqual(['.', 'api-token', 'directory', 'directory/pg_wal', 'directory/pg_wal/000000010000000000000001', 'run.sh'].sort());
  expect(mode(dir)).toBe(0o700);
  expect(mode(path.join(dir, 'directory'))).toBe(0o700);
  expect(mode(path.join(dir, 'api-token'))).toBe(0o600);
  expect(mode(path.join(dir, 'directory', 'pg_wal', '000000010000000000000001'))).toBe(0o600);
  expect(mode(path.join(dir, 'run.sh'))).toBe(0o700); // owner bits kept
  expect(mode(outside)).toBe(0o644); // the link's target is not ours to change
  expect(secureDataDir(dir).fixed).toEqual([]); // nothing left to do
});

test('a missing folder: created 0700 (default), or left missing with create: false', () => {
  const missing = path.join(root, 'new', 'data');
  expect(secureDataDir(missing, { create: false })).toEqual({ created: false, fixed: [], failed: [] });
  expect(() => statSync(missing)).toThrow();
  expect(secureDataDir(missing).created).toBe(true);
  expect(mode(missing)).toBe(0o700);
});

test('hardenDataDirs: umask 0o077, one warning naming how many were fixed (no content), none when already private', () => {
  const dir = looseTree('b');
  const warnings: Array<[string, Record<string, unknown>]> = [];
  const warn = (m: string, f: Record<string, unknown>) => warnings.push([m, f]);
  // the PGlite directory inside the data dir is covered once
  hardenDataDirs([{ dir: path.join(dir, 'directory') }, { dir }], warn);
  expect(warnings).toHaveLength(1);
  expect(warnings[0][0]).toMatch(/group\/other.*0600.*0700/);
  expect(warnings[0][1]).toMatchObject({ dataDir: dir, fixed: 6 });
  expect(JSON.stringify(warnings)).not.toContain('WAL-CONTENT'); // names, never contents
  // umask: what is created from now on has no group/other bits
  writeFileSync(path.join(dir, 'later'), 'x');
  expect(mode(path.join(dir, 'later'))).toBe(0o600);
  hardenDataDirs([{ dir }], warn);
  expect(warnings).toHaveLength(1);
  process.umask(0o022);
});
