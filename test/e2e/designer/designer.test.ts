/**
 * The visual designer in a real browser: Debian's Chromium driven by playwright-core (no browser
 * is ever downloaded) against the real HTTP API on a random port, over a PGlite memory directory
 * and the shipped flows. Screenshots go to test-artifacts/designer/.
 *
 * Needs /usr/bin/chromium (scripts/install-system-deps.sh) or SIPFLOW_CHROMIUM; builds the
 * designer when designer/dist is missing.
 */
import path from 'path';
import type { Page } from 'playwright-core';
import { want } from './browser';
import { ROOT, TOKEN, startDesigner, type Designer } from './harness';

jest.setTimeout(240_000);

let d: Designer;
let page: Page;
let base: string;
let consoleErrors: string[];

const api = (method: string, url: string, body?: string) => d.api(method, url, body);
const shot = (name: string) => d.shots(name);
const node = (id: string) => d.node(id);
const openFlow = (name: string) => d.openFlow(name);
/** Waits until the debounced server validation has settled on a status text. */
const validationStatus = (expected: RegExp) => d.validationStatus(expected);

beforeAll(async () => {
  d = await startDesigner();
  ({ page, base, consoleErrors } = d);
});

afterAll(async () => {
  await d?.close();
});

test('the designer is served at /designer (no token) and its API endpoints answer (token)', async () => {
  const html = await fetch(`${base}/designer/`);
  expect(html.status).toBe(200);
  expect(html.headers.get('cache-control')).toBe('no-cache');
  const body = await html.text();
  expect(body).toContain('<div id="root">');
  const asset = /src="(\/designer\/assets\/[^"]+\.js)"/.exec(body)![1];
  const js = await fetch(base + asset);
  expect(js.status).toBe(200);
  expect(js.headers.get('cache-control')).toContain('immutable');
  const bare = await fetch(`${base}/designer`, { redirect: 'manual' });
  expect([301, 302]).toContain(bare.status);
  expect(bare.headers.get('location')).toBe('/designer/');
  const types = JSON.parse((await api('GET', '/api/v1/node-types')).text) as Array<{ type: string; valuesSchema: object }>;
  expect(types.map((t) => t.type)).toEqual(expect.arrayContaining(['enter.start', 'analysis.sequentialConditions', 'output.reply']));
  const schema = JSON.parse((await api('GET', '/api/v1/directory/schema')).text) as { tables: Array<{ name: string; columns: Array<{ name: string }> }> };
  const customers = schema.tables.find((t) => t.name === 'registration.customers');
  expect(customers?.columns.map((c) => c.name)).toEqual(expect.arrayContaining(['username', 'password']));
  // foreign keys say what a column references (the designer proposes a query's join from them)
  const numbers = schema.tables.find((t) => t.name === 'registration.customer_numbers') as { columns: Array<{ name: string; references?: string }> };
  expect(numbers.columns.find((c) => c.name === 'customer_id')?.references).toBe('registration.customers.id');
  expect(numbers.columns.find((c) => c.name === 'number')?.references).toBeUndefined();
  expect(schema.tables.some((t) => t.name.startsWith('sipflow.'))).toBe(false);
  const openapi = JSON.parse((await api('GET', '/api/openapi.json')).text) as { paths: Record<string, unknown> };
  expect(Object.keys(openapi.paths)).toEqual(expect.arrayContaining(['/api/v1/node-types', '/api/v1/directory/schema']));
  expect(Object.keys(openapi.paths).some((p) => p.startsWith('/designer'))).toBe(false);
  // the API routes need the token
  expect((await fetch(`${base}/api/v1/node-types`)).status).toBe(401);
});

test('the seed registration flow: 6 nodes, 7 exits', async () => {
  await page.goto(`${base}/designer/?token=${TOKEN}#/flow/registration`);
  await page.getByTestId('doc-title').filter({ hasText: 'registration' }).waitFor();
  await want(page.locator('.react-flow__node')).toHaveCount(6);
  await want(page.locator('.react-flow__edge')).toHaveCount(7);
  // the token left the URL for localStorage
  expect(page.url()).not.toContain('token=');
  expect(await page.evaluate('localStorage.getItem("sipflow.apiToken")')).toBe(TOKEN);
  // exits are named source handles
  for (const [id, handles] of [
    ['0', ['next']],
    ['1', ['conditions/0/ifTrue', 'fallback']],
    ['3', ['ifTrue', 'ifFalse']],
    ['5', ['ifRecordFound', 'ifnoRecordFound']],
  ] as const) {
    for (const h of handles) await want(node(id).locator(`.react-flow__handle.source[data-handleid="${h}"]`)).toHaveCount(1);
  }
  await validationStatus(/^valid/);
  await page.waitForTimeout(300);
  await shot('01-registration');
});

