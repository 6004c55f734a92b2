/** The guard's primitives: failure window, token bucket, trusted sources, scanner matcher, lock table. */
import { FailureWindow, takeToken } from '../../../services/guard/sliding-window';
import { normalizeAddress, parseTrusted, TrustedSources } from '../../../services/guard/trusted';
import { ScannerMatcher } from '../../../services/guard/user-agent';
import { LockTable, refuseLockedUsernames } from '../../../services/guard/locks';
import type { AuthPort, VerifyRequest } from '../../../services/auth/types';

describe('FailureWindow', () => {
  test('counts hits inside the window, the current one included; older ones slide out', () => {
    const w = new FailureWindow();
    expect(w.hit(1000, 2000, 10)).toBe(1);
    expect(w.hit(1500, 2000, 10)).toBe(2);
    expect(w.hit(2999, 2000, 10)).toBe(3);
    // at 3000 the hit of 1000 is exactly one window old: out
    expect(w.count(3000, 2000)).toBe(2);
    expect(w.hit(3400, 2000, 10)).toBe(3);
    expect(w.oldest).toBe(1500);
    expect(w.count(10_000, 2000)).toBe(0);
  });

  test('no fixed-bucket edge: hits across a window boundary still count together', () => {
    const w = new FailureWindow();
    for (let t = 1900; t < 2000; t += 20) w.hit(t, 1000, 100); // 5 at the end of one "second"
    let n = 0;
    for (let t = 2000; t < 2100; t += 20) n = w.hit(t, 1000, 100); // 5 at the start of the next
    expect(n).toBe(10);
  });

  test('keeps at most cap entries (memory bounded by the threshold)', () => {
    const w = new FailureWindow();
    let n = 0;
    for (let i = 0; i < 1000; i++) n = w.hit(i, 60_000, 5);
    expect(n).toBe(5);
    expect(w.oldest).toBe(995);
    w.clear();
    expect(w.count(1000, 60_000)).toBe(0);
  });
});

describe('takeToken', () => {
  test('burst at once, then the steady rate; refills up to the burst only', () => {
    const b = { tokens: 3, last: 0 };
    expect([1, 2, 3, 4].map(() => takeToken(b, 0, 10, 3))).toEqual([true, true, true, false]);
    expect(takeToken(b, 50, 10, 3)).toBe(false); // half a token
    expect(takeToken(b, 100, 10, 3)).toBe(true); // 10/s: one every 100 ms
    expect(takeToken(b, 100, 10, 3)).toBe(false);
    // an hour idle refills to the burst, not more
    expect([1, 2, 3, 4].map(() => takeToken(b, 3_600_000, 10, 3))).toEqual([true, true, true, false]);
  });

  test('a clock going back neither refills nor breaks the bucket', () => {
    const b = { tokens: 0, last: 1000 };
    expect(takeToken(b, 500, 10, 3)).toBe(false);
    expect(b.last).toBe(1000);
    expect(takeToken(b, 1100, 10, 3)).toBe(true);
  });
});

describe('trusted sources', () => {
  test('addresses and CIDR blocks, IPv4 and IPv6; IPv4-mapped IPv6 is the IPv4 address', () => {
    const t = new TrustedSources(['10.0.0.0/8', '192.0.2.7', '2001:db8::/32']);
    expect(t.has('10.200.3.4')).toBe(true);
    expect(t.has('11.0.0.1')).toBe(false);
    expect(t.has('192.0.2.7')).toBe(true);
    expect(t.has('192.0.2.8')).toBe(false);
    expect(t.has('2001:db8:1::5')).toBe(true);
    expect(t.has('2001:db9::5')).toBe(false);
    expect(t.has(normalizeAddress('::ffff:10.1.2.3'))).toBe(true);
    expect(normalizeAddress('::ffff:10.1.2.3')).toBe('10.1.2.3');
    expect(normalizeAddress('::1')).toBe('::1');
    expect(t.has('not an address')).toBe(false);
  });

  test('decisions are cached per address (the BlockList is walked once per address)', () => {
    const t = new TrustedSources(['127.0.0.1']);
    const list = (t as unknown as { list: { check(a: string, f: string): boolean } }).list;
    const spy = jest.spyOn(list, 'check');
    for (let i = 0; i < 1000; i++) {
      t.has('127.0.0.1');
      t.has('127.0.0.2');
    }
    expect(spy).toHaveBeenCalledTimes(2);
  });

  test('an empty list trusts nothing and caches nothing', () => {
    const t = new TrustedSources([]);
    expect(t.has('127.0.0.1')).toBe(false);
    expect((t as unknown as { cache: unknown }).cache).toBeNull();
  });

  test('a bad entry is named', () => {
    expect(() => parseTrusted(['10.0.0.0/8', 'example.com'])).toThrow(/"example\.com" is not an IP address/);
    expect(() => parseTrusted(['10.0.0.0/33'])).toThrow(/"10\.0\.0\.0\/33" has a bad prefix/);
  });
});

