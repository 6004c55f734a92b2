/**
 * Flows with versions: the repository (./repository.ts: rows and migrations), pure composition
 * (./compose.ts), compilation on demand (./compile-cache.ts), seeding and polling
 * (./bootstrap.ts), and the store that ties them (./store.ts).
 */
export { createFlowsStore, type FlowsStoreOptions } from './store';
export { createFlowsRepository, migrateFlows, type FlowsRepository } from './repository';
export { composeFlows, orderFlows, logicsOfDocument } from './compose';
export { flowNameOf, seedShippedFlows, shippedFlowsDir, startPolling } from './bootstrap';
export { FlowConflictError, FlowInputError, FlowNotFoundError, FlowProblemsError, FlowStaleError } from './errors';
export { revisionOf } from './revision';
export { FLOW_NAME_PATTERN, isFlowName } from './name';
export type {
  ActivationEvent, ActiveFlow, FlowDetail, FlowsStore, FlowSummary, LogicInfo, ReleaseInfo, ResolvedLogic, SaveOptions,
} from './types';
