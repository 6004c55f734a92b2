/**
 * Administration of the location service for the HTTP API (list, search, delete, count bindings),
 * delegated to the runtime's store, whichever it is (memory, SQL, MongoDB).
 */
import type { Binding, BindingQuery, LocationStore } from '../../services/location/types';

export type { BindingQuery };

export interface LocationAdmin {
  list(q: BindingQuery): Promise<{ rows: Binding[]; total: number }>;
  /** Deletes one binding; false when no binding has that ruid. */
  remove(ruid: string): Promise<boolean>;
  /** Live bindings. */
  count(now: Date): Promise<number>;
}

export function createLocationAdmin(store: LocationStore): LocationAdmin {
  return {
    list: (q) => store.list(q),
    remove: async (ruid) => (await store.remove([ruid])) > 0,
    count: (now) => store.count(now),
  };
}
