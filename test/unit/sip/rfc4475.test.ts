/**
 * RFC 4475 torture tests: every .dat of the shared corpus, read as raw bytes, must get the
 * outcome its expectations.json entry names (see INDEX.md for the meaning of `class`/`expect`):
 *  - valid           → parses (and the semantic check does not call it a bad request);
 *  - invalid         → parse fails; a numeric expect is the status the failure carries, and a
 *                      failing request always carries 400 (`reject` of a response carries none);
 *  - semantic-error  → parses, then checkRequest answers `expect` (or checkResponse drops it).
 * The corpus lives in shared/ beside the repository (CI copies it there).
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseMessage } from '../../../sip/parser';
import { checkRequest, checkResponse, headerList, header, isRequest, parseVia, type SipRequest, type SipResponse } from '../../../sip/message';
import { parseNameAddr, parseUri } from '../../../grammar/sip-values';

const DIR = path.resolve(__dirname, '../../../../shared/conformance/rfc4475');

interface Expectation {
  file: string;
  section: string;
  class: 'valid' | 'invalid' | 'semantic-error';
  expect: string;
  note: string;
}
const expectations: Expectation[] = JSON.parse(fs.readFileSync(path.join(DIR, 'expectations.json'), 'utf8'));
const raw = (file: string): Buffer => fs.readFileSync(path.join(DIR, file)); // bytes, never text mode

/** Answers of a UAS/registrar to messages the RFC calls valid but that it would not process. */
const ROLE_ANSWERS: Record<string, number> = { 'intmeth.dat': 501, 'esc02.dat': 501 };

function parsed(file: string): SipRequest | SipResponse {
  const r = parseMessage(raw(file));
  if (!r.ok) throw new Error(`${file}: ${r.error}`);
  return r.message;
}

describe('RFC 4475 corpus', () => {
  test('all 49 files are present, listed once, and byte-exact (SHA-256 from INDEX.md)', () => {
    const files = fs
      .readdirSync(DIR)
      .filter((f) => f.endsWith('.dat'))
      .sort();
    expect(files).toHaveLength(49);
    expect(expectations.map((e) => e.file).sort()).toEqual(files);
    const index = fs.readFileSync(path.join(DIR, 'INDEX.md'), 'utf8');
    for (const f of files) {
      const sum = crypto.createHash('sha256').update(raw(f)).digest('hex');
      expect(index).toContain(`${sum}  ${f}`);
    }
  });

  test.each(expectations.map((e) => [e.file, e.class, e.expect, e] as const))('%s (%s, expect %s)', (_f, cls, exp, e) => {
    const r = parseMessage(raw(e.file));
    if (cls === 'invalid') {
      expect(r.ok).toBe(false);
      if (r.ok) return;
      expect(r.error).not.toMatch(/internal/);
      const isResponse = raw(e.file).subarray(0, 4).toString() === 'SIP/';
      if (exp === 'reject') expect(r.status).toBe(isResponse ? undefined : 400);
      else expect(String(r.status)).toBe(exp);
      // a rejected request keeps what is needed to answer it
      if (!isResponse) expect(r.partial?.headers['call-id']).toBeDefined();
      return;
    }
    if (!r.ok) throw new Error(`${e.file} must parse: ${r.error}`);
    const m = r.message;
    if (cls === 'valid') {
      if (isRequest(m)) expect(checkRequest(m)?.status ?? null).toBe(ROLE_ANSWERS[e.file] ?? null);
      else expect(checkResponse(m)).toBeNull();
      return;
    }
    // semantic-error
    if (isRequest(m)) expect(String(checkRequest(m)?.status)).toBe(exp);
    else {
      expect(exp).toBe('reject');
      expect(checkResponse(m)).not.toBeNull();
    }
  });
});

