/**
 * The AoR ownership tie of the location save (issue: credentials of subscriber A registered,
 * refreshed and removed subscriber B's bindings). The seed logic runs unchanged and gets the
 * check; the directory mapping (customers.username → customers.aor) is the default rule.
 */
import { readFileSync } from 'fs';
import path from 'path';
import { buildCallDescriptor } from '../../../engine/cd';
import { formatProblem, loadSlidText } from '../../../engine/load';
import { runLogic } from '../../../engine/run';
import type { DirectoryPort, DirectoryQuery } from '../../../engine/ports';
import type { RunContext } from '../../../engine/types';
import { builtinRegistry } from '../../../nodes';
import { parseDigestCredentials } from '../../../services/auth';
import { createMemoryDirectory } from '../../../services/directory/memory';
import { createAorOwnership, ownershipFor, parseOwnedAor } from '../../../services/directory/ownership';
import { testContext } from '../../support/context';
import { answerChallenge, sampleRegister } from '../../support/sip';

const seedText = readFileSync(path.join(__dirname, '../../../flows/registration.slid'), 'utf8');
const service = loadSlidText(seedText, 'registration.slid', builtinRegistry()).service!;
const cdOf = (input: unknown) => buildCallDescriptor(input, { credentials: parseDigestCredentials });

const TABLES = {
  'registration.customers': [
    { id: 1, name: 'Netaxis NL', username: 'francesco', password: '123456', aor: 'francesco@nl.netaxis.be' },
    { id: 2, name: 'Bob BV', username: 'bob', password: 'b0bsecret', aor: 'sip:bob@nl.netaxis.be' },
    { id: 3, name: 'PBX', username: 'pbx-trunk-7', password: 'pbxpass', aor: '0031201234567@nl.netaxis.be' },
    { id: 4, name: 'Plain', username: 'plain', password: 'plainpass', aor: null },
  ],
};

/** Two passes of the seed logic: challenge, then credentials of `user` for the AoR in To. */
let cseq = 1;
async function register(ctx: RunContext, o: { user: string; password: string; aor: string; contact?: string; expires?: string }) {
  const headers = {
    From: `<sip:${o.aor}@nl.netaxis.be>;tag=t1`,
    To: `<sip:${o.aor}@nl.netaxis.be>`,
    Contact: o.contact ?? `<sip:${o.user}@10.1.10.89:5060>`,
    ...(o.expires !== undefined ? { Expires: o.expires } : {}),
  };
  const first = await runLogic(service, '24', cdOf(sampleRegister({ ...headers, CSeq: `${++cseq} REGISTER` })), ctx);
  if (first.outcome.kind !== 'challenge') throw new Error(`expected a challenge, got ${first.outcome.kind}`);
  const authorization = answerChallenge(first.outcome.challenges[0], { username: o.user, password: o.password, method: 'REGISTER', uri: 'sip:10.1.10.163' });
  return runLogic(service, '24', cdOf(sampleRegister({ ...headers, Authorization: authorization, CSeq: `${++cseq} REGISTER` })), ctx, { trace: true });
}

function directoryContext() {
  const ctx = testContext({ tables: TABLES });
  ctx.ownership = createAorOwnership(ctx.directory);
  return ctx;
}

/** Logic 1: Start → (node 2, when given, → ) save with `values`. */
function saveLogic(name: string, values: Record<string, unknown>, between?: Record<string, unknown> & { id: number }) {
  const nodes: Record<string, unknown> = {
    0: { id: 0, name: 'Start', type: 'enter.start', values: { next: between ? between.id : 1 }, x: 0, y: 0 },
    1: { id: 1, name: 'save', type: 'output.nit.registrar.saveLocationService', values, x: 100, y: 0 },
  };
  if (between) nodes[between.id] = between;
  return { 1: { name, nodes } };
}

const contactsOf = async (ctx: RunContext, aor: string) => (await ctx.location.lookup(aor, null, new Date(ctx.clock.now()))).map((b) => b.contact);

