/**
 * Simulation: runs the document being edited (saved or not) on the server against a call
 * descriptor and shows each pass, each step with the CD after it, and the final outcome. The
 * "REGISTER with credentials" sample does what a UA does: sends the REGISTER, answers the 401
 * challenge with the digest response computed here, and sends it again; the server then
 * authenticates (pass 2) and restarts the logic to save the binding (pass 3).
 */
import { useMemo, useState } from 'react';
import { ApiFailure, REDACTED, type Api, type SimulateResult, type TraceStep } from './api';
import type { SlidDoc } from './model';
import { SAMPLES, answerChallenge } from './samples';

export interface Highlight {
  nodes: Set<string>;
  edges: Set<string>;
}

interface Request {
  input: Record<string, unknown>;
  result: SimulateResult;
}
interface Pass {
  label: string;
  request: number;
  steps: TraceStep[];
  outcome?: SimulateResult['outcome'];
}

interface Props {
  api: Api;
  doc: SlidDoc | null;
  logicId: string | null;
  onHighlight(h: Highlight | null): void;
  onFocusNode(id: string): void;
}

/** A CD value: JSON, except a secret the server withheld, shown as such. */
function CdValueView({ value }: { value: unknown }) {
  if (value === REDACTED) {
    return (
      <span className="redacted" data-testid="sim-redacted" title="a secret (password, credentials): the server leaves it out; tick “show secrets” to see it">
        •••• hidden
      </span>
    );
  }
  return <>{JSON.stringify(value)}</>;
}

const describeOutcome = (o: SimulateResult['outcome']) => {
  const reason = typeof o.reason === 'string' ? ` ${o.reason}` : '';
  return `${o.kind}${o.status !== null && o.status !== undefined ? ` ${o.status}` : ''}${reason}`;
};

function splitPasses(requests: Request[]): Pass[] {
  const passes: Pass[] = [];
  requests.forEach((r, ri) => {
    let cur: TraceStep[] = [];
    for (const s of r.result.trace ?? []) {
      cur.push(s);
      if (s.exit === 'restart') {
        passes.push({ label: '', request: ri, steps: cur });
        cur = [];
      }
    }
    passes.push({ label: '', request: ri, steps: cur, outcome: r.result.outcome });
  });
  passes.forEach((p, i) => {
    p.label = `Pass ${i + 1}`;
  });
  return passes;
}

/** The CD after each step of a request: its input variables, updated by every `set` up to that step. */
function cdAfterSteps(r: Request): Array<Record<string, unknown>> {
  const trace = r.result.trace ?? [];
  const setKeys = new Set(trace.flatMap((s) => Object.keys(s.set ?? {})));
  const base: Record<string, unknown> = {};
  // Variables the front end derived (fromUsername, authUsername, …) and never changed by the run.
  for (const [k, v] of Object.entries(r.result.cd)) if (k !== 'headers' && !setKeys.has(k)) base[k] = v;
  for (const [k, v] of Object.entries(r.input)) if (k !== 'headers' && k !== 'body') base[k] = v;
  const out: Array<Record<string, unknown>> = [];
  let cur = base;
  for (const s of trace) {
    if (s.set) cur = { ...cur, ...s.set };
    out.push(cur);
  }
  return out;
}

