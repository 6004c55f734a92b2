/**
 * The designer's Calls view against real recorded calls: a `sipflow serve` process (the built CLI,
 * 2 SIP worker threads, history.mode "all", the shipped flows) receives over real UDP a REGISTER
 * answered with digest credentials and an INVITE (407, a retransmission, then authenticated and
 * relayed to a second UDP socket that answers 486); the browser then lists both calls, draws their
 * ladders, shows a message, opens the REGISTER's run on the canvas and replays it in the simulator.
 *
 * Needs `npx tsc -p tsconfig.build.json` (npm test builds first), the designer built
 * (`npm run build:designer`; built here when missing) and /usr/bin/chromium (or SIPFLOW_CHROMIUM).
 */
import { execSync } from 'child_process';
import { existsSync, mkdirSync, rmSync } from 'fs';
import path from 'path';
import type { BrowserContext, Page } from 'playwright-core';
import { arrowLabel } from '../../../designer/src/ladder';
import { header, type SipResponse } from '../../../sip/message';
import type { CallDetail } from '../../../services/history/record';
import { startServe, type ServeProcess } from '../../support/serve';
import { answerChallenge } from '../../support/sip';
import { UdpUa, rand, sipRequest, sipResponse } from '../../integration/sip/ua';
import { CHROMIUM, launchBrowser, want } from './browser';

const ROOT = path.join(__dirname, '../../..');
const ARTIFACTS = path.join(ROOT, 'test-artifacts/designer');
const DOMAIN = 'nl.netaxis.be';
/** Markup in a header: the view must show it as text. */
const EVIL = '<img src=x onerror="window.__xss=1">';

jest.setTimeout(120_000);

let serve: ServeProcess;
let ua: UdpUa;
let gw: UdpUa;
let context: BrowserContext;
let page: Page;
let profileDir: string;
const consoleErrors: string[] = [];
let registerId: string;
let inviteId: string;
/** What the UA saw answered, "status reason", in order. */
const registerAnswers: string[] = [];
let digestResponse: string;

