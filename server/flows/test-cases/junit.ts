/**
 * JUnit XML of test-case runs (`sipflow test --junit`): one <testsuite> per flow, one <testcase>
 * per test, a <failure message="…"> for each failure and an <error> for a flow whose tests could
 * not run (bad file). Built as a DOM and serialized by @xmldom/xmldom (already a dependency, for
 * query.httpRequest), which escapes markup; characters XML 1.0 cannot hold at all (control
 * characters, lone surrogates) are replaced first.
 */
import { DOMImplementation, XMLSerializer, type Element } from '@xmldom/xmldom';
import type { TestReport } from './runner';

/** Text XML 1.0 can hold: control characters dropped (tab, newline kept), lone surrogates replaced. */
export function xmlSafe(s: string): string {
  return (
    s
      // eslint-disable-next-line no-control-regex
      .replace(/[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/g, '')
      .replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, '\uFFFD')
  );
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
  const doc = new DOMImplementation().createDocument(null, 'testsuites', null);
  const root = doc.documentElement!;
  const el = (parent: Element, name: string, attrs: Record<string, string | number>, text?: string): Element => {
    const e = doc.createElement(name);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, xmlSafe(String(v)));
    if (text !== undefined) e.appendChild(doc.createTextNode(xmlSafe(text)));
    parent.appendChild(e);
    return e;
  };
  const count = (f: (s: JunitSuite) => number) => suites.reduce((n, s) => n + f(s), 0);
  root.setAttribute('name', 'sipflow test');
  root.setAttribute('tests', String(count((s) => (s.report ? s.report.results.length : 1))));
  root.setAttribute('failures', String(count((s) => s.report?.failed ?? 0)));
  root.setAttribute('errors', String(count((s) => (s.error !== undefined ? 1 : 0))));
  for (const s of suites) {
    if (s.error !== undefined) {
      const suite = el(root, 'testsuite', { name: s.name, file: s.file, tests: 1, failures: 0, errors: 1, time: '0.000' });
      const tc = el(suite, 'testcase', { name: s.name, classname: s.name, time: '0.000' });
      el(tc, 'error', { message: s.error }, s.error);
      continue;
    }
    const r = s.report!;
    const time = r.results.reduce((n, t) => n + t.durationMs, 0);
    const suite = el(root, 'testsuite', { name: s.name, file: s.file, tests: r.results.length, failures: r.failed, errors: 0, time: seconds(time) });
    for (const t of r.results) {
      const tc = el(suite, 'testcase', { name: t.name, classname: s.name, time: seconds(t.durationMs) });
      if (t.passed) continue;
      const detail = t.actual
        ? `logic ${t.logic}: ${t.actual.kind}${t.actual.status !== null ? ` ${t.actual.status}` : ''}, path ${t.actual.path.join(' → ')}`
        : `logic ${t.logic}`;
      el(tc, 'failure', { message: t.message, type: 'assertion' }, detail);
    }
  }
  return `<?xml version="1.0" encoding="UTF-8"?>\n${new XMLSerializer().serializeToString(doc)}\n`;
}
