/**
 * analysis.timeCondition and action.setDateTime at fixed instants (the run context's clock) across
 * time zones: business hours, midnight-crossing ranges, DST days, literal and table holidays, rule
 * order, fallback, located validation errors, and the local clock's offset cache against luxon.
 */
import { DateTime, IANAZone } from 'luxon';
import { loadSlid } from '../../../engine/load';
import { runLogic } from '../../../engine/run';
import type { DirectoryPort, DirectoryQuery } from '../../../engine/ports';
import { createMemoryDirectory } from '../../../services/directory/memory';
import { localClock } from '../../../nodes/time-zone';
import { testContext } from '../../support/context';
import { cdOf, compile, docOf, problemsOf, registry, reply, start, type NodeSpec } from '../engine/helpers';

const at = (iso: string) => DateTime.fromISO(iso, { setZone: true }).toMillis();

/** A directory that records every query it receives. */
function counting(inner: DirectoryPort): DirectoryPort & { queries: DirectoryQuery[] } {
  const queries: DirectoryQuery[] = [];
  return {
    queries,
    query: (q) => {
      queries.push(q);
      return inner.query(q);
    },
    schema: () => inner.schema(),
  };
}

const HOLIDAYS = createMemoryDirectory({
  'routing.pub_holiday': [
    { holiday_date: '2026-12-25', name: 'Christmas' },
    { holiday_date: '2027-01-01', name: "New Year's Day" },
  ],
});

/** A logic: start → time condition (node 1) → replies 200 (rule 0), 201 (rule 1), 202 (rule 2), 480 (fallback), 500 (ifFailure). */
function timeLogic(values: Record<string, unknown>) {
  const nodes: NodeSpec[] = [
    start(1),
    [1, 'analysis.timeCondition', { fallback: 90, ...values }],
    reply(10, 200, 'rule 0'),
    reply(11, 200, 'rule 1'),
    reply(12, 200, 'rule 2'),
    reply(90, 480, 'closed'),
    reply(91, 503, 'failure'),
  ];
  const service = compile(docOf(nodes));
  const directory = counting(HOLIDAYS);
  const ctx = testContext({ directory });
  const run = async (iso: string) => {
    ctx.clockMs.value = at(iso);
    return runLogic(service, '1', cdOf({}), ctx, { trace: true });
  };
  /** The reason of the reply taken at this instant. */
  const reason = async (iso: string) => {
    const r = await run(iso);
    return r.outcome.kind === 'reply' ? r.outcome.reason : r.outcome.kind;
  };
  return { run, reason, directory };
}

const WEEKDAYS = ['mon', 'tue', 'wed', 'thu', 'fri'];
const businessHours = (timezone: string) => timeLogic({ timezone, rules: [{ weekdays: WEEKDAYS, times: [{ from: '09:00', to: '17:00' }], ifMatch: 10 }] });

