/**
 * query.enum and query.ldap without a network: the pure parts (number → DNS name, NAPTR rule
 * choice and regexp safety, RFC 4515 / 4514 escaping, the filter check) and load-time validation.
 * The suites against dnsmasq and slapd are under test/integration/queries/.
 */
import { loadSlid } from '../../../engine/load';
import type { NaptrRecord } from '../../../engine/ports';
import { acceptableUri, applyNaptrRule, chooseNaptr, compileNaptrRegexp, enumDigits, enumDomain, type NaptrRule } from '../../../nodes/enum';
import { escapeDnValue, escapeFilterValue, filterProblem } from '../../../nodes/ldap';
import { compile, docOf, problemsOf, registry, reply, start } from './helpers';

const rule = (field: string): NaptrRule => {
  const r = compileNaptrRegexp(field);
  if (typeof r === 'string') throw new Error(r);
  return r;
};
const naptr = (order: number, preference: number, regexp: string, extra: Partial<NaptrRecord> = {}): NaptrRecord => ({
  order,
  preference,
  flags: 'U',
  service: 'E2U+sip',
  regexp,
  replacement: '',
  ...extra,
});
const SIP = new Set(['e2u+sip']);

describe('query.enum: the number and its DNS name', () => {
  test('digits only, one leading "+", visual separators dropped, at most 15 digits', () => {
    expect(enumDigits('+32 (2) 555-10.00')).toBe('3225551000');
    expect(enumDigits('3225551000')).toBe('3225551000');
    expect(enumDigits('1'.repeat(15))).toBe('1'.repeat(15));
    for (const bad of ['', '+', '1'.repeat(16), '++32', '32a', '1.evil.com', '32\u00002', '٣٢', '32\n2', '*', '32%2e']) expect(enumDigits(bad)).toBeNull();
  });
  test('reversed digits under the suffix (RFC 6116 §2.4)', () => {
    expect(enumDomain('3225551000', 'e164.arpa')).toBe('0.0.0.1.5.5.5.2.2.3.e164.arpa');
    expect(enumDomain('12', '.enum.example.net.')).toBe('2.1.enum.example.net');
  });
});

