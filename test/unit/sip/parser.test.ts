import { parseMessage } from '../../../sip/parser';
import { header, headerList, type SipRequest, type SipResponse } from '../../../sip/message';

const msg = (...lines: string[]) => lines.join('\r\n');
const REG = [
  'REGISTER sip:example.com SIP/2.0',
  'Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776;rport',
  'Max-Forwards: 70',
  'From: <sip:alice@example.com>;tag=456',
  'To: <sip:alice@example.com>',
  'Call-ID: abc@host',
  'CSeq: 1 REGISTER',
];
function ok(text: string | Buffer): SipRequest | SipResponse {
  const r = parseMessage(text);
  if (!r.ok) throw new Error(r.error);
  return r.message;
}
function fail(text: string | Buffer) {
  const r = parseMessage(text);
  if (r.ok) throw new Error('expected a parse error');
  return r;
}

describe('parseMessage: start lines', () => {
  test('request line, headers in order, lower-case full names', () => {
    const m = ok(msg(...REG, 'Contact: <sip:a@h>', 'contact: <sip:b@h>', 'Content-Length: 0', '', '')) as SipRequest;
    expect([m.method, m.uri, m.version]).toEqual(['REGISTER', 'sip:example.com', 'SIP/2.0']);
    expect(Object.keys(m.headers)).toEqual(['via', 'max-forwards', 'from', 'to', 'call-id', 'cseq', 'contact', 'content-length']);
    expect(m.headers.contact).toEqual(['<sip:a@h>', '<sip:b@h>']);
    expect(m.body).toHaveLength(0);
  });

  test('status line with multi-word and empty reasons', () => {
    const r = ok(msg('SIP/2.0 401 Unauthorized Now', ...REG.slice(1), '', '')) as SipResponse;
    expect([r.status, r.reason, r.version]).toEqual([401, 'Unauthorized Now', 'SIP/2.0']);
    expect((ok(msg('SIP/2.0 180', ...REG.slice(1), '', '')) as SipResponse).reason).toBe('');
  });

  test.each([
    ['double space', 'REGISTER  sip:example.com SIP/2.0'],
    ['trailing space', 'REGISTER sip:example.com SIP/2.0 '],
    ['no version', 'REGISTER sip:example.com'],
    ['bad version', 'REGISTER sip:example.com SIP/2'],
    ['bracketed uri', 'REGISTER <sip:example.com> SIP/2.0'],
    ['space in uri', 'REGISTER sip:example.com; lr SIP/2.0'],
    ['uri headers', 'INVITE sip:a@example.com?Route=x SIP/2.0'],
    ['method with separator', 'REG@STER sip:example.com SIP/2.0'],
    ['no scheme', 'REGISTER example.com SIP/2.0'],
  ])('request line rejected with 400: %s', (_n, line) => {
    const r = fail(msg(line, ...REG.slice(1), '', ''));
    expect(r.status).toBe(400);
    expect(r.partial?.headers['call-id']).toEqual(['abc@host']);
  });

  test.each([['SIP/2.0 2000 OK'], ['SIP/2.0 20 OK'], ['SIP/2.0 700 Huh'], ['SIP/2.0 abc OK'], ['SIP/2.0 200OK']])(
    'status line rejected, no status: %s',
    (line) => {
      const r = fail(msg(line, ...REG.slice(1), '', ''));
      expect(r.status).toBeUndefined();
      expect(r.partial).toBeUndefined();
    },
  );

  test('other SIP versions parse (505 is decided by checkRequest)', () => {
    expect((ok(msg('OPTIONS sip:a@b SIP/3.0', ...REG.slice(1), '', '')) as SipRequest).version).toBe('SIP/3.0');
  });

  test('leading CRLFs are skipped; empty input is an error without status', () => {
    expect((ok('\r\n\r\n' + msg(...REG, '', '')) as SipRequest).method).toBe('REGISTER');
    expect(fail('\r\n\r\n')).toEqual({ ok: false, error: 'empty message' });
    expect(fail('').error).toBe('empty message');
  });
});

