import { createMemoryLocationStore } from '../../../services/location/memory';
import { bindingView } from '../../../engine/types';
import { createRegistrar, type RegistrarOptions } from '../../../services/location/registrar';
import { LocationUnavailableError, type Binding, type LocationStore, type RegisterRequest } from '../../../services/location/types';
import { kamailioBinding } from './kamailio-binding';

const T0 = new Date('2019-01-09T16:31:17.000Z');
const at = (s: number) => new Date(T0.getTime() + s * 1000);

/** The note's sample REGISTER (section 2), as the save node hands it over. */
function req(over: Partial<RegisterRequest> = {}): RegisterRequest {
  return {
    username: 'john',
    domain: 'netaxis.be',
    contacts: ['<sip:john@10.0.9.166:5060;rinstance=21ba7bb0142bc22f>'],
    expiresHeader: '3600',
    callId: '92984MGM3ZmY0Nzk5MmRkNmM2MmVlNjU2YjkzOTZiOWRkZjE',
    cseq: 1,
    userAgent: 'X-Lite release 5.3.3 stamp 92984',
    received: '10.0.9.166:5060',
    socket: 'udp:10.0.12.26:5060',
    path: null,
    now: T0,
    ...over,
  };
}

function setup(opts: RegistrarOptions = {}) {
  const store = createMemoryLocationStore();
  return { store, reg: createRegistrar(store, { ruidPrefix: 'uloc-test-1', ...opts }) };
}

const contactsOf = (bs: Binding[]) => bs.map((b) => b.contact).sort();

describe("registrar: the note's sample REGISTER", () => {
  it('stores the binding Kamailio stored (db.location.find() sample), field by field', async () => {
    const { store, reg } = setup();
    const now = new Date('2019-01-09T16:31:17.420Z');
    const res = await reg.register(
      req({
        now,
        allow: 'SUBSCRIBE, NOTIFY, INVITE, ACK, CANCEL, BYE, REFER, INFO, OPTIONS',
      }),
    );
    expect(res.status).toBe(200);
    const [b] = await store.find('john', null);
    const { ruid, expires, last_modified, ...rest } = b;
    expect(rest).toEqual({
      username: 'john',
      domain: null,
      contact: 'sip:john@10.0.9.166:5060;rinstance=21ba7bb0142bc22f',
      q: -1,
      callid: '92984MGM3ZmY0Nzk5MmRkNmM2MmVlNjU2YjkzOTZiOWRkZjE',
      cseq: 1,
      flags: 0,
      cflags: 0,
      user_agent: 'X-Lite release 5.3.3 stamp 92984',
      received: null,
      path: null,
      socket: 'udp:10.0.12.26:5060',
      methods: 4831,
      instance: null,
      reg_id: 0,
      server_id: 0,
      connection_id: -1,
      keepalive: 0,
      partition: 0,
    });
    expect(ruid).toMatch(/^uloc-test-1-\d+$/);
    // whole seconds like usrloc: last_modified = now (truncated), expires one hour later
    expect(last_modified.toISOString()).toBe('2019-01-09T16:31:17.000Z');
    expect(expires.getTime() - last_modified.getTime()).toBe(3600_000);
    expect(res.bindings).toEqual([b]);
    expect(bindingView(res.bindings[0], now)).toEqual({
      contact: 'sip:john@10.0.9.166:5060;rinstance=21ba7bb0142bc22f',
      expires: 3600,
      q: -1,
    });
  });

  it('stores methods as null without an Allow header', async () => {
    const { store, reg } = setup();
    await reg.register(req());
    expect((await store.find('john', null))[0].methods).toBeNull();
  });

  it('stores received as sip:ip:port when the source differs from the contact (NAT)', async () => {
    const { store, reg } = setup();
    await reg.register(req({ received: '81.2.3.4:40123' }));
    expect((await store.find('john', null))[0].received).toBe('sip:81.2.3.4:40123');
  });

  it('accepts the source already written as a sip: URI, IPv6 included', async () => {
    const { store, reg } = setup();
    await reg.register(req({ received: 'sip:10.0.9.166:5060' }));
    await reg.register(req({ callId: 'v6', contacts: ['<sip:john@[2001:DB8::1]:5070>'], received: 'sip:[2001:db8::1]:5070' }));
    await reg.register(req({ callId: 'nat', contacts: ['<sip:john@192.168.1.2>'], received: 'sip:81.2.3.4:5060' }));
    const rec = (await store.find('john', null)).map((b) => [b.contact, b.received]).sort();
    expect(rec).toEqual([
      ['sip:john@10.0.9.166:5060;rinstance=21ba7bb0142bc22f', null],
      ['sip:john@192.168.1.2', 'sip:81.2.3.4:5060'],
      ['sip:john@[2001:DB8::1]:5070', null],
    ]);
  });

  it('treats a contact without port as port 5060 for the NAT check', async () => {
    const { store, reg } = setup();
    await reg.register(req({ contacts: ['<sip:john@10.0.9.166>'] }));
    expect((await store.find('john', null))[0].received).toBeNull();
  });

  it('stores the domain only in multi-domain mode', async () => {
    const { store, reg } = setup({ multiDomain: true });
    await reg.register(req());
    expect(await store.find('john', null)).toEqual([]);
    expect((await store.find('john', 'netaxis.be'))[0].domain).toBe('netaxis.be');
    expect(await reg.lookup('john', 'netaxis.be', T0)).toHaveLength(1);
    expect(await reg.lookup('john', 'other.be', T0)).toHaveLength(0);
  });

  it('takes instance and reg-id from the contact', async () => {
    const { store, reg } = setup();
    await reg.register(req({ contacts: ['<sip:john@1.2.3.4;ob>;+sip.instance="<urn:uuid:abc>";reg-id=1'] }));
    const [b] = await store.find('john', null);
    expect([b.instance, b.reg_id]).toEqual(['<urn:uuid:abc>', 1]);
  });
});

