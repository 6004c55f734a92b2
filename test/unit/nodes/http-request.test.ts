/** query.httpRequest: what check() and the schema find in advance, and what the node refuses before sending. */
import { loadSlid } from '../../../engine/load';
import { testContext } from '../../support/context';
import { docOf, problemsOf, registry, reply, runNodes, setVars, start, type NodeSpec } from '../engine/helpers';

const http = (values: Record<string, unknown>): NodeSpec[] => [
  start(1),
  [1, 'query.httpRequest', { url: 'http://127.0.0.1:9/route?called=[called]', ifSuccess: 2, ifFailure: 3, ifTimeout: 4, ...values }],
  reply(2, 200),
  reply(3, 503, 'failure'),
  reply(4, 504, 'timeout'),
];

/** The problems of one node (logic 1, node 1), without the file prefix. */
const problems = (values: Record<string, unknown>): string[] =>
  problemsOf(loadSlid(docOf(http(values)), 't.slid', registry)).map((p) => p.replace(/^t\.slid › logic 1 "test" › node 1 "n1" › values\//, ''));

describe('query.httpRequest: validation known in advance', () => {
  test('a valid node has no problem; defaults fill what is left out', () => {
    expect(problems({})).toEqual([]);
    expect(
      problems({
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Authorization: 'Bearer [apiKey]' },
        body: '{"called": "[called]", "n": [count], "list": [[a], [b]]}',
        timeoutMs: 60000,
        responseFormat: 'json',
        storeInto: [
          { path: '/route/0/uri', variable: 'target' },
          { path: '/a~1b/~0c', variable: 'x' },
          { path: '', variable: 'whole' },
        ],
      }),
    ).toEqual([]);
  });

  test('the URL: http(s) once placeholders take a sample value, no placeholder before the path, no credentials', () => {
    expect(problems({ url: 'http://[host]/route' })).toEqual([
      'url: placeholders are allowed after the host only (path, query): a value must not choose where the request goes',
    ]);
    expect(problems({ url: 'http://api.example:[port]/route' })).toEqual([expect.stringMatching(/^url: placeholders are allowed after the host only/)]);
    expect(problems({ url: '[base]/route' })).toEqual([expect.stringMatching(/^url: placeholders are allowed after the host only/)]);
    expect(problems({ url: 'ftp://example.com/x' })).toEqual(['url: must be an http:// or https:// URL']);
    expect(problems({ url: 'routing api' })).toEqual(['url: is not a URL (placeholders replaced by a sample value)']);
    expect(problems({ url: 'https://user:secret@example.com/x' })).toEqual(['url: holds credentials: send them in an Authorization header']);
    expect(problems({ url: 'http://[::1]:8080/route/[called]' })).toEqual([]);
    expect(problems({ url: 'https://api.example/route/[called]?from=[calling]' })).toEqual([]);
  });

  test('timeoutMs within 1..60000, method among the six', () => {
    expect(problems({ timeoutMs: 0 })).toEqual(['timeoutMs: must be >= 1']);
    expect(problems({ timeoutMs: 60001 })).toEqual(['timeoutMs: must be <= 60000']);
    expect(problems({ timeoutMs: 1.5 })).toEqual(['timeoutMs: must be integer']);
    expect(problems({ method: 'TRACE' })).toEqual(['method: must be one of "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"']);
  });

  test('paths: JSON Pointer syntax for json, XPath that compiles for xml, none for text, either for auto', () => {
    expect(
      problems({
        responseFormat: 'json',
        storeInto: [
          { path: 'route/uri', variable: 'a' },
          { path: '/a~2', variable: 'b' },
        ],
      }),
    ).toEqual([
      'storeInto/0/path: is not a JSON Pointer (RFC 6901: /name/0, ~0 for ~, ~1 for /)',
      'storeInto/1/path: is not a JSON Pointer (RFC 6901: /name/0, ~0 for ~, ~1 for /)',
    ]);
    expect(
      problems({
        responseFormat: 'xml',
        storeInto: [
          { path: '/route/@uri', variable: 'a' },
          { path: '/route[', variable: 'b' },
        ],
      }),
    ).toEqual([expect.stringMatching(/^storeInto\/1\/path: is not an XPath: /)]);
    expect(problems({ responseFormat: 'text', storeInto: [{ path: '/x', variable: 'a' }, { variable: 'b' }] })).toEqual([
      'storeInto/0/path: a text response is stored whole: leave the path empty',
    ]);
    expect(
      problems({
        storeInto: [
          { path: 'count(//route)', variable: 'a' },
          { path: 'route[', variable: 'b' },
        ],
      }),
    ).toEqual(['storeInto/1/path: is neither a JSON Pointer nor an XPath']);
  });

  test('headers: token names, no control character in a literal value, none the client sets itself', () => {
    expect(problems({ headers: { 'X-A': 'a\r\nX-Injected: 1' } })).toEqual(['headers/X-A: holds a control character (CR, LF, …)']);
    expect(problems({ headers: { 'Content-Length': '5', Connection: 'close' } })).toEqual([
      'headers/Content-Length: is set by the HTTP client, not by a logic',
      'headers/Connection: is set by the HTTP client, not by a logic',
    ]);
    expect(problems({ headers: { 'bad name': 'x' } })).toEqual([
      'headers: must match pattern "^[A-Za-z0-9!#$%&\'*+.^_`|~-]+$"',
      'headers: property name must be valid',
    ]);
  });

  test('body: none for GET or HEAD; JSON when Content-Type is JSON (placeholders as a sample), a bare variable name let through', () => {
    expect(problems({ body: 'x=1' })).toEqual(['body: a GET request has no body']);
    expect(problems({ method: 'HEAD', body: 'x' })).toEqual(['body: a HEAD request has no body']);
    expect(problems({ method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a": [called' })).toEqual([
      expect.stringMatching(/^body: is not JSON \(Content-Type is JSON\) once placeholders are replaced: /),
    ]);
    expect(problems({ method: 'POST', headers: { 'content-type': 'application/json' }, body: 'payload' })).toEqual([]);
  });

  test('the variables it writes are known to the logic: stored ones, status, elapsed time, summary (defaults or named)', () => {
    const type = registry.get('query.httpRequest')!;
    expect(registry.writes(type, { url: 'http://x/', storeInto: [{ path: '/a', variable: 'target' }] })).toEqual([
      'target',
      'httpStatus',
      'httpElapsedMs',
      'httpSummary',
    ]);
    expect(registry.writes(type, { url: 'http://x/', statusVariable: 's', elapsedVariable: 'e', summaryVariable: 'm' })).toEqual(['s', 'e', 'm']);
  });
});

describe('query.httpRequest: refused before sending (ifFailure, a summary saying why)', () => {
  const run = (values: Record<string, unknown>, input: Record<string, unknown>) => runNodes(http(values), input, testContext(), { trace: true });

  test('no HTTP client in the run context', async () => {
    const r = await run({}, { called: '1000' });
    expect(r.outcome).toMatchObject({ status: 503, reason: 'failure' });
    expect(r.trace![1]).toMatchObject({
      exit: 'ifFailure',
      set: { httpStatus: 0, httpElapsedMs: 0, httpSummary: 'GET http://127.0.0.1:9/route?called=1000 → not sent: no HTTP client in this run context' },
    });
  });

  test('a placeholder value making a dot segment in the path', async () => {
    for (const called of ['..', '.']) {
      const r = await run({ url: 'http://127.0.0.1:9/api/[called]/route' }, { called });
      expect(r.cd.vars.httpSummary).toBe(
        `GET http://127.0.0.1:9/api/${called}/route → not sent: a placeholder value made a "." or ".." segment in the URL path`,
      );
    }
    // inside a segment, or in the query, dots are plain text
    const r = await run({ url: 'http://127.0.0.1:9/api/n[called]?q=[called]' }, { called: '..' });
    expect(r.cd.vars.httpSummary).toBe('GET http://127.0.0.1:9/api/n..?q=.. → not sent: no HTTP client in this run context');
  });

  test('a header value holding CR/LF, from a placeholder or a variable', async () => {
    const r = await run({ headers: { 'X-Caller': 'id [calling]' } }, { called: '1', calling: 'x\r\nX-Admin: 1' });
    expect(r.cd.vars.httpSummary).toBe('GET http://127.0.0.1:9/route?called=1 → not sent: header X-Caller: the value holds a control character (CR, LF, …)');
  });

  test('a value that cannot be percent-encoded (a lone surrogate)', async () => {
    const r = await run({}, { called: '\ud800' });
    expect(r.cd.vars.httpSummary).toMatch(/→ not sent: a placeholder value cannot be encoded/);
    expect(r.trace![1].exit).toBe('ifFailure');
  });

  test('placeholders of secret variables show as [redacted] in the summary', async () => {
    const [, node, ...rest] = http({ url: 'http://127.0.0.1:9/route?called=[called]&key=[apiToken]' });
    const r = await runNodes([start(5), setVars(5, [{ variable: 'apiToken', value: 's3cr3t' }], 1), node, ...rest], { called: '1' });
    expect(r.cd.vars.httpSummary).toBe('GET http://127.0.0.1:9/route?called=1&key=[redacted] → not sent: no HTTP client in this run context');
  });
});
