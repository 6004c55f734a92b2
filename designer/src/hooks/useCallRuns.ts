/**
 * A recorded call's logic run taken to the editor: "Open path" shows it on the canvas (its flow
 * loaded through the flows API when another one is open — the active release, which is what the
 * server runs, else the development copy), "Replay in simulator" puts its call descriptor into
 * the simulator on that logic. Like the flow actions, each reads the state when it starts and
 * dispatches what it learns.
 */
import { useMemo, type Dispatch } from 'react';
import type { CallDetail, HistoryRun } from '../api';
import { replayDescriptor } from '../ladder';
import { docOf, type Action, type DesignerState } from '../store';
import type { FlowActions } from './useFlowActions';

export interface CallRunActions {
  openRun(call: CallDetail, index: number): Promise<void>;
  replay(call: CallDetail, index: number): Promise<void>;
}

interface Deps {
  get(): DesignerState;
  dispatch: Dispatch<Action>;
  openFlow: FlowActions['openFlow'];
}

export function useCallRuns({ get, dispatch, openFlow }: Deps): CallRunActions {
  return useMemo((): CallRunActions => {
    const fail = (text: string) => {
      dispatch({ type: 'status', status: { kind: 'error', text } });
      return false;
    };

    /** Puts the run's flow and logic on the canvas; false (and says why) when it cannot. */
    async function showLogic(run: HistoryRun): Promise<boolean> {
      if (run.flow !== null && get().open?.name !== run.flow) {
        const summary = get().flows.find((f) => f.name === run.flow);
        if (!summary) return fail(`flow "${run.flow}" of the run is not in the flows store (deleted or renamed since)`);
        await openFlow(run.flow, summary.activeVersion ?? 'development');
        if (get().open?.name !== run.flow) return false; // not opened: openFlow said why, or unsaved changes were kept
      }
      const doc = docOf(get());
      if (!doc) return fail('the run names no flow: open the flow it ran in first');
      if (!doc[run.logicId]) return fail(`logic ${run.logicId} (“${run.logic}”) is not in flow ${get().open?.name}`);
      if (get().logicId !== run.logicId) dispatch({ type: 'logicChosen', logicId: run.logicId });
      return true;
    }

    return {
      async openRun(call, index) {
        const run = call.runs[index];
        if (run && (await showLogic(run))) dispatch({ type: 'runOpened', run: { call, index, run } });
      },
      async replay(call, index) {
        const run = call.runs[index];
        if (!run || !(await showLogic(run))) return;
        const { cd, dropped } = replayDescriptor(call.messages, run);
        const note = dropped.length ? ` (${dropped.join(', ')} left out: recorded redacted)` : '';
        dispatch({ type: 'replay', cd, label: `replay of call ${call.callId}, run ${index + 1} (${run.method})${note}` });
      },
    };
  }, [get, dispatch, openFlow]);
}
