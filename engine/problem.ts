/**
 * A located problem of a `.slid` file (engine/load.ts reports them; the designer shows them).
 * Pure: no I/O, no dependency, so the browser designer imports it as is.
 */

export type Severity = 'error' | 'warning';

export interface Problem {
  severity: Severity;
  file: string;
  logicId?: string;
  logicName?: string;
  nodeId?: string;
  nodeName?: string;
  /** JSON pointer inside the node (`values/conditions/1/operator`) or the logic. */
  pointer?: string;
  message: string;
}

export function formatProblem(p: Problem): string {
  const parts = [p.file];
  if (p.logicId !== undefined) parts.push(`logic ${p.logicId}${p.logicName !== undefined ? ` "${p.logicName}"` : ''}`);
  if (p.nodeId !== undefined) parts.push(`node ${p.nodeId}${p.nodeName !== undefined ? ` "${p.nodeName}"` : ''}`);
  const head = parts.join(' › ');
  return p.pointer ? `${head} › ${p.pointer}: ${p.message}` : `${head}: ${p.message}`;
}
