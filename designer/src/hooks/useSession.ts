/** The API client for the current token, and the catalogue it serves: node types, directory tables, flows. */
import { useCallback, useEffect, useMemo, type Dispatch } from 'react';
import { Api, ApiFailure } from '../api';
import type { Action, Status } from '../store';

export function useApi(token: string | null, dispatch: Dispatch<Action>): Api {
  const api = useMemo(() => new Api(token), [token]);
  useEffect(() => {
    api.onUnauthorized = () => dispatch({ type: 'askToken', ask: true });
  }, [api, dispatch]);
  return api;
}

/** Loads the catalogue once there is a token; returns the reload of the flow list. */
export function useCatalog(api: Api, token: string | null, dispatch: Dispatch<Action>): () => Promise<void> {
  const refreshFlows = useCallback(async () => {
    try {
      dispatch({ type: 'flowsLoaded', flows: await api.flows() });
    } catch (e) {
      if (!(e instanceof ApiFailure && e.status === 401)) dispatch({ type: 'status', status: { kind: 'error', text: `flows: ${(e as Error).message}` } });
    }
  }, [api, dispatch]);

  useEffect(() => {
    if (!token) return;
    api
      .nodeTypes()
      .then((types) => dispatch({ type: 'typesLoaded', types }))
      .catch((e) => dispatch({ type: 'status', status: { kind: 'error', text: `node types: ${e.message}` } }));
    api
      .directorySchema()
      .then((tables) => dispatch({ type: 'tablesLoaded', tables }))
      .catch(() => dispatch({ type: 'tablesLoaded', tables: [] }));
    refreshFlows();
  }, [api, token, refreshFlows, dispatch]);

  return refreshFlows;
}

/** Info and success messages fade after a while; errors stay until clicked. */
export function useStatusFade(status: Status | null, dispatch: Dispatch<Action>): void {
  useEffect(() => {
    if (!status || status.kind === 'error') return;
    const t = setTimeout(() => dispatch({ type: 'status', status: null }), 6000);
    return () => clearTimeout(t);
  }, [status, dispatch]);
}
