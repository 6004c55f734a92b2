/**
 * analysis.timeCondition: time-of-day, day-of-week and holiday routing. The run's clock
 * (ctx.calendar when `nodes.now` / `serve --now` started one, else ctx.clock, fixed by `sipflow run --now` and the simulator's `now`) is read once per visit and
 * turned into the local date, minute and weekday of `timezone`; the rules are tried in order and
 * the first that matches takes its `ifMatch`, else `fallback`.
 *
 * A rule matches when every part it gives matches (a rule with no part always matches):
 *   weekdays  the local weekday is one of them;
 *   times     the local time is in one of the ranges, `from` included, `to` excluded (09:00–17:00
 *             ends at 16:59:59.999; `to` may be 24:00). `from` after `to` crosses midnight:
 *             22:00–06:00 is 22:00–24:00 and 00:00–06:00 of the same local date, so the weekday
 *             and date parts apply to the date of the moment, not to the evening it started;
 *   dates     the local date is in one of the ranges, both ends included; `YYYY-MM-DD` for one
 *             year, `MM-DD` every year (`12-24`–`01-02` wraps the year end). `holidaysTable` +
 *             `dateColumn` add the days listed in a directory table (one indexed query per visit
 *             that gets that far, only when no literal date matched), so an operator edits
 *             holidays without editing the logic.
 * Wall-clock semantics on DST days: a range covers the local times it names, so 02:00–03:00
 * matches nothing on a spring-forward day where 02:00 is skipped, and the whole two hours of
 * 02:00–03:00 local on a fall-back day.
 *
 * Everything is parsed at compile time (minutes, weekday bit masks, day numbers); the zone offset
 * is cached per quarter hour (nodes/time-zone.ts). Limits: 100 rules, 50 ranges per part.
 */
import type { Exit, NodeType, RunState, StepResult } from '../engine/node-type';
import type { DirectoryQuery } from '../engine/ports';
import { nodeRef, writesVariable } from './common';
import { checkZone, daysFromCivil, isoDateOfDay, localClock, timezoneSchema, civilFromDays, type LocalTime } from './time-zone';

const WEEKDAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;
type Weekday = (typeof WEEKDAYS)[number];

interface Rule {
  weekdays?: Weekday[];
  times?: Array<{ from: string; to: string }>;
  dates?: Array<{ from: string; to?: string }>;
  holidaysTable?: string;
  dateColumn?: string;
  ifMatch?: number | string;
}
interface Values {
  timezone?: string;
  rules?: Rule[];
  fallback?: number | string;
  ifFailure?: number | string;
  storeErrorInto?: string;
}

const MAX_RULES = 100;
const MAX_RANGES = 50;
const TIME = /^([01]\d|2[0-3]):([0-5]\d)$|^24:00$/;
const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
const YEARLY = /^(\d{2})-(\d{2})$/;
const IDENTIFIER = '[A-Za-z_][A-Za-z0-9_]*';

/** Minutes since midnight of `HH:MM` (24:00 = 1440); null when malformed. */
function minutesOf(t: unknown): number | null {
  if (typeof t !== 'string' || !TIME.test(t)) return null;
  return Number(t.slice(0, 2)) * 60 + Number(t.slice(3, 5));
}

type DateBound = { kind: 'dated'; day: number } | { kind: 'yearly'; md: number };

/** A calendar date (`YYYY-MM-DD`, a real day) or a yearly one (`MM-DD`, 02-29 allowed); null when malformed. */
function dateOf(d: unknown): DateBound | null {
  if (typeof d !== 'string') return null;
  let m = DATE.exec(d);
  if (m) {
    const [y, mo, da] = [Number(m[1]), Number(m[2]), Number(m[3])];
    const day = daysFromCivil(y, mo, da);
    const back = civilFromDays(day);
    return back.year === y && back.month === mo && back.day === da ? { kind: 'dated', day } : null;
  }
  m = YEARLY.exec(d);
  if (m) {
    const [mo, da] = [Number(m[1]), Number(m[2])];
    const leap = civilFromDays(daysFromCivil(2000, mo, da)); // 2000 is a leap year: 02-29 exists
    return mo >= 1 && mo <= 12 && leap.month === mo && leap.day === da ? { kind: 'yearly', md: mo * 100 + da } : null;
  }
  return null;
}

/** check() also sees values the schema refused: a part that is not a list has no items to check. */
const listOf = <T>(x: T[] | undefined): T[] => (Array.isArray(x) ? x : []);

