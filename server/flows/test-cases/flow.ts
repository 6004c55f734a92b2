/**
 * A flow's stored test cases run against its development copy or a release: what the API's
 * `POST /flows/:name/tests/run` and the activation gate use. One private test environment
 * (./runner.ts: PGlite in memory, seeded) per store, opened on first use and shared by the runs,
 * which it serializes; `closeFlowTests(store)` closes it.
 */
import type { FlowsStore } from '../types';
import { parseTestDocument } from './format';
import { openTestEnvironment, runTestCases, type TestEnvironment, type TestReport, type TestRunOptions } from './runner';

export interface FlowTestRun extends TestReport {
  flow: string;
  version: number | 'development';
  /** False when the flow (at that version) has no test cases: nothing was run. */
  hasTests: boolean;
}

const environments = new WeakMap<FlowsStore, Promise<TestEnvironment>>();

function environmentOf(store: FlowsStore, o: TestRunOptions): Promise<TestEnvironment> {
  let env = environments.get(store);
  if (!env) {
    env = openTestEnvironment(o);
    environments.set(store, env);
    // a failed open is not kept: the next run tries again
    env.catch(() => environments.delete(store));
  }
  return env;
}

/** Runs the test cases of `name` at `version` (default development). Throws TestDocumentError (400) for a stored document that no longer parses. */
export async function runFlowTests(store: FlowsStore, name: string, version: number | 'development' = 'development', o: TestRunOptions = {}): Promise<FlowTestRun> {
  const { text } = await store.testsText(name, version);
  const doc = text === null ? null : parseTestDocument(text, `${name}.tests.json`);
  if (doc === null || doc.tests.length === 0) return { flow: name, version, hasTests: false, passed: 0, failed: 0, results: [] };
  const { service } = await store.compiled(name, version);
  const report = await runTestCases(service, doc, o, await environmentOf(store, o));
  return { flow: name, version, hasTests: true, ...report };
}

/** Closes the store's test environment, when one was opened. */
export async function closeFlowTests(store: FlowsStore): Promise<void> {
  const env = environments.get(store);
  environments.delete(store);
  if (env) await (await env.catch(() => null))?.close();
}
