/**
 * A logic run's trace as the designer shows it, for both places that show one: the simulator
 * (./Simulate.tsx, runs it asks the server for) and a recorded call's run (./CallRun.tsx, from the
 * call history). Pure: passes (a trace split at each `restart`), the call descriptor after each
 * step (the variables before the run, updated by every step's `set`), the canvas highlight of a
 * path (the nodes it went through and the exits it took), and an outcome's one-line text.
 */
import type { TraceStep } from '../../engine/types';

/** What the canvas lights up: node keys and `node:exit` edge ids (./FlowCanvas.tsx). */
export interface Highlight {
  nodes: Set<string>;
  edges: Set<string>;
}

export interface RunOutcome {
  kind: string;
  status: number | null;
  [k: string]: unknown;
}

/** One request's run: the variables it started with, its trace, and (when known) its outcome and final CD. */
export interface TracedRequest {
  input: Record<string, unknown>;
  trace: TraceStep[];
  outcome?: RunOutcome;
  /** The CD after the run (the simulator's answer); supplies variables the front end derived and the run never changed. */
  finalCd?: Record<string, unknown>;
}

export interface Pass {
  label: string;
  /** Index of the request in the list the passes were split from. */
  request: number;
  steps: TraceStep[];
  outcome?: RunOutcome;
}

export const describeOutcome = (o: RunOutcome): string => {
  const reason = typeof o.reason === 'string' ? ` ${o.reason}` : '';
  return `${o.kind}${o.status !== null && o.status !== undefined ? ` ${o.status}` : ''}${reason}`;
};

/** The front end's answer to a top-level logic that ends with no outcome of its own (sip/response-for.ts). */
export const DEFAULT_ROUTE_ANSWER = 'the front end answers its default route: 404 Not Found, unless sip.defaultRoute says otherwise';

/**
 * When a run ended at an exit left unconnected (its last step took an exit pointer and the outcome
 * is `exit`), the sentence saying so and what the front end then answers; undefined otherwise.
 */
export function unconnectedEnd(trace: readonly TraceStep[], outcome: RunOutcome | undefined): string | undefined {
  const last = trace[trace.length - 1];
  if (!last || outcome?.kind !== 'exit') return undefined;
  if (last.exit === 'exit' || last.exit === 'restart' || last.exit.startsWith('call ')) return undefined;
  return `ended at the unconnected exit ${last.exit} of node ${last.nodeId} "${last.nodeName}" → ${DEFAULT_ROUTE_ANSWER}`;
}

/** Each request's trace cut after every `restart` step: one pass per entry of the logic. */
export function splitPasses(requests: TracedRequest[]): Pass[] {
  const passes: Pass[] = [];
  requests.forEach((r, ri) => {
    let cur: TraceStep[] = [];
    for (const s of r.trace) {
      cur.push(s);
      if (s.exit === 'restart') {
        passes.push({ label: '', request: ri, steps: cur });
        cur = [];
      }
    }
    passes.push({ label: '', request: ri, steps: cur, outcome: r.outcome });
  });
  passes.forEach((p, i) => {
    p.label = `Pass ${i + 1}`;
  });
  return passes;
}

/** The CD after each step of a request: its input variables, updated by every `set` up to that step. */
export function cdAfterSteps(r: TracedRequest): Array<Record<string, unknown>> {
  const setKeys = new Set(r.trace.flatMap((s) => Object.keys(s.set ?? {})));
  const base: Record<string, unknown> = {};
  // Variables the front end derived (fromUsername, authUsername, …) and never changed by the run.
  for (const [k, v] of Object.entries(r.finalCd ?? {})) if (k !== 'headers' && !setKeys.has(k)) base[k] = v;
  for (const [k, v] of Object.entries(r.input)) if (k !== 'headers' && k !== 'body') base[k] = v;
  const out: Array<Record<string, unknown>> = [];
  let cur = base;
  for (const s of r.trace) {
    if (s.set) cur = { ...cur, ...s.set };
    out.push(cur);
  }
  return out;
}

/** The nodes of `logicId` the passes went through and the exits they took. */
export function pathHighlight(passes: Pass[], logicId: string | null): Highlight {
  const nodes = new Set<string>();
  const edges = new Set<string>();
  for (const p of passes)
    for (const s of p.steps)
      if (s.logic === logicId) {
        nodes.add(s.nodeId);
        edges.add(`${s.nodeId}:${s.exit}`);
      }
  return { nodes, edges };
}