describe('ScannerMatcher', () => {
  const m = new ScannerMatcher(['friendly-scanner', 'sipvicious', 'PortSIP VoIP SDK']);
  const req = (ua: string | null, extra = '') =>
    Buffer.from(
      `OPTIONS sip:100@192.0.2.1 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.9:5060;branch=z9hG4bK1\r\nFrom: <sip:100@x>;tag=1\r\nTo: <sip:100@x>\r\n` +
        `Call-ID: 1\r\nCSeq: 1 OPTIONS\r\n${ua === null ? '' : `${ua}\r\n`}${extra}Content-Length: 0\r\n\r\n`,
    );

  test('finds a pattern in the User-Agent value, any case, any header-name case and spacing', () => {
    expect(m.match(req('User-Agent: friendly-scanner'))).toBe('friendly-scanner');
    expect(m.match(req('user-agent   :  Friendly-Scanner 1.0'))).toBe('friendly-scanner');
    expect(m.match(req('USER-AGENT: x SIPVicious/0.3'))).toBe('sipvicious');
    expect(m.match(req('User-Agent: portsip voip sdk 11'))).toBe('portsip voip sdk');
  });

  test('control: a normal User-Agent, none at all, a pattern in another header or in the body', () => {
    expect(m.match(req('User-Agent: Telephone 1.0'))).toBeNull();
    expect(m.match(req(null))).toBeNull();
    expect(m.match(req('Subject: friendly-scanner'))).toBeNull();
    expect(m.match(req('User-Agentx: friendly-scanner'))).toBeNull();
    const withBody = Buffer.from(
      req('User-Agent: ok').toString().replace('Content-Length: 0\r\n\r\n', 'Content-Length: 30\r\n\r\nUser-Agent: friendly-scanner\r\n'),
    );
    expect(m.match(withBody)).toBeNull();
  });

  test('responses are not checked; no pattern, no work', () => {
    expect(m.match(Buffer.from('SIP/2.0 200 OK\r\nUser-Agent: friendly-scanner\r\n\r\n'))).toBeNull();
    expect(m.match(Buffer.from('SUBSCRIBE sip:a@b SIP/2.0\r\nUser-Agent: friendly-scanner\r\n\r\n'))).toBe('friendly-scanner');
    expect(new ScannerMatcher([]).empty).toBe(true);
  });

  test('a truncated message (no end of line after the User-Agent) and a pattern at the end of the value', () => {
    expect(m.match(Buffer.from('OPTIONS sip:a@b SIP/2.0\r\nCall-ID: 1\r\nUser-Agent: x friendly-scanner'))).toBe('friendly-scanner');
    expect(m.match(Buffer.from('OPTIONS sip:a@b SIP/2.0\r\nCall-ID: 1\r\nUser-Agent: friendly-scanne'))).toBeNull();
    expect(m.match(Buffer.from('OPTIONS sip:a@b SIP/2.0'))).toBeNull();
  });
});

describe('locked usernames', () => {
  test('LockTable: any case, expires by itself, delete and replace', () => {
    let now = 1000;
    const t = new LockTable(() => now);
    t.set('Francesco', 5000);
    expect(t.isLocked('francesco')).toBe(true);
    expect(t.isLocked('FRANCESCO')).toBe(true);
    expect(t.isLocked('bob')).toBe(false);
    now = 5000;
    expect(t.isLocked('francesco')).toBe(false);
    expect(t.size).toBe(0);
    now = 6000;
    t.set('a', 9000);
    t.set('b', 9000);
    t.delete('A');
    expect(t.isLocked('a')).toBe(false);
    t.set('b', 0); // 0 = lifted
    expect(t.isLocked('b')).toBe(false);
    t.replace([
      ['c', 9000],
      ['d', 100],
    ]);
    expect([t.isLocked('c'), t.isLocked('d'), t.size]).toEqual([true, false, 1]);
  });

  test('LockTable sweeps expired entries once it grows past its bound', () => {
    let now = 0;
    const t = new LockTable(() => now, 10);
    for (let i = 0; i < 10; i++) t.set(`u${i}`, 100);
    now = 200;
    t.set('fresh', 1000);
    expect(t.size).toBe(1);
  });

  test('refuseLockedUsernames: a locked username gets "bad" even when the password is right; others unchanged', () => {
    const results: Array<'ok' | 'stale' | 'bad'> = ['ok', 'stale', 'bad'];
    let next = 0;
    const auth: AuthPort = {
      parseCredentials: () => null,
      challenge: () => {
        throw new Error('unused');
      },
      verify: jest.fn(() => results[next]),
    };
    const locked = new Set(['francesco']);
    const wrapped = refuseLockedUsernames(auth, { isLocked: (u) => locked.has(u.toLowerCase()) });
    const req = (username: string) => ({ credentials: { username } }) as unknown as VerifyRequest;
    for (next = 0; next < 3; next++) {
      expect(wrapped.verify(req('Francesco'))).toBe('bad');
      expect(wrapped.verify(req('bob'))).toBe(results[next]);
    }
    // the real verification still ran for the locked one (same work, same nonce bookkeeping)
    expect(auth.verify).toHaveBeenCalledTimes(6);
    expect(wrapped.parseCredentials('x')).toBeNull();
  });
});
