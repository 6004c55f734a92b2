/** Every node type sipflow runs; the registry built from this list compiles their schemas once. */
import type { NodeType } from '../engine/node-type';
import { NodeRegistry } from '../engine/registry';
import { authenticateNode } from './authenticate';
import { callLogicNode } from './call-logic';
import { conditionNode } from './condition';
import { digitsNode } from './digits';
import { enumNode } from './enum';
import { exitNode } from './exit';
import { extractHeaderNode } from './extract-header';
import { ldapNode } from './ldap';
import { httpRequestNode } from './http-request';
import { logNode } from './log';
import { syslogNode } from './syslog';
import { normalizeNumberNode } from './normalize-number';
import { lookupLocationNode } from './lookup-location';
import { queryDatabaseNode } from './query-database';
import { redirectNode } from './redirect';
import { regexExtractNode } from './regex-extract';
import { relayNode } from './relay';
import { replyNode } from './reply';
import { saveLocationNode } from './save-location';
import { sequentialConditionsNode } from './sequential-conditions';
import { setVariablesNode } from './set-variables';
import { setDateTimeNode } from './set-date-time';
import { startNode } from './start';
import { sipHeadersNode } from './sip-headers';
// call admission control (issue 15, item 3)
import { callLimitNode } from './call-limit';
// lists of records, JSON, JWT and caching
import { appendRowNode } from './append-row';
import { aggregateColumnNode } from './aggregate-column';
import { cacheGetNode } from './cache-get';
import { cacheSetNode } from './cache-set';
import { createListNode } from './create-list';
import { forEachRowNode } from './for-each-row';
import { accountingNode } from './accounting';
import { jsonToListNode } from './json-to-list';
import { jwtNode } from './jwt';
import { listToJsonNode } from './list-to-json';
import { rotateListNode } from './rotate-list';
import { timeConditionNode } from './time-condition';
import { stringManipulationNode } from './string-manipulation';
import { uriManipulationNode } from './uri-manipulation';

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
  // external output
  syslogNode,
  // SIP header manipulation
  sipHeadersNode,
  // lists of records, JSON, JWT and caching
  createListNode,
  appendRowNode,
  rotateListNode,
  aggregateColumnNode,
  forEachRowNode,
  jsonToListNode,
  listToJsonNode,
  jwtNode,
  cacheSetNode,
  cacheGetNode,
  // date and time
  timeConditionNode,
  setDateTimeNode,
  // manipulation, extraction and URI
  regexExtractNode,
  stringManipulationNode,
  normalizeNumberNode,
  uriManipulationNode,
  // external queries: ENUM, LDAP
  enumNode,
  ldapNode,
  // external queries: HTTP
  httpRequestNode,
  // accounting (CDRs): issue 15 item 4
  accountingNode,
  // call admission control (issue 15, item 3)
  callLimitNode,
];

let shared: NodeRegistry | undefined;
/** The registry of the built-in node types (built once per process). */
export function builtinRegistry(): NodeRegistry {
  return (shared ??= new NodeRegistry(NODE_TYPES));
}
