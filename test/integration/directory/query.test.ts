/**
 * The query adapter against a real (embedded) PostgreSQL: the seed flow's auth lookup, joins,
 * longest prefix match, every operator, validation of names, and injection safety.
 */
import type { Knex } from 'knex';
import { openDirectory, createDirectory, Directory, DirectoryError, DirectoryQuery } from '../../../services/directory';
import { customersQuery, fillDirectory } from './fixture';

let knex: Knex;
let dir: Directory;

beforeAll(async () => {
  knex = openDirectory('memory://');
  await fillDirectory(knex);
  dir = createDirectory(knex);
});

afterAll(async () => {
  await knex.destroy().catch(() => undefined);
});

const q = customersQuery;
const names = async (over: Partial<DirectoryQuery>) => (await dir.query(q(over))).map((r) => r['customers.name']);
const where = (field: string, operator: DirectoryQuery['conditions'][0]['operator'], value: unknown) => ({
  conditions: [{ field, operator, value: value as never }],
});

async function invalidMessage(query: DirectoryQuery): Promise<string> {
  const err = await dir.query(query).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(DirectoryError);
  expect((err as DirectoryError).kind).toBe('invalid');
  return (err as DirectoryError).message;
}

describe('seed flow: retrieve password', () => {
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

  it('returns the sample subscriber keyed by the requested column refs', async () => {
    expect(await dir.query(auth('francesco'))).toEqual([{ 'customers.password': '123456', 'customers.name': 'Netaxis NL' }]);
  });

  it('reuses the query shape with new values and finds nothing for an unknown user', async () => {
    expect(await dir.query(auth('acme'))).toEqual([{ 'customers.password': 's3cret', 'customers.name': 'Acme' }]);
    expect(await dir.query(auth('nobody'))).toEqual([]);
  });
});

