/** Test cases of call flows: the `.tests.json` format (./format.ts) and the runner (./runner.ts). */
export * from './format';
export * from './runner';
export { junitXml, xmlSafe, type JunitSuite } from './junit';
export { runFlowTests, closeFlowTests, type FlowTestRun } from './flow';