describe('AoR ownership with the directory mapping (customers.username → customers.aor)', () => {
  test('control: credentials register their own AoR; the trace shows the decision', async () => {
    const ctx = directoryContext();
    const r = await register(ctx, { user: 'francesco', password: '123456', aor: 'francesco' });
    expect(r.outcome).toMatchObject({ kind: 'register', status: 200 });
    expect(r.cd.vars.aorCheck).toBe('francesco owns francesco (registration.customers: username → aor)');
    expect(r.trace!.find((t) => t.nodeId === '2')?.set).toEqual({ aorCheck: r.cd.vars.aorCheck });
    expect(await contactsOf(ctx, 'francesco')).toEqual(['sip:francesco@10.1.10.89:5060']);
  });

  test("francesco's credentials cannot add a binding to bob's AoR: 403, nothing stored", async () => {
    const ctx = directoryContext();
    const r = await register(ctx, { user: 'francesco', password: '123456', aor: 'bob' });
    expect(r.outcome).toMatchObject({ kind: 'reply', status: 403 });
    expect(r.cd.vars.aorCheck).toMatch(/^refused: francesco owns francesco, not bob/);
    expect(await contactsOf(ctx, 'bob')).toEqual([]);
  });

  test("nor refresh or remove (Contact: *) bob's existing binding", async () => {
    const ctx = directoryContext();
    expect((await register(ctx, { user: 'bob', password: 'b0bsecret', aor: 'bob', contact: '<sip:bob@10.9.9.9:5060>' })).outcome).toMatchObject({
      status: 200,
    });
    const refresh = await register(ctx, { user: 'francesco', password: '123456', aor: 'bob', contact: '<sip:bob@10.9.9.9:5060>', expires: '3600' });
    expect(refresh.outcome).toMatchObject({ kind: 'reply', status: 403 });
    const wipe = await register(ctx, { user: 'francesco', password: '123456', aor: 'bob', contact: '*', expires: '0' });
    expect(wipe.outcome).toMatchObject({ kind: 'reply', status: 403 });
    expect(await contactsOf(ctx, 'bob')).toEqual(['sip:bob@10.9.9.9:5060']);
    // control: bob removes his own binding with the same request
    expect((await register(ctx, { user: 'bob', password: 'b0bsecret', aor: 'bob', contact: '*', expires: '0' })).outcome).toMatchObject({ status: 200 });
    expect(await contactsOf(ctx, 'bob')).toEqual([]);
  });

  test('an AoR that exists nowhere is refused too', async () => {
    const ctx = directoryContext();
    const r = await register(ctx, { user: 'francesco', password: '123456', aor: 'ghost42' });
    expect(r.outcome).toMatchObject({ kind: 'reply', status: 403 });
    expect(await contactsOf(ctx, 'ghost42')).toEqual([]);
  });

  test('the AoR column decides, not the username: a trunk account registers its number', async () => {
    const ctx = directoryContext();
    expect((await register(ctx, { user: 'pbx-trunk-7', password: 'pbxpass', aor: '0031201234567' })).outcome).toMatchObject({ status: 200 });
    expect((await register(ctx, { user: 'pbx-trunk-7', password: 'pbxpass', aor: 'pbx-trunk-7' })).outcome).toMatchObject({ status: 403 });
  });

  test('an empty AoR column means the username itself', async () => {
    const ctx = directoryContext();
    expect((await register(ctx, { user: 'plain', password: 'plainpass', aor: 'plain' })).outcome).toMatchObject({ status: 200 });
    expect((await register(ctx, { user: 'plain', password: 'plainpass', aor: 'francesco' })).outcome).toMatchObject({ status: 403 });
  });

  test('matchDomain compares the domain as well', async () => {
    const ctx = testContext({ tables: TABLES });
    ctx.ownership = createAorOwnership(ctx.directory, { matchDomain: true });
    expect((await register(ctx, { user: 'francesco', password: '123456', aor: 'francesco' })).outcome).toMatchObject({ status: 200 });
    const other = await runLogic(service, '24', cdOf(sampleRegister({ To: '<sip:francesco@evil.example>', From: '<sip:francesco@evil.example>;tag=x' })), ctx);
    if (other.outcome.kind !== 'challenge') throw new Error('expected a challenge');
    const authorization = answerChallenge(other.outcome.challenges[0], {
      username: 'francesco',
      password: '123456',
      method: 'REGISTER',
      uri: 'sip:10.1.10.163',
    });
    const r = await runLogic(
      service,
      '24',
      cdOf(
        sampleRegister({ To: '<sip:francesco@evil.example>', From: '<sip:francesco@evil.example>;tag=x', Authorization: authorization, CSeq: '3 REGISTER' }),
      ),
      ctx,
    );
    expect(r.outcome).toMatchObject({ kind: 'reply', status: 403 });
  });

  test('parseOwnedAor reads the forms the column holds', () => {
    expect(parseOwnedAor('francesco@nl.netaxis.be')).toEqual({ user: 'francesco', domain: 'nl.netaxis.be' });
    expect(parseOwnedAor('<sips:bob@x.test;transport=tls>')).toEqual({ user: 'bob', domain: 'x.test' });
    expect(parseOwnedAor('alice')).toEqual({ user: 'alice', domain: null });
    expect(parseOwnedAor('  ')).toBeNull();
    expect(parseOwnedAor('@x.test')).toBeNull();
  });
});

