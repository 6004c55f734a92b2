/**
 * JUnit XML of test-case runs (`sipflow test --junit`): one <testsuite> per flow, one <testcase>
 * per test, a <failure message="…"> for each failure and an <error> for a flow whose tests could
 * not run (bad file). Text and attributes are escaped here (no XML library in the dependencies).
 */
import type { TestReport } from './runner';

/** Escapes text for XML content and double-quoted attributes; drops characters XML 1.0 cannot hold. */
export function escapeXml(s: string): string {
  return s
    // eslint-disable-next-line no-control-regex
    .replace(/[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/g, '')
    .replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, '\uFFFD')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;')
    .replace(/\r/g, '&#13;')
    .replace(/\n/g, '&#10;')
    .replace(/\t/g, '&#9;');
}

export interface JunitSuite {
  /** The flow's name (the file name without `.slid`). */
  name: string;
  file: string;
  report?: TestReport;
  /** The flow or its tests could not be used (bad file): one <error>. */
  error?: string;
}

const seconds = (ms: number) => (ms / 1000).toFixed(3);

export function junitXml(suites: JunitSuite[]): string {
  const out: string[] = ['<?xml version="1.0" encoding="UTF-8"?>'];
  const count = (f: (s: JunitSuite) => number) => suites.reduce((n, s) => n + f(s), 0);
  const tests = count((s) => (s.report ? s.report.results.length : 1));
  const failures = count((s) => s.report?.failed ?? 0);
  const errors = count((s) => (s.error !== undefined ? 1 : 0));
  out.push(`<testsuites name="sipflow test" tests="${tests}" failures="${failures}" errors="${errors}">`);
  for (const s of suites) {
    const a = (v: string) => escapeXml(v);
    if (s.error !== undefined) {
      out.push(`  <testsuite name="${a(s.name)}" file="${a(s.file)}" tests="1" failures="0" errors="1" time="0.000">`);
      out.push(`    <testcase name="${a(s.name)}" classname="${a(s.name)}" time="0.000">`);
      out.push(`      <error message="${a(s.error)}">${a(s.error)}</error>`);
      out.push('    </testcase>', '  </testsuite>');
      continue;
    }
    const r = s.report!;
    const time = r.results.reduce((n, t) => n + t.durationMs, 0);
    out.push(`  <testsuite name="${a(s.name)}" file="${a(s.file)}" tests="${r.results.length}" failures="${r.failed}" errors="0" time="${seconds(time)}">`);
    for (const t of r.results) {
      const open = `    <testcase name="${a(t.name)}" classname="${a(s.name)}" time="${seconds(t.durationMs)}"`;
      if (t.passed) {
        out.push(`${open}/>`);
        continue;
      }
      const detail = t.actual ? `logic ${t.logic}: ${t.actual.kind}${t.actual.status !== null ? ` ${t.actual.status}` : ''}, path ${t.actual.path.join(' → ')}` : `logic ${t.logic}`;
      out.push(`${open}>`, `      <failure message="${a(t.message)}" type="assertion">${a(detail)}</failure>`, '    </testcase>');
    }
    out.push('  </testsuite>');
  }
  out.push('</testsuites>', '');
  return out.join('\n');
}
