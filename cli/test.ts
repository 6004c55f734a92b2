/**
 * `sipflow test <flow.slid | folder>…`: runs the test cases beside each flow (`<name>.tests.json`)
 * on a throw-away PGlite directory (migrated, seeded with the note's sample subscriber; no server
 * needed). One line per test, a summary; exit 1 on any failure or any bad file; `--junit <file>`
 * writes JUnit XML (a testsuite per flow, a testcase per test).
 */
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'fs';
import path from 'path';
import { formatProblem, loadSlidText } from '../engine/load';
import type { NodeRegistry } from '../engine/registry';
import { junitXml, openTestEnvironment, parseTestDocument, runTestCases, TestDocumentError, testsFileOf, type JunitSuite } from '../server/flows/test-cases';

interface Target {
  slid: string;
  tests: string;
}

/** The flows to test: a file's sidecar (required), or every `*.slid` of a folder that has one. */
export function testTargets(args: string[]): { targets: Target[]; problems: string[] } {
  const targets: Target[] = [];
  const problems: string[] = [];
  for (const arg of args) {
    let st;
    try {
      st = statSync(arg);
    } catch {
      problems.push(`${arg}: no such file or folder`);
      continue;
    }
    if (st.isDirectory()) {
      for (const f of readdirSync(arg)
        .filter((n) => n.endsWith('.slid'))
        .sort()) {
        const slid = path.join(arg, f);
        if (existsSync(testsFileOf(slid))) targets.push({ slid, tests: testsFileOf(slid) });
      }
    } else if (arg.endsWith('.tests.json')) {
      targets.push({ slid: arg.replace(/\.tests\.json$/, '.slid'), tests: arg });
    } else {
      const tests = testsFileOf(arg);
      if (existsSync(tests)) targets.push({ slid: arg, tests });
      else problems.push(`${arg}: no test cases beside it (${path.basename(tests)})`);
    }
  }
  return { targets, problems };
}

export async function runTestCommand(
  args: string[],
  o: { junit?: string; realm?: string },
  registry: NodeRegistry,
  print: (line: string) => void,
): Promise<number> {
  const { targets, problems } = testTargets(args);
  for (const p of problems) print(`✗ ${p}`);
  const suites: JunitSuite[] = [];
  let passed = 0;
  let failed = 0;
  let bad = problems.length;
  const env = targets.length ? await openTestEnvironment({ realm: o.realm }) : null;
  try {
    for (const t of targets) {
      const name = path.basename(t.slid).replace(/\.slid$/i, '');
      let error: string | undefined;
      try {
        const text = readFileSync(t.slid, 'utf8');
        const loaded = loadSlidText(text, path.basename(t.slid), registry);
        if (!loaded.service) {
          error = `${t.slid}: ${loaded.problems
            .filter((p) => p.severity === 'error')
            .map((p) => formatProblem(p))
            .join('; ')}`;
        } else {
          const doc = parseTestDocument(readFileSync(t.tests, 'utf8'), t.tests);
          const report = await runTestCases(loaded.service, doc, { realm: o.realm }, env!);
          print(`${name} (${t.slid})`);
          for (const r of report.results) print(r.passed ? `  ✓ ${r.name}` : `  ✗ ${r.name}: ${r.message}`);
          passed += report.passed;
          failed += report.failed;
          suites.push({ name, file: t.slid, report });
          continue;
        }
      } catch (e) {
        error = e instanceof TestDocumentError ? e.message : `${t.slid}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`;
      }
      bad++;
      print(`✗ ${error}`);
      suites.push({ name, file: t.slid, error });
    }
  } finally {
    await env?.close();
  }
  print(`${targets.length} flow(s): ${passed} passed, ${failed} failed${bad ? `, ${bad} bad file(s)` : ''}`);
  if (o.junit) writeFileSync(o.junit, junitXml(suites));
  return failed > 0 || bad > 0 ? 1 : 0;
}
