/** The guard: bans, locks, rate limit, scanners, allow-list, lifting; an injected clock, no sleeps. */
import { parseConfig } from '../../../server/config';
import { DROP_BANNED, DROP_RATE, DROP_SCANNER, Guard, PASS, type BanEvent, type GuardOptions } from '../../../services/guard';

const REQ = (ua = 'Telephone 1.0') =>
  Buffer.from(
    `REGISTER sip:x SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.9;branch=z9hG4bK1\r\nCall-ID: 1\r\nCSeq: 1 REGISTER\r\nUser-Agent: ${ua}\r\nContent-Length: 0\r\n\r\n`,
  );

function setup(over: Partial<GuardOptions> = {}) {
  let now = 1_000_000;
  const events: BanEvent[] = [];
  const lifts: string[] = [];
  const g = new Guard({
    trustedSources: ['10.0.0.0/8'],
    bans: { enabled: true, windowSec: 60, maxFailuresPerSource: 5, maxFailuresPerUser: 8, banSec: 900, lockSec: 300 },
    rateLimit: { requestsPerSec: 10, burst: 20, banAfterSec: 3 },
    scannerUserAgents: ['friendly-scanner'],
    now: () => now,
    onBan: (e) => events.push(e),
    onLift: (kind, key) => lifts.push(`${kind}:${key}`),
    ...over,
  });
  return {
    g,
    events,
    lifts,
    advance: (ms: number) => {
      now += ms;
    },
    now: () => now,
  };
}

describe('failed authentications', () => {
  test('a source reaching maxFailuresPerSource within the window is banned: its messages are dropped until banSec', () => {
    const { g, events, advance } = setup();
    for (let i = 0; i < 4; i++) {
      g.authFailure('192.0.2.1', `u${i}`);
      advance(1000);
    }
    expect(g.check(REQ(), '192.0.2.1')).toBe(PASS);
    g.authFailure('192.0.2.1', 'francesco');
    expect(g.check(REQ(), '192.0.2.1')).toBe(DROP_BANNED);
    expect(g.check(REQ(), '192.0.2.2')).toBe(PASS); // control: another source
    expect(events).toEqual([
      expect.objectContaining({ kind: 'source', key: '192.0.2.1', reason: 'auth', count: 5, last: 'francesco', windowSec: 60, durationSec: 900 }),
    ]);
    advance(899_000);
    expect(g.check(REQ(), '192.0.2.1')).toBe(DROP_BANNED);
    advance(1000);
    expect(g.check(REQ(), '192.0.2.1')).toBe(PASS);
    // the count restarted with the ban
    g.authFailure('192.0.2.1', 'x');
    expect(g.sourceFailureCount('192.0.2.1')).toBe(1);
  });

  test('the first failure of a source within the window is reported once (the log line); a trusted source reports per username', () => {
    const first: string[] = [];
    const { g, advance } = setup({ onFirstFailure: (source, username) => first.push(`${source} ${username}`) });
    g.authFailure('192.0.2.1', 'alice');
    g.authFailure('192.0.2.1', 'alice');
    g.authFailure('192.0.2.1', 'bob');
    g.authFailure('192.0.2.7', null);
    expect(first).toEqual(['192.0.2.1 alice', '192.0.2.7 null']);
    advance(61_000); // the window has passed: a new first failure
    g.authFailure('192.0.2.1', 'alice');
    expect(first).toEqual(['192.0.2.1 alice', '192.0.2.7 null', '192.0.2.1 alice']);
    // behind a trusted front end every subscriber shares the source: one line per username
    g.authFailure('10.0.0.5', 'carol');
    g.authFailure('10.0.0.5', 'carol');
    g.authFailure('10.0.0.5', 'dave');
    expect(first.slice(3)).toEqual(['10.0.0.5 carol', '10.0.0.5 dave']);
  });

  test('failures spread wider than the window never ban (sliding, not cumulative)', () => {
    const { g, advance } = setup();
    for (let i = 0; i < 50; i++) {
      g.authFailure('192.0.2.1', null);
      advance(15_000);
    }
    expect(g.isBanned('192.0.2.1')).toBe(false);
    expect(g.sourceFailureCount('192.0.2.1')).toBe(3); // the last 45 s: 3 failures, the one 60 s ago is out
  });

  test('a username reaching maxFailuresPerUser (any case, from many sources) is locked for lockSec; the lock is not extended by more failures', () => {
    const { g, events, advance } = setup();
    for (let i = 0; i < 7; i++) g.authFailure(`192.0.2.${i}`, i % 2 ? 'Francesco' : 'francesco');
    expect(g.isLocked('francesco')).toBe(false);
    g.authFailure('192.0.2.7', 'FRANCESCO');
    expect(g.isLocked('Francesco')).toBe(true);
    expect(g.isLocked('bob')).toBe(false);
    expect(events.filter((e) => e.kind === 'user')).toEqual([expect.objectContaining({ key: 'francesco', count: 8, last: '192.0.2.7', durationSec: 300 })]);
    for (let i = 0; i < 20; i++) g.authFailure('192.0.2.50', 'francesco');
    expect(events.filter((e) => e.kind === 'user')).toHaveLength(1);
    expect(g.activeLocks()).toEqual([['francesco', 1_000_000 + 300_000]]);
    advance(300_000);
    expect(g.isLocked('francesco')).toBe(false);
    expect(g.activeLocks()).toEqual([]);
  });

  test("with the defaults' ordering (per source < per user), one source is banned before it locks the user", () => {
    const { g } = setup();
    for (let i = 0; i < 100; i++) if (!g.isBanned('192.0.2.1')) g.authFailure('192.0.2.1', 'francesco');
    expect(g.isBanned('192.0.2.1')).toBe(true);
    expect(g.isLocked('francesco')).toBe(false);
    expect(g.userFailureCount('francesco')).toBe(5);
  });

  test('failures reported after their source was banned (a burst in flight) count against neither: one source never locks a user', () => {
    const { g, events } = setup();
    for (let i = 0; i < 100; i++) g.authFailure('192.0.2.1', 'francesco'); // as workers report them, ban or not
    expect(g.isBanned('192.0.2.1')).toBe(true);
    expect(g.isLocked('francesco')).toBe(false);
    expect(g.userFailureCount('francesco')).toBe(5);
    expect(events.map((e) => e.kind)).toEqual(['source']);
    // control: other sources bring the username to its threshold (8)
    for (let i = 0; i < 2; i++) g.authFailure('192.0.2.2', 'francesco');
    expect(g.isLocked('francesco')).toBe(false);
    g.authFailure('192.0.2.3', 'francesco');
    expect(g.isLocked('francesco')).toBe(true);
  });

  test('a trusted source is never banned, but its failures count against the username', () => {
    const { g } = setup();
    for (let i = 0; i < 8; i++) g.authFailure('10.1.2.3', 'alice');
    expect(g.isBanned('10.1.2.3')).toBe(false);
    expect(g.check(REQ(), '10.1.2.3')).toBe(PASS);
    expect(g.isLocked('alice')).toBe(true);
  });

  test('bans.enabled false: nothing is counted, banned or locked', () => {
    const { g, events } = setup({ bans: { enabled: false, windowSec: 60, maxFailuresPerSource: 1, maxFailuresPerUser: 1, banSec: 900, lockSec: 300 } });
    for (let i = 0; i < 10; i++) g.authFailure('192.0.2.1', 'francesco');
    expect(g.check(REQ('friendly-scanner'), '192.0.2.5')).toBe(DROP_SCANNER); // still dropped…
    expect(g.check(REQ(), '192.0.2.5')).toBe(PASS); // …but not banned
    expect([g.isBanned('192.0.2.1'), g.isLocked('francesco'), events.length]).toEqual([false, false, 0]);
  });
});

