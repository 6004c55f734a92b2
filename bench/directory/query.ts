/**
 * bench/directory: the seed flow's auth lookup (`SELECT customers.password, customers.name FROM
 * customers WHERE customers.username = ? fetch first`), built the way the query node builds it,
 * through the directory adapter's two paths:
 *
 *   builder   knex builds and compiles every query, names it after a sha1 of its SQL, runs it
 *             through its runner (the former path, `createDirectory(knex, { mode: 'builder' })`)
 *   prepared  the shape compiled once; per query only the values are bound and the named
 *             statement runs on a pooled connection (the default)
 *
 * on PostgreSQL (PG_URL, or an embedded cluster started and removed here) and on PGlite. Prints
 * queries/s, wall µs/query and this process's CPU µs/query (user + system; on PostgreSQL the
 * server's own work is not in it) per concurrency, median of the rounds. Figures only.
 *
 *   npm run build && node dist/bench/directory/query.js [queries=20000] [rounds=3]
 *   BENCH_CONCURRENCY=1,16 PG_URL=postgres://… node dist/bench/directory/query.js
 */
import { randomUUID } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import knexFactory, { Knex } from 'knex';
import { createDirectory, Directory } from '../../services/directory/query';
import { migrate, seed } from '../../services/directory/migrations';
import { openDirectory } from '../../services/directory/connect';
import type { DirectoryQuery } from '../../services/directory/types';

const QUERIES = Number(process.argv[2] ?? 20000);
const ROUNDS = Number(process.argv[3] ?? 3);
const CONCURRENCY = (process.env.BENCH_CONCURRENCY ?? '1,16').split(',').map(Number);
const USERS = 1000;

/** As nodes/query-database.ts builds it: a base object per node, fresh conditions per query. */
const BASE: Omit<DirectoryQuery, 'conditions'> = {
  tables: ['registration.customers'],
  fields: ['customers.password', 'customers.name'],
  joins: [],
  joinType: 'JOIN',
  logic: 'and',
  orderBy: [],
  offset: 0,
  limit: 1,
};
const username = (i: number) => `user${(i * 7919) % (USERS + 50)}`; // ~5 % unknown users

async function fill(knex: Knex): Promise<void> {
  await migrate(knex);
  await seed(knex);
  const rows = Array.from({ length: USERS }, (_, i) => ({ name: `PBX ${i}`, username: `user${i}`, password: `pw-${i}`, aor: `user${i}@example.test` }));
  for (let i = 0; i < rows.length; i += 500) await knex('registration.customers').insert(rows.slice(i, i + 500));
}

interface Figures {
  perSec: number;
  wallUs: number;
  cpuUs: number;
}

/** `n` queries with `concurrency` in flight. */
async function drive(dir: Directory, n: number, concurrency: number): Promise<Figures> {
  let next = 0;
  let found = 0;
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) {
        const i = next++;
        const rows = await dir.query({ ...BASE, conditions: [{ field: 'customers.username', operator: 'is', value: username(i) }] });
        found += rows.length;
      }
    }),
  );
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  if (found === 0) throw new Error('the lookups found nothing');
  return { perSec: n / secs, wallUs: (secs * 1e6) / n, cpuUs: (cpu.user + cpu.system) / n };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

interface Row {
  db: string;
  mode: string;
  concurrency: number;
  f: Figures;
}

async function measure(db: string, knex: Knex, rows: Row[]): Promise<void> {
  const dirs: Array<[string, Directory]> = [
    ['builder', createDirectory(knex, { mode: 'builder' })],
    ['prepared', createDirectory(knex)],
  ];
  for (const [, dir] of dirs) await drive(dir, Math.min(2000, QUERIES), 4); // warm up: JIT, pool, statements
  for (const concurrency of CONCURRENCY) {
    const runs = new Map<string, Figures[]>(dirs.map(([m]) => [m, []]));
    for (let r = 0; r < ROUNDS; r++) {
      // alternate which goes first, so drift on a shared machine spreads over both
      const order = r % 2 === 0 ? dirs : [...dirs].reverse();
      for (const [mode, dir] of order) runs.get(mode)!.push(await drive(dir, QUERIES, concurrency));
    }
    for (const [mode, fs_] of runs) {
      rows.push({
        db,
        mode,
        concurrency,
        f: { perSec: median(fs_.map((f) => f.perSec)), wallUs: median(fs_.map((f) => f.wallUs)), cpuUs: median(fs_.map((f) => f.cpuUs)) },
      });
    }
  }
}

