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

test('no errors in the browser console', () => {
  expect(d.consoleErrors.filter((e) => !/status of 401/.test(e))).toEqual([]);
});