describe('rate limit', () => {
  test('a burst passes, the excess is dropped; refills at the rate; another source is unaffected', () => {
    const { g, advance } = setup();
    const verdicts = Array.from({ length: 30 }, () => g.check(REQ(), '192.0.2.1'));
    expect(verdicts.filter((v) => v === PASS)).toHaveLength(20);
    expect(verdicts.slice(20).every((v) => v === DROP_RATE)).toBe(true);
    expect(g.check(REQ(), '192.0.2.2')).toBe(PASS);
    advance(100);
    expect(g.check(REQ(), '192.0.2.1')).toBe(PASS);
    expect(g.check(REQ(), '192.0.2.1')).toBe(DROP_RATE);
  });

  test('over the rate banAfterSec in a row → banned (reason rate); short bursts with pauses are not', () => {
    const { g, events, advance } = setup();
    // bursts of 40 every 2 s: over the rate each time, but the streak breaks between them
    for (let i = 0; i < 5; i++) {
      for (let k = 0; k < 40; k++) g.check(REQ(), '192.0.2.3');
      advance(2000);
    }
    expect(g.isBanned('192.0.2.3')).toBe(false);
    // 100 messages/s for 3.5 s: the burst is spent after ≈ 0.2 s, then 3.3 s over the rate
    for (let t = 0; t <= 3500; t += 10) {
      g.check(REQ(), '192.0.2.1');
      advance(10);
    }
    expect(g.isBanned('192.0.2.1')).toBe(true);
    expect(events).toEqual([expect.objectContaining({ kind: 'source', key: '192.0.2.1', reason: 'rate', windowSec: 3 })]);
    expect(events[0].count).toBeGreaterThan(200);
  });

  test('banAfterSec 0: drops, never bans; requestsPerSec 0: no limit', () => {
    const a = setup({ rateLimit: { requestsPerSec: 10, burst: 1, banAfterSec: 0 } });
    for (let t = 0; t < 20_000; t += 10) {
      a.g.check(REQ(), '192.0.2.1');
      a.advance(10);
    }
    expect(a.g.isBanned('192.0.2.1')).toBe(false);
    const b = setup({ rateLimit: { requestsPerSec: 0, burst: 1, banAfterSec: 1 } });
    expect(Array.from({ length: 1000 }, () => b.g.check(REQ(), '192.0.2.1')).every((v) => v === PASS)).toBe(true);
  });

  test('a trusted source is never rate-limited', () => {
    const { g } = setup();
    expect(Array.from({ length: 1000 }, () => g.check(REQ(), '10.9.9.9')).every((v) => v === PASS)).toBe(true);
  });
});

