/**
 * Issue 14, manipulation, extraction and URI nodes: analysis.regexExtract,
 * action.stringManipulation, action.normalizeNumber, action.uriManipulation — behaviour, bad
 * input (located validation errors, oversized values) and injection attempts.
 */
import { formatProblem, loadSlid } from '../../../engine/load';
import { runLogic } from '../../../engine/run';
import { checkPattern } from '../../../nodes/regex-safety';
import { testContext } from '../../support/context';
import { cdOf, compile, docOf, registry, reply, runNodes, start, type NodeSpec } from '../engine/helpers';

/** Variables the tests bring in the call descriptor: value fields read them once a node of the file writes them. */
const TEST_VARIABLES = ['x', 'u', 'v', 'h', 'p', 'n', 'number', 'domain', 'trunk', 'cc', 'sep', 'by', 'big'];

/** start → node 1 → 2 (200, the success exit) or 3 (404, the failure exit); node 9 (never reached) makes the test variables known. */
function graph(type: string, values: Record<string, unknown>, exits: Record<string, number>): NodeSpec[] {
  return [
    start(1),
    [1, type, { ...values, ...exits }],
    reply(2, 200),
    reply(3, 404),
    [9, 'action.setVariables', { variables: TEST_VARIABLES.map((variable) => ({ variable })) }],
  ];
}

async function run(type: string, values: Record<string, unknown>, exits: Record<string, number>, input: Record<string, unknown> = {}, ctx = testContext()) {
  const r = await runNodes(graph(type, values, exits), input, ctx, { trace: true });
  return { status: (r.outcome as { status: number | null }).status, vars: r.cd.vars, trace: r.trace ?? [] };
}

function problems(type: string, values: Record<string, unknown>, exits: Record<string, number>): string[] {
  return loadSlid(docOf(graph(type, values, exits)), 'test.slid', registry)
    .problems.filter((p) => p.severity === 'error')
    .map(formatProblem);
}

// ------------------------------------------------------------------ regex extract

