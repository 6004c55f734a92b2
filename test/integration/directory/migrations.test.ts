/**
 * The migrations produce exactly the tables of the registrar note §3.1/§3.2, checked through
 * information_schema and by provoking each constraint.
 */
import type { Knex } from 'knex';
import { openDirectory, migrate, rollbackAll, seed, introspectSchema } from '../../../services/directory';

let knex: Knex;

beforeAll(async () => {
  knex = openDirectory('memory://');
  expect(await migrate(knex)).toEqual(['directory_001_registration_customers_and_numbers', 'directory_002_cdrs', 'directory_003_call_history']);
});
afterAll(async () => {
  await knex.destroy();
});

interface ColumnInfo {
  column_name: string;
  data_type: string;
  is_nullable: string;
  column_default: string | null;
}

async function columns(table: string): Promise<ColumnInfo[]> {
  return knex('information_schema.columns')
    .select('column_name', 'data_type', 'is_nullable', 'column_default')
    .where({ table_schema: 'registration', table_name: table })
    .orderBy('ordinal_position');
}

/** Runs `fn` in a savepoint-free transaction that is always rolled back; returns the SQLSTATE it failed with. */
async function violation(fn: (trx: Knex.Transaction) => Promise<unknown>): Promise<string | undefined> {
  try {
    await knex.transaction(async (trx) => {
      await fn(trx);
      throw new Error('rollback');
    });
  } catch (err) {
    const code = (err as { code?: string }).code;
    return code;
  }
  return undefined;
}

describe('seed', () => {
  // First, on the fresh database, so the sample customer gets id 1 as in the note.
  it('inserts the note §6.2 sample subscriber once, however often it runs', async () => {
    await seed(knex);
    await seed(knex);
    expect(await knex('registration.customers').select('id', 'name', 'username', 'password', 'aor')).toEqual([
      { id: 1, name: 'Netaxis NL', username: 'francesco', password: '123456', aor: 'francesco@nl.netaxis.be' },
    ]);
    expect(await knex('registration.customer_numbers').select('number', 'is_range', 'customer_id')).toEqual([
      { number: '000112233', is_range: false, customer_id: 1 },
    ]);
  });
});

