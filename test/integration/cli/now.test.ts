/**
 * `sipflow run --now`: the run's clock stands at the given instant, so a time condition routes by
 * it (holidays read from a pub_holiday table in the embedded directory) and setDateTime writes it;
 * an instant without offset or out of the calendar is a usage error naming the option.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'fs';
import os from 'os';
import path from 'path';
import { openDirectory, migrate } from '../../../services/directory';
import { slidNode as node } from '../../support/slid';
import { runCli as sipflow } from '../../support/cli';

const SLID = {
  1: {
    name: 'hours',
    nodes: {
      0: node(0, 'enter.start', { next: 1 }),
      1: node(1, 'action.setDateTime', {
        timezone: 'Europe/Brussels',
        parts: [
          { part: 'iso', storeInto: 'localNow' },
          { part: 'weekdayName', storeInto: 'weekday' },
        ],
        next: 2,
      }),
      2: node(2, 'analysis.timeCondition', {
        timezone: 'Europe/Brussels',
        rules: [
          { holidaysTable: 'routing.pub_holiday', dateColumn: 'holiday_date', ifMatch: 3 },
          { weekdays: ['mon', 'tue', 'wed', 'thu', 'fri'], times: [{ from: '09:00', to: '17:00' }], ifMatch: 4 },
        ],
        fallback: 5,
      }),
      3: node(3, 'output.reply', { code: 480, reason: 'Holiday' }),
      4: node(4, 'output.reply', { code: 200, reason: 'Open' }),
      5: node(5, 'output.reply', { code: 480, reason: 'Closed' }),
    },
  },
};

describe('sipflow run --now', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sipflow-now-'));
  const flow = path.join(dir, 'hours.slid');
  const cd = path.join(dir, 'cd.json');

  beforeAll(async () => {
    writeFileSync(flow, JSON.stringify(SLID));
    writeFileSync(cd, JSON.stringify({ requestMethod: 'INVITE', called: '3225551000' }));
    // the operator's holidays table, in the embedded directory the CLI opens
    const knex = openDirectory(path.join(dir, 'directory'));
    try {
      await migrate(knex);
      await knex.schema.createSchemaIfNotExists('routing');
      await knex.schema.withSchema('routing').createTable('pub_holiday', (t) => {
        t.date('holiday_date').primary();
        t.text('name');
      });
      await knex('routing.pub_holiday').insert({ holiday_date: '2026-12-25', name: 'Christmas' });
    } finally {
      await knex.destroy();
    }
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const run = async (now: string) => {
    const r = await sipflow('run', flow, '--logic', 'hours', '--cd', cd, '--data-dir', dir, '--now', now);
    expect(r.err).not.toMatch(/error/i); // (a warning tightens the modes of the directory files the test created)
    expect(r.code).toBe(0);
    return JSON.parse(r.out) as { outcome: { reason: string }; cd: Record<string, unknown> };
  };

  test('the logic runs at the given instant, in any offset', async () => {
    const open = await run('2026-12-24T10:00:00+01:00');
    expect(open.outcome.reason).toBe('Open');
    expect(open.cd).toMatchObject({ localNow: '2026-12-24T10:00:00+01:00', weekday: 'thu' });
    const closed = await run('2026-12-24T19:30:00Z'); // 20:30 in Brussels
    expect(closed.outcome.reason).toBe('Closed');
    expect(closed.cd.localNow).toBe('2026-12-24T20:30:00+01:00');
    const holiday = await run('2026-12-24T23:30:00.000Z'); // Friday 25th, 00:30 in Brussels: in the holidays table
    expect(holiday.outcome.reason).toBe('Holiday');
    expect(holiday.cd.weekday).toBe('fri');
  });

  test('an instant without offset, or not in the calendar, is an error naming --now', async () => {
    for (const bad of ['2026-12-24T10:00:00', 'tomorrow', '2026-02-30T10:00:00Z']) {
      const r = await sipflow('run', flow, '--logic', 'hours', '--cd', cd, '--data-dir', dir, '--now', bad);
      expect(r.code).toBe(1);
      expect(r.err).toContain("option '--now <instant>'");
      expect(r.out).toBe('');
    }
    const r = await sipflow('run', flow, '--logic', 'hours', '--cd', cd, '--data-dir', dir, '--now', '2026-12-24T10:00:00');
    expect(r.err).toContain('with an offset');
  });
});
