/**
 * A recorded logic run opened in the editor (the right panel's "Run" tab): which call and run it
 * is, and its steps with the call descriptor after each, as the simulator shows a simulated run
 * (./TraceView.tsx). The canvas lights the run's path (the reducer's `runOpened`).
 */
import { useMemo } from 'react';
import type { CallDetail, HistoryRun } from './api';
import type { Highlight, TracedRequest } from './trace';
import { TraceView } from './TraceView';

export interface OpenRun {
  /** The call (its messages give a replay the request's headers). */
  call: CallDetail;
  index: number;
  run: HistoryRun;
}

interface Props {
  open: OpenRun;
  /** The flow and logic on the canvas: the path lights only when they are the run's. */
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
  const elsewhere = (run.flow !== null && run.flow !== flowName) || run.logicId !== logicId;
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
      {elsewhere && (
        <div className="error-box" data-testid="run-elsewhere">
          The canvas shows another flow or logic: the path is lit on {run.flow ?? 'its flow'}, logic {run.logicId} only.
        </div>
      )}
      <TraceView
        key={`${open.call.callId}:${open.index}`}
        requests={requests}
        logicId={run.logicId}
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
