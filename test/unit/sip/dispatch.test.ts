import { callIdHash } from '../../../sip/dispatch';
import { parseMessage } from '../../../sip/parser';
import { header } from '../../../sip/message';

const msg = (headers: string[], start = 'REGISTER sip:example.test SIP/2.0') => Buffer.from([start, ...headers, '', ''].join('\r\n'));

describe('callIdHash', () => {
  test('same Call-ID → same hash whatever the header spelling, case, compact form or blanks', () => {
    const h = callIdHash(msg(['Via: SIP/2.0/UDP h;branch=z9hG4bK1', 'Call-ID: abc@host', 'CSeq: 1 REGISTER']));
    expect(h).not.toBe(0);
    expect(callIdHash(msg(['call-id:abc@host']))).toBe(h);
    expect(callIdHash(msg(['CALL-ID  :   abc@host   ']))).toBe(h);
    expect(callIdHash(msg(['i: abc@host']))).toBe(h);
    expect(callIdHash(msg(['I:abc@host']))).toBe(h);
    // a response of the same call
    expect(callIdHash(msg(['Call-ID: abc@host'], 'SIP/2.0 200 OK'))).toBe(h);
  });

  test('different Call-IDs spread over workers; the value is what the parser reads', () => {
    const buckets = [0, 0];
    for (let i = 0; i < 1000; i++) {
      const raw = msg([`Via: SIP/2.0/UDP h;branch=z9hG4bK${i}`, `Call-ID: ${i}-x@y`, 'CSeq: 1 REGISTER']);
      const parsed = parseMessage(raw);
      expect(parsed.ok).toBe(true);
      if (parsed.ok) expect(header(parsed.message, 'call-id')).toBe(`${i}-x@y`);
      buckets[callIdHash(raw) % 2]++;
    }
    expect(Math.min(...buckets)).toBeGreaterThan(400);
  });

  test('headers that only look like Call-ID do not count; none → 0; the body is not searched', () => {
    expect(callIdHash(msg(['Call-Info: <http://x>', 'In-Reply-To: 1@x']))).toBe(0);
    expect(callIdHash(Buffer.from('REGISTER sip:x SIP/2.0\r\nVia: x\r\n\r\nCall-ID: body@x\r\n'))).toBe(0);
    expect(callIdHash(Buffer.from('garbage'))).toBe(0);
    expect(callIdHash(Buffer.alloc(0))).toBe(0);
    expect(callIdHash(msg(['Call-Info: <http://x>', 'Call-ID: a@b']))).toBe(callIdHash(msg(['i: a@b'])));
  });
});