describe('scanners', () => {
  test('a scanner User-Agent is dropped and bans its source; a trusted source is never dropped as one', () => {
    const { g, events } = setup();
    expect(g.check(REQ('friendly-scanner'), '192.0.2.1')).toBe(DROP_SCANNER);
    expect(g.check(REQ(), '192.0.2.1')).toBe(DROP_BANNED);
    expect(events).toEqual([expect.objectContaining({ kind: 'source', reason: 'scanner', userAgent: 'friendly-scanner', windowSec: null })]);
    expect(g.check(REQ('friendly-scanner'), '10.0.0.1')).toBe(PASS);
    expect(g.check(REQ(), '192.0.2.2')).toBe(PASS);
  });
});

describe('listing and lifting', () => {
  test('list shows live bans and locks with reason, count, since, until; lift ends them and forgets the counts', () => {
    const { g, lifts, advance, now } = setup();
    for (let i = 0; i < 5; i++) g.authFailure('::ffff:192.0.2.1', 'francesco');
    g.check(REQ('friendly-scanner'), '192.0.2.9');
    for (let i = 0; i < 8; i++) g.authFailure('10.0.0.1', 'bob');
    const l = g.list();
    expect(l.sources.map((b) => [b.key, b.reason, b.count])).toEqual([
      ['192.0.2.1', 'auth', 5],
      ['192.0.2.9', 'scanner', 1],
    ]);
    expect(l.sources[0]).toMatchObject({ since: now(), until: now() + 900_000, last: 'francesco' });
    expect(l.users.map((b) => [b.key, b.reason, b.count, b.last])).toEqual([['bob', 'auth', 8, '10.0.0.1']]);
    expect(g.activeCounts()).toEqual({ sources: 2, users: 1 });

    expect(g.liftSource('::ffff:192.0.2.1')).toBe(true);
    expect(g.liftSource('192.0.2.1')).toBe(false);
    expect(g.check(REQ(), '192.0.2.1')).toBe(PASS);
    expect(g.sourceFailureCount('192.0.2.1')).toBe(0);
    expect(g.liftUser('BOB')).toBe(true);
    expect(g.isLocked('bob')).toBe(false);
    expect(g.userFailureCount('bob')).toBe(0);
    expect(g.liftUser('nobody')).toBe(false);
    expect(lifts).toEqual(['source:192.0.2.1', 'user:bob']);

    advance(900_000);
    expect(g.list()).toEqual({ sources: [], users: [] });
  });

  test('tables are bounded: the least recently used entry is forgotten', () => {
    const { g } = setup({ maxEntries: 3 });
    for (let i = 0; i < 10; i++) g.check(REQ('friendly-scanner'), `192.0.2.${i}`);
    expect(g.list().sources.map((b) => b.key)).toEqual(['192.0.2.7', '192.0.2.8', '192.0.2.9']);
  });
});

describe('configuration', () => {
  test('security defaults: one source is banned before it can lock a user; every key has a value', () => {
    const c = parseConfig('{}', 'test');
    expect(c.security.bans.maxFailuresPerSource).toBeLessThan(c.security.bans.maxFailuresPerUser);
    expect(() => new Guard(c.security)).not.toThrow();
  });

  test('trustedSources: addresses and CIDR blocks accepted, anything else refused naming the key', () => {
    const ok = parseConfig(JSON.stringify({ security: { trustedSources: ['192.0.2.7', '10.0.0.0/8', '2001:db8::/32', '::ffff:10.1.2.3'] } }), 'test');
    expect(new Guard(ok.security).isTrusted('::ffff:10.9.9.9')).toBe(true);
    for (const bad of ['sbc.example.com', '10.0.0.0/33', '10.0.0.0/8/1', '2001:db8::/129']) {
      expect(() => parseConfig(JSON.stringify({ security: { trustedSources: [bad] } }), 'test')).toThrow(
        /security\.trustedSources\.0: must be an IP address or a CIDR block/,
      );
    }
  });
});
