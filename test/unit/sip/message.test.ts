import {
  checkRequest,
  checkResponse,
  createHeaders,
  header,
  headerList,
  parseCSeq,
  parseContentLength,
  parseExpires,
  parseMaxForwards,
  parseVia,
  parseViaList,
  topVia,
  type SipRequest,
  type SipResponse,
} from '../../../sip/message';
import { canonicalHeaderName, fullHeaderName, isListHeader } from '../../../sip/headers';
import { parseMessage } from '../../../sip/parser';
import { serializeMessage } from '../../../sip/serializer';

describe('parseVia', () => {
  test('host, port, branch, rport flag, received', () => {
    expect(parseVia('SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1;rport;received=10.0.0.1')).toEqual({
      protocol: 'SIP/2.0',
      transport: 'UDP',
      host: '192.0.2.1',
      port: 5060,
      params: { branch: 'z9hG4bK1', rport: null, received: '10.0.0.1' },
      branch: 'z9hG4bK1',
      received: '10.0.0.1',
      rport: null,
      hasRport: true,
    });
  });
  test('IPv6 sent-by and received, rport value, LWS everywhere, case folding', () => {
    const v = parseVia('sip / 2.0 / tcp  [2001:DB8::9:1] : 5070 ; RPort = 5071 ; received=2001:db8::9:255;branch=z9hG4bKx')!;
    expect([v.protocol, v.transport, v.host, v.port, v.rport, v.received]).toEqual(['SIP/2.0', 'TCP', '[2001:db8::9:1]', 5070, 5071, '2001:db8::9:255']);
    expect(v.hasRport).toBe(true);
  });
  test('no branch (RFC 2543), quoted extension param', () => {
    const v = parseVia('SIP/2.0/UDP Host.Example.com;x="a;b,c"')!;
    expect([v.host, v.branch, v.params.x, v.hasRport]).toEqual(['host.example.com', null, 'a;b,c', false]);
  });
  test.each([
    ['SIP/2.0/UDP'],
    ['SIP/2.0 h'],
    ['SIP/2.0/UDPh'],
    ['SIP/2.0/UDP h;'],
    ['SIP/2.0/UDP h;;branch=1'],
    ['SIP/2.0/UDP h:99999'],
    ['SIP/2.0/UDP h:'],
    ['SIP/2.0/UDP [::1'],
    ['SIP/2.0/UDP []'],
    ['SIP/2.0/UDP h;rport=x'],
    ['SIP/2.0/UDP h;branch='],
    ['SIP/2.0/UDP h junk'],
  ])('rejects %s', (v) => expect(parseVia(v)).toBeNull());
  test('lists', () => {
    expect(parseViaList('SIP/2.0/UDP a, SIP/2.0/TCP b;x="1,2"')!.map((v) => v.host)).toEqual(['a', 'b']);
    expect(parseViaList('SIP/2.0/UDP a,')).toBeNull();
    expect(parseViaList('')).toBeNull();
  });
});

describe('scalars', () => {
  test('CSeq', () => {
    expect(parseCSeq('0009  INVITE')).toEqual({ seq: 9, method: 'INVITE' });
    expect(parseCSeq('4294967295 ACK')).toEqual({ seq: 4294967295, method: 'ACK' });
    for (const bad of ['4294967296 ACK', '36893488147419103232 REGISTER', '1', 'INVITE', '1INVITE', '-1 INVITE', '1 IN VITE', '']) {
      expect(parseCSeq(bad)).toBeNull();
    }
  });
  test('Max-Forwards, Content-Length, Expires', () => {
    expect(parseMaxForwards('0068')).toBe(68);
    expect(parseMaxForwards('256')).toBeNull();
    expect(parseContentLength(' 150 ')).toBe(150);
    expect(parseContentLength('-999')).toBeNull();
    expect(parseContentLength('+1')).toBeNull();
    expect(parseContentLength('9'.repeat(400))).toBeNull();
    expect(parseExpires('3600')).toBe(3600);
    expect(parseExpires('1' + '0'.repeat(100))).toBe(4294967295);
    expect(parseExpires('abc')).toBeNull();
  });
});

describe('header names', () => {
  test('full names from any spelling', () => {
    expect(['Via', 'v', 'V', 'VIA', 'i', 'Call-Id', 'k', 'o', 'X-Foo'].map(fullHeaderName)).toEqual([
      'via',
      'via',
      'via',
      'via',
      'call-id',
      'call-id',
      'supported',
      'event',
      'x-foo',
    ]);
    expect(['call-id', 'cseq', 'www-authenticate', 'content-length', 'x-foo-bar'].map(canonicalHeaderName)).toEqual([
      'Call-ID',
      'CSeq',
      'WWW-Authenticate',
      'Content-Length',
      'X-Foo-Bar',
    ]);
    expect([isListHeader('m'), isListHeader('Authorization'), isListHeader('date')]).toEqual([true, false, false]);
  });

  test("a header named as one of Object.prototype's members is spelled as a word, every time (the spellings kept)", () => {
    const names = ['constructor', 'tostring', 'valueof', 'hasownproperty', '__proto__', 'x-to-string'];
    const spelled = ['Constructor', 'Tostring', 'Valueof', 'Hasownproperty', '__proto__', 'X-To-String'];
    // twice: the second answer comes from the kept spellings
    expect(names.map(canonicalHeaderName)).toEqual(spelled);
    expect(names.map(canonicalHeaderName)).toEqual(spelled);
    const r = parseMessage('OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nConstructor: 1\r\nToString: 2\r\nContent-Length: 0\r\n\r\n');
    if (!r.ok) throw new Error(r.error);
    const wire = serializeMessage(r.message).toString('latin1');
    expect(wire).toContain('\r\nConstructor: 1\r\n');
    expect(wire).toContain('\r\nTostring: 2\r\n');
    expect(wire).not.toContain('function');
  });
});

