/**
 * The prepared path of the directory adapter (each query shape compiled by knex once, then run as
 * a named prepared statement on PostgreSQL / a parameterised query on PGlite) against the builder
 * path (knex builds every query): the same rows and the same errors for every operator and shape
 * family, on the real PostgreSQL of globalSetup and on PGlite; on PostgreSQL each shape is
 * prepared once per connection, a query timeout and a server restart end in 'unavailable', and
 * the pool recovers.
 */
import knexFactory, { Knex } from 'knex';
import { privatePostgres, scratchDatabase, type PrivateServer } from '../../setup/servers';
import { openDirectory, createDirectory, Directory, DirectoryError, DirectoryQuery } from '../../../services/directory';
import { customersQuery, fillDirectory } from './fixture';

type Condition = DirectoryQuery['conditions'][number];

/** The fixture of query.test.ts, plus customer 6 without numbers. */
async function fill(knex: Knex): Promise<void> {
  await fillDirectory(knex);
  await knex('registration.customers').insert({ name: 'Lonely', username: 'lonely', password: null, aor: null }); // 6
}

const q = customersQuery;
const cond = (field: string, operator: Condition['operator'], value: unknown): Condition => ({ field, operator, value: value as never });
const where = (field: string, operator: Condition['operator'], ...values: unknown[]) => values.map((v) => q({ conditions: [cond(field, operator, v)] }));

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

const NUMBERS = {
  tables: ['registration.customer_numbers', 'registration.customers'],
  joins: [{ left: 'customer_numbers.customer_id', operator: 'is' as const, right: 'customers.id' }],
};
const prefix = (value: unknown, limit?: number): DirectoryQuery =>
  q({
    ...NUMBERS,
    fields: ['customer_numbers.number', 'customers.name'],
    limit,
    conditions: [cond('customer_numbers.number', 'isLongestPrefixMatchOf', value), cond('customer_numbers.is_range', 'is', 'True')],
    orderBy: [{ field: 'customer_numbers.number', direction: 'asc' }],
  });

