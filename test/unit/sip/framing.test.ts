import { StreamFramer, contentLength } from '../../../sip/framing';
import { parseMessage } from '../../../sip/parser';

const m = (cseq: number, body = '') =>
  `OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK${cseq}\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:a@b>\r\n` +
  `Call-ID: c\r\nCSeq: ${cseq} OPTIONS\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;

describe('StreamFramer', () => {
  test('several messages in one chunk, with CRLF keep-alives between them', () => {
    const f = new StreamFramer();
    const r = f.push(Buffer.from('\r\n\r\n' + m(1) + m(2, 'héllo') + '\r\n\r\n\r\n\r\n' + m(3)));
    expect(r.error).toBeUndefined();
    expect(r.keepalives).toBe(3);
    expect(r.messages.map((b) => b.toString())).toEqual([m(1), m(2, 'héllo'), m(3)]);
    expect(f.buffered).toBe(0);
  });

  test('byte-by-byte delivery gives the same messages', () => {
    const all = Buffer.from(m(1, 'abc') + m(2) + m(3, 'x'.repeat(300)));
    const f = new StreamFramer();
    const out: string[] = [];
    for (let i = 0; i < all.length; i++) out.push(...f.push(all.subarray(i, i + 1)).messages.map((b) => b.toString()));
    expect(out).toEqual([m(1, 'abc'), m(2), m(3, 'x'.repeat(300))]);
  });

  test('random chunking: every frame parses', () => {
    let seed = 7;
    const rnd = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
    const msgs = Array.from({ length: 50 }, (_, i) => m(i, 'b'.repeat(i * 7)));
    const all = Buffer.from(msgs.join(''));
    const f = new StreamFramer();
    const out: Buffer[] = [];
    for (let i = 0; i < all.length;) {
      const n = 1 + Math.floor(rnd() * 200);
      out.push(...f.push(all.subarray(i, i + n)).messages);
      i += n;
    }
    expect(out.map((b) => b.toString())).toEqual(msgs);
    for (const b of out) expect(parseMessage(b).ok).toBe(true);
  });

  test('partial message is held until complete', () => {
    const f = new StreamFramer();
    const full = Buffer.from(m(1, 'hello'));
    expect(f.push(full.subarray(0, full.length - 2)).messages).toEqual([]);
    expect(f.buffered).toBe(full.length - 2);
    expect(f.push(full.subarray(full.length - 2)).messages).toHaveLength(1);
  });

  test.each([
    ['missing Content-Length', 'OPTIONS sip:a@b SIP/2.0\r\nCall-ID: c\r\n\r\n', /missing/],
    ['negative Content-Length', 'OPTIONS sip:a@b SIP/2.0\r\nContent-Length: -5\r\n\r\n', /bad Content-Length/],
    ['conflicting Content-Length', 'OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 5\r\nl: 6\r\n\r\n', /conflicting/],
    ['message over the limit', 'OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 5000\r\n\r\n', /maximum/],
  ])('%s fails the stream for good', (_n, text, err) => {
    const f = new StreamFramer({ maxMessageSize: 4096 });
    const r = f.push(Buffer.from(m(1) + text));
    expect(r.messages).toHaveLength(1);
    expect(r.error).toMatch(err);
    expect(f.push(Buffer.from(m(2))).error).toMatch(err);
    expect(f.buffered).toBe(0);
  });

  test('endless header block without CRLFCRLF is cut at the size limit', () => {
    const f = new StreamFramer({ maxMessageSize: 1000 });
    let r = f.push(Buffer.from('OPTIONS sip:a@b SIP/2.0\r\n'));
    for (let i = 0; i < 100 && !r.error; i++) r = f.push(Buffer.from('X-Junk: yyyyyyyyyyyyyyyyyyyy\r\n'));
    expect(r.error).toMatch(/maximum/);
  });
});

describe('contentLength', () => {
  test('compact, case-insensitive, folded, whitespace before the colon', () => {
    expect(contentLength('OPTIONS x SIP/2.0\r\nl: 12')).toBe(12);
    expect(contentLength('OPTIONS x SIP/2.0\r\nCONTENT-LENGTH : 3\r\nX: y')).toBe(3);
    expect(contentLength('OPTIONS x SIP/2.0\r\nContent-Length:\r\n  7\r\nX: y')).toBe(7);
    expect(contentLength('OPTIONS x SIP/2.0\r\nContent-Length: 7\r\nl: 7')).toBe(7);
    expect(contentLength('OPTIONS x SIP/2.0\r\nX-Content-Length: 7')).toMatch(/missing/);
    expect(contentLength('OPTIONS x SIP/2.0\r\nContent-Length: 99999999999')).toMatch(/bad/);
  });
});
