/**
 * Lists of records and JSON (issue 14): action.createList, appendRow, rotateList, aggregateColumn,
 * flow.forEachRow, action.jsonToList, listToJson, run through the interpreter on small logics.
 */
import { loadSlid } from '../../../engine/load';
import { runLogic } from '../../../engine/run';
import type { RecordRow } from '../../../engine/types';
import { createInstanceCache } from '../../../services/cache';
import { MAX_LIST_ROWS } from '../../../nodes/list';
import { testContext } from '../../support/context';
import { cdOf, compile, docOf, problemsOf, registry, reply, runNodes, setVars, start, type NodeSpec } from '../engine/helpers';

const rows = (n: number, make: (i: number) => RecordRow): RecordRow[] => Array.from({ length: n }, (_, i) => make(i));
const plain = (v: unknown) => JSON.parse(JSON.stringify(v));

describe('action.createList', () => {
  test('writes the rows, each cell a literal, a variable or a [name] template', async () => {
    const r = await runNodes(
      [
        start(1),
        setVars(1, [{ variable: 'gw', value: 'gw1.example' }], 2),
        [
          2,
          'action.createList',
          {
            list: 'routes',
            columns: ['uri', 'weight'],
            rows: [
              ['sip:[called]@[gw]', 10],
              ['gw', 'True'],
            ],
            next: 3,
          },
        ],
        reply(3, 200),
      ],
      { called: '3212345' },
    );
    expect(plain(r.cd.vars.routes)).toEqual([
      { uri: 'sip:3212345@gw1.example', weight: 10 },
      { uri: 'gw1.example', weight: true },
    ]);
  });

  test('no rows: an empty list; wrong row widths and twice-listed columns are located validation errors', async () => {
    const r = await runNodes([start(1), [1, 'action.createList', { list: 'l', columns: ['a'], next: 2 }], reply(2, 200)]);
    expect(r.cd.vars.l).toEqual([]);
    const bad = loadSlid(
      docOf([start(1), [1, 'action.createList', { list: 'l', columns: ['a', 'b', 'a'], rows: [['x']], next: 2 }], reply(2, 200)]),
      't.slid',
      registry,
    );
    expect(problemsOf(bad)).toEqual([
      't.slid › logic 1 "test" › node 1 "n1" › values/columns/2: column a is listed twice',
      't.slid › logic 1 "test" › node 1 "n1" › values/rows/0: has 1 cell(s) for 3 column(s)',
    ]);
  });
});

describe('action.appendRow', () => {
  test('appends to a missing list, then to it; each trace step shows the list as that step wrote it', async () => {
    const r = await runNodes(
      [
        start(1),
        [1, 'action.appendRow', { list: 'l', values: [{ column: 'n', value: 'calling' }], next: 2 }],
        [2, 'action.appendRow', { list: 'l', values: [{ column: 'n', value: 'x-[called]' }, { column: 'm' }], next: 3 }],
        reply(3, 200),
      ],
      { calling: '100', called: '200' },
      undefined,
      { trace: true },
    );
    expect(plain(r.cd.vars.l)).toEqual([{ n: '100' }, { n: 'x-200', m: null }]);
    expect(plain(r.trace![1].set)).toEqual({ l: [{ n: '100' }] });
  });

  test(`a list of ${MAX_LIST_ROWS} rows is full: ifFull, or a 500 naming the node when ifFull is unset`, async () => {
    const full = rows(MAX_LIST_ROWS, (i) => ({ n: i }));
    const nodes = (ifFull?: number): NodeSpec[] => [
      start(1),
      [1, 'action.appendRow', { list: 'l', values: [{ column: 'n', value: 1 }], next: 2, ...(ifFull ? { ifFull } : {}) }],
      reply(2, 200),
      reply(3, 507, 'list full'),
    ];
    const taken = await runNodes(nodes(3), { l: full });
    expect(taken.outcome).toMatchObject({ kind: 'reply', status: 507 });
    expect(taken.cd.vars.l).toHaveLength(MAX_LIST_ROWS);
    const error = await runNodes(nodes(), { l: full });
    expect(error.outcome).toEqual({
      kind: 'error',
      status: 500,
      reason: `Server Internal Error (list l is full (${MAX_LIST_ROWS} rows) and ifFull is unset)`,
      where: 'logic 1 "test" › node 1 "n1"',
    });
  });

  test('a variable holding no list is a 500 naming the node', async () => {
    const r = await runNodes([start(1), [1, 'action.appendRow', { list: 'called', values: [{ column: 'n' }], next: 2 }], reply(2, 200)], { called: '1' });
    expect(r.outcome).toMatchObject({
      kind: 'error',
      status: 500,
      reason: 'Server Internal Error (variable called holds no list)',
      where: 'logic 1 "test" › node 1 "n1"',
    });
  });
});