describe('registrar: add, refresh, remove', () => {
  it('adds a binding that lookup returns', async () => {
    const { reg } = setup();
    await reg.register(req());
    const found = await reg.lookup('john', null, at(10));
    expect(found.map((b) => b.contact)).toEqual(['sip:john@10.0.9.166:5060;rinstance=21ba7bb0142bc22f']);
  });

  it('refreshes in place: same ruid, new expiry and CSeq', async () => {
    const { store, reg } = setup();
    await reg.register(req());
    const [before] = await store.find('john', null);
    const res = await reg.register(req({ cseq: 2, now: at(1800) }));
    expect(res.status).toBe(200);
    const all = await store.find('john', null);
    expect(all).toHaveLength(1);
    expect(all[0].ruid).toBe(before.ruid);
    expect(all[0].cseq).toBe(2);
    expect(all[0].expires.getTime()).toBe(at(1800 + 3600).getTime());
  });

  it('removes one contact with expires=0 in the contact, leaving the others', async () => {
    const { store, reg } = setup();
    await reg.register(req({ contacts: ['<sip:john@a>, <sip:john@b>'] }));
    const res = await reg.register(req({ cseq: 2, contacts: ['<sip:john@a>;expires=0'] }));
    expect(res.status).toBe(200);
    expect(contactsOf(res.bindings)).toEqual(['sip:john@b']);
    expect(contactsOf(await store.find('john', null))).toEqual(['sip:john@b']);
  });

  it('removes with an Expires: 0 header', async () => {
    const { store, reg } = setup();
    await reg.register(req());
    const res = await reg.register(req({ cseq: 2, expiresHeader: '0' }));
    expect(res.status).toBe(200);
    expect(res.bindings).toEqual([]);
    expect(await store.find('john', null)).toEqual([]);
  });

  it('removing an unknown contact is a no-op 200', async () => {
    const { store, reg } = setup();
    await reg.register(req());
    const res = await reg.register(req({ cseq: 2, contacts: ['<sip:john@elsewhere>;expires=0'] }));
    expect(res.status).toBe(200);
    expect(res.bindings).toHaveLength(1);
    expect(await store.find('john', null)).toHaveLength(1);
  });

  it('accepts several contacts in one header and in several headers', async () => {
    const { reg } = setup();
    const res = await reg.register(
      req({
        contacts: ['<sip:john@a>, "J" <sip:john@b>;q=0.5', 'sip:john@c'],
      }),
    );
    expect(res.status).toBe(200);
    expect(contactsOf(res.bindings)).toEqual(['sip:john@a', 'sip:john@b', 'sip:john@c']);
  });

  it('lists every live binding of the AoR in the 200, including other Call-IDs', async () => {
    const { reg } = setup();
    await reg.register(req({ contacts: ['<sip:john@a>'], callId: 'one' }));
    const res = await reg.register(req({ contacts: ['<sip:john@b>'], callId: 'two' }));
    expect(contactsOf(res.bindings)).toEqual(['sip:john@a', 'sip:john@b']);
  });

  it('answers a query (no Contact) with the current bindings and changes nothing', async () => {
    const { store, reg } = setup();
    await reg.register(req());
    const res = await reg.register(req({ contacts: [], cseq: 2 }));
    expect(res.status).toBe(200);
    expect(res.bindings).toHaveLength(1);
    expect((await store.find('john', null))[0].cseq).toBe(1);
  });

  it('matches an existing binding per RFC 3261 URI equality (host case-insensitive)', async () => {
    const { store, reg } = setup();
    await reg.register(req({ contacts: ['<sip:john@Host.example:5060>'] }));
    await reg.register(req({ cseq: 2, contacts: ['<sip:john@host.EXAMPLE:5060>'] }));
    expect(await store.find('john', null)).toHaveLength(1);
    await reg.register(req({ cseq: 3, contacts: ['<sip:john@host.example>'] })); // no port ≠ :5060
    expect(await store.find('john', null)).toHaveLength(2);
  });

  it('identifies outbound bindings by +sip.instance and reg-id (RFC 5626)', async () => {
    const { store, reg } = setup();
    const inst = '+sip.instance="<urn:uuid:1>"';
    await reg.register(req({ contacts: [`<sip:john@1.1.1.1>;${inst};reg-id=1`] }));
    await reg.register(req({ cseq: 2, contacts: [`<sip:john@2.2.2.2>;${inst};reg-id=1`] }));
    expect(contactsOf(await store.find('john', null))).toEqual(['sip:john@2.2.2.2']);
    await reg.register(req({ cseq: 3, contacts: [`<sip:john@2.2.2.2>;${inst};reg-id=2`] }));
    expect(await store.find('john', null)).toHaveLength(2);
  });
});

describe('registrar: fresh bindings (the store may insert without looking)', () => {
  function recording() {
    const inner = createMemoryLocationStore();
    const writes: Array<[string, boolean | undefined]> = [];
    const store: LocationStore = { ...inner, upsert: (b, fresh) => (writes.push([b.contact, fresh]), inner.upsert(b, fresh)) };
    return { writes, reg: createRegistrar(store, { ruidPrefix: 'uloc-test-1' }) };
  }

  it('a new contact is written fresh, its refresh is not, and a second contact is fresh again', async () => {
    const { writes, reg } = recording();
    const first = 'sip:john@10.0.9.166:5060;rinstance=21ba7bb0142bc22f';
    await reg.register(req());
    await reg.register(req({ cseq: 2, now: at(60) }));
    await reg.register(req({ cseq: 3, now: at(120), contacts: ['<sip:john@10.0.9.167:5062>'] }));
    expect(writes).toEqual([
      [first, true],
      [first, false],
      ['sip:john@10.0.9.167:5062', true],
    ]);
  });
});

