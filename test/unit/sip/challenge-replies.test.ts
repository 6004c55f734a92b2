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
});
