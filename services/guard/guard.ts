/**
 * Brute-force and flood defence of one sipflow process (Kamailio's pike + htable bans, fail2ban,
 * IvozProvider's "ban after 100 failures"): per-source request rate limit, failed authentications
 * counted per source address and per auth username, temporary bans of sources and locks of
 * usernames, scanner User-Agents, and an allow-list.
 *
 * Why here, and one per process: the SIP threads share one guard, owned by the main thread. With
 * `sip.workers` > 1 the main thread receives every datagram and TCP message before it is handed to
 * a worker by Call-ID (server/sip-threads/host.ts), so `check()` drops a banned, over-rate or
 * scanning source before the hand-off and before any parse; with one SIP thread the same call sits
 * in front of the front end (server/sip-server.ts `admit`). Workers report each failed
 * authentication (`authFailure()` here, through the thread protocol) and are told which usernames
 * are locked (`onBan` / `onLift` of kind "user" → a Control message): a worker refuses a locked
 * username itself (locks.ts), so a lock costs no extra hop. Attackers rotating the Call-ID cannot
 * escape a count, since counts do not live in the workers. Instances (processes, hosts) each keep
 * their own guard: nothing is shared between them.
 *
 * Layout: five lru-cache tables, each bounded (`maxEntries`, least recently used forgotten first):
 *
 *   bans            source address → ban (reason, count, since, until, last username / user agent)
 *   buckets         source address → token bucket + over-rate streak (only with a rate limit)
 *   sourceFailures  source address → FailureWindow (sliding-window.ts)
 *   userFailures    lower-cased username → FailureWindow
 *   locks           lower-cased username → lock (reason, count, since, until, last source)
 *
 * The per-message cost (`check()`) is at most: one trusted-address lookup (trusted.ts; the whole
 * check for a trusted source), one `bans` lookup (skipped while nothing is banned), one `buckets`
 * lookup and a token-bucket update, and for a request the scan for its User-Agent header
 * (user-agent.ts). Failures and bans are rare events and may cost more (array shifts, a log line).
 *
 * Semantics:
 * - A failure counts against its source (unless trusted) and its username (always, trusted or
 *   not: behind an SBC the username lock is the remaining defence), except a failure of a source
 *   already banned, which counts against neither: one untrusted source adds at most
 *   `maxFailuresPerSource` to any username's count, however many of its requests were in flight. A source reaching
 *   `maxFailuresPerSource` within `windowSec` is banned for `banSec`; a username reaching
 *   `maxFailuresPerUser` is locked for `lockSec`. The count restarts after a ban / lock. A success
 *   resets nothing: an attacker holding one valid account cannot launder its failures with it.
 * - While locked a username never authenticates (the caller answers as for a wrong password), and
 *   the attempts still count against their sources; they do not extend the lock.
 * - A source over its rate has its messages dropped; over it for `banAfterSec` in a row (drops no
 *   more than a second apart) it is banned for `banSec`. Every message counts, requests and
 *   responses alike, as pike does.
 * - A request whose User-Agent contains a scanner pattern is dropped and its source banned.
 * - `bans.enabled: false` turns every ban and lock off (failures are not even counted); the rate
 *   limit and the scanner check still drop the messages concerned.
 * - Bans and locks end by themselves at `until` (checked lazily) or when lifted (`liftSource`,
 *   `liftUser`, the API).
 *
 * Concurrency: none; every method runs on the owning thread. Limits: bans and counts vanish with
 * the process (a restart lifts every ban) and are not shared by instances; a table at its bound
 * forgets its least recently used entry (an attacker spoofing many UDP sources can push an idle
 * ban out early; a banned source that keeps sending stays recent and stays banned). The tables
 * grow with their entries (engine/lru.ts): an idle guard holds next to nothing.
 */
import type { LRUCache } from 'lru-cache';
import { growingLru } from '../../engine/lru';
import { FailureWindow, takeToken, type BucketState } from './sliding-window';
import { normalizeAddress, TrustedSources } from './trusted';
import { ScannerMatcher } from './user-agent';
import type { LockedUsernames } from './locks';

