/**
 * analysis.timeCondition reading holidays from a real PostgreSQL table through the directory
 * adapter (the production path): a `date` column and a text column compared with the local date,
 * an operator's edit seen by the next call, and a missing column taking ifFailure.
 */
import type { Knex } from 'knex';
import { runLogic } from '../../../engine/run';
import { loadSlid } from '../../../engine/load';
import { builtinRegistry } from '../../../nodes';
import { buildCallDescriptor } from '../../../engine/cd';
import { scratchDatabase } from '../../setup/servers';
import { openDirectory, migrate, createDirectory, type Directory } from '../../../services/directory';
import { testContext } from '../../support/context';
import { slidNode as node } from '../../support/slid';

let db: Awaited<ReturnType<typeof scratchDatabase>>;
let knex: Knex;
let dir: Directory;

beforeAll(async () => {
  db = await scratchDatabase(`sipflow_holidays_${process.pid}`);
  knex = openDirectory(db.url, { poolMax: 2 });
  await migrate(knex);
  await knex.schema.createSchema('routing');
  await knex.schema.withSchema('routing').createTable('pub_holiday', (t) => {
    t.date('holiday_date').primary();
    t.text('name');
  });
  await knex.schema.withSchema('routing').createTable('closures', (t) => {
    t.text('day'); // YYYY-MM-DD as text
  });
  await knex('routing.pub_holiday').insert([{ holiday_date: '2026-12-25', name: 'Christmas' }]);
  await knex('routing.closures').insert([{ day: '2026-12-28' }]);
  dir = createDirectory(knex);
});

afterAll(async () => {
  await knex?.destroy();
  await db?.drop();
});

function service(rules: unknown[], extra: Record<string, unknown> = {}) {
  const r = loadSlid(
    {
      1: {
        name: 'hours',
        nodes: {
          0: node(0, 'enter.start', { next: 1 }),
          1: node(1, 'analysis.timeCondition', { timezone: 'Asia/Tokyo', rules, fallback: 3, ...extra }),
          2: node(2, 'output.reply', { code: 480, reason: 'Holiday' }),
          3: node(3, 'output.reply', { code: 200, reason: 'Open' }),
          4: node(4, 'output.reply', { code: 503, reason: 'Failure' }),
        },
      },
    },
    'hours.slid',
    builtinRegistry(),
  );
  if (!r.service) throw new Error(JSON.stringify(r.problems));
  return r.service;
}

async function reasonAt(s: ReturnType<typeof service>, iso: string) {
  const ctx = testContext({ directory: dir });
  ctx.clockMs.value = Date.parse(iso);
  const r = await runLogic(s, '1', buildCallDescriptor({}), ctx, { trace: true });
  return { reason: r.outcome.kind === 'reply' ? r.outcome.reason : r.outcome.kind, trace: r.trace! };
}

test('a date column matches the local date (Tokyo, UTC+9)', async () => {
  const s = service([{ holidaysTable: 'routing.pub_holiday', dateColumn: 'holiday_date', ifMatch: 2 }]);
  expect((await reasonAt(s, '2026-12-24T14:59:00Z')).reason).toBe('Open'); // 24th 23:59 in Tokyo
  expect((await reasonAt(s, '2026-12-24T15:00:00Z')).reason).toBe('Holiday'); // 25th 00:00
  expect((await reasonAt(s, '2026-12-25T14:59:00Z')).reason).toBe('Holiday');
  expect((await reasonAt(s, '2026-12-25T15:00:00Z')).reason).toBe('Open');
});

test('a text column, and an operator edit seen by the next call without touching the logic', async () => {
  const s = service([{ holidaysTable: 'routing.closures', dateColumn: 'day', ifMatch: 2 }]);
  expect((await reasonAt(s, '2026-12-28T03:00:00Z')).reason).toBe('Holiday');
  expect((await reasonAt(s, '2026-12-29T03:00:00Z')).reason).toBe('Open');
  await knex('routing.closures').insert({ day: '2026-12-29' });
  expect((await reasonAt(s, '2026-12-29T03:00:00Z')).reason).toBe('Holiday');
});

test('a column the table lacks: ifFailure with the reason, or a 500 without it', async () => {
  const rules = [{ holidaysTable: 'routing.pub_holiday', dateColumn: 'no_such_column', ifMatch: 2 }];
  const withExit = await reasonAt(service(rules, { ifFailure: 4, storeErrorInto: 'holidayError' }), '2026-12-28T03:00:00Z');
  expect(withExit.reason).toBe('Failure');
  expect(withExit.trace[1]).toMatchObject({ exit: 'ifFailure', set: { holidayError: expect.stringContaining('holidays table routing.pub_holiday:') } });
  expect((await reasonAt(service(rules), '2026-12-28T03:00:00Z')).reason).toBe('error');
});
