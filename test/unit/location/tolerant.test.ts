import { Decimal128, Double, Int32, Long, ObjectId } from 'mongodb';
import { kamailioBinding } from './kamailio-binding';
import { limitNotes, MAX_FIELD_CHARS, readBinding, readBindings, recordName } from '../../../services/location/tolerant';

/** A document exactly as Kamailio 5.6's db_mongodb wrote it (test/integration/location/kamailio-written.test.ts): empty fields left out. */
const kamailioDoc = () => ({
  _id: new ObjectId('6b128d13ac3f2ea107082bb2'),
  username: 'francesco',
  contact: 'sip:francesco@127.0.0.1:7000',
  expires: new Date('2026-12-04T10:01:15.000Z'),
  q: new Double(-1),
  callid: 'c1',
  cseq: new Int32(1),
  flags: new Int32(0),
  cflags: new Int32(0),
  user_agent: 'n/a',
  socket: 'udp:127.0.0.1:5090',
  last_modified: new Date('2026-12-04T09:51:15.000Z'),
  ruid: 'uloc-6b128d08-527c-1',
  reg_id: new Int32(0),
  server_id: new Int32(0),
  connection_id: new Int32(-1),
  keepalive: new Int32(0),
  partition: new Int32(0),
});

describe('readBinding: records as other writers leave them', () => {
  test("Kamailio's db_mongodb document, empty fields left out: read, the missing ones null", () => {
    const r = readBinding(kamailioDoc());
    expect(r).toEqual({
      ok: true,
      // the fields Kamailio left out read as its own defaults: null, 0, -1
      binding: kamailioBinding({
        ruid: 'uloc-6b128d08-527c-1',
        username: 'francesco',
        contact: 'sip:francesco@127.0.0.1:7000',
        expires: new Date('2026-12-04T10:01:15.000Z'),
        last_modified: new Date('2026-12-04T09:51:15.000Z'),
      }),
    });
  });

  test("only username, contact and expires: Kamailio's defaults for everything else", () => {
    const r = readBinding({ username: 'u', contact: 'sip:u@h', expires: new Date(5000) });
    expect(r.ok && r.binding).toMatchObject({
      ruid: '',
      q: -1,
      cseq: 0,
      callid: '',
      user_agent: '',
      methods: null,
      connection_id: -1,
      reg_id: 0,
      last_modified: new Date(0),
    });
  });

  test('nulls everywhere the SQL schema allows and where it does not (a looser hand-made table)', () => {
    const row = { ...Object.fromEntries(Object.keys(kamailioDoc()).map((k) => [k, null])), username: 'u', contact: 'sip:u@h', expires: new Date(5000) };
    const r = readBinding(row);
    expect(r.ok).toBe(true);
    expect(r.ok && r.binding).toMatchObject({ domain: null, q: -1, flags: 0, socket: null, instance: null });
  });

  test('wrong but unambiguous types are coerced: numeric strings, Long, Decimal128, numbers as strings, seconds as expires, SQL float4 q', () => {
    const r = readBinding({
      username: 42,
      contact: 'sip:u@h',
      expires: 1_700_000_000, // usrloc expires_type = 1: seconds
      last_modified: '2024-02-22T08:49:06.000Z',
      q: 0.800000011920929,
      cseq: ' 7 ',
      flags: Long.fromNumber(3),
      cflags: Decimal128.fromString('64'),
      methods: '4831',
      reg_id: true,
      ruid: 12345,
    });
    expect(r.ok && r.binding).toMatchObject({
      username: '42',
      expires: new Date(1_700_000_000_000),
      last_modified: new Date('2024-02-22T08:49:06.000Z'),
      q: 0.8,
      cseq: 7,
      flags: 3,
      cflags: 64,
      methods: 4831,
      reg_id: 1,
      ruid: '12345',
    });
  });

  test('expires 0 and the epoch are kept (permanent, as usrloc)', () => {
    for (const expires of [0, new Date(0)]) {
      const r = readBinding({ username: 'u', contact: 'sip:u@h', expires });
      expect(r.ok && r.binding.expires.getTime()).toBe(0);
    }
  });

  test.each([
    ['no username', { contact: 'sip:u@h', expires: new Date() }],
    ['no contact', { username: 'u', expires: new Date() }],
    ['no contact', { username: 'u', contact: '', expires: new Date() }],
    ['no expires', { username: 'u', contact: 'sip:u@h' }],
    ['expires is not a date', { username: 'u', contact: 'sip:u@h', expires: 'soon' }],
    ['expires is not a date', { username: 'u', contact: 'sip:u@h', expires: new Date(NaN) }],
    ['contact is not a string', { username: 'u', contact: ['sip:u@h'], expires: new Date() }],
    ['cseq is not a number', { username: 'u', contact: 'sip:u@h', expires: new Date(), cseq: 'one' }],
    ['q is not a number', { username: 'u', contact: 'sip:u@h', expires: new Date(), q: { $gt: 1 } }],
    ['cseq is not a finite number', { username: 'u', contact: 'sip:u@h', expires: new Date(), cseq: Infinity }],
    ['username is not a string', { username: { $ne: null }, contact: 'sip:u@h', expires: new Date() }],
    [`contact is longer than ${MAX_FIELD_CHARS} characters`, { username: 'u', contact: 'x'.repeat(MAX_FIELD_CHARS + 1), expires: new Date() }],
    ['not a document', null],
    ['not a document', [1, 2]],
    ['not a document', 'text'],
  ])('skipped, never thrown: %s', (reason, raw) => {
    expect(readBinding(raw)).toEqual({ ok: false, reason });
  });

  test('a huge array in a field is refused without being turned into a string', () => {
    const huge: string[] = new Array(1_000_000).fill('sip:u@h');
    const stringified = () => {
      throw new Error('the array was turned into a string');
    };
    Object.assign(huge, { toString: stringified, join: stringified, [Symbol.toPrimitive]: stringified });
    expect(readBinding({ username: 'u', contact: 'sip:u@h', expires: new Date(), path: huge })).toEqual({ ok: false, reason: 'path is not a string' });
  });
});

