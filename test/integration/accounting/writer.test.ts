/**
 * Issue 15, accounting: the CDR writer into the `cdrs` table on PGlite and on a real PostgreSQL
 * (batched inserts, the search of GET /api/v1/cdrs, caller-chosen values kept as data), and on a
 * PostgreSQL that is killed and restarted: records kept in the bounded backlog and written when
 * it returns (none lost within the bound), the overflow counted and logged once per episode, the
 * backlog flushed by a graceful close.
 */
import knexFactory, { type Knex } from 'knex';
import { migrate, openDirectory } from '../../../services/directory';
import { CdrWriter, databaseSink, searchCdrs, type CdrRecord, type CdrSearch } from '../../../services/accounting';
import { privatePostgres, scratchDatabase, type PrivateServer } from '../../setup/servers';
import { watchUnhandledRejections } from '../location/faults';

const T0 = Date.UTC(2026, 11, 3, 12, 0, 0);
const EVIL = '"Evil, Inc"\r\nX-Injected: 1 =cmd|\' /C calc\'!A0; DROP TABLE cdrs; --';

function record(i: number, over: Partial<CdrRecord> = {}): CdrRecord {
  return {
    kind: 'stop',
    callId: `call-${i}`,
    at: T0 + i * 1000 + 60_000,
    setupAt: T0 + i * 1000,
    connectAt: T0 + i * 1000 + 500,
    endAt: T0 + i * 1000 + 60_000,
    duration: 59.5,
    calling: `+32255500${String(i).padStart(2, '0')}`,
    called: '+3225559999',
    source: '192.0.2.7:5060',
    destination: 'sip:gw1.example.com',
    status: 200,
    reason: 'OK',
    logic: 'route',
    variables: { customer: i % 2 === 0 ? 'acme' : 'globex' },
    fields: { plan: 'gold' },
    ...over,
  };
}

const page = (knex: Knex, q: Partial<CdrSearch>) => searchCdrs(knex, { limit: 100, offset: 0, ...q });
const ids = async (knex: Knex, q: Partial<CdrSearch>) => (await page(knex, q)).rows.map((r) => r.callId).sort();

describe.each([
  ['PGlite', async () => ({ knex: openDirectory('memory://'), drop: async () => undefined })],
  [
    'PostgreSQL',
    async () => {
      const db = await scratchDatabase('sipflow_cdrs_writer');
      return { knex: openDirectory(db.url), drop: db.drop };
    },
  ],
])('CDR writer into the cdrs table on %s', (_name, open) => {
  let knex: Knex;
  let drop: () => Promise<void>;
  beforeAll(async () => {
    ({ knex, drop } = await open());
    await migrate(knex);
    const writer = new CdrWriter([databaseSink(knex)], { batchSize: 4, flushMs: 5, backlogMax: 1000 });
    for (let i = 0; i < 10; i++) writer.accept(record(i));
    writer.accept(record(20, { kind: 'reject', connectAt: null, duration: null, status: 486, reason: 'Busy Here', calling: EVIL, fields: { note: EVIL } }));
    writer.accept(record(21, { kind: 'reject', connectAt: null, duration: null, status: 487, reason: 'Request Terminated' }));
    writer.accept(record(22, { kind: 'recurse', connectAt: null, duration: null, status: 503, reason: 'Service Unavailable', callId: 'call-2' }));
    writer.accept(record(23, { kind: 'timeout', variables: {}, fields: {} }));
    await writer.idle();
    await writer.close();
  }, 60_000);
  afterAll(async () => {
    await knex?.destroy();
    await drop?.();
  });

  test('every record written, fields as they were; a hostile display name is data', async () => {
    expect((await page(knex, {})).total).toBe(14);
    const [evil] = (await page(knex, { callId: 'call-20' })).rows;
    expect(evil).toMatchObject({
      kind: 'reject',
      callId: 'call-20',
      setupAt: new Date(T0 + 20_000).toISOString(),
      connectAt: null,
      endAt: new Date(T0 + 80_000).toISOString(),
      duration: null,
      calling: EVIL,
      status: 486,
      reason: 'Busy Here',
      variables: { customer: 'acme' },
      fields: { note: EVIL },
    });
    const [stop] = (await page(knex, { callId: 'call-1' })).rows;
    expect(stop).toMatchObject({ duration: 59.5, connectAt: new Date(T0 + 1500).toISOString(), source: '192.0.2.7:5060', destination: 'sip:gw1.example.com' });
  });

  test('filters: time, number, customer, outcome, kind, Call-ID; paging newest first', async () => {
    expect(await ids(knex, { from: T0 + 8000, to: T0 + 21_000 })).toEqual(['call-20', 'call-8', 'call-9']);
    expect(await ids(knex, { number: '+3225550003' })).toEqual(['call-3']);
    expect((await page(knex, { number: '+3225559999' })).total).toBe(14); // every record's called number
    expect(await ids(knex, { variables: { customer: 'globex' } })).toEqual(
      ['call-1', 'call-21', 'call-3', 'call-5', 'call-7', 'call-9'] /* call-23 has no variables */,
    );
    expect(await ids(knex, { outcome: 'rejected' })).toEqual(['call-20']);
    expect(await ids(knex, { outcome: 'cancelled' })).toEqual(['call-21']);
    expect(await ids(knex, { outcome: 486 })).toEqual(['call-20']);
    expect(await ids(knex, { outcome: 'failed-attempt' })).toEqual(['call-2']);
    expect(await ids(knex, { outcome: 'timeout' })).toEqual(['call-23']);
    expect((await page(knex, { outcome: 'answered' })).total).toBe(11);
    expect(await ids(knex, { kind: 'recurse' })).toEqual(['call-2']);
    const first = await page(knex, { limit: 3, offset: 0 });
    const second = await page(knex, { limit: 3, offset: 3 });
    expect(first.total).toBe(14);
    expect(first.rows.map((r) => r.setupAt)).toEqual([T0 + 23_000, T0 + 22_000, T0 + 21_000].map((t) => new Date(t).toISOString()));
    expect(second.rows.map((r) => r.callId)).toEqual(['call-20', 'call-9', 'call-8']);
    // a filter value is a bound parameter, never SQL
    expect((await page(knex, { number: "' OR 1=1 --", variables: { "x') OR ('1'='1": 'y' } })).total).toBe(0);
  });
});

