/** The store (./store.ts) as a hook: state, dispatch, and `get()` for the state as it is now. */
import { useCallback, useLayoutEffect, useReducer, useRef, type Dispatch } from 'react';
import { initialToken } from '../api';
import { initialState, reducer, type Action, type DesignerState } from '../store';

export interface DesignerStore {
  state: DesignerState;
  dispatch: Dispatch<Action>;
  /**
   * The last committed state. Handlers read it when they start (never a copy from an older
   * render); what they learn after an `await` they dispatch, and the reducer applies it to the
   * state as it is then.
   */
  get(): DesignerState;
}

export function useDesignerStore(): DesignerStore {
  const [state, dispatch] = useReducer(reducer, null, () => initialState(initialToken()));
  const ref = useRef(state);
  useLayoutEffect(() => {
    ref.current = state;
  }, [state]);
  const get = useCallback(() => ref.current, []);
  return { state, dispatch, get };
}
