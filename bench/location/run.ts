/**
 * Location store benchmark: bindings saved/s (upserts, 32 in flight), lookups/s and lookup
 * latency for the MongoDB store (FerretDB, or MONGODB_URL) and the SQL store (PostgreSQL, or
 * PG_URL; and PGlite in process). Prints figures only; nothing here is a pass/fail threshold.
 *
 *   npm run build && node dist/bench/location/run.js
 *   BENCH_BINDINGS=20000 BENCH_CONCURRENCY=64 MONGODB_URL=mongodb://… PG_URL=postgres://… node dist/bench/location/run.js
 *
 * Note FerretDB on SQLite is a test stand-in: its figures say nothing about a MongoDB replica set.
 */
import { randomUUID } from 'crypto';
import knexFactory from 'knex';
import type { Knex } from 'knex';
import ClientPGLite from 'knex-pglite';
import { MongoClient } from 'mongodb';
import { createMongoLocationStore } from '../../services/location/mongo';
import { createSqlLocationStore, ensureSchema } from '../../services/location/sql';
import type { Binding, LocationStore } from '../../services/location/types';
import { servers } from '../../test/setup/servers';

const BINDINGS = Number(process.env.BENCH_BINDINGS ?? 5000);
/**
 * FerretDB's SQLite backend scans and decodes the whole collection per query (about 100 ms per
 * lookup at 2000 documents), so it gets a smaller run; with MONGODB_URL (real MongoDB) the full one.
 */
const FERRETDB_BINDINGS = Number(process.env.BENCH_FERRETDB_BINDINGS ?? 300);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 32);
const CONTACTS_PER_AOR = 2;

function binding(i: number): Binding {
  const now = Date.now();
  return {
    ruid: `uloc-${randomUUID()}`,
    username: `user${Math.floor(i / CONTACTS_PER_AOR)}`,
    domain: null,
    contact: `sip:user@10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}:5060`,
    received: null,
    path: null,
    expires: new Date(now + 3_600_000),
    q: -1,
    callid: `${randomUUID()}@bench`,
    cseq: 1,
    last_modified: new Date(now),
    flags: 0,
    cflags: 0,
    user_agent: 'sipflow-bench',
    socket: 'udp:10.0.0.1:5060',
    methods: 7935,
    instance: null,
    reg_id: 0,
    server_id: 0,
    connection_id: 0,
    keepalive: 0,
    partition: 0,
  };
}

/** Runs `n` operations with `CONCURRENCY` in flight; returns ops/s and per-op latencies (ms). */
async function drive(n: number, op: (i: number) => Promise<unknown>): Promise<{ perSec: number; lat: number[] }> {
  const lat: number[] = [];
  let next = 0;
  const t0 = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < n) {
        const i = next++;
        const s = process.hrtime.bigint();
        await op(i);
        lat.push(Number(process.hrtime.bigint() - s) / 1e6);
      }
    }),
  );
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  return { perSec: n / secs, lat };
}

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))];

interface Row {
  store: string;
  n: number;
  saves: number;
  lookups: number;
  p50: number;
  p99: number;
}

async function measure(name: string, store: LocationStore, n = BINDINGS): Promise<Row> {
  const bs = Array.from({ length: n }, (_, i) => binding(i));
  await store.find('warmup', null); // connection and first-use setup out of the timing
  const save = await drive(n, (i) => store.upsert(bs[i]));
  const aors = Math.ceil(n / CONTACTS_PER_AOR);
  const look = await drive(n, async (i) => {
    const found = await store.find(`user${(i * 7919) % aors}`, null);
    if (found.length === 0) throw new Error(`${name}: lookup found nothing`);
  });
  return { store: name, n, saves: save.perSec, lookups: look.perSec, p50: pct(look.lat, 0.5), p99: pct(look.lat, 0.99) };
}

async function main(): Promise<void> {
  const env = await servers.startTestServers({ log: (m) => console.log(m) });
  const rows: Row[] = [];
  const db = `sipflow_bench_${randomUUID().slice(0, 8)}`;
  try {
    // Long socket timeout: the bench reports slow operations in its figures rather than failing on them.
    const mongo = createMongoLocationStore({ url: env.mongoUrl, database: db, socketTimeoutMS: 60_000 });
    const external = Boolean(process.env.MONGODB_URL);
    rows.push(await measure(`MongoDB (${external ? 'MONGODB_URL' : 'FerretDB 1.24/SQLite'})`, mongo, external ? BINDINGS : FERRETDB_BINDINGS));
    await mongo.close();
    const admin = new MongoClient(env.mongoUrl);
    await admin
      .db(db)
      .dropDatabase()
      .finally(() => admin.close());

    const schema = db;
    const pg = knexFactory({ client: 'pg', connection: env.pgUrl, searchPath: [schema], pool: { min: 0, max: CONCURRENCY } });
    await pg.raw(`CREATE SCHEMA "${schema}"`);
    await ensureSchema(pg);
    rows.push(await measure(`SQL on PostgreSQL (${process.env.PG_URL ? 'PG_URL' : 'embedded 18'})`, createSqlLocationStore(pg)));
    await pg.raw(`DROP SCHEMA "${schema}" CASCADE`);
    await pg.destroy();

    const lite: Knex = knexFactory({
      client: ClientPGLite,
      dialect: 'postgres',
      connection: { connectionString: 'memory://' },
    } as Knex.Config);
    await ensureSchema(lite);
    rows.push(await measure('SQL on PGlite (in process)', createSqlLocationStore(lite)));
    await lite.destroy();
  } finally {
    await servers.stopTestServers(env.stateDir);
  }

  console.log(`\n${CONCURRENCY} operations in flight, ${CONTACTS_PER_AOR} contacts per AoR; as many lookups as bindings\n`);
  const head = ['store', 'bindings', 'saved/s', 'lookups/s', 'lookup p50 ms', 'lookup p99 ms'];
  const body = rows.map((r) => [r.store, String(r.n), r.saves.toFixed(0), r.lookups.toFixed(0), r.p50.toFixed(2), r.p99.toFixed(2)]);
  const widths = head.map((h, c) => Math.max(h.length, ...body.map((b) => b[c].length)));
  const line = (cells: string[]) => cells.map((x, c) => (c === 0 ? x.padEnd(widths[c]) : x.padStart(widths[c]))).join('  ');
  console.log(line(head));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const b of body) console.log(line(b));
}

// Exit explicitly: after a failure some client may still hold the event loop open.
main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