describe('analysis.timeCondition', () => {
  test('business hours in Brussels: from included, to excluded, weekends closed', async () => {
    const { reason } = businessHours('Europe/Brussels');
    // Thursday 2026-12-03, CET = UTC+1
    expect(await reason('2026-12-03T07:59:59Z')).toBe('closed'); // 08:59:59 local
    expect(await reason('2026-12-03T08:00:00Z')).toBe('rule 0'); // 09:00 local
    expect(await reason('2026-12-03T15:59:59.999Z')).toBe('rule 0'); // 16:59:59.999
    expect(await reason('2026-12-03T16:00:00Z')).toBe('closed'); // 17:00
    expect(await reason('2026-12-05T10:00:00Z')).toBe('closed'); // Saturday
    expect(await reason('2026-12-07T10:00:00Z')).toBe('rule 0'); // Monday
  });

  test('the same instant in other zones: the local weekday and time decide', async () => {
    const instant = '2026-12-04T22:30:00Z'; // Friday 23:30 in Brussels
    expect(await businessHours('Europe/Brussels').reason(instant)).toBe('closed');
    expect(await businessHours('America/Los_Angeles').reason(instant)).toBe('rule 0'); // Friday 14:30
    expect(await businessHours('Pacific/Auckland').reason(instant)).toBe('closed'); // Saturday 11:30
    expect(await businessHours('Asia/Kolkata').reason('2026-12-04T03:30:00Z')).toBe('rule 0'); // Friday 09:00 (+05:30)
    expect(await businessHours('Asia/Kolkata').reason('2026-12-04T03:29:00Z')).toBe('closed');
    expect(await businessHours('UTC').reason('2026-12-04T16:59:00Z')).toBe('rule 0');
  });

  test('a range whose from is after its to crosses midnight, on the date of the moment', async () => {
    const { reason } = timeLogic({ timezone: 'Europe/Brussels', rules: [{ times: [{ from: '22:00', to: '06:00' }], ifMatch: 10 }] });
    expect(await reason('2026-12-03T20:59:00Z')).toBe('closed'); // 21:59
    expect(await reason('2026-12-03T21:00:00Z')).toBe('rule 0'); // 22:00
    expect(await reason('2026-12-03T22:59:59Z')).toBe('rule 0'); // 23:59:59
    expect(await reason('2026-12-03T23:00:00Z')).toBe('rule 0'); // 00:00 next day
    expect(await reason('2026-12-04T04:59:00Z')).toBe('rule 0'); // 05:59
    expect(await reason('2026-12-04T05:00:00Z')).toBe('closed'); // 06:00
    // with a weekday: Friday night is Friday 22:00–24:00 and Friday 00:00–06:00, not Saturday morning
    const fri = timeLogic({ timezone: 'Europe/Brussels', rules: [{ weekdays: ['fri'], times: [{ from: '22:00', to: '06:00' }], ifMatch: 10 }] });
    expect(await fri.reason('2026-12-04T22:00:00Z')).toBe('rule 0'); // Fri 23:00
    expect(await fri.reason('2026-12-05T01:00:00Z')).toBe('closed'); // Sat 02:00
    expect(await fri.reason('2026-12-04T01:00:00Z')).toBe('rule 0'); // Fri 02:00
    // 24:00 ends the day
    const evening = timeLogic({ timezone: 'UTC', rules: [{ times: [{ from: '18:00', to: '24:00' }], ifMatch: 10 }] });
    expect(await evening.reason('2026-12-03T23:59:59Z')).toBe('rule 0');
    expect(await evening.reason('2026-12-04T00:00:00Z')).toBe('closed');
  });

  test('DST: 02:00–03:00 matches no minute on the spring-forward day and two hours on the fall-back day', async () => {
    const { run } = timeLogic({ timezone: 'Europe/Brussels', rules: [{ times: [{ from: '02:00', to: '03:00' }], ifMatch: 10 }] });
    /** Minutes matching, sampled every 5 minutes. */
    const minutesMatching = async (fromIso: string, hours: number) => {
      let n = 0;
      for (let m = 0; m < hours * 60; m += 5) {
        const iso = DateTime.fromISO(fromIso, { zone: 'utc' }).plus({ minutes: m }).toISO()!;
        if ((await run(iso)).outcome.status === 200) n += 5;
      }
      return n;
    };
    // 2026-03-29: 02:00 CET jumps to 03:00 CEST at 01:00Z
    expect(await minutesMatching('2026-03-28T22:00:00Z', 6)).toBe(0);
    // the day before and after: one hour each
    expect(await minutesMatching('2026-03-28T00:00:00Z', 4)).toBe(60);
    expect(await minutesMatching('2026-03-29T22:00:00Z', 4)).toBe(60);
    // 2026-10-25: 03:00 CEST falls back to 02:00 CET at 01:00Z: 00:00Z–02:00Z are 02:xx local
    expect(await minutesMatching('2026-10-24T22:00:00Z', 6)).toBe(120);
    // business hours follow the wall clock across the change: 09:00 local is 08:00Z before, 07:00Z after
    const { reason } = timeLogic({ timezone: 'Europe/Brussels', rules: [{ times: [{ from: '09:00', to: '17:00' }], ifMatch: 10 }] });
    expect(await reason('2026-03-28T08:00:00Z')).toBe('rule 0');
    expect(await reason('2026-03-29T06:59:00Z')).toBe('closed');
    expect(await reason('2026-03-29T07:00:00Z')).toBe('rule 0');
  });

  test('literal holidays: dated ranges (inclusive) and yearly MM-DD ranges wrapping the year end, by the local date', async () => {
    const { reason } = timeLogic({
      timezone: 'Europe/Brussels',
      rules: [
        { dates: [{ from: '2026-12-24', to: '2026-12-26' }, { from: '2027-04-05' }], ifMatch: 10 },
        { dates: [{ from: '12-31', to: '01-01' }], ifMatch: 11 },
      ],
    });
    expect(await reason('2026-12-23T22:59:00Z')).toBe('closed'); // 23 Dec 23:59 local
    expect(await reason('2026-12-23T23:00:00Z')).toBe('rule 0'); // 24 Dec 00:00 local (still the 23rd in UTC)
    expect(await reason('2026-12-26T22:59:00Z')).toBe('rule 0'); // 26 Dec 23:59, last day included
    expect(await reason('2026-12-26T23:00:00Z')).toBe('closed');
    expect(await reason('2027-04-05T12:00:00Z')).toBe('rule 0'); // single day
    expect(await reason('2026-12-31T12:00:00Z')).toBe('rule 1');
    expect(await reason('2030-01-01T12:00:00Z')).toBe('rule 1'); // every year
    expect(await reason('2030-01-02T12:00:00Z')).toBe('closed');
    const leap = timeLogic({ timezone: 'UTC', rules: [{ dates: [{ from: '02-29' }], ifMatch: 10 }] });
    expect(await leap.reason('2028-02-29T12:00:00Z')).toBe('rule 0');
    expect(await leap.reason('2027-03-01T12:00:00Z')).toBe('closed');
  });

  test('holidays from a directory table (memory directory): one query with the local date, only when the other parts match', async () => {
    const { reason, run, directory } = timeLogic({
      timezone: 'Europe/Brussels',
      rules: [
        { holidaysTable: 'routing.pub_holiday', dateColumn: 'holiday_date', ifMatch: 10 },
        { weekdays: WEEKDAYS, times: [{ from: '09:00', to: '17:00' }], ifMatch: 11 },
      ],
    });
    expect(await reason('2026-12-25T10:00:00Z')).toBe('rule 0'); // Christmas, a Friday
    expect(directory.queries).toEqual([
      {
        tables: ['routing.pub_holiday'],
        fields: ['pub_holiday.holiday_date'],
        joins: [],
        joinType: 'JOIN',
        conditions: [{ field: 'pub_holiday.holiday_date', operator: 'is', value: '2026-12-25' }],
        logic: 'and',
        orderBy: [],
        offset: 0,
        limit: 1,
      },
    ]);
    expect(await reason('2026-12-31T23:30:00Z')).toBe('rule 0'); // 1 Jan 00:30 local
    expect(directory.queries[1].conditions[0].value).toBe('2027-01-01');
    expect(await reason('2026-12-24T10:00:00Z')).toBe('rule 1'); // not in the table: business hours
    const r = await run('2026-12-24T10:00:00Z');
    expect(r.trace!.map((t) => t.exit)).toEqual(['next', 'rules/1/ifMatch', 'reply']);

    // a rule whose weekday part fails sends no query; literal dates are tried before the table
    const t2 = timeLogic({
      timezone: 'UTC',
      rules: [{ weekdays: ['sat'], dates: [{ from: '2026-12-24' }], holidaysTable: 'routing.pub_holiday', dateColumn: 'holiday_date', ifMatch: 10 }],
    });
    expect(await t2.reason('2026-12-25T10:00:00Z')).toBe('closed'); // a Friday
    expect(t2.directory.queries).toHaveLength(0);
    expect(await t2.reason('2027-01-02T10:00:00Z')).toBe('closed'); // a Saturday, neither literal nor in the table
    expect(t2.directory.queries).toHaveLength(1);
    const t3 = timeLogic({
      timezone: 'UTC',
      rules: [{ dates: [{ from: '2026-12-24' }], holidaysTable: 'routing.pub_holiday', dateColumn: 'holiday_date', ifMatch: 10 }],
    });
    expect(await t3.reason('2026-12-24T10:00:00Z')).toBe('rule 0'); // literal
    expect(await t3.reason('2026-12-25T10:00:00Z')).toBe('rule 0'); // table
    expect(t3.directory.queries.map((q) => q.conditions[0].value)).toEqual(['2026-12-25']);
  });

  test('rules are tried in order: the first match wins; a rule with no part always matches; else fallback', async () => {
    const { reason } = timeLogic({
      timezone: 'UTC',
      rules: [
        { weekdays: ['sat', 'sun'], ifMatch: 10 },
        { times: [{ from: '08:00', to: '12:00' }], ifMatch: 11 },
        { times: [{ from: '10:00', to: '18:00' }], ifMatch: 12 },
      ],
    });
    expect(await reason('2026-12-05T10:00:00Z')).toBe('rule 0'); // Saturday: rules 1 and 2 also hold
    expect(await reason('2026-12-03T10:00:00Z')).toBe('rule 1'); // rule 2 also holds
    expect(await reason('2026-12-03T13:00:00Z')).toBe('rule 2');
    expect(await reason('2026-12-03T19:00:00Z')).toBe('closed');
    const always = timeLogic({ timezone: 'UTC', rules: [{ ifMatch: 11 }] });
    expect(await always.reason('2026-12-03T19:00:00Z')).toBe('rule 1');
    const none = timeLogic({ timezone: 'UTC', rules: [] });
    expect(await none.reason('2026-12-03T19:00:00Z')).toBe('closed');
  });

  test('a holidays table that cannot be read: ifFailure with the reason in a variable, else the run ends with an error', async () => {
    const bad = { holidaysTable: 'routing.nope', dateColumn: 'holiday_date', ifMatch: 10 };
    const withExit = timeLogic({ timezone: 'UTC', rules: [bad], ifFailure: 91, storeErrorInto: 'timeError' });
    const r = await withExit.run('2026-12-03T10:00:00Z');
    expect(r.outcome).toMatchObject({ status: 503, reason: 'failure' });
    expect(r.trace![1]).toMatchObject({ exit: 'ifFailure', set: { timeError: 'holidays table routing.nope: unknown table routing.nope' } });
    const without = timeLogic({ timezone: 'UTC', rules: [bad] });
    expect((await without.run('2026-12-03T10:00:00Z')).outcome).toMatchObject({ kind: 'error', status: 500 });
  });

  test('problems known in advance are located validation errors', () => {
    const problems = (values: Record<string, unknown>) =>
      problemsOf(loadSlid(docOf([start(1), [1, 'analysis.timeCondition', { fallback: 2, ...values }], reply(2, 480)]), 't.slid', registry));
    expect(problems({ timezone: 'Mars/Olympus_Mons', rules: [] })).toEqual([
      expect.stringMatching(/node 1 .*timezone.*unknown time zone "Mars\/Olympus_Mons"/),
    ]);
    expect(
      problems({
        timezone: 'Europe/Brussels',
        rules: [
          {
            times: [
              { from: '24:00', to: '06:00' },
              { from: '10:00', to: '10:00' },
            ],
            ifMatch: 2,
          },
        ],
      }),
    ).toEqual([expect.stringMatching(/rules\/0\/times\/0\/from.*24:00 can only end a range/), expect.stringMatching(/rules\/0\/times\/1.*empty range/)]);
    expect(problems({ rules: [{ times: [{ from: '9:00', to: '17:00' }], ifMatch: 2 }] })).toEqual(
      expect.arrayContaining([expect.stringMatching(/rules\/0\/times\/0\/from/)]),
    );
    expect(
      problems({
        rules: [
          {
            dates: [{ from: '2026-02-30' }, { from: '2026-12-26', to: '2026-12-24' }, { from: '12-24', to: '2027-01-02' }, { from: '13-01' }],
            ifMatch: 2,
          },
        ],
      }),
    ).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/rules\/0\/dates\/0\/from.*not a date/),
        expect.stringMatching(/rules\/0\/dates\/1\/to.*before/),
        expect.stringMatching(/rules\/0\/dates\/2.*both/),
        expect.stringMatching(/rules\/0\/dates\/3\/from.*not a date/),
      ]),
    );
    expect(problems({ rules: [{ holidaysTable: 'routing.pub_holiday', ifMatch: 2 }] })).toEqual([expect.stringMatching(/rules\/0\/dateColumn.*needs/)]);
    expect(problems({ rules: [{ holidaysTable: 'x; drop table y', dateColumn: 'd', ifMatch: 2 }] })).toEqual([
      expect.stringMatching(/rules\/0\/holidaysTable.*must match pattern/),
    ]);
    expect(problems({ rules: [{ weekdays: ['monday'], ifMatch: 2 }] })).toEqual([expect.stringMatching(/rules\/0\/weekdays\/0/)]);
    // shapes the schema refuses are reported, not thrown on
    expect(problems({ rules: [{ times: '09:00-17:00', dates: 5, ifMatch: 2 }, null] })).toEqual(
      expect.arrayContaining([expect.stringMatching(/rules\/0\/times: must be array/), expect.stringMatching(/rules\/1: must be object/)]),
    );
    expect(problems({ rules: 'always' })).toEqual([expect.stringMatching(/rules: must be array/)]);
  });
});

