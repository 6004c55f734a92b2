/**
 * Test cases in the designer (helper "tests"): the Tests panel lists the flow's stored cases and
 * runs them (✓ / ✗ with what differed), a simulation is saved as a test case, a case is deleted,
 * Export downloads `<flow>.tests.json` beside the `.slid`, Import takes it, and activating a
 * release whose test cases fail is refused. Screenshots at 1280×800 and 1920×1080.
 */
import { readFileSync } from 'fs';
import { want } from './browser';
import { startDesigner, type Designer } from './harness';

jest.setTimeout(240_000);

let d: Designer;
beforeAll(async () => {
  d = await startDesigner();
});
afterAll(() => d?.close());

const tests = () => d.page.getByTestId('test-case');
const runAll = async () => {
  await d.page.getByTestId('tests-run').click();
  await d.page.getByTestId('tests-summary').waitFor({ timeout: 60_000 });
};

describe('designer: test cases', () => {
  test('the Tests panel lists the shipped cases of registration and runs them all: ✓', async () => {
    await d.goto('registration');
    await d.page.getByTestId('tab-tests').click();
    await want(tests()).toHaveCount(4);
    await want(tests().first()).toContainText('REGISTER without credentials: 401 challenge');
    await want(tests().first()).toContainText('expects challenge 401');
    await runAll();
    await want(d.page.getByTestId('tests-summary')).toContainText('✓ all 4 passed');
    await want(d.page.locator('.tests-list li.test-pass')).toHaveCount(4);
    await d.shots('tests-panel-passed');
  });

  test('Save as test case: the simulated REGISTER with credentials becomes a case that passes', async () => {
    await d.page.getByTestId('tab-simulate').click();
    await d.page.getByTestId('sim-sample').selectOption('register-auth');
    await d.page.getByTestId('sim-run').click();
    await want(d.page.getByTestId('sim-outcome')).toContainText('register 200');
    await d.page.getByTestId('sim-save-test').click();
    // a name is asked for, the outcome suggested
    await want(d.page.getByTestId('sim-test-name')).toHaveValue('REGISTER: register 200 OK');
    // the password played is stored with the case: the form says so before it is saved
    await want(d.page.getByTestId('sim-test-credentials')).toContainText('(francesco) are stored in the test case');
    await d.page.getByTestId('sim-test-name').fill('francesco registers (from the simulator)');
    await d.shots('tests-save-naming');
    await d.page.getByTestId('sim-test-save').click();
    await want(d.page.getByTestId('sim-save-note')).toContainText('saved as test case "francesco registers (from the simulator)" of registration');
    await d.shots('tests-save-from-simulator');

    const stored = JSON.parse((await d.api('GET', '/api/v1/flows/registration/tests')).text);
    const saved = stored.tests.find((t: { name: string }) => t.name === 'francesco registers (from the simulator)');
    expect(saved).toMatchObject({
      logic: '24',
      credentials: { username: 'francesco', password: '123456' },
      expect: { kind: 'register', status: 200, path: ['0', '1', '3', '5', '4', '0', '1', '2'] },
    });
    expect(saved.cd.requestMethod).toBe('REGISTER');
    expect(saved.cd.headers.Authorization).toBeUndefined();

    await d.page.getByTestId('tab-tests').click();
    await want(tests()).toHaveCount(5);
    await runAll();
    await want(d.page.getByTestId('tests-summary')).toContainText('✓ all 5 passed');
  });

  test('a failing case shows ✗ and what differed; deleting it makes the run pass again', async () => {
    const stored = JSON.parse((await d.api('GET', '/api/v1/flows/registration/tests')).text);
    stored.tests.push({ ...stored.tests[0], name: 'wrong status on purpose', expect: { kind: 'challenge', status: 407 } });
    expect((await d.api('PUT', '/api/v1/flows/registration/tests', JSON.stringify(stored))).status).toBe(200);
    // the panel reads the cases again when the flow is opened again
    await d.openFlow('pbx');
    await d.openFlow('registration');
    await want(tests()).toHaveCount(6);
    await runAll();
    await want(d.page.getByTestId('tests-summary')).toContainText('✗ 1 failed, 5 passed');
    const failing = d.page.locator('.tests-list li.test-fail');
    await want(failing).toHaveCount(1);
    await want(failing.getByTestId('test-mark')).toContainText('✗');
    await want(failing.getByTestId('test-message')).toContainText('expected challenge 407, got challenge 401');
    await d.shots('tests-failure');

    await failing.getByTestId('test-delete').click(); // confirm accepted
    await want(tests()).toHaveCount(5);
    expect(JSON.parse((await d.api('GET', '/api/v1/flows/registration/tests')).text).tests).toHaveLength(5);
    await runAll();
    await want(d.page.getByTestId('tests-summary')).toContainText('✓ all 5 passed');
  });

  test('Export downloads registration.tests.json beside the .slid; Import takes a .tests.json back', async () => {
    const downloads: Array<{ name: string; text: string }> = [];
    const seen = new Promise<void>((resolve) => {
      d.page.on('download', async (dl) => {
        const file = await dl.path();
        downloads.push({ name: dl.suggestedFilename(), text: readFileSync(file, 'utf8') });
        if (downloads.length === 2) resolve();
      });
    });
    await d.page.getByTestId('export').click();
    await seen;
    const names = downloads.map((x) => x.name).sort();
    expect(names).toEqual(['registration.slid', 'registration.tests.json']);
    const exported = downloads.find((x) => x.name === 'registration.tests.json')!.text;
    expect(JSON.parse(exported).tests).toHaveLength(5);

    // import the shipped file back (4 cases) through the top bar's Import, confirm accepted
    const shipped = JSON.parse(exported);
    shipped.tests = shipped.tests.slice(0, 4);
    await d.page
      .getByTestId('import-file')
      .setInputFiles({ name: 'registration.tests.json', mimeType: 'application/json', buffer: Buffer.from(JSON.stringify(shipped)) });
    await want(d.page.getByTestId('status')).toContainText('registration.tests.json: 4 test case(s) imported into "registration"');
    await want(tests()).toHaveCount(4);
    await d.shots('tests-imported');
  });

  test('activating a release whose test cases fail is refused (422) and nothing is activated', async () => {
    const stored = JSON.parse((await d.api('GET', '/api/v1/flows/registration/tests')).text);
    stored.tests[0].expect.status = 407;
    expect((await d.api('PUT', '/api/v1/flows/registration/tests', JSON.stringify(stored))).status).toBe(200);
    const rel = JSON.parse((await d.api('POST', '/api/v1/flows/registration/releases', '{}')).text);
    await d.page.goto(`${d.base}/designer/#/flow/registration`);
    await d.page.getByTestId('doc-title').filter({ hasText: 'registration' }).waitFor();
    await d.page.locator('.flow-row', { hasText: 'registration' }).locator('.twisty').click();
    await d.page
      .locator('.releases li', { hasText: `v${rel.version}` })
      .getByRole('button', { name: 'activate' })
      .click();
    // the activation dialog (diff from the active release) asks first; the server's 422 then lists the failures
    await d.page.getByTestId('activate-dialog').waitFor();
    await d.page.getByTestId('choice-activate').click();
    const failed = d.page.getByTestId('tests-failed-dialog');
    await want(failed).toContainText('1 failed');
    await want(failed.getByTestId('test-failure')).toContainText('expected challenge 407, got challenge 401');
    await d.shots('tests-activation-refused');
    await d.page.getByTestId('choice-cancel').click();
    await want(d.page.getByTestId('status')).toContainText('not activated');
    expect(JSON.parse((await d.api('GET', '/api/v1/flows/registration')).text).activeVersion).toBe(1);
  });
});