describe('analysis.regexExtract', () => {
  const EXITS = { ifMatched: 2, ifNotMatched: 3 };
  const extract = (values: Record<string, unknown>, input: Record<string, unknown> = {}) => run('analysis.regexExtract', values, EXITS, input);

  test('groups of a variable by number and by name; group 0 is the whole match; an absent optional group stores null', async () => {
    const r = await extract(
      {
        variable: 'called',
        pattern: '^(?<prefix>\\+|00)(?<cc>\\d{2})(\\d+)(x\\d+)?$',
        storeInto: [
          { group: 0, variable: 'whole' },
          { group: 'cc', variable: 'countryCode' },
          { group: 3, variable: 'rest' },
          { group: '3', variable: 'restAgain' },
          { group: 4, variable: 'extension' },
        ],
        statusVariable: 'rx',
      },
      { called: '0033123456789' },
    );
    expect(r.status).toBe(200);
    expect(r.vars).toMatchObject({ whole: '0033123456789', countryCode: '33', rest: '123456789', restAgain: '123456789', extension: null, rx: 'matched' });
    expect(r.trace[1]).toMatchObject({ type: 'analysis.regexExtract', exit: 'ifMatched', set: { countryCode: '33', rx: 'matched' } });
  });

  test('a SIP header: case-insensitive and compact names, first value by default, a chosen index, -1 for the last', async () => {
    const headers = {
      f: '"Alice" <sip:alice@example.com>;tag=1',
      Diversion: ['<sip:+3222000000@a.example>;reason=busy', '<sip:+3223000000@b.example>;reason=unconditional'],
    };
    const rx = (header: string, index?: number) =>
      extract({ header, ...(index === undefined ? {} : { index }), pattern: 'sip:([^@>]+)@', storeInto: [{ group: 1, variable: 'user' }] }, { headers });
    expect((await rx('From')).vars.user).toBe('alice');
    expect((await rx('DIVERSION')).vars.user).toBe('+3222000000');
    expect((await rx('diversion', 1)).vars.user).toBe('+3223000000');
    expect((await rx('Diversion', -1)).vars.user).toBe('+3223000000');
    const missing = await extract({ header: 'Diversion', index: 5, pattern: '.', statusVariable: 'rx' }, { headers });
    expect(missing).toMatchObject({ status: 404, vars: { rx: 'missing' } });
    const noHeader = await extract({ header: 'P-Asserted-Identity', pattern: '.', statusVariable: 'rx' }, { headers });
    expect(noHeader).toMatchObject({ status: 404, vars: { rx: 'missing' } });
  });

  test('flags: i', async () => {
    expect((await extract({ variable: 'x', pattern: '^SIP:', flags: 'i' }, { x: 'sip:a@b' })).status).toBe(200);
    expect((await extract({ variable: 'x', pattern: '^SIP:' }, { x: 'sip:a@b' })).status).toBe(404);
  });

  test('no match: ifNotMatched, storeInto left alone; the compiled regex keeps no state between messages', async () => {
    const service = compile(
      docOf(graph('analysis.regexExtract', { variable: 'x', pattern: '(\\d+)', storeInto: [{ group: 1, variable: 'n' }], statusVariable: 'rx' }, EXITS)),
    );
    const ctx = testContext();
    const once = async (x: string, n?: string) => runLogic(service, '1', cdOf({ x, ...(n ? { n } : {}) }), ctx);
    for (let i = 0; i < 3; i++) {
      expect((await once('a 42 b')).cd.vars.n).toBe('42');
      const miss = await once('none', 'before');
      expect(miss.outcome).toMatchObject({ status: 404 });
      expect(miss.cd.vars).toMatchObject({ n: 'before', rx: 'notMatched' });
    }
  });

  test('input over maxInputLength is refused unread (status tooLong); at the limit it is read', async () => {
    const values = { variable: 'x', pattern: 'a$', maxInputLength: 10, statusVariable: 'rx' };
    expect(await extract(values, { x: 'a'.repeat(10) })).toMatchObject({ status: 200, vars: { rx: 'matched' } });
    expect(await extract(values, { x: 'a'.repeat(11) })).toMatchObject({ status: 404, vars: { rx: 'tooLong' } });
    // the default cap: 1024
    expect(await extract({ variable: 'x', pattern: 'a', statusVariable: 'rx' }, { x: 'a'.repeat(100_000) })).toMatchObject({
      status: 404,
      vars: { rx: 'tooLong' },
    });
  });

  test('a polynomial pattern the check lets through stays bounded by the input cap', async () => {
    // 1024 characters without the final x: .*.*.* backtracks ~n³/6 steps, not forever
    const r = await extract({ variable: 'x', pattern: '^.*.*.*x$', statusVariable: 'rx' }, { x: 'a'.repeat(200) });
    expect(r.vars.rx).toBe('notMatched');
  });

  test('validation: invalid regex, bad flags, nested quantifiers, groups the pattern lacks, variable xor header — all located', () => {
    const p = (values: Record<string, unknown>) => problems('analysis.regexExtract', { variable: 'x', ...values }, EXITS);
    expect(p({ pattern: '([a-z' })).toEqual([expect.stringMatching(/node 1 "n1" › values\/pattern: invalid regular expression/)]);
    expect(p({ pattern: 'a', flags: 'g' })[0]).toMatch(/values\/flags/);
    expect(p({ pattern: 'a', flags: 'ii' })[0]).toMatch(/values\/flags: flags may only be i, m, s, u, each once/);
    for (const evil of ['(a+)+$', '^(\\d+)*x', '(a|aa)*$', '(?:x+)+', '((ab)*c)+', '(?<n>a*){2,}', '([^@]+\\.)+@', '(a|b){1,100}'])
      expect(p({ pattern: evil })).toEqual([expect.stringMatching(/values\/pattern: nested quantifier/)]);
    for (const fine of ['(\\d{1,3}\\.){3}\\d{1,3}', '^(?:sip|tel):', '(a+)?', '[(+)]+', '\\(a+\\)+', '(?:ab)+', '^(\\+|00)?(\\d+)$'])
      expect([fine, p({ pattern: fine })]).toEqual([fine, []]);
    expect(p({ pattern: '(a)(b)', storeInto: [{ group: 3, variable: 'v' }] })[0]).toMatch(/values\/storeInto\/0\/group: the pattern has 2 group/);
    expect(p({ pattern: '(?<a>x)', storeInto: [{ group: 'b', variable: 'v' }] })[0]).toMatch(/storeInto\/0\/group: the pattern has no group named "b"/);
    expect(problems('analysis.regexExtract', { pattern: 'a' }, EXITS)[0]).toMatch(/values\/variable: give either variable or header/);
    expect(problems('analysis.regexExtract', { pattern: 'a', variable: 'x', header: 'From' }, EXITS)[0]).toMatch(/values\/header: give either/);
  });

  test('groups of a credentials header or of a secret variable are secrets', () => {
    const s = compile(
      docOf([
        start(1),
        [
          1,
          'analysis.regexExtract',
          { header: 'Proxy-Authorization', pattern: 'username="([^"]+)"', storeInto: [{ group: 1, variable: 'authUser' }], ifMatched: 2 },
        ],
        [2, 'analysis.regexExtract', { header: 'From', pattern: '<(.*)>', storeInto: [{ group: 1, variable: 'fromAgain' }], ifMatched: 3 }],
        reply(3, 200),
      ]),
    );
    expect(s.secrets?.has('authUser')).toBe(true);
    expect(s.secrets?.has('fromAgain')).toBe(false);
  });
});

