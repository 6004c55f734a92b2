import { parseDigestCredentials } from '../../../services/auth/credentials';

const BASE = 'username="bob", realm="example.com", nonce="abc", uri="sip:example.com", response="0123"';

describe('parseDigestCredentials', () => {
  it('parses a typical SIP Authorization header', () => {
    const c = parseDigestCredentials(
      'Digest username="alice", realm="nl.netaxis.be", nonce="n0/+=", uri="sip:nl.netaxis.be", ' +
        'response="6629fae49393a05397450978507c4ef1", algorithm=MD5, cnonce="0a4f113b", nc=00000001, qop=auth, opaque="xyz"',
    );
    expect(c).toEqual({
      scheme: 'Digest',
      username: 'alice',
      realm: 'nl.netaxis.be',
      nonce: 'n0/+=',
      uri: 'sip:nl.netaxis.be',
      response: '6629fae49393a05397450978507c4ef1',
      algorithm: 'MD5',
      cnonce: '0a4f113b',
      nc: '00000001',
      qop: 'auth',
      opaque: 'xyz',
      params: {
        username: 'alice',
        realm: 'nl.netaxis.be',
        nonce: 'n0/+=',
        uri: 'sip:nl.netaxis.be',
        response: '6629fae49393a05397450978507c4ef1',
        algorithm: 'MD5',
        cnonce: '0a4f113b',
        nc: '00000001',
        qop: 'auth',
        opaque: 'xyz',
      },
    });
  });

  it('defaults algorithm to MD5 and leaves optional fields absent', () => {
    const c = parseDigestCredentials(`Digest ${BASE}`)!;
    expect(c.algorithm).toBe('MD5');
    expect(c.params.algorithm).toBeUndefined();
    expect('qop' in c).toBe(false);
    expect('nc' in c).toBe(false);
  });

  it('unescapes backslash escapes inside quoted strings', () => {
    const c = parseDigestCredentials(String.raw`Digest username="a\"b\\c\d", realm="r", nonce="n", uri="u", response="x"`)!;
    expect(c.username).toBe('a"b\\cd');
  });

  it('keeps commas and equals signs inside quoted strings', () => {
    const c = parseDigestCredentials('Digest username="a,b=c", realm="r", nonce="n", uri="sip:x;a=b,c", response="x"')!;
    expect(c.username).toBe('a,b=c');
    expect(c.uri).toBe('sip:x;a=b,c');
  });

  it('accepts a case-insensitive scheme and parameter names, lower-casing the names', () => {
    const c = parseDigestCredentials('dIgEsT UserName="bob", REALM="example.com", Nonce="abc", URI="u", Response="r", QOP=auth, NC=00000002, CNonce="c"')!;
    expect(c.scheme).toBe('Digest');
    expect(c.username).toBe('bob');
    expect(c.qop).toBe('auth');
    expect(c.nc).toBe('00000002');
    expect(Object.keys(c.params).sort()).toEqual(['cnonce', 'nc', 'nonce', 'qop', 'realm', 'response', 'uri', 'username']);
  });

  it('tolerates linear whitespace, folding and empty list elements', () => {
    const c = parseDigestCredentials('  Digest\tusername = "bob" ,\r\n realm="example.com",, nonce=  "abc"  ,uri="u",response="r" , ');
    expect(c).not.toBeNull();
    expect(c!.realm).toBe('example.com');
    expect(c!.nonce).toBe('abc');
  });

  it('accepts quoted tokens (qop="auth") and unquoted values', () => {
    const c = parseDigestCredentials('Digest username=bob, realm="r", nonce=abc/+=, uri="u", response=ff, qop="auth", algorithm=SHA-256')!;
    expect(c.username).toBe('bob');
    expect(c.nonce).toBe('abc/+=');
    expect(c.qop).toBe('auth');
    expect(c.algorithm).toBe('SHA-256');
  });

  it('rejects duplicate parameters, even with different case', () => {
    expect(parseDigestCredentials(`Digest ${BASE}, realm="other"`)).toBeNull();
    expect(parseDigestCredentials(`Digest ${BASE}, NC=00000001, nc=00000002`)).toBeNull();
  });

  it.each(['username', 'realm', 'nonce', 'uri', 'response'])('rejects credentials without %s', (name) => {
    const header =
      'Digest ' +
      BASE.split(', ')
        .filter((p) => !p.startsWith(name + '='))
        .join(', ');
    expect(parseDigestCredentials(`Digest ${BASE}`)).not.toBeNull();
    expect(parseDigestCredentials(header)).toBeNull();
  });

  it.each([
    ['empty', ''],
    ['other scheme', 'Basic dXNlcjpwYXNz'],
    ['scheme only', 'Digest'],
    ['scheme glued to params', `Digestusername="bob", realm="r", nonce="n", uri="u", response="x"`],
    ['unterminated quote', 'Digest username="bob, realm="r", nonce="n", uri="u", response="x'],
    ['dangling backslash', 'Digest username="bob", realm="r", nonce="n", uri="u", response="x\\'],
    ['missing separator', 'Digest username="bob" realm="r", nonce="n", uri="u", response="x"'],
    ['missing value', 'Digest username=, realm="r", nonce="n", uri="u", response="x"'],
    ['missing equals', 'Digest username "bob", realm="r", nonce="n", uri="u", response="x"'],
    ['bare comma garbage', 'Digest ,,,=,,,'],
    ['binary garbage', 'Digest \u0000\u00ff"=\\'],
    ['huge', 'Digest ' + BASE + ', x="' + 'a'.repeat(10000) + '"'],
  ])('returns null for %s', (_label, header) => {
    expect(parseDigestCredentials(header)).toBeNull();
  });

  it('never throws on non-string or random input', () => {
    expect(parseDigestCredentials(undefined as unknown as string)).toBeNull();
    expect(parseDigestCredentials(42 as unknown as string)).toBeNull();
    const alphabet = 'Digest ="\\,\t abc=';
    let seed = 7;
    for (let n = 0; n < 2000; n++) {
      let s = '';
      const len = n % 40;
      for (let i = 0; i < len; i++) {
        seed = (seed * 1103515245 + 12345) & 0x7fffffff;
        s += alphabet[seed % alphabet.length];
      }
      expect(() => parseDigestCredentials(s)).not.toThrow();
    }
  });
});