test('edit a condition value, save, reload: the change persisted', async () => {
  await node('3').click();
  const value = page.locator('#root_conditions_1_value');
  await want(value).toHaveValue('null');
  await value.fill('nothing');
  await want(page.getByTestId('doc-title')).toContainText('edited');
  await validationStatus(/^valid/);
  await shot('02-edit-condition');
  await page.keyboard.press('Control+s');
  await want(page.getByTestId('status')).toContainText('saved registration');

  const stored = JSON.parse((await api('GET', '/api/v1/flows/registration/export?version=development')).text);
  expect(stored['24'].nodes['3'].values.conditions[1].value).toBe('nothing');
  // only that value changed: the rest is the shipped file, equal JSON
  const { readFileSync } = await import('fs');
  const shipped = JSON.parse(readFileSync(path.join(ROOT, 'flows/registration.slid'), 'utf8'));
  shipped['24'].nodes['3'].values.conditions[1].value = 'nothing';
  expect(stored).toEqual(shipped);

  // the query node's form offers the directory's columns and the logic's variables
  await node('5').click();
  await want(page.locator('#root_fields_0_field')).toHaveValue('customers.password');
  const list = await page.locator('#root_fields_0_field').getAttribute('list');
  expect(await page.locator(`datalist[id="${list}"] option[value="customers.username"]`).count()).toBe(1);
  const condList = await page.locator('#root_conditions_0_value').getAttribute('list');
  expect(await page.locator(`datalist[id="${condList}"] option[value="customer_name"]`).count()).toBe(1);
  await shot('02b-query-form');

  await page.reload();
  await page.getByTestId('doc-title').filter({ hasText: 'registration' }).waitFor();
  await want(page.locator('.react-flow__node')).toHaveCount(6);
  await node('3').click();
  await want(page.locator('#root_conditions_1_value')).toHaveValue('nothing');
});

test('an unedited document saves as the very text it was loaded from', async () => {
  const before = (await api('GET', '/api/v1/flows/incoming-call/export?version=development')).text;
  await openFlow('incoming-call');
  await validationStatus(/valid|error/);
  await page.getByTestId('save').click();
  await want(page.getByTestId('status')).toContainText('saved incoming-call');
  expect((await api('GET', '/api/v1/flows/incoming-call/export?version=development')).text).toBe(before);
  // Export .slid downloads the same text
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('export').click()]);
  expect(download.suggestedFilename()).toBe('incoming-call.slid');
  const { readFileSync } = await import('fs');
  expect(readFileSync((await download.path())!, 'utf8')).toBe(before);
  // Release freezes the development copy as a new version
  await page.getByTestId('release').click();
  await want(page.getByTestId('status')).toContainText('released incoming-call v2');
});

test('build a flow from scratch (start → reply 404), validate it, break it', async () => {
  await page.getByTestId('new-flow-name').fill('scratch');
  await page.getByTestId('new-flow').click();
  await page.getByTestId('doc-title').filter({ hasText: 'scratch' }).waitFor();
  await page.getByTestId('palette-enter.start').click();
  // nothing selected: the reply is added unconnected (with the start selected, a palette click
  // would hang it on the start's free exit: test/e2e/designer/canvas.test.ts)
  await page.locator('.react-flow__pane').click({ position: { x: 5, y: 5 } });
  await page.getByTestId('palette-output.reply').click();
  await want(page.locator('.react-flow__node')).toHaveCount(2);
  // the start's `next` is unset: an error on the start node
  await validationStatus(/error/);
  await want(node('0').getByTestId('error-badge')).toBeVisible();

  // connect start.next → reply by dragging the exit handle onto the reply node
  const from = await node('0').locator('.react-flow__handle[data-handleid="next"]').boundingBox();
  const to = await node('1').locator('.react-flow__handle.target').boundingBox();
  await page.mouse.move(from!.x + from!.width / 2, from!.y + from!.height / 2);
  await page.mouse.down();
  await page.mouse.move(to!.x + to!.width / 2 - 30, to!.y + 10, { steps: 8 });
  await page.mouse.move(to!.x + to!.width / 2, to!.y + to!.height / 2, { steps: 4 });
  await page.mouse.up();
  await want(page.locator('.react-flow__edge')).toHaveCount(1);

  await node('1').click();
  await page.locator('#root_code').fill('404');
  await page.locator('#root_reason').fill('Not Found');
  await validationStatus(/^valid$/);
  await want(page.getByTestId('error-badge')).toHaveCount(0);
  await shot('03-scratch-valid');

  // break it: a code that is no SIP final response
  await page.locator('#root_code').fill('99');
  await validationStatus(/error/);
  await want(node('1').getByTestId('error-badge')).toBeVisible();
  await want(page.getByTestId('problem').filter({ hasText: 'values/code' })).toHaveCount(1);
  await shot('04-scratch-broken');

  // duplicate the reply (Ctrl+D) and archive the copy: greyed, unreachable warning gone with it
  await node('1').click();
  await page.keyboard.press('Control+d');
  await want(page.locator('.react-flow__node')).toHaveCount(3);
  await page.getByLabel('archived (never executed)').check();
  await want(node('2')).toHaveClass(/archived/);
  await shot('04b-scratch-archived');
  await page.locator('.react-flow__pane').click({ position: { x: 5, y: 5 } });
  await page.keyboard.press('Control+z');
  await page.keyboard.press('Control+z');
  await want(page.locator('.react-flow__node')).toHaveCount(2);

  // undo restores the valid flow; the problem list focuses the node
  await page.locator('.react-flow__pane').click();
  await page.keyboard.press('Control+z');
  await validationStatus(/^valid$/);
  await page.keyboard.press('Control+y');
  await validationStatus(/error/);
  await page.getByTestId('problem').first().click();
  await want(page.getByTestId('node-name')).toHaveValue('Reply (reject)');
});