describe('regex safety check', () => {
  test('classes, escapes and lookarounds are read correctly', () => {
    expect(checkPattern('[)]+(a)')).toBeNull();
    expect(checkPattern('(?=a+)b')).toBeNull();
    expect(checkPattern('(?<=x)(?!y)z*')).toBeNull();
    expect(checkPattern('((a)|b)+')).toMatch(/nested quantifier/);
    expect(checkPattern('a{2,3}', 'u')).toBeNull();
    expect(checkPattern('x', 'gy')).toMatch(/flags/);
  });
});

// ------------------------------------------------------------------ string manipulation

describe('action.stringManipulation', () => {
  const EXITS = { next: 2, ifTooLong: 3 };
  const manipulate = (operations: Array<Record<string, unknown>>, input: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) =>
    run('action.stringManipulation', { value: 'x', storeInto: 'out', operations, ...extra }, EXITS, input);

  test('operations apply in order: trim, regex replace, substring, pad, upper case', async () => {
    const r = await manipulate(
      [
        { operation: 'trim' },
        { operation: 'replace', regex: true, search: '^\\+33', replacement: '0' },
        { operation: 'substring', start: 1 },
        { operation: 'pad', length: 12, char: '*' },
        { operation: 'upperCase' },
      ],
      { x: '  +33123456789x ' },
    );
    expect(r).toMatchObject({ status: 200, vars: { out: '**123456789X' } });
    expect(r.trace[1]).toMatchObject({ exit: 'next', set: { out: '**123456789X' } });
  });

  test('literal replace: all or first; $ in the replacement is plain text; search and replacement take placeholders', async () => {
    const rep = (extra: Record<string, unknown>) => manipulate([{ operation: 'replace', search: '.', replacement: '$&-', ...extra }], { x: '1.2.3' });
    expect((await rep({})).vars.out).toBe('1$&-2$&-3');
    expect((await rep({ all: false })).vars.out).toBe('1$&-2.3');
    const ph = await manipulate([{ operation: 'replace', search: '[sep]', replacement: '[by]' }], { x: 'a|b|c', sep: '|', by: '$1' });
    expect(ph.vars.out).toBe('a$1b$1c');
  });

  test('regex replace: $1 and $<name> written in the field refer to groups; a placeholder or variable value is inserted as it is', async () => {
    const r = await manipulate([{ operation: 'replace', regex: true, search: '(?<cc>\\d{2})(\\d)', replacement: '<$<cc>|$2|$$|$9>' }], { x: '331' });
    expect(r.vars.out).toBe('<33|1|$|$9>');
    const first = await manipulate([{ operation: 'replace', regex: true, all: false, search: '\\d', replacement: '#' }], { x: 'a1b2' });
    expect(first.vars.out).toBe('a#b2');
    const attack = await manipulate([{ operation: 'replace', regex: true, search: '(secret)', replacement: '[by] $1' }], { x: 'a secret', by: "$1$`$'$&" });
    expect(attack.vars.out).toBe("a $1$`$'$& secret");
    const whole = await manipulate([{ operation: 'replace', regex: true, search: 'x', replacement: 'by' }], { x: 'axb', by: '$&$&' });
    expect(whole.vars.out).toBe('a$&$&b');
    const context = await manipulate([{ operation: 'replace', regex: true, search: 'b', replacement: "[$`|$']" }], { x: 'abc' });
    expect(context.vars.out).toBe('a[a|c]c');
  });

  test('substring with a negative start and a length; pad right; lower case; nothing to do on a longer value', async () => {
    expect((await manipulate([{ operation: 'substring', start: -4, length: 2 }], { x: '0123456789' })).vars.out).toBe('67');
    expect((await manipulate([{ operation: 'substring', start: -40 }], { x: 'abc' })).vars.out).toBe('abc');
    expect((await manipulate([{ operation: 'substring', start: 10 }], { x: 'abc' })).vars.out).toBe('');
    expect((await manipulate([{ operation: 'pad', side: 'right', length: 5, char: '.' }], { x: 'ab' })).vars.out).toBe('ab...');
    expect((await manipulate([{ operation: 'pad', length: 2 }], { x: 'abcd' })).vars.out).toBe('abcd');
    expect((await manipulate([{ operation: 'pad', length: 4 }], { x: 7 })).vars.out).toBe('0007');
    expect((await manipulate([{ operation: 'lowerCase' }], { x: 'SIP:Bob@EXAMPLE.com' })).vars.out).toBe('sip:bob@example.com');
  });

  test('a missing input writes nothing and takes next', async () => {
    const r = await manipulate([{ operation: 'trim' }], { out: 'before' });
    expect(r).toMatchObject({ status: 200, vars: { out: 'before' } });
  });

  test('an input or a result over maxLength: storeInto null and ifTooLong (or next when unset), without building the huge string', async () => {
    const long = await manipulate([{ operation: 'trim' }], { x: 'a'.repeat(5000) });
    expect(long).toMatchObject({ status: 404, vars: { out: null } });
    // x* matches the empty string at each of the 1001 positions: 1001 × 1000 characters if unbounded
    const growth = await manipulate([{ operation: 'replace', regex: true, search: 'x*', replacement: '[big]' }], {
      x: 'a'.repeat(1000),
      big: 'b'.repeat(1000),
    });
    expect(growth).toMatchObject({ status: 404, vars: { out: null } });
    const literal = await manipulate(
      [{ operation: 'replace', search: 'a', replacement: '[big]' }],
      { x: 'a'.repeat(100), big: 'b'.repeat(100) },
      { maxLength: 5000 },
    );
    expect(literal).toMatchObject({ status: 404, vars: { out: null } });
    const justFits = await manipulate([{ operation: 'replace', search: 'a', replacement: 'bb' }], { x: 'aaaaa' }, { maxLength: 10 });
    expect(justFits).toMatchObject({ status: 200, vars: { out: 'bbbbbbbbbb' } });
    const unset = await run(
      'action.stringManipulation',
      { value: 'x', storeInto: 'out', operations: [{ operation: 'trim' }], maxLength: 3 },
      { next: 2 },
      { x: 'abcd' },
    );
    expect(unset).toMatchObject({ status: 200, vars: { out: null } });
  });

  test('validation: invalid or dangerous regex, replace without search, pad without length, flags — located', () => {
    const p = (operations: Array<Record<string, unknown>>) => problems('action.stringManipulation', { value: 'x', storeInto: 'out', operations }, EXITS);
    expect(p([{ operation: 'trim' }, { operation: 'replace', regex: true, search: '[' }])[0]).toMatch(
      /values\/operations\/1\/search: invalid regular expression/,
    );
    expect(p([{ operation: 'replace', regex: true, search: '(\\d+)+' }])[0]).toMatch(/values\/operations\/0\/search: nested quantifier/);
    expect(p([{ operation: 'replace', replacement: 'x' }])[0]).toMatch(/values\/operations\/0\/search: is required by replace/);
    expect(p([{ operation: 'pad' }])[0]).toMatch(/values\/operations\/0\/length: pad needs a length/);
    expect(p([{ operation: 'pad', length: 5000 }])[0]).toMatch(/values\/operations\/0\/length/);
    expect(p([{ operation: 'replace', regex: true, search: 'a', flags: 'g' }])[0]).toMatch(/values\/operations\/0\/flags/);
    expect(p([{ operation: 'reverse' }])[0]).toMatch(/values\/operations\/0\/operation/);
    // a literal search is text: '[' is no error
    expect(p([{ operation: 'replace', search: '[' }])).toEqual([]);
  });
});