describe('registrar: Contact: *', () => {
  it('with Expires: 0 removes all bindings of the AoR', async () => {
    const { store, reg } = setup();
    await reg.register(req({ contacts: ['<sip:john@a>, <sip:john@b>'], callId: 'x' }));
    await reg.register(req({ contacts: ['<sip:john@c>'], callId: 'y' }));
    await reg.register(req({ username: 'jane', contacts: ['<sip:jane@a>'] }));
    const res = await reg.register(req({ contacts: ['*'], expiresHeader: '0', callId: 'z' }));
    expect(res).toEqual({ status: 200, reason: 'OK', bindings: [] });
    expect(await store.find('john', null)).toEqual([]);
    expect(await store.find('jane', null)).toHaveLength(1);
  });

  it.each([['3600'], [null], ['abc']])('with Expires %p → 400, nothing removed', async (exp) => {
    const { store, reg } = setup();
    await reg.register(req());
    const res = await reg.register(req({ contacts: ['*'], expiresHeader: exp, cseq: 2 }));
    expect(res.status).toBe(400);
    expect(await store.find('john', null)).toHaveLength(1);
  });

  it.each([[['*, <sip:john@a>']], [['<sip:john@a>', '*']]])('with other contacts %p → 400', async (contacts) => {
    const { store, reg } = setup();
    await reg.register(req());
    const res = await reg.register(req({ contacts, expiresHeader: '0', cseq: 2 }));
    expect(res.status).toBe(400);
    expect(await store.find('john', null)).toHaveLength(1);
  });

  it('obeys the Call-ID/CSeq rule too', async () => {
    const { store, reg } = setup();
    await reg.register(req({ cseq: 5 }));
    const res = await reg.register(req({ contacts: ['*'], expiresHeader: '0', cseq: 5 }));
    expect(res.status).toBe(400);
    expect(await store.find('john', null)).toHaveLength(1);
  });
});

describe('registrar: expiry policy', () => {
  const expiryOf = async (r: Partial<RegisterRequest>, opts: RegistrarOptions = {}) => {
    const { reg } = setup(opts);
    const res = await reg.register(req(r));
    return { res, secs: res.bindings.map((b) => bindingView(b, T0).expires) };
  };

  it('contact param beats the Expires header, which beats the default', async () => {
    expect((await expiryOf({ contacts: ['<sip:john@a>;expires=120'], expiresHeader: '600' })).secs).toEqual([120]);
    expect((await expiryOf({ contacts: ['<sip:john@a>'], expiresHeader: '600' })).secs).toEqual([600]);
    expect((await expiryOf({ contacts: ['<sip:john@a>'], expiresHeader: null }, { defaultExpires: 900 })).secs).toEqual([900]);
  });

  it('a malformed value falls back to the default (RFC 3261 §10.3 step 6, Kamailio)', async () => {
    const opts = { defaultExpires: 900 };
    expect((await expiryOf({ contacts: ['<sip:john@a>;expires=soon'], expiresHeader: '600' }, opts)).secs).toEqual([900]);
    expect((await expiryOf({ contacts: ['<sip:john@a>'], expiresHeader: 'later' }, opts)).secs).toEqual([900]);
  });

  it('clamps to maxExpires', async () => {
    expect((await expiryOf({ expiresHeader: '999999' }, { maxExpires: 7200 })).secs).toEqual([7200]);
  });

  it('answers 423 with Min-Expires below minExpires and stores nothing', async () => {
    const { store, reg } = setup({ minExpires: 60 });
    const res = await reg.register(req({ contacts: ['<sip:john@a>', '<sip:john@b>;expires=30'] }));
    expect(res).toEqual({ status: 423, reason: 'Interval Too Brief', headers: { 'Min-Expires': '60' }, bindings: [] });
    expect(await store.find('john', null)).toEqual([]);
  });

  it('raises to minExpires instead when rejectBelowMin is false', async () => {
    expect((await expiryOf({ expiresHeader: '30' }, { minExpires: 60, rejectBelowMin: false })).secs).toEqual([60]);
  });

  it('accepts exactly minExpires', async () => {
    expect((await expiryOf({ expiresHeader: '60' }, { minExpires: 60 })).res.status).toBe(200);
  });
});

describe('registrar: Call-ID / CSeq ordering', () => {
  it.each([[5], [4]])('same Call-ID with CSeq %p ≤ stored 5 → 400 Out of order, unchanged', async (cseq) => {
    const { store, reg } = setup();
    await reg.register(req({ cseq: 5 }));
    const res = await reg.register(req({ cseq, expiresHeader: '120' }));
    expect(res).toEqual({ status: 400, reason: 'Out of order', bindings: [] });
    const [b] = await store.find('john', null);
    expect([b.cseq, bindingView(b, T0).expires]).toEqual([5, 3600]);
  });

  it('same Call-ID with a higher CSeq updates', async () => {
    const { reg } = setup();
    await reg.register(req({ cseq: 5 }));
    expect((await reg.register(req({ cseq: 6 }))).status).toBe(200);
  });

  it('another Call-ID replaces the binding whatever its CSeq', async () => {
    const { store, reg } = setup();
    await reg.register(req({ cseq: 5 }));
    const [before] = await store.find('john', null);
    const res = await reg.register(req({ callId: 'rebooted', cseq: 1 }));
    expect(res.status).toBe(200);
    const all = await store.find('john', null);
    expect(all).toHaveLength(1);
    expect([all[0].ruid, all[0].callid, all[0].cseq]).toEqual([before.ruid, 'rebooted', 1]);
  });

  it('an out-of-order removal is refused too', async () => {
    const { store, reg } = setup();
    await reg.register(req({ cseq: 5 }));
    expect((await reg.register(req({ cseq: 3, expiresHeader: '0' }))).status).toBe(400);
    expect(await store.find('john', null)).toHaveLength(1);
  });
});

