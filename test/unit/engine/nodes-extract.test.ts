import { reply, runNodes, start, type NodeSpec } from './helpers';

type Extraction = Record<string, unknown>;

const extract = (extractions: Extraction[], exits: { next?: number; ifNotFound?: number } = { next: 2 }): NodeSpec[] => [
  start(1),
  [1, 'analysis.extractSipHeader', { extractions, ...exits }],
  reply(2, 200),
  reply(3, 404),
];

async function vars(extractions: Extraction[], headers: Record<string, string | string[]>, input: Record<string, unknown> = {}) {
  const r = await runNodes(extract(extractions), { ...input, headers });
  return r.cd.vars;
}

const INVITE_HEADERS = {
  From: '"Alice Smith" <sip:alice@example.com;user=phone>;tag=abc',
  To: '<sip:+3225551234@example.com:5070>',
  Contact: '<sip:pbx@10.0.0.9:5060;transport=udp;tgrp=TG-7>;expires=60, <sip:pbx2@10.0.0.10>',
  Diversion: '<sip:+3222000000@div.example>;reason=unconditional;counter=1, <sip:+3223000000@div.example>;reason=user-busy',
  'P-Asserted-Identity': '"PAI Name" <sip:+3224000000@pai.example>, <tel:+3224000000>',
  'Remote-Party-ID': '"RPID" <sip:+3226000000@rpid.example>;party=calling;screen=yes',
};

