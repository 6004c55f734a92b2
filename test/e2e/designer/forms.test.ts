/**
 * Forms, validation at the field and the designer's chrome (issue 17, helper "forms"): warnings
 * located at the field (a variable no node sets, an unconnected exit, and what the simulator then
 * says), the var/abc toggle of value fields, labels and help from the node schemas, pickers
 * limited to the node's tables, palette search. Screenshots in test-artifacts/designer/forms-*.
 */
import { startDesigner, type Designer } from './harness';
import { want } from './browser';

jest.setTimeout(240_000);

let d: Designer;

beforeAll(async () => {
  d = await startDesigner();
});

afterAll(async () => {
  await d?.close();
});

/** A flow whose condition has no ifFalse: every call not an OPTIONS ends there. */
const UNCONNECTED = {
  '5': {
    name: 'half done',
    description: '',
    nodes: {
      '0': { id: 0, name: 'Start', type: 'enter.start', description: '', values: { next: 1 }, archived: false, x: 0, y: 0 },
      '1': {
        id: 1,
        name: 'is OPTIONS',
        type: 'analysis.condition',
        description: '',
        values: { logic: 'all', conditions: [{ variable: 'requestMethod', operator: 'is', value: 'OPTIONS' }], ifTrue: 2 },
        archived: false,
        x: 0,
        y: 150,
      },
      '2': { id: 2, name: 'ok', type: 'output.reply', description: '', values: { code: 200 }, archived: false, x: 0, y: 300 },
    },
  },
};

test('a misspelt variable is flagged at its field, in the problem list', async () => {
  const { page } = d;
  await d.goto('incoming-call');
  await d.validationStatus(/^valid$/);
  await want(page.getByTestId('problem')).toHaveCount(0);
  await d.node('1').click();
  const value = page.locator('#root_conditions_0_value');
  await want(value).toHaveValue('called');
  await value.fill('caled');
  await d.validationStatus(/warning/);
  const problem = page.getByTestId('problem').filter({ hasText: 'values/conditions/0/value' });
  await want(problem).toHaveCount(1);
  await want(problem).toContainText('did you mean called?');
  await want(problem).toContainText('literal text "caled"');
  await d.shots('forms-1-misspelt-variable');
  await value.fill('called');
  await d.validationStatus(/^valid$/);
  await want(page.getByTestId('problem')).toHaveCount(0);
});

test('an unconnected exit is flagged, and the simulator says what the front end answers', async () => {
  const { page } = d;
  const put = await d.api('PUT', '/api/v1/flows/half-done', JSON.stringify(UNCONNECTED));
  expect(put.status).toBe(201);
  await d.goto('half-done');
  await d.validationStatus(/warning/);
  const problem = page.getByTestId('problem').filter({ hasText: 'values/ifFalse' });
  await want(problem).toHaveCount(1);
  await want(problem).toContainText('exit ifFalse is not connected');
  await want(problem).toContainText('404 Not Found');
  await page.getByTestId('tab-simulate').click();
  await page.getByTestId('sim-run').click();
  await want(page.getByTestId('sim-outcome')).toContainText('exit', { timeout: 20_000 });
  await want(page.getByTestId('sim-unconnected')).toContainText('ended at the unconnected exit ifFalse of node 1 "is OPTIONS"');
  await want(page.getByTestId('sim-unconnected')).toContainText('404 Not Found');
  await d.shots('forms-1-unconnected-exit');
});