describe('registrar: limits and validation', () => {
  it('refuses a new binding beyond maxContacts with 403, but still refreshes', async () => {
    const { store, reg } = setup({ maxContacts: 2 });
    expect((await reg.register(req({ contacts: ['<sip:john@a>, <sip:john@b>'] }))).status).toBe(200);
    const res = await reg.register(req({ cseq: 2, contacts: ['<sip:john@c>'] }));
    expect(res).toEqual({ status: 403, reason: 'Too Many Registered Contacts', bindings: [] });
    expect(contactsOf(await store.find('john', null))).toEqual(['sip:john@a', 'sip:john@b']);
    expect((await reg.register(req({ cseq: 3, contacts: ['<sip:john@a>, <sip:john@b>'] }))).status).toBe(200);
    // swapping one for another in a single request stays within the limit
    expect((await reg.register(req({ cseq: 4, contacts: ['<sip:john@a>;expires=0, <sip:john@c>'] }))).status).toBe(200);
    expect(contactsOf(await store.find('john', null))).toEqual(['sip:john@b', 'sip:john@c']);
  });

  it('serializes concurrent REGISTERs of one AoR (maxContacts holds under concurrency)', async () => {
    const { store, reg } = setup({ maxContacts: 1 });
    const results = await Promise.all([
      reg.register(req({ callId: 'p', contacts: ['<sip:john@a>'] })),
      reg.register(req({ callId: 'q', contacts: ['<sip:john@b>'] })),
    ]);
    expect(results.map((r) => r.status).sort()).toEqual([200, 403]);
    expect(await store.find('john', null)).toHaveLength(1);
  });

  it('rejects a malformed contact with 400 naming it', async () => {
    const { store, reg } = setup();
    const res = await reg.register(req({ contacts: ['<sip:john@a>, <sip:john@b'] }));
    expect(res.status).toBe(400);
    expect(res.reason).toContain('<sip:john@b');
    expect(await store.find('john', null)).toEqual([]);
  });

  it('rejects a q outside 0..1 with 400', async () => {
    const { reg } = setup();
    const res = await reg.register(req({ contacts: ['<sip:john@a>;q=1.5'] }));
    expect(res.status).toBe(400);
    expect(res.reason).toContain('sip:john@a');
  });

  describe('values wider than their usrloc column (services/location/widths.ts)', () => {
    const long = (n: number) => 'a'.repeat(n);
    it.each<[string, Partial<RegisterRequest>, string]>([
      ['a Contact over 512 characters', { contacts: [`<sip:john@10.0.0.1;x=${long(500)}>`] }, 'Contact too long (at most 512 characters)'],
      [
        'a +sip.instance over 255',
        { contacts: [`<sip:john@10.0.0.1>;+sip.instance="<urn:uuid:${long(260)}>"`] },
        '+sip.instance too long (at most 255 characters)',
      ],
      ['a Call-ID over 255', { callId: long(256) }, 'Call-ID too long (at most 255 characters)'],
      ['a Path over 512', { path: `<sip:${long(520)}@proxy;lr>` }, 'Path too long (at most 512 characters)'],
      ['a username over 64', { username: long(65) }, 'Address of Record too long (at most 64 characters)'],
      ['a Call-ID holding a NUL', { callId: 'abc\0def' }, 'Call-ID holds a NUL character'],
      ['a User-Agent holding a NUL (PostgreSQL text cannot hold one)', { userAgent: 'phone\0' }, 'User-Agent holds a NUL character'],
    ])('%s: 400 naming it, nothing stored, the value not echoed', async (_, over, reason) => {
      const { store, reg } = setup();
      const username = over.username ?? 'john';
      expect(await reg.register(req(over))).toEqual({ status: 400, reason, bindings: [] });
      expect(await store.find(username, null)).toEqual([]);
    });

    it('a domain over 64 in multi-domain mode: 400; in single-domain mode the domain is not stored and does not count', async () => {
      const domain = `${long(60)}.example`;
      expect((await setup({ multiDomain: true }).reg.register(req({ domain }))).reason).toBe('Address of Record too long (at most 64 characters)');
      expect((await setup().reg.register(req({ domain }))).status).toBe(200);
    });

    it('exactly the width is stored; the width counts characters, not UTF-16 units', async () => {
      const { store, reg } = setup();
      const prefix = 'sip:john@10.0.0.1;x=';
      const contact = prefix + long(512 - prefix.length);
      const instance = `<urn:${'😀'.repeat(255 - 6)}>`; // 255 characters, 504 UTF-16 units; stored unquoted
      expect((await reg.register(req({ contacts: [`<${contact}>;+sip.instance="${instance}"`], callId: long(255) }))).status).toBe(200);
      expect((await store.find('john', null)).map((b) => [b.contact, b.callid, b.instance])).toEqual([[contact, long(255), instance]]);
      expect((await reg.register(req({ contacts: [`<${contact}a>`], callId: 'other' }))).status).toBe(400);
    });

    it('a User-Agent over 255 is cut to 255 characters (as Kamailio does), never inside a surrogate pair', async () => {
      const { store, reg } = setup();
      const ua = long(254) + '😀' + long(10);
      expect((await reg.register(req({ userAgent: ua }))).status).toBe(200);
      const [b] = await store.find('john', null);
      expect(b.user_agent).toBe(long(254) + '😀');
      expect((await reg.register(req({ userAgent: long(253) + '😀😀', cseq: 2 }))).status).toBe(200);
      expect((await store.find('john', null))[0].user_agent).toBe(long(253) + '😀😀');
    });
  });

  it('stores q as given, -1 when absent', async () => {
    const { reg } = setup();
    const res = await reg.register(req({ contacts: ['<sip:john@a>;q=0.7, <sip:john@b>'] }));
    expect(res.bindings.map((b) => [b.contact, b.q])).toEqual([
      ['sip:john@b', -1],
      ['sip:john@a', 0.7],
    ]);
  });
});