export const timeConditionNode: NodeType<Values> = {
  type: 'analysis.timeCondition',
  title: 'Time condition',
  summary: '{rules|count} rule(s){if timezone} in {timezone}{end}',
  category: 'time',
  description:
    'Routes by the local time, weekday and date in a time zone (business hours, closed, holidays from literal dates or a directory table): ' +
    'rules are tried in order, the first that matches takes its ifMatch, else fallback. Times are from (included) – to (excluded); ' +
    'a range whose from is after its to crosses midnight; dates are inclusive, YYYY-MM-DD or MM-DD every year.',
  valuesSchema: {
    type: 'object',
    required: ['rules'],
    properties: {
      timezone: timezoneSchema,
      rules: {
        type: 'array',
        maxItems: MAX_RULES,
        default: [],
        description: 'tried in order; a rule matches when all the parts it gives match (a rule with no part always matches)',
        items: {
          type: 'object',
          required: ['ifMatch'],
          properties: {
            weekdays: {
              type: 'array',
              items: { type: 'string', enum: [...WEEKDAYS] },
              uniqueItems: true,
              description: 'local weekdays the rule holds on (empty or absent: any day)',
            },
            times: {
              type: 'array',
              maxItems: MAX_RANGES,
              description: 'local time ranges HH:MM, from included, to excluded (to may be 24:00); from after to crosses midnight (22:00–06:00)',
              items: {
                type: 'object',
                required: ['from', 'to'],
                properties: {
                  from: { type: 'string', pattern: TIME.source, default: '09:00', description: 'start, included (HH:MM)' },
                  to: { type: 'string', pattern: TIME.source, default: '17:00', description: 'end, excluded (HH:MM, 24:00 = end of day)' },
                },
              },
            },
            dates: {
              type: 'array',
              maxItems: MAX_RANGES,
              description: 'local date ranges, both ends included: YYYY-MM-DD, or MM-DD for every year (12-24 to 01-02 wraps the year end)',
              items: {
                type: 'object',
                required: ['from'],
                properties: {
                  from: { type: 'string', pattern: `${DATE.source}|${YEARLY.source}`, description: 'first day (YYYY-MM-DD or MM-DD)' },
                  to: { type: 'string', pattern: `${DATE.source}|${YEARLY.source}`, description: 'last day, included (default: from)' },
                },
              },
            },
            holidaysTable: {
              type: 'string',
              pattern: `^${IDENTIFIER}(\\.${IDENTIFIER})?$`,
              'x-table': true,
              description: 'directory table listing holidays (`schema.table`): the date part also matches a day found in its dateColumn',
            },
            dateColumn: {
              type: 'string',
              pattern: `^${IDENTIFIER}$`,
              default: 'holiday_date',
              description: 'column of holidaysTable holding the day (a date, or text YYYY-MM-DD), compared with the local date',
            },
            ifMatch: {
              ...nodeRef,
              'x-exit-label': 'rule {#}{if weekdays}: {weekdays}{end}{if times} {each times " "}{from}–{to}{end}{end}',
              description: 'taken when this rule matches',
            },
          },
        },
      },
      fallback: { ...nodeRef, 'x-exit-label': 'otherwise', description: 'taken when no rule matches' },
      ifFailure: {
        ...nodeRef,
        'x-optional': true,
        description: 'taken when the holidays table cannot be read (else the run ends with 503/500 as a database query does)',
      },
      storeErrorInto: { ...writesVariable, description: 'variable receiving the reason when ifFailure is taken' },
    },
  },
  check(v) {
    const problems: Array<[string, string]> = [...checkZone(v.timezone)];
    listOf(v.rules).forEach((rule, i) => {
      if (!rule || typeof rule !== 'object') return;
      listOf(rule.times).forEach((t, j) => {
        const from = minutesOf(t?.from);
        const to = minutesOf(t?.to);
        const at = `rules/${i}/times/${j}`;
        if (from === null) problems.push([`${at}/from`, `not a time HH:MM (00:00…23:59): ${JSON.stringify(t?.from)}`]);
        else if (from === 1440) problems.push([`${at}/from`, '24:00 can only end a range']);
        if (to === null) problems.push([`${at}/to`, `not a time HH:MM (00:00…24:00): ${JSON.stringify(t?.to)}`]);
        if (from !== null && from === to) problems.push([at, 'empty range (from = to); the whole day is 00:00–24:00']);
      });
      listOf(rule.dates).forEach((d, j) => {
        const at = `rules/${i}/dates/${j}`;
        const from = dateOf(d?.from);
        const to = d?.to === undefined || d?.to === '' ? from : dateOf(d.to);
        if (!from) problems.push([`${at}/from`, `not a date YYYY-MM-DD or MM-DD: ${JSON.stringify(d?.from)}`]);
        if (!to) problems.push([`${at}/to`, `not a date YYYY-MM-DD or MM-DD: ${JSON.stringify(d?.to)}`]);
        if (!from || !to) return;
        if (from.kind !== to.kind) problems.push([at, 'from and to must both be YYYY-MM-DD or both MM-DD']);
        else if (from.kind === 'dated' && to.kind === 'dated' && to.day < from.day) problems.push([`${at}/to`, `${d.to} is before ${d.from}`]);
      });
      if (rule.holidaysTable && !rule.dateColumn) problems.push([`rules/${i}/dateColumn`, 'holidaysTable needs the dateColumn holding the day']);
      if (rule.dateColumn && !rule.holidaysTable) problems.push([`rules/${i}/holidaysTable`, 'dateColumn needs the holidaysTable it belongs to']);
    });
    return problems;
  },
  compile(values, c) {
    const local = localClock(values.timezone ?? 'UTC');
    const rules = (values.rules ?? []).map((rule, i) => compileRule(rule, c.exit(`rules/${i}/ifMatch`)));
    const fallback = c.exit('fallback');
    const ifFailure = values.ifFailure === undefined || values.ifFailure === null || values.ifFailure === '' ? null : c.exit('ifFailure');
    const errorVar = values.storeErrorInto || null;

    /** Rules from `i` on, for a rule whose date part needs the holidays table (one query, then the rest). */
    const fromTable = async (s: RunState, t: LocalTime, i: number): Promise<StepResult> => {
      for (; i < rules.length; i++) {
        const r = rules[i];
        if (!r.clockMatches(t)) continue;
        const literal = r.literalDateMatches(t);
        if (literal === true || (literal === null && !r.table)) return r.exit;
        if (!r.table) continue;
        let rows;
        try {
          rows = await s.ctx.directory.query(r.table(isoDateOfDay(t.day)));
        } catch (err) {
          if (!ifFailure) throw err;
          if (errorVar) s.set(errorVar, `holidays table ${r.tableName}: ${(err as Error).message}`);
          return ifFailure;
        }
        if (rows.length > 0) return r.exit;
      }
      return fallback;
    };

    return (s) => {
      const t = local((s.ctx.calendar ?? s.ctx.clock).now());
      for (let i = 0; i < rules.length; i++) {
        const r = rules[i];
        if (!r.clockMatches(t)) continue;
        const literal = r.literalDateMatches(t);
        if (literal === true || (literal === null && !r.table)) return r.exit;
        if (r.table) return fromTable(s, t, i);
      }
      return fallback;
    };
  },
};

