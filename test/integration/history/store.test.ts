/**
 * Issue 16, call history: the store (services/history/store.ts) on PGlite and on a real
 * PostgreSQL — segments written in batches, the list filters, a call's segments merged by get()
 * (in one batch and across batches), retention by age and by size (oldest first), and a database
 * that is down: segments dropped beyond the backlog and counted, nothing thrown, the SIP side
 * (accept) never waiting.
 */
import knexFactory, { type Knex } from 'knex';
import { migrate, openDirectory } from '../../../services/directory';
import { HistoryStore, type CallDetail, type HistoryStoreConfig } from '../../../services/history';
import { scratchDatabase } from '../../setup/servers';

const T0 = Date.UTC(2026, 11, 3, 12, 0, 0);
const config: HistoryStoreConfig = { maxAgeDays: 7, maxBytes: 1 << 30, purgeEverySec: 300, batchSize: 3, flushMs: 5, backlogMax: 1000, maxWriteShare: 1 };

function segment(callId: string, at: number, over: Partial<CallDetail> = {}): CallDetail {
  const text = `INVITE sip:bob@example.test SIP/2.0\r\nCall-ID: ${callId}\r\n\r\n`;
  return {
    callId,
    startedAt: new Date(at).toISOString(),
    endedAt: new Date(at + 100).toISOString(),
    method: 'INVITE',
    calling: 'alice',
    called: 'bob',
    aor: 'alice@example.test',
    source: '192.0.2.10:5062',
    outcome: 'success',
    status: 200,
    logic: 'pbx',
    messageCount: 2,
    runCount: 1,
    messages: [
      {
        at,
        direction: 'in',
        transport: 'udp',
        src: '192.0.2.10:5062',
        dst: '127.0.0.1:5060',
        method: 'INVITE',
        status: null,
        firstLine: text.split('\r\n')[0],
        text,
      },
      {
        at: at + 100,
        direction: 'out',
        transport: 'udp',
        src: '127.0.0.1:5060',
        dst: '192.0.2.10:5062',
        method: 'INVITE',
        status: 200,
        firstLine: 'SIP/2.0 200 OK',
        text: 'SIP/2.0 200 OK\r\n\r\n',
      },
    ],
    runs: [
      {
        at,
        durationMs: 0.5,
        method: 'INVITE',
        logicId: '1',
        logic: 'pbx',
        flow: 'pbx',
        input: { calling: 'alice' },
        path: [],
        outcome: 'relay',
        status: null,
        where: null,
      },
    ],
    droppedMessages: 0,
    ...over,
  };
}