describe('registration schema', () => {
  it('customers: columns, types, nullability and defaults as in note §3.1', async () => {
    const cols = await columns('customers');
    expect(cols.map((c) => [c.column_name, c.data_type, c.is_nullable])).toEqual([
      ['id', 'integer', 'NO'],
      ['name', 'text', 'NO'],
      ['username', 'text', 'YES'],
      ['password', 'text', 'YES'],
      ['aor', 'text', 'YES'],
    ]);
    const defaults = Object.fromEntries(cols.map((c) => [c.column_name, c.column_default]));
    expect(defaults.id).toMatch(/^nextval\('registration\.customers_id_seq'/); // serial
    expect(defaults.name).toBe("'noname'::text");
    expect([defaults.username, defaults.password, defaults.aor]).toEqual([null, null, null]);
  });

  it('customer_numbers: columns, types, nullability and defaults as in note §3.2', async () => {
    const cols = await columns('customer_numbers');
    expect(cols.map((c) => [c.column_name, c.data_type, c.is_nullable, c.column_default?.replace(/^nextval.*/, 'serial')])).toEqual([
      ['id', 'integer', 'NO', 'serial'],
      ['number', 'text', 'NO', "'+31000'::text"],
      ['is_range', 'boolean', 'NO', 'false'],
      ['customer_id', 'integer', 'NO', '1'],
    ]);
  });

  it('has the primary keys, unique constraints, foreign key and username index', async () => {
    const constraints = await knex.raw(`
      SELECT tc.table_name, tc.constraint_type, kcu.column_name, ccu.table_schema AS ref_schema,
             ccu.table_name AS ref_table, ccu.column_name AS ref_column
        FROM information_schema.table_constraints tc
        JOIN information_schema.key_column_usage kcu
          ON kcu.constraint_schema = tc.constraint_schema AND kcu.constraint_name = tc.constraint_name
        LEFT JOIN information_schema.constraint_column_usage ccu
          ON tc.constraint_type = 'FOREIGN KEY' AND ccu.constraint_schema = tc.constraint_schema
         AND ccu.constraint_name = tc.constraint_name
       WHERE tc.table_schema = 'registration'
       ORDER BY tc.table_name, tc.constraint_type, kcu.column_name`);
    expect(
      constraints.rows.map((r: Record<string, string | null>) => [
        r.table_name,
        r.constraint_type,
        r.column_name,
        r.ref_table && `${r.ref_schema}.${r.ref_table}.${r.ref_column}`,
      ]),
    ).toEqual([
      ['customer_numbers', 'FOREIGN KEY', 'customer_id', 'registration.customers.id'],
      ['customer_numbers', 'PRIMARY KEY', 'id', null],
      ['customer_numbers', 'UNIQUE', 'number', null],
      ['customers', 'PRIMARY KEY', 'id', null],
      ['customers', 'UNIQUE', 'name', null],
    ]);
    const indexes = await knex('pg_indexes').select('indexdef').where({ schemaname: 'registration', tablename: 'customers' });
    expect(indexes.map((i: { indexdef: string }) => i.indexdef)).toContainEqual(expect.stringMatching(/\(username\)$/));
  });

  it('enforces them: NOT NULL, UNIQUE, FK, defaults', async () => {
    expect(await violation((t) => t('registration.customers').insert({ name: null }))).toBe('23502');
    expect(
      await violation(async (t) => {
        await t('registration.customers').insert({ name: 'Twice' });
        await t('registration.customers').insert({ name: 'Twice' });
      }),
    ).toBe('23505');
    expect(await violation((t) => t('registration.customer_numbers').insert({ number: '1', customer_id: 999 }))).toBe('23503');
    expect(await violation((t) => t('registration.customer_numbers').insert({ number: null, customer_id: 1 }))).toBe('23502');
    expect(await violation((t) => t('registration.customer_numbers').insert({ number: '1', is_range: null }))).toBe('23502');
    // Defaults: a customer with only defaults is 'noname'; a number with only defaults is +31000,
    // not a range, of customer 1 (the seeded sample customer).
    expect(
      await violation(async (t) => {
        const [c] = await t('registration.customers').insert({}).returning(['name', 'username', 'password', 'aor']);
        expect(c).toEqual({ name: 'noname', username: null, password: null, aor: null });
        const [n] = await t('registration.customer_numbers').insert({}).returning(['number', 'is_range', 'customer_id']);
        expect(n).toEqual({ number: '+31000', is_range: false, customer_id: 1 });
        await t('registration.customer_numbers').insert({}); // the default number again: unique
      }),
    ).toBe('23505');
  });

  it('records migrations in public.knex_migrations and re-running migrate is a no-op', async () => {
    const done = await knex('public.knex_migrations').pluck('name');
    expect(done).toEqual(['directory_001_registration_customers_and_numbers', 'directory_002_cdrs', 'directory_003_call_history']);
    expect(await migrate(knex)).toEqual([]);
    const schema = await introspectSchema(knex);
    expect(Object.keys(schema).sort()).toEqual([
      'public.call_history',
      'public.call_history_segments',
      'public.cdrs',
      'registration.customer_numbers',
      'registration.customers',
    ]);
  });
});

describe('rollback', () => {
  it('drops everything it created', async () => {
    await rollbackAll(knex);
    const left = await knex('information_schema.schemata').where({ schema_name: 'registration' });
    expect(left).toEqual([]);
    expect(await knex.schema.hasTable('cdrs')).toBe(false);
    expect(await knex.schema.hasTable('call_history')).toBe(false);
    expect(await knex.schema.hasTable('call_history_segments')).toBe(false);
    expect(await migrate(knex)).toHaveLength(3);
  });
});
