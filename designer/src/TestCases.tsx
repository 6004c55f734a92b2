/**
 * The Tests panel: the open flow's test cases (`<flow>.tests.json`, stored beside the flow on the
 * server, docs/flows.md "Test cases"). **Run all** runs them on the server's private directory
 * (`POST /api/v1/flows/:name/tests/run`: the saved development copy, a seeded in-memory directory
 * plus each test's fixture rows) and shows ✓ / ✗ with what differed; a case can be deleted;
 * `.tests.json` files can be imported and exported. Cases are added from the simulator
 * (**Save as test case**, ./Simulate.tsx).
 */
import { useCallback, useEffect, useState } from 'react';
import { ApiFailure, exportFlowTests, getFlowTests, putFlowTests, runFlowTests, type Api, type TestRun, type TestsDoc } from './api';
import { download } from './download';

interface Props {
  api: Api;
  /** The open flow when it is stored on the server (null: new or imported and not saved yet). */
  flowName: string | null;
  /** Changes when a test case was added elsewhere (the simulator): the list is read again. */
  seq: number;
  /** Lights a failing or passing case's actual path on the canvas (node ids of the tested logic). */
  onShowPath?(logic: string | undefined, path: string[]): void;
}

const expected = (e: TestsDoc['tests'][number]['expect']) => `${e.kind}${e.status !== undefined ? ` ${e.status}` : ''}`;

/** Imports a `.tests.json` as the test cases of `flow` (asks before replacing existing ones). True when stored. */
export async function importTestsFile(api: Api, flow: string, file: File): Promise<number> {
  const text = await file.text();
  const current = await getFlowTests(api, flow);
  if (current.tests.length > 0 && !window.confirm(`Replace the ${current.tests.length} test case(s) of "${flow}" with those of ${file.name}?`)) return -1;
  return (await putFlowTests(api, flow, text)).tests;
}

export function TestCases({ api, flowName, seq, onShowPath }: Props) {
  const [doc, setDoc] = useState<TestsDoc | null>(null);
  const [run, setRun] = useState<TestRun | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [info, setInfo] = useState<string | null>(null);

  const load = useCallback(async () => {
    if (!flowName) return;
    try {
      setDoc(await getFlowTests(api, flowName));
      setError(null);
    } catch (e) {
      setError(e instanceof ApiFailure ? e.message : String(e));
    }
  }, [api, flowName]);

  useEffect(() => {
    setDoc(null);
    setRun(null);
    setInfo(null);
    void load();
  }, [load, seq]);

  if (!flowName) return <p className="hint pad">Save the flow to keep test cases with it.</p>;

  const results = new Map((run?.results ?? []).map((r) => [r.name, r]));

  async function runAll() {
    setBusy(true);
    setError(null);
    try {
      setRun(await runFlowTests(api, flowName!));
    } catch (e) {
      setError(e instanceof ApiFailure ? e.message : String(e));
    } finally {
      setBusy(false);
    }
  }

  async function remove(name: string) {
    if (!doc || !window.confirm(`Delete the test case "${name}"?`)) return;
    const next = { ...doc, tests: doc.tests.filter((t) => t.name !== name) };
    try {
      await putFlowTests(api, flowName!, JSON.stringify(next, null, 2) + '\n');
      setDoc(next);
      setRun((r) => (r ? { ...r, results: r.results.filter((x) => x.name !== name) } : r));
    } catch (e) {
      setError(e instanceof ApiFailure ? e.message : String(e));
    }
  }

  async function exportTests() {
    const text = await exportFlowTests(api, flowName!).catch(() => null);
    if (text !== null) download(`${flowName}.tests.json`, text);
  }

  return (
    <div className="testcases" data-testid="testcases">
      <div className="row">
        <button className="primary" data-testid="tests-run" disabled={busy || !doc || doc.tests.length === 0} onClick={runAll}>
          {busy ? 'Running…' : 'Run all'}
        </button>
        <button data-testid="tests-export" disabled={!doc || doc.tests.length === 0} onClick={exportTests}>
          Export
        </button>
        <label className="button-like">
          Import…
          <input
            type="file"
            accept=".json,application/json"
            hidden
            data-testid="tests-import"
            onChange={async (e) => {
              const f = e.target.files?.[0];
              e.target.value = '';
              if (!f) return;
              try {
                const n = await importTestsFile(api, flowName, f);
                if (n >= 0) setInfo(`${f.name}: ${n} test case(s) imported`);
                await load();
                setRun(null);
              } catch (err) {
                setError(err instanceof ApiFailure ? err.message : String(err));
              }
            }}
          />
        </label>
      </div>
      <p className="hint">
        Runs the saved development copy on a private directory (the sample subscriber plus each case&apos;s fixture rows); nothing real is read or written. Add
        cases with <strong>Save as test case</strong> in Simulate.
      </p>
      {error && (
        <div className="error-box" data-testid="tests-error">
          {error}
        </div>
      )}
      {info && (
        <div className="hint" data-testid="tests-info">
          {info}
        </div>
      )}
      {run && (
        <div className={`tests-summary ${run.failed ? 'tests-failed' : 'tests-passed'}`} data-testid="tests-summary">
          {run.failed ? `✗ ${run.failed} failed, ${run.passed} passed` : `✓ all ${run.passed} passed`}
        </div>
      )}
      {doc && doc.tests.length === 0 && (
        <p className="hint" data-testid="tests-empty">
          No test cases yet.
        </p>
      )}
      <ul className="tests-list">
        {doc?.tests.map((t) => {
          const r = results.get(t.name);
          return (
            <li key={t.name} className={r ? (r.passed ? 'test-pass' : 'test-fail') : ''} data-testid="test-case">
              <div className="test-head">
                <span className="test-mark" data-testid="test-mark">
                  {r ? (r.passed ? '✓' : '✗') : '•'}
                </span>
                <button
                  className="link test-name"
                  title={r?.actual ? `path: ${r.actual.path.join(' → ')}` : undefined}
                  onClick={() => r?.actual && onShowPath?.(t.logic, r.actual.path)}
                >
                  {t.name}
                </button>
                <span className="hint">expects {expected(t.expect)}</span>
                <button className="link small danger" data-testid="test-delete" title="delete this test case" onClick={() => void remove(t.name)}>
                  delete
                </button>
              </div>
              {r && !r.passed && (
                <div className="test-message" data-testid="test-message">
                  {r.message}
                </div>
              )}
            </li>
          );
        })}
      </ul>
    </div>
  );
}
