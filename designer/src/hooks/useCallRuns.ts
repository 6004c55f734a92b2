/**
 * A recorded call's logic run taken to the editor: "Open path" shows it on the canvas (its flow
 * loaded through the flows API when another one is open — the active release, which is what the
 * server runs, else the development copy), "Replay in simulator" puts its call descriptor into
 * the simulator on that logic. Like the flow actions, each reads the state when it starts and
 * dispatches what it learns; the reducer checks the run's flow and logic are open then.
 */
import { useMemo, type Dispatch } from 'react';
import type { CallDetail, HistoryRun } from '../api';
import { replayDescriptor } from '../ladder';
import type { Action, DesignerState } from '../store';
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
    /** Loads the run's flow unless it is the one open. The reducer then checks it is there (an answer lands after this returns). */
    async function loadFlow(run: HistoryRun): Promise<void> {
      if (run.flow === null || get().open?.name === run.flow) return;
      const summary = get().flows.find((f) => f.name === run.flow);
      // unknown to the list (deleted or renamed since): the reducer says so
      if (summary) await openFlow(run.flow, summary.activeVersion ?? 'development');
    }

    return {
      async openRun(call, index) {
        const run = call.runs[index];
        if (!run) return;
        await loadFlow(run);
        dispatch({ type: 'runOpened', run: { call, index, run } });
      },
      async replay(call, index) {
        const run = call.runs[index];
        if (!run) return;
        await loadFlow(run);
        const { cd, dropped } = replayDescriptor(call.messages, run);
        const note = dropped.length ? ` (${dropped.join(', ')} left out: recorded redacted)` : '';
        dispatch({ type: 'replay', run, cd, label: `replay of call ${call.callId}, run ${index + 1} (${run.method})${note}` });
      },
    };
  }, [get, dispatch, openFlow]);
}