/** A directory that records every query it is asked (what reaches the database). */
function countingDirectory() {
  const inner = createMemoryDirectory(TABLES);
  const reads: DirectoryQuery[] = [];
  const directory: DirectoryPort = {
    query: (q) => {
      reads.push(q);
      return inner.query(q);
    },
    schema: () => inner.schema(),
  };
  return { directory, reads };
}

/** The seed with its "retrieve password" query changed by `edit` (node 5). */
function seedWith(edit: (values: Record<string, unknown>) => void) {
  const doc = JSON.parse(seedText);
  edit(doc['24'].nodes['5'].values);
  const loaded = loadSlidText(JSON.stringify(doc), 'registration.slid', builtinRegistry());
  if (!loaded.service) throw new Error(loaded.problems.map((p) => formatProblem(p)).join('\n'));
  return loaded.service;
}

describe("the owned AoR read beside the credentials (as auth_db's load_credentials)", () => {
  function countingContext() {
    const { directory, reads } = countingDirectory();
    const ctx = testContext({ directory });
    ctx.ownership = createAorOwnership(directory);
    return { ctx, reads };
  }

  test('the seed reads the directory once per authenticated REGISTER: its password query also reads customers.aor', async () => {
    const { ctx, reads } = countingContext();
    const r = await register(ctx, { user: 'pbx-trunk-7', password: 'pbxpass', aor: '0031201234567' });
    expect(r.outcome).toMatchObject({ kind: 'register', status: 200 });
    expect(r.cd.vars.aorCheck).toBe('pbx-trunk-7 owns 0031201234567 (registration.customers: username → aor)');
    expect(reads.map((q) => q.fields)).toEqual([['customers.password', 'customers.name', 'customers.aor']]);
    // the logic's variables are the ones it asked for, nothing more
    expect(r.cd.vars.password).toBe('pbxpass');
    expect(Object.values(r.cd.vars)).not.toContain('0031201234567@nl.netaxis.be');
  });

  test("the same single read refuses francesco's credentials for bob's AoR", async () => {
    const { ctx, reads } = countingContext();
    const r = await register(ctx, { user: 'francesco', password: '123456', aor: 'bob' });
    expect(r.outcome).toMatchObject({ kind: 'reply', status: 403 });
    expect(r.cd.vars.aorCheck).toMatch(/^refused: francesco owns francesco, not bob/);
    expect(reads).toHaveLength(1);
    expect(await contactsOf(ctx, 'bob')).toEqual([]);
  });

  test("a logic that reads another username's row (the To user's) does not vouch for the credentials' username", async () => {
    // the password is read by the AoR's user, so the row read is bob's; the credentials are francesco's (with bob's password)
    const byTo = seedWith((v) => ((v.conditions as Array<{ value: string }>)[0].value = 'toUsername'));
    const { ctx, reads } = countingContext();
    const headers = { From: '<sip:bob@nl.netaxis.be>;tag=t1', To: '<sip:bob@nl.netaxis.be>', Contact: '<sip:bob@10.6.6.6:5060>' };
    const first = await runLogic(byTo, '24', cdOf(sampleRegister({ ...headers, CSeq: '1 REGISTER' })), ctx);
    if (first.outcome.kind !== 'challenge') throw new Error(`expected a challenge, got ${first.outcome.kind}`);
    const authorization = answerChallenge(first.outcome.challenges[0], {
      username: 'francesco',
      password: 'b0bsecret',
      method: 'REGISTER',
      uri: 'sip:10.1.10.163',
    });
    const r = await runLogic(byTo, '24', cdOf(sampleRegister({ ...headers, Authorization: authorization, CSeq: '2 REGISTER' })), ctx);
    expect(r.outcome).toMatchObject({ kind: 'reply', status: 403 });
    expect(r.cd.vars.aorCheck).toMatch(/^refused: francesco owns francesco, not bob/);
    // bob's row was read beside the password, and the ownership read francesco's own
    expect(reads.filter((q) => q.conditions[0].value === 'francesco').map((q) => q.fields)).toEqual([['customers.aor']]);
    expect(await contactsOf(ctx, 'bob')).toEqual([]);
  });

  test("rows from the query node's own cache are not used: the ownership reads the directory", async () => {
    const cached = seedWith((v) => (v.caching = 60));
    const { ctx, reads } = countingContext();
    const run = async (cseq: number, authorization?: string) =>
      runLogic(cached, '24', cdOf(sampleRegister({ CSeq: `${cseq} REGISTER`, ...(authorization ? { Authorization: authorization } : {}) })), ctx);
    for (const cseq of [10, 20]) {
      const first = await run(cseq);
      if (first.outcome.kind !== 'challenge') throw new Error('expected a challenge');
      const r = await run(
        cseq + 1,
        answerChallenge(first.outcome.challenges[0], { username: 'francesco', password: '123456', method: 'REGISTER', uri: 'sip:10.1.10.163' }),
      );
      expect(r.outcome).toMatchObject({ kind: 'register', status: 200 });
    }
    // first REGISTER: one read (password and aor); second: the password from the node's cache, the AoR read on its own
    expect(reads.map((q) => q.fields)).toEqual([['customers.password', 'customers.name', 'customers.aor'], ['customers.aor']]);
  });

  test("a directory without the AoR column: the logic's query still answers (read again as written, and from then on)", async () => {
    const inner = createMemoryDirectory({ 'registration.customers': TABLES['registration.customers'].map(({ aor: _aor, ...row }) => row) });
    const reads: string[][] = [];
    const directory: DirectoryPort = {
      query: (q) => {
        reads.push(q.fields);
        return inner.query(q);
      },
      schema: () => inner.schema(),
    };
    const ctx = testContext({ directory });
    ctx.ownership = createAorOwnership(directory);
    // the seed's password query alone: found or not, the logic ends there
    const doc = JSON.parse(seedText);
    const query = { ...doc['24'].nodes['5'], values: { ...doc['24'].nodes['5'].values, ifRecordFound: null, ifnoRecordFound: null } };
    const loaded = loadSlidText(
      JSON.stringify({ 1: { name: 'lookup', nodes: { 0: { id: 0, name: 'Start', type: 'enter.start', values: { next: 5 }, x: 0, y: 0 }, 5: query } } }),
      'lookup.slid',
      builtinRegistry(),
    );
    if (!loaded.service) throw new Error(loaded.problems.map((p) => formatProblem(p)).join('\n'));
    for (let i = 0; i < 2; i++) {
      const cd = cdOf(sampleRegister({}));
      cd.vars.authUsername = 'bob';
      const r = await runLogic(loaded.service, '1', cd, ctx);
      expect(r.outcome.kind).toBe('exit');
      expect(r.cd.vars.password).toBe('b0bsecret');
    }
    expect(reads).toEqual([
      ['customers.password', 'customers.name', 'customers.aor'],
      ['customers.password', 'customers.name'],
      ['customers.password', 'customers.name'],
    ]);
  });

  test("alongside widens exactly the query of the rule's row, on its own directory", () => {
    const { directory } = countingDirectory();
    const port = createAorOwnership(directory);
    const q = {
      tables: ['registration.customers'],
      fields: ['customers.password'],
      joins: [],
      joinType: 'JOIN' as const,
      logic: 'and' as const,
      orderBy: [],
      offset: 0,
      limit: 1,
    };
    const byUsername = [{ field: 'customers.username', operator: 'is' as const }];
    expect(port.alongside!(directory, q, byUsername)).toEqual(['customers.password', 'customers.aor']);
    expect(port.alongside!(directory, { ...q, fields: ['customers.aor', 'customers.password'] }, byUsername)).toEqual(['customers.aor', 'customers.password']);
    expect(port.alongside!(directory, { ...q, limit: undefined }, byUsername)).toEqual(['customers.password', 'customers.aor']);
    // anything that could select another row: none
    expect(port.alongside!(createMemoryDirectory(TABLES), q, byUsername)).toBeNull();
    expect(port.alongside!(directory, { ...q, tables: ['registration.customers', 'registration.customer_numbers'] }, byUsername)).toBeNull();
    expect(port.alongside!(directory, { ...q, tables: ['other.customers'] }, byUsername)).toBeNull();
    expect(port.alongside!(directory, { ...q, joins: [{ left: 'customers.id', operator: 'is', right: 'customers.id' }] }, byUsername)).toBeNull();
    expect(port.alongside!(directory, { ...q, offset: 1 }, byUsername)).toBeNull();
    expect(port.alongside!(directory, q, [{ field: 'customers.username', operator: 'isNot' }])).toBeNull();
    expect(port.alongside!(directory, q, [{ field: 'customers.name', operator: 'is' }])).toBeNull();
    expect(port.alongside!(directory, q, [...byUsername, { field: 'customers.name', operator: 'is' }])).toBeNull();
    expect(port.alongside!(directory, q, [])).toBeNull();
  });

  test('ownedFrom answers as ownedAor does, for every form of the column', async () => {
    const { directory } = countingDirectory();
    const port = createAorOwnership(directory);
    for (const username of ['francesco', 'bob', 'pbx-trunk-7', 'plain', 'nobody']) {
      const rows = await directory.query({
        tables: ['registration.customers'],
        fields: ['customers.aor'],
        joins: [],
        joinType: 'JOIN',
        logic: 'and',
        orderBy: [],
        offset: 0,
        conditions: [{ field: 'customers.username', operator: 'is', value: username }],
      });
      expect(port.ownedFrom!(username, rows)).toEqual(await port.ownedAor(username));
    }
    expect(port.ownedFrom!('nobody', [])).toBeNull();
    expect(port.ownedFrom!('plain', [{ 'customers.aor': null }])).toEqual({ user: 'plain', domain: null });
  });
});