describe('registrar: expiry and lookup', () => {
  it('never returns expired bindings from lookup or in the 200', async () => {
    const { reg } = setup();
    await reg.register(req({ contacts: ['<sip:john@short>'], expiresHeader: '60', callId: 'a' }));
    await reg.register(req({ contacts: ['<sip:john@long>'], expiresHeader: '3600', callId: 'b' }));
    expect(contactsOf(await reg.lookup('john', null, at(59)))).toEqual(['sip:john@long', 'sip:john@short']);
    expect(contactsOf(await reg.lookup('john', null, at(60)))).toEqual(['sip:john@long']);
    const res = await reg.register(req({ contacts: ['<sip:john@new>'], callId: 'c', now: at(61) }));
    expect(contactsOf(res.bindings)).toEqual(['sip:john@long', 'sip:john@new']);
  });

  it('drops expired rows of the AoR while registering, and ignores their CSeq', async () => {
    const { store, reg } = setup();
    await reg.register(req({ cseq: 9, expiresHeader: '60' }));
    const res = await reg.register(req({ cseq: 1, now: at(120) })); // same Call-ID, lower CSeq
    expect(res.status).toBe(200);
    const all = await store.find('john', null);
    expect(all).toHaveLength(1);
    expect(all[0].cseq).toBe(1);
  });

  it('purges expired bindings through the store', async () => {
    const { store, reg } = setup();
    await reg.register(req({ contacts: ['<sip:john@a>'], expiresHeader: '60', callId: 'a' }));
    await reg.register(req({ contacts: ['<sip:john@b>'], expiresHeader: '600', callId: 'b' }));
    expect(await reg.purgeExpired(at(100))).toBe(1);
    expect(contactsOf(await store.find('john', null))).toEqual(['sip:john@b']);
  });

  it('orders lookup by q (unspecified = 1.0), then most recent first', async () => {
    const { reg } = setup();
    const add = (c: string, s: number) => reg.register(req({ contacts: [c], callId: c, now: at(s) }));
    await add('<sip:john@low>;q=0.1', 0);
    await add('<sip:john@none-old>', 1);
    await add('<sip:john@half>;q=0.5', 2);
    await add('<sip:john@one>;q=1', 3);
    await add('<sip:john@none-new>', 4);
    const order = (await reg.lookup('john', null, at(10))).map((b) => b.contact);
    expect(order).toEqual(['sip:john@none-new', 'sip:john@one', 'sip:john@none-old', 'sip:john@half', 'sip:john@low']);
  });

  it('bindingView rounds remaining seconds up and never goes negative', () => {
    const b = { contact: 'sip:x@y', q: 0.5, expires: new Date(10_500) } as Binding;
    expect(bindingView(b, new Date(0))).toEqual({ contact: 'sip:x@y', expires: 11, q: 0.5 });
    expect(bindingView(b, new Date(20_000)).expires).toBe(0);
  });
});

describe('registrar: ruids', () => {
  it('are unique across bindings and registrars', async () => {
    const store = createMemoryLocationStore();
    const r1 = createRegistrar(store);
    const r2 = createRegistrar(store);
    for (let i = 0; i < 50; i++) {
      await r1.register(req({ username: `u${i}`, contacts: ['<sip:a@1.1.1.1>, <sip:b@1.1.1.1>'] }));
      await r2.register(req({ username: `v${i}`, contacts: ['<sip:a@1.1.1.1>'] }));
    }
    const ruids: string[] = [];
    for (let i = 0; i < 50; i++) {
      for (const b of await store.find(`u${i}`, null)) ruids.push(b.ruid);
      for (const b of await store.find(`v${i}`, null)) ruids.push(b.ruid);
    }
    expect(ruids).toHaveLength(150);
    expect(new Set(ruids).size).toBe(150);
    expect(ruids[0]).toMatch(/^uloc-[0-9a-f]{8}-[0-9a-f]+-\d+$/);
  });
});