describe('local clock (offset cached per quarter hour)', () => {
  test.each(['Europe/Brussels', 'America/New_York', 'Australia/Lord_Howe', 'Asia/Kathmandu', 'America/Santiago'])(
    'agrees with luxon every 4 hours over 2026 and every minute around each offset change in %s',
    (zone) => {
      const local = localClock(zone);
      const reference = IANAZone.create(zone);
      let mismatches = 0;
      let changes = 0;
      const compare = (ms: number) => {
        const t = local(ms);
        const d = DateTime.fromMillis(ms, { zone: reference });
        const day = Math.floor(Date.UTC(d.year, d.month - 1, d.day) / 86_400_000);
        if (t.day !== day || t.minute !== d.hour * 60 + d.minute || t.weekday !== d.weekday - 1) mismatches++;
      };
      const start = Date.UTC(2026, 0, 1);
      const step = 4 * 3_600_000;
      for (let ms = start; ms < start + 365 * 86_400_000; ms += step) {
        compare(ms);
        if (reference.offset(ms) !== reference.offset(ms + step)) {
          changes++;
          for (let m = 0; m < 240; m++) compare(ms + m * 60_000);
        }
      }
      expect(mismatches).toBe(0);
      // Kathmandu (+05:45) has no DST; the others change twice a year (Lord Howe by 30 minutes)
      expect(changes).toBe(zone === 'Asia/Kathmandu' ? 0 : 2);
    },
  );
  test('a quarter hour holding an offset change is looked up per instant (Monrovia, 1972-01-07 00:44:30Z: -00:44:30 → 00:00)', () => {
    const local = localClock('Africa/Monrovia');
    const reference = IANAZone.create('Africa/Monrovia');
    const minutes: number[] = [];
    const expected: number[] = [];
    for (let ms = Date.UTC(1972, 0, 7, 0, 30); ms < Date.UTC(1972, 0, 7, 1, 0); ms += 30_000) {
      minutes.push(local(ms).minute);
      const d = DateTime.fromMillis(ms, { zone: reference });
      expected.push(d.hour * 60 + d.minute);
    }
    expect(minutes).toEqual(expected);
    expect(expected).toContain(23 * 60 + 59); // before the change: 23:59 on the 6th
    expect(expected).toContain(44); // after: 00:44 on the 7th
  });
});

