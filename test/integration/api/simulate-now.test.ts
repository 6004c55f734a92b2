/** /simulate `now`: the designer's simulator runs a logic at a chosen instant; a bad instant is a 400 naming body/now. */
import { apiFixture, type Fixture } from './support';
import { slidNode as node } from '../../support/slid';

let f: Fixture;
beforeAll(async () => {
  f = await apiFixture();
});
afterAll(async () => {
  await f.close();
});

const slid = {
  1: {
    name: 'hours',
    description: '',
    nodes: {
      0: node(0, 'enter.start', { next: 1 }),
      1: node(1, 'action.setDateTime', { timezone: 'America/New_York', parts: [{ part: 'iso', storeInto: 'localNow' }], next: 2 }),
      2: node(2, 'analysis.timeCondition', {
        timezone: 'America/New_York',
        rules: [
          { dates: [{ from: '12-25' }], ifMatch: 5 },
          { weekdays: ['mon', 'tue', 'wed', 'thu', 'fri'], times: [{ from: '08:00', to: '18:00' }], ifMatch: 3 },
        ],
        fallback: 4,
      }),
      3: node(3, 'output.reply', { code: 200, reason: 'Open' }),
      4: node(4, 'output.reply', { code: 480, reason: 'Closed' }),
      5: node(5, 'output.reply', { code: 480, reason: 'Holiday' }),
    },
  },
};
const simulate = (extra: Record<string, unknown>) =>
  f.call({ method: 'POST', url: '/api/v1/simulate', payload: { slid, logic: 'hours', cd: { requestMethod: 'INVITE' }, ...extra } });

test('the logic runs at `now`: the time condition and setDateTime read it', async () => {
  const open = await simulate({ now: '2026-12-24T14:00:00Z' }); // Thursday 09:00 in New York
  expect(open.statusCode).toBe(200);
  expect(open.json().outcome).toMatchObject({ kind: 'reply', status: 200, reason: 'Open' });
  expect(open.json().cd.localNow).toBe('2026-12-24T09:00:00-05:00');
  expect(open.json().trace.map((t: { exit: string }) => t.exit)).toEqual(['next', 'next', 'rules/1/ifMatch', 'reply']);
  const closed = (await simulate({ now: '2026-12-24T18:30:00-05:00' })).json();
  expect(closed.outcome.reason).toBe('Closed');
  const holiday = (await simulate({ now: '2027-12-25T12:00:00+01:00' })).json();
  expect(holiday.outcome.reason).toBe('Holiday');
  expect(holiday.cd.localNow).toBe('2027-12-25T06:00:00-05:00');
});

test('without `now` the run uses the current time', async () => {
  const before = Date.now();
  const r = (await simulate({})).json();
  const ran = Date.parse(r.cd.localNow);
  expect(ran).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000);
  expect(ran).toBeLessThanOrEqual(Date.now());
});

test('a bad `now` is a 400 naming body/now; `now` with dryRun=false is refused', async () => {
  for (const now of ['2026-12-24T14:00:00', 'yesterday', '2026-13-01T00:00:00Z', 'x'.repeat(41)]) {
    const r = await simulate({ now });
    expect(r.statusCode).toBe(400);
    expect(r.json().message).toContain('body/now');
  }
  const typed = await simulate({ now: 1766584800000 });
  expect(typed.statusCode).toBe(400);
  expect(typed.json().message).toContain('body/now');
  const real = await simulate({ now: '2026-12-24T14:00:00Z', dryRun: false });
  expect(real.statusCode).toBe(400);
  expect(real.json().message).toMatch(/body\/now: only in a dry run/);
});