describe('registrar: store failures and durability', () => {
  function failing(op: 'find' | 'upsert' | 'remove', err: Error): LocationStore {
    const inner = createMemoryLocationStore();
    return {
      ...inner,
      [op]: async () => {
        throw err;
      },
    };
  }

  it.each(['find', 'upsert'] as const)('a store whose %s throws LocationUnavailableError makes register reject with it', async (op) => {
    const err = new LocationUnavailableError('mongo down', 7);
    const reg = createRegistrar(failing(op, err));
    await expect(reg.register(req())).rejects.toBe(err);
  });

  it('a removal failure rejects too', async () => {
    const inner = createMemoryLocationStore();
    const reg = createRegistrar({
      ...inner,
      remove: async () => {
        throw new LocationUnavailableError('down');
      },
    });
    await reg.register(req());
    await expect(reg.register(req({ cseq: 2, expiresHeader: '0' }))).rejects.toBeInstanceOf(LocationUnavailableError);
    await expect(reg.register(req({ cseq: 3, contacts: ['*'], expiresHeader: '0' }))).rejects.toBeInstanceOf(LocationUnavailableError);
  });

  it('wraps any other store error as LocationUnavailableError (cause kept)', async () => {
    const boom = new Error('socket closed');
    const reg = createRegistrar(failing('upsert', boom));
    const e = await reg.register(req()).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(LocationUnavailableError);
    expect((e as Error).cause).toBe(boom);
    await expect(createRegistrar(failing('find', boom)).lookup('john', null, T0)).rejects.toBeInstanceOf(LocationUnavailableError);
  });

  it('does not answer before the write is durable', async () => {
    const inner = createMemoryLocationStore();
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    let written = false;
    const reg = createRegistrar({
      ...inner,
      upsert: async (b) => {
        await gate;
        await inner.upsert(b);
        written = true;
      },
    });
    let settled = false;
    const p = reg.register(req()).then((r) => {
      settled = true;
      return r;
    });
    await new Promise((r) => setImmediate(r));
    expect(settled).toBe(false);
    release();
    const res = await p;
    expect(written).toBe(true);
    expect(res.status).toBe(200);
  });
});

describe('registrar: background purge', () => {
  it("purges on an unref'd timer with the clock, swallows failures, and stops", async () => {
    const calls: Date[] = [];
    let fail = true;
    const inner = createMemoryLocationStore();
    const store: LocationStore = {
      ...inner,
      purgeExpired: async (now) => {
        calls.push(now);
        if (fail) {
          fail = false;
          throw new Error('down');
        }
        return inner.purgeExpired(now);
      },
    };
    const unhandled = jest.fn();
    process.on('unhandledRejection', unhandled);
    const spy = jest.spyOn(global, 'setInterval');
    const reg = createRegistrar(store, { clock: () => at(5000) });
    const stop = reg.startPurging(5);
    try {
      // unref'd: a running purge timer must never keep the process alive
      expect((spy.mock.results[0].value as NodeJS.Timeout).hasRef()).toBe(false);
      await new Promise((r) => setTimeout(r, 60));
      stop();
      const n = calls.length;
      expect(n).toBeGreaterThanOrEqual(2);
      expect(calls[0].getTime()).toBe(at(5000).getTime());
      await new Promise((r) => setTimeout(r, 30));
      expect(calls.length).toBe(n);
      expect(unhandled).not.toHaveBeenCalled();
    } finally {
      stop();
      spy.mockRestore();
      process.off('unhandledRejection', unhandled);
    }
  });

  it('does not start a purge while the previous one is still running', async () => {
    let calls = 0;
    let release!: () => void;
    const slow = new Promise<number>((r) => {
      release = () => r(0);
    });
    const store: LocationStore = {
      ...createMemoryLocationStore(),
      purgeExpired: () => {
        calls++;
        return slow;
      },
    };
    const stop = createRegistrar(store).startPurging(5);
    try {
      await new Promise((r) => setTimeout(r, 50));
      expect(calls).toBe(1);
    } finally {
      stop();
      release();
    }
  });

  it('really removes expired bindings when the timer fires', async () => {
    const { store, reg } = setup({ clock: () => at(7200) });
    await reg.register(req());
    const stop = reg.startPurging(5);
    try {
      await new Promise((r) => setTimeout(r, 40));
    } finally {
      stop();
    }
    expect(await store.find('john', null)).toEqual([]);
  });
});