/** The `security` configuration block (server/config.ts). */
export interface GuardSettings {
  trustedSources: string[];
  bans: { enabled: boolean; windowSec: number; maxFailuresPerSource: number; maxFailuresPerUser: number; banSec: number; lockSec: number };
  rateLimit: { requestsPerSec: number; burst: number; banAfterSec: number };
  scannerUserAgents: string[];
}

/** What `check()` decided: pass, or drop (and why). */
export const PASS = 0;
export const DROP_BANNED = 1;
export const DROP_RATE = 2;
export const DROP_SCANNER = 3;
export type Verdict = typeof PASS | typeof DROP_BANNED | typeof DROP_RATE | typeof DROP_SCANNER;
/** The metric label of each verdict, indexed by it. */
export const DROP_REASONS = ['', 'banned', 'rate', 'scanner'] as const;

export type BanReason = 'auth' | 'rate' | 'scanner';

/** A ban of a source or a lock of a username. */
export interface BanEntry {
  /** The source address or the lower-cased username. */
  key: string;
  reason: BanReason;
  /** Failures within the window (auth), messages dropped in the streak (rate), 1 (scanner). */
  count: number;
  since: number;
  until: number;
  /** Source ban: the last username tried from it (auth); user lock: the last source that tried it. */
  last: string | null;
  /** Scanner ban: the pattern its User-Agent matched. */
  userAgent?: string;
}

/** A ban or lock just taken (one log line, one metric). */
export interface BanEvent extends BanEntry {
  kind: 'source' | 'user';
  /** The window the count was taken over (auth: windowSec, rate: banAfterSec), null for a scanner. */
  windowSec: number | null;
  durationSec: number;
}

export interface GuardOptions extends GuardSettings {
  /** Clock (ms); default Date.now. */
  now?: () => number;
  /** Entries per table at most (default 100 000). */
  maxEntries?: number;
  /** Trusted decisions cached (default 10 000). */
  trustedCacheSize?: number;
  onBan?: (e: BanEvent) => void;
  /** A ban or lock lifted over the API (not called when one merely expires). */
  onLift?: (kind: 'source' | 'user', key: string) => void;
  /**
   * The first failed authentication of a source (of a username, for a trusted source) within the
   * window: one log line an operator can act on (a phone with a wrong password), never one per
   * guess of a brute force (those end in a ban, logged by onBan).
   */
  onFirstFailure?: (source: string, username: string | null) => void;
}

interface RateState extends BucketState {
  /** First and last drop of the current over-rate streak (0 = none), drops in it. */
  overSince: number;
  overLast: number;
  dropped: number;
}

/** Drops more than this far apart end an over-rate streak. */
const STREAK_GAP_MS = 1000;

export class Guard implements LockedUsernames {
  private readonly now: () => number;
  private readonly trusted: TrustedSources;
  private readonly scanners: ScannerMatcher;
  private readonly bans: LRUCache<string, BanEntry>;
  private readonly buckets: LRUCache<string, RateState>;
  private readonly sourceFailures: LRUCache<string, FailureWindow>;
  private readonly userFailures: LRUCache<string, FailureWindow>;
  private readonly locks: LRUCache<string, BanEntry>;
  private readonly enabled: boolean;
  private readonly rate: number;
  private readonly burst: number;
  private readonly banAfterMs: number;
  private readonly windowMs: number;
  private readonly banMs: number;
  private readonly lockMs: number;

  constructor(private readonly o: GuardOptions) {
    this.now = o.now ?? Date.now;
    this.trusted = new TrustedSources(o.trustedSources, o.trustedCacheSize);
    this.scanners = new ScannerMatcher(o.scannerUserAgents);
    const max = Math.max(1, o.maxEntries ?? 100_000);
    this.bans = growingLru(max);
    this.buckets = growingLru(max);
    this.sourceFailures = growingLru(max);
    this.userFailures = growingLru(max);
    this.locks = growingLru(max);
    this.enabled = o.bans.enabled;
    this.rate = o.rateLimit.requestsPerSec;
    this.burst = Math.max(1, o.rateLimit.burst);
    this.banAfterMs = o.rateLimit.banAfterSec * 1000;
    this.windowMs = o.bans.windowSec * 1000;
    this.banMs = o.bans.banSec * 1000;
    this.lockMs = o.bans.lockSec * 1000;
  }