const shot = (name: string) => page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`) });
const said = (r: SipResponse) => `${r.status} ${r.reason}`;
const labels = () => page.getByTestId('ladder-arrow').evaluateAll((els) => els.map((e) => e.getAttribute('data-label')));

/** The recorded call once it holds `minMessages` (the recorder writes a call after history.idleFlushSec without a message). */
async function recorded(callId: string, minMessages: number): Promise<CallDetail> {
  const until = Date.now() + 30_000;
  for (;;) {
    const r = await serve.api(`/api/v1/calls/${encodeURIComponent(callId)}`);
    if (r.status === 200) {
      const call = (await r.json()) as CallDetail;
      if (call.messages.length >= minMessages) return call;
    } else expect(r.status).toBe(404);
    if (Date.now() > until) throw new Error(`call ${callId} not recorded with ${minMessages} messages within 30 s`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function register(): Promise<void> {
  registerId = `reg-${rand()}`;
  const uri = `sip:${DOMAIN}`;
  const req = (cseq: number, authorization?: string) =>
    sipRequest({
      method: 'REGISTER',
      uri,
      ua,
      callId: registerId,
      cseq,
      from: `<sip:francesco@${DOMAIN}>`,
      to: `<sip:francesco@${DOMAIN}>`,
      contact: `<sip:francesco@127.0.0.1:${ua.port}>`,
      headers: { Expires: '300', 'X-Note': EVIL, ...(authorization ? { Authorization: authorization } : {}) },
    });
  ua.send(req(1));
  const challenge = await ua.response(401);
  registerAnswers.push(said(challenge));
  const authorization = answerChallenge(header(challenge, 'www-authenticate')!, { username: 'francesco', password: '123456', method: 'REGISTER', uri });
  digestResponse = /response="([0-9a-f]+)"/.exec(authorization)![1];
  ua.send(req(2, authorization));
  registerAnswers.push(said(await ua.response(200)));
}

/** INVITE → 407, the same INVITE again (a retransmission: 407 again), ACK; INVITE with credentials → relayed to `gw`, which answers 486. */
async function invite(): Promise<void> {
  inviteId = `inv-${rand()}`;
  const uri = `sip:0044201234@127.0.0.1:${gw.port}`;
  const fromTag = `ft${rand()}`;
  const base = { uri, ua, callId: inviteId, fromTag, from: `<sip:000112233@${DOMAIN}>`, to: `<sip:0044201234@${DOMAIN}>` };
  const branch1 = `z9hG4bK${rand()}`;
  const first = sipRequest({ ...base, method: 'INVITE', branch: branch1, cseq: 1 });
  ua.send(first);
  const challenge = await ua.response(407);
  ua.send(first);
  await ua.response(407);
  const toTagged = `${base.to};tag=${/;tag=([^;>\s]+)/.exec(header(challenge, 'to')!)![1]}`;
  ua.send(sipRequest({ ...base, method: 'ACK', branch: branch1, cseq: 1, to: toTagged, contact: null }));
  const branch2 = `z9hG4bK${rand()}`;
  const credentials = answerChallenge(header(challenge, 'proxy-authenticate')!, { username: 'francesco', password: '123456', method: 'INVITE', uri });
  ua.send(sipRequest({ ...base, method: 'INVITE', branch: branch2, cseq: 2, headers: { 'Proxy-Authorization': credentials } }));
  const relayed = await gw.request('INVITE');
  gw.send(sipResponse(relayed.msg, 486, 'Busy Here', { toTag: 'gw1' }));
  await gw.request('ACK'); // sipflow's hop-by-hop ACK of the 486
  const busy = await ua.response(486);
  ua.send(sipRequest({ ...base, method: 'ACK', branch: branch2, cseq: 2, to: header(busy, 'to')!, contact: null }));
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM))
    throw new Error(`no Chromium at ${CHROMIUM}: apt-get install -y chromium (scripts/install-system-deps.sh) or set SIPFLOW_CHROMIUM`);
  if (!existsSync(path.join(ROOT, 'designer/dist/index.html'))) execSync('npm run build:designer', { cwd: ROOT, stdio: 'inherit' });
  mkdirSync(ARTIFACTS, { recursive: true });
  serve = await startServe({ config: { history: { mode: 'all', idleFlushSec: 1, flushMs: 20 } }, logLevel: 'warn' });
  ua = await UdpUa.open(serve.sipPort);
  gw = await UdpUa.open(serve.sipPort);
  await register();
  await invite();
  ({ context, page, profileDir } = await launchBrowser());
  page.on('console', (m) => {
    if (m.type() === 'error') consoleErrors.push(m.text());
  });
  page.on('pageerror', (e) => consoleErrors.push(String(e)));
  page.on('response', (r) => {
    if (r.status() >= 400) consoleErrors.push(`HTTP ${r.status()} ${r.request().method()} ${r.url()}`);
  });
});

afterAll(async () => {
  await context?.close().catch(() => undefined);
  await ua?.close();
  await gw?.close();
  await serve?.stop();
  if (profileDir) rmSync(profileDir, { recursive: true, force: true });
});

test('the Calls view lists the recorded REGISTER and INVITE, newest first', async () => {
  const reg = await recorded(registerId, 4);
  const inv = await recorded(inviteId, 12);
  expect(reg.runs.length).toBe(2);
  expect(inv.outcome).toBe('failed');
  await page.goto(`http://127.0.0.1:${serve.httpPort}/designer/?token=${serve.token}`);
  await page.getByTestId('view-calls').click();
  await want(page.getByTestId('call-row')).toHaveCount(2);
  expect(await page.getByTestId('call-row').evaluateAll((els) => els.map((e) => e.getAttribute('data-call-id')))).toEqual([inviteId, registerId]);
  const row = page.locator(`[data-testid="call-row"][data-call-id="${registerId}"]`);
  await want(row).toContainText(`francesco@${DOMAIN}`);
  await want(row).toContainText('success');
  // the search form: by Call-ID, one row
  await page.getByTestId('calls-callId').fill(inviteId);
  await page.getByTestId('calls-refresh').click();
  await want(page.getByTestId('call-row')).toHaveCount(1);
  await want(page.getByTestId('call-row')).toContainText('INVITE');
  await want(page.getByTestId('call-row')).toContainText('failed');
  await page.getByTestId('calls-callId').fill('');
  await page.getByTestId('calls-refresh').click();
  await want(page.getByTestId('call-row')).toHaveCount(2);
});