// ------------------------------------------------------------------ normalize number

describe('action.normalizeNumber', () => {
  const EXITS = { next: 2, ifInvalid: 3 };
  const normalize = (value: unknown, extra: Record<string, unknown> = {}, input: Record<string, unknown> = {}, ctx = testContext()) =>
    run('action.normalizeNumber', { value: 'x', storeInto: 'out', statusVariable: 'st', ...extra }, EXITS, { x: value, ...input }, ctx);

  test.each([
    ['+33 1 23 45 67 89', '+33123456789'],
    ['0033123456789', '+33123456789'],
    ['01 23 45 67 89', '+33123456789'],
    ['01.23.45.67.89', '+33123456789'],
    ['tel:+33123456789', '+33123456789'],
    ['tel:+33-1-23-45-67-89;ext=12', '+33123456789'],
    ['tel:0123456789;phone-context=+33', '+33123456789'],
    ['sip:0123456789@gw.example;user=phone', '+33123456789'],
    ['sips:+33612345678;npdi@gw.example', '+33612345678'],
    ['<sip:0612345678@gw.example>', '+33612345678'],
    ['"Alice" <tel:06-12-34-56-78;phone-context=+33>;tag=1', '+33612345678'],
    ['+1 (650) 253-0000', '+16502530000'],
    ['+32 2 555 12 34', '+3225551234'],
  ])('%s → %s (country FR)', async (input, e164) => {
    const r = await normalize(input, { country: 'FR' });
    expect(r).toMatchObject({ status: 200, vars: { out: e164, st: 'valid' } });
  });

  test('formats, and the country, calling code and type of the number', async () => {
    const f = async (format: string) => (await normalize('0612345678', { country: 'FR', format })).vars.out;
    expect(await f('E.164')).toBe('+33612345678');
    expect(await f('national')).toBe('06 12 34 56 78');
    expect(await f('nationalDigits')).toBe('0612345678');
    expect(await f('international')).toBe('+33 6 12 34 56 78');
    expect(await f('RFC3966')).toBe('tel:+33612345678');
    const r = await normalize('+32 2 555 12 34', { country: 'FR', countryVariable: 'cc', callingCodeVariable: 'code', typeVariable: 'kind' });
    expect(r.vars).toMatchObject({ cc: 'BE', code: '32', kind: 'FIXED_LINE' });
    expect(r.trace[1]).toMatchObject({ exit: 'next', set: { out: '+3225551234', cc: 'BE', code: '32', kind: 'FIXED_LINE', st: 'valid' } });
    const mobile = await normalize('06 12 34 56 78', { country: 'fr', typeVariable: 'kind' });
    expect(mobile.vars.kind).toBe('MOBILE');
  });

  test('the country: from a placeholder, else the run context (nodes.numbers.defaultCountry), else international numbers only', async () => {
    expect((await normalize('(650) 253-0000', { country: '[cc]' }, { cc: 'US' })).vars.out).toBe('+16502530000');
    const ctx = { ...testContext(), numbers: { defaultCountry: 'BE' } };
    expect((await normalize('02 555 12 34', {}, {}, ctx)).vars.out).toBe('+3225551234');
    expect((await normalize('0123456789', { country: 'FR' }, {}, ctx)).vars.out).toBe('+33123456789'); // the node wins
    expect(await normalize('0123456789')).toMatchObject({ status: 404, vars: { st: 'noCountry' } });
    expect((await normalize('+33123456789')).vars.out).toBe('+33123456789');
    expect(await normalize('0123456789', { country: '[cc]' }, { cc: 'XX' })).toMatchObject({ status: 404, vars: { st: 'unknownCountry' } });
  });

  test('invalid input takes ifInvalid with the reason; a number normalised in place is left alone', async () => {
    const bad = async (value: unknown) => (await normalize(value, { country: 'FR' })).vars.st;
    expect(await bad('abc')).toBe('notANumber');
    expect(await bad('0612345678abc')).toBe('notANumber');
    expect(await bad('sip:alice@example.com')).toBe('notANumber');
    expect(await bad('http://0612345678')).toBe('notANumber');
    expect(await bad('12')).toBe('invalid');
    expect(await bad('0012345678')).toBe('invalid');
    expect(await bad(null)).toBe('missing');
    expect(await bad('')).toBe('missing');
    expect(await bad('1'.repeat(300))).toBe('tooLong');
    expect(await bad('1'.repeat(200))).toBe('tooLong');
    const inPlace = await run('action.normalizeNumber', { value: 'called', storeInto: 'called', country: 'FR' }, EXITS, { called: '12' });
    expect(inPlace).toMatchObject({ status: 404, vars: { called: '12' } });
    expect(inPlace.trace[1]).toMatchObject({ exit: 'ifInvalid' });
  });

  test('validation: a country libphonenumber does not know, or not a two-letter code', () => {
    expect(problems('action.normalizeNumber', { value: 'x', storeInto: 'out', country: 'XX' }, EXITS)[0]).toMatch(/values\/country: unknown country "XX"/);
    expect(problems('action.normalizeNumber', { value: 'x', storeInto: 'out', country: 'FRA' }, EXITS)[0]).toMatch(/values\/country/);
    expect(problems('action.normalizeNumber', { value: 'x', storeInto: 'out', country: 'be' }, EXITS)).toEqual([]);
    expect(problems('action.normalizeNumber', { value: 'x', storeInto: 'out', country: '[cc]' }, EXITS)).toEqual([]);
    expect(problems('action.normalizeNumber', { value: 'x', storeInto: 'out', format: 'E164' }, EXITS)[0]).toMatch(/values\/format/);
  });
});