describe('modes and defaults', () => {
  test('without an ownership port (tests, embedders) the AoR user must equal the auth username', async () => {
    const ctx = testContext({ tables: TABLES });
    expect(ctx.ownership).toBeUndefined();
    expect((await register(ctx, { user: 'francesco', password: '123456', aor: 'francesco' })).outcome).toMatchObject({ status: 200 });
    const r = await register(ctx, { user: 'francesco', password: '123456', aor: 'bob' });
    expect(r.outcome).toMatchObject({ kind: 'reply', status: 403 });
    expect(r.cd.vars.aorCheck).toMatch(/AoR user = auth username/);
  });

  test('mode off: no tie (the trace says so)', async () => {
    const directory = createMemoryDirectory(TABLES);
    const ctx = testContext({ directory });
    ctx.ownership = ownershipFor(directory, { mode: 'off' });
    const r = await register(ctx, { user: 'francesco', password: '123456', aor: 'bob' });
    expect(r.outcome).toMatchObject({ kind: 'register', status: 200 });
    expect(r.cd.vars.aorCheck).toMatch(/^not checked/);
  });

  test('ownershipFor: directory → a port, username → undefined, off → null', () => {
    const directory = createMemoryDirectory(TABLES);
    expect(ownershipFor(directory, { mode: 'directory' })?.rule).toBe('registration.customers: username → aor');
    expect(ownershipFor(directory, { mode: 'username' })).toBeUndefined();
    expect(ownershipFor(directory, { mode: 'off' })).toBeNull();
  });

  test('a save the logic reaches without authenticating is not checked (the logic chose not to authenticate)', async () => {
    const loaded = loadSlidText(JSON.stringify(saveLogic('open registrar', {})), 'open.slid', builtinRegistry());
    expect(loaded.problems).toEqual([]);
    const ctx = directoryContext();
    const r = await runLogic(loaded.service!, '1', cdOf(sampleRegister({ To: '<sip:bob@nl.netaxis.be>' })), ctx);
    expect(r.outcome).toMatchObject({ kind: 'register', status: 200 });
    expect(r.cd.vars.aorCheck).toBeUndefined();
  });

  test('a forged authStatus = 1 variable does not count as authentication', async () => {
    const forged = saveLogic(
      'forging',
      {},
      { id: 2, name: 'set', type: 'action.setVariables', values: { variables: [{ variable: 'authStatus', value: 1 }], next: 1 }, x: 0, y: 0 },
    );
    const loaded = loadSlidText(JSON.stringify(forged), 'forged.slid', builtinRegistry());
    if (!loaded.service) return expect(loaded.problems.map((p) => formatProblem(p))).toEqual([]);
    const ctx = directoryContext();
    const r = await runLogic(loaded.service, '1', cdOf(sampleRegister({ To: '<sip:bob@nl.netaxis.be>' })), ctx);
    // no identity was verified: the tie is not what stops this logic (it saves without authenticating, as written)
    expect(r.outcome).toMatchObject({ kind: 'register', status: 200 });
    expect(r.cd.vars.aorCheck).toBeUndefined();
  });
});