export function Simulate({ api, doc, logicId, onHighlight, onFocusNode }: Props) {
  const [sampleId, setSampleId] = useState(SAMPLES[0].id);
  const [cdText, setCdText] = useState(JSON.stringify(SAMPLES[0].cd, null, 2));
  const [username, setUsername] = useState('francesco');
  const [password, setPassword] = useState('123456');
  const [revealSecrets, setRevealSecrets] = useState(false);
  /** `datetime-local` value (this browser's zone), empty = the server's current time. */
  const [at, setAt] = useState('');
  const [running, setRunning] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [requests, setRequests] = useState<Request[]>([]);
  const [passIndex, setPassIndex] = useState<number | null>(null);
  const [stepKey, setStepKey] = useState<string | null>(null);
  const sample = SAMPLES.find((s) => s.id === sampleId)!;

  const passes = useMemo(() => splitPasses(requests), [requests]);
  const cds = useMemo(() => requests.map(cdAfterSteps), [requests]);
  const final = requests.length ? requests[requests.length - 1].result : null;

  const highlightFor = (ps: Pass[]) => {
    const nodes = new Set<string>();
    const edges = new Set<string>();
    for (const p of ps)
      for (const s of p.steps)
        if (s.logic === logicId) {
          nodes.add(s.nodeId);
          edges.add(`${s.nodeId}:${s.exit}`);
        }
    return { nodes, edges };
  };

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
    setPassIndex(null);
    setStepKey(null);
    onHighlight(null);
    try {
      const cd = JSON.parse(cdText) as Record<string, unknown>;
      const instant = at ? new Date(at) : null;
      if (instant && Number.isNaN(instant.getTime())) throw new RangeError(`run at: not a date and time: ${at}`);
      const now = instant ? instant.toISOString() : undefined;
      const done: Request[] = [];
      const first = await api.simulate({ slid: doc, logic: logicId, cd, trace: true, revealSecrets, now });
      done.push({ input: cd, result: first });
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
        done.push({ input: second, result: await api.simulate({ slid: doc, logic: logicId, cd: second, trace: true, revealSecrets, now }) });
      }
      setRequests(done);
      onHighlight(highlightFor(splitPasses(done)));
    } catch (e) {
      setError(e instanceof SyntaxError ? `call descriptor: ${e.message}` : e instanceof ApiFailure || e instanceof RangeError ? e.message : String(e));
    } finally {
      setRunning(false);
    }
  }

  const selectPass = (i: number | null) => {
    setPassIndex(i);
    setStepKey(null);
    onHighlight(highlightFor(i === null ? passes : [passes[i]]));
  };

  let stepCd: Record<string, unknown> | null = null;
  let stepSet: Record<string, unknown> | undefined;
  if (stepKey) {
    const [ri, si] = stepKey.split(':').map(Number);
    stepCd = cds[ri]?.[si] ?? null;
    stepSet = requests[ri]?.result.trace?.[si]?.set;
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
      {final && (
        <div className={`outcome outcome-${final.outcome.kind}`} data-testid="sim-outcome">
          final outcome: <strong>{describeOutcome(final.outcome)}</strong>
          {requests.length > 1 && (
            <span className="hint">
              {' '}
              ({requests.length} requests, {passes.length} passes)
            </span>
          )}
        </div>
      )}
      {passes.length > 0 && (
        <div className="passes">
          <div className="row small">
            <button className={passIndex === null ? 'on' : ''} onClick={() => selectPass(null)}>
              all passes
            </button>
            {passes.map((p, i) => (
              <button key={i} className={passIndex === i ? 'on' : ''} onClick={() => selectPass(i)} data-testid={`sim-pass-${i + 1}`}>
                {p.label}
              </button>
            ))}
          </div>
          {passes.map(
            (p, i) =>
              (passIndex === null || passIndex === i) && (
                <div className="pass" key={i} data-testid="sim-pass">
                  <div className="pass-head">
                    {p.label}{' '}
                    <span className="hint">
                      request {p.request + 1}
                      {p.request > 0 ? ' (with Authorization)' : ''}
                    </span>
                    {p.outcome ? <span className={`pill outcome-${p.outcome.kind}`}>{describeOutcome(p.outcome)}</span> : <span className="pill">restart</span>}
                  </div>
                  <ol className="steps">
                    {p.steps.map((s) => {
                      const idx = (requests[p.request].result.trace ?? []).indexOf(s);
                      const key = `${p.request}:${idx}`;
                      return (
                        <li
                          key={key}
                          className={stepKey === key ? 'on' : ''}
                          onClick={() => {
                            setStepKey(key);
                            if (s.logic === logicId) onFocusNode(s.nodeId);
                          }}
                        >
                          <span className="step-node">{s.nodeName || s.nodeId}</span> <span className="hint">→ {s.exit}</span>
                          {s.set && <span className="set"> set {Object.keys(s.set).join(', ')}</span>}
                        </li>
                      );
                    })}
                  </ol>
                </div>
              ),
          )}
          {stepCd && (
            <div className="cd-view">
              <div className="section">CD after this step</div>
              <table>
                <tbody>
                  {Object.entries(stepCd).map(([k, v]) => (
                    <tr key={k} className={stepSet && k in stepSet ? 'changed' : ''}>
                      <td>{k}</td>
                      <td className="mono">
                        <CdValueView value={v} />
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
          {!stepCd && final && <div className="hint">click a step to see the call descriptor after it</div>}
        </div>
      )}
    </div>
  );
}