/** Shape families; within a family the values change (and with them, sometimes, the variant). */
const FAMILIES: Record<string, DirectoryQuery[]> = {
  'auth lookup (is, fetch first)': ['francesco', 'acme', 'nobody', null, undefined, 'pct', "x' OR '1'='1"].map(auth),
  'is / isNot with values and null': [
    ...where('customers.username', 'is', 'zulu', null, 'acme'),
    ...where('customers.username', 'isNot', 'acme', null, 'zulu', undefined),
  ],
  'exists / doesNotExist ignore the value': [
    ...where('customers.aor', 'exists', 'True', null, ['a']),
    ...where('customers.password', 'doesNotExist', null, 'x'),
  ],
  'LIKE operators treat % _ \\ literally; null matches nothing': [
    ...where('customers.name', 'contains', '_', '%', 'e', null, 'Corp', '\\'),
    ...where('customers.name', 'doesNotContain', 'e', null, '%'),
    ...where('customers.name', 'startsWith', '100%', '1_0', 'Z', null),
    ...where('customers.aor', 'endsWith', '@example.com', '.be', null),
    ...where('customers.id', 'startsWith', 1, '5'), // a non-text column compares its text form
  ],
  'comparisons (numeric conversion, text order)': [
    ...where('customers.id', 'greaterThan', '3', 4, '+2', '1e0', null),
    ...where('customers.id', 'greaterOrEqual', 4, '4'),
    ...where('customers.id', 'lessThan', '10', 2, '3'),
    ...where('customers.id', 'lessOrEqual', 2, ' 3 '),
    ...where('customers.name', 'lessThan', 'B', 'Z'),
  ],
  'in: list lengths, null elements, scalars': where(
    'customers.username',
    'in',
    ['acme', 'zulu', 'none'],
    ['francesco', 'pct', 'x'],
    ['acme', null],
    [null],
    [],
    'acme',
    null,
    ['lonely'],
    ['a', 'b', 'c', 'd', 'e', 'zulu'],
  ).concat(where('customers.id', 'in', ['1', 5], [2, '3', 4])),
  'matches (regular expressions)': [...where('customers.name', 'matches', '^(Acme|Beta)', '.', 'x{3}', null), ...where('customers.id', 'matches', '^[45]$')],
  'longest prefix match with a boolean condition, limit 1 and all': [
    prefix('00312012345', 1),
    prefix('0031209', 1),
    prefix('0031999', 1),
    prefix('0044123', 1),
    prefix(null, 1),
    prefix('00312012345'),
    prefix('0031999'),
    q({
      tables: ['registration.customer_numbers'],
      fields: ['customer_numbers.number'],
      limit: 1,
      orderBy: [],
      conditions: [cond('customer_numbers.number', 'isLongestPrefixMatchOf', '003120999')],
    }),
  ],
  'boolean column values': ['False', 'True', 0, 1, 'yes', false, true].map((v) =>
    q({
      ...NUMBERS,
      fields: ['customers.aor', 'customer_numbers.number'],
      orderBy: [{ field: 'customer_numbers.id', direction: 'asc' }],
      conditions: [cond('customer_numbers.is_range', 'is', v)],
    }),
  ),
  'joins: inner, several ON, left with doesNotExist, right, full': [
    q({ ...NUMBERS, fields: ['customers.aor', 'customer_numbers.number'], conditions: [cond('customer_numbers.number', 'is', '000112233')] }),
    q({
      ...NUMBERS,
      fields: ['customer_numbers.number'],
      joinType: 'INNER JOIN',
      joins: [NUMBERS.joins[0], { left: 'customers.id', operator: 'greaterOrEqual', right: 'customer_numbers.id' }],
      orderBy: [{ field: 'customer_numbers.number', direction: 'asc' }],
    }),
    ...['LEFT JOIN', 'RIGHT JOIN', 'FULL JOIN'].map((joinType) =>
      q({
        tables: ['registration.customers', 'registration.customer_numbers'],
        fields: ['customers.name', 'customer_numbers.number'],
        joins: [{ left: 'customers.id', operator: 'is', right: 'customer_numbers.customer_id' }],
        joinType: joinType as DirectoryQuery['joinType'],
        conditions: [cond('customer_numbers.number', 'doesNotExist', null)],
        orderBy: [{ field: 'customers.name', direction: 'asc' }],
      }),
    ),
  ],
  'logic or / and, mixed with nulls': [
    q({ logic: 'or', conditions: [cond('customers.username', 'is', 'francesco'), cond('customers.username', 'is', 'acme')] }),
    q({ logic: 'and', conditions: [cond('customers.username', 'is', 'francesco'), cond('customers.username', 'is', 'acme')] }),
    q({ logic: 'or', conditions: [cond('customers.username', 'is', null), cond('customers.name', 'contains', 'u')] }),
    q({ logic: 'or', conditions: [cond('customers.username', 'in', ['zulu', null]), cond('customers.id', 'lessThan', 2)] }),
    q({ logic: 'and', conditions: [cond('customers.username', 'isNot', null), cond('customers.aor', 'endsWith', 'example.com')] }),
  ],
  'order, offset, limit (numbers and strings)': [
    q({ orderBy: [{ field: 'customers.name', direction: 'desc' }] }),
    q({ orderBy: [{ field: 'customers.name', direction: 'desc' }], offset: 1, limit: 2 }),
    q({ orderBy: [{ field: 'customers.name', direction: 'desc' }], offset: 4 }),
    q({ orderBy: [{ field: 'customers.name', direction: 'desc' }], offset: '2' as never, limit: '1' as never }),
    q({ orderBy: [{ field: 'customers.name', direction: 'desc' }], limit: 0 }),
    q({ orderBy: [{ field: 'customers.name', direction: 'desc' }], offset: '' as never, limit: null as never }),
    q({
      orderBy: [
        { field: 'customers.username', direction: 'asc' },
        { field: 'customers.name', direction: 'desc' },
      ],
      limit: 2,
    }),
  ],
  'no fields (does a row exist?), several fields, schema.table.column': [
    q({ fields: [], conditions: [cond('customers.username', 'is', 'acme')] }),
    q({ fields: [], conditions: [cond('customers.username', 'is', 'nobody')] }),
    q({ fields: ['customers.id', 'customers.username', 'customers.password', 'registration.customers.aor'], limit: 3 }),
  ],
};

