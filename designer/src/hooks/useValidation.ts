/** Validation of the document, debounced, on the server (the engine's own rules). */
import { useEffect, type Dispatch } from 'react';
import type { Api } from '../api';
import type { SlidDoc } from '../model';
import type { Action, Open } from '../store';
import { useDebounced } from './useDebounced';

export function useValidation(api: Api, open: Open | null, doc: SlidDoc | null, dispatch: Dispatch<Action>): void {
  const debouncedDoc = useDebounced(doc, 350);
  useEffect(() => {
    if (!debouncedDoc || !open) return;
    let cancelled = false;
    dispatch({ type: 'validating' });
    const text = debouncedDoc === open.loaded && open.text !== null ? open.text : JSON.stringify(debouncedDoc);
    api
      .validate(text, `${open.name}.slid`)
      .then((r) => {
        if (!cancelled) dispatch({ type: 'validated', problems: r.problems });
      })
      .catch((e) => {
        if (!cancelled) dispatch({ type: 'status', status: { kind: 'error', text: `validate: ${e.message}` } });
      })
      .finally(() => {
        if (!cancelled) dispatch({ type: 'validationDone' });
      });
    return () => {
      cancelled = true;
    };
  }, [debouncedDoc, open, api, dispatch]);
}
