import { createHash } from 'node:crypto';
import { computeResponse, ha1, normalizeAlgorithm, responsesEqual, sessHa1 } from '../../../services/auth/digest';

const md5 = (s: string) => createHash('md5').update(s).digest('hex');
const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

// RFC 7616 §3.9.1
const RFC = {
  username: 'Mufasa',
  password: 'Circle of Life',
  realm: 'http-auth@example.org',
  nonce: '7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v',
  cnonce: 'f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ',
  nc: '00000001',
  qop: 'auth' as const,
  method: 'GET',
  uri: '/dir/index.html',
};

describe('digest computations', () => {
  it('reproduces the RFC 7616 §3.9.1 MD5 response', () => {
    const h = ha1('MD5', RFC.username, RFC.realm, RFC.password);
    expect(computeResponse({ algorithm: 'MD5', ha1: h, ...RFC })).toBe('8ca523f5e9506fed4657c9700eebdbec');
  });

  it('reproduces the RFC 7616 §3.9.1 SHA-256 response', () => {
    const h = ha1('SHA-256', RFC.username, RFC.realm, RFC.password);
    expect(computeResponse({ algorithm: 'SHA-256', ha1: h, ...RFC })).toBe('753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1');
  });

  it('reproduces the RFC 2617 §3.5 response', () => {
    const h = ha1('MD5', 'Mufasa', 'testrealm@host.com', 'Circle Of Life');
    expect(
      computeResponse({
        algorithm: 'MD5',
        ha1: h,
        nonce: 'dcd98b7102dd2f0e8b11d0f600bfb0c093',
        nc: '00000001',
        cnonce: '0a4f113b',
        qop: 'auth',
        method: 'GET',
        uri: '/dir/index.html',
      }),
    ).toBe('6629fae49393a05397450978507c4ef1');
  });

  it('HA1 is md5("username:realm:password"), as `echo -n user:realm:pw | md5sum`', () => {
    expect(ha1('MD5', 'alice', 'nl.netaxis.be', 's3cr3t')).toBe(md5('alice:nl.netaxis.be:s3cr3t'));
    // Fixed value from `echo -n user:realm:pw | md5sum`, independent of node:crypto.
    expect(ha1('MD5', 'user', 'realm', 'pw')).toBe('fa13f41f94e1fd29a1193553d0117491');
    expect(ha1('SHA-256', 'alice', 'nl.netaxis.be', 's3cr3t')).toBe(sha256('alice:nl.netaxis.be:s3cr3t'));
  });

  it('applies the -sess step: H(H(user:realm:pw):nonce:cnonce)', () => {
    const base = md5('bob:r:pw');
    expect(sessHa1('MD5-sess', base, 'N', 'C')).toBe(md5(`${base}:N:C`));
    const ha2 = md5('REGISTER:sip:r');
    const expected = md5(`${md5(`${base}:N:C`)}:N:00000001:C:auth:${ha2}`);
    expect(computeResponse({ algorithm: 'MD5-sess', ha1: base, nonce: 'N', nc: '00000001', cnonce: 'C', qop: 'auth', method: 'REGISTER', uri: 'sip:r' })).toBe(
      expected,
    );
    const sbase = sha256('bob:r:pw');
    expect(
      computeResponse({ algorithm: 'SHA-256-sess', ha1: sbase, nonce: 'N', nc: '00000001', cnonce: 'C', qop: 'auth', method: 'REGISTER', uri: 'sip:r' }),
    ).toBe(sha256(`${sha256(`${sbase}:N:C`)}:N:00000001:C:auth:${sha256('REGISTER:sip:r')}`));
  });

  it('gives the uncached HA2 whatever came before: same text under another algorithm, another URI, back again', () => {
    const hash = (alg: 'MD5' | 'SHA-256', text: string) => (alg === 'MD5' ? md5(text) : sha256(text));
    const sequence: Array<['MD5' | 'SHA-256', string, string]> = [
      ['MD5', 'REGISTER', 'sip:r'],
      ['MD5', 'REGISTER', 'sip:r'],
      ['SHA-256', 'REGISTER', 'sip:r'],
      ['MD5', 'REGISTER', 'sip:r'],
      ['MD5', 'INVITE', 'sip:r'],
      ['MD5', 'REGISTER', 'sip:other'],
      ['MD5', 'REGISTER', 'sip:r'],
    ];
    for (const [alg, method, uri] of sequence) {
      const h = hash(alg, 'bob:r:pw');
      const got = computeResponse({ algorithm: alg, ha1: h, nonce: 'N', nc: '00000001', cnonce: 'C', qop: 'auth', method, uri });
      expect(got).toBe(hash(alg, `${h}:N:00000001:C:auth:${hash(alg, `${method}:${uri}`)}`));
    }
  });

  it('without qop computes H(HA1:nonce:HA2) (RFC 2069)', () => {
    const h = md5('bob:r:pw');
    expect(computeResponse({ algorithm: 'MD5', ha1: h, nonce: 'N', method: 'INVITE', uri: 'sip:x@r' })).toBe(md5(`${h}:N:${md5('INVITE:sip:x@r')}`));
  });

  it('with qop=auth-int hashes the body into HA2', () => {
    const h = md5('bob:r:pw');
    const r = computeResponse({
      algorithm: 'MD5',
      ha1: h,
      nonce: 'N',
      nc: '00000001',
      cnonce: 'C',
      qop: 'auth-int',
      method: 'INVITE',
      uri: 'sip:x',
      body: 'v=0\r\n',
    });
    expect(r).toBe(md5(`${h}:N:00000001:C:auth-int:${md5(`INVITE:sip:x:${md5('v=0\r\n')}`)}`));
    const empty = computeResponse({ algorithm: 'MD5', ha1: h, nonce: 'N', nc: '00000001', cnonce: 'C', qop: 'auth-int', method: 'INVITE', uri: 'sip:x' });
    expect(empty).toBe(md5(`${h}:N:00000001:C:auth-int:${md5(`INVITE:sip:x:${md5('')}`)}`));
  });

  it('accepts an upper-case HA1', () => {
    const h = md5('bob:r:pw');
    const a = computeResponse({ algorithm: 'MD5', ha1: h, nonce: 'N', method: 'M', uri: 'u' });
    expect(computeResponse({ algorithm: 'MD5', ha1: h.toUpperCase(), nonce: 'N', method: 'M', uri: 'u' })).toBe(a);
  });

  it('throws on missing qop inputs (callers validate first)', () => {
    expect(() => computeResponse({ algorithm: 'MD5', ha1: 'x', nonce: 'N', qop: 'auth', method: 'M', uri: 'u' })).toThrow();
    expect(() => computeResponse({ algorithm: 'MD5-sess', ha1: 'x', nonce: 'N', method: 'M', uri: 'u' })).toThrow();
  });

  it('normalises algorithm names case-insensitively and rejects unknown ones', () => {
    expect(normalizeAlgorithm(undefined)).toBe('MD5');
    expect(normalizeAlgorithm('md5')).toBe('MD5');
    expect(normalizeAlgorithm('sha-256-SESS')).toBe('SHA-256-sess');
    expect(normalizeAlgorithm('SHA-512-256')).toBeNull();
    expect(normalizeAlgorithm('')).toBeNull();
  });

  it('compares responses case-insensitively and rejects different lengths', () => {
    expect(responsesEqual('abcdef', 'ABCDEF')).toBe(true);
    expect(responsesEqual('abcdef', 'abcdee')).toBe(false);
    expect(responsesEqual('abcdef', 'abcdef0')).toBe(false);
    expect(responsesEqual('abcdef', '')).toBe(false);
    // as toLowerCase and a byte compare answered: only A–F fold onto hex digits, nothing else does
    const hex = '0123456789abcdef0123456789abcdef';
    for (let at = 0; at < hex.length; at++) {
      for (const c of ['A', 'F', 'G', 'a', '@', '`', '\u212a', '\u0130', '\u00c1', '0']) {
        const received = hex.slice(0, at) + c + hex.slice(at + 1);
        const before = Buffer.from(received.toLowerCase(), 'utf8').equals(Buffer.from(hex, 'utf8'));
        expect([at, c, responsesEqual(hex, received)]).toEqual([at, c, before]);
      }
    }
  });
});