describe('registrar: NAT detection, received only on NAT, bindings tied to their connection', () => {
  const via = (hostPort: string, proto = 'UDP') => `SIP/2.0/${proto} ${hostPort};branch=z9hG4bK1;rport`;

  it('an SBC registering another device (its own Via matches the source): no received, no NAT flag, not tied to its connection', async () => {
    const { store, reg } = setup();
    await reg.register(req({ contacts: ['<sip:john@127.0.0.6:5060>'], received: 'sip:127.0.0.5:5060', via: via('127.0.0.5:5060') }));
    await reg.register(
      req({
        callId: 'tcp',
        contacts: ['<sip:john@127.0.0.7:5060>'],
        received: 'sip:127.0.0.5:41000',
        via: via('127.0.0.5:5060', 'TCP'),
        connectionId: 12,
        socket: 'tcp:127.0.0.1:5060',
      }),
    );
    const rows = (await store.find('john', null)).map((b) => [b.contact, b.received, b.cflags, b.keepalive, b.connection_id]).sort();
    expect(rows).toEqual([
      ['sip:john@127.0.0.6:5060', null, 0, 0, -1],
      ['sip:john@127.0.0.7:5060', null, 0, 0, -1],
    ]);
  });

  it('the Via sent-by is not the source (nat_uac_test 2): received = the source, NAT branch flag, keepalive', async () => {
    const { store, reg } = setup();
    await reg.register(req({ contacts: ['<sip:john@192.168.1.20:5060>'], received: 'sip:198.51.100.7:40123', via: via('192.168.1.20:5060') }));
    const [b] = await store.find('john', null);
    expect([b.received, b.cflags, b.keepalive, b.connection_id]).toEqual(['sip:198.51.100.7:40123', 64, 1, -1]);
  });

  it('UDP only: the sent-by port is not the source port (nat_uac_test 16); on a connection the source port proves nothing', async () => {
    const { store, reg } = setup();
    await reg.register(req({ contacts: ['<sip:john@127.0.0.9:5060>'], received: 'sip:127.0.0.9:6000', via: via('127.0.0.9:5060') }));
    expect((await store.find('john', null))[0].received).toBe('sip:127.0.0.9:6000');
    const other = setup();
    await other.reg.register(
      req({
        contacts: ['<sip:john@127.0.0.9:5060;transport=tcp>'],
        received: 'sip:127.0.0.9:6000',
        via: via('127.0.0.9:5060', 'TCP'),
        connectionId: 4,
        socket: 'tcp:127.0.0.1:5060',
      }),
    );
    const [b] = await other.store.find('john', null);
    expect([b.received, b.connection_id, b.keepalive, b.cflags]).toEqual([null, 4, 1, 0]);
  });

  it('a private contact from a public source is NATed; from a private or loopback source it is not (a LAN)', async () => {
    const { store, reg } = setup();
    await reg.register(req({ callId: 'a', contacts: ['<sip:john@10.1.1.1:5060>'], received: 'sip:203.0.113.9:5060', via: via('example.net:5060') }));
    await reg.register(req({ callId: 'b', contacts: ['<sip:john@10.1.1.2:5060>'], received: 'sip:10.9.9.9:5060', via: via('example.net:5060') }));
    const rows = (await store.find('john', null)).map((b) => [b.contact, b.received]).sort();
    expect(rows).toEqual([
      ['sip:john@10.1.1.1:5060', 'sip:203.0.113.9:5060'],
      ['sip:john@10.1.1.2:5060', null],
    ]);
  });

  it('a WebSocket-style .invalid contact over a connection: NATed, received with the transport, tied to the connection', async () => {
    const { store, reg } = setup({ serverId: 7 });
    await reg.register(
      req({
        contacts: ['<sip:x1@df7jal23ls0d.invalid;transport=ws>'],
        received: 'sip:127.0.0.3:50400',
        via: via('df7jal23ls0d.invalid', 'WS'),
        connectionId: 99,
        socket: 'ws:127.0.0.1:8080',
      }),
    );
    const [b] = await store.find('john', null);
    expect([b.received, b.connection_id, b.server_id, b.socket, b.keepalive]).toEqual(['sip:127.0.0.3:50400;transport=ws', 99, 7, 'ws:127.0.0.1:8080', 1]);
  });

  it('udpMaxExpires caps a NATed UDP contact (answered in the 200 OK), not a NATed one over a connection nor one without NAT', async () => {
    const { reg } = setup({ nat: { udpMaxExpires: 120 } });
    const nated = await reg.register(req({ contacts: ['<sip:john@192.168.1.20:5060>'], received: 'sip:198.51.100.7:40123', via: via('192.168.1.20:5060') }));
    expect(nated.bindings.map((b) => bindingView(b, T0).expires)).toEqual([120]);
    const plain = setup({ nat: { udpMaxExpires: 120 } });
    const r = await plain.reg.register(req({ received: 'sip:10.0.9.166:5060', via: via('10.0.9.166:5060') }));
    expect(r.bindings.map((b) => bindingView(b, T0).expires)).toEqual([3600]);
    const tcp = setup({ nat: { udpMaxExpires: 120 } });
    const t = await tcp.reg.register(
      req({
        contacts: ['<sip:john@192.168.1.20:5060>'],
        received: 'sip:198.51.100.7:40123',
        via: via('192.168.1.20:5060', 'TCP'),
        connectionId: 3,
        socket: 'tcp:10.0.12.26:5060',
      }),
    );
    expect(t.bindings.map((b) => bindingView(b, T0).expires)).toEqual([3600]);
  });

  it('a refresh over a new connection moves the binding to it; removeByConnection removes only that server and connection', async () => {
    const { store, reg } = setup({ serverId: 2 });
    const r = (id: number, cseq: number) =>
      reg.register(
        req({
          cseq,
          contacts: ['<sip:john@127.0.0.1:5999;transport=tcp>'],
          received: 'sip:127.0.0.1:40000',
          via: via('127.0.0.1:5999', 'TCP'),
          connectionId: id,
          socket: 'tcp:127.0.0.1:5060',
        }),
      );
    await r(10, 1);
    await r(11, 2);
    expect((await store.find('john', null)).map((b) => b.connection_id)).toEqual([11]);
    expect(await store.removeByConnection(1, 11)).toBe(0);
    expect(await store.removeByConnection(2, 10)).toBe(0);
    expect(await store.removeByConnection(2, 11)).toBe(1);
    expect(await store.find('john', null)).toEqual([]);
  });
});

