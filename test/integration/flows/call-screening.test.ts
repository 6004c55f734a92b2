/** flows/call-screening.slid (note §4.3): the CLI must belong to the authenticated customer. */
import { FRANCESCO, context, loadFlow, provisionedDirectory, request, withCredentials, type TestDirectory } from './support';

const { service } = loadFlow('call-screening.slid');
let dir: TestDirectory;
beforeAll(async () => { dir = await provisionedDirectory(); });
afterAll(async () => { await dir.close(); });

const ACME_CREDS = { username: 'acme', password: 'acme-pw' };
/** From carries francesco's number unless a test says otherwise. */
const invite = (headers: Record<string, string>, from = '<sip:000112233@nl.netaxis.be>;tag=s1') => request({ from, headers });

async function screen(headers: Record<string, string>, creds = FRANCESCO, from?: string) {
  const { challenge, result } = await withCredentials(service, 'call screening', context(dir), invite(headers, from), creds);
  return { challenge, r: result };
}

describe('call screening: which header gives the CLI', () => {
  const all = {
    Diversion: '<sip:000112233@nl.netaxis.be>;reason=unconditional;counter=1',
    'P-Asserted-Identity': '"Acme" <sip:0031201555@nl.netaxis.be>',
    'Remote-Party-ID': '"Acme" <sip:0031201666@nl.netaxis.be>;party=calling;screen=no;privacy=off',
  };

  test('Diversion first', async () => {
    const { r } = await screen(all, FRANCESCO, '<sip:0031201777@nl.netaxis.be>;tag=s1');
    expect(r.cd.vars.cli).toBe('000112233');
    expect(r.outcome).toMatchObject({ kind: 'relay', targets: [{ uri: 'sip:6756757@nl.netaxis.be' }] });
  });

  test('then P-Asserted-Identity (a tel: URI too)', async () => {
    const { r } = await screen({ 'P-Asserted-Identity': all['P-Asserted-Identity'], 'Remote-Party-ID': '<sip:000112233@nl.netaxis.be>;party=calling' });
    expect(r.cd.vars.cli).toBe('0031201555');
    expect(r.outcome).toEqual({ kind: 'reply', status: 403, reason: 'Forbidden' }); // Acme's range, francesco authenticated
    const tel = await screen({ 'P-Asserted-Identity': '<tel:0031201555>' }, ACME_CREDS);
    expect(tel.r.cd.vars.cli).toBe('0031201555');
    expect(tel.r.outcome.kind).toBe('relay');
  });

  test('then Remote-Party-ID', async () => {
    const { r } = await screen({ 'Remote-Party-ID': all['Remote-Party-ID'] }, ACME_CREDS);
    expect(r.cd.vars.cli).toBe('0031201666');
    expect(r.outcome.kind).toBe('relay');
  });

  test('then From', async () => {
    const { r } = await screen({});
    expect(r.cd.vars.cli).toBe('000112233');
    expect(r.outcome.kind).toBe('relay');
  });

  test('a lower-priority header does not rescue a foreign higher-priority CLI', async () => {
    // Diversion names Acme's number; PAI and From name francesco's: francesco is refused
    const { r } = await screen({ Diversion: '<sip:0031201999@nl.netaxis.be>;reason=no-answer', 'P-Asserted-Identity': '<sip:000112233@nl.netaxis.be>' });
    expect(r.cd.vars.cli).toBe('0031201999');
    expect(r.outcome).toMatchObject({ kind: 'reply', status: 403 });
  });
});

describe('call screening: does the CLI belong to the subscriber', () => {
  test('unauthenticated INVITEs are challenged before any screening', async () => {
    const { challenge } = await screen({});
    expect(challenge.outcome).toMatchObject({ kind: 'challenge', status: 407, header: 'Proxy-Authenticate' });
    expect(challenge.cd.vars.cli).toBeUndefined();
  });

  test('an exact number of the subscriber passes; the trace shows auth, extraction, exact match, relay', async () => {
    const { r } = await screen({});
    expect(r.restarts).toBe(1);
    expect(r.trace!.map((t) => `${t.nodeId}:${t.exit}`)).toEqual([
      '0:next', '1:fallback', '2:ifTrue', '3:ifRecordFound', '4:restart',
      '0:next', '1:conditions/0/ifTrue', '5:next', '6:ifRecordFound', '9:next', '10:relay',
    ]);
    expect(r.cd.vars.cli_number).toBe('000112233');
  });

  test('a number inside a range of the subscriber passes (longest prefix)', async () => {
    const { r } = await screen({}, ACME_CREDS, '<sip:0031201234@nl.netaxis.be>;tag=s1');
    expect(r.outcome.kind).toBe('relay');
    expect(r.cd.vars).toMatchObject({ cli_number: '0031201', customer_name: 'Acme PBX' });
  });

  test('a CLI of another customer is refused with 403', async () => {
    const { r } = await screen({}, FRANCESCO, '<sip:0031201234@nl.netaxis.be>;tag=s1');
    expect(r.outcome).toEqual({ kind: 'reply', status: 403, reason: 'Forbidden' });
    expect(r.trace!.at(-1)).toMatchObject({ nodeId: '8', exit: 'reply' });
  });

  test('a single number is not a range: 0001122334 is not francesco\'s', async () => {
    const { r } = await screen({}, FRANCESCO, '<sip:0001122334@nl.netaxis.be>;tag=s1');
    expect(r.outcome).toMatchObject({ kind: 'reply', status: 403 });
  });

  test('only the authenticated customer\'s numbers count (as in the note): overlapping ranges of others do not', async () => {
    // Idle's range 003120 covers 0031201234; Acme's longer 0031201 does too, but Idle is the one calling
    const idle = await screen({}, { username: 'idle', password: 'idle-pw' }, '<sip:0031201234@nl.netaxis.be>;tag=s1');
    expect(idle.r.outcome.kind).toBe('relay');
    expect(idle.r.cd.vars.cli_number).toBe('003120');
    const beta = await screen({}, { username: 'beta', password: 'beta-pw' }, '<sip:0031201234@nl.netaxis.be>;tag=s1');
    expect(beta.r.outcome).toMatchObject({ kind: 'reply', status: 403 }); // Beta owns only 00312015555
  });

  test('a non-numeric CLI (From user name) is refused', async () => {
    const { r } = await screen({}, FRANCESCO, '<sip:francesco@nl.netaxis.be>;tag=s1');
    expect(r.cd.vars.cli).toBe('francesco');
    expect(r.outcome).toMatchObject({ kind: 'reply', status: 403 });
  });
});