// ------------------------------------------------------------------ URI manipulation

describe('action.uriManipulation: parse', () => {
  const EXITS = { next: 2, ifInvalid: 3 };
  const ALL = {
    mode: 'parse',
    uri: 'x',
    schemeVariable: 'scheme',
    userVariable: 'user',
    hostVariable: 'host',
    portVariable: 'port',
    storeParams: [
      { name: 'transport', variable: 'transport' },
      { name: 'LR', variable: 'lr' },
      { name: 'maddr', variable: 'maddr' },
    ],
    storeHeaders: [
      { name: 'subject', variable: 'subject' },
      { name: 'Priority', variable: 'priority' },
    ],
    statusVariable: 'st',
  };
  const parse = (x: unknown, input: Record<string, unknown> = {}) => run('action.uriManipulation', ALL, EXITS, { x, ...input });

  test('a SIP URI into parts; the password is never stored', async () => {
    const r = await parse('sip:al%69ce:s3cr3t@Example.COM:5070;transport=tcp;lr?subject=hi%20there&priority=urgent');
    expect(r.status).toBe(200);
    expect(r.vars).toMatchObject({
      scheme: 'sip',
      user: 'alice',
      host: 'example.com',
      port: 5070,
      transport: 'tcp',
      lr: '',
      maddr: null,
      subject: 'hi there',
      priority: 'urgent',
      st: 'valid',
    });
    const { x: _input, ...written } = r.vars;
    expect(JSON.stringify(written)).not.toContain('s3cr3t');
    expect(JSON.stringify(r.trace)).not.toContain('s3cr3t');
  });

  test('a name-addr, an IPv6 host, a TEL URI; absent parts write null', async () => {
    const na = await parse('"Bob" <sips:bob@[2001:db8::1]>;tag=x', { port: 99, transport: 'udp' });
    expect(na.vars).toMatchObject({ scheme: 'sips', user: 'bob', host: '[2001:db8::1]', port: null, transport: null, subject: null });
    const tel = await parse('tel:+33123456789;phone-context=example.com');
    expect(tel.vars).toMatchObject({ scheme: 'tel', user: '+33123456789', host: null, port: null });
    expect((await parse('sip:example.com')).vars).toMatchObject({ user: null, host: 'example.com' });
  });

  test('what is not a SIP, SIPS or TEL URI takes ifInvalid with the reason', async () => {
    for (const bad of ['http://example.com/', 'mailto:a@b', 'garbage', 'sip:', 'sip:a@b:99999', 'sip:a@exa mple.com', 'sip:a@[::1', 'sip:a@b@c'])
      expect([bad, await parse(bad).then((r) => [r.status, r.vars.st])]).toEqual([bad, [404, 'invalid']]);
    expect((await parse(null)).vars.st).toBe('missing');
    expect((await parse(`sip:${'a'.repeat(5000)}@example.com`)).vars.st).toBe('tooLong');
  });

  test('by default it reads requestURI', async () => {
    const r = await run('action.uriManipulation', { mode: 'parse', hostVariable: 'host' }, EXITS, { requestUri: 'sip:6756757@nl.netaxis.be' });
    expect(r.vars.host).toBe('nl.netaxis.be');
  });
});