test('the REGISTER ladder: two hosts, the four messages in order; a message opened shows markup as text, its digest redacted', async () => {
  await page.locator(`[data-testid="call-row"][data-call-id="${registerId}"]`).click();
  await want(page.getByTestId('ladder-arrow')).toHaveCount(4);
  expect(await labels()).toEqual(['REGISTER', registerAnswers[0], 'REGISTER', registerAnswers[1]]);
  expect(await page.getByTestId('ladder-column').allTextContents()).toEqual([`127.0.0.1:${ua.port}`, `sipflow127.0.0.1:${serve.sipPort}`]);
  expect(await page.getByTestId('ladder-arrow').first().getAttribute('aria-label')).toMatch(/^\+0 ms REGISTER/);

  await page.getByTestId('ladder-arrow').first().click();
  await want(page.getByTestId('message-text')).toContainText(`REGISTER sip:${DOMAIN} SIP/2.0`);
  await want(page.getByTestId('message-text')).toContainText(`X-Note: ${EVIL}`);
  expect(await page.locator('[data-testid="message-view"] img').count()).toBe(0);
  expect(await page.evaluate('window.__xss')).toBeUndefined();

  // keyboard: down to the REGISTER with credentials, Enter shows it
  await page.getByTestId('ladder-arrow').first().focus();
  await page.keyboard.press('ArrowDown');
  await page.keyboard.press('ArrowDown');
  await page.keyboard.press('Enter');
  await want(page.getByTestId('message-text')).toContainText('Authorization: Digest');
  // the digest's response and cnonce
  await want(page.getByTestId('message-redacted')).toHaveCount(2);
  expect(await page.getByTestId('message-text').textContent()).not.toContain(digestResponse);
  await shot('10-calls-register-ladder');
});

test("the REGISTER's authenticated run opens its flow with the path lit and the CD after a step; replay fills the simulator", async () => {
  await want(page.getByTestId('run-row')).toHaveCount(2);
  await want(page.getByTestId('run-row').nth(0)).toContainText('challenge');
  await want(page.getByTestId('run-row').nth(1)).toContainText('register');
  await page.getByTestId('run-open').nth(1).click();
  await want(page.getByTestId('call-run')).toBeVisible();
  await want(page.getByTestId('doc-title')).toContainText('pbx');
  // pbx's dispatch for a REGISTER: Start, settings, read To tag, dispatch, registration (a sub-logic call)
  await want(page.locator('.react-flow__node.highlighted')).toHaveCount(5);
  for (const id of ['0', '1', '2', '3', '4']) await want(page.locator(`.react-flow__node[data-id="${id}"]`)).toHaveClass(/highlighted/);
  expect(await page.locator('.react-flow__edge.highlighted').count()).toBeGreaterThanOrEqual(4);
  // the run restarted after authenticating: two passes
  expect(await page.getByTestId('run-pass').count()).toBeGreaterThanOrEqual(2);
  await page.getByTestId('run-step').filter({ hasText: 'settings: PSTN trunks' }).first().click();
  await want(page.getByTestId('run-cd').locator('tr.changed')).toContainText('pstnTrunks');
  await want(page.getByTestId('run-cd')).toContainText(registerId);
  // the password the registration logic read is a secret: recorded redacted
  await page.getByTestId('run-step').filter({ hasText: 'retrieve password' }).first().click();
  await want(page.getByTestId('run-cd').locator('tr.changed').getByTestId('run-redacted')).toHaveCount(1);
  expect(await page.getByTestId('run-cd').textContent()).not.toContain('123456');
  await shot('11-calls-run-path');
  // the logic it called: choosing it on the canvas lights its part of the path (both passes: every node of the seed's registration logic)
  await want(page.getByTestId('run-logics')).toContainText('1, 24');
  await page.getByTestId('logic-select').selectOption('24');
  await want(page.locator('.react-flow__node.highlighted')).toHaveCount(6);
  await want(page.getByTestId('run-elsewhere')).toHaveCount(0);
  // a logic the run did not go through: nothing lit, and said so
  await page.getByTestId('logic-select').selectOption('2');
  await want(page.getByTestId('run-elsewhere')).toBeVisible();
  await want(page.locator('.react-flow__node.highlighted')).toHaveCount(0);

  await page.getByTestId('run-tab-replay').click();
  await want(page.getByTestId('sim-preset')).toContainText(`replay of call ${registerId}, run 2`);
  await want(page.getByTestId('sim-preset')).toContainText('Authorization left out');
  const cd = JSON.parse(await page.getByTestId('sim-cd').inputValue()) as Record<string, unknown> & { headers: Record<string, string> };
  expect(cd).toMatchObject({ requestMethod: 'REGISTER', callId: registerId });
  expect(cd.headers['X-Note']).toBe(EVIL);
  expect(cd.headers.Authorization).toBeUndefined();
  // run as the simulator's default sample does: challenged (the replayed REGISTER has no credentials), answered, saved
  await want(page.getByTestId('sim-sample')).toHaveValue('register-auth');
  await page.getByTestId('sim-run').click();
  await want(page.getByTestId('sim-outcome')).toContainText('register 200', { timeout: 20_000 });
  await shot('12-calls-replay');
});

