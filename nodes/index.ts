/** Every node type sipflow runs; the registry built from this list compiles their schemas once. */
import type { NodeType } from '../engine/node-type';
import { NodeRegistry } from '../engine/registry';
import { authenticateNode } from './authenticate';
import { callLogicNode } from './call-logic';
import { conditionNode } from './condition';
import { digitsNode } from './digits';
import { exitNode } from './exit';
import { extractHeaderNode } from './extract-header';
import { httpRequestNode } from './http-request';
import { logNode } from './log';
import { lookupLocationNode } from './lookup-location';
import { queryDatabaseNode } from './query-database';
import { redirectNode } from './redirect';
import { relayNode } from './relay';
import { replyNode } from './reply';
import { saveLocationNode } from './save-location';
import { sequentialConditionsNode } from './sequential-conditions';
import { setVariablesNode } from './set-variables';
import { startNode } from './start';

export const NODE_TYPES: NodeType[] = [
  startNode,
  sequentialConditionsNode,
  conditionNode,
  queryDatabaseNode,
  authenticateNode,
  saveLocationNode,
  lookupLocationNode,
  extractHeaderNode,
  setVariablesNode,
  digitsNode,
  replyNode,
  relayNode,
  redirectNode,
  callLogicNode,
  exitNode,
  logNode,
  // issue 14, external queries: HTTP
  httpRequestNode,
];

let shared: NodeRegistry | undefined;
/** The registry of the built-in node types (built once per process). */
export function builtinRegistry(): NodeRegistry {
  return (shared ??= new NodeRegistry(NODE_TYPES));
}