function request(method: string, uri: string, extra: Record<string, string[]> = {}, body = ''): SipRequest {
  const headers = createHeaders();
  Object.assign(headers, {
    via: ['SIP/2.0/UDP h;branch=z9hG4bK1'],
    from: ['<sip:a@h>;tag=1'],
    to: ['<sip:b@h>'],
    'call-id': ['c'],
    cseq: [`1 ${method}`],
    ...extra,
  });
  return { method, uri, version: 'SIP/2.0', headers, body };
}

describe('checkRequest', () => {
  test('a plain request passes', () => expect(checkRequest(request('INVITE', 'sip:b@h'))).toBeNull());
  test.each([
    ['version', { ...request('OPTIONS', 'sip:b@h'), version: 'SIP/7.0' }, 505],
    ['missing Call-ID', request('OPTIONS', 'sip:b@h', { 'call-id': [] }), 400],
    ['duplicate To', request('OPTIONS', 'sip:b@h', { to: ['<sip:b@h>', '<sip:c@h>'] }), 400],
    ['bare cookie branch', request('OPTIONS', 'sip:b@h', { via: ['SIP/2.0/UDP h;branch=z9hG4bK'] }), 400],
    ['unknown method', request('FOO', 'sip:b@h'), 501],
    ['CSeq mismatch', request('OPTIONS', 'sip:b@h', { cseq: ['1 INVITE'] }), 400],
    ['scheme', request('OPTIONS', 'http://h/'), 416],
    ['REGISTER To tel', request('REGISTER', 'sip:h', { to: ['<tel:+123>'] }), 400],
    ['Require', request('OPTIONS', 'sip:b@h', { require: ['100rel, foo'] }), 420],
    ['Content-Type', request('MESSAGE', 'sip:b@h', { 'content-type': ['application/x-nope'] }, 'x'), 415],
    ['Accept', request('INVITE', 'sip:b@h', { accept: ['text/html'] }), 406],
  ] as const)('%s → %i', (_n, req, status) => expect(checkRequest(req as SipRequest)?.status).toBe(status));

  test('policy can widen or disable checks', () => {
    expect(checkRequest(request('FOO', 'sip:b@h'), { methods: null })).toBeNull();
    expect(checkRequest(request('OPTIONS', 'sip:b@h', { require: ['foo'] }), { extensions: new Set(['foo']) })).toBeNull();
    expect(checkRequest(request('INVITE', 'sip:b@h', { accept: ['application/*'] }))).toBeNull();
    expect(checkRequest(request('OPTIONS', 'sip:b@h', { 'proxy-require': ['x'] }), { proxy: true })?.headers).toEqual({ unsupported: 'x' });
    expect(checkRequest(request('FOO', 'sip:b@h'))?.headers?.allow).toContain('REGISTER');
    expect(checkRequest(request('FOO', 'sip:b@h'), { methods: undefined })?.status).toBe(501); // omitted → default
  });
});

describe('checkResponse', () => {
  const res = (via: string[]): SipResponse => {
    const headers = createHeaders();
    Object.assign(headers, { via, from: ['<sip:a@h>;tag=1'], to: ['<sip:b@h>;tag=2'], 'call-id': ['c'], cseq: ['1 INVITE'] });
    return { status: 200, reason: 'OK', version: 'SIP/2.0', headers, body: '' };
  };
  test('unicast Vias pass, broadcast is dropped', () => {
    expect(checkResponse(res(['SIP/2.0/UDP a;branch=z9hG4bK1', 'SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK2']))).toBeNull();
    expect(checkResponse(res(['SIP/2.0/UDP a;branch=z9hG4bK1', 'SIP/2.0/UDP 255.255.255.255;branch=z9hG4bK2']))).toMatch(/unicast/);
    expect(checkResponse({ ...res(['SIP/2.0/UDP a']), version: 'SIP/3.0' })).toMatch(/version/);
  });
});

describe('header helpers', () => {
  test('header/headerList/topVia', () => {
    const r = request('INVITE', 'sip:b@h', { via: ['SIP/2.0/UDP x;branch=z9hG4bKx, SIP/2.0/UDP y', 'SIP/2.0/TCP z'] });
    expect(header(r, 'v')).toBe('SIP/2.0/UDP x;branch=z9hG4bKx, SIP/2.0/UDP y');
    expect(headerList(r, 'Via')).toEqual(['SIP/2.0/UDP x;branch=z9hG4bKx', 'SIP/2.0/UDP y', 'SIP/2.0/TCP z']);
    expect(topVia(r)?.branch).toBe('z9hG4bKx');
  });
});
