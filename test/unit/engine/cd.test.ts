import { buildCallDescriptor, CallDescriptorError, callDescriptorJson, cseqMethod, normalizeHeaderName } from '../../../engine/cd';
import { cdOf } from './helpers';

const invite = {
  requestURI: 'sip:+3225551234@example.com;user=phone',
  sourceAddress: '192.0.2.1',
  headers: {
    From: '"Alice" <sip:alice@example.com>;tag=1',
    To: '<sip:bob@example.com>',
    'Call-ID': 'abc@192.0.2.1',
    CSeq: '4711 INVITE',
  },
};

describe('buildCallDescriptor', () => {
  test('derives the predefined variables from From, To, Call-ID, CSeq and the Request-URI', () => {
    const cd = buildCallDescriptor(invite);
    expect(cd.vars).toEqual({
      requestURI: 'sip:+3225551234@example.com;user=phone',
      sourceAddress: '192.0.2.1',
      callId: 'abc@192.0.2.1',
      requestMethod: 'INVITE',
      fromURI: 'sip:alice@example.com',
      fromUsername: 'alice',
      toURI: 'sip:bob@example.com',
      toUsername: 'bob',
      requestUsername: '+3225551234',
      called: '+3225551234',
      calling: 'alice',
      originalCalled: '+3225551234',
      originalCalling: 'alice',
      authStatus: 0,
    });
  });

  test('called falls back to the To user when the Request-URI has none', () => {
    const cd = buildCallDescriptor({ ...invite, requestURI: 'sip:10.1.10.163' });
    expect(cd.vars).toMatchObject({ requestUsername: null, called: 'bob', originalCalled: 'bob' });
  });

  test('values given in the input win over derived ones', () => {
    const cd = buildCallDescriptor({ ...invite, called: '999', requestMethod: 'OPTIONS', authStatus: 1, fromUsername: 'mallory' });
    expect(cd.vars).toMatchObject({
      called: '999',
      originalCalled: '999',
      requestMethod: 'OPTIONS',
      authStatus: 1,
      fromUsername: 'mallory',
      calling: 'mallory',
    });
  });

  test('aliases map to the SRE names', () => {
    const cd = buildCallDescriptor({ method: 'REGISTER', requestUri: 'sip:x@y', fromUri: 'sip:a@b', toUri: 'sip:c@d', callid: 'k', source: '10.0.0.1' });
    expect(cd.vars).toMatchObject({
      requestMethod: 'REGISTER',
      requestURI: 'sip:x@y',
      fromURI: 'sip:a@b',
      toURI: 'sip:c@d',
      callId: 'k',
      sourceAddress: '10.0.0.1',
      requestUsername: 'x',
    });
    for (const alias of ['method', 'requestUri', 'fromUri', 'toUri', 'callid', 'source']) expect(alias in cd.vars).toBe(false);
    expect(buildCallDescriptor({ ruri: 'sip:z@y', 'call-id': 'q', sourceIp: '::1' }).vars).toMatchObject({
      requestURI: 'sip:z@y',
      callId: 'q',
      sourceAddress: '::1',
    });
  });

  test('variables and headers named like Object.prototype members are kept as they are', () => {
    const cd = buildCallDescriptor({ constructor: 'x', toString: 'y', valueOf: 1, headers: { Constructor: 'c', hasOwnProperty: 'h' } });
    expect(cd.vars).toMatchObject({ constructor: 'x', toString: 'y', valueOf: 1 });
    expect(Object.keys(cd.vars).sort()).toEqual(['authStatus', 'constructor', 'toString', 'valueOf']);
    expect(cd.headers).toEqual({ constructor: ['c'], hasownproperty: ['h'] });
    expect(normalizeHeaderName('Constructor')).toBe('constructor');
  });

  test('header names are normalized: case, compact forms; values kept in order', () => {
    const cd = buildCallDescriptor({
      headers: {
        f: '<sip:a@b>;tag=1',
        t: '<sip:c@d>',
        i: 'cid',
        m: ['<sip:a@1.1.1.1>', '<sip:a@2.2.2.2>'],
        Contact: '<sip:a@3.3.3.3>',
        'USER-AGENT': 'UA',
        ' X-Pad ': 'p',
        v: 'SIP/2.0/UDP h',
      },
    });
    expect(cd.headers).toEqual({
      from: ['<sip:a@b>;tag=1'],
      to: ['<sip:c@d>'],
      'call-id': ['cid'],
      contact: ['<sip:a@1.1.1.1>', '<sip:a@2.2.2.2>', '<sip:a@3.3.3.3>'],
      'user-agent': ['UA'],
      'x-pad': ['p'],
      via: ['SIP/2.0/UDP h'],
    });
    expect(cd.vars).toMatchObject({ fromUsername: 'a', toUsername: 'c', callId: 'cid' });
    expect(normalizeHeaderName('K')).toBe('supported');
    expect(normalizeHeaderName('Proxy-Authorization')).toBe('proxy-authorization');
  });

  test('a list of records and every scalar type are accepted as variables; body is kept', () => {
    const cd = buildCallDescriptor({ rows: [{ a: 1, b: 'x', c: null, d: true }], n: 1.5, flag: false, nothing: null, body: 'v=0' });
    expect(cd.vars).toMatchObject({ rows: [{ a: 1, b: 'x', c: null, d: true }], n: 1.5, flag: false, nothing: null });
    expect(cd.body).toBe('v=0');
    expect(callDescriptorJson(cd)).toMatchObject({ n: 1.5, headers: {} });
  });

  test.each([
    ['a number for headers', { headers: 5 }, 'headers'],
    ['a number as a header value', { headers: { From: 5 } }, 'headers/From'],
    ['an object as a variable', { called: { number: '100' } }, 'called'],
    ['a list of scalars as a variable', { called: ['100'] }, 'called'],
    ['a nested object in a record', { rows: [{ a: { b: 1 } }] }, 'rows'],
    ['a number as body', { body: 1 }, 'body'],
  ])('wrong types are a CallDescriptorError naming the path: %s', (_name, input, pathName) => {
    let err: unknown;
    try {
      buildCallDescriptor(input);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(CallDescriptorError);
    expect((err as Error).message).toMatch(new RegExp(`^invalid call descriptor: ${pathName.replace('/', '\\/')}(/\\S*)?: `));
  });

  test('not an object at all', () => {
    expect(() => buildCallDescriptor('REGISTER')).toThrow(CallDescriptorError);
    expect(() => buildCallDescriptor(null)).toThrow(/^invalid call descriptor: \(root\): /);
  });

  describe('authUsername', () => {
    const creds = (user: string) => `Digest username="${user}", realm="r", nonce="n", uri="sip:r", response="00"`;
    test('from Authorization for REGISTER', () => {
      const cd = cdOf({ method: 'REGISTER', headers: { Authorization: creds('reg'), 'Proxy-Authorization': creds('proxy') } });
      expect(cd.vars.authUsername).toBe('reg');
    });
    test('from Proxy-Authorization for INVITE (the method read from CSeq)', () => {
      const cd = cdOf({ headers: { CSeq: '2 INVITE', Authorization: creds('reg'), 'Proxy-Authorization': creds('proxy') } });
      expect(cd.vars).toMatchObject({ requestMethod: 'INVITE', authUsername: 'proxy' });
    });
    test('absent without the right header, without a parser, or when unparseable', () => {
      expect('authUsername' in cdOf({ method: 'INVITE', headers: { Authorization: creds('reg') } }).vars).toBe(false);
      expect('authUsername' in buildCallDescriptor({ method: 'REGISTER', headers: { Authorization: creds('reg') } }).vars).toBe(false);
      expect('authUsername' in cdOf({ method: 'REGISTER', headers: { Authorization: 'Basic Zm9vOmJhcg==' } }).vars).toBe(false);
    });
    test('given in the input, it is kept', () => {
      expect(cdOf({ method: 'REGISTER', authUsername: 'given', headers: { Authorization: creds('reg') } }).vars.authUsername).toBe('given');
    });
  });
});

describe('cseqMethod', () => {
  const expression = (cseq: string): string | undefined => cseq.trim().split(/\s+/)[1];

  test('reads the method as the expression it replaces, on chosen and on 20,000 random CSeq values', () => {
    const chosen = [
      '1 REGISTER',
      '1  REGISTER',
      ' 1 REGISTER',
      '1 REGISTER ',
      '1\tREGISTER',
      '1 REG ISTER',
      '1',
      '1 ',
      ' ',
      'REGISTER',
      '1\u00a0REGISTER',
      '1 RÉGISTER',
      '1 REGISTER\u3000x',
      '12345 INVITE',
    ];
    for (const c of chosen) expect([c, cseqMethod(c)]).toEqual([c, expression(c)]);
    const alphabet = ['1', '2', 'R', 'E', 'g', ' ', ' ', '\t', '\u00a0', '\u2028', 'é', '\n', '-'];
    let seed = 7;
    const next = (n: number) => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
    let differ = 0;
    let plain = 0;
    for (let i = 0; i < 20_000; i++) {
      let c = '';
      for (let k = next(12); k > 0; k--) c += alphabet[next(alphabet.length)];
      if (cseqMethod(c) !== expression(c)) differ++;
      if (/^[!-~]+ [!-~]+$/.test(c)) plain++;
    }
    expect(differ).toBe(0);
    // the mix holds values the fast path reads, not only the expression's
    expect(plain).toBeGreaterThan(100);
  });
});