describe('action.uriManipulation: build', () => {
  const EXITS = { next: 2, ifInvalid: 3 };
  const build = (values: Record<string, unknown>, input: Record<string, unknown> = {}) =>
    run('action.uriManipulation', { mode: 'build', storeInto: 'out', statusVariable: 'st', ...values }, EXITS, input);

  test('from parts with placeholders: user, host, port, parameters (a flag when empty), headers', async () => {
    const r = await build(
      {
        user: 'number',
        host: '[domain]',
        port: '5070',
        params: [{ name: 'user', value: 'phone' }, { name: 'lr' }, { name: 'tgrp', value: 'trunk' }],
        headers: [{ name: 'Subject', value: 'call me' }],
      },
      { number: '+33123456789', domain: 'GW.example', trunk: 'TG-1' },
    );
    expect(r).toMatchObject({ status: 200, vars: { out: 'sip:+33123456789@gw.example:5070;user=phone;lr;tgrp=TG-1?Subject=call%20me', st: 'valid' } });
    expect((await build({ host: 'example.com' })).vars.out).toBe('sip:example.com');
    expect((await build({ scheme: 'sips', user: 'bob', host: '[::1]' })).vars.out).toBe('sips:bob@[::1]');
    expect((await build({ scheme: 'tel', user: '+33-1-23', params: [{ name: 'phone-context', value: '+33' }] })).vars.out).toBe(
      'tel:+33-1-23;phone-context=+33',
    );
  });

  test('a caller-controlled user cannot add a password, parameters or headers, nor change the host', async () => {
    const attempts = [
      'alice@evil.example',
      'alice@evil.example;maddr=203.0.113.9',
      'alice;transport=tcp',
      'alice:password',
      'alice>;tag=x',
      'alice?Route=%3Csip:evil%3E',
      '%40evil',
      'al ice\r\nVia: x',
      'é',
    ];
    for (const user of attempts) {
      const r = await build({ user: 'u', host: 'example.com', params: [{ name: 'user', value: 'phone' }] }, { u: user });
      expect([user, r.status]).toEqual([user, 200]);
      const out = String(r.vars.out);
      expect(out.endsWith('@example.com;user=phone')).toBe(true);
      expect(out.split('@')).toHaveLength(2);
      expect(out).not.toMatch(/^sip:[^@]*[;?:>\s]/);
      // and it reads back as the same user
      const back = await run('action.uriManipulation', { mode: 'parse', uri: 'x', userVariable: 'user', hostVariable: 'host' }, EXITS, { x: out });
      expect(back.vars).toMatchObject({ user, host: 'example.com' });
    }
  });

  test('parameter and header values are escaped; a caller-controlled host, port or TEL number is refused', async () => {
    const params = await build(
      { host: 'example.com', params: [{ name: 'tgrp', value: 'v' }], headers: [{ name: 'Subject', value: 'h' }] },
      { v: 'a;maddr=evil?x=y', h: 'a&Route=<sip:evil>' },
    );
    expect(params.vars.out).toBe('sip:example.com;tgrp=a%3Bmaddr%3Devil%3Fx%3Dy?Subject=a%26Route%3D%3Csip:evil%3E');
    const bad = async (values: Record<string, unknown>, input: Record<string, unknown>) => {
      const r = await build(values, input);
      return [r.status, r.vars.st, r.vars.out ?? null];
    };
    for (const host of ['evil.example;maddr=1.2.3.4', 'a@evil.example', 'example.com:5070', 'example.com?x=y', 'exa mple.com', '[::1', 'example.com>'])
      expect([host, await bad({ host: 'h' }, { h: host })]).toEqual([host, [404, 'invalidHost', null]]);
    expect(await bad({ host: 'h' }, { h: '' })).toEqual([404, 'invalidHost', null]);
    for (const port of ['0', '70000', '50;lr', 'abc', '-1'])
      expect([port, await bad({ host: 'example.com', port: 'p' }, { p: port })]).toEqual([port, [404, 'invalidPort', null]]);
    for (const number of ['+33 1 23', '123;phone-context=evil', '123@host', ''])
      expect([number, await bad({ scheme: 'tel', user: 'n' }, { n: number })]).toEqual([number, [404, 'invalidUser', null]]);
    expect(await bad({ user: 'u', host: 'example.com' }, { u: 'x'.repeat(5000) })).toEqual([404, 'invalidUser', null]);
    expect(await bad({ user: 'u', host: 'example.com' }, { u: 'a\uD800' })).toEqual([404, 'invalid', null]);
    expect(await bad({ host: 'example.com', params: [{ name: 'p', value: 'v' }] }, { v: 'x'.repeat(5000) })).toEqual([404, 'tooLong', null]);
  });

  test('validation: build needs storeInto and a host (sip) or a number (tel); tel has no host or headers; a parameter once', () => {
    const p = (values: Record<string, unknown>) => problems('action.uriManipulation', { mode: 'build', ...values }, EXITS);
    expect(p({ host: 'example.com' })[0]).toMatch(/values\/storeInto: is required/);
    expect(p({ storeInto: 'out' })[0]).toMatch(/values\/host: is required/);
    expect(p({ storeInto: 'out', scheme: 'tel', host: 'x', user: '1', headers: [{ name: 'a', value: 'b' }] })).toEqual([
      expect.stringMatching(/values\/host: a tel URI has no host/),
      expect.stringMatching(/values\/headers: a tel URI has no headers/),
    ]);
    expect(p({ storeInto: 'out', scheme: 'tel' })[0]).toMatch(/values\/user: a tel URI needs a number/);
    expect(p({ storeInto: 'out', host: 'h', params: [{ name: 'lr' }, { name: 'LR' }] })[0]).toMatch(/values\/params\/1\/name: parameter "LR" is given twice/);
    expect(p({ storeInto: 'out', host: 'h', params: [{ name: 'a;b' }] })[0]).toMatch(/values\/params\/0\/name/);
    expect(problems('action.uriManipulation', { mode: 'parse', uri: '' }, EXITS)[0]).toMatch(/values\/uri: is required/);
  });
});

test('values the schema refuses give located problems, never an exception from check()', () => {
  const garbage = {
    variable: 5,
    header: [],
    pattern: 7,
    flags: 3,
    storeInto: 'x',
    operations: 'trim',
    params: 'a',
    headers: {},
    storeParams: 1,
    mode: 'parse',
    value: {},
    storeInto2: null,
  };
  for (const type of ['analysis.regexExtract', 'action.stringManipulation', 'action.normalizeNumber', 'action.uriManipulation']) {
    const found = problems(type, garbage, {});
    expect(found.length).toBeGreaterThan(0);
    for (const p of found) expect(p).toMatch(/node 1 "n1" › values/);
  }
  expect(problems('analysis.regexExtract', { variable: 'x', pattern: '(a)', flags: 5, storeInto: [{ group: 1, variable: 'v' }] }, {})[0]).toMatch(
    /values\/flags/,
  );
  expect(problems('action.uriManipulation', { mode: 'build', host: 'h', storeInto: 'o', params: [null, 'x'] }, {})[0]).toMatch(/values\/params\/0/);
});