describe('query.enum: NAPTR regexp fields (RFC 3402 §3.2)', () => {
  test('the delimiter form, backreferences, escapes and the i flag', () => {
    expect(applyNaptrRule(rule('!^.*$!sip:info@example.com!'), '+3225551000')).toBe('sip:info@example.com');
    expect(applyNaptrRule(rule('!^\\+32(.*)$!sip:\\1@gw.example.com!'), '+3225551000')).toBe('sip:25551000@gw.example.com');
    expect(applyNaptrRule(rule('/^\\+(3)(2)(.*)$/sip:\\3\\2\\1\\\\@x/'), '+3299')).toBe('sip:9923\\@x');
    expect(applyNaptrRule(rule('#^\\+1#tel:+1#'), '+1555')).toBe('tel:+1');
    expect(applyNaptrRule(rule('!^\\+44!x!'), '+3225551000')).toBeNull();
    expect(rule('!^A$!x!i').regex.flags).toBe('i');
    expect(applyNaptrRule(rule('!^\\+([[:digit:]]{2})[[:digit:]]*$!sip:cc\\1@x!'), '+3225551000')).toBe('sip:cc32@x');
  });
  test.each([
    ['!^(\\+?[0-9]*)*$!x!', /quantified group/],
    ['!^(a|b)+$!x!', /quantified group/],
    ['!^(.)\\1$!x!', /backreference/],
    ['!^(?=1).*$!x!', /\(\?/],
    ['!^.*.*.*.*.*.*.*$!x!', /quantifiers/],
    ['!^(1|2|3|4|5|6|7|8)$!x!', /alternatives/],
    ['!^(.*$!x!', /unbalanced/],
    ['!^.*$!x', /delim/],
    ['!^.*$!x!g', /delim/],
    ['1^.*$1x1', /delimiter/],
    ['!^[!x!', /invalid ERE|delim/],
    ['!' + 'a'.repeat(300) + '!x!', /characters/],
  ])('%s is refused', (field, why) => {
    const r = compileNaptrRegexp(field);
    expect(typeof r).toBe('string');
    expect(r).toMatch(why);
  });
  test('results other than bounded sip:, sips: or tel: URIs are refused', () => {
    for (const ok of ['sip:alice@example.com', 'sips:alice@example.com:5061;transport=tls', 'tel:+3225551000', 'SIP:bob@[2001:db8::1]'])
      expect(acceptableUri(ok)).toBe(true);
    for (const bad of ['http://x/', 'sip:', 'sip:a b@x', 'sip:a@x\r\nVia: x', 'sip:<a@x>', 'tel:', 'mailto:a@x', 'sip:a@' + 'x'.repeat(300), 'sip:a@x"y']) {
      expect(acceptableUri(bad)).toBe(false);
    }
  });
});

describe('query.enum: which record (RFC 3403 §4.1)', () => {
  test('order, then preference, among accepted services with flag u; a later order is not considered once one was usable', () => {
    const records = [
      naptr(100, 20, '!^.*$!sip:b@x!'),
      naptr(100, 10, '!^.*$!sip:a@x!'),
      naptr(10, 10, '!^.*$!mailto:a@x!', { service: 'E2U+email' }),
      naptr(10, 5, '!^.*$!sip:p@x!', { flags: 'p' }),
      naptr(200, 1, '!^.*$!sip:z@x!'),
    ];
    expect(chooseNaptr(records, SIP, '+1')).toEqual({ uri: 'sip:a@x' });
    // a usable record of order 100 that does not match the number: order 200 is still not considered
    expect(chooseNaptr([naptr(100, 10, '!^\\+44!sip:uk@x!'), naptr(200, 1, '!^.*$!sip:z@x!')], SIP, '+1')).toBeNull();
    // an unusable record (hostile regexp) does not close its order
    expect(chooseNaptr([naptr(100, 10, '!^(.*)*$!sip:evil@x!'), naptr(200, 1, '!^.*$!sip:z@x!')], SIP, '+1')).toEqual({ uri: 'sip:z@x' });
  });
  test('a non-terminal record names the next domain; an invalid replacement is ignored', () => {
    expect(chooseNaptr([naptr(1, 1, '', { flags: '', replacement: 'next.e164.arpa' })], SIP, '+1')).toEqual({ next: 'next.e164.arpa' });
    expect(chooseNaptr([naptr(1, 1, '', { flags: '', replacement: 'bad name..x' })], SIP, '+1')).toBeNull();
  });
});

describe('query.ldap: escaping', () => {
  test('filter values per RFC 4515 §3', () => {
    expect(escapeFilterValue('*)(uid=*')).toBe('\\2a\\29\\28uid=\\2a');
    expect(escapeFilterValue('a\\b\u0000')).toBe('a\\5cb\\00');
    expect(escapeFilterValue('Zoë 32')).toBe('Zoë 32');
  });
  test('DN values per RFC 4514 §2.4', () => {
    expect(escapeDnValue('bob,ou=x+cn=y')).toBe('bob\\,ou\\=x\\+cn\\=y');
    expect(escapeDnValue(' #a ')).toBe('\\ #a\\ ');
    expect(escapeDnValue('#a')).toBe('\\#a');
    expect(escapeDnValue('a"<>;\\')).toBe('a\\"\\<\\>\\;\\\\');
  });
  test('the filter template must be one parenthesised filter', () => {
    expect(filterProblem('(uid=[fromUsername])')).toBeNull();
    expect(filterProblem('(&(objectClass=person)(|(uid=[a])(mail=[b])))')).toBeNull();
    expect(filterProblem('(cn=a\\29b)')).toBeNull();
    expect(filterProblem('uid=[x]')).toMatch(/parenthesised/);
    expect(filterProblem('(uid=x')).toMatch(/parenthesised|unbalanced/);
    expect(filterProblem('(&(uid=x)')).toMatch(/unbalanced/);
    expect(filterProblem('(uid=x)(cn=y)')).toMatch(/after the filter/);
  });
});

describe('load-time validation', () => {
  const problems = (type: string, values: Record<string, unknown>) =>
    problemsOf(loadSlid(docOf([start(1), [1, type, values], reply(2, 200)]), 't.slid', registry)).filter((p) => p.includes('error') || p.includes('values'));
  test('query.ldap: a broken filter is a located error', () => {
    const p = problems('query.ldap', { base: 'dc=x', filter: '(uid=[fromUsername]', attributes: [{ attribute: 'cn', variable: 'name' }], ifFound: 2 });
    expect(p.join('\n')).toMatch(/node 1 "n1" › values\/filter: .*unbalanced|values\/filter: must be/);
  });
  test('query.ldap: a bad attribute name, query.enum: a bad suffix or timeout are located errors', () => {
    expect(problems('query.ldap', { base: 'dc=x', filter: '(uid=x)', attributes: [{ attribute: 'c n', variable: 'name' }] }).join('\n')).toMatch(
      /values\/attributes\/0\/attribute/,
    );
    expect(problems('query.enum', { number: 'called', storeInto: 'target', suffix: 'e164.arpa;rm -rf' }).join('\n')).toMatch(/values\/suffix/);
    expect(problems('query.enum', { number: 'called', storeInto: 'target', timeoutMs: 0 }).join('\n')).toMatch(/values\/timeoutMs/);
  });
  test('the variables the nodes write are known to the logic', () => {
    const r = loadSlid(
      docOf([
        start(1),
        [1, 'query.enum', { number: 'called', storeInto: 'target', ifFound: 2 }],
        [2, 'query.ldap', { base: 'dc=x', filter: '(uid=x)', attributes: [{ attribute: 'cn', variable: 'name' }], ifFound: 3 }],
        [3, 'output.reply', { code: 200, reason: '[target] [enumStatus] [name] [ldapStatus]' }],
      ]),
      't.slid',
      registry,
    );
    expect(r.problems.filter((p) => p.severity === 'error')).toEqual([]);
  });
  test('query.ldap: a variable read from a password attribute is a secret (redacted in API answers and CLI output)', () => {
    const service = compile(
      docOf([
        start(1),
        [
          1,
          'query.ldap',
          {
            base: 'dc=x',
            filter: '(uid=x)',
            attributes: [
              { attribute: 'userPassword', variable: 'pw' },
              { attribute: 'cn', variable: 'name' },
            ],
            ifFound: 2,
          },
        ],
        reply(2, 200),
      ]),
    );
    expect([...(service.secrets ?? [])]).toEqual(['pw']);
  });
});