describe('action.setDateTime', () => {
  const ALL = [
    'iso',
    'isoDate',
    'isoTime',
    'year',
    'month',
    'day',
    'weekday',
    'weekdayName',
    'hour',
    'minute',
    'second',
    'epochSeconds',
    'epochMillis',
    'offset',
  ];
  async function parts(timezone: string, iso: string, extra: Array<Record<string, unknown>> = [], locale?: string) {
    const service = compile(
      docOf([
        start(1),
        [1, 'action.setDateTime', { timezone, locale, parts: [...ALL.map((part) => ({ part, storeInto: part })), ...extra], next: 2 }],
        reply(2, 200),
      ]),
    );
    const ctx = testContext();
    ctx.clockMs.value = at(iso);
    const r = await runLogic(service, '1', cdOf({}), ctx, { trace: true });
    expect(r.trace![1].exit).toBe('next');
    expect(r.trace![1].set).toEqual(Object.fromEntries(Object.keys(r.trace![1].set!).map((k) => [k, r.cd.vars[k]])));
    return r.cd.vars;
  }

  test('every part at an instant just after the spring-forward change in Brussels, and the same instant elsewhere', async () => {
    const instant = '2026-03-29T01:30:05.250Z';
    expect(await parts('Europe/Brussels', instant)).toMatchObject({
      iso: '2026-03-29T03:30:05.250+02:00',
      isoDate: '2026-03-29',
      isoTime: '03:30:05',
      year: 2026,
      month: 3,
      day: 29,
      weekday: 7,
      weekdayName: 'sun',
      hour: 3,
      minute: 30,
      second: 5,
      epochSeconds: 1774747805,
      epochMillis: 1774747805250,
      offset: '+02:00',
    });
    expect(await parts('America/New_York', instant)).toMatchObject({ isoDate: '2026-03-28', isoTime: '21:30:05', weekdayName: 'sat', offset: '-04:00' });
    expect(await parts('Asia/Kolkata', instant)).toMatchObject({ isoTime: '07:00:05', offset: '+05:30', epochSeconds: 1774747805 });
    expect(await parts('UTC', '2026-12-03T09:30:00Z')).toMatchObject({ iso: '2026-12-03T09:30:00+00:00', weekday: 4, weekdayName: 'thu' });
  });

  test('luxon formats in a locale', async () => {
    const vars = await parts(
      'Europe/Paris',
      '2026-12-24T17:05:00Z',
      [
        { part: 'format', format: "cccc d LLLL yyyy 'à' HH'h'mm", storeInto: 'label' },
        { part: 'format', format: 'yyyyLLdd', storeInto: 'compact' },
      ],
      'fr',
    );
    expect(vars).toMatchObject({ label: 'jeudi 24 décembre 2026 à 18h05', compact: '20261224' });
  });

  test('an unknown zone or locale and a format part without format are located validation errors', () => {
    const problems = (values: Record<string, unknown>) =>
      problemsOf(loadSlid(docOf([start(1), [1, 'action.setDateTime', { next: 2, ...values }], reply(2, 200)]), 't.slid', registry));
    expect(problems({ timezone: 'Europe/Atlantis', parts: [{ part: 'iso', storeInto: 'now' }] })).toEqual([
      expect.stringMatching(/timezone.*unknown time zone/),
    ]);
    expect(problems({ locale: 'not a locale!', parts: [{ part: 'iso', storeInto: 'now' }] })).toEqual([expect.stringMatching(/locale.*BCP 47/)]);
    expect(problems({ parts: [{ part: 'format', storeInto: 'now' }] })).toEqual([expect.stringMatching(/parts\/0\/format.*needs a format/)]);
    expect(problems({ parts: [{ part: 'century', storeInto: 'now' }] })).toEqual([expect.stringMatching(/parts\/0\/part/)]);
  });
});