/** Queries both paths reject; the prepared one must say the same (value conversion happens before SQL). */
const INVALID: Record<string, DirectoryQuery> = {
  'a non-number for a numeric column': q({ conditions: [cond('customers.id', 'is', 'abc')] }),
  'a list for a single-value operator': q({ conditions: [cond('customers.username', 'is', ['a', 'b'])] }),
  'a non-number in an in list': q({ conditions: [cond('customers.id', 'in', [1, 'two'])] }),
  'a non-boolean for a boolean column': q({ ...NUMBERS, fields: ['customers.aor'], conditions: [cond('customer_numbers.is_range', 'is', 'maybe')] }),
  'a negative limit': q({ limit: -1 }),
  'a non-numeric offset': q({ offset: 'x' as never }),
  'the first bad value wins': q({ conditions: [cond('customers.id', 'is', 'abc'), cond('customers.username', 'is', ['x'])] }),
  'a bad offset before a bad value': q({ offset: -2, conditions: [cond('customers.id', 'is', 'abc')] }),
};

async function failure(p: Promise<unknown>): Promise<DirectoryError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(DirectoryError);
  return err as DirectoryError;
}

interface Backend {
  knex: Knex;
  prepared: Directory;
  builder: Directory;
}

/** Both paths agree on rows, errors and repeated (cached) use, on the given backend. */
function sameAsBuilder(name: string, backend: () => Backend): void {
  describe(`${name}: the prepared path answers like the builder path`, () => {
    it.each(Object.keys(FAMILIES))('%s', async (family) => {
      const { prepared, builder } = backend();
      let rows = 0;
      for (const query of FAMILIES[family]) {
        const expected = await builder.query(query);
        expect(await prepared.query(query)).toEqual(expected); // compiles the variant (first time)
        expect(await prepared.query(query)).toEqual(expected); // runs the compiled statement
        rows += expected.length;
      }
      expect(rows).toBeGreaterThan(0);
    });

    it('values interleaved over cached shapes stay with their own query; no shape falls back to the builder', async () => {
      const { knex, prepared, builder } = backend();
      const all = Object.values(FAMILIES).flat();
      const expected = await Promise.all(all.map((query) => builder.query(query)));
      await prepared.schema(); // introspected through knex, once
      const viaKnex: string[] = [];
      const onQuery = (e: { sql: string }) => {
        viaKnex.push(e.sql);
      };
      knex.on('query', onQuery);
      try {
        // in reverse and concurrently: every statement is in the cache by now
        const got = await Promise.all([...all].reverse().map((query) => prepared.query(query)));
        expect(got.reverse()).toEqual(expected);
      } finally {
        knex.off('query', onQuery);
      }
      expect(viaKnex).toEqual([]);
    });

    it.each(Object.keys(INVALID))('rejects %s with the same error', async (what) => {
      const { prepared, builder } = backend();
      const a = await failure(builder.query(INVALID[what]));
      const b = await failure(prepared.query(INVALID[what]));
      expect(a.kind).toBe('invalid');
      expect({ kind: b.kind, message: b.message }).toEqual({ kind: a.kind, message: a.message });
    });

    it('a broken regular expression is invalid on both paths', async () => {
      const { prepared, builder } = backend();
      const [query] = where('customers.name', 'matches', '(');
      for (const dir of [builder, prepared]) {
        const err = await failure(dir.query(query));
        expect(err.kind).toBe('invalid');
        expect(err.message).toMatch(/regular expression/);
      }
      // the connection survives a query error
      expect(await prepared.query(auth('francesco'))).toEqual([{ 'customers.password': '123456', 'customers.name': 'Netaxis NL' }]);
    });

    it('runs cached shapes without going through knex', async () => {
      const { knex, prepared } = backend();
      await prepared.query(auth('warm-up')); // introspects the schema, compiles the shapes
      await prepared.query(auth('acme'));
      await prepared.query(prefix('0031', 1));
      const seen: string[] = [];
      const onQuery = (e: { sql: string }) => {
        seen.push(e.sql);
      };
      knex.on('query', onQuery);
      try {
        expect(await prepared.query(auth('acme'))).toEqual([{ 'customers.password': 's3cret', 'customers.name': 'Acme' }]);
        expect(await prepared.query(prefix('0031201999', 1))).toEqual([{ 'customer_numbers.number': '0031201', 'customers.name': '100% Telecom' }]);
      } finally {
        knex.off('query', onQuery);
      }
      expect(seen).toEqual([]);
    });

    it('sees a new table after refreshSchema, and drops plans for a changed one', async () => {
      const { knex, prepared, builder } = backend();
      const late = q({ tables: ['registration.late'], fields: ['late.label'], orderBy: [], conditions: [cond('late.label', 'startsWith', 'a')] });
      expect((await failure(prepared.query(late))).message).toContain('unknown table registration.late');
      await knex.raw('CREATE TABLE registration.late (id serial primary key, label text)');
      await knex('registration.late').insert([{ label: 'alpha' }, { label: 'beta' }]);
      await prepared.refreshSchema();
      await builder.refreshSchema();
      expect(await prepared.query(late)).toEqual([{ 'late.label': 'alpha' }]);
      await knex.raw('ALTER TABLE registration.late RENAME COLUMN label TO title');
      await prepared.refreshSchema();
      expect((await failure(prepared.query(late))).message).toContain('unknown column late.label');
      await knex.raw('DROP TABLE registration.late');
      await prepared.refreshSchema();
      await builder.refreshSchema();
    });
  });
}

