/**
 * Directory schema migrations, kept in code (not files on disk) so the same list runs from
 * ts-jest, ts-node and the compiled dist/ tree alike.
 */
import type { Knex } from 'knex';

interface Migration {
  name: string;
  up(knex: Knex): Promise<void>;
  down(knex: Knex): Promise<void>;
}

/** The tables of the registrar technical note §3.1 and §3.2 (unchecked "nullable" = NOT NULL). */
const registrationTables: Migration = {
  name: 'directory_001_registration_customers_and_numbers',
  async up(knex) {
    await knex.schema.createSchemaIfNotExists('registration');
    await knex.schema.withSchema('registration').createTable('customers', (t) => {
      t.increments('id'); // serial primary key
      t.text('name').notNullable().unique().defaultTo('noname');
      t.text('username').nullable();
      t.text('password').nullable();
      t.text('aor').nullable();
      // The authentication query looks a subscriber up by username on every REGISTER.
      t.index(['username'], 'customers_username_index');
    });
    await knex.schema.withSchema('registration').createTable('customer_numbers', (t) => {
      t.increments('id'); // serial primary key
      t.text('number').notNullable().unique().defaultTo('+31000');
      t.boolean('is_range').notNullable().defaultTo(false);
      t.integer('customer_id').notNullable().defaultTo(1).references('id').inTable('registration.customers');
    });
  },
  async down(knex) {
    await knex.schema.withSchema('registration').dropTableIfExists('customer_numbers');
    await knex.schema.withSchema('registration').dropTableIfExists('customers');
    await knex.schema.dropSchemaIfExists('registration');
  },
};

/** Call detail records (services/accounting/database.ts): written in batches, searched by time, number, Call-ID. */
const cdrTable: Migration = {
  name: 'directory_002_cdrs',
  async up(knex) {
    await knex.schema.createTable('cdrs', (t) => {
      t.bigIncrements('id');
      t.text('kind').notNullable();
      t.text('call_id').notNullable();
      t.timestamp('at', { useTz: true }).notNullable();
      t.timestamp('setup_at', { useTz: true }).notNullable();
      t.timestamp('connect_at', { useTz: true }).nullable();
      t.timestamp('end_at', { useTz: true }).nullable();
      t.double('duration').nullable();
      t.text('calling').nullable();
      t.text('called').nullable();
      t.text('source').nullable();
      t.text('destination').nullable();
      t.integer('status').nullable();
      t.text('reason').nullable();
      t.text('logic').notNullable();
      t.jsonb('variables').notNullable().defaultTo('{}');
      t.jsonb('fields').notNullable().defaultTo('{}');
      t.index(['setup_at'], 'cdrs_setup_at_index');
      t.index(['call_id'], 'cdrs_call_id_index');
      t.index(['calling'], 'cdrs_calling_index');
      t.index(['called'], 'cdrs_called_index');
    });
  },
  async down(knex) {
    await knex.schema.dropTableIfExists('cdrs');
  },
};

/**
 * The call history (services/history/store.ts): one row per Call-ID with the columns the list
 * filters on, and one row per recorded segment (messages and runs as JSON text) appended to it.
 */
const callHistoryTables: Migration = {
  name: 'directory_003_call_history',
  async up(knex) {
    await knex.schema.createTable('call_history', (t) => {
      t.text('call_id').primary();
      t.timestamp('started_at', { useTz: true }).notNullable();
      t.timestamp('ended_at', { useTz: true }).notNullable();
      t.text('method').notNullable();
      t.text('calling').nullable();
      t.text('called').nullable();
      t.text('aor').nullable();
      t.text('source').notNullable();
      t.text('outcome').notNullable();
      t.integer('status').nullable();
      t.text('logic').nullable();
      t.integer('message_count').notNullable();
      t.integer('run_count').notNullable();
      t.integer('dropped_messages').notNullable();
      t.bigInteger('bytes').notNullable();
      t.index(['started_at'], 'call_history_started_at_index');
      t.index(['ended_at'], 'call_history_ended_at_index');
      t.index(['calling'], 'call_history_calling_index');
      t.index(['called'], 'call_history_called_index');
      t.index(['aor'], 'call_history_aor_index');
    });
    await knex.schema.createTable('call_history_segments', (t) => {
      t.bigIncrements('id');
      t.text('call_id').notNullable().references('call_id').inTable('call_history').onDelete('CASCADE');
      t.timestamp('at', { useTz: true }).notNullable();
      // JSON kept as text: never searched inside, and PostgreSQL does not parse it on every write
      t.text('messages').notNullable();
      t.text('runs').notNullable();
      t.index(['call_id'], 'call_history_segments_call_id_index');
    });
    // stored as they come, never compressed by the database: the JSON of one segment is a few KB,
    // and PGlite's compression of it, on the thread that dispatches SIP messages, costs more than the bytes saved
    await knex.raw('ALTER TABLE call_history_segments ALTER COLUMN messages SET STORAGE EXTERNAL, ALTER COLUMN runs SET STORAGE EXTERNAL');
  },
  async down(knex) {
    await knex.schema.dropTableIfExists('call_history_segments');
    await knex.schema.dropTableIfExists('call_history');
  },
};

const MIGRATIONS: Migration[] = [registrationTables, cdrTable, callHistoryTables];

const source: Knex.MigrationSource<Migration> = {
  getMigrations: async () => MIGRATIONS,
  getMigrationName: (m) => m.name,
  getMigration: async (m) => m,
};

const MIGRATOR_CONFIG: Knex.MigratorConfig = {
  migrationSource: source,
  tableName: 'knex_migrations',
  schemaName: 'public',
  // an instance of the previous version (restarted during a rolling upgrade, or a rollback) runs
  // on the schema a newer one migrated: migrations only add (docs/operations.md, "Upgrade")
  disableMigrationsListValidation: true,
};

/** Brings the directory schema up to date; returns the names of the migrations it applied. */
export async function migrate(knex: Knex): Promise<string[]> {
  const [, applied] = (await knex.migrate.latest(MIGRATOR_CONFIG)) as [number, string[]];
  return applied;
}

/** Reverts every directory migration (tests and `sipflow directory reset`). */
export async function rollbackAll(knex: Knex): Promise<void> {
  await knex.migrate.rollback(MIGRATOR_CONFIG, true);
}

/** The sample subscriber of the note §6.2. */
export const SAMPLE_SUBSCRIBER = {
  customer: { name: 'Netaxis NL', username: 'francesco', password: '123456', aor: 'francesco@nl.netaxis.be' },
  number: { number: '000112233', is_range: false },
} as const;

/** Inserts the sample subscriber and its number unless they are already there (run it any number of times). */
export async function seed(knex: Knex): Promise<void> {
  await knex.transaction(async (trx) => {
    await trx('registration.customers').insert(SAMPLE_SUBSCRIBER.customer).onConflict('name').ignore();
    const { id } = (await trx('registration.customers').where({ name: SAMPLE_SUBSCRIBER.customer.name }).first('id')) as { id: number };
    await trx('registration.customer_numbers')
      .insert({ ...SAMPLE_SUBSCRIBER.number, customer_id: id })
      .onConflict('number')
      .ignore();
  });
}