test('value fields say var or abc; the toggle writes the explicit mark; the warning shows at the field', async () => {
  const { page } = d;
  await d.goto('incoming-call');
  await d.validationStatus(/^valid$/);
  await d.node('3').click();
  // lookup in location services: aor names the variable the query stored → var
  await want(page.getByTestId('var-toggle-aor')).toContainText('var');
  const aor = page.locator('#root_aor');
  await aor.fill('aorr');
  await d.validationStatus(/warning/);
  const atField = page.locator('[data-testid="field-problem"][data-pointer="aor"]');
  await want(atField).toContainText('aorr is no predefined variable and no node of this file sets it (did you mean aor?)');
  await want(page.getByTestId('var-toggle-aor')).toContainText('abc');
  await d.shots('forms-2-aorr-at-field');
  // the user says it is meant as literal text: the mark silences the warning and is saved in x-sipflow
  await page.getByTestId('var-toggle-aor').click();
  await want(page.getByTestId('var-toggle-aor')).toContainText('var');
  await page.getByTestId('var-toggle-aor').click();
  await want(page.getByTestId('var-toggle-aor')).toContainText('abc');
  await d.validationStatus(/^valid$/);
  await want(atField).toHaveCount(0);
  await page.keyboard.press('Control+s');
  await want(page.getByTestId('status')).toContainText('saved incoming-call');
  const stored = JSON.parse((await d.api('GET', '/api/v1/flows/incoming-call/export?version=development')).text);
  const node = Object.values<{ nodes: Record<string, { values: Record<string, unknown>; 'x-sipflow'?: unknown }> }>(stored)[0].nodes['3'];
  expect(node['x-sipflow']).toEqual({ literals: ['aor'] });
  expect(node.values.aor).toBe('aorr');

  // a value field of the query: caled is flagged under the field itself
  await d.node('1').click();
  await want(page.getByTestId('var-toggle-conditions/0/value')).toContainText('var');
  await page.locator('#root_conditions_0_value').fill('caled');
  const caled = page.locator('[data-testid="field-problem"][data-pointer="conditions/0/value"]');
  await want(caled).toContainText('did you mean called?', { timeout: 15_000 });
  await d.shots('forms-2-caled-at-field');
  // the literal side: `INVITE`-like text stays abc with no warning, and no picker
  await page.locator('#root_conditions_0_value').fill('000112233');
  await want(caled).toHaveCount(0, { timeout: 15_000 });
  await want(page.getByTestId('var-toggle-conditions/0/value')).toContainText('abc');
  expect(await page.locator('#root_conditions_0_value').getAttribute('list')).toBeNull();
});

test('an unedited document keeps no mark: toggles write only on a click', async () => {
  const { page } = d;
  await d.goto('outgoing-call');
  await d.validationStatus(/^valid$/);
  for (const id of ['1', '2', '3']) if ((await d.node(id).count()) > 0) await d.node(id).click();
  await want(page.getByTestId('doc-title')).not.toContainText('edited');
});

test('labels and help come from the node schemas; array items are numbered from 1', async () => {
  const { page } = d;
  await d.goto('incoming-call');
  await d.node('1').click();
  const form = page.locator('.rjsf-wrap');
  await want(form).toContainText('Store into records list');
  await want(form).toContainText('Join type');
  await want(form).toContainText('Table 1');
  await want(form).toContainText('Condition 1');
  // help text: the schema's description under the field
  await want(form).toContainText('SQL join of the listed tables');
  await want(form).toContainText('a list variable receiving every row found');
  expect(await form.textContent()).not.toContain('tables-1');
  expect(await form.textContent()).not.toContain('storeIntoRecordsList');
  // inputs take the panel's width
  const box = await page.locator('#root_conditions_0_value').boundingBox();
  const panel = await page.getByTestId('inspector').boundingBox();
  expect(box!.width).toBeGreaterThan(panel!.width * 0.5);
  await d.shots('forms-3-labels');
});

test('the column picker offers only the columns of the node’s own tables', async () => {
  const { page } = d;
  await d.goto('registration');
  await d.node('5').click();
  const list = await page.locator('#root_fields_0_field').getAttribute('list');
  const options = await page.locator(`datalist[id="${list}"] option`).evaluateAll((os) => os.map((o) => (o as HTMLOptionElement).value));
  expect(options).toContain('customers.username');
  expect(options.every((o) => o.startsWith('customers.'))).toBe(true);
  // the tables picker lists the directory's tables
  const tList = await page.locator('#root_tables_0').getAttribute('list');
  const tables = await page.locator(`datalist[id="${tList}"] option`).evaluateAll((os) => os.map((o) => (o as HTMLOptionElement).value));
  expect(tables.length).toBeGreaterThan(1);
  await d.shots('forms-4-column-picker');
});