// ---------------------------------------------------------------- PostgreSQL (globalSetup)

let db: Awaited<ReturnType<typeof scratchDatabase>>;
let pgDbUrl: string;
let pg: Backend;

/** Prepared statements of this session: name → SQL text and executions. */
async function statements(knex: Knex): Promise<Map<string, { statement: string; runs: number }>> {
  const r = await knex.raw("SELECT name, statement, generic_plans + custom_plans AS runs FROM pg_prepared_statements WHERE name LIKE 'sipflow_dir_%'");
  return new Map((r.rows as Array<{ name: string; statement: string; runs: string }>).map((x) => [x.name, { statement: x.statement, runs: Number(x.runs) }]));
}

/** The statements added since `before`. */
function added(before: Map<string, unknown>, after: Map<string, { statement: string; runs: number }>) {
  return [...after].filter(([name]) => !before.has(name)).map(([, s]) => s);
}

describe('PostgreSQL', () => {
  beforeAll(async () => {
    db = await scratchDatabase(`sipflow_prepared_${process.pid}`);
    pgDbUrl = db.url;
    // One pooled connection: the session-level prepared statements can be inspected.
    const knex = openDirectory(pgDbUrl, { poolMax: 1 });
    await fill(knex);
    pg = { knex, prepared: createDirectory(knex), builder: createDirectory(knex, { mode: 'builder' }) };
  });

  afterAll(async () => {
    await pg?.knex.destroy();
    await db?.drop();
  });

  sameAsBuilder('PostgreSQL', () => pg);

  it('prepares each shape variant once per connection and runs it by name', async () => {
    const { knex, prepared } = pg;
    const shape: Omit<DirectoryQuery, 'conditions'> = { ...AUTH, fields: ['customers.aor', 'customers.username'] };
    const by = (value: unknown, operator: Condition['operator'] = 'is') =>
      prepared.query({ ...shape, conditions: [cond('customers.username', operator, value)] });
    const before = await statements(knex);
    for (let i = 0; i < 30; i++) await by(['francesco', 'acme', 'nobody'][i % 3]);
    const one = added(before, await statements(knex));
    expect(one).toEqual([{ statement: expect.stringMatching(/"username" = \$1\)+ limit \$2$/), runs: 30 }]);

    // null → IS NULL: another variant, prepared once too
    for (let i = 0; i < 5; i++) expect(await by(null)).toEqual([{ 'customers.aor': null, 'customers.username': null }]);
    const two = added(before, await statements(knex));
    expect(two).toHaveLength(2);
    expect(two.find((s) => /is null/.test(s.statement))).toMatchObject({ runs: 5 });

    // `in`: one variant per list length (and null element)
    for (const list of [
      ['acme', 'zulu'],
      ['pct', 'x'],
      ['acme', 'zulu', 'pct'],
      ['a', null],
      ['b', null],
    ])
      await by(list, 'in');
    const more = added(before, await statements(knex));
    expect(more).toHaveLength(5);
    expect(more.filter((s) => /in \(\$1, \$2\)/.test(s.statement))).toEqual([expect.objectContaining({ runs: 2 })]);
    expect(more.filter((s) => /in \(\$1, \$2, \$3\)/.test(s.statement))).toEqual([expect.objectContaining({ runs: 1 })]);
    expect(more.filter((s) => /in \(\$1\) or .* is null/.test(s.statement))).toEqual([expect.objectContaining({ runs: 2 })]);
  });

  it('shares the statement name with the builder path (same SQL, same name)', async () => {
    const { knex, prepared, builder } = pg;
    const shape = q({ fields: ['customers.password'], orderBy: [], limit: 1, conditions: [cond('customers.aor', 'is', 'x')] });
    const before = await statements(knex);
    await builder.query(shape);
    await prepared.query({ ...shape, conditions: [cond('customers.aor', 'is', 'acme@example.com')] });
    await builder.query(shape);
    expect(added(before, await statements(knex))).toEqual([expect.objectContaining({ runs: 3 })]);
  });

  it('statements the session lost (DEALLOCATE ALL) are prepared again on a new connection', async () => {
    const { knex, prepared } = pg;
    expect(await prepared.query(auth('acme'))).toHaveLength(1);
    await knex.raw('DEALLOCATE ALL'); // the pool's only connection
    expect(await prepared.query(auth('francesco'))).toEqual([{ 'customers.password': '123456', 'customers.name': 'Netaxis NL' }]);
    expect([...(await statements(knex)).values()]).toEqual([expect.objectContaining({ runs: 1 })]);
  });

  it('a query not answered within queryTimeoutMs is unavailable; its connection is replaced', async () => {
    const knex = openDirectory(pgDbUrl, { poolMax: 1 });
    const dir = createDirectory(knex, { queryTimeoutMs: 300 });
    const locker = knexFactory({ client: 'pg', connection: pgDbUrl, pool: { min: 0, max: 1 } });
    const backend = async () => (await knex.raw('SELECT pg_backend_pid() AS pid')).rows[0].pid as number;
    try {
      expect(await dir.query(auth('francesco'))).toHaveLength(1);
      const before = await backend();
      const trx = await locker.transaction();
      await trx.raw('LOCK TABLE registration.customers IN ACCESS EXCLUSIVE MODE');
      const started = Date.now();
      const err = await failure(dir.query(auth('acme')));
      expect(err).toMatchObject({ kind: 'unavailable', message: expect.stringContaining('no answer within 300 ms') });
      expect(Date.now() - started).toBeLessThan(5000);
      await trx.rollback();
      // one pooled connection: only answers if the timed-out one was released and replaced
      expect(await dir.query(auth('acme'))).toEqual([{ 'customers.password': 's3cret', 'customers.name': 'Acme' }]);
      expect(await backend()).not.toBe(before);
    } finally {
      await locker.destroy();
      await dir.close();
    }
  });
});

