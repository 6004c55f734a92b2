/**
 * Simulation: runs the document being edited (saved or not) on the server against a call
 * descriptor and shows each pass, each step with the CD after it, and the final outcome. The
 * "REGISTER with credentials" sample does what a UA does: sends the REGISTER, answers the 401
 * challenge with the digest response computed here, and sends it again; the server then
 * authenticates (pass 2) and restarts the logic to save the binding (pass 3). The steps and the CD
 * after each are ./TraceView.tsx, shared with a recorded call's run; a run's "Replay in simulator"
 * puts its call descriptor here (`preset`).
 */
import { useMemo, useState } from 'react';
import { ApiFailure, getFlowTests, putFlowTests, type Api, type SimulateResult, type TestCaseDoc } from './api';
import type { SlidDoc } from './model';
import { SAMPLES, answerChallenge } from './samples';
import { DEFAULT_ROUTE_ANSWER, describeOutcome, pathHighlight, splitPasses, unconnectedEnd, type Highlight, type TracedRequest } from './trace';
import { TraceView } from './TraceView';

export type { Highlight };

/** A call descriptor put into the simulator from elsewhere (a recorded run's "Replay in simulator"); `seq` tells a new one. */
export interface SimulatorPreset {
  seq: number;
  cd: Record<string, unknown>;
  /** Where it came from, shown above the call descriptor. */
  label: string;
}

interface Props {
  api: Api;
  doc: SlidDoc | null;
  logicId: string | null;
  preset: SimulatorPreset | null;
  onHighlight(h: Highlight | null): void;
  onFocusNode(id: string): void;
  /** The open flow as stored on the server (null: not saved yet): where "Save as test case" stores. */
  flowName?: string | null;
  /** A test case was stored (the Tests panel reads them again). */
  onTestSaved?(name: string): void;
}

const traced = (input: Record<string, unknown>, result: SimulateResult): TracedRequest => ({
  input,
  trace: result.trace ?? [],
  outcome: result.outcome,
  finalCd: result.cd,
});

