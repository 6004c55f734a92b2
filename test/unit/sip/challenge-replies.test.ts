import { ChallengeReplies } from '../../../sip/challenge-replies';
import { blocksAlive } from '../../support/retention';
import { buildResponse, serializeMessage } from '../../../sip/serializer';
import { parseMessage } from '../../../sip/parser';
import type { SipRequest } from '../../../sip/message';

const REGISTER = [
  'REGISTER sip:example.test SIP/2.0',
  'Via: SIP/2.0/UDP 127.0.0.1:5071;branch=z9hG4bK-1',
  'From: <sip:user00001@example.test>;tag=1',
  'To: <sip:user00001@example.test>',
  'Call-ID: c1@127.0.0.1',
  'CSeq: 1 REGISTER',
  'Content-Length: 0',
  '',
  '',
].join('\r\n');

/** A 401 as the front end serializes it (sip/front-end.ts respondOnce). */
function challenge(): Buffer {
  const r = parseMessage(REGISTER);
  if (!r.ok) throw new Error(r.error);
  return serializeMessage(
    buildResponse(r.message as SipRequest, 401, undefined, { 'www-authenticate': 'Digest realm="example.test", nonce="abc", qop="auth"' }, 't1'),
  );
}

describe('ChallengeReplies', () => {
  test('replay gives the remembered bytes back exactly, every byte value', () => {
    const c = new ChallengeReplies();
    const bytes = challenge();
    c.remember('k', bytes);
    const kept = c.replay('k')!;
    expect(kept.equals(bytes)).toBe(true);
    const all = Buffer.from(Array.from({ length: 256 }, (_, i) => 255 - i));
    c.remember('all', all);
    expect([...c.replay('all')!]).toEqual([...all]);
    expect(c.has('all')).toBe(true);
    expect(c.has('other')).toBe(false);
  });

  test('a serialized challenge is a slice of a shared pool slab (the condition the copy is for)', () => {
    const bytes = challenge();
    // the control: without a copy, keeping these bytes keeps the whole slab
    expect(bytes.buffer.byteLength).toBeGreaterThan(bytes.byteLength);
  });

  test('2,000 remembered challenges keep none of the memory blocks they were cut from', async () => {
    const N = 2000;
    // the control: the slices kept as they are hold their blocks
    const slices: Buffer[] = [];
    expect(await blocksAlive(N, challenge, (b) => slices.push(b))).toBe(N);
    slices.length = 0;
    const c = new ChallengeReplies({ max: N });
    expect(await blocksAlive(N, challenge, (b, i) => c.remember(`k${i}`, b))).toBe(0);
    expect(c.size).toBe(N);
    expect(c.replay('k7')!.equals(challenge())).toBe(true);
  });

  test('expired and evicted entries are forgotten', () => {
    const c = new ChallengeReplies({ max: 2, ttlMs: 32_000 });
    c.remember('a', challenge());
    c.remember('b', challenge());
    c.remember('c', challenge());
    expect(c.replay('a')).toBeUndefined();
    expect(c.has('a')).toBe(false);
    expect(c.replay('c')).toBeDefined();
    expect(c.size).toBe(2);
  });

  test('a challenge is answered for ttlMs, then forgotten; the oldest go first past maxBytes; a key remembered again keeps the newer', () => {
    jest.useFakeTimers({ now: 1_000_000 });
    try {
      const c = new ChallengeReplies({ ttlMs: 32_000, maxBytes: 65_536 });
      const sized = (i: number) => Buffer.from(`SIP/2.0 401 Unauthorized\r\nCall-ID: ${i}\r\n`.padEnd(1000, 'x'));
      c.remember('old', sized(0));
      jest.setSystemTime(1_000_000 + 31_999);
      expect(c.replay('old')!.equals(sized(0))).toBe(true);
      jest.setSystemTime(1_000_000 + 32_000);
      expect(c.replay('old')).toBeUndefined();
      expect(c.has('old')).toBe(false);
      // 65 challenges of 1,000 bytes fit in 64 KiB: the newest stay, byte for byte
      for (let i = 1; i <= 200; i++) c.remember(`k${i}`, sized(i));
      expect(c.size).toBe(65);
      expect(c.has('k135')).toBe(false);
      for (const i of [136, 170, 200]) expect(c.replay(`k${i}`)!.equals(sized(i))).toBe(true);
      c.remember('k200', sized(7));
      expect(c.replay('k200')!.equals(sized(7))).toBe(true);
      // a challenge larger than the ring is not kept, and the others stay
      c.remember('huge', Buffer.alloc(70_000));
      expect(c.has('huge')).toBe(false);
      expect(c.replay('k199')!.equals(sized(199))).toBe(true);
    } finally {
      jest.useRealTimers();
    }
  });
});