describe('joins', () => {
  const aorOf = (number: string, isRange: unknown, tables = ['registration.customer_numbers', 'registration.customers']) =>
    dir.query({
      tables,
      fields: ['customers.aor', 'customer_numbers.number'],
      joins: [{ left: 'customer_numbers.customer_id', operator: 'is', right: 'customers.id' }],
      joinType: 'JOIN',
      conditions: [
        { field: 'customer_numbers.number', operator: 'is', value: number },
        { field: 'customer_numbers.is_range', operator: 'is', value: isRange as never },
      ],
      logic: 'and',
      orderBy: [],
      offset: 0,
    });

  it('finds the AoR of a called number (note §4.2.2), with the literal False for a boolean column', async () => {
    expect(await aorOf('000112233', 'False')).toEqual([{ 'customers.aor': 'francesco@nl.netaxis.be', 'customer_numbers.number': '000112233' }]);
  });

  it('converts True/False strings and 0/1 numbers for boolean columns', async () => {
    expect(await aorOf('000112233', 'True')).toEqual([]);
    expect(await aorOf('000112233', 0)).toHaveLength(1);
    expect(await aorOf('000112233', 1)).toEqual([]);
    expect(await aorOf('0031', 'true')).toEqual([{ 'customers.aor': 'acme@example.com', 'customer_numbers.number': '0031' }]);
    expect((await aorOf('0031', 'maybe').catch((e: DirectoryError) => e)) as DirectoryError).toMatchObject({ kind: 'invalid' });
  });

  it('joins the same way when customers is the first table', async () => {
    expect(await aorOf('000112233', false, ['registration.customers', 'registration.customer_numbers'])).toEqual([
      { 'customers.aor': 'francesco@nl.netaxis.be', 'customer_numbers.number': '000112233' },
    ]);
  });

  it('merges several joins between the same two tables into one JOIN with several ON conditions', async () => {
    const rows = await dir.query({
      tables: ['registration.customer_numbers', 'registration.customers'],
      fields: ['customer_numbers.number'],
      joins: [
        { left: 'customer_numbers.customer_id', operator: 'is', right: 'customers.id' },
        { left: 'customers.id', operator: 'greaterThan', right: 'customer_numbers.id' },
      ],
      joinType: 'INNER JOIN',
      conditions: [],
      logic: 'and',
      orderBy: [{ field: 'customer_numbers.number', direction: 'asc' }],
      offset: 0,
    });
    // number ids: 1 000112233 (customer 1), 2 0031 (2), 3 003120 (3), 4 0031201 (4), 5 0032999 (2), 6 00312012345 (5)
    expect(rows.map((r) => r['customer_numbers.number'])).toEqual([]);
    const rows2 = await dir.query({
      tables: ['registration.customer_numbers', 'registration.customers'],
      fields: ['customer_numbers.number'],
      joins: [
        { left: 'customer_numbers.customer_id', operator: 'is', right: 'customers.id' },
        { left: 'customers.id', operator: 'greaterOrEqual', right: 'customer_numbers.id' },
      ],
      joinType: 'JOIN',
      conditions: [],
      logic: 'and',
      orderBy: [{ field: 'customer_numbers.number', direction: 'asc' }],
      offset: 0,
    });
    expect(rows2.map((r) => r['customer_numbers.number'])).toEqual(['000112233', '0031', '003120', '0031201']);
  });

  it('LEFT JOIN keeps customers without numbers, with null values', async () => {
    const rows = await dir.query({
      tables: ['registration.customers', 'registration.customer_numbers'],
      fields: ['customers.name', 'customer_numbers.number'],
      joins: [{ left: 'customers.id', operator: 'is', right: 'customer_numbers.customer_id' }],
      joinType: 'LEFT JOIN',
      conditions: [
        { field: 'customers.name', operator: 'is', value: 'Zulu' },
        { field: 'customers.name', operator: 'is', value: 'Beta_Corp' },
      ],
      logic: 'or',
      orderBy: [{ field: 'customers.name', direction: 'asc' }],
      offset: 0,
    });
    expect(rows).toEqual([
      { 'customers.name': 'Beta_Corp', 'customer_numbers.number': '003120' },
      { 'customers.name': 'Zulu', 'customer_numbers.number': '00312012345' },
    ]);
    const orphan = await dir.query({
      tables: ['registration.customers', 'registration.customer_numbers'],
      fields: ['customers.name', 'customer_numbers.number'],
      joins: [{ left: 'customers.id', operator: 'is', right: 'customer_numbers.customer_id' }],
      joinType: 'LEFT JOIN',
      conditions: [{ field: 'customer_numbers.number', operator: 'doesNotExist', value: null }],
      logic: 'and',
      orderBy: [],
      offset: 0,
    });
    expect(orphan).toEqual([]); // every customer has a number…
    await knex('registration.customers').insert({ name: 'Lonely' });
    const lonely = await dir.query({
      tables: ['registration.customers', 'registration.customer_numbers'],
      fields: ['customers.name', 'customer_numbers.number'],
      joins: [{ left: 'customers.id', operator: 'is', right: 'customer_numbers.customer_id' }],
      joinType: 'LEFT JOIN',
      conditions: [{ field: 'customer_numbers.number', operator: 'doesNotExist', value: null }],
      logic: 'and',
      orderBy: [],
      offset: 0,
    });
    expect(lonely).toEqual([{ 'customers.name': 'Lonely', 'customer_numbers.number': null }]);
    await knex('registration.customers').where({ name: 'Lonely' }).delete();
  });

  it('rejects a join whose tables are not yet in the query, and a listed table that is never joined', async () => {
    await knex.raw('CREATE TABLE IF NOT EXISTS registration.notes (id serial primary key, customer_id integer, note text)');
    await dir.refreshSchema();
    const msg = await invalidMessage({
      tables: ['registration.customers', 'registration.customer_numbers', 'registration.notes'],
      fields: ['customers.name'],
      joins: [{ left: 'notes.customer_id', operator: 'is', right: 'customer_numbers.customer_id' }],
      joinType: 'JOIN',
      conditions: [],
      logic: 'and',
      orderBy: [],
      offset: 0,
    });
    expect(msg).toMatch(/left table registration\.notes must already be in the query/);
    const msg2 = await invalidMessage({
      tables: ['registration.customers', 'registration.customer_numbers'],
      fields: ['customers.name'],
      joins: [],
      joinType: 'JOIN',
      conditions: [],
      logic: 'and',
      orderBy: [],
      offset: 0,
    });
    expect(msg2).toMatch(/registration\.customer_numbers is listed but not joined/);
  });
});

