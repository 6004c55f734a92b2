/**
 * A recorded logic run opened in the editor (the right panel's "Run" tab): which call and run it
 * is, and its steps with the call descriptor after each, as the simulator shows a simulated run
 * (./TraceView.tsx). The canvas lights the run's path (the reducer's `runOpened`).
 */
import { useEffect, useMemo } from 'react';
import type { CallDetail, HistoryRun } from './api';
import { pathHighlight, splitPasses, type Highlight, type TracedRequest } from './trace';
import { TraceView } from './TraceView';

export interface OpenRun {
  /** The call (its messages give a replay the request's headers). */
  call: CallDetail;
  index: number;
  run: HistoryRun;
}

interface Props {
  open: OpenRun;
  /** The flow and logic on the canvas: the path lights when it is the run's flow and a logic the run went through (its own, or one it called). */
  flowName: string | null;
  logicId: string | null;
  onHighlight(h: Highlight | null): void;
  onFocusNode(id: string): void;
  onReplay(): void;
  onBack(): void;
}

export function CallRun({ open, flowName, logicId, onHighlight, onFocusNode, onReplay, onBack }: Props) {
  const { run } = open;
  const requests = useMemo((): TracedRequest[] => [{ input: run.input, trace: run.path, outcome: { kind: run.outcome, status: run.status } }], [run]);
  // the logics the path went through, the run's own first (a flow.callLogic step enters another)
  const logics = useMemo(() => [...new Set([run.logicId, ...run.path.map((s) => s.logic)])], [run]);
  const elsewhere = (run.flow !== null && run.flow !== flowName) || logicId === null || !logics.includes(logicId);
  // another logic of the path chosen on the canvas: its part of the path lights
  useEffect(() => {
    if (!elsewhere) onHighlight(pathHighlight(splitPasses(requests), logicId));
  }, [elsewhere, logicId, requests, onHighlight]);
  return (
    <div className="simulate call-run" data-testid="call-run">
      <div className="row">
        <button onClick={onBack} data-testid="run-back">
          ← Call
        </button>
        <button className="primary" onClick={onReplay} data-testid="run-tab-replay">
          Replay in simulator
        </button>
      </div>
      <div className="hint">
        call <span className="mono">{open.call.callId}</span> · run {open.index + 1} · {new Date(run.at).toLocaleString()}
      </div>
      <div className={`outcome outcome-${run.outcome}`} data-testid="run-outcome">
        {run.method} → <strong>{run.logic}</strong> ({run.flow ?? 'flow unknown'}, logic {run.logicId}): {run.outcome}
        {run.status !== null ? ` ${run.status}` : ''}
        {run.where ? ` at ${run.where}` : ''} <span className="hint">{run.durationMs.toFixed(2)} ms</span>
      </div>
      {logics.length > 1 && (
        <div className="hint" data-testid="run-logics">
          The path goes through logics {logics.join(', ')}: choose one above to see its part lit.
        </div>
      )}
      {elsewhere && (
        <div className="error-box" data-testid="run-elsewhere">
          The canvas shows another flow or a logic this run did not go through: the path lights on {run.flow ?? 'its flow'}, logics {logics.join(', ')}.
        </div>
      )}
      <TraceView
        key={`${open.call.callId}:${open.index}`}
        requests={requests}
        logicId={elsewhere ? run.logicId : logicId}
        testPrefix="run"
        redactedWhy="a secret (password, credentials): redacted when recorded, the history never keeps it"
        onHighlight={onHighlight}
        onFocusNode={(id) => {
          if (!elsewhere) onFocusNode(id);
        }}
      />
    </div>
  );
}
