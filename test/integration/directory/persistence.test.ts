/**
 * Directory URLs, and an embedded directory persisted to a data directory across close/reopen.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { openDirectory, parseDirectoryUrl, maskPassword, migrate, seed, createDirectory, createSubscribers } from '../../../services/directory';

describe('directory URLs', () => {
  it('classifies memory, data directories and PostgreSQL', () => {
    expect(parseDirectoryUrl('memory://')).toEqual({ kind: 'pglite-memory' });
    expect(parseDirectoryUrl('/var/lib/sipflow/db')).toEqual({ kind: 'pglite-dir', dir: '/var/lib/sipflow/db' });
    expect(parseDirectoryUrl('pglite:./data/db')).toEqual({ kind: 'pglite-dir', dir: path.resolve('data/db') });
    expect(parseDirectoryUrl('data')).toEqual({ kind: 'pglite-dir', dir: path.resolve('data') });
    expect(parseDirectoryUrl('postgres://u:p@db:5432/sipflow')).toEqual({ kind: 'postgres', url: 'postgres://u:p@db:5432/sipflow' });
    expect(parseDirectoryUrl('postgresql://db/sipflow')).toMatchObject({ kind: 'postgres' });
  });

  it('refuses anything else, naming the URL without its password', () => {
    expect(() => openDirectory('mysql://root:hunter2@db/sipflow')).toThrow('unsupported directory URL "mysql://root:***@db/sipflow"');
    expect(() => openDirectory('mongodb://u:hunter2@h/x')).not.toThrow(/hunter2/);
    expect(() => openDirectory('pglite:')).toThrow(/names no data directory/);
    expect(maskPassword('postgres://user:s3cr:et@host/db')).toBe('postgres://user:***@host/db');
  });

  it('configures a PostgreSQL pool with min 0 and a configurable max', async () => {
    const pg = openDirectory('postgres://u:p@127.0.0.1:1/none', { poolMax: 3 });
    const pool = (pg.client as { config: { pool: { min: number; max: number } } }).config.pool;
    expect(pool).toEqual({ min: 0, max: 3 });
    await pg.destroy();
    const dflt = openDirectory('postgres://u:p@127.0.0.1:1/none');
    expect((dflt.client as { config: { pool: { max: number } } }).config.pool.max).toBe(10);
    await dflt.destroy();
  });
});

describe('persistence', () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sipflow-directory-'));
  const dataDir = path.join(root, 'not', 'yet', 'there');
  afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

  it('keeps the directory in its data directory across close and reopen', async () => {
    const first = openDirectory(dataDir);
    // every migration of an empty directory: the subscribers and numbers tables, the CDRs table, the call history
    expect(await migrate(first)).toEqual(['directory_001_registration_customers_and_numbers', 'directory_002_cdrs', 'directory_003_call_history']);
    await seed(first);
    await createSubscribers(first).addCustomer({ name: 'Kept', username: 'kept', password: 'pw' });
    await first.destroy();
    expect(fs.readdirSync(dataDir)).toContain('PG_VERSION');

    const again = openDirectory(`pglite:${dataDir}`);
    expect(await migrate(again)).toEqual([]);
    const dir = createDirectory(again);
    const rows = await dir.query({
      tables: ['registration.customers'],
      fields: ['customers.name', 'customers.password'],
      joins: [],
      joinType: 'JOIN',
      conditions: [{ field: 'customers.username', operator: 'in', value: ['francesco', 'kept'] }],
      logic: 'and',
      orderBy: [{ field: 'customers.id', direction: 'asc' }],
      offset: 0,
    });
    expect(rows).toEqual([
      { 'customers.name': 'Netaxis NL', 'customers.password': '123456' },
      { 'customers.name': 'Kept', 'customers.password': 'pw' },
    ]);
    await dir.close();
  });
});
