import { dedupe, MAX_BINDINGS_CONSIDERED } from '../../../services/location/dedupe';
import type { Binding } from '../../../services/location/types';
import { kamailioBinding } from './kamailio-binding';

const T = Date.parse('2026-12-04T10:00:00.000Z');
let n = 0;
/** A binding of francesco, as Kamailio writes one (no instance), `age` seconds old. */
function b(over: Partial<Binding> & { age?: number } = {}): Binding {
  const { age = 0, ...rest } = over;
  return kamailioBinding({
    ruid: `uloc-k-${++n}`,
    username: 'francesco',
    contact: 'sip:francesco@127.0.0.1:7000',
    expires: new Date(T - age * 1000 + 600_000),
    last_modified: new Date(T - age * 1000),
    ...rest,
  });
}

describe('dedupe: one binding per contact of an AoR', () => {
  test("Kamailio's duplicates (same contact, a new ruid per REGISTER): the newest kept, the others superseded", () => {
    const old = b({ age: 20, cseq: 1 });
    const mid = b({ age: 10, cseq: 2 });
    const newest = b({ age: 0, cseq: 3 });
    const d = dedupe([old, newest, mid]);
    expect(d.bindings).toEqual([newest]);
    expect(d.superseded.sort()).toEqual([old.ruid, mid.ruid].sort());
    expect(d.copied.size).toBe(0);
  });

  test('distinct contacts are all kept, in input order, nothing superseded', () => {
    const x = b({ contact: 'sip:francesco@127.0.0.1:7000' });
    const y = b({ contact: 'sip:francesco@127.0.0.1:7001' });
    expect(dedupe([x, y])).toEqual({ bindings: [x, y], superseded: [], copied: new Set(), dropped: 0 });
  });

  test('the contact string is compared exactly (usrloc): a different user part case is another contact', () => {
    expect(dedupe([b({ contact: 'sip:Francesco@h' }), b({ contact: 'sip:francesco@h' })]).bindings).toHaveLength(2);
  });

  test('RFC 5626 flows of one contact URI (same +sip.instance, reg-id 1 and 2) are two bindings; the same flow twice is one', () => {
    const inst = '<urn:uuid:00000000-0000-1000-8000-000A95A0E128>';
    const f1 = b({ instance: inst, reg_id: 1, age: 5 });
    const f2 = b({ instance: inst, reg_id: 2 });
    const f1again = b({ instance: inst, reg_id: 1, contact: 'sip:francesco@192.0.2.1:5060' });
    const d = dedupe([f1, f2, f1again]);
    expect(d.bindings).toEqual([f1again, f2]);
    expect(d.superseded).toEqual([f1.ruid]);
  });

  test('two records with one ruid (MongoDB without a unique index): one kept, its ruid marked copied, not superseded', () => {
    const a = b({ ruid: 'uloc-same', age: 5 });
    const a2 = b({ ruid: 'uloc-same' });
    const d = dedupe([a, a2]);
    expect(d.bindings).toEqual([a2]);
    expect(d.superseded).toEqual([]);
    expect([...d.copied]).toEqual(['uloc-same']);
  });

  test('a ruid whose every copy lost to a newer binding of the contact is superseded (all its copies may go)', () => {
    const a = b({ ruid: 'uloc-old', age: 10 });
    const a2 = b({ ruid: 'uloc-old', age: 9 });
    const c = b({ ruid: 'uloc-new' });
    const d = dedupe([a, a2, c]);
    expect(d.bindings).toEqual([c]);
    expect(d.superseded).toEqual(['uloc-old']);
    expect(d.copied.size).toBe(0);
  });

  test('ties: expires, then CSeq, then the greater ruid decide, the same way on every instance', () => {
    const x = b({ ruid: 'uloc-a', age: 0 });
    const y = b({ ruid: 'uloc-b', age: 0 });
    expect(dedupe([x, y]).bindings).toEqual([y]);
    expect(dedupe([y, x]).bindings).toEqual([y]);
    const later = b({ expires: new Date(T + 900_000) });
    expect(dedupe([later, b()]).bindings).toEqual([later]);
    const higher = b({ cseq: 9 });
    expect(dedupe([b(), higher]).bindings).toEqual([higher]);
  });

  test('records without a ruid (inserted by hand) are deduplicated by contact and never named for deletion', () => {
    const d = dedupe([b({ ruid: '', age: 3 }), b({ ruid: '' })]);
    expect(d.bindings).toHaveLength(1);
    expect(d.superseded).toEqual([]);
  });

  test(`bounded: 100,000 copies of one contact → the newest ${MAX_BINDINGS_CONSIDERED} considered, one kept`, () => {
    const many = Array.from({ length: 100_000 }, (_, i) => b({ age: i, cseq: 100_000 - i }));
    const t0 = performance.now();
    const d = dedupe(many);
    const ms = performance.now() - t0;
    expect(d.bindings).toEqual([many[0]]);
    expect(d.dropped).toBe(100_000 - MAX_BINDINGS_CONSIDERED);
    expect(d.superseded).toHaveLength(MAX_BINDINGS_CONSIDERED - 1);
    expect(d.superseded).not.toContain(many[MAX_BINDINGS_CONSIDERED].ruid); // the dropped ones are not looked at
    console.log(`dedupe of 100,000 copies of one contact: ${ms.toFixed(1)} ms`);
  });
});
