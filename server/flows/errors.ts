/** Errors of the flows store, each with the HTTP status the API answers (server/http/errors.ts). */
import { formatProblem, type Problem } from '../../engine/problem';

/** A `.slid` with errors: every problem, located. HTTP 400. */
export class FlowProblemsError extends Error {
  readonly status = 400;
  constructor(readonly problems: Problem[], what: string) {
    const errors = problems.filter((p) => p.severity === 'error');
    super(`${what}: ${errors.length} error(s): ${errors.map(formatProblem).join('; ')}`);
  }
}
export class FlowNotFoundError extends Error { readonly status = 404; }
export class FlowConflictError extends Error { readonly status = 409; }
export class FlowInputError extends Error { readonly status = 400; }
/** A save against a revision that is no longer the stored one (If-Match): HTTP 409 with the current revision. */
export class FlowStaleError extends FlowConflictError {
  constructor(readonly revision: string, message: string) { super(message); }
}