describe('action.rotateList', () => {
  const three = [{ n: 'a' }, { n: 'b' }, { n: 'c' }];
  const rotate = async (by: unknown, input: Record<string, unknown> = {}) =>
    plain(
      (await runNodes([start(1), [1, 'action.rotateList', { list: 'l', ...(by === undefined ? {} : { by }), next: 2 }], reply(2, 200)], { l: three, ...input }))
        .cd.vars.l,
    );

  test('first row to the end by default; by n, negative n and n larger than the list', async () => {
    expect(await rotate(undefined)).toEqual([{ n: 'b' }, { n: 'c' }, { n: 'a' }]);
    expect(await rotate(2)).toEqual([{ n: 'c' }, { n: 'a' }, { n: 'b' }]);
    expect(await rotate(-1)).toEqual([{ n: 'c' }, { n: 'a' }, { n: 'b' }]);
    expect(await rotate(4)).toEqual([{ n: 'b' }, { n: 'c' }, { n: 'a' }]);
    expect(await rotate(3)).toEqual(three);
  });

  test('by a variable; a non-integer is a 500', async () => {
    const doc = (by: string): NodeSpec[] => [
      start(1),
      setVars(1, [{ variable: 'k', value: by }], 2),
      [2, 'action.rotateList', { list: 'l', by: 'k', next: 3 }],
      reply(3, 200),
    ];
    expect(plain((await runNodes(doc('2'), { l: three })).cd.vars.l)).toEqual([{ n: 'c' }, { n: 'a' }, { n: 'b' }]);
    expect((await runNodes(doc('x'), { l: three })).outcome).toMatchObject({
      kind: 'error',
      status: 500,
      reason: 'Server Internal Error (rotate by "x": not an integer)',
    });
  });
});

describe('action.aggregateColumn', () => {
  const list = [{ v: 5, s: 'b' }, { v: '12', s: 'a' }, { v: null, s: 'c' }, { s: 'x' }, { v: 'n/a', s: 'b' }];
  const agg = async (operation: string, column = 'v', separator?: string) =>
    (
      await runNodes(
        [
          start(1),
          [1, 'action.aggregateColumn', { list: 'l', column, operation, storeInto: 'out', ...(separator ? { separator } : {}), next: 2 }],
          reply(2, 200),
        ],
        { l: list },
      )
    ).cd.vars.out;

  test('count, sum (text skipped), join; nulls and missing cells skipped', async () => {
    expect(await agg('count')).toBe(3);
    expect(await agg('sum')).toBe(17);
    expect(await agg('join')).toBe('5,12,n/a');
    expect(await agg('join', 's', ' | ')).toBe('b | a | c | x | b');
  });

  test('min / max compare as numbers when every cell is numeric, else as text; empty → null', async () => {
    const only = async (operation: string, l: unknown) =>
      (await runNodes([start(1), [1, 'action.aggregateColumn', { list: 'l', column: 'v', operation, storeInto: 'out', next: 2 }], reply(2, 200)], { l })).cd
        .vars.out;
    expect(await only('min', [{ v: '9' }, { v: 10 }, { v: '-1.5' }])).toBe('-1.5');
    expect(await only('max', [{ v: '9' }, { v: 10 }, { v: '-1.5' }])).toBe(10);
    expect(await agg('max', 's')).toBe('x');
    // 5 and '12' are numbers but 'n/a' is text: text order, '12' < '5' < 'n/a'
    expect(await agg('min')).toBe('12');
    expect(await only('min', [])).toBeNull();
    expect(await only('sum', null)).toBe(0);
  });
});

