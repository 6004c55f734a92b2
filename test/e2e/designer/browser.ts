/**
 * The browser the designer suites drive: Debian's Chromium through playwright-core (no browser is
 * ever downloaded), a throw-away profile; and tiny polling matchers for locators in the spirit of
 * @playwright/test's (playwright-core has no test runner).
 */
import { mkdtempSync } from 'fs';
import os from 'os';
import path from 'path';
import { chromium, type BrowserContext, type Locator, type Page } from 'playwright-core';

export const CHROMIUM = process.env.SIPFLOW_CHROMIUM ?? '/usr/bin/chromium';

/** Headless Chromium with a new profile (the caller removes `profileDir` after closing `context`); dialogs accepted. */
export async function launchBrowser(): Promise<{ context: BrowserContext; page: Page; profileDir: string }> {
  const profileDir = mkdtempSync(path.join(os.tmpdir(), 'sipflow-chromium-'));
  const context = await chromium.launchPersistentContext(profileDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    viewport: { width: 1600, height: 1000 },
  });
  const page = context.pages()[0] ?? (await context.newPage());
  page.on('dialog', (d) => {
    void d.accept();
  });
  return { context, page, profileDir };
}

export const want = (loc: Locator) => locatorExpect(loc);
function locatorExpect(loc: Locator, negate = false) {
  const poll = async (what: string, check: () => Promise<boolean>, timeout = 10_000) => {
    const until = Date.now() + timeout;
    for (;;) {
      let ok: boolean;
      try {
        ok = (await check()) !== negate;
      } catch {
        ok = false;
      }
      if (ok) return;
      if (Date.now() > until) throw new Error(`expected ${loc} ${negate ? 'not ' : ''}${what}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  return {
    get not() {
      return locatorExpect(loc, !negate);
    },
    toHaveCount: (n: number, o?: { timeout?: number }) => poll(`to have count ${n} (has ${'?'})`, async () => (await loc.count()) === n, o?.timeout),
    toBeVisible: (o?: { timeout?: number }) => poll('to be visible', () => loc.isVisible(), o?.timeout),
    toHaveValue: (v: string, o?: { timeout?: number }) => poll(`to have value ${JSON.stringify(v)}`, async () => (await loc.inputValue()) === v, o?.timeout),
    toContainText: (t: string, o?: { timeout?: number }) =>
      poll(`to contain text ${JSON.stringify(t)}`, async () => ((await loc.textContent()) ?? '').includes(t), o?.timeout),
    toHaveClass: (re: RegExp, o?: { timeout?: number }) =>
      poll(`to have class ${re}`, async () => re.test((await loc.getAttribute('class')) ?? ''), o?.timeout),
  };
}
