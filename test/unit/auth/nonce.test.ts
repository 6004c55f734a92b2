import { createHash, createHmac } from 'node:crypto';
import { StatelessNonces } from '../../../services/auth/nonce';
import { NonceCounter } from '../../../services/auth/nonce-count';

const SECRET = Buffer.from('0123456789abcdef0123456789abcdef');
const T0 = 1_700_000_000_000;

describe('StatelessNonces', () => {
  const n = new StatelessNonces(SECRET);

  /** The MAC as the header of services/auth/nonce.ts defines it, computed here with createHash. */
  const keyedMac = (secret: Buffer, head: Buffer, realm: string) => {
    const key = createHash('sha512-256').update('sipflow nonce key\0').update(secret).digest();
    return createHash('sha512-256').update(key).update(head).update(realm, 'utf8').digest().subarray(0, 16);
  };
  /** The HMAC-SHA256 MAC of the nonces of earlier versions. */
  const earlierNonce = (secret: Buffer, head: Buffer, realm: string) =>
    Buffer.concat([head, createHmac('sha256', secret).update(head).update(realm, 'utf8').digest().subarray(0, 16)]).toString('base64url');

  it('encodes issue time, a random part and a truncated keyed SHA-512/256 as base64url', () => {
    const nonce = n.issue('nl.netaxis.be', T0);
    expect(nonce).toMatch(/^[A-Za-z0-9_-]{44}$/);
    const raw = Buffer.from(nonce, 'base64url');
    expect(Number(raw.readBigUInt64BE(0))).toBe(T0);
    expect(raw.subarray(17).equals(keyedMac(SECRET, raw.subarray(0, 17), 'nl.netaxis.be'))).toBe(true);
  });

  it('takes each realm for its own bytes: realms in turn, a multi-byte one, one past the scratch buffer', () => {
    const long = 'x'.repeat(200) + '.example';
    for (const realm of ['a.example', 'b.example', 'a.example', 'ré.example', long, 'a.example']) {
      const raw = Buffer.from(n.issue(realm, T0), 'base64url');
      expect(raw.subarray(17).equals(keyedMac(SECRET, raw.subarray(0, 17), realm))).toBe(true);
      expect(n.check(raw.toString('base64url'), realm, T0)).toBe('valid');
    }
  });

  it("answers an earlier version's nonce (HMAC-SHA256, same secret) as expired, a forged one as invalid", () => {
    const head = Buffer.from(n.issue('r', T0), 'base64url').subarray(0, 17);
    expect(n.check(earlierNonce(SECRET, head, 'r'), 'r', T0)).toBe('expired');
    expect(n.check(earlierNonce(Buffer.from('another secret, 16+ bytes'), head, 'r'), 'r', T0)).toBe('invalid');
    expect(n.check(earlierNonce(SECRET, head, 'other realm'), 'r', T0)).toBe('invalid');
  });

  it('issues a different nonce for every challenge, even in the same millisecond', () => {
    const nonces = new Set(Array.from({ length: 100 }, () => n.issue('r', T0)));
    expect(nonces.size).toBe(100);
  });

  it('accepts its own nonce within the lifetime and reports expiry after it', () => {
    const nonce = n.issue('r', T0);
    expect(n.check(nonce, 'r', T0)).toBe('valid');
    expect(n.check(nonce, 'r', T0 + 300_000)).toBe('valid');
    expect(n.check(nonce, 'r', T0 + 300_001)).toBe('expired');
  });

  it('honours a configured lifetime', () => {
    const short = new StatelessNonces(SECRET, { lifetimeSec: 10 });
    const nonce = short.issue('r', T0);
    expect(short.check(nonce, 'r', T0 + 10_000)).toBe('valid');
    expect(short.check(nonce, 'r', T0 + 10_001)).toBe('expired');
  });

  it('is verifiable by another instance sharing the secret, not by one with another secret', () => {
    const nonce = n.issue('r', T0);
    expect(new StatelessNonces(Buffer.from(SECRET)).check(nonce, 'r', T0)).toBe('valid');
    expect(new StatelessNonces(Buffer.from('another secret, 16+ bytes')).check(nonce, 'r', T0)).toBe('invalid');
  });

  it('rejects a nonce issued for another realm', () => {
    expect(n.check(n.issue('a.example', T0), 'b.example', T0)).toBe('invalid');
  });

  it('rejects tampered time or MAC', () => {
    const raw = Buffer.from(n.issue('r', T0), 'base64url');
    const later = Buffer.from(raw);
    later.writeBigUInt64BE(BigInt(T0 + 60_000)); // try to extend its life
    expect(n.check(later.toString('base64url'), 'r', T0 + 400_000)).toBe('invalid');
    // every byte of the MAC counts, the last as the first
    for (let at = raw.length - 16; at < raw.length; at++) {
      const badMac = Buffer.from(raw);
      badMac[at] ^= 0x80;
      expect([at, n.check(badMac.toString('base64url'), 'r', T0)]).toEqual([at, 'invalid']);
    }
  });

  it.each(['', 'abc', '7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v', 'A'.repeat(31), 'A'.repeat(33), '+'.repeat(32)])('rejects malformed nonce %p', (bad) => {
    expect(n.check(bad, 'r', T0)).toBe('invalid');
  });

  it('rejects a nonce from the future beyond the skew, tolerates small skew', () => {
    const nonce = n.issue('r', T0);
    expect(n.check(nonce, 'r', T0 - 4_000)).toBe('valid');
    expect(n.check(nonce, 'r', T0 - 6_000)).toBe('invalid');
  });

  it('refuses an empty secret and a non-positive lifetime', () => {
    expect(() => new StatelessNonces(Buffer.alloc(0))).toThrow();
    expect(() => new StatelessNonces(SECRET, { lifetimeSec: 0 })).toThrow();
  });
});