test('the INVITE ladder: caller, sipflow and the destination; the retransmission marked; the relayed INVITE and its 486', async () => {
  await page.getByTestId('view-calls').click();
  await page.locator(`[data-testid="call-row"][data-call-id="${inviteId}"]`).click();
  const call = await recorded(inviteId, 12);
  await want(page.getByTestId('ladder-arrow')).toHaveCount(call.messages.length);
  expect(await labels()).toEqual(call.messages.map(arrowLabel));
  const shown = (await labels()).filter((l) => l !== '100 Trying');
  expect(shown).toEqual([
    'INVITE',
    '407 Proxy Authentication Required',
    'INVITE',
    '407 Proxy Authentication Required',
    'ACK',
    'INVITE',
    'INVITE',
    '486 Busy Here',
    ...(shown[8] === 'ACK' ? ['ACK', '486 Busy Here'] : ['486 Busy Here', 'ACK']),
    'ACK',
  ]);
  expect(await page.getByTestId('ladder-column').allTextContents()).toEqual([
    `127.0.0.1:${ua.port}`,
    `sipflow127.0.0.1:${serve.sipPort}`,
    `127.0.0.1:${gw.port}`,
  ]);
  // the repeated INVITE and the 407 sent again for it: retransmissions
  const retrans = await page
    .locator('[data-testid="ladder-arrow"][data-retransmission="true"]')
    .evaluateAll((els) => els.map((e) => e.getAttribute('data-label')));
  expect(retrans).toEqual(['INVITE', '407 Proxy Authentication Required']);
  // the INVITEs: the first, its retransmission, the authenticated one, and that one relayed from sipflow to the destination's column
  const relayed = page.locator('[data-testid="ladder-arrow"][data-label="INVITE"]').nth(3);
  expect(await relayed.getAttribute('aria-label')).toContain(`to 127.0.0.1:${gw.port}`);
  await relayed.click();
  await want(page.getByTestId('message-text')).toContainText(`INVITE sip:0044201234@127.0.0.1:${gw.port} SIP/2.0`);
  await shot('13-calls-invite-ladder');
});

test('the debug filter is shown and set through the API', async () => {
  await want(page.getByTestId('debug-filter-current')).toContainText('off');
  await page.getByTestId('debug-filter-text').fill('000112233\nalice@example.test');
  await page.getByTestId('debug-filter-save').click();
  await want(page.getByTestId('debug-filter-current')).toContainText('000112233, alice@example.test');
  expect(await (await serve.api('/api/v1/calls/debug-filter')).json()).toEqual({ numbers: ['000112233', 'alice@example.test'] });
});

test('no errors in the browser console', () => {
  expect(consoleErrors).toEqual([]);
});
