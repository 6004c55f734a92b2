import {
  isToken,
  parseNameAddr,
  parseNameAddrList,
  parseParams,
  parseParamsStrict,
  parseUri,
  splitHeaderList,
  splitHeaderListStrict,
  unescapeUri,
} from '../../grammar/sip-values';

describe('parseNameAddr', () => {
  test('quoted display name with escapes', () => {
    expect(parseNameAddr('"Bob \\"the\\" \\\\ Builder" <sip:bob@h>;tag=a1')).toEqual({
      displayName: 'Bob "the" \\ Builder',
      uri: 'sip:bob@h',
      params: { tag: 'a1' },
    });
  });
  test('quoted display name may hold , ; < > and UTF-8', () => {
    expect(parseNameAddr('"Wat, <son>; Ünï" <sip:w@h>')!.displayName).toBe('Wat, <son>; Ünï');
  });
  test('unquoted multi-token display name, and none before "<" (RFC 4475 lwsdisp)', () => {
    expect(parseNameAddr('A. G. Bell <sip:agb@bell-telephone.com> ;tag=a48s')).toEqual({
      displayName: 'A. G. Bell',
      uri: 'sip:agb@bell-telephone.com',
      params: { tag: 'a48s' },
    });
    expect(parseNameAddr('caller<sip:caller@example.com>;tag=323')!.displayName).toBe('caller');
  });
  test('addr-spec: trailing params belong to the header, URI params need <>', () => {
    expect(parseNameAddr('sip:+1972@gw;user=phone;tag=9')).toEqual({ displayName: null, uri: 'sip:+1972@gw', params: { user: 'phone', tag: '9' } });
    expect(parseNameAddr('<sip:+1972@gw;user=phone>;tag=9')).toEqual({ displayName: null, uri: 'sip:+1972@gw;user=phone', params: { tag: '9' } });
  });
  test('params: case-folded names, flags, quoted values, LWS around = and ;', () => {
    expect(parseNameAddr('<sip:a@h> ; Expires = 60 ;+sip.instance="<urn:uuid:1>"; q=0.7 ;lr')!.params).toEqual({
      expires: '60',
      '+sip.instance': '<urn:uuid:1>',
      q: '0.7',
      lr: null,
    });
  });
  test('tel: and other absolute URIs', () => {
    expect(parseNameAddr('<tel:+31-20-1234;phone-context=example.com>')!.uri).toBe('tel:+31-20-1234;phone-context=example.com');
    expect(parseNameAddr('isbn:2983792873')!.uri).toBe('isbn:2983792873');
    expect(parseNameAddr('<http://www.example.com>;tag=1')!.params.tag).toBe('1');
  });
  test.each([
    ['"unterminated <sip:a@h>'],
    ['Bell, Alexander <sip:a@h>'],
    ['< sip:a@h >'],
    ['<sip:a@h'],
    ['<sip:a @h>'],
    ['sip:a@h?Route=x'],
    ['<sip:a@h>;;tag=1'],
    ['<sip:a@h>;tag='],
    ['<sip:a@h> junk'],
    ['"x" sip:a@h'],
    [''],
    ['<>'],
    ['<nocolon>'],
    ['*'],
    ['<sip:a@h>;x="open'],
  ])('rejects %s', (v) => expect(parseNameAddr(v)).toBeNull());
});