describe('flow.forEachRow', () => {
  /** start → loop over `l` (uri → route.uri) → body: append route.uri to `seen` → back; done → 200. */
  const loop = (extra: Record<string, unknown> = {}): NodeSpec[] => [
    start(1),
    [1, 'flow.forEachRow', { list: 'l', columns: [{ column: 'uri', variable: 'route.uri' }], indexInto: 'route.index', body: 2, done: 3, ...extra }],
    [2, 'action.appendRow', { list: 'seen', values: [{ column: 'v', value: '[route.index]:[route.uri]' }], next: 1 }],
    reply(3, 200),
  ];

  test('writes each row into its variables and takes body, then done; the trace shows each visit', async () => {
    const r = await runNodes(loop(), { l: [{ uri: 'sip:a' }, { uri: 'sip:b' }, { other: 1 }] }, undefined, { trace: true });
    expect(r.outcome).toMatchObject({ kind: 'reply', status: 200 });
    expect(plain(r.cd.vars.seen)).toEqual([{ v: '0:sip:a' }, { v: '1:sip:b' }, { v: '2:' }]);
    expect(r.trace!.filter((t) => t.nodeId === '1').map((t) => [t.exit, t.set])).toEqual([
      ['body', { 'route.index': 0, 'route.uri': 'sip:a' }],
      ['body', { 'route.index': 1, 'route.uri': 'sip:b' }],
      ['body', { 'route.index': 2, 'route.uri': null }],
      ['done', undefined],
    ]);
  });

  test('an empty or missing list takes done at once; a list the body changes is iterated as it was', async () => {
    expect((await runNodes(loop(), {}, undefined, { trace: true })).trace!.map((t) => t.exit)).toEqual(['next', 'done', 'reply']);
    // the body appends to the list it loops over: three rows iterated, the list holds six
    const r = await runNodes(
      [
        start(1),
        [1, 'flow.forEachRow', { list: 'l', columns: [{ column: 'uri', variable: 'u' }], body: 2, done: 3 }],
        [2, 'action.appendRow', { list: 'l', values: [{ column: 'uri', value: 'again-[u]' }], next: 1 }],
        reply(3, 200),
      ],
      { l: [{ uri: 'a' }, { uri: 'b' }, { uri: 'c' }] },
    );
    expect(plain(r.cd.vars.l).map((x: RecordRow) => x.uri)).toEqual(['a', 'b', 'c', 'again-a', 'again-b', 'again-c']);
  });

  test('nested loops keep their own cursor; a loop reached again after done starts from its first row', async () => {
    const r = await runNodes(
      [
        start(1),
        [1, 'flow.forEachRow', { list: 'outer', columns: [{ column: 'o', variable: 'o' }], body: 2, done: 4 }],
        [2, 'flow.forEachRow', { list: 'inner', columns: [{ column: 'i', variable: 'i' }], body: 3, done: 1 }],
        [3, 'action.appendRow', { list: 'pairs', values: [{ column: 'p', value: '[o][i]' }], next: 2 }],
        // a second pass over the same outer loop, entered again after its done
        [4, 'analysis.condition', { logic: 'all', conditions: [{ variable: 'again', operator: 'doesNotExist' }], ifTrue: 5, ifFalse: 6 }],
        setVars(5, [{ variable: 'again', value: 'yes' }], 1),
        reply(6, 200),
      ],
      { outer: [{ o: 'A' }, { o: 'B' }], inner: [{ i: '1' }, { i: '2' }, { i: '3' }] },
    );
    expect(r.outcome).toMatchObject({ kind: 'reply', status: 200 });
    const once = ['A1', 'A2', 'A3', 'B1', 'B2', 'B3'];
    expect(plain(r.cd.vars.pairs).map((x: RecordRow) => x.p)).toEqual([...once, ...once]);
  });

  test('concurrent runs of one compiled logic do not share a cursor (the body awaits the cache)', async () => {
    const service = compile(
      docOf([
        start(1),
        [1, 'flow.forEachRow', { list: 'l', columns: [{ column: 'k', variable: 'k' }], body: 2, done: 4 }],
        [2, 'query.cacheGet', { key: '[k]', storeInto: 'hit', ifFound: 3, ifNotFound: 3 }],
        [3, 'action.appendRow', { list: 'seen', values: [{ column: 'k', value: 'k' }], next: 1 }],
        reply(4, 200),
      ]),
    );
    const ctx = { ...testContext(), cache: createInstanceCache() };
    const runs = await Promise.all(['a', 'b', 'c', 'd'].map((p) => runLogic(service, '1', cdOf({ l: rows(20, (i) => ({ k: `${p}${i}` })) }), ctx)));
    runs.forEach((r, n) => expect(plain(r.cd.vars.seen).map((x: RecordRow) => x.k)).toEqual(rows(20, (i) => ({ k: `${'abcd'[n]}${i}` })).map((x) => x.k)));
  });

  test('a 10,000-row list hits the transition limit: a 500 naming the node where it stopped, not a hang', async () => {
    const big = rows(10_000, (i) => ({ uri: `sip:${i}@gw` }));
    const r = await runNodes(loop(), { l: big });
    expect(r.outcome).toEqual({
      kind: 'error',
      status: 500,
      reason: 'Server Internal Error (more than 1000 state transitions)',
      // start, then loop and body in turn: transition 1001 is the body of row 499
      where: 'logic 1 "test" › node 2 "n2"',
    });
    expect(r.cd.vars.seen).toHaveLength(499);
    // a higher limit lets the same loop finish
    const done = await runNodes(loop(), { l: big.slice(0, 3000) }, undefined, { limits: { maxTransitions: 10_000 } });
    expect(done.outcome).toMatchObject({ kind: 'reply', status: 200 });
    expect(done.cd.vars.seen).toHaveLength(3000);
  });

  test('a variable holding text is no list: a 500 naming the node', async () => {
    expect((await runNodes(loop(), { l: 'a,b' })).outcome).toMatchObject({
      kind: 'error',
      status: 500,
      reason: 'Server Internal Error (variable l holds no list)',
    });
  });
});

