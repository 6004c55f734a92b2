import { TEST_LIMITS, parseTestDocument, TestDocumentError, testsFileOf } from '../../../server/flows/test-cases/format';
import { DOMParser } from '@xmldom/xmldom';
import { junitXml, xmlSafe } from '../../../server/flows/test-cases/junit';

const ok = {
  tests: [{ name: 'options', cd: { requestMethod: 'OPTIONS', headers: { From: '<sip:a@b>' } }, expect: { kind: 'reply', status: 200, path: [0, '3'] } }],
};

describe('.tests.json format', () => {
  test('a valid document parses; path entries become strings', () => {
    const d = parseTestDocument(JSON.stringify(ok), 'pbx.tests.json');
    expect(d.tests[0].expect.path).toEqual(['0', '3']);
  });

  test.each([
    ['{"tests": [', /pbx\.tests\.json: \/: invalid JSON/],
    [JSON.stringify({ tests: [{ ...ok.tests[0], expect: { kind: 'answer' } }] }), /pbx\.tests\.json: \/tests\/0\/expect\/kind: /],
    [JSON.stringify({ tests: [{ ...ok.tests[0], now: 'tomorrow' }] }), /\/tests\/0\/now: must be an ISO 8601 date-time with an offset/],
    [JSON.stringify({ tests: [{ ...ok.tests[0], directory: { customers: [] } }] }), /\/tests\/0\/directory\/customers: must be a table as schema\.table/],
    [JSON.stringify({ tests: [{ ...ok.tests[0], cd: { requestMethod: 'OPTIONS', headers: 5 } }] }), /\/tests\/0\/cd: headers/],
    [JSON.stringify({ tests: [ok.tests[0], ok.tests[0]] }), /\/tests\/1\/name: "options" names another test too/],
    [JSON.stringify({ tests: [{ ...ok.tests[0], extra: 1 }] }), /\/tests\/0: .*extra/],
    [JSON.stringify([]), /pbx\.tests\.json: \/: /],
  ])('bad document %# names the file and the pointer', (text, message) => {
    expect(() => parseTestDocument(text, 'pbx.tests.json')).toThrow(TestDocumentError);
    expect(() => parseTestDocument(text, 'pbx.tests.json')).toThrow(message);
  });

  test('sizes are bounded: tests, fixture rows, bytes', () => {
    const many = { tests: Array.from({ length: TEST_LIMITS.maxTests + 1 }, (_, i) => ({ ...ok.tests[0], name: `t${i}` })) };
    expect(() => parseTestDocument(JSON.stringify(many), 'x.tests.json')).toThrow(/\/tests: /);
    const rows = Array.from({ length: TEST_LIMITS.maxRows + 1 }, (_, i) => ({ name: `c${i}` }));
    expect(() => parseTestDocument(JSON.stringify({ tests: [{ ...ok.tests[0], directory: { 'registration.customers': rows } }] }), 'x.tests.json')).toThrow(
      /\/tests\/0: 501 fixture rows/,
    );
    expect(() => parseTestDocument(' '.repeat(TEST_LIMITS.maxBytes + 1), 'x.tests.json')).toThrow(/larger than/);
  });

  test('the sidecar of a .slid', () => {
    expect(testsFileOf('flows/pbx.slid')).toBe('flows/pbx.tests.json');
  });
});

describe('JUnit XML', () => {
  test('text XML cannot hold: control characters dropped, lone surrogates replaced', () => {
    expect(xmlSafe('a\u0001b\n\ud800c\ud83d\ude00')).toBe('ab\n\ufffdc\ud83d\ude00');
  });

  test('a suite per flow, a testcase per test, a failure with its message', () => {
    const xml = junitXml([
      {
        name: 'pbx',
        file: 'flows/pbx.slid',
        report: {
          passed: 1,
          failed: 1,
          results: [
            { name: 'ok', passed: true, logic: '1 "pbx"', actual: { kind: 'reply', status: 200, path: ['0'] }, message: '', durationMs: 3 },
            {
              name: 'a <b> & "c"',
              passed: false,
              logic: '1 "pbx"',
              actual: { kind: 'reply', status: 404, path: ['0', '5'] },
              message: 'expected reply 480, got reply 404',
              durationMs: 4,
            },
          ],
        },
      },
      { name: 'broken', file: 'flows/broken.slid', error: 'broken.tests.json: /tests/0/expect: is required' },
    ]);
    expect(xml).toContain('<testsuites name="sipflow test" tests="3" failures="1" errors="1">');
    expect(xml).toContain('<testsuite name="pbx" file="flows/pbx.slid" tests="2" failures="1" errors="0" time="0.007">');
    expect(xml).toContain('<testcase name="a &lt;b&gt; &amp; &quot;c&quot;" classname="pbx" time="0.004">');
    expect(xml).toContain('<failure message="expected reply 480, got reply 404" type="assertion">');
    expect(xml).toContain('<error message="broken.tests.json: /tests/0/expect: is required">');
    // well-formed, and the names and messages read back as given
    const parsed = new DOMParser({
      onError: (level, msg) => {
        throw new Error(`${level}: ${msg}`);
      },
    }).parseFromString(xml, 'text/xml');
    const cases = parsed.getElementsByTagName('testcase');
    expect(cases.length).toBe(3);
    expect(cases[1].getAttribute('name')).toBe('a <b> & "c"');
    expect(parsed.getElementsByTagName('failure')[0].getAttribute('message')).toBe('expected reply 480, got reply 404');
  });
});
