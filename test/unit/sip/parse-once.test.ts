/**
 * Header values parsed once per message: the parser's checks hand what they parsed (the first Via
 * line, From, To, a sip Request-URI) on to checkRequest, the front end and the call descriptor,
 * which adds the From and To URIs and keeps them for the nodes (nodes/extract-header.ts). What is
 * handed on is used only for the very text it was parsed from: a value rewritten since is parsed
 * afresh. A reader that parsed again instead of taking the handed-on value shows here as the
 * forged value not coming through.
 */
import { runLogic } from '../../../engine/run';
import type { CallDescriptor } from '../../../engine/types';
import { parseNameAddr, parseUri, reuse, type NameAddr } from '../../../grammar/sip-values';
import { acceptingAuth, testContext } from '../../support/context';
import { compile, docOf, start } from '../engine/helpers';
import { cdBuilder } from '../../../sip/call-descriptor';
import { checkRequest, parseViaList, type RequestValues, type SipRequest } from '../../../sip/message';
import { parseMessage } from '../../../sip/parser';
import { peekRequest } from '../../../sip/request-peek';

const REGISTER = Buffer.from(
  [
    'REGISTER sip:alice@example.com SIP/2.0',
    'Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776;rport',
    'Max-Forwards: 70',
    'From: "Alice" <sip:alice@example.com>;tag=456',
    'To: <sip:alice@example.com>',
    'Call-ID: abc@host',
    'CSeq: 1 REGISTER',
    'Contact: <sip:alice@192.0.2.10:5060>',
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n'),
);

const peer = { proto: 'udp', address: '192.0.2.10', port: 5060 };
const local = { proto: 'udp', address: '192.0.2.1', port: 5060 };

function parsed(bytes = REGISTER): { req: SipRequest; values: RequestValues } {
  const r = parseMessage(bytes);
  if (!r.ok) throw new Error(r.error);
  return { req: r.message as SipRequest, values: r.values };
}

/** `na` with another URI, under the same text: what a reader shows when it took the handed-on value. */
const forged = (text: string, na: NameAddr, uri: string) => ({ text, value: { ...na, uri } });

describe('the parser hands on what its checks parsed', () => {
  test('the first Via line, From, To and the Request-URI, each with its text and equal to a fresh parse of it', () => {
    const { req, values } = parsed();
    const h = req.headers;
    expect([values.via?.text, values.from?.text, values.to?.text, values.requestUri?.text]).toEqual([h.via[0], h.from[0], h.to[0], req.uri]);
    expect(values.via?.value).toEqual(parseViaList(h.via[0]));
    expect(values.from?.value).toEqual(parseNameAddr(h.from[0]));
    expect(values.from?.value).toEqual({ displayName: 'Alice', uri: 'sip:alice@example.com', params: { tag: '456' } });
    expect(values.to?.value).toEqual(parseNameAddr(h.to[0]));
    expect(values.requestUri?.value).toEqual(parseUri(req.uri));
    // the parsers are pure: the same text parses the same, each call to a result of its own
    expect(parseNameAddr(h.from[0])).toEqual(parseNameAddr(h.from[0]));
    expect(parseNameAddr(h.from[0])).not.toBe(parseNameAddr(h.from[0]));
  });

  test("the peek's Via line is the parser's, not parsed again", () => {
    const peek = peekRequest(REGISTER)!;
    const r = parseMessage(REGISTER, peek.viaLine);
    expect(r.ok && r.values.via).toBe(peek.viaLine);
    expect(peek.viaLine.value[0]).toBe(peek.via);
  });

  test('a request that fails its checks hands nothing on', () => {
    const r = parseMessage(Buffer.from(REGISTER.toString().replace('To: <sip:alice@example.com>', 'To: Bell, Alexander <sip:a@h>')));
    expect(r).toMatchObject({ ok: false, error: 'bad To header' });
    expect('values' in r).toBe(false);
  });
});

describe('reuse', () => {
  test('the kept parse for its own text, a fresh one for any other text', () => {
    const kept = { text: '<sip:a@h>', value: parseNameAddr('<sip:a@h>')! };
    const calls: string[] = [];
    const parse = (t: string) => (calls.push(t), parseNameAddr(t));
    expect(reuse(kept, '<sip:a@h>', parse)).toBe(kept);
    expect(reuse(kept, ['<sip:a', '@h>'].join(''), parse)).toBe(kept); // equal text, another string
    expect(reuse(kept, '<sip:b@h>', parse)).toEqual({ text: '<sip:b@h>', value: { displayName: null, uri: 'sip:b@h', params: {} } });
    expect(reuse(undefined, '<sip:c@h>', parse)?.value.uri).toBe('sip:c@h');
    expect(reuse(kept, 'Bell, Alexander <sip:a@h>', parse)).toBeNull();
    expect(calls).toEqual(['<sip:b@h>', '<sip:c@h>', 'Bell, Alexander <sip:a@h>']);
  });
});

describe('the readers take it', () => {
  test('checkRequest: the top Via and the To of a REGISTER', () => {
    const { req, values } = parsed();
    expect(checkRequest(req, undefined, values)).toBeNull();
    const to = forged(req.headers.to[0], values.to!.value, 'tel:+3225551234');
    expect(checkRequest(req, undefined, { ...values, to })).toMatchObject({ status: 400, reason: 'Address-of-record must be a SIP or SIPS URI' });
    const via = { text: req.headers.via[0], value: [{ ...values.via!.value[0], branch: 'z9hG4bK' }] };
    expect(checkRequest(req, undefined, { ...values, via })).toMatchObject({ status: 400, reason: 'Via branch is only the magic cookie' });
  });

  test('the call descriptor: From, To, the Request-URI; it keeps them, their URIs added', () => {
    const { req, values } = parsed();
    const build = cdBuilder(acceptingAuth);
    const cd = build(req, peer, local, values);
    expect([cd.vars.fromUsername, cd.vars.toUsername, cd.vars.requestUsername]).toEqual(['alice', 'alice', 'alice']);
    expect(cd.parsed?.from).toBe(values.from);
    expect(cd.parsed?.to).toBe(values.to);
    expect(cd.parsed?.requestUri).toBe(values.requestUri);
    expect(cd.parsed?.toUri).toEqual({ text: 'sip:alice@example.com', value: parseUri('sip:alice@example.com') });
    expect(cd.parsed?.fromUri?.value).toEqual(parseUri('sip:alice@example.com'));

    const from = forged(req.headers.from[0], values.from!.value, 'sip:mallory@example.com');
    expect(build(req, peer, local, { ...values, from }).vars.fromUsername).toBe('mallory');
  });

  test('the extract node: From and To and their URIs, from the CD', async () => {
    const { req, values } = parsed();
    const logic = compile(
      docOf([
        start(1),
        [
          1,
          'analysis.extractSipHeader',
          {
            extractions: [
              { header: 'To', part: 'user', storeInto: 'toUser' },
              { header: 'From', part: 'param', param: 'tag', storeInto: 'fromTag' },
            ],
            next: 2,
          },
        ],
        [2, 'output.reply', { code: 200 }],
      ]),
    );
    const extracted = async (cd: CallDescriptor) => {
      const r = await runLogic(logic, '1', cd, testContext());
      return [r.cd.vars.toUser, r.cd.vars.fromTag];
    };
    const cd = cdBuilder(acceptingAuth)(req, peer, local, values);
    expect(await extracted(cd)).toEqual(['alice', '456']);
    const toUri = cd.parsed!.toUri!;
    cd.parsed!.toUri = { text: toUri.text, value: { ...toUri.value, user: 'bob' } };
    cd.parsed!.from = { text: req.headers.from[0], value: { ...values.from!.value, params: { tag: 'kept' } } };
    expect(await extracted(cd)).toEqual(['bob', 'kept']);
  });
});

describe('a value rewritten after the parse is parsed afresh', () => {
  test('a Request-URI a strict route replaced, a To rewritten, a stamped Via', () => {
    const { req, values } = parsed();
    req.uri = 'sip:bob@example.com';
    req.headers.to[0] = '<sip:carol@example.com>';
    const cd = cdBuilder(acceptingAuth)(req, peer, local, values);
    expect([cd.vars.requestUsername, cd.vars.toUsername, cd.vars.fromUsername]).toEqual(['bob', 'carol', 'alice']);
    expect([cd.parsed?.requestUri?.text, cd.parsed?.to?.text]).toEqual(['sip:bob@example.com', '<sip:carol@example.com>']);

    const again = parsed();
    again.req.headers.via[0] = 'SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK';
    again.req.headers.to[0] = '<tel:+3225551234>';
    expect(checkRequest(again.req, undefined, again.values)).toMatchObject({ status: 400, reason: 'Via branch is only the magic cookie' });
    again.req.headers.via[0] = 'SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK777';
    expect(checkRequest(again.req, undefined, again.values)).toMatchObject({ status: 400, reason: 'Address-of-record must be a SIP or SIPS URI' });
  });
});