describe('longest prefix match', () => {
  const prefixOf = (value: string, limit?: number) =>
    dir.query({
      tables: ['registration.customer_numbers', 'registration.customers'],
      fields: ['customer_numbers.number', 'customers.name'],
      joins: [{ left: 'customer_numbers.customer_id', operator: 'is', right: 'customers.id' }],
      joinType: 'JOIN',
      conditions: [
        { field: 'customer_numbers.number', operator: 'isLongestPrefixMatchOf', value },
        { field: 'customer_numbers.is_range', operator: 'is', value: 'True' },
      ],
      logic: 'and',
      // An explicit order must not override the longest-prefix order.
      orderBy: [{ field: 'customer_numbers.number', direction: 'asc' }],
      offset: 0,
      limit,
    });

  it('picks the longest range that prefixes the value', async () => {
    expect(await prefixOf('00312012345', 1)).toEqual([{ 'customer_numbers.number': '0031201', 'customers.name': '100% Telecom' }]);
    expect(await prefixOf('0031209', 1)).toEqual([{ 'customer_numbers.number': '003120', 'customers.name': 'Beta_Corp' }]);
    expect(await prefixOf('0031999', 1)).toEqual([{ 'customer_numbers.number': '0031', 'customers.name': 'Acme' }]);
    expect(await prefixOf('0044123', 1)).toEqual([]);
  });

  it('without a limit returns every matching prefix, longest first', async () => {
    expect((await prefixOf('00312012345')).map((r) => r['customer_numbers.number'])).toEqual(['0031201', '003120', '0031']);
  });
});

describe('logic, order, offset, limit', () => {
  it('combines conditions with and / or', async () => {
    const conditions = [
      { field: 'customers.username', operator: 'is' as const, value: 'francesco' },
      { field: 'customers.username', operator: 'is' as const, value: 'acme' },
    ];
    expect(await names({ conditions, logic: 'or' })).toEqual(['Netaxis NL', 'Acme']);
    expect(await names({ conditions, logic: 'and' })).toEqual([]);
    expect(
      await names({
        conditions: [conditions[0], { field: 'customers.aor', operator: 'endsWith', value: 'netaxis.be' }],
        logic: 'and',
      }),
    ).toEqual(['Netaxis NL']);
  });

  it('orders, skips and limits', async () => {
    const all = { orderBy: [{ field: 'customers.name', direction: 'desc' as const }] };
    expect(await names(all)).toEqual(['Zulu', 'Netaxis NL', 'Beta_Corp', 'Acme', '100% Telecom']);
    expect(await names({ ...all, offset: 1, limit: 2 })).toEqual(['Netaxis NL', 'Beta_Corp']);
    expect(await names({ ...all, offset: 4 })).toEqual(['100% Telecom']);
    expect(await names({ ...all, limit: 0 })).toEqual([]);
    expect(
      await names({
        orderBy: [
          { field: 'customers.username', direction: 'asc' },
          { field: 'customers.name', direction: 'desc' },
        ],
        limit: 2,
      }),
    ).toEqual(['Acme', 'Netaxis NL']);
    await expect(dir.query(q({ limit: -1 }))).rejects.toMatchObject({ kind: 'invalid' });
  });
});