// ---------------------------------------------------------------- PGlite

describe('PGlite', () => {
  let lite: Backend;
  beforeAll(async () => {
    const knex = openDirectory('memory://');
    await fill(knex);
    lite = { knex, prepared: createDirectory(knex), builder: createDirectory(knex, { mode: 'builder' }) };
  });
  afterAll(async () => {
    await lite?.knex.destroy().catch(() => undefined);
  });

  sameAsBuilder('PGlite', () => lite);

  it('maps a closed database to unavailable', async () => {
    const knex = openDirectory('memory://');
    await fill(knex);
    const dir = createDirectory(knex);
    expect(await dir.query(auth('francesco'))).toHaveLength(1);
    await dir.close();
    expect(await failure(dir.query(auth('francesco')))).toMatchObject({ kind: 'unavailable' });
  });
});

// ---------------------------------------------------------------- restarts

describe('a PostgreSQL restart', () => {
  let server: PrivateServer;
  let knex: Knex;
  let dir: Directory;

  beforeAll(async () => {
    server = await privatePostgres();
    // one connection, so a broken connection that were never released would block every later query
    knex = openDirectory(server.url, { poolMax: 1, acquireTimeoutMs: 3000 });
    await fill(knex);
    dir = createDirectory(knex);
  }, 90_000);
  afterAll(async () => {
    await knex?.destroy();
    await server?.destroy();
  });

  const francesco = [{ 'customers.password': '123456', 'customers.name': 'Netaxis NL' }];

  it('down: unavailable (quickly); back: the same statements are prepared again on a new connection', async () => {
    expect(await dir.query(auth('francesco'))).toEqual(francesco);
    expect(await dir.query(prefix('0031201999', 1))).toHaveLength(1);

    await server.stop({ crash: true });
    for (const query of [auth('francesco'), auth('acme'), prefix('0031', 1)]) {
      const started = Date.now();
      expect(await failure(dir.query(query))).toMatchObject({ kind: 'unavailable' });
      expect(Date.now() - started).toBeLessThan(5000);
    }

    await server.start();
    expect(await dir.query(auth('francesco'))).toEqual(francesco);
    expect(await dir.query(prefix('0031201999', 1))).toEqual([{ 'customer_numbers.number': '0031201', 'customers.name': '100% Telecom' }]);
    const after = await statements(knex);
    expect([...after.values()].map((s) => s.runs).sort()).toEqual([1, 1]);
  }, 60_000);

  it('a restart between queries: the next query runs on a new connection', async () => {
    const pid = (await knex.raw('SELECT pg_backend_pid() AS pid')).rows[0].pid;
    await server.stop();
    await server.start();
    expect(await dir.query(auth('francesco'))).toEqual(francesco);
    expect((await knex.raw('SELECT pg_backend_pid() AS pid')).rows[0].pid).not.toBe(pid);
  }, 60_000);

  it('a crash and restart while the pool holds idle connections: the first query still answers', async () => {
    // Stop and start run synchronously (pg_ctl), so no I/O is read in between: every idle
    // connection's close is still queued when the first query takes one (execute.ts, pgExecute).
    const pool = openDirectory(server.url, { poolMax: 3, acquireTimeoutMs: 3000 });
    try {
      const pooled = createDirectory(pool);
      const pids = await Promise.all([1, 2, 3].map(async () => (await pool.raw('SELECT pg_backend_pid() AS pid, pg_sleep(0.05)')).rows[0].pid));
      expect(new Set(pids).size).toBe(3);
      expect(await pooled.query(auth('francesco'))).toEqual(francesco);

      await server.stop({ crash: true });
      await server.start();
      expect(await pooled.query(auth('francesco'))).toEqual(francesco);
      expect(await pooled.query(prefix('0031201999', 1))).toHaveLength(1);
    } finally {
      await pool.destroy();
    }
  }, 60_000);
});
