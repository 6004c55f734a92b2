/**
 * The steps of one or more logic runs and the call descriptor after each step, as the simulator
 * shows them and as a recorded call's run shows them (one component, one computation: ./trace.ts).
 * Passes can be picked one at a time (the canvas then lights that pass's path only); a step clicked
 * shows the CD after it, the variables it wrote marked.
 */
import { useMemo, useState } from 'react';
import { REDACTED } from './api';
import { cdAfterSteps, describeOutcome, pathHighlight, splitPasses, unconnectedEnd, type Highlight, type TracedRequest } from './trace';

/** A CD value: JSON, except a secret the server withheld, shown as such. */
export function CdValueView({ value, testId, why }: { value: unknown; testId: string; why: string }) {
  if (value === REDACTED) {
    return (
      <span className="redacted" data-testid={testId} title={why}>
        •••• hidden
      </span>
    );
  }
  return <>{JSON.stringify(value)}</>;
}

interface Props {
  requests: TracedRequest[];
  logicId: string | null;
  /** data-testid prefix: `sim` in the simulator, `run` for a recorded run. */
  testPrefix: string;
  /** The tooltip of a redacted value: why it is hidden, and whether it can be shown. */
  redactedWhy: string;
  onHighlight(h: Highlight | null): void;
  onFocusNode(id: string): void;
}

export function TraceView({ requests, logicId, testPrefix, redactedWhy, onHighlight, onFocusNode }: Props) {
  const [passIndex, setPassIndex] = useState<number | null>(null);
  const [stepKey, setStepKey] = useState<string | null>(null);
  const passes = useMemo(() => splitPasses(requests), [requests]);
  const cds = useMemo(() => requests.map(cdAfterSteps), [requests]);

  const selectPass = (i: number | null) => {
    setPassIndex(i);
    setStepKey(null);
    onHighlight(pathHighlight(i === null ? passes : [passes[i]], logicId));
  };

  let stepCd: Record<string, unknown> | null = null;
  let stepSet: Record<string, unknown> | undefined;
  if (stepKey) {
    const [ri, si] = stepKey.split(':').map(Number);
    stepCd = cds[ri]?.[si] ?? null;
    stepSet = requests[ri]?.trace[si]?.set;
  }

  if (passes.length === 0) return null;
  return (
    <div className="passes">
      <div className="row small">
        <button className={passIndex === null ? 'on' : ''} onClick={() => selectPass(null)}>
          all passes
        </button>
        {passes.map((p, i) => (
          <button key={i} className={passIndex === i ? 'on' : ''} onClick={() => selectPass(i)} data-testid={`${testPrefix}-pass-${i + 1}`}>
            {p.label}
          </button>
        ))}
      </div>
      {passes.map(
        (p, i) =>
          (passIndex === null || passIndex === i) && (
            <div className="pass" key={i} data-testid={`${testPrefix}-pass`}>
              <div className="pass-head">
                {p.label}{' '}
                {requests.length > 1 && (
                  <span className="hint">
                    request {p.request + 1}
                    {p.request > 0 ? ' (with Authorization)' : ''}
                  </span>
                )}
                {p.outcome ? <span className={`pill outcome-${p.outcome.kind}`}>{describeOutcome(p.outcome)}</span> : <span className="pill">restart</span>}
              </div>
              {unconnectedEnd(p.steps, p.outcome) && (
                <div className="unconnected-end" data-testid={`${testPrefix}-pass-unconnected`}>
                  {unconnectedEnd(p.steps, p.outcome)}
                </div>
              )}
              <ol className="steps">
                {p.steps.map((s) => {
                  const idx = requests[p.request].trace.indexOf(s);
                  const key = `${p.request}:${idx}`;
                  const choose = () => {
                    setStepKey(key);
                    if (s.logic === logicId) onFocusNode(s.nodeId);
                  };
                  return (
                    <li
                      key={key}
                      className={stepKey === key ? 'on' : ''}
                      data-testid={`${testPrefix}-step`}
                      tabIndex={0}
                      onClick={choose}
                      onKeyDown={(e) => {
                        if (e.key === 'Enter' || e.key === ' ') {
                          e.preventDefault();
                          choose();
                        }
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
        <div className="cd-view" data-testid={`${testPrefix}-cd`}>
          <div className="section">CD after this step</div>
          <table>
            <tbody>
              {Object.entries(stepCd).map(([k, v]) => (
                <tr key={k} className={stepSet && k in stepSet ? 'changed' : ''}>
                  <td>{k}</td>
                  <td className="mono">
                    <CdValueView value={v} testId={`${testPrefix}-redacted`} why={redactedWhy} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {!stepCd && <div className="hint">click a step to see the call descriptor after it</div>}
    </div>
  );
}