describe('parseUri', () => {
  test('full SIP URI', () => {
    expect(parseUri('sips:alice:secret@Atlanta.COM:5061;transport=tcp;lr?subject=project%20x&priority=urgent')).toEqual({
      scheme: 'sips',
      user: 'alice',
      password: 'secret',
      host: 'atlanta.com',
      port: 5061,
      params: { transport: 'tcp', lr: null },
      headers: 'subject=project%20x&priority=urgent',
    });
  });
  test('user parameters and escapes in the user part', () => {
    expect(parseUri('sip:+1-212-555-1212;isub=1411;postd=pp22@example.com;user=phone')).toMatchObject({
      user: '+1-212-555-1212;isub=1411;postd=pp22',
      host: 'example.com',
      params: { user: 'phone' },
    });
    expect(parseUri('sip:user;par=u%40example.net@example.com')!.user).toBe('user;par=u@example.net');
    expect(parseUri('sip:%75se%72@h')!.user).toBe('user');
  });
  test('? and : inside the user part do not start headers or a port', () => {
    const u = parseUri('sip:a?b,c:p?w@h:5060?x=y')!;
    expect([u.user, u.password, u.host, u.port, u.headers]).toEqual(['a?b,c', 'p?w', 'h', 5060, 'x=y']);
  });
  test('IPv6 references', () => {
    expect(parseUri('sip:[2001:DB8::10]:5070;maddr=[2001:db8::1]')).toMatchObject({ host: '[2001:db8::10]', port: 5070, params: { maddr: '[2001:db8::1]' } });
    expect(parseUri('sip:bob@[::1]')).toMatchObject({ user: 'bob', host: '[::1]', port: null });
  });
  test('escaped URI params are decoded exactly once', () => {
    expect(parseUri('sip:h;%6C%72;n%61me=v%61lue%25%34%31')!.params).toEqual({ lr: null, name: 'value%41' });
  });
  test('tel and opaque URIs', () => {
    expect(parseUri('tel:+1-201-555-0123;ext=1')).toMatchObject({ scheme: 'tel', user: '+1-201-555-0123', params: { ext: '1' } });
    expect(parseUri('urn:service:sos')).toMatchObject({ scheme: 'urn', host: 'service:sos' });
  });
  test.each([['sip:'], ['sip:@h'], ['sip:a@'], ['sip:h:99999'], ['sip:h:x'], ['sip:[::1'], ['sip:[::1]x'], ['sip:h h'], ['1sip:h'], ['nocolon'], ['tel:']])(
    'rejects %s',
    (v) => expect(parseUri(v)).toBeNull(),
  );
  test('invalid escapes stay literal, %00 is kept', () => {
    expect(unescapeUri('a%ZZ%41')).toBe('a%ZZA');
    expect(unescapeUri('%00x')).toBe('\0x');
    expect(unescapeUri('%FF')).toBe('\xff');
  });
});

describe('lists and params', () => {
  test('splitHeaderList ignores commas in quotes and <>', () => {
    expect(splitHeaderList('"a, \\"b" <sip:a@h;x=1,2>, <sip:c@h> ,, d')).toEqual(['"a, \\"b" <sip:a@h;x=1,2>', '<sip:c@h>', 'd']);
  });
  test('splitHeaderListStrict refuses empty items and unbalanced quotes/brackets', () => {
    expect(splitHeaderListStrict('a, "b,c" ,<d,e>')).toEqual(['a', '"b,c"', '<d,e>']);
    expect(splitHeaderListStrict('  ')).toEqual([]);
    for (const bad of ['a,,b', 'a,', ',a', '"a, b', '<a, b']) expect(splitHeaderListStrict(bad)).toBeNull();
  });
  test('parseNameAddrList', () => {
    expect(parseNameAddrList('"A, B" <sip:a@h>;q=0.5, sip:b@h;expires=0')!.map((n) => n.uri)).toEqual(['sip:a@h', 'sip:b@h']);
    expect(parseNameAddrList('<sip:a@h>, Bell, Alex <sip:b@h>')).toBeNull();
  });
  test('parseParams (lenient) vs parseParamsStrict', () => {
    expect(parseParams(';;a=1;;B="x;y";c')).toEqual({ a: '1', b: 'x;y', c: null });
    expect(parseParamsStrict(';;a=1')).toBeNull();
    expect(parseParamsStrict(' ; a = "q\\"x" ; b')).toEqual({ a: 'q"x', b: null });
    expect(parseParamsStrict('')).toEqual({});
  });
  test('isToken', () => {
    expect(isToken("!interesting-Method0123456789_*+`.%indeed'~")).toBe(true);
    expect(isToken('a b')).toBe(false);
    expect(isToken('')).toBe(false);
  });
});