describe('analysis.extractSipHeader', () => {
  test('From and To: URI (auto), user, host, port, display name, raw value', async () => {
    const v = await vars(
      [
        { header: 'From', storeInto: 'fromUri' },
        { header: 'From', part: 'user', storeInto: 'fromUser' },
        { header: 'From', part: 'host', storeInto: 'fromHost' },
        { header: 'From', part: 'displayName', storeInto: 'fromName' },
        { header: 'From', part: 'param', param: 'tag', storeInto: 'fromTag' },
        { header: 'To', part: 'uri', storeInto: 'toUri' },
        { header: 'To', part: 'port', storeInto: 'toPort' },
        { header: 'To', part: 'value', storeInto: 'toRaw' },
      ],
      INVITE_HEADERS,
    );
    expect(v).toMatchObject({
      fromUri: 'sip:alice@example.com;user=phone',
      fromUser: 'alice',
      fromHost: 'example.com',
      fromName: 'Alice Smith',
      fromTag: 'abc',
      toUri: 'sip:+3225551234@example.com:5070',
      toPort: 5070,
      toRaw: '<sip:+3225551234@example.com:5070>',
    });
  });

  test('Contact tgrp URI parameter, header parameter, first and last entry', async () => {
    const v = await vars(
      [
        { header: 'Contact', part: 'param', param: 'tgrp', storeInto: 'tgrp' },
        { header: 'Contact', part: 'param', param: 'expires', storeInto: 'contactExpires' },
        { header: 'Contact', storeInto: 'firstContact' },
        { header: 'Contact', index: 'last', storeInto: 'lastContact' },
        { header: 'Contact', part: 'param', param: 'nothere', storeInto: 'nothere' },
      ],
      INVITE_HEADERS,
    );
    expect(v).toMatchObject({
      tgrp: 'TG-7',
      contactExpires: '60',
      firstContact: 'sip:pbx@10.0.0.9:5060;transport=udp;tgrp=TG-7',
      lastContact: 'sip:pbx2@10.0.0.10',
    });
    expect('nothere' in v).toBe(false);
  });

  test('tgrp in the user part of a SIP URI, as RFC 4904 writes it', async () => {
    const v = await vars([{ header: 'Contact', part: 'param', param: 'tgrp', storeInto: 'tgrp' }], {
      Contact: '<sip:+16305550100;tgrp=TG-1;trunk-context=example.com@gw.example.com;user=phone>',
    });
    expect(v.tgrp).toBe('TG-1');
  });

  test('Diversion, P-Asserted-Identity and Remote-Party-ID users, display names and params', async () => {
    const v = await vars(
      [
        { header: 'Diversion', part: 'user', storeInto: 'divUser' },
        { header: 'Diversion', part: 'param', param: 'reason', storeInto: 'divReason' },
        { header: 'Diversion', part: 'user', index: 'last', storeInto: 'lastDivUser' },
        { header: 'P-Asserted-Identity', part: 'user', storeInto: 'paiUser' },
        { header: 'P-Asserted-Identity', part: 'displayName', storeInto: 'paiName' },
        { header: 'P-Asserted-Identity', index: 'last', storeInto: 'paiTel' },
        { header: 'Remote-Party-ID', part: 'user', storeInto: 'rpidUser' },
        { header: 'remote-party-id', storeInto: 'cliURI' },
        { header: 'Remote-Party-ID', part: 'param', param: 'party', storeInto: 'rpidParty' },
      ],
      INVITE_HEADERS,
    );
    expect(v).toMatchObject({
      divUser: '+3222000000',
      divReason: 'unconditional',
      lastDivUser: '+3223000000',
      paiUser: '+3224000000',
      paiName: 'PAI Name',
      paiTel: 'tel:+3224000000',
      rpidUser: '+3226000000',
      cliURI: 'sip:+3226000000@rpid.example',
      rpidParty: 'calling',
    });
  });

  test('compact header names in the CD input and in the extraction', async () => {
    const v = await vars(
      [
        { header: 'From', part: 'user', storeInto: 'a' },
        { header: 'f', part: 'user', storeInto: 'b' },
        { header: 'Contact', part: 'user', storeInto: 'c' },
        { header: 'm', part: 'host', storeInto: 'd' },
        { header: 'i', storeInto: 'e' },
      ],
      { f: '<sip:carol@example.com>;tag=1', m: '<sip:carol@10.0.0.1>', i: 'cid-1' },
    );
    expect(v).toMatchObject({ a: 'carol', b: 'carol', c: 'carol', d: '10.0.0.1', e: 'cid-1' });
  });

  test('other headers are copied as they are (trimmed), several values: first or last', async () => {
    const v = await vars(
      [
        { header: 'User-Agent', storeInto: 'ua' },
        { header: 'X-Custom', storeInto: 'xFirst' },
        { header: 'X-Custom', index: 'last', storeInto: 'xLast' },
      ],
      { 'User-Agent': '  Telephone 1.0 ', 'X-Custom': ['one', 'two'] },
    );
    expect(v).toMatchObject({ ua: 'Telephone 1.0', xFirst: 'one', xLast: 'two' });
  });

  test('a display name that is absent or a header that is absent writes nothing', async () => {
    const v = await vars(
      [
        { header: 'To', part: 'displayName', storeInto: 'toName' },
        { header: 'Diversion', storeInto: 'div' },
      ],
      { To: '<sip:x@y>' },
    );
    expect('toName' in v).toBe(false);
    expect('div' in v).toBe(false);
  });

  test('priority chain with onlyIfNotSet: Diversion → P-Asserted-Identity → Remote-Party-ID → From', async () => {
    const chain: Extraction[] = ['Diversion', 'P-Asserted-Identity', 'Remote-Party-ID', 'From'].map((header) => ({
      header,
      part: 'user',
      storeInto: 'cli',
      onlyIfNotSet: true,
    }));
    expect((await vars(chain, INVITE_HEADERS)).cli).toBe('+3222000000');
    const { Diversion: _d, ...noDiv } = INVITE_HEADERS;
    expect((await vars(chain, noDiv)).cli).toBe('+3224000000');
    const { 'P-Asserted-Identity': _p, ...noPai } = noDiv;
    expect((await vars(chain, noPai)).cli).toBe('+3226000000');
    const { 'Remote-Party-ID': _r, ...fromOnly } = noPai;
    expect((await vars(chain, fromOnly)).cli).toBe('alice');
    // a value already in the CD wins over every header
    expect((await vars(chain, INVITE_HEADERS, { cli: 'preset' })).cli).toBe('preset');
  });

  test('without onlyIfNotSet the last found value wins', async () => {
    const chain: Extraction[] = ['Diversion', 'From'].map((header) => ({ header, part: 'user', storeInto: 'cli' }));
    expect((await vars(chain, INVITE_HEADERS)).cli).toBe('alice');
  });

  test('ifNotFound is taken when no extraction found anything; next otherwise, or when ifNotFound is unset', async () => {
    const e = [{ header: 'Diversion', part: 'user', storeInto: 'div' }];
    const miss = await runNodes(extract(e, { next: 2, ifNotFound: 3 }), { headers: { From: '<sip:a@b>' } }, undefined, { trace: true });
    expect(miss.outcome.status).toBe(404);
    expect(miss.trace![1].exit).toBe('ifNotFound');
    const hit = await runNodes(extract(e, { next: 2, ifNotFound: 3 }), { headers: INVITE_HEADERS }, undefined, { trace: true });
    expect(hit.outcome.status).toBe(200);
    expect(hit.trace![1]).toMatchObject({ exit: 'next', set: { div: '+3222000000' } });
    const noExit = await runNodes(extract(e, { next: 2 }), { headers: {} });
    expect(noExit.outcome.status).toBe(200);
  });

  test('a malformed name-addr yields nothing rather than garbage', async () => {
    const v = await vars([{ header: 'From', part: 'user', storeInto: 'u' }], { From: 'not a uri at all' });
    expect('u' in v).toBe(false);
  });
});
