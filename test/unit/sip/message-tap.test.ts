/** sip/message-tap.ts: the Call-ID read from raw bytes, and taps isolated from each other. */
import { callIdOf, fanOutTaps, type MessageTap } from '../../../sip/message-tap';

const msg = (...headers: string[]) => Buffer.from(['OPTIONS sip:a@b SIP/2.0', ...headers, '', 'body: i: not-a-header'].join('\r\n'));

test('callIdOf reads Call-ID in any case and the compact form i, trimmed', () => {
  expect(callIdOf(msg('Via: SIP/2.0/UDP h;branch=z9hG4bKx', 'Call-ID:  abc@host ', 'CSeq: 1 OPTIONS'))).toBe('abc@host');
  expect(callIdOf(msg('CALL-ID: X'))).toBe('X');
  expect(callIdOf(msg('Contact: <sip:c@d>', 'i:short'))).toBe('short');
  // a header starting like one (Contact, Info-…) is not taken
  expect(callIdOf(msg('Contact: <sip:c@d>', 'Info-Package: x', 'call-id: y'))).toBe('y');
});

test('callIdOf: none, empty, or only in the body → null', () => {
  expect(callIdOf(msg('Via: SIP/2.0/UDP h'))).toBeNull();
  expect(callIdOf(msg('Call-ID:   '))).toBeNull();
  expect(callIdOf(Buffer.from('garbage without lines'))).toBeNull();
  expect(callIdOf(Buffer.from('SIP/2.0 200 OK\r\nVia: x\r\n\r\nCall-ID: in-body\r\n'))).toBeNull();
});

test('fanOutTaps: a tap that throws does not stop the next one, and the error is reported', () => {
  const got: string[] = [];
  const errors: unknown[] = [];
  const bad: MessageTap = {
    received: () => {
      throw new Error('boom');
    },
    sent: () => {
      throw new Error('boom');
    },
  };
  const good: MessageTap = { received: (d) => got.push(`in ${d.toString()}`), sent: (d) => got.push(`out ${d.toString()}`) };
  const both = fanOutTaps([bad, good], (e) => errors.push(e))!;
  const peer = { proto: 'udp', address: '127.0.0.1', port: 5 };
  both.received(Buffer.from('a'), peer, { proto: 'udp', address: '127.0.0.1', port: 6 }, 0);
  both.sent(Buffer.from('b'), peer, null, 0);
  expect(got).toEqual(['in a', 'out b']);
  expect(errors).toHaveLength(2);
  expect(fanOutTaps([])).toBeUndefined();
});
