/**
 * action.setDateTime: the run's current instant (ctx.calendar when `nodes.now` started one, else ctx.clock, fixed by `sipflow run --now` and the
 * simulator's `now`), or parts of it, into variables, read in a time zone: numbers (year, month,
 * day, weekday, hour, minute, second, epoch), ISO 8601 texts, or any luxon format
 * (https://moment.github.io/luxon/#/formatting?id=table-of-tokens) in a locale.
 *
 * One luxon DateTime per visit, in a zone whose offset is cached per quarter hour (nodes/time-zone.ts);
 * zone and locale are checked and created at compile time. Limits: 50 parts, formats of 100 characters.
 */
import { DateTime } from 'luxon';
import type { NodeType } from '../engine/node-type';
import type { Scalar } from '../engine/types';
import { nodeRef, writesVariable } from './common';
import { CachedZone, checkZone, timezoneSchema } from './time-zone';

const PARTS = [
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
  'format',
] as const;
type Part = (typeof PARTS)[number];

interface Values {
  timezone?: string;
  locale?: string;
  parts: Array<{ part: Part; format?: string; storeInto: string }>;
  next?: number | string;
}

const WEEKDAY_NAMES = ['', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];

/** How each part is read from the local DateTime. */
const READERS: Record<Exclude<Part, 'format'>, (d: DateTime) => Scalar> = {
  iso: (d) => d.toISO({ suppressMilliseconds: true }),
  isoDate: (d) => d.toISODate(),
  isoTime: (d) => d.toFormat('HH:mm:ss'),
  year: (d) => d.year,
  month: (d) => d.month,
  day: (d) => d.day,
  weekday: (d) => d.weekday,
  weekdayName: (d) => WEEKDAY_NAMES[d.weekday],
  hour: (d) => d.hour,
  minute: (d) => d.minute,
  second: (d) => d.second,
  epochSeconds: (d) => Math.floor(d.toMillis() / 1000),
  epochMillis: (d) => d.toMillis(),
  offset: (d) => d.toFormat('ZZ'),
};

export const setDateTimeNode: NodeType<Values> = {
  type: 'action.setDateTime',
  title: 'Set date and time',
  summary: '{each parts ", "}{part} → {storeInto}{end}',
  category: 'time',
  description:
    'Writes the current date and time, or parts of it, into variables, read in a time zone: ISO 8601 texts, numbers (month 1–12, weekday 1 = Monday … 7 = Sunday), ' +
    'epoch seconds, or a luxon format such as `cccc d LLLL yyyy HH:mm`.',
  valuesSchema: {
    type: 'object',
    required: ['parts'],
    properties: {
      timezone: timezoneSchema,
      locale: {
        type: 'string',
        maxLength: 35,
        default: 'en',
        description: 'BCP 47 locale of names in formats (`en`, `fr-BE`, `nl`)',
      },
      parts: {
        type: 'array',
        maxItems: 50,
        default: [{ part: 'iso', storeInto: 'now' }],
        description: 'what to write, in order: each part into its variable',
        items: {
          type: 'object',
          required: ['part', 'storeInto'],
          properties: {
            part: {
              type: 'string',
              enum: [...PARTS],
              default: 'iso',
              description:
                'iso (2026-12-24T09:30:00+01:00), isoDate (2026-12-24), isoTime (09:30:00), year, month, day, weekday (1–7), weekdayName (mon…sun), ' +
                'hour, minute, second, epochSeconds, epochMillis, offset (+01:00), or format',
            },
            format: {
              type: 'string',
              maxLength: 100,
              description: "luxon format tokens when part is format (`yyyy-LL-dd HH:mm`, `cccc`, 'literal text' in quotes)",
            },
            storeInto: { ...writesVariable, description: 'variable receiving the part' },
          },
        },
      },
      next: nodeRef,
    },
  },
  check(v) {
    const problems = checkZone(v.timezone);
    if (v.locale !== undefined && v.locale !== '') {
      try {
        Intl.getCanonicalLocales(v.locale);
      } catch {
        problems.push(['locale', `not a BCP 47 locale: ${JSON.stringify(v.locale)}`]);
      }
    }
    (Array.isArray(v.parts) ? v.parts : []).forEach((p, i) => {
      if (p?.part === 'format' && !p.format) problems.push([`parts/${i}/format`, 'part "format" needs a format (luxon tokens such as yyyy-LL-dd)']);
    });
    return problems;
  },
  compile(values, c) {
    const options = { zone: new CachedZone(values.timezone ?? 'UTC'), locale: values.locale || 'en' };
    const writes = values.parts.map((p) => {
      const format = p.format ?? '';
      return { name: p.storeInto, read: p.part === 'format' ? (d: DateTime) => d.toFormat(format) : READERS[p.part] };
    });
    const next = c.exit('next');
    return (s) => {
      const d = DateTime.fromMillis((s.ctx.calendar ?? s.ctx.clock).now(), options);
      for (let i = 0; i < writes.length; i++) s.set(writes[i].name, writes[i].read(d));
      return next;
    };
  },
};