describe('RFC 4475 details the notes ask for', () => {
  test('wsinv: folding, LWS, compact names, escaped quotes, leading zeros', () => {
    const m = parsed('wsinv.dat') as SipRequest;
    expect(m.method).toBe('INVITE');
    expect(header(m, 'to')).toBe('sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n');
    expect(parseNameAddr(header(m, 'from')!)).toEqual({ displayName: 'J Rosenberg \\"', uri: 'sip:jdrosen@example.com', params: { tag: '98asjd8' } });
    expect(header(m, 'max-forwards')).toBe('0068');
    expect(header(m, 'cseq')).toBe('0009 INVITE');
    expect(header(m, 'subject')).toBe('');
    expect(header(m, 'newfangledheader')).toBe('newfangled value continued newfangled value');
    expect(header(m, 'unknownheaderwithunusualvalue')).toBe(';;,,;;,;');
    const vias = headerList(m, 'via').map((v) => parseVia(v)!);
    expect(vias.map((v) => [v.protocol, v.transport, v.host, v.branch])).toEqual([
      ['SIP/2.0', 'UDP', '192.0.2.2', '390skdjuw'],
      ['SIP/2.0', 'TCP', 'spindle.example.com', 'z9hG4bK9ikj8'],
      ['SIP/2.0', 'UDP', '192.168.255.111', 'z9hG4bK30239'],
    ]);
    const contact = parseNameAddr(header(m, 'contact')!)!;
    expect(contact.displayName).toBe('Quoted string ""');
    expect(contact.params).toEqual({ newparam: 'newvalue', secondparam: null, q: '0.33' });
    expect(m.body.length).toBe(150);
  });

  test('intmeth: token-punctuation method, odd user/password, NUL/BEL/DEL in quotes', () => {
    const m = parsed('intmeth.dat') as SipRequest;
    expect(m.method).toBe("!interesting-Method0123456789_*+`.%indeed'~");
    const u = parseUri(m.uri)!;
    expect(u.user).toBe("1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*");
    expect(u.password).toBe("&it+has=1,weird!*pas$wo~d_too.(doesn't-it)");
    expect(u.host).toBe('example.com');
    expect(u.headers).toBeNull();
    expect(parseNameAddr(header(m, 'to')!)!.displayName).toBe('BEL:\x07 NUL:\x00 DEL:\x7f');
    const from = parseNameAddr(header(m, 'from')!)!;
    expect(from.displayName).toBe("token1~` token2'+_ token3*%!.-");
    expect(from.params["fromparam''~+*_!.-%"]).toBe('работающий');
    expect(from.params.tag).toBe("_token~1'+`*%!-.");
    expect(header(m, 'call-id')).toBe('intmeth.word%ZK-!.*_+\'@word`~)(><:\\/"][?}{');
  });

  test('esc01: escapes decoded exactly once', () => {
    const m = parsed('esc01.dat') as SipRequest;
    expect(parseUri(m.uri)!.user).toBe('sips:user@example.com');
    expect(parseUri(header(m, 'to')!)!.user).toBe('user');
    const contact = parseUri(parseNameAddr(header(m, 'contact')!)!.uri)!;
    expect(contact.user).toBe('caller');
    expect(contact.params).toEqual({ lr: null, name: 'value%41' });
  });

  test('escnull: %00 users are not truncated and stay distinct', () => {
    const users = headerList(parsed('escnull.dat'), 'contact').map((c) => parseUri(parseNameAddr(c)!.uri)!.user);
    expect(users).toEqual(['\0', '\0\0']);
  });

  test("esc02: 'C%6Fntact' is an extension header, so two Contacts", () => {
    const m = parsed('esc02.dat') as SipRequest;
    expect(m.method).toBe('RE%47IST%45R');
    expect(headerList(m, 'contact')).toHaveLength(2);
    expect(header(m, 'c%6fntact')).toBe('<sip:alias2@host2.example.com>');
    expect(parseNameAddr(header(m, 'to')!)!.displayName).toBe('%Z%45');
  });

  test('longreq: 34 Via values in every spelling', () => {
    expect(headerList(parsed('longreq.dat'), 'via')).toHaveLength(34);
  });

  test('dblreq: one message only, the trailing INVITE is ignored', () => {
    const m = parsed('dblreq.dat') as SipRequest;
    expect(m.method).toBe('REGISTER');
    expect(m.body.length).toBe(0);
    expect(header(m, 'call-id')).toBe('dblreq.0ha0isndaksdj99sdfafnl3lk233412');
  });

  test('semiuri: user part holds ;par= and an escaped @', () => {
    const u = parseUri((parsed('semiuri.dat') as SipRequest).uri)!;
    expect(u.user).toBe('user;par=u@example.net');
    expect(u.host).toBe('example.com');
  });

  test('transports: unknown transport carried unchanged', () => {
    expect(headerList(parsed('transports.dat'), 'via').map((v) => parseVia(v)!.transport)).toEqual(['UDP', 'SCTP', 'TLS', 'UNKNOWN', 'TCP']);
  });

  test('mpart01: binary body framed by Content-Length, NUL/CR/LF kept', () => {
    const body = parsed('mpart01.dat').body as Buffer;
    expect(body.length).toBe(553);
    expect(body.includes(0)).toBe(true);
  });

  test('unreason / noreason: UTF-8 and empty reason phrases', () => {
    const u = parsed('unreason.dat') as SipResponse;
    expect(u.status).toBe(200);
    expect(u.reason).toContain('\u043d\u043e');
    const n = parsed('noreason.dat') as SipResponse;
    expect([n.status, n.reason]).toEqual([100, '']);
  });

  test('cparam01/02: unknownparam is a header param when bare, a URI param when bracketed', () => {
    const c1 = parseNameAddr(header(parsed('cparam01.dat'), 'contact')!)!;
    expect(c1.params).toEqual({ unknownparam: null });
    expect(parseUri(c1.uri)!.params).toEqual({});
    const c2 = parseNameAddr(header(parsed('cparam02.dat'), 'contact')!)!;
    expect(c2.params).toEqual({});
    expect(parseUri(c2.uri)!.params).toEqual({ unknownparam: null });
  });

  test('regescrt: bracketed Contact keeps its escaped Route header', () => {
    const c = parseNameAddr(header(parsed('regescrt.dat'), 'contact')!)!;
    expect(parseUri(c.uri)!.headers).toBe('Route=%3Csip:sip.example.com%3E');
  });

  test('inv2543: no Content-Length → body is the rest of the datagram', () => {
    const m = parsed('inv2543.dat');
    expect(m.body.toString()).toMatch(/^v=0\r\n[\s\S]*m=audio 49217 RTP\/AVP 0\r\n$/);
  });

  test('bext01: 420 lists the unsupported Require tags', () => {
    expect(checkRequest(parsed('bext01.dat') as SipRequest)?.headers?.unsupported).toBe('nothingSupportsThis, nothingSupportsThisEither');
  });
});
