/**
 * grammar/aor.ts against the regular expressions it replaced (nodes/lookup-location.ts aorParts and
 * services/directory/ownership.ts parseOwnedAor read AoRs this way before): the same answer on the
 * forms operators write and on random strings of the characters that matter.
 */
import { aorText } from '../../grammar/aor';
import { aorParts } from '../../nodes/lookup-location';
import { parseOwnedAor } from '../../services/directory/ownership';

/** The former reading, verbatim. */
function reference(v: string): [string | null, string | null] {
  let s = v.trim();
  s = s.replace(/^<|>$/g, '').replace(/^sips?:/i, '');
  const at = s.lastIndexOf('@');
  if (at < 0) return [s || null, null];
  return [s.slice(0, at) || null, s.slice(at + 1).split(/[;:>]/)[0] || null];
}

describe('aorText', () => {
  test.each([
    ['francesco@nl.netaxis.be', ['francesco', 'nl.netaxis.be']],
    ['sip:alice@example.test', ['alice', 'example.test']],
    ['<sips:bob@x.test;transport=tls>', ['bob', 'x.test']],
    ['SIP:carol@example.test:5060', ['carol', 'example.test']],
    ['  dave  ', ['dave', null]],
    ['sip:', [null, null]],
    ['sips:', [null, null]],
    ['<>', [null, null]],
    ['', [null, null]],
    ['@x.test', [null, 'x.test']],
    ['a@b@c.test', ['a@b', 'c.test']],
    ['sipx:e@f', ['sipx:e', 'f']],
    ['tel:+3210@x', ['tel:+3210', 'x']],
  ] as const)('%j', (input, expected) => {
    expect(aorText(input)).toEqual(expected);
    expect(reference(input)).toEqual(expected);
  });

  test('answers as the former regular expressions on 50,000 random strings of <, >, s, i, p, :, @, ;, spaces and letters', () => {
    const alphabet = ['<', '>', 's', 'S', 'i', 'I', 'p', 'P', ':', '@', ';', ' ', '\t', 'a', 'x', '.', '5'];
    let seed = 42;
    const next = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    let differ = 0;
    for (let i = 0; i < 50_000; i++) {
      let s = '';
      const len = next(12);
      for (let j = 0; j < len; j++) s += alphabet[next(alphabet.length)];
      // half of them start like a URI, where the cases are
      if (i % 2) s = ['<sip:', 'sips:', 'SIP:', '<', 'sIpS:'][next(5)] + s;
      if (JSON.stringify(aorText(s)) !== JSON.stringify(reference(s))) differ++;
    }
    expect(differ).toBe(0);
  });

  test('the nodes and the ownership rule read with it', () => {
    expect(aorParts('<sip:alice@example.test>')).toEqual(['alice', 'example.test']);
    expect(aorParts(null)).toEqual([null, null]);
    expect(aorParts([{ aor: 'a@b' }])).toEqual([null, null]);
    expect(parseOwnedAor('sip:alice@example.test;x=1')).toEqual({ user: 'alice', domain: 'example.test' });
    expect(parseOwnedAor('@example.test')).toBeNull();
  });
});
