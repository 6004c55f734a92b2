/** responseFor (sip/response-for.ts): outcome → response parts, the one mapping of both front ends; pure. */
import type { SipHeaders } from '../../../engine/types';
import { httpDate, responseFor } from '../../../sip/response-for';

const NOW = Date.UTC(2026, 0, 2, 3, 4, 5, 678);
const DATE = 'Fri, 02 Jan 2026 03:04:05 GMT';
const none: SipHeaders = {};
const at = { now: NOW };

describe('responseFor', () => {
  test('values a SIP sender fills (reason, reply headers, redirect contacts) cannot split the response: CR, LF and other controls become spaces', () => {
    const evil = 'x\r\nVia: SIP/2.0/UDP 203.0.113.9;branch=z9hG4bKforged\r\n\r\nINVITE';
    const reply = responseFor({ kind: 'reply', status: 486, reason: `Busy ${evil}`, headers: { 'X-Caller': evil } }, none, at);
    const redirect = responseFor({ kind: 'redirect', status: 302, reason: 'Moved', contacts: [`sip:a@b${evil}`] }, none, at);
    for (const parts of [reply, redirect]) {
      const text = JSON.stringify(parts);
      expect(text).not.toMatch(/\\r|\\n/); // no CR or LF anywhere in what the front end writes
      expect(text).toContain('Via: SIP/2.0/UDP 203.0.113.9'); // the text is kept, on one line
    }
    expect(reply).toMatchObject({
      reason: 'Busy x  Via: SIP/2.0/UDP 203.0.113.9;branch=z9hG4bKforged    INVITE',
      headers: [['X-Caller', [expect.stringMatching(/^x {2}Via/)]]],
    });
  });

  test('challenge: 401 / 407, one header line per algorithm, stateless', () => {
    expect(
      responseFor(
        {
          kind: 'challenge',
          status: 407,
          header: 'Proxy-Authenticate',
          realm: 'r',
          nonce: 'n',
          qop: 'auth',
          algorithm: 'SHA-256',
          stale: false,
          challenges: ['Digest a=1, algorithm=SHA-256', 'Digest a=1, algorithm=MD5'],
        },
        none,
        at,
      ),
    ).toEqual({
      kind: 'response',
      status: 407,
      reason: 'Proxy Authentication Required',
      stateless: true,
      headers: [['Proxy-Authenticate', ['Digest a=1, algorithm=SHA-256', 'Digest a=1, algorithm=MD5']]],
    });
    expect(
      responseFor(
        {
          kind: 'challenge',
          status: 401,
          header: 'WWW-Authenticate',
          realm: 'r',
          nonce: 'n',
          qop: 'auth',
          algorithm: 'MD5',
          stale: false,
          challenges: ['Digest x'],
        },
        none,
        at,
      ),
    ).toMatchObject({ status: 401, reason: 'Unauthorized', stateless: true });
  });

  test("2xx register: Contact per binding (q when given), Date, the request's Path echoed; not stateless", () => {
    const request: SipHeaders = { path: ['<sip:edge.example.net;lr>', '<sip:sbc.example.net;lr>'] };
    expect(
      responseFor(
        {
          kind: 'register',
          status: 200,
          reason: 'OK',
          aor: 'a',
          bindings: [
            { contact: 'sip:a@10.0.0.1:5060;ob', expires: 300, q: -1 },
            { contact: 'sip:a@10.0.0.2', expires: 120, q: 0.5 },
          ],
        },
        request,
        at,
      ),
    ).toEqual({
      kind: 'response',
      status: 200,
      reason: 'OK',
      stateless: false,
      headers: [
        ['Contact', ['<sip:a@10.0.0.1:5060;ob>;expires=300', '<sip:a@10.0.0.2>;expires=120;q=0.5']],
        ['Date', [DATE]],
        ['Path', ['<sip:edge.example.net;lr>', '<sip:sbc.example.net;lr>']],
      ],
    });
    // a fetch (no binding) still gets its Date; no Path without one in the request
    expect(responseFor({ kind: 'register', status: 200, reason: 'OK', aor: 'a', bindings: [] }, none, at)).toMatchObject({ headers: [['Date', [DATE]]] });
  });

  test("non-2xx register: the registrar's headers only (no Contact, Date or Path)", () => {
    expect(
      responseFor(
        { kind: 'register', status: 423, reason: 'Interval Too Brief', aor: 'a', bindings: [], headers: { 'Min-Expires': '60' } },
        { path: ['<sip:e;lr>'] },
        at,
      ),
    ).toEqual({ kind: 'response', status: 423, reason: 'Interval Too Brief', stateless: false, headers: [['Min-Expires', ['60']]] });
  });

  test("the registrar's headers replace a generated one of the same name, whatever its case", () => {
    const r = responseFor(
      { kind: 'register', status: 200, reason: 'OK', aor: 'a', bindings: [{ contact: 'sip:a@h', expires: 1, q: -1 }], headers: { date: 'x' } },
      none,
      at,
    );
    expect(r).toMatchObject({
      headers: [
        ['Contact', ['<sip:a@h>;expires=1']],
        ['date', ['x']],
      ],
    });
  });

  test('relay: the targets; none → 480', () => {
    const targets = [{ uri: 'sip:a@10.0.0.1' }];
    expect(responseFor({ kind: 'relay', status: null, targets }, none, at)).toEqual({ kind: 'relay', targets });
    expect(responseFor({ kind: 'relay', status: null, targets: [] }, none, at)).toEqual({
      kind: 'response',
      status: 480,
      reason: 'Temporarily Unavailable',
      headers: [],
      stateless: false,
    });
  });

  test('reply and redirect', () => {
    expect(responseFor({ kind: 'reply', status: 486, reason: 'Busy Here', headers: { 'X-Why': 'screened' } }, none, at)).toEqual({
      kind: 'response',
      status: 486,
      reason: 'Busy Here',
      headers: [['X-Why', ['screened']]],
      stateless: false,
    });
    expect(responseFor({ kind: 'redirect', status: 302, reason: 'Moved Temporarily', contacts: ['sip:a@x', '<sip:b@y>;q=0.5'] }, none, at)).toMatchObject({
      status: 302,
      headers: [['Contact', ['<sip:a@x>', '<sip:b@y>;q=0.5']]],
    });
    expect(responseFor({ kind: 'redirect', status: 300, reason: 'Multiple Choices', contacts: [] }, none, at)).toMatchObject({ headers: [] });
  });

  test('exit: the default route (404 Not Found unless configured)', () => {
    expect(responseFor({ kind: 'exit', status: null }, none, at)).toMatchObject({ status: 404, reason: 'Not Found', headers: [] });
    expect(responseFor({ kind: 'exit', status: null }, none, { now: NOW, exit: { status: 480 } })).toMatchObject({
      status: 480,
      reason: 'Temporarily Unavailable',
    });
    expect(responseFor({ kind: 'exit', status: null }, none, { now: NOW, exit: { status: 603, reason: 'Nope' } })).toMatchObject({
      status: 603,
      reason: 'Nope',
    });
  });

  test("error: 503 + Retry-After (the outcome's, else the option, else 5) or 500; the detail stays off the wire", () => {
    expect(responseFor({ kind: 'error', status: 503, reason: 'location down', retryAfter: 30 }, none, at)).toEqual({
      kind: 'response',
      status: 503,
      reason: 'Service Unavailable',
      headers: [['Retry-After', ['30']]],
      stateless: false,
    });
    expect(responseFor({ kind: 'error', status: 503, reason: 'x' }, none, at)).toMatchObject({ headers: [['Retry-After', ['5']]] });
    expect(responseFor({ kind: 'error', status: 503, reason: 'x' }, none, { now: NOW, retryAfter: 9 })).toMatchObject({ headers: [['Retry-After', ['9']]] });
    expect(responseFor({ kind: 'error', status: 500, reason: 'too many transitions', where: 'logic 1' }, none, at)).toEqual({
      kind: 'response',
      status: 500,
      reason: 'Server Internal Error',
      headers: [],
      stateless: false,
    });
  });

  test('pure: the same input gives the same parts, the inputs are not changed', () => {
    const request: SipHeaders = { path: ['<sip:e;lr>'] };
    const outcome = { kind: 'register' as const, status: 200, reason: 'OK', aor: 'a', bindings: [{ contact: 'sip:a@h', expires: 1, q: -1 }] };
    const a = responseFor(outcome, request, at);
    const b = responseFor(outcome, request, at);
    expect(a).toEqual(b);
    expect(request).toEqual({ path: ['<sip:e;lr>'] });
    expect(outcome.bindings).toHaveLength(1);
    expect(httpDate(NOW)).toBe(DATE);
  });
});
