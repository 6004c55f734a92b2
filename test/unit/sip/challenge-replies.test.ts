import { ChallengeReplies } from '../../../sip/challenge-replies';
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
  test('a serialized challenge is a slice of a shared pool slab (the condition the copy is for)', () => {
    const bytes = challenge();
    // the control: without a copy, keeping these bytes keeps the whole slab
    expect(bytes.buffer.byteLength).toBeGreaterThan(bytes.byteLength);
  });

  test('remember keeps a copy that owns exactly its bytes, not the pooled slab', () => {
    const c = new ChallengeReplies();
    const bytes = challenge();
    c.remember('k', bytes);
    const kept = c.replay('k')!;
    expect(kept.equals(bytes)).toBe(true);
    expect(kept.buffer).not.toBe(bytes.buffer);
    expect(kept.byteOffset).toBe(0);
    expect(kept.buffer.byteLength).toBe(bytes.byteLength);
  });

  test('a buffer that already owns its memory is kept as is (no copy)', () => {
    const c = new ChallengeReplies();
    const own = Buffer.allocUnsafeSlow(600).fill(0x41);
    c.remember('k', own);
    expect(c.replay('k')).toBe(own);
  });

  test('1,000 remembered challenges keep about their own size of memory, not 1,000 slabs', () => {
    const c = new ChallengeReplies();
    const slabs = new Set<ArrayBufferLike>();
    let bytes = 0;
    for (let i = 0; i < 1000; i++) {
      const b = challenge();
      bytes += b.byteLength;
      c.remember(`k${i}`, b);
    }
    let retained = 0;
    for (let i = 0; i < 1000; i++) {
      const kept = c.replay(`k${i}`)!;
      if (!slabs.has(kept.buffer)) retained += kept.buffer.byteLength;
      slabs.add(kept.buffer);
    }
    expect(retained).toBe(bytes);
  });

  test('expired and evicted entries are forgotten', () => {
    const c = new ChallengeReplies({ max: 2, ttlMs: 32_000 });
    c.remember('a', challenge());
    c.remember('b', challenge());
    c.remember('c', challenge());
    expect(c.replay('a')).toBeUndefined();
    expect(c.replay('c')).toBeDefined();
    expect(c.size).toBe(2);
  });
});
