/** The flow-name rule, shared by the API schemas, the store and the designer (pure: no I/O). */

export const FLOW_NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$';
const FLOW_NAME = new RegExp(FLOW_NAME_PATTERN);

export const isFlowName = (name: string): boolean => FLOW_NAME.test(name);