/** scripts/test-servers/servers.cjs, from the source tree or from dist/. */
function serversLib(): {
  makeRoot(p?: string): string;
  createPostgres(o: { root: string; name: string }): Promise<{ url: string }>;
  destroy(rec: unknown): Promise<void>;
} {
  for (const start of [__dirname, process.cwd()]) {
    for (let dir = start; dir !== path.dirname(dir); dir = path.dirname(dir)) {
      const file = path.join(dir, 'scripts', 'test-servers', 'servers.cjs');
      // eslint-disable-next-line @typescript-eslint/no-require-imports -- a path found at run time, not a module name
      if (fs.existsSync(file)) return require(file);
    }
  }
  throw new Error('scripts/test-servers/servers.cjs not found; set PG_URL');
}

async function main(): Promise<void> {
  const rows: Row[] = [];
  let pgUrl = process.env.PG_URL;
  let cleanup = async (): Promise<void> => undefined;
  if (!pgUrl) {
    const lib = serversLib();
    const root = lib.makeRoot('sipflow-bench-');
    const rec = await lib.createPostgres({ root, name: 'postgres' });
    pgUrl = rec.url;
    cleanup = async () => {
      await lib.destroy(rec);
      fs.rmSync(root, { recursive: true, force: true });
    };
  }
  const database = `sipflow_bench_dir_${randomUUID().slice(0, 8)}`;
  const admin = knexFactory({ client: 'pg', connection: pgUrl, pool: { min: 0, max: 1 } });
  try {
    await admin.raw('CREATE DATABASE ??', [database]);
    const url = new URL(pgUrl);
    url.pathname = `/${database}`;
    const pg = openDirectory(url.toString(), { poolMax: Math.max(...CONCURRENCY) });
    try {
      await fill(pg);
      await measure(`PostgreSQL (${process.env.PG_URL ? 'PG_URL' : 'embedded'})`, pg, rows);
    } finally {
      await pg.destroy();
      await admin.raw('DROP DATABASE IF EXISTS ??', [database]);
    }

    const lite = openDirectory('memory://');
    try {
      await fill(lite);
      await measure('PGlite (in process)', lite, rows);
    } finally {
      await lite.destroy();
    }
  } finally {
    await admin.destroy();
    await cleanup();
  }

  console.log(`\n${QUERIES} auth lookups per run, median of ${ROUNDS} rounds; CPU = this process (user + system)\n`);
  const head = ['database', 'path', 'in flight', 'queries/s', 'wall µs/query', 'CPU µs/query'];
  const body = rows.map((r) => [r.db, r.mode, String(r.concurrency), r.f.perSec.toFixed(0), r.f.wallUs.toFixed(1), r.f.cpuUs.toFixed(1)]);
  const widths = head.map((h, c) => Math.max(h.length, ...body.map((b) => b[c].length)));
  const line = (cells: string[]) => cells.map((x, c) => (c < 2 ? x.padEnd(widths[c]) : x.padStart(widths[c]))).join('  ');
  console.log(line(head));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const b of body) console.log(line(b));
  for (const db of [...new Set(rows.map((r) => r.db))]) {
    for (const c of CONCURRENCY) {
      const b = rows.find((r) => r.db === db && r.mode === 'builder' && r.concurrency === c)!;
      const p = rows.find((r) => r.db === db && r.mode === 'prepared' && r.concurrency === c)!;
      console.log(
        `${db}, ${c} in flight: prepared/builder throughput ×${(p.f.perSec / b.f.perSec).toFixed(2)}, CPU per query ×${(p.f.cpuUs / b.f.cpuUs).toFixed(2)}`,
      );
    }
  }
}

// Exit explicitly: after a failure some client may still hold the event loop open.
main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
