/**
 * One designer under test: the real HTTP API on a random port over a PGlite memory directory with
 * the shipped flows imported, and Debian's Chromium (playwright-core) pointed at it. Each designer
 * suite starts its own (its flows are its own to edit) and calls `close()` in afterAll.
 *
 * `shots(name)` keeps two screenshots per point as test artifacts (test-artifacts/designer/), at
 * 1280×800 and 1920×1080, the sizes the issue asks the designer to be usable at.
 */
import { execSync } from 'child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'fs';
import os from 'os';
import path from 'path';
import type { FastifyInstance } from 'fastify';
import type { BrowserContext, Locator, Page } from 'playwright-core';
import { parseConfig } from '../../../server/config';
import { createFlowsStore, type FlowsStore } from '../../../server/flows';
import { buildApi } from '../../../server/http';
import { createLogger } from '../../../server/logger';
import { createMetrics } from '../../../server/metrics';
import { openRuntime, runtimeOptionsFromConfig, type Runtime } from '../../../server/runtime';
import { CHROMIUM, launchBrowser } from './browser';

export const ROOT = path.join(__dirname, '../../..');
export const ARTIFACTS = path.join(ROOT, 'test-artifacts/designer');
export const TOKEN = 'designer-test-token-0123456789';

export interface Designer {
  base: string;
  page: Page;
  context: BrowserContext;
  flows: FlowsStore;
  runtime: Runtime;
  /** Browser console errors, page errors and HTTP answers ≥ 400 (401 excepted) seen so far. */
  consoleErrors: string[];
  /** An API call with the token. */
  api(method: string, url: string, body?: string, headers?: Record<string, string>): Promise<{ status: number; text: string; headers: Headers }>;
  /** Opens the designer on `#/flow/<name>` (token in the URL the first time) and waits for its title. */
  goto(flow: string): Promise<void>;
  /** Clicks a flow in the flow list and waits for its title. */
  openFlow(name: string): Promise<void>;
  /** The canvas node of that id. */
  node(id: string): Locator;
  /** Waits until the debounced server validation shows a status matching `expected`. */
  validationStatus(expected: RegExp): Promise<void>;
  /** Screenshots `<name>-1280x800.png` and `<name>-1920x1080.png`, then restores the viewport. */
  shots(name: string): Promise<void>;
  close(): Promise<void>;
}

export async function startDesigner(): Promise<Designer> {
  if (!existsSync(CHROMIUM))
    throw new Error(`no Chromium at ${CHROMIUM}: apt-get install -y chromium (scripts/install-system-deps.sh) or set SIPFLOW_CHROMIUM`);
  if (!existsSync(path.join(ROOT, 'designer/dist/index.html'))) execSync('npm run build:designer', { cwd: ROOT, stdio: 'inherit' });
  mkdirSync(ARTIFACTS, { recursive: true });

  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'sipflow-designer-'));
  const config = parseConfig(
    JSON.stringify({
      dataDir,
      directory: { url: 'memory://' },
      location: { url: 'memory' },
      auth: { nonceSecret: 'designer-test-secret-0123456789' },
      http: { token: TOKEN },
    }),
    'test',
  );
  const runtime = await openRuntime({ ...runtimeOptionsFromConfig(config), purgeIntervalSec: undefined });
  const flows = await createFlowsStore({ knex: runtime.knex, primary: 'pbx' });
  await flows.bootstrap(path.join(ROOT, 'flows'));
  const app: FastifyInstance = await buildApi({
    config,
    runtime,
    flows,
    metrics: createMetrics({ defaultMetrics: false }),
    logger: createLogger({ level: 'warn' }),
    publicPrefixes: ['/designer'],
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const addr = app.server.address();
  const base = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;

  const { context, page, profileDir } = await launchBrowser();
  const consoleErrors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') consoleErrors.push(m.text());
  });
  page.on('pageerror', (e) => consoleErrors.push(`${String(e)}\n${e.stack ?? ''}`.slice(0, 3000)));
  page.on('response', (r) => {
    if (r.status() >= 400 && r.status() !== 401) consoleErrors.push(`HTTP ${r.status()} ${r.request().method()} ${r.url()}`);
  });

  const d: Designer = {
    base,
    page,
    context,
    flows,
    runtime,
    consoleErrors,
    async api(method, url, body, headers = {}) {
      const r = await fetch(base + url, {
        method,
        body,
        headers: { authorization: `Bearer ${TOKEN}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
      });
      return { status: r.status, text: await r.text(), headers: r.headers };
    },
    async goto(flow) {
      await page.goto(`${base}/designer/?token=${TOKEN}#/flow/${flow}`);
      await page.getByTestId('doc-title').filter({ hasText: flow }).waitFor();
    },
    async openFlow(name) {
      await page.getByTestId(`flow-${name}`).click();
      await page.getByTestId('doc-title').filter({ hasText: name }).waitFor();
    },
    node: (id) => page.locator(`.react-flow__node[data-id="${id}"]`),
    async validationStatus(expected) {
      await page.waitForFunction(
        `new RegExp(${JSON.stringify(expected.source)}).test(document.querySelector('[data-testid="validation-status"]')?.textContent ?? '')`,
        undefined,
        { timeout: 15_000 },
      );
    },
    async shots(name) {
      const before = page.viewportSize();
      for (const [width, height] of [
        [1280, 800],
        [1920, 1080],
      ]) {
        await page.setViewportSize({ width, height });
        await page.waitForTimeout(150); // one layout pass of the canvas after the resize
        await page.screenshot({ path: path.join(ARTIFACTS, `${name}-${width}x${height}.png`) });
      }
      if (before) await page.setViewportSize(before);
    },
    async close() {
      await context.close().catch(() => undefined);
      await app.close().catch(() => undefined);
      flows.close();
      await runtime.close().catch(() => undefined);
      for (const dir of [profileDir, dataDir]) rmSync(dir, { recursive: true, force: true });
    },
  };
  return d;
}