describe('CDR writer on a PostgreSQL that dies and comes back', () => {
  let server: PrivateServer;
  let knex: Knex;
  const unhandled = watchUnhandledRejections();
  beforeAll(async () => {
    server = await privatePostgres();
    knex = knexFactory({
      client: 'pg',
      connection: { connectionString: server.url, connectionTimeoutMillis: 2000 } as Knex.PgConnectionConfig,
      pool: { min: 0, max: 4 },
      acquireConnectionTimeout: 2000,
      log: { warn: () => {}, error: () => {}, debug: () => {}, deprecate: () => {} },
    });
    await migrate(knex);
  }, 60_000);
  afterAll(async () => {
    unhandled.stop();
    await knex?.destroy();
    await server?.destroy();
  });

  test('records wait in the bounded backlog while it is down and are written when it returns; overflow counted and logged once', async () => {
    const logs: Array<[string, string]> = [];
    let failureLogged: () => void = () => undefined;
    const failed = new Promise<void>((resolve) => (failureLogged = resolve));
    const overflow: string[] = [];
    const writer = new CdrWriter([databaseSink(knex)], {
      batchSize: 8,
      flushMs: 20,
      backlogMax: 20,
      log: {
        log: (level, m) => {
          logs.push([level, m]);
          if (/failed/.test(m)) failureLogged();
        },
      },
      onOverflow: (sink) => overflow.push(sink),
    });
    for (let i = 0; i < 5; i++) writer.accept(record(i));
    await writer.idle();
    expect((await page(knex, {})).total).toBe(5);

    await server.stop({ crash: true });
    const t0 = Date.now();
    for (let i = 100; i < 130; i++) writer.accept(record(i)); // 30 while down: 20 kept, 10 dropped
    expect(Date.now() - t0).toBeLessThan(100); // accepting never waits for the database
    expect(writer.backlog()).toEqual({ database: 20 });
    expect(writer.dropped()).toEqual({ database: 10 });
    expect(overflow).toHaveLength(10);
    expect(logs.filter(([, m]) => /backlog is full/.test(m))).toHaveLength(1);

    // a write attempt fails (logged once) before the server returns
    await failed;
    await server.start();
    await writer.idle();
    const after = await page(knex, { limit: 1000 });
    expect(after.total).toBe(25);
    expect(
      after.rows
        .map((r) => r.callId)
        .filter((c) => /call-1\d\d/.test(c))
        .sort(),
    ).toEqual(Array.from({ length: 20 }, (_, i) => `call-${100 + i}`));
    expect(logs.filter(([, m]) => /failed/.test(m))).toHaveLength(1);
    expect(logs.filter(([, m]) => /again/.test(m))).toHaveLength(1);
    expect(logs.filter(([, m]) => /drained; 10 CDRs were dropped/.test(m))).toHaveLength(1);

    // graceful shutdown: what waits is written, even before its flush time
    const slow = new CdrWriter([databaseSink(knex)], { batchSize: 100, flushMs: 60_000, backlogMax: 100 });
    for (let i = 200; i < 203; i++) slow.accept(record(i));
    await slow.close();
    expect(await ids(knex, { from: T0 + 200_000 })).toEqual(['call-200', 'call-201', 'call-202']);
    await writer.close();
    expect(unhandled.seen).toEqual([]);
  }, 90_000);
});