describe('parseMessage: headers', () => {
  test('compact forms map to full names, in any case', () => {
    const m = ok(
      msg(
        'OPTIONS sip:a@b SIP/2.0',
        'v: SIP/2.0/UDP h;branch=z9hG4bK1',
        'F: <sip:a@b>;tag=1',
        'T: <sip:b@b>',
        'I: x',
        'CSeq: 1 OPTIONS',
        'm: <sip:c@d>',
        'k: path',
        'L: 0',
        '',
        '',
      ),
    );
    expect(Object.keys(m.headers)).toEqual(['via', 'from', 'to', 'call-id', 'cseq', 'contact', 'supported', 'content-length']);
  });

  test('folding, whitespace before the colon and around values, empty values', () => {
    const m = ok(msg(...REG, 'Subject  :  ', 'X-Long: one', '\ttwo', '   three  ', 'Cseq-ish : v', '', ''));
    expect(header(m, 'subject')).toBe('');
    expect(header(m, 'x-long')).toBe('one two three');
    expect(header(m, 'cseq-ish')).toBe('v');
  });

  test('list headers split only where they are lists', () => {
    const m = ok(
      msg(
        ...REG,
        'Contact: "a, b" <sip:a@h>, <sip:b@h;x=1,2>',
        'Contact: <sip:c@h>',
        'Authorization: Digest username="a", realm="r"',
        'Allow: INVITE, BYE',
        '',
        '',
      ),
    );
    expect(headerList(m, 'm')).toEqual(['"a, b" <sip:a@h>', '<sip:b@h;x=1,2>', '<sip:c@h>']);
    expect(headerList(m, 'authorization')).toEqual(['Digest username="a", realm="r"']);
    expect(headerList(m, 'Allow')).toEqual(['INVITE', 'BYE']);
    expect(headerList(m, 'route')).toEqual([]);
    expect(header(m, 'route')).toBeUndefined();
  });

  test.each([
    ['line without colon', 'Garbage line'],
    ['bad header name', 'Bad Name: x'],
    ['bad Via', 'Via: SIP/2.0/UDP'],
    ['empty Via list item', 'Via: SIP/2.0/UDP h;branch=z9hG4bK2,,SIP/2.0/UDP g'],
    ['unterminated quote in To', 'To: "Bob <sip:b@h>'],
    ['space inside <>', 'Contact: < sip:b@h >'],
    ['unquoted comma display name', 'Contact: Bob, Jr <sip:b@h>'],
    ['bare Contact with ?headers', 'Contact: sip:b@h?Route=x'],
    ['empty contact param', 'Contact: <sip:b@h>;;x'],
    ['CSeq above 2^32-1', 'CSeq: 4294967296 REGISTER'],
    ['CSeq without method', 'CSeq: 5'],
    ['Max-Forwards 256', 'Max-Forwards: 256'],
    ['negative Content-Length', 'Content-Length: -1'],
    ['conflicting Content-Length', 'Content-Length: 0\r\nl: 1'],
    ['Date not in GMT', 'Date: Fri, 01 Jan 2010 16:00:00 EST'],
    ['Route without name-addr', 'Route: <sip:p@h;lr'],
  ])('rejected with 400: %s', (_n, line) => {
    const r = fail(msg(...REG, line, '', ''));
    expect(r.status).toBe(400);
    expect(r.error).toMatch(/bad|header|colon|Content-Length/i);
  });

  test('partial is present only with enough headers to answer', () => {
    expect(fail(msg('REGISTER  sip:x SIP/2.0', 'Via: SIP/2.0/UDP h', '', '')).partial).toBeUndefined();
  });

  test('header named like Object.prototype members stays a plain header', () => {
    const m = ok(msg(...REG, 'toString: a', 'hasOwnProperty: b', '', ''));
    expect(m.headers['tostring']).toEqual(['a']);
    expect(m.headers['constructor']).toBeUndefined();
  });

  test('UTF-8 header values and reason phrases are decoded', () => {
    const m = ok(Buffer.from(msg(...REG, 'Subject: Grüße 🎉', '', ''), 'utf8'));
    expect(header(m, 's')).toBe('Grüße 🎉');
  });
});

describe('parseMessage: body framing on datagrams', () => {
  const INV = ['INVITE sip:b@h SIP/2.0', 'Via: SIP/2.0/UDP h;branch=z9hG4bK1', 'From: <sip:a@h>;tag=1', 'To: <sip:b@h>', 'Call-ID: c', 'CSeq: 1 INVITE'];
  test('Content-Length selects the body; trailing datagram bytes are ignored', () => {
    const m = ok(msg(...INV, 'Content-Length: 5', '', 'hello-and-junk'));
    expect(m.body.toString()).toBe('hello');
  });
  test('body counted in bytes, not characters', () => {
    const m = ok(Buffer.from(msg(...INV, 'Content-Length: 5', '', 'é€xyz'), 'utf8'));
    expect((m.body as Buffer).toString('utf8')).toBe('é€');
  });
  test('no Content-Length: the rest of the datagram', () => {
    expect(ok(msg(...INV, '', 'v=0\r\n')).body.toString()).toBe('v=0\r\n');
  });
  test('Content-Length larger than the datagram is a 400', () => {
    const r = fail(msg(...INV, 'Content-Length: 50', '', 'short'));
    expect([r.status, r.error]).toEqual([400, 'Content-Length exceeds the message']);
  });
  test('missing empty line: headers end with the datagram', () => {
    const m = ok(msg(...INV, 'l: 0', '')) as SipRequest;
    expect(header(m, 'content-length')).toBe('0');
  });
  test('bare LF line ends are tolerated', () => {
    const m = ok([...INV, 'Content-Length: 2', '', 'ab'].join('\n')) as SipRequest;
    expect([m.method, header(m, 'call-id'), m.body.toString()]).toEqual(['INVITE', 'c', 'ab']);
  });
  test('a string input is parsed like its UTF-8 bytes', () => {
    expect(ok(msg(...INV, 'Content-Length: 3', '', 'abc')).body.toString()).toBe('abc');
  });
});