describe.each([
  ['PGlite', async () => ({ knex: openDirectory('memory://'), drop: async () => undefined })],
  [
    'PostgreSQL',
    async () => {
      const db = await scratchDatabase('sipflow_call_history');
      return { knex: openDirectory(db.url), drop: db.drop };
    },
  ],
])('call history store on %s', (_name, open) => {
  let knex: Knex;
  let drop: () => Promise<void>;
  let store: HistoryStore;
  const written: number[] = [];
  /** settled() calls seen when the first store.idle() resolved, and how many had been made before it. */
  let settledAtIdle = -1;
  let settledBeforeWrite = -1;
  beforeAll(async () => {
    ({ knex, drop } = await open());
    await migrate(knex);
    store = new HistoryStore(knex, config, { timer: false, onWritten: (n) => written.push(n) });
    let settled = 0;
    store.accept(segment('c1', T0 + 1000), () => settled++);
    settledBeforeWrite = settled;
    store.accept(segment('c2', T0 + 2000, { calling: '+3225550100', called: '+3225559999', outcome: 'failed', status: 486 }));
    store.accept(
      segment('reg-1', T0 + 3000, { method: 'REGISTER', aor: 'francesco@nl.netaxis.be', calling: null, called: null, outcome: 'challenged', status: 401 }),
    );
    // a second segment of reg-1 in the same batch, then a third in a later one: one call
    store.accept(
      segment('reg-1', T0 + 4000, { method: 'REGISTER', aor: 'francesco@nl.netaxis.be', calling: null, called: null, outcome: 'success', status: 200 }),
      () => settled++,
    );
    await store.idle();
    settledAtIdle = settled;
    store.accept(
      segment('reg-1', T0 + 500_000, { method: 'REGISTER', aor: 'francesco@nl.netaxis.be', calling: null, called: null, outcome: 'success', status: 200 }),
    );
    store.accept(segment("it's; DROP TABLE call_history; --", T0 + 5000));
    await store.idle();
  }, 60_000);
  afterAll(async () => {
    await store?.close();
    await knex?.destroy();
    await drop?.();
  });

  test("settled: told for each segment once it is written, not before (the recorders' window)", () => {
    expect(settledBeforeWrite).toBe(0);
    expect(settledAtIdle).toBe(2);
  });

  test('list: newest first; filters on Call-ID, number, AoR, start time, outcome; limit', async () => {
    const ids = async (f: Parameters<HistoryStore['list']>[0]) => (await store.list(f)).map((c) => c.callId);
    expect(written.reduce((a, b) => a + b, 0)).toBe(6);
    expect(await ids({})).toEqual(["it's; DROP TABLE call_history; --", 'reg-1', 'c2', 'c1']);
    expect(await ids({ callId: 'c2' })).toEqual(['c2']);
    expect(await ids({ number: '+3225559999' })).toEqual(['c2']);
    expect(await ids({ number: '+3225550100' })).toEqual(['c2']);
    expect(await ids({ aor: 'francesco@nl.netaxis.be' })).toEqual(['reg-1']);
    expect(await ids({ from: T0 + 2000, to: T0 + 5000 })).toEqual(['reg-1', 'c2']);
    expect(await ids({ outcome: 'failed' })).toEqual(['c2']);
    expect(await ids({ outcome: 'success', limit: 2 })).toEqual(["it's; DROP TABLE call_history; --", 'reg-1']);
    expect(await ids({ number: "' OR 1=1 --" })).toEqual([]);
    const [c2] = await store.list({ callId: 'c2' });
    expect(c2).toEqual({
      callId: 'c2',
      startedAt: new Date(T0 + 2000).toISOString(),
      endedAt: new Date(T0 + 2100).toISOString(),
      method: 'INVITE',
      calling: '+3225550100',
      called: '+3225559999',
      aor: 'alice@example.test',
      source: '192.0.2.10:5062',
      outcome: 'failed',
      status: 486,
      logic: 'pbx',
      messageCount: 2,
      runCount: 1,
    });
  });

  test('get: every segment of a Call-ID merged, messages and runs in time order; the latest summary; unknown → null', async () => {
    const reg = await store.get('reg-1');
    expect(reg).toMatchObject({
      callId: 'reg-1',
      startedAt: new Date(T0 + 3000).toISOString(),
      endedAt: new Date(T0 + 500_100).toISOString(),
      method: 'REGISTER',
      outcome: 'success',
      status: 200,
      messageCount: 6,
      runCount: 3,
      droppedMessages: 0,
    });
    expect(reg!.messages.map((m) => m.at)).toEqual([T0 + 3000, T0 + 3100, T0 + 4000, T0 + 4100, T0 + 500_000, T0 + 500_100]);
    expect(reg!.runs.map((r) => r.at)).toEqual([T0 + 3000, T0 + 4000, T0 + 500_000]);
    expect(await store.get('nope')).toBeNull();
    expect((await store.get("it's; DROP TABLE call_history; --"))!.messages).toHaveLength(2);
  });

  test('retention: by age (last message), then by size (oldest first)', async () => {
    const s = new HistoryStore(knex, { ...config, maxAgeDays: 1 }, { timer: false });
    // now = 1 day and 1 s after c1 ended: c1 and c2 are older than a day, reg-1 ended later
    expect(await s.purge(T0 + 86_400_000 + 2500)).toBe(2);
    expect((await s.list({})).map((c) => c.callId)).toEqual(["it's; DROP TABLE call_history; --", 'reg-1']);
    const [{ bytes }] = (await knex('call_history').where('call_id', 'reg-1').select('bytes')) as Array<{ bytes: string }>;
    // room for reg-1 (the newest by last message) only
    const sized = new HistoryStore(knex, { ...config, maxBytes: Number(bytes) }, { timer: false });
    expect(await sized.purge(T0)).toBe(1);
    expect((await sized.list({})).map((c) => c.callId)).toEqual(['reg-1']);
    expect(Number(((await knex('call_history_segments').whereNot('call_id', 'reg-1').count('* as n')) as Array<{ n: unknown }>)[0].n)).toBe(0);
    await s.close();
    await sized.close();
  });
});

test('a database that is down: accept never throws nor waits; beyond backlogMax dropped and counted; close resolves', async () => {
  const knex = knexFactory({
    client: 'pg',
    connection: { host: '127.0.0.1', port: 1, user: 'x', database: 'x', connectionTimeoutMillis: 500 } as Knex.PgConnectionConfig,
    pool: { min: 0, max: 1 },
    acquireConnectionTimeout: 500,
    log: { warn: () => {}, error: () => {}, debug: () => {}, deprecate: () => {} },
  });
  const dropped: string[] = [];
  const logs: string[] = [];
  let failed: () => void = () => undefined;
  const failure = new Promise<void>((resolve) => (failed = resolve));
  const store = new HistoryStore(
    knex,
    { ...config, backlogMax: 3 },
    {
      timer: false,
      onDropped: (why) => dropped.push(why),
      log: {
        log: (_level, m) => {
          logs.push(m);
          if (/failed/.test(m)) failed();
        },
      },
    },
  );
  const settled: string[] = [];
  for (let i = 0; i < 5; i++) store.accept(segment(`down-${i}`, T0), () => settled.push(`down-${i}`));
  expect(dropped).toEqual(['backlog', 'backlog']);
  // the dropped ones leave the recorders' window at once; the kept ones only when written
  expect(settled).toEqual(['down-3', 'down-4']);
  await failure;
  expect(settled).toEqual(['down-3', 'down-4']);
  expect(logs.filter((m) => /^history: writing call records to the database failed/.test(m))).toHaveLength(1);
  await expect(store.purge()).rejects.toThrow();
  await store.close();
  await knex.destroy();
}, 30_000);