  /** Trusted by `security.trustedSources`. */
  isTrusted(address: string): boolean {
    return this.trusted.has(normalizeAddress(address));
  }

  /**
   * The per-message check, on the raw bytes before any parse: PASS, or why the message is to be
   * dropped without an answer. A scanner's request bans its source.
   */
  check(buf: Buffer, rawAddress: string): Verdict {
    const address = normalizeAddress(rawAddress);
    if (this.trusted.has(address)) return PASS;
    let now = 0;
    if (this.bans.size !== 0) {
      const b = this.bans.get(address);
      if (b !== undefined) {
        now = this.now();
        if (b.until > now) return DROP_BANNED;
        this.bans.delete(address);
      }
    }
    if (this.rate > 0) {
      if (now === 0) now = this.now();
      let r = this.buckets.get(address);
      if (r === undefined) {
        r = { tokens: this.burst, last: now, overSince: 0, overLast: 0, dropped: 0 };
        this.buckets.set(address, r);
      }
      if (!takeToken(r, now, this.rate, this.burst)) {
        this.overRate(address, r, now);
        return DROP_RATE;
      }
    }
    if (!this.scanners.empty) {
      const pattern = this.scanners.match(buf);
      if (pattern !== null) {
        if (this.enabled) this.banSource(address, 'scanner', 1, now || this.now(), null, pattern);
        return DROP_SCANNER;
      }
    }
    return PASS;
  }

  private overRate(address: string, r: RateState, now: number): void {
    if (r.overSince === 0 || now - r.overLast > STREAK_GAP_MS) {
      r.overSince = now;
      r.dropped = 0;
    }
    r.overLast = now;
    r.dropped++;
    if (this.enabled && this.banAfterMs > 0 && now - r.overSince >= this.banAfterMs) {
      this.banSource(address, 'rate', r.dropped, now, null);
      r.overSince = 0;
      r.dropped = 0;
    }
  }

  /**
   * One failed authentication from `rawAddress` for `username` (null when the credentials named
   * none): counts it, and bans the source / locks the username at their thresholds.
   */
  authFailure(rawAddress: string, username: string | null): void {
    if (!this.enabled) return;
    const now = this.now();
    const address = normalizeAddress(rawAddress);
    if (!this.trusted.has(address)) {
      // A failure reported after its source was banned: a message admitted before the ban, its
      // run finished in a worker afterwards (a burst is in flight when the ban lands). It counts
      // neither against the source (already paid for) nor against the username: otherwise one
      // source's burst alone could lock its victim out, which the per-source < per-user ordering
      // is meant to rule out (docs/security.md, "The lock-out trade-off").
      if (this.activeBan(address, now)) return;
      if (this.sourceFailureCount(address) === 0) this.o.onFirstFailure?.(address, username);
      const n = this.countFailure(this.sourceFailures, address, this.o.bans.maxFailuresPerSource, now);
      if (n !== null) this.banSource(address, 'auth', n, now, username);
    }
    if (username !== null && username !== '') {
      const key = username.toLowerCase();
      if (this.activeLock(key, now) !== undefined) return;
      if (this.trusted.has(address) && this.userFailureCount(key) === 0) this.o.onFirstFailure?.(address, username);
      const n = this.countFailure(this.userFailures, key, this.o.bans.maxFailuresPerUser, now);
      if (n !== null) {
        const lock: BanEntry = { key, reason: 'auth', count: n, since: now, until: now + this.lockMs, last: address };
        this.locks.set(key, lock);
        this.o.onBan?.({ ...lock, kind: 'user', windowSec: this.o.bans.windowSec, durationSec: this.o.bans.lockSec });
      }
    }
  }

