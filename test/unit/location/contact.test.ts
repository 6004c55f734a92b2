import { parseUri } from '../../../grammar/sip-values';
import { methodsMask, parseContactHeaders, parseQ, sameUri } from '../../../services/location/contact';
import { parseExpires } from '../../../sip/message';

const same = (a: string, b: string) => sameUri(parseUri(a)!, parseUri(b)!);

describe('contact parsing', () => {
  it('splits comma lists across several header values and keeps the URI text only', () => {
    const r = parseContactHeaders(['"John" <sip:john@a;ob>;expires=60, <sip:john@b>', 'sip:john@c;q=0.5']);
    expect(r.kind).toBe('contacts');
    if (r.kind !== 'contacts') return;
    expect(r.contacts.map((c) => c.uri)).toEqual(['sip:john@a;ob', 'sip:john@b', 'sip:john@c']);
    expect(r.contacts[0].params.expires).toBe('60');
    expect(r.contacts[2].params.q).toBe('0.5');
  });

  it('recognises * alone and rejects it mixed with contacts', () => {
    expect(parseContactHeaders(['*']).kind).toBe('star');
    expect(parseContactHeaders(['*, <sip:a@b>']).kind).toBe('error');
    expect(parseContactHeaders(['<sip:a@b>', '*']).kind).toBe('error');
  });

  it('names a malformed contact', () => {
    const r = parseContactHeaders(['<sip:john@host']);
    expect(r).toEqual({ kind: 'error', reason: 'Invalid Contact: <sip:john@host' });
    expect(parseContactHeaders(['nocolon']).kind).toBe('error');
  });

  it('parses delta-seconds and q strictly', () => {
    expect(parseExpires(' 3600 ')).toBe(3600);
    expect(parseExpires('-1')).toBeNull();
    expect(parseExpires('abc')).toBeNull();
    expect(parseExpires(null)).toBeNull();
    expect(parseQ('0.5')).toBe(0.5);
    expect(parseQ('1.000')).toBe(1);
    expect(parseQ('1.5')).toBeNull();
    expect(parseQ('0.1234')).toBeNull();
    expect(parseQ(null)).toBeNull();
  });
});

describe('URI equivalence (RFC 3261 §19.1.4)', () => {
  it('host and scheme are case-insensitive, user is case-sensitive', () => {
    expect(same('sip:john@EXAMPLE.com', 'SIP:john@example.COM')).toBe(true);
    expect(same('sip:john@example.com', 'sip:John@example.com')).toBe(false);
    expect(same('sip:john:pw@example.com', 'sip:john:PW@example.com')).toBe(false);
  });

  it('an explicit default port differs from none', () => {
    expect(same('sip:john@h', 'sip:john@h:5060')).toBe(false);
    expect(same('sip:john@h:5060', 'sip:john@h:5060')).toBe(true);
  });

  it('transport/user/method/ttl/maddr must match when in either URI; others only when in both', () => {
    expect(same('sip:john@h;transport=tcp', 'sip:john@h')).toBe(false);
    expect(same('sip:john@h;transport=TCP', 'sip:john@h;transport=tcp')).toBe(true);
    expect(same('sip:john@h;maddr=1.2.3.4', 'sip:john@h')).toBe(false);
    expect(same('sip:john@h;rinstance=1', 'sip:john@h')).toBe(true);
    expect(same('sip:john@h;rinstance=1', 'sip:john@h;rinstance=2')).toBe(false);
  });

  it('escaped and unescaped user parts are equal', () => {
    expect(same('sip:%6Aohn@h', 'sip:john@h')).toBe(true);
  });
});

describe('methods bitmask (Kamailio METHOD_*)', () => {
  it("gives the note's 4831 for X-Lite's Allow header", () => {
    expect(methodsMask('SUBSCRIBE, NOTIFY, INVITE, ACK, CANCEL, BYE, REFER, INFO, OPTIONS')).toBe(4831);
  });
  it('is null without a list', () => {
    expect(methodsMask(null)).toBeNull();
    expect(methodsMask(undefined)).toBeNull();
  });
});
