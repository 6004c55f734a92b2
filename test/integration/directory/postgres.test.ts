/**
 * The same directory on a real PostgreSQL server through `pg` (the production path): migrations,
 * the auth lookup with a named prepared statement, and a refused connection mapped to unavailable.
 */
import type { Knex } from 'knex';
import { scratchDatabase } from '../../setup/servers';
import { openDirectory, migrate, seed, createDirectory, Directory, DirectoryError, DirectoryQuery } from '../../../services/directory';

let db: Awaited<ReturnType<typeof scratchDatabase>>;
let knex: Knex;
let dir: Directory;

beforeAll(async () => {
  db = await scratchDatabase(`sipflow_directory_${process.pid}`);
  // One pooled connection, so the session-level prepared statements can be inspected.
  knex = openDirectory(db.url, { poolMax: 1 });
  await migrate(knex);
  await seed(knex);
  dir = createDirectory(knex);
});

afterAll(async () => {
  await knex?.destroy();
  await db?.drop();
});

const auth = (username: string): DirectoryQuery => ({
  tables: ['registration.customers'],
  fields: ['customers.password', 'customers.name'],
  joins: [],
  joinType: 'JOIN',
  conditions: [{ field: 'customers.username', operator: 'is', value: username }],
  logic: 'and',
  orderBy: [],
  offset: 0,
  limit: 1,
});

it('runs the seed flow auth lookup as one named prepared statement', async () => {
  expect(await dir.query(auth('francesco'))).toEqual([{ 'customers.password': '123456', 'customers.name': 'Netaxis NL' }]);
  expect(await dir.query(auth('nobody'))).toEqual([]);
  const prepared = await knex.raw("SELECT name FROM pg_prepared_statements WHERE name LIKE 'sipflow_dir_%'");
  expect(prepared.rows).toHaveLength(1);
});

it('answers the 4.2.2 join and a longest prefix match like PGlite', async () => {
  await knex('registration.customer_numbers').insert([
    { number: '0031', is_range: true, customer_id: 1 },
    { number: '003120', is_range: true, customer_id: 1 },
  ]);
  const rows = await dir.query({
    tables: ['registration.customer_numbers', 'registration.customers'],
    fields: ['customers.aor', 'customer_numbers.number'],
    joins: [{ left: 'customer_numbers.customer_id', operator: 'is', right: 'customers.id' }],
    joinType: 'JOIN',
    conditions: [
      { field: 'customer_numbers.number', operator: 'isLongestPrefixMatchOf', value: '00312099' },
      { field: 'customer_numbers.is_range', operator: 'is', value: 'True' },
    ],
    logic: 'and',
    orderBy: [],
    offset: 0,
    limit: 1,
  });
  expect(rows).toEqual([{ 'customers.aor': 'francesco@nl.netaxis.be', 'customer_numbers.number': '003120' }]);
});

it('maps a refused connection to DirectoryError unavailable without leaking the password', async () => {
  const down = createDirectory(openDirectory('postgres://sip:hunter2@127.0.0.1:1/none', { acquireTimeoutMs: 3000 }));
  const err = await down.query(auth('francesco')).catch((e: unknown) => e);
  await down.close();
  expect(err).toBeInstanceOf(DirectoryError);
  expect(err).toMatchObject({ kind: 'unavailable' });
  expect((err as Error).message).not.toContain('hunter2');
});