test('palette search filters the node types; Enter adds the first match', async () => {
  const { page } = d;
  const put = await d.api('PUT', '/api/v1/flows/palette-flow', JSON.stringify(UNCONNECTED));
  expect(put.status).toBe(201);
  await d.goto('palette-flow');
  const all = await page.locator('[data-testid^="palette-"].palette-item').count();
  expect(all).toBeGreaterThan(20);
  await page.getByTestId('palette-search').fill('reply');
  await want(page.getByTestId('palette-output.reply')).toBeVisible();
  await want(page.getByTestId('palette-enter.start')).toHaveCount(0);
  const shown = await page.locator('[data-testid^="palette-"].palette-item').count();
  expect(shown).toBeLessThan(all);
  await d.shots('forms-5-palette-search');
  const before = await page.locator('.react-flow__node').count();
  await page.getByTestId('palette-search').press('Enter');
  await want(page.locator('.react-flow__node')).toHaveCount(before + 1);
  await want(page.getByTestId('inspector')).toContainText('output.reply');
  await page.getByTestId('palette-search').fill('zzzz-nothing');
  await want(page.locator('[data-testid^="palette-"].palette-item')).toHaveCount(0);
  await page.getByTestId('palette-search').fill('');
  await want(page.locator('[data-testid^="palette-"].palette-item')).toHaveCount(all);
});

test('add, rename and delete logics; a rename keeps sub-logic calls working; a called logic cannot be deleted', async () => {
  const { page } = d;
  await d.goto('pbx');
  const select = page.getByTestId('logic-select');
  const count = await select.locator('option').count();
  // add
  await page.getByTestId('logic-menu').click();
  await page.getByTestId('logic-add').click();
  await page.getByTestId('logic-name-input').fill('night service');
  await page.getByTestId('logic-name-input').press('Enter');
  await want(select.locator('option')).toHaveCount(count + 1);
  await want(select.locator('option:checked')).toContainText('night service');
  await want(page.locator('.react-flow__node')).toHaveCount(1);
  await want(page.getByTestId('doc-title')).toContainText('edited');
  // rename a called logic: the call by name follows
  await select.selectOption({ label: 'logic 4 “incoming call”' });
  await page.getByTestId('logic-menu').click();
  await page.getByTestId('logic-rename').click();
  await page.getByTestId('logic-name-input').fill('incoming calls');
  await page.getByTestId('logic-name-input').press('Enter');
  await want(select.locator('option:checked')).toContainText('incoming calls');
  // delete a called logic: refused, with the caller named
  await page.getByTestId('logic-menu').click();
  await page.getByTestId('logic-delete').click();
  await want(page.getByTestId('status')).toContainText('is called by');
  await want(select.locator('option')).toHaveCount(count + 1);
  await d.shots('forms-6-logics');
  // delete the new one, then undo brings it back
  await select.selectOption({ label: `logic ${await select.locator('option').last().getAttribute('value')} “night service”` });
  await page.getByTestId('logic-menu').click();
  await page.getByTestId('logic-delete').click();
  await want(select.locator('option')).toHaveCount(count);
  await page.keyboard.press('Control+z');
  await want(select.locator('option')).toHaveCount(count + 1);
  await page.keyboard.press('Control+y');
  await want(select.locator('option')).toHaveCount(count);
  // save (a new logic's unconnected start would be refused): the rename reached the call node
  await page.keyboard.press('Control+s');
  await want(page.getByTestId('status')).toContainText('saved pbx');
  const stored = JSON.parse((await d.api('GET', '/api/v1/flows/pbx/export?version=development')).text);
  const calls = Object.values<{ nodes: Record<string, { type: string; values: { logic?: unknown } }> }>(stored)
    .flatMap((l) => Object.values(l.nodes))
    .filter((n) => n.type === 'flow.callLogic')
    .map((n) => String(n.values.logic));
  expect(calls).not.toContain('incoming call');
  expect(calls).toContain('incoming calls');
  expect(Object.values<{ name: string }>(stored).map((l) => l.name)).not.toContain('night service');
  expect(Object.values<{ name: string }>(stored).map((l) => l.name)).toContain('incoming calls');
});

