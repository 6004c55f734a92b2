/** Every failure of the API as `{ statusCode, error, message, … }`, with ajv errors made readable. */
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { STATUS_CODES } from 'http';
import { CallDescriptorError } from '../../engine/cd';
import { formatProblem, type Problem } from '../../engine/load';
import { DirectoryError } from '../../services/directory/types';
import { LocationUnavailableError } from '../../services/location/types';
import { FlowProblemsError } from '../flows';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

export const problemJson = (p: Problem) => ({ ...p, text: formatProblem(p) });

interface AjvError {
  instancePath: string;
  keyword: string;
  params: Record<string, unknown>;
  message?: string;
}

/** `body/cd/headers/From: must be string`, `querystring/limit: must be <= 1000`, `body/logic: is required`. */
export function describeValidation(context: string, errors: AjvError[]): string[] {
  const out: string[] = [];
  for (const e of errors) {
    const base = `${context}${e.instancePath}`;
    let line: string;
    switch (e.keyword) {
      case 'required':
        line = `${base}/${String(e.params.missingProperty)}: is required`;
        break;
      case 'additionalProperties':
        line = `${base}/${String(e.params.additionalProperty)}: is not a known field`;
        break;
      case 'enum':
        line = `${base}: must be one of ${(e.params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
        break;
      case 'minProperties':
        line = `${base}: must have at least ${String(e.params.limit)} field(s)`;
        break;
      case 'type':
        line = `${base}: must be ${String(e.params.type).replace(/,/g, ' or ')}`;
        break;
      default:
        line = `${base}: ${e.message ?? e.keyword}`;
    }
    if (!out.includes(line)) out.push(line);
  }
  // anyOf branches repeat each other's failures under the same path: keep the summary once.
  return out;
}

function send(reply: FastifyReply, status: number, message: string, extra: Record<string, unknown> = {}) {
  return reply.code(status).send({ statusCode: status, error: STATUS_CODES[status] ?? 'Error', message, ...extra });
}

export function errorHandler(err: FastifyError & { status?: number }, req: FastifyRequest, reply: FastifyReply) {
  if (err.validation) {
    const lines = describeValidation(err.validationContext ?? 'body', err.validation as unknown as AjvError[]);
    return send(reply, 400, lines.join('; '));
  }
  if (err instanceof FlowProblemsError) return send(reply, 400, err.message, { problems: err.problems.map(problemJson) });
  if (err instanceof ApiError) return send(reply, err.status, err.message, err.extra);
  if (err instanceof CallDescriptorError) return send(reply, 400, err.message.replace(/^invalid call descriptor: /, 'invalid call descriptor: body/cd/'));
  if (err instanceof DirectoryError) return send(reply, err.kind === 'invalid' ? 400 : 503, err.message);
  if (err instanceof LocationUnavailableError) {
    reply.header('Retry-After', String(err.retryAfter));
    return send(reply, 503, err.message);
  }
  const status = typeof err.status === 'number' ? err.status : typeof err.statusCode === 'number' ? err.statusCode : 500;
  if (status >= 500) {
    req.log.error({ err }, 'request failed');
    return send(reply, status, status === 500 ? 'internal error (see the server log)' : err.message);
  }
  return send(reply, status, err.message);
}