describe('operators', () => {
  it('is / isNot, with null meaning IS NULL / IS NOT NULL', async () => {
    expect(await names(where('customers.username', 'is', null))).toEqual(['Beta_Corp']);
    expect(await names(where('customers.username', 'isNot', null))).toEqual(['Netaxis NL', 'Acme', '100% Telecom', 'Zulu']);
    expect(await names(where('customers.username', 'isNot', 'acme'))).toEqual(['Netaxis NL', '100% Telecom', 'Zulu']);
  });

  it('exists / doesNotExist ignore the value', async () => {
    expect(await names(where('customers.aor', 'exists', 'True'))).toEqual(['Netaxis NL', 'Acme', '100% Telecom', 'Zulu']);
    expect(await names(where('customers.aor', 'doesNotExist', 'null'))).toEqual(['Beta_Corp']);
  });

  it('contains / doesNotContain / startsWith / endsWith treat % and _ literally', async () => {
    expect(await names(where('customers.name', 'contains', '_'))).toEqual(['Beta_Corp']);
    expect(await names(where('customers.name', 'contains', '%'))).toEqual(['100% Telecom']);
    expect(await names(where('customers.name', 'contains', 'e'))).toEqual(['Netaxis NL', 'Acme', 'Beta_Corp', '100% Telecom']);
    expect(await names(where('customers.name', 'doesNotContain', 'e'))).toEqual(['Zulu']);
    expect(await names(where('customers.name', 'startsWith', '100%'))).toEqual(['100% Telecom']);
    expect(await names(where('customers.name', 'startsWith', '1_0'))).toEqual([]);
    expect(await names(where('customers.aor', 'endsWith', '@example.com'))).toEqual(['Acme', '100% Telecom', 'Zulu']);
    expect(await names(where('customers.name', 'contains', null))).toEqual([]);
  });

  it('greater / less compare numbers on numeric columns (numeric strings converted)', async () => {
    expect(await names(where('customers.id', 'greaterThan', '3'))).toEqual(['100% Telecom', 'Zulu']);
    expect(await names(where('customers.id', 'greaterOrEqual', 4))).toEqual(['100% Telecom', 'Zulu']);
    expect(await names(where('customers.id', 'lessThan', '10'))).toHaveLength(5); // numeric, not text ('10' < '3')
    expect(await names(where('customers.id', 'lessOrEqual', 2))).toEqual(['Netaxis NL', 'Acme']);
    expect(await names(where('customers.name', 'lessThan', 'B'))).toEqual(['Acme', '100% Telecom']);
    const msg = await invalidMessage(q(where('customers.id', 'is', 'abc')));
    expect(msg).toMatch(/customers\.id.*not a number/);
  });

  it('in takes a list (a null element matches NULL)', async () => {
    expect(await names(where('customers.username', 'in', ['acme', 'zulu', 'none']))).toEqual(['Acme', 'Zulu']);
    expect(await names(where('customers.username', 'in', ['acme', null]))).toEqual(['Acme', 'Beta_Corp']);
    expect(await names(where('customers.id', 'in', ['1', 5]))).toEqual(['Netaxis NL', 'Zulu']);
    expect(await names(where('customers.username', 'in', []))).toEqual([]);
  });

  it('matches is a PostgreSQL regular expression; a broken one is invalid', async () => {
    expect(await names(where('customers.name', 'matches', '^(Acme|Beta)'))).toEqual(['Acme', 'Beta_Corp']);
    expect(await names(where('customers.id', 'matches', '^[45]$'))).toEqual(['100% Telecom', 'Zulu']);
    expect(await invalidMessage(q(where('customers.name', 'matches', '(')))).toMatch(/regular expression/);
  });

  it('isLongestPrefixMatchOf on its own', async () => {
    expect(
      await dir.query({
        tables: ['registration.customer_numbers'],
        fields: ['customer_numbers.number'],
        joins: [],
        joinType: 'JOIN',
        conditions: [{ field: 'customer_numbers.number', operator: 'isLongestPrefixMatchOf', value: '003120999' }],
        logic: 'and',
        orderBy: [],
        offset: 0,
        limit: 1,
      }),
    ).toEqual([{ 'customer_numbers.number': '003120' }]);
  });
});