export function Simulate({ api, doc, logicId, preset, onHighlight, onFocusNode, flowName = null, onTestSaved }: Props) {
  const [sampleId, setSampleId] = useState(SAMPLES[0].id);
  const [cdText, setCdText] = useState(JSON.stringify(SAMPLES[0].cd, null, 2));
  const [username, setUsername] = useState('francesco');
  const [password, setPassword] = useState('123456');
  const [revealSecrets, setRevealSecrets] = useState(false);
  /** `datetime-local` value (this browser's zone), empty = the server's current time. */
  const [at, setAt] = useState('');
  const [running, setRunning] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [requests, setRequests] = useState<TracedRequest[]>([]);
  /** What the last run was given (Save as test case stores it): the first request, credentials, instant, logic. */
  const [lastInput, setLastInput] = useState<{
    cd: Record<string, unknown>;
    credentials?: { username: string; password: string };
    now?: string;
    logic: string;
  } | null>(null);
  const [withPath, setWithPath] = useState(true);
  const [saveNote, setSaveNote] = useState<string | null>(null);
  /** Which run the steps belong to (a new run starts the step list afresh). */
  const [runs, setRuns] = useState(0);
  const sample = SAMPLES.find((s) => s.id === sampleId)!;
  const [presetSeen, setPresetSeen] = useState<number | null>(null);
  // A replayed call descriptor replaces the text once (adjusting state while rendering, as React advises for props).
  if (preset && preset.seq !== presetSeen) {
    setPresetSeen(preset.seq);
    setCdText(JSON.stringify(preset.cd, null, 2));
  }

  const passes = useMemo(() => splitPasses(requests), [requests]);
  const final = requests.length ? requests[requests.length - 1] : null;

  const pick = (id: string) => {
    const s = SAMPLES.find((x) => x.id === id)!;
    setSampleId(id);
    setCdText(JSON.stringify(s.cd, null, 2));
  };

  async function run() {
    if (!doc || !logicId) return;
    setError(null);
    setRunning(true);
    setRequests([]);
    setRuns((n) => n + 1);
    onHighlight(null);
    try {
      const cd = JSON.parse(cdText) as Record<string, unknown>;
      const instant = at ? new Date(at) : null;
      if (instant && Number.isNaN(instant.getTime())) throw new RangeError(`run at: not a date and time: ${at}`);
      const now = instant ? instant.toISOString() : undefined;
      const done: TracedRequest[] = [];
      const first = await api.simulate({ slid: doc, logic: logicId, cd, trace: true, revealSecrets, now });
      done.push(traced(cd, first));
      const o = first.outcome;
      if (sample.answerChallenge && o.kind === 'challenge') {
        const challenges = Array.isArray(o.challenges) ? (o.challenges as string[]) : [];
        const challenge =
          challenges.find((c) => /algorithm="?MD5"?(,|$|\s)/i.test(c)) ??
          challenges[0] ??
          `Digest realm="${String(o.realm)}", nonce="${String(o.nonce)}", qop="${String(o.qop)}"`;
        const method = String(cd.requestMethod ?? cd.method ?? 'REGISTER');
        const uri = String(cd.requestURI ?? cd.requestUri ?? '');
        const header = o.header === 'Proxy-Authenticate' ? 'Proxy-Authorization' : 'Authorization';
        const headers = { ...((cd.headers as Record<string, string>) ?? {}) };
        headers[header] = answerChallenge(challenge, { username, password, method, uri });
        const cseq = /^(\d+)\s+(\S+)/.exec(String(headers.CSeq ?? ''));
        if (cseq) headers.CSeq = `${Number(cseq[1]) + 1} ${cseq[2]}`;
        const second = { ...cd, headers };
        done.push(traced(second, await api.simulate({ slid: doc, logic: logicId, cd: second, trace: true, revealSecrets, now })));
      }
      setRequests(done);
      setLastInput({ cd, logic: logicId, now, ...(done.length > 1 ? { credentials: { username, password } } : {}) });
      setSaveNote(null);
      setNaming(null);
      onHighlight(pathHighlight(splitPasses(done), logicId));
    } catch (e) {
      setError(e instanceof SyntaxError ? `call descriptor: ${e.message}` : e instanceof ApiFailure || e instanceof RangeError ? e.message : String(e));
    } finally {
      setRunning(false);
    }
  }

  /** The name being given to a new test case (null: not naming one). */
  const [naming, setNaming] = useState<string | null>(null);
  const suggestedName = () =>
    final?.outcome && lastInput ? `${String(lastInput.cd.requestMethod ?? lastInput.cd.method ?? 'request')}: ${describeOutcome(final.outcome)}` : '';

  /** Stores the last run as a test case of the open flow: its input, credentials, instant, outcome and (optionally) path. */
  async function saveAsTest(given: string) {
    if (!flowName || !final?.outcome || !lastInput) return;
    const name = given.trim();
    if (!name) return;
    const path = final.trace.map((s) => (s.logic === lastInput.logic ? s.nodeId : `${s.logic}/${s.nodeId}`));
    const status = final.outcome.status;
    const test: TestCaseDoc = {
      name,
      logic: lastInput.logic,
      cd: lastInput.cd,
      ...(lastInput.credentials ? { credentials: lastInput.credentials } : {}),
      ...(lastInput.now ? { now: lastInput.now } : {}),
      expect: { kind: final.outcome.kind, ...(typeof status === 'number' ? { status } : {}), ...(withPath && path.length ? { path } : {}) },
    };
    try {
      const current = await getFlowTests(api, flowName);
      const exists = current.tests.some((t) => t.name === name);
      if (exists && !window.confirm(`A test case "${name}" exists: replace it?`)) return;
      const tests = exists ? current.tests.map((t) => (t.name === name ? test : t)) : [...current.tests, test];
      await putFlowTests(api, flowName, JSON.stringify({ ...current, tests }, null, 2) + '\n');
      setSaveNote(`saved as test case "${name}" of ${flowName}`);
      setNaming(null);
      onTestSaved?.(name);
    } catch (e) {
      setError(e instanceof ApiFailure ? e.message : String(e));
    }
  }

  return (
    <div className="simulate" data-testid="simulate">
      <label className="field">
        sample
        <select data-testid="sim-sample" value={sampleId} onChange={(e) => pick(e.target.value)}>
          {SAMPLES.map((s) => (
            <option key={s.id} value={s.id}>
              {s.label}
            </option>
          ))}
        </select>
      </label>
      {sample.answerChallenge && (
        <div className="row">
          <label className="field">
            user
            <input value={username} onChange={(e) => setUsername(e.target.value)} />
          </label>
          <label className="field">
            password
            <input value={password} onChange={(e) => setPassword(e.target.value)} />
          </label>
        </div>
      )}
      {preset && (
        <div className="hint" data-testid="sim-preset">
          {preset.label}
        </div>
      )}
      <label className="field">
        call descriptor (JSON)
        <textarea data-testid="sim-cd" className="mono" rows={8} value={cdText} onChange={(e) => setCdText(e.target.value)} spellCheck={false} />
      </label>
      <label className="field" title="the clock time conditions and setDateTime read, in this browser's time zone; empty: now">
        run at
        <span className="row">
          <input type="datetime-local" step={1} data-testid="sim-now" value={at} onChange={(e) => setAt(e.target.value)} />
          {at && (
            <button data-testid="sim-now-clear" onClick={() => setAt('')}>
              now
            </button>
          )}
        </span>
      </label>
      <div className="row">
        <button className="primary" data-testid="sim-run" disabled={running || !doc || !logicId} onClick={run}>
          {running ? 'Running…' : `Run on logic ${logicId ?? '—'}`}
        </button>
        {requests.length > 0 && (
          <button
            onClick={() => {
              setRequests([]);
              onHighlight(null);
            }}
          >
            Clear
          </button>
        )}
        <label className="hint" title="passwords and credentials headers are hidden in the answer unless asked for">
          <input type="checkbox" data-testid="sim-reveal" checked={revealSecrets} onChange={(e) => setRevealSecrets(e.target.checked)} /> show secrets
        </label>
      </div>
      {error && (
        <div className="error-box" data-testid="sim-error">
          {error}
        </div>
      )}
      {final?.outcome && (
        <div className={`outcome outcome-${final.outcome.kind}`} data-testid="sim-outcome">
          final outcome: <strong>{describeOutcome(final.outcome)}</strong>
          {unconnectedEnd(final.trace, final.outcome) ? (
            <div className="unconnected-end" data-testid="sim-unconnected">
              {unconnectedEnd(final.trace, final.outcome)}
            </div>
          ) : final.outcome.kind === 'exit' ? (
            <div className="hint">the logic reached an exit node: {DEFAULT_ROUTE_ANSWER}</div>
          ) : null}
          {requests.length > 1 && (
            <span className="hint">
              {' '}
              ({requests.length} requests, {passes.length} passes)
            </span>
          )}
        </div>
      )}
      {final?.outcome && (
        <div className="row sim-save-test">
          {naming === null ? (
            <button
              data-testid="sim-save-test"
              disabled={!flowName}
              title={flowName ? 'store this run (its call descriptor, credentials, instant and outcome) as a test case of the flow' : 'save the flow first'}
              onClick={() => {
                setSaveNote(null);
                setNaming(suggestedName());
              }}
            >
              Save as test case
            </button>
          ) : (
            <form
              className="row"
              onSubmit={(e) => {
                e.preventDefault();
                void saveAsTest(naming);
              }}
            >
              <input data-testid="sim-test-name" aria-label="test case name" value={naming} autoFocus onChange={(e) => setNaming(e.target.value)} />
              <button className="primary" type="submit" data-testid="sim-test-save" disabled={!naming.trim()}>
                Save
              </button>
              <button type="button" onClick={() => setNaming(null)}>
                Cancel
              </button>
              {lastInput?.credentials && (
                <span className="hint warn" data-testid="sim-test-credentials">
                  the user and password played ({lastInput.credentials.username}) are stored in the test case as they are: test cases run on a private directory
                  (the sample subscriber and the case&apos;s fixture rows), so use a test subscriber, never a real one
                </span>
              )}
            </form>
          )}
          <label className="hint" title="the test then also expects the nodes this run went through, in order">
            <input type="checkbox" data-testid="sim-save-path" checked={withPath} onChange={(e) => setWithPath(e.target.checked)} /> with its path
          </label>
          {saveNote && (
            <span className="hint" data-testid="sim-save-note">
              {saveNote}
            </span>
          )}
        </div>
      )}
      <TraceView
        key={runs}
        requests={requests}
        logicId={logicId}
        testPrefix="sim"
        redactedWhy="a secret (password, credentials): the server leaves it out; tick “show secrets” to see it"
        onHighlight={onHighlight}
        onFocusNode={onFocusNode}
      />
    </div>
  );
}