describe('action.jsonToList and action.listToJson', () => {
  const toList = (json: unknown, extra: Record<string, unknown> = {}, input: Record<string, unknown> = {}) =>
    runNodes(
      [
        // `payload` is a known variable: the input may bring it
        start(9),
        setVars(9, [{ variable: 'payload', onlyIfNotSet: true }], 1),
        [1, 'action.jsonToList', { json, list: 'l', errorInto: 'err', next: 2, ifInvalid: 3, ...extra }],
        reply(2, 200),
        reply(3, 400),
      ],
      input,
      undefined,
      { trace: true },
    );

  test('an array of objects: one row per object; nested values as JSON text; a pointer to the array', async () => {
    const doc = { data: { 'a/b': [{ uri: 'sip:x', q: 0.5, tags: ['a'], o: { k: 1 }, ok: true, none: null }] } };
    const r = await toList('payload', { pointer: '/data/a~1b' }, { payload: JSON.stringify(doc) });
    expect(r.outcome).toMatchObject({ status: 200 });
    expect(plain(r.cd.vars.l)).toEqual([{ uri: 'sip:x', q: 0.5, tags: '["a"]', o: '{"k":1}', ok: true, none: null }]);
    expect(plain((await toList('[{"a":1},{"b":"x"}]')).cd.vars.l)).toEqual([{ a: 1 }, { b: 'x' }]);
  });

  test('invalid JSON, nothing at the pointer, no array, an element not an object → ifInvalid with the reason', async () => {
    const reason = async (json: unknown, pointer?: string) => {
      const r = await toList(json, pointer === undefined ? {} : { pointer });
      expect(r.outcome).toMatchObject({ status: 400 });
      expect(r.cd.vars.l).toBeUndefined();
      expect(r.trace![2]).toMatchObject({ exit: 'ifInvalid', set: { err: r.cd.vars.err } });
      return r.cd.vars.err;
    };
    expect(await reason('{"a":')).toMatch(/^invalid JSON: /);
    expect(await reason('{"a":[]}', '/b')).toBe('at /b: nothing there');
    expect(await reason('{"a":{}}', '/a')).toBe('at /a: not an array');
    expect(await reason('{"a":[]}', '/a/constructor')).toBe('at /a/constructor: nothing there');
    expect(await reason('{}', '/constructor')).toBe('at /constructor: nothing there');
    expect(await reason('[{"a":1}, 2]')).toBe('the document: element 1 is not an object');
    expect(await reason('payload')).toBe('no JSON text'); // the variable is missing
    expect(await reason('missing')).toMatch(/^invalid JSON: /); // neither a variable nor JSON: the literal text
    expect(await reason(JSON.stringify(rows(MAX_LIST_ROWS + 1, () => ({}))))).toBe(`the document: ${MAX_LIST_ROWS + 1} elements, more than ${MAX_LIST_ROWS}`);
  });

  test('JSON from a SIP sender: __proto__ and constructor keys are plain columns, nothing is evaluated', async () => {
    const r = await toList('payload', {}, { payload: '[{"__proto__":{"polluted":1},"constructor":"x","[called]":"[called]"}]', called: '1' });
    const row = (r.cd.vars.l as RecordRow[])[0];
    expect(Object.keys(row).sort()).toEqual(['[called]', '__proto__', 'constructor']);
    expect(row.__proto__).toBe('{"polluted":1}');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(row['[called]']).toBe('[called]');
  });

  test('a pointer that is not RFC 6901 is a located validation error', () => {
    const bad = loadSlid(docOf([start(1), [1, 'action.jsonToList', { json: '[]', list: 'l', pointer: 'data' }]]), 't.slid', registry);
    expect(problemsOf(bad)[0]).toMatch(/node 1 "n1" › values\/pointer: must match pattern/);
  });

  test('listToJson writes the list as JSON text; jsonToList reads it back', async () => {
    const r = await runNodes(
      [
        start(1),
        [
          1,
          'action.createList',
          {
            list: 'l',
            columns: ['uri', 'q'],
            rows: [
              ['sip:a', 1],
              ['sip:"b"', null],
            ],
            next: 2,
          },
        ],
        [2, 'action.listToJson', { list: 'l', storeInto: 'text', next: 3 }],
        [3, 'action.jsonToList', { json: 'text', list: 'back', next: 4 }],
        [4, 'action.listToJson', { list: 'nothing', storeInto: 'empty', next: 5 }],
        reply(5, 200),
      ],
      {},
    );
    expect(r.cd.vars.text).toBe('[{"uri":"sip:a","q":1},{"uri":"sip:\\"b\\"","q":null}]');
    expect(plain(r.cd.vars.back)).toEqual(plain(r.cd.vars.l));
    expect(r.cd.vars.empty).toBe('[]');
  });
});