describe('registrar: bindings other writers duplicated (services/location/dedupe.ts)', () => {
  const CONTACT = 'sip:john@10.0.9.166:5060;rinstance=21ba7bb0142bc22f';
  let seq = 0;
  /** A copy of the note's binding as Kamailio's db_mongodb leaves them: a new ruid per REGISTER, `age` seconds before T0. */
  function kamailioCopy(age: number, over: Partial<Binding> = {}): Binding {
    return kamailioBinding({
      ruid: `uloc-kam-${++seq}`,
      username: 'john',
      contact: CONTACT,
      expires: at(3600 - age),
      callid: `kam-call-${seq}`,
      last_modified: at(-age),
      socket: 'udp:10.0.12.26:5060',
      ...over,
    });
  }

  /** A store over a plain array: several records may carry one ruid (MongoDB without a unique index). */
  function arrayStore(rows: Binding[]): LocationStore {
    const base = createMemoryLocationStore();
    return {
      ...base,
      find: async (u, d) => rows.filter((b) => b.username === u && b.domain === d).map((b) => ({ ...b })),
      upsert: async (b) => {
        const i = rows.findIndex((r) => r.ruid === b.ruid); // replaceOne: one record
        if (i >= 0) rows[i] = { ...b };
        else rows.push({ ...b });
      },
      remove: async (ruids) => {
        const before = rows.length;
        for (let i = rows.length - 1; i >= 0; i--) if (ruids.includes(rows[i].ruid)) rows.splice(i, 1); // deleteMany
        return before - rows.length;
      },
    };
  }

  test('three copies of one contact: the store holds three, the 200 OK of a query and a lookup give one (the newest)', async () => {
    const { store, reg } = setup();
    const copies = [kamailioCopy(30), kamailioCopy(0), kamailioCopy(60)];
    for (const c of copies) await store.upsert(c);
    expect(await store.find('john', null)).toHaveLength(3); // the control: what is stored
    const query = await reg.register(req({ contacts: [], cseq: 5 }));
    expect(query.status).toBe(200);
    expect(query.bindings.map((b) => b.ruid)).toEqual([copies[1].ruid]);
    expect((await reg.lookup('john', 'netaxis.be', T0)).map((b) => b.ruid)).toEqual([copies[1].ruid]);
    expect(await store.find('john', null)).toHaveLength(3); // a query writes nothing
  });

  test('a REGISTER refreshing the contact removes the copies it supersedes: one record left, listed once', async () => {
    const { store, reg } = setup();
    for (const c of [kamailioCopy(30), kamailioCopy(20), kamailioCopy(10)]) await store.upsert(c);
    const res = await reg.register(req({ callId: 'kam-call-new', cseq: 7 }));
    expect(res.status).toBe(200);
    expect(contactsOf(res.bindings)).toEqual([CONTACT]);
    const left = await store.find('john', null);
    expect(left).toHaveLength(1);
    expect(left[0]).toMatchObject({ contact: CONTACT, callid: 'kam-call-new', cseq: 7 });
  });

  test('a REGISTER of another contact also cleans the duplicated one (the AoR is rewritten)', async () => {
    const { store, reg } = setup();
    const copies = [kamailioCopy(30), kamailioCopy(10)];
    for (const c of copies) await store.upsert(c);
    const res = await reg.register(req({ contacts: ['<sip:john@10.0.9.167:5060>'] }));
    expect(contactsOf(res.bindings)).toEqual(['sip:john@10.0.9.167:5060', CONTACT].sort());
    expect((await store.find('john', null)).map((b) => b.ruid).sort()).toEqual(
      [copies[1].ruid, ...res.bindings.filter((b) => b.contact !== CONTACT).map((b) => b.ruid)].sort(),
    );
  });

  test('copies of one ruid: a refresh leaves one record, listed once', async () => {
    const rows = [kamailioCopy(30, { ruid: 'uloc-twice' }), kamailioCopy(10, { ruid: 'uloc-twice' })];
    const reg = createRegistrar(arrayStore(rows), { ruidPrefix: 'uloc-test-1' });
    expect(await reg.lookup('john', null, T0)).toHaveLength(1);
    const res = await reg.register(req({ callId: 'x', cseq: 1 }));
    expect(res.bindings.map((b) => b.ruid)).toEqual(['uloc-twice']);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ ruid: 'uloc-twice', callid: 'x' });
  });

  test('copies of one ruid not refreshed by a REGISTER are left alone (deleting by ruid would delete the binding)', async () => {
    const rows = [kamailioCopy(30, { ruid: 'uloc-twice' }), kamailioCopy(10, { ruid: 'uloc-twice' })];
    const reg = createRegistrar(arrayStore(rows), { ruidPrefix: 'uloc-test-1' });
    const res = await reg.register(req({ contacts: ['<sip:john@10.0.9.167:5060>'] }));
    expect(contactsOf(res.bindings)).toEqual(['sip:john@10.0.9.167:5060', CONTACT].sort());
    expect(rows.filter((r) => r.ruid === 'uloc-twice')).toHaveLength(2);
  });

  test('duplicates do not count against maxContacts', async () => {
    const { store, reg } = setup({ maxContacts: 2 });
    for (const c of [kamailioCopy(30), kamailioCopy(20), kamailioCopy(10)]) await store.upsert(c);
    const res = await reg.register(req({ contacts: ['<sip:john@10.0.9.167:5060>'] }));
    expect(res.status).toBe(200);
    expect(res.bindings).toHaveLength(2);
  });

  test('an un-REGISTER of the contact removes every copy', async () => {
    const { store, reg } = setup();
    for (const c of [kamailioCopy(30), kamailioCopy(20)]) await store.upsert(c);
    const res = await reg.register(req({ expiresHeader: '0', callId: 'bye', cseq: 1 }));
    expect(res).toMatchObject({ status: 200, bindings: [] });
    expect(await store.find('john', null)).toEqual([]);
  });

  test('a permanent binding (expires 0, the epoch: usrloc never expires it) is live', async () => {
    const { store, reg } = setup();
    await store.upsert(kamailioCopy(0, { expires: new Date(0) }));
    expect(await reg.lookup('john', null, T0)).toHaveLength(1);
  });

  test('100,000 copies of one contact: a lookup gives one, a REGISTER removes a bounded batch of copies', async () => {
    const { store, reg } = setup();
    for (let i = 0; i < 100_000; i++) await store.upsert(kamailioCopy(i));
    const t0 = performance.now();
    expect(await reg.lookup('john', null, T0)).toHaveLength(1);
    const lookupMs = performance.now() - t0;
    const res = await reg.register(req({ callId: 'kam-call-new', cseq: 1 }));
    expect(res.bindings).toHaveLength(1);
    expect(await store.find('john', null)).toHaveLength(100_000 - 4_999);
    console.log(`registrar lookup over 100,000 copies of one contact (memory store): ${lookupMs.toFixed(0)} ms`);
  }, 60_000); // 100,000 upserts first: seconds on a loaded machine
});