describe('readBindings: one bad record does not hide the others', () => {
  test('garbage between good documents: the good ones read, one note per skipped one naming it', () => {
    const notes: string[] = [];
    const out = readBindings(
      [kamailioDoc(), { _id: new ObjectId('6b128d13ac3f2ea107082bb3'), username: 'francesco', contact: 42n }, { ...kamailioDoc(), ruid: 'uloc-2' }],
      'document',
      (m) => notes.push(m),
    );
    expect(out.map((b) => b.ruid)).toEqual(['uloc-6b128d08-527c-1', 'uloc-2']);
    expect(notes).toEqual(['skipped location document _id "6b128d13ac3f2ea107082bb3": no expires']);
  });

  test('the name in a note is quoted and cut: a hostile _id cannot forge a log line', () => {
    expect(recordName({ _id: 'a\nlevel=error msg=forged' })).toBe('_id "a\\nlevel=error msg=forged"');
    expect(recordName({ ruid: 'r'.repeat(500) })).toBe(`ruid "${'r'.repeat(64)}…"`);
    expect(recordName({})).toBe('(no _id, ruid or username)');
  });
});

describe('limitNotes', () => {
  test('at most N a minute, the rest counted in one line when the next minute starts', () => {
    let now = 0;
    const said: string[] = [];
    const note = limitNotes(
      (m) => said.push(m),
      2,
      () => now,
    );
    for (let i = 0; i < 5; i++) note(`n${i}`);
    expect(said).toEqual(['n0', 'n1']);
    now = 60_000;
    note('n5');
    expect(said).toEqual(['n0', 'n1', '3 more location notes in the last minute not logged', 'n5']);
  });
});
