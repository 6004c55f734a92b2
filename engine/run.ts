/**
 * The interpreter loop. It only moves between compiled nodes and keeps the per-message state;
 * nodes reach stores through the ports in the context, so the loop itself does no I/O.
 */
import type { CompiledService } from './load';
import { NodeRunError, type CallLogic, type CompiledNode, type Exit, type RunState, type StepResult } from './node-type';
import type { CallDescriptor, CdValue, ErrorOutcome, Outcome, RunContext, RunLimits, TraceStep } from './types';
import { ServiceUnavailableError, type OwnedAor } from './ports';

export const DEFAULT_LIMITS: RunLimits = { maxTransitions: 1000, maxRestarts: 2, maxCallDepth: 16 };

export interface RunOptions {
  trace?: boolean;
  limits?: Partial<RunLimits>;
}

export interface RunResult {
  outcome: Outcome;
  cd: CallDescriptor;
  /** Number of restarts after authentication (0, 1, …). */
  restarts: number;
  trace?: TraceStep[];
  /**
   * Set when the outcome is a relay whose node has somewhere to continue if every attempt fails
   * (output.relay's `ifAllFailed`): runs the rest of the logic from there, with the same call
   * descriptor, call stack and transition budget (so relay → all failed → relay … stays bounded
   * by `maxTransitions`). The caller sets `lastCode` / `lastRequestURI` first.
   */
  resume?: () => Promise<RunResult>;
}

class State implements RunState {
  /** Variables written by the node being run, when tracing. */
  written: Record<string, CdValue> | null = null;
  authenticated: string | null = null;
  ownedRead: { username: string; owned: OwnedAor | null } | null = null;
  constructor(
    readonly cd: CallDescriptor,
    readonly ctx: RunContext,
    private readonly tracing: boolean,
  ) {}
  authenticate(username: string): void {
    this.authenticated = username;
  }
  noteOwnedRead(username: string, owned: OwnedAor | null): void {
    this.ownedRead = { username, owned };
  }
  set(name: string, value: CdValue): void {
    this.cd.vars[name] = value;
    if (this.tracing) (this.written ??= {})[name] = value;
  }
  get(name: string): CdValue {
    return this.cd.vars[name] ?? null;
  }
}

/**
 * Transient store failures (engine/ports.ts) answer 503 + Retry-After; everything else is a 500,
 * naming a NodeRunError's message as it is (the directory's 'invalid' errors are ones).
 */
function errorOutcome(err: unknown, where: string): ErrorOutcome {
  if (err instanceof ServiceUnavailableError) return { kind: 'error', status: 503, reason: 'Service Unavailable', retryAfter: err.retryAfter, where };
  const detail = err instanceof NodeRunError ? err.message : `node failed: ${(err as Error)?.message ?? String(err)}`;
  return { kind: 'error', status: 500, reason: `Server Internal Error (${detail})`, where };
}

const isPromise = (r: unknown): r is Promise<StepResult> => typeof (r as Promise<StepResult>)?.then === 'function';

/**
 * Runs a logic for one message. After successful authentication the authenticate node asks for a
 * restart: the top-level logic runs again from its start with the same CD, as SRE does.
 */
export async function runLogic(service: CompiledService, logicRef: string, cd: CallDescriptor, ctx: RunContext, opts: RunOptions = {}): Promise<RunResult> {
  const top = service.find(logicRef);
  if (!top) throw new Error(`no logic "${logicRef}" in this service`);
  const limits = opts.limits ? { ...DEFAULT_LIMITS, ...opts.limits } : DEFAULT_LIMITS;
  const tracing = opts.trace === true;
  const trace: TraceStep[] | undefined = tracing ? [] : undefined;
  const state = new State(cd, ctx, tracing);
  const stack: Exit[] = [];
  let restarts = 0;
  let steps = 0;

  const finish = (outcome: Outcome): RunResult => (trace ? { outcome, cd, restarts, trace } : { outcome, cd, restarts });
  const where = (n: CompiledNode) => `logic ${n.logicId} "${service.logics.get(n.logicId)?.name ?? ''}" › node ${n.id} "${n.name}"`;

  const go = async (from: CompiledNode): Promise<RunResult> => {
    let node = from;
    for (;;) {
      if (++steps > limits.maxTransitions) {
        return finish({
          kind: 'error',
          status: 500,
          reason: `Server Internal Error (more than ${limits.maxTransitions} state transitions)`,
          where: where(node),
        });
      }
      let result: StepResult;
      try {
        const r = node.run(state);
        result = isPromise(r) ? await r : r;
      } catch (err) {
        const outcome = errorOutcome(err, where(node));
        trace?.push(traceStep(steps, node, outcome.kind, state));
        return finish(outcome);
      }

      if ((result as Exit).pointer !== undefined) {
        const exit = result as Exit;
        trace?.push(traceStep(steps, node, exit.pointer, state));
        if (exit.node) {
          node = exit.node;
          continue;
        }
        // An exit left unset ends this logic as if it had reached an exit node.
        const back = unwind(stack);
        if (back) {
          node = back;
          continue;
        }
        return finish({ kind: 'exit', status: null });
      }
      if ('finish' in result) {
        const outcome = result.finish;
        trace?.push(traceStep(steps, node, outcome.kind, state));
        if (outcome.kind === 'exit') {
          const back = unwind(stack);
          if (back) {
            node = back;
            continue;
          }
        }
        const then = result.resume?.node;
        if (then && outcome.kind === 'relay') {
          const r = finish(outcome);
          r.resume = () => go(then);
          return r;
        }
        return finish(outcome);
      }
      if ('restart' in result) {
        trace?.push(traceStep(steps, node, 'restart', state));
        if (++restarts > limits.maxRestarts) {
          return finish({ kind: 'error', status: 500, reason: `Server Internal Error (more than ${limits.maxRestarts} restarts)`, where: where(node) });
        }
        stack.length = 0;
        // the logic makes its header edits again (action.sipHeaders): an add must not be made twice
        cd.headerEdits = undefined;
        node = top.start;
        continue;
      }
      // sub-logic call
      result = result as CallLogic;
      trace?.push(traceStep(steps, node, `call ${result.call}`, state));
      const callee = service.find(result.call);
      if (!callee) return finish(errorOutcome(new NodeRunError(`no logic "${result.call}"`), where(node)));
      if (stack.length >= limits.maxCallDepth) {
        return finish({
          kind: 'error',
          status: 500,
          reason: `Server Internal Error (sub-logic calls nested deeper than ${limits.maxCallDepth})`,
          where: where(node),
        });
      }
      stack.push(result.ret);
      node = callee.start;
    }
  };
  return go(top.start);
}

/**
 * Returns from a sub-logic: the caller continues at its call node's `next`; when that exit is
 * unset the caller ends too, and so on up the stack. Null when the top-level logic ends.
 */
function unwind(stack: Exit[]): CompiledNode | null {
  for (let ret = stack.pop(); ret; ret = stack.pop()) if (ret.node) return ret.node;
  return null;
}

function traceStep(step: number, node: CompiledNode, exit: string, state: State): TraceStep {
  const t: TraceStep = { step, logic: node.logicId, nodeId: node.id, nodeName: node.name, type: node.type, exit };
  if (state.written) {
    t.set = state.written;
    state.written = null;
  }
  return t;
}