test('the shortcut help lists every shortcut (`?` and the top bar button)', async () => {
  const { page } = d;
  await d.goto('registration');
  await page.locator('.react-flow__pane').click();
  await page.keyboard.press('?');
  const help = page.getByTestId('shortcut-help');
  await want(help).toBeVisible();
  for (const k of ['Ctrl+S', 'Ctrl+Z', 'Ctrl+Y', 'Ctrl+D', 'Ctrl+C / Ctrl+V', 'Delete', 'Shift+drag', '?']) await want(help).toContainText(k);
  await d.shots('forms-7-shortcut-help');
  await page.keyboard.press('Escape');
  await want(help).toHaveCount(0);
  await page.getByTestId('shortcut-help-button').click();
  await want(help).toBeVisible();
  await page.getByTestId('shortcut-help-close').click();
  await want(help).toHaveCount(0);
  // typing `?` in a field types it
  await d.node('3').click();
  await page.getByTestId('node-name').press('?');
  await want(help).toHaveCount(0);
  await page.keyboard.press('Control+z');
});

test('side panels collapse to a thin bar, kept across reloads: the canvas gets ≥ 1000 px at 1280×800', async () => {
  const { page } = d;
  await page.setViewportSize({ width: 1280, height: 800 });
  await d.goto('registration');
  const canvasWidth = async () => (await page.locator('.react-flow').boundingBox())!.width;
  const open = await canvasWidth();
  expect(open).toBeLessThan(1000);
  await page.getByTestId('collapse-left').click();
  await page.getByTestId('collapse-right').click();
  await want(page.getByTestId('palette')).not.toBeVisible();
  await want(page.getByTestId('tab-inspector')).not.toBeVisible();
  expect(await canvasWidth()).toBeGreaterThanOrEqual(1000);
  await d.shots('forms-7-panels-collapsed');
  await page.reload();
  await page.getByTestId('doc-title').filter({ hasText: 'registration' }).waitFor();
  expect(await canvasWidth()).toBeGreaterThanOrEqual(1000);
  await page.getByTestId('collapse-left').click();
  await page.getByTestId('collapse-right').click();
  await want(page.getByTestId('palette')).toBeVisible();
  expect(Math.round(await canvasWidth())).toBe(Math.round(open));
});

test('the dark theme follows the system setting, the canvas too', async () => {
  const { page } = d;
  await d.goto('registration');
  const colours = () =>
    page.evaluate(() => ({
      body: getComputedStyle(document.body).backgroundColor,
      panel: getComputedStyle(document.querySelector('aside.right')!).backgroundColor,
      canvas: getComputedStyle(document.querySelector('.react-flow')!).backgroundColor,
      node: getComputedStyle(document.querySelector('.sip-node')!).backgroundColor,
    }));
  await d.node('3').click();
  await page.emulateMedia({ colorScheme: 'light' });
  const light = await colours();
  expect(light.body).toBe('rgb(241, 245, 249)');
  expect(light.panel).toBe('rgb(255, 255, 255)');
  await d.shots('forms-7-theme-light');
  await page.emulateMedia({ colorScheme: 'dark' });
  const dark = await colours();
  expect(dark.body).toBe('rgb(11, 18, 32)');
  expect(dark.panel).toBe('rgb(17, 26, 46)');
  const luminance = (rgb: string) =>
    rgb
      .match(/\d+/g)!
      .slice(0, 3)
      .reduce((a, v) => a + Number(v), 0);
  expect(luminance(dark.canvas)).toBeLessThan(200);
  expect(luminance(dark.node)).toBeLessThan(200);
  await d.shots('forms-7-theme-dark');
  await page.emulateMedia({ colorScheme: 'light' });
});

test('no errors in the browser console', () => {
  expect(d.consoleErrors.filter((e) => !/status of 401/.test(e))).toEqual([]);
});