test('simulate the three-pass REGISTER: path highlighted, final outcome 200', async () => {
  await openFlow('registration');
  await want(page.locator('.react-flow__node')).toHaveCount(6);
  await page.getByTestId('tab-simulate').click();
  await page.getByTestId('sim-sample').selectOption('register-auth');
  await page.getByTestId('sim-run').click();
  await want(page.getByTestId('sim-outcome')).toContainText('register 200', { timeout: 20_000 });
  await want(page.getByTestId('sim-pass')).toHaveCount(3);
  await want(page.getByTestId('sim-pass').nth(0)).toContainText('challenge 401');
  await want(page.getByTestId('sim-pass').nth(2)).toContainText('register 200');
  // every node of the seed logic is on the path of one of the passes
  await want(page.locator('.react-flow__node.highlighted')).toHaveCount(6);
  expect(await page.locator('.react-flow__edge.highlighted').count()).toBeGreaterThanOrEqual(6);
  // the CD after a step: the query stored the password
  await page.getByTestId('sim-pass').nth(1).locator('li', { hasText: 'retrieve password' }).click();
  await want(page.locator('.cd-view tr.changed')).toHaveCount(2);
  // the password is a secret: the server left it out, the CD view says so
  await want(page.locator('.cd-view tr.changed').getByTestId('sim-redacted')).toHaveCount(1);
  expect(await page.locator('.cd-view').textContent()).not.toContain('123456');
  await shot('05-simulate-register');

  // pass 1 alone: the challenge path, without the save node
  await page.getByTestId('sim-pass-1').click();
  await want(page.locator('.react-flow__node.highlighted')).toHaveCount(5);
  await want(node('2')).not.toHaveClass(/highlighted/);
  await shot('06-simulate-pass1');
});

test('the simulator runs at the instant of its "run at" field', async () => {
  await openFlow('registration');
  await page.getByTestId('tab-simulate').click();
  await page.getByTestId('sim-sample').selectOption('register-auth');
  await page.getByTestId('sim-now').fill('2027-01-04T10:00:00');
  const sent = page.waitForRequest((r) => r.url().endsWith('/api/v1/simulate') && r.method() === 'POST');
  await page.getByTestId('sim-run').click();
  // the browser's local time, sent as an instant
  const expected = await page.evaluate(() => new Date('2027-01-04T10:00:00').toISOString());
  expect((await sent).postDataJSON().now).toBe(expected);
  await want(page.getByTestId('sim-outcome')).toContainText('register 200', { timeout: 20_000 });
  // cleared: the server's current time (no `now` sent)
  await page.getByTestId('sim-now-clear').click();
  const again = page.waitForRequest((r) => r.url().endsWith('/api/v1/simulate') && r.method() === 'POST');
  await page.getByTestId('sim-run').click();
  expect((await again).postDataJSON().now).toBeUndefined();
  await want(page.getByTestId('sim-outcome')).toContainText('register 200', { timeout: 20_000 });
});

test('no errors in the browser console', () => {
  // (a refused save is a 400 the UI shows: none of the steps above makes one)
  expect(consoleErrors.filter((e) => !/status of 401/.test(e))).toEqual([]);
});