describe('sipflow validate: a location save after authentication without the tie', () => {
  const withTie = (checkOwnership: unknown) => {
    const doc = JSON.parse(seedText);
    doc['24'].nodes['2'].values = checkOwnership === undefined ? {} : { checkOwnership };
    return loadSlidText(JSON.stringify(doc), 'registration.slid', builtinRegistry());
  };

  test('warns, located at the save node, when the tie is switched off', () => {
    const r = withTie(false);
    const warnings = r.problems.filter((p) => p.severity === 'warning');
    expect(warnings).toHaveLength(1);
    expect(formatProblem(warnings[0])).toMatch(
      /registration\.slid › logic 24 "registration" › node 2 "save in location services" › values\/checkOwnership: saves bindings after authentication without the AoR ownership tie/,
    );
    expect(r.service).toBeDefined();
  });

  test('control: the seed file as exported (no field) and an explicit true give no warning', () => {
    expect(withTie(undefined).problems).toEqual([]);
    expect(withTie(true).problems).toEqual([]);
  });

  test('no warning in a file that never authenticates', () => {
    const open = saveLogic('trusted trunk registrar', { checkOwnership: false });
    expect(loadSlidText(JSON.stringify(open), 'open.slid', builtinRegistry()).problems).toEqual([]);
  });
});