  /** Counts one failure for `key`; at `max` within the window, forgets the count and returns it (the caller bans / locks), else null. */
  private countFailure(table: LRUCache<string, FailureWindow>, key: string, max: number, now: number): number | null {
    let w = table.get(key);
    if (w === undefined) {
      w = new FailureWindow();
      table.set(key, w);
    }
    const n = w.hit(now, this.windowMs, max);
    if (n < max) return null;
    table.delete(key);
    return n;
  }

  /** Failures counted now within the window for a source (0 when trusted or unknown). */
  sourceFailureCount(address: string): number {
    return this.sourceFailures.peek(normalizeAddress(address))?.count(this.now(), this.windowMs) ?? 0;
  }

  /** Failures counted now within the window for a username. */
  userFailureCount(username: string): number {
    return this.userFailures.peek(username.toLowerCase())?.count(this.now(), this.windowMs) ?? 0;
  }

  private banSource(address: string, reason: BanReason, count: number, now: number, username: string | null, userAgent?: string): void {
    const ban: BanEntry = { key: address, reason, count, since: now, until: now + this.banMs, last: username };
    if (userAgent !== undefined) ban.userAgent = userAgent;
    this.bans.set(address, ban);
    this.o.onBan?.({
      ...ban,
      kind: 'source',
      windowSec: reason === 'auth' ? this.o.bans.windowSec : reason === 'rate' ? this.o.rateLimit.banAfterSec : null,
      durationSec: this.o.bans.banSec,
    });
  }

  private activeBan(address: string, now: number): BanEntry | undefined {
    const b = this.bans.peek(address);
    if (b === undefined) return undefined;
    if (b.until > now) return b;
    this.bans.delete(address);
    return undefined;
  }

  private activeLock(key: string, now: number): BanEntry | undefined {
    const l = this.locks.get(key);
    if (l === undefined) return undefined;
    if (l.until > now) return l;
    this.locks.delete(key);
    return undefined;
  }

  /** True while the source is banned. */
  isBanned(address: string): boolean {
    return this.activeBan(normalizeAddress(address), this.now()) !== undefined;
  }

  /** True while the username (any case) is locked. */
  isLocked(username: string): boolean {
    if (this.locks.size === 0) return false;
    return this.activeLock(username.toLowerCase(), this.now()) !== undefined;
  }

  /** Active locks as [lower-cased username, until (ms)] (what a new SIP worker is told). */
  activeLocks(): Array<[string, number]> {
    return this.list().users.map((l) => [l.key, l.until]);
  }

  /** Active bans and locks (expired ones are removed on the way), oldest first. */
  list(): { sources: BanEntry[]; users: BanEntry[] } {
    const now = this.now();
    const live = (t: LRUCache<string, BanEntry>) => {
      const out: BanEntry[] = [];
      const expired: string[] = [];
      for (const [k, v] of [...t.entries()].reverse()) {
        if (v.until > now) out.push({ ...v });
        else expired.push(k);
      }
      for (const k of expired) t.delete(k);
      return out.sort((a, b) => a.since - b.since);
    };
    return { sources: live(this.bans), users: live(this.locks) };
  }

  /** How many bans and locks are active. */
  activeCounts(): { sources: number; users: number } {
    const l = this.list();
    return { sources: l.sources.length, users: l.users.length };
  }

  /** Lifts a source's ban (and forgets its counts); false when it was not banned. */
  liftSource(rawAddress: string): boolean {
    const address = normalizeAddress(rawAddress);
    const active = this.activeBan(address, this.now()) !== undefined;
    this.bans.delete(address);
    this.sourceFailures.delete(address);
    this.buckets.delete(address);
    if (active) this.o.onLift?.('source', address);
    return active;
  }

  /** Lifts a username's lock (and forgets its count); false when it was not locked. */
  liftUser(username: string): boolean {
    const key = username.toLowerCase();
    const active = this.activeLock(key, this.now()) !== undefined;
    this.locks.delete(key);
    this.userFailures.delete(key);
    if (active) this.o.onLift?.('user', key);
    return active;
  }
}