describe('NonceCounter', () => {
  it('accepts strictly increasing nc and refuses repeats or decreases', () => {
    const c = new NonceCounter();
    expect(c.check('n', 1, T0)).toBe('fresh');
    c.record('n', 1, T0, T0 + 300_000, T0);
    expect(c.check('n', 1, T0)).toBe('replay');
    expect(c.check('n', 2, T0)).toBe('fresh');
    c.record('n', 3, T0, T0 + 300_000, T0);
    expect(c.check('n', 2, T0)).toBe('replay');
    expect(c.check('n', 4, T0)).toBe('fresh');
  });

  it('treats a no-qop use as single use', () => {
    const c = new NonceCounter();
    expect(c.check('n', null, T0)).toBe('fresh');
    c.record('n', null, T0, T0 + 1000, T0);
    expect(c.check('n', null, T0)).toBe('replay');
    expect(c.check('n', 99, T0)).toBe('replay');
  });

  it('drops entries once their nonce expired', () => {
    const c = new NonceCounter();
    c.record('a', 1, T0, T0 + 1000, T0);
    c.record('b', 1, T0 + 5000, T0 + 6000, T0 + 5000);
    expect(c.size).toBe(1);
  });

  it('caps its size, evicting oldest first, and reports evicted counts as forgotten', () => {
    const c = new NonceCounter(2);
    const exp = T0 + 300_000;
    c.record('a', 1, T0, exp, T0);
    c.record('b', 1, T0 + 1, exp, T0 + 1);
    c.record('c', 1, T0 + 2, exp, T0 + 2);
    expect(c.size).toBe(2);
    expect(c.check('a', 2, T0)).toBe('forgotten'); // count unknown: never accept a possible replay
    expect(c.check('b', 1, T0 + 1)).toBe('replay');
    expect(c.check('c', 2, T0 + 2)).toBe('fresh');
    expect(c.check('d', 1, T0 + 3)).toBe('fresh'); // newer than anything evicted
  });

  it('prefers dropping expired entries to evicting live ones', () => {
    const c = new NonceCounter(2);
    c.record('live', 1, T0 + 10, T0 + 100_000, T0 + 10);
    c.record('dead', 1, T0, T0 + 1000, T0 + 20);
    c.record('new', 1, T0 + 2000, T0 + 100_000, T0 + 2000);
    expect(c.check('live', 1, T0 + 10)).toBe('replay'); // still tracked
    expect(c.check('new', 1, T0 + 2000)).toBe('replay');
  });
});
