import { parseMessage } from '../../../sip/parser';
import { buildResponse, newTag, reasonPhrase, serializeMessage } from '../../../sip/serializer';
import { createHeaders, type SipRequest, type SipResponse } from '../../../sip/message';
import { parseNameAddr } from '../../../grammar/sip-values';

const REQ = [
  'INVITE sip:bob@h SIP/2.0',
  'Via: SIP/2.0/UDP p1;branch=z9hG4bKa, SIP/2.0/UDP p2;branch=z9hG4bKb',
  'v: SIP/2.0/UDP uac;branch=z9hG4bKc;rport',
  'Max-Forwards: 69',
  'f: Alice <sip:alice@h>;tag=1928',
  't: Bob <sip:bob@h>',
  'i: a84b4c76e66710',
  'CSeq: 314159 INVITE',
  'Timestamp: 54',
  'www-authenticate: Digest realm="r"',
  'Content-Length: 4',
  '',
  'body',
].join('\r\n');
const req = (): SipRequest => {
  const r = parseMessage(REQ);
  if (!r.ok) throw new Error(r.error);
  return r.message as SipRequest;
};

describe('serializeMessage', () => {
  test('canonical names, one line per value, Content-Length computed', () => {
    const text = serializeMessage(req()).toString();
    expect(text).toBe(
      [
        'INVITE sip:bob@h SIP/2.0',
        'Via: SIP/2.0/UDP p1;branch=z9hG4bKa, SIP/2.0/UDP p2;branch=z9hG4bKb',
        'Via: SIP/2.0/UDP uac;branch=z9hG4bKc;rport',
        'Max-Forwards: 69',
        'From: Alice <sip:alice@h>;tag=1928',
        'To: Bob <sip:bob@h>',
        'Call-ID: a84b4c76e66710',
        'CSeq: 314159 INVITE',
        'Timestamp: 54',
        'WWW-Authenticate: Digest realm="r"',
        'Content-Length: 4',
        '',
        'body',
      ].join('\r\n'),
    );
  });

  test('a stale Content-Length is replaced; string bodies counted in UTF-8 bytes', () => {
    const m = req();
    m.headers['content-length'] = ['999'];
    m.body = 'héllo';
    const out = serializeMessage(m);
    expect(out.toString()).toContain('Content-Length: 6\r\n\r\nhéllo');
    expect(out.toString()).not.toContain('999');
  });

  test('binary bodies pass through untouched', () => {
    const m = req();
    m.body = Buffer.from([0, 13, 10, 255]);
    const out = serializeMessage(m);
    expect(out.subarray(out.length - 4)).toEqual(Buffer.from([0, 13, 10, 255]));
    const back = parseMessage(out);
    expect(back.ok && back.message.body).toEqual(Buffer.from([0, 13, 10, 255]));
  });

  test('responses', () => {
    const headers = createHeaders();
    headers['x-custom-thing'] = ['1'];
    const res: SipResponse = { status: 180, reason: 'Ringing', version: 'SIP/2.0', headers, body: '' };
    expect(serializeMessage(res).toString()).toBe('SIP/2.0 180 Ringing\r\nX-Custom-Thing: 1\r\nContent-Length: 0\r\n\r\n');
  });
});

describe('buildResponse (RFC 3261 §8.2.6)', () => {
  test('copies Via (all, in order), From, To, Call-ID, CSeq and adds a To tag', () => {
    const r = buildResponse(req(), 486);
    expect(r.reason).toBe('Busy Here');
    expect(r.headers.via).toEqual(['SIP/2.0/UDP p1;branch=z9hG4bKa, SIP/2.0/UDP p2;branch=z9hG4bKb', 'SIP/2.0/UDP uac;branch=z9hG4bKc;rport']);
    expect(r.headers.from).toEqual(['Alice <sip:alice@h>;tag=1928']);
    expect(r.headers['call-id']).toEqual(['a84b4c76e66710']);
    expect(r.headers.cseq).toEqual(['314159 INVITE']);
    const to = parseNameAddr(r.headers.to[0])!;
    expect(to.uri).toBe('sip:bob@h');
    expect(to.params.tag).toMatch(/^[0-9a-f]{8}[0-9a-z]+$/);
    expect(r.headers.timestamp).toBeUndefined();
    expect(Object.keys(r.headers)).toEqual(['via', 'from', 'to', 'call-id', 'cseq']);
  });

  test('no tag on 100, Timestamp echoed; given tag reused; existing tag kept', () => {
    const trying = buildResponse(req(), 100);
    expect(trying.headers.to).toEqual(['Bob <sip:bob@h>']);
    expect(trying.headers.timestamp).toEqual(['54']);
    expect(buildResponse(req(), 401, undefined, undefined, 'abc').headers.to).toEqual(['Bob <sip:bob@h>;tag=abc']);
    const m = req();
    m.headers.to = ['<sip:bob@h>;tag=xyz'];
    expect(buildResponse(m, 200).headers.to).toEqual(['<sip:bob@h>;tag=xyz']);
  });

  test('extra headers in any spelling, custom reason; request is not modified', () => {
    const m = req();
    const r = buildResponse(m, 200, 'Fine', { Contact: ['<sip:a@b>;expires=60', '<sip:c@d>;expires=30'], 'WWW-Authenticate': 'x', k: 'path' });
    expect(r.reason).toBe('Fine');
    expect(r.headers.contact).toHaveLength(2);
    expect(r.headers['www-authenticate']).toEqual(['x']);
    expect(r.headers.supported).toEqual(['path']);
    expect(m.headers.to).toEqual(['Bob <sip:bob@h>']);
    expect(serializeMessage(r).toString()).toMatch(
      /^SIP\/2\.0 200 Fine\r\nVia: .*\r\nContact: <sip:a@b>;expires=60\r\nContact: <sip:c@d>;expires=30\r\nWWW-Authenticate: x\r\nSupported: path\r\nContent-Length: 0\r\n\r\n$/s,
    );
  });

  test('answers a rejected request from its partial headers', () => {
    const r = parseMessage(REQ.replace('INVITE sip:bob@h', 'INVITE  sip:bob@h'));
    expect(r.ok).toBe(false);
    if (r.ok || !r.partial) throw new Error('expected partial');
    const res = buildResponse(r.partial, r.status ?? 400);
    expect(serializeMessage(res).toString()).toMatch(/^SIP\/2\.0 400 Bad Request\r\n/);
    expect(res.headers.via).toHaveLength(2);
  });

  test('tags are unique; reason phrases have sensible defaults', () => {
    const tags = new Set(Array.from({ length: 1000 }, newTag));
    expect(tags.size).toBe(1000);
    expect(reasonPhrase(423)).toBe('Interval Too Brief');
    expect(reasonPhrase(499)).toBe('Client Error');
  });
});
