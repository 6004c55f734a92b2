/**
 * Pure composition of flows (no I/O): the order of the active flows, one composite service over
 * them, and what a flow summary shows of a document. The SIP worker threads compose with it too.
 */
import type { CompiledLogic, CompiledService } from '../../engine/load';
import type { ActiveFlow, LogicInfo, ResolvedLogic } from './types';

/** The active flows in resolution order: the primary flow first, then by flow name. */
export function orderFlows<F extends { flow: string }>(flows: readonly F[], primary?: string): F[] {
  return [...flows].sort((a, b) => {
    if (a.flow === primary) return -1;
    if (b.flow === primary) return 1;
    return a.flow < b.flow ? -1 : a.flow > b.flow ? 1 : 0;
  });
}

/** The logics of a parsed `.slid` document (id and name), as flow summaries list them. */
export function logicsOfDocument(doc: unknown): LogicInfo[] {
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) return [];
  return Object.entries(doc as Record<string, { name?: unknown } | null>).map(([id, l]) => ({ id, name: String(l?.name ?? '') }));
}

/**
 * One service over several flows. Unqualified refs search the flows in order (primary first);
 * `flow/ref` names a flow explicitly. Sub-logic calls of a flow resolve through this service too,
 * and every shipped flow's calls resolve inside the flow that makes them when it is the primary;
 * use `resolve()` + the flow's own service to keep calls strictly flow-local.
 */
export function composeFlows(ordered: Array<Pick<ActiveFlow, 'flow' | 'version' | 'service'>>): { service: CompiledService; resolve(ref: string): ResolvedLogic | undefined } {
  const byFlow = new Map(ordered.map((f) => [f.flow, f]));
  const resolve = (ref: string): ResolvedLogic | undefined => {
    const slash = ref.indexOf('/');
    if (slash > 0) {
      const f = byFlow.get(ref.slice(0, slash));
      if (f) {
        const logic = f.service.find(ref.slice(slash + 1));
        return logic ? { flow: f.flow, version: f.version, service: f.service, logic } : undefined;
      }
    }
    for (const f of ordered) {
      const logic = f.service.find(ref);
      if (logic) return { flow: f.flow, version: f.version, service: f.service, logic };
    }
    return undefined;
  };
  const logics = new Map<string, CompiledLogic>();
  for (const f of ordered) {
    for (const [id, l] of f.service.logics) {
      if (!logics.has(id)) logics.set(id, l);
      logics.set(`${f.flow}/${id}`, l);
    }
  }
  const cache = new Map<string, CompiledLogic | undefined>();
  const service: CompiledService = {
    logics,
    // every flow's secret variables (engine/secrets.ts): a composed run may cross flows
    secrets: new Set(ordered.flatMap((f) => [...(f.service.secrets ?? [])])),
    find(ref) {
      if (cache.has(ref)) return cache.get(ref);
      const found = resolve(ref)?.logic;
      cache.set(ref, found);
      return found;
    },
  };
  return { service, resolve };
}
