/**
 * Coalesced directory reads on the real PostgreSQL of globalSetup: queries of one statement that
 * wait together go out as one `unnest … CROSS JOIN LATERAL` statement. Each query must get exactly
 * the rows (and row order) it gets alone, errors stay per query, and far fewer round trips run.
 */
import type { Knex } from 'knex';
import { scratchDatabase } from '../../setup/servers';
import { openDirectory, migrate, seed, createDirectory, Directory, DirectoryQuery } from '../../../services/directory';
import { batchStatement, lateralText } from '../../../services/directory/coalesce';

type Condition = DirectoryQuery['conditions'][number];
const cond = (field: string, operator: Condition['operator'], value: unknown): Condition => ({ field, operator, value: value as never });

let db: Awaited<ReturnType<typeof scratchDatabase>>;
let knex: Knex;
let alone: Directory;
let together: Directory;
let acquisitions = 0;

const AUTH: Omit<DirectoryQuery, 'conditions'> = {
  tables: ['registration.customers'],
  fields: ['customers.password', 'customers.name'],
  joins: [],
  joinType: 'JOIN',
  logic: 'and',
  orderBy: [],
  offset: 0,
  limit: 1,
};
const auth = (username: unknown): DirectoryQuery => ({ ...AUTH, conditions: [cond('customers.username', 'is', username)] });
const NUMBERS: Omit<DirectoryQuery, 'conditions'> = {
  tables: ['registration.customer_numbers', 'registration.customers'],
  joins: [{ left: 'customer_numbers.customer_id', operator: 'is', right: 'customers.id' }],
  fields: ['customer_numbers.number', 'customers.name'],
  joinType: 'JOIN',
  logic: 'and',
  orderBy: [{ field: 'customer_numbers.number', direction: 'desc' }],
  offset: 1,
};
const numbersOf = (id: unknown): DirectoryQuery => ({ ...NUMBERS, conditions: [cond('customers.id', 'is', id)] });

beforeAll(async () => {
  db = await scratchDatabase(`sipflow_coalesce_${process.pid}`);
  knex = openDirectory(db.url, { poolMax: 2 });
  await migrate(knex);
  await seed(knex);
  const customers = Array.from({ length: 120 }, (_, i) => ({
    name: `Customer ${i}`,
    username: `user${i}`,
    password: i % 7 === 0 ? null : `pw${i}`,
    aor: `user${i}@example.test`,
  }));
  const ids = (await knex('registration.customers').insert(customers).returning('id')) as Array<{ id: number }>;
  const numbers = ids.flatMap(({ id }, i) => Array.from({ length: i % 4 }, (_, j) => ({ number: `0031${id}${j}`, is_range: j === 0, customer_id: id })));
  await knex('registration.customer_numbers').insert(numbers);
  const client = knex.client as { acquireConnection(): Promise<unknown> };
  const acquire = client.acquireConnection.bind(client);
  client.acquireConnection = () => {
    acquisitions++;
    return acquire();
  };
  alone = createDirectory(knex, { coalesce: false });
  together = createDirectory(knex);
}, 60_000);

afterAll(async () => {
  await knex?.destroy();
  await db?.drop();
});

test('the batch statement is the single one with its parameters taken from the unnested arrays', () => {
  expect(lateralText('select "a$1" from t where "x" = $1 and "y" = $12 limit $2', 2)).toBe('select "a$1" from t where "x" = s.p1 and "y" = $12 limit s.p2');
  const b = batchStatement({ name: 'n', text: 'select 1 where "u" = $1 limit $2', sources: [0, -1], constants: [] }, ['character varying', 'bigint']);
  expect(b.name).toBe('n_b');
  expect(b.text).toBe(
    'SELECT s.o, q.* FROM unnest($1::int4[], $2::character varying[], $3::bigint[]) AS s(o, p1, p2) ' +
      'CROSS JOIN LATERAL (select 1 where "u" = s.p1 limit s.p2) AS q',
  );
});

test('concurrent auth lookups: each gets its own row, in far fewer round trips', async () => {
  const names = Array.from({ length: 300 }, (_, i) => (i % 10 === 9 ? `nobody${i}` : i % 25 === 0 ? null : `user${i % 120}`));
  const expected = [];
  for (const n of names) expected.push(await alone.query(auth(n)));
  // warm: the statement is described once it is found worth batching
  await Promise.all(names.slice(0, 20).map((n) => together.query(auth(n))));
  acquisitions = 0;
  const got = await Promise.all(names.map((n) => together.query(auth(n))));
  expect(got).toEqual(expected);
  expect(got.filter((r) => r.length === 1).length).toBeGreaterThan(200);
  expect(acquisitions).toBeLessThan(names.length / 4);
});

test('ordering, offset and several rows per query survive batching', async () => {
  const ids = Array.from({ length: 80 }, (_, i) => 2 + (i % 60));
  const expected = [];
  for (const id of ids) expected.push(await alone.query(numbersOf(id)));
  expect(expected.some((r) => r.length >= 2)).toBe(true);
  await Promise.all(ids.slice(0, 10).map((id) => together.query(numbersOf(id))));
  acquisitions = 0;
  const got = await Promise.all(ids.map((id) => together.query(numbersOf(id))));
  expect(got).toEqual(expected);
  expect(acquisitions).toBeLessThan(ids.length / 2);
});

test('a query that fails alone fails the same way in a batch; the others are answered', async () => {
  // one statement (name ~ $1): the bad pattern makes PostgreSQL fail the whole batch
  const matching = (pattern: string): DirectoryQuery => ({ ...AUTH, limit: undefined, conditions: [cond('customers.name', 'matches', pattern)] });
  const queries = [
    ...Array.from({ length: 30 }, (_, i) => matching(`^Customer ${i}$`)),
    matching('(unclosed'),
    ...Array.from({ length: 30 }, (_, i) => matching(`^Customer ${i + 30}$`)),
  ];
  await Promise.all(queries.slice(0, 10).map((q) => together.query(q)));
  const settle = (d: Directory) => Promise.allSettled(queries.map((q) => d.query(q)));
  const a = await settle(alone);
  const b = await settle(together);
  expect(b.map((r) => r.status)).toEqual(a.map((r) => r.status));
  expect(b[30].status).toBe('rejected');
  const kind = (r: PromiseSettledResult<unknown>) => (r.status === 'rejected' ? (r.reason as { kind?: string }).kind : null);
  expect(kind(b[30])).toBe(kind(a[30]));
  expect(b.filter((r) => r.status === 'fulfilled').map((r) => (r as PromiseFulfilledResult<unknown>).value)).toEqual(
    a.filter((r) => r.status === 'fulfilled').map((r) => (r as PromiseFulfilledResult<unknown>).value),
  );
});