interface CompiledRule {
  exit: Exit;
  /** Weekday and time parts. */
  clockMatches(t: LocalTime): boolean;
  /** Literal dates: true/false, or null when the rule gives none. */
  literalDateMatches(t: LocalTime): boolean | null;
  /** The holidays query for a local date, when the rule reads a table. */
  table: ((isoDate: string) => DirectoryQuery) | null;
  tableName: string;
}

function compileRule(rule: Rule, exit: Exit): CompiledRule {
  let weekdayMask = 0;
  for (const d of rule.weekdays ?? []) weekdayMask |= 1 << WEEKDAYS.indexOf(d);
  // [from, to) in minutes; a midnight-crossing range becomes two
  const ranges: number[] = [];
  for (const t of rule.times ?? []) {
    const from = minutesOf(t.from)!;
    const to = minutesOf(t.to)!;
    if (from < to) ranges.push(from, to);
    else ranges.push(from, 1440, 0, to);
  }
  const dated: number[] = [];
  const yearly: number[] = [];
  for (const d of rule.dates ?? []) {
    const from = dateOf(d.from)!;
    const to = d.to ? dateOf(d.to)! : from;
    if (from.kind === 'dated' && to.kind === 'dated') dated.push(from.day, to.day);
    else if (from.kind === 'yearly' && to.kind === 'yearly') yearly.push(from.md, to.md);
  }
  const hasDates = dated.length > 0 || yearly.length > 0;
  const table = rule.holidaysTable || null;
  const short = table ? table.split('.').pop()! : '';
  const field = table ? `${short}.${rule.dateColumn}` : '';
  return {
    exit,
    tableName: table ?? '',
    clockMatches(t) {
      if (weekdayMask !== 0 && (weekdayMask & (1 << t.weekday)) === 0) return false;
      if (ranges.length === 0) return true;
      for (let i = 0; i < ranges.length; i += 2) if (t.minute >= ranges[i] && t.minute < ranges[i + 1]) return true;
      return false;
    },
    literalDateMatches(t) {
      if (!hasDates) return null;
      for (let i = 0; i < dated.length; i += 2) if (t.day >= dated[i] && t.day <= dated[i + 1]) return true;
      if (yearly.length) {
        const c = civilFromDays(t.day);
        const md = c.month * 100 + c.day;
        for (let i = 0; i < yearly.length; i += 2) {
          const [from, to] = [yearly[i], yearly[i + 1]];
          if (from <= to ? md >= from && md <= to : md >= from || md <= to) return true;
        }
      }
      return false;
    },
    table: table
      ? (isoDate) => ({
          tables: [table],
          fields: [field],
          joins: [],
          joinType: 'JOIN',
          conditions: [{ field, operator: 'is', value: isoDate }],
          logic: 'and',
          orderBy: [],
          offset: 0,
          limit: 1,
        })
      : null,
  };
}