describe('names are checked against the schema', () => {
  it('rejects an unknown column with a clear message', async () => {
    const msg = await invalidMessage(q({ fields: ['customers.pasword'] }));
    expect(msg).toContain('fields[0] names unknown column customers.pasword of registration.customers');
    expect(await invalidMessage(q(where('customers.usrname', 'is', 'x')))).toContain('conditions[0].field names unknown column customers.usrname');
    expect(await invalidMessage(q({ orderBy: [{ field: 'customers.nope', direction: 'asc' }] }))).toContain('orderBy[0].field');
  });

  it('rejects an unknown table, a table not in the query, and malformed refs', async () => {
    expect(await invalidMessage(q({ tables: ['registration.custmers'] }))).toContain('unknown table registration.custmers');
    expect(await invalidMessage(q({ fields: ['customer_numbers.number'] }))).toContain(
      "table customer_numbers is not among the query's tables (registration.customers)",
    );
    expect(await invalidMessage(q({ fields: ['name'] }))).toContain('table.column');
    expect(await invalidMessage(q({ fields: ['customers.name; DROP TABLE registration.customers'] }))).toContain("is not among the query's tables");
    expect(await invalidMessage(q({ fields: ['customers.name;DROP'] }))).toContain('unknown column customers.name;DROP');
    expect(await invalidMessage(q({ fields: ['customers."name"'] }))).toContain('unknown column');
  });

  it('rejects an ambiguous short table name and accepts schema.table.column', async () => {
    await knex.raw('CREATE SCHEMA IF NOT EXISTS other');
    await knex.raw('CREATE TABLE IF NOT EXISTS other.customers (id integer, name text)');
    await knex.raw("INSERT INTO other.customers VALUES (1, 'Other One')");
    await dir.refreshSchema();
    const base = {
      tables: ['registration.customers', 'other.customers'],
      joins: [{ left: 'registration.customers.id', operator: 'is' as const, right: 'other.customers.id' }],
    };
    expect(await invalidMessage(q({ ...base, fields: ['customers.name'] }))).toMatch(/ambiguous/);
    expect(await dir.query(q({ ...base, fields: ['registration.customers.name', 'other.customers.name'], orderBy: [] }))).toEqual([
      { 'registration.customers.name': 'Netaxis NL', 'other.customers.name': 'Other One' },
    ]);
  });

  it('sees new tables after refreshSchema and lists user tables only', async () => {
    await knex.raw('CREATE TABLE registration.late (id serial primary key, label text)');
    const late = q({ tables: ['registration.late'], fields: ['late.label'], orderBy: [] });
    expect(await invalidMessage(late)).toContain('unknown table registration.late');
    await dir.refreshSchema();
    expect(await dir.query(late)).toEqual([]);
    const schema = await dir.schema();
    expect(schema['registration.customers']).toEqual({ id: 'integer', name: 'text', username: 'text', password: 'text', aor: 'text' });
    expect(schema['registration.customer_numbers']).toEqual({ id: 'integer', number: 'text', is_range: 'boolean', customer_id: 'integer' });
    expect(Object.keys(schema).filter((t) => t.includes('knex_migrations') || t.startsWith('pg_catalog.') || t.startsWith('information_schema.'))).toEqual([]);
  });
});

describe('injection', () => {
  it('a value is only ever a value', async () => {
    const attempts = ["francesco' OR '1'='1", "'; DROP TABLE registration.customers; --", 'francesco"; DELETE FROM registration.customers; --'];
    for (const value of attempts) {
      expect(await names(where('customers.username', 'is', value))).toEqual([]);
      expect(await names(where('customers.username', 'contains', value))).toEqual([]);
      expect(await names(where('customers.username', 'matches', value))).toEqual([]);
      expect(await names(where('customers.username', 'in', [value, 'x']))).toEqual([]);
      // Only a username that literally prefixes the value matches: the quotes are plain characters.
      expect(await names(where('customers.username', 'isLongestPrefixMatchOf', value))).toEqual(value.startsWith('francesco') ? ['Netaxis NL'] : []);
    }
    expect(Number((await knex('registration.customers').count({ n: '*' }))[0].n)).toBe(5);
  });
});

describe('unavailable', () => {
  it('maps a closed database to DirectoryError unavailable', async () => {
    await dir.close();
    const err = await dir.query(q({})).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DirectoryError);
    expect(err).toMatchObject({ kind: 'unavailable' });
  });
});
