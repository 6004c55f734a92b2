/**
 * Time zones for the date and time nodes (analysis.timeCondition, action.setDateTime): the
 * `timezone` field's schema and check, and a local clock that turns the run's instant into local
 * wall-clock parts with one offset lookup, cached per quarter hour (CachedZone, also the zone
 * action.setDateTime's luxon DateTimes are built in).
 *
 * Why the cache holds: the offset of a zone changes at most once within any 15 minutes (tz data
 * has no two transitions that close), so when the offset at a quarter hour's first and last
 * millisecond agree, it holds for the whole quarter hour. A quarter hour that holds a transition
 * is looked up per instant (today's transitions fall on quarter-hour boundaries: only historical
 * ones such as Monrovia's at 00:44:30Z in 1972 do).
 */
import { IANAZone, Zone, type ZoneOffsetFormat, type ZoneOffsetOptions } from 'luxon';

export const timezoneSchema = {
  type: 'string',
  minLength: 1,
  maxLength: 64,
  default: 'UTC',
  description: 'IANA time zone the local date and time are read in (`Europe/Brussels`, `America/New_York`, `UTC`)',
};

/** Problems of a `timezone` value: an unknown zone is a located validation error. */
export function checkZone(zone: unknown, pointer = 'timezone'): Array<[string, string]> {
  if (zone === undefined) return [];
  if (typeof zone !== 'string' || !IANAZone.isValidZone(zone))
    return [[pointer, `unknown time zone ${JSON.stringify(zone)} (an IANA name such as Europe/Brussels)`]];
  return [];
}

const QUARTER_MS = 15 * 60_000;
const DAY_MS = 86_400_000;

/**
 * An IANA zone whose offset is cached per quarter hour (see the header): luxon asks a zone for
 * its offset on every DateTime, and an IANAZone answers through Intl.DateTimeFormat#formatToParts
 * (several µs). Names and offset texts are the IANA zone's.
 */
export class CachedZone extends Zone {
  private readonly zone: IANAZone;
  private cachedQuarter = NaN;
  private cachedOffset = 0;

  constructor(name: string) {
    super();
    this.zone = IANAZone.create(name);
  }
  override get type(): string {
    return 'iana';
  }
  override get name(): string {
    return this.zone.name;
  }
  override get isUniversal(): boolean {
    return false;
  }
  override get isValid(): true {
    return true;
  }
  override offsetName(ts: number, options: ZoneOffsetOptions): string {
    return this.zone.offsetName(ts, options) ?? '';
  }
  override formatOffset(ts: number, format: ZoneOffsetFormat): string {
    return this.zone.formatOffset(ts, format);
  }
  override equals(other: Zone): boolean {
    return other.type === 'iana' && other.name === this.name;
  }
  /** Offset in minutes at `ts`. */
  override offset(ts: number): number {
    const quarter = Math.floor(ts / QUARTER_MS);
    if (quarter === this.cachedQuarter) return this.cachedOffset;
    const first = this.zone.offset(quarter * QUARTER_MS);
    if (first !== this.zone.offset(quarter * QUARTER_MS + QUARTER_MS - 1)) return this.zone.offset(ts); // a transition inside
    this.cachedQuarter = quarter;
    this.cachedOffset = first;
    return first;
  }
}

/** The local wall clock of one instant. */
export interface LocalTime {
  /** Days since 1970-01-01 of the local date. */
  day: number;
  /** Minutes since local midnight, 0…1439. */
  minute: number;
  /** 0 = Monday … 6 = Sunday. */
  weekday: number;
}

/** Local wall-clock parts of instants in one zone. */
export function localClock(zoneName: string): (ms: number) => LocalTime {
  const zone = new CachedZone(zoneName);
  return (ms) => {
    const local = ms + zone.offset(ms) * 60_000;
    const day = Math.floor(local / DAY_MS);
    const minute = Math.floor((local - day * DAY_MS) / 60_000);
    // 1970-01-01 was a Thursday (3 with Monday = 0)
    return { day, minute, weekday: (((day + 3) % 7) + 7) % 7 };
  };
}

/** Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
export function daysFromCivil(y: number, m: number, d: number): number {
  y -= m <= 2 ? 1 : 0;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

/** The date of a day number (H. Hinnant's civil_from_days). */
export function civilFromDays(z: number): { year: number; month: number; day: number } {
  z += 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const day = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  return { year: yoe + era * 400 + (month <= 2 ? 1 : 0), month, day };
}

const pad2 = (n: number) => (n < 10 ? `0${n}` : String(n));

/** `YYYY-MM-DD` of a day number. */
export function isoDateOfDay(day: number): string {
  const c = civilFromDays(day);
  return `${String(c.year).padStart(4, '0')}-${pad2(c.month)}-${pad2(c.day)}`;
}
