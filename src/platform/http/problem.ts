import { STATUS_CODES } from 'node:http';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { isBlocksError } from '../errors.ts';
import { FRAMEWORK_CODES, httpErrors } from './errors.ts';

/** RFC 9457 problem document as Blocks writes it. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: string;
  instance?: string;
  correlation_id?: string;
  errors?: ProblemFieldError[];
  [extension: string]: unknown;
}

export interface ProblemFieldError {
  /** `body`, `querystring`, `params` or `headers`. */
  readonly location: string;
  /** JSON pointer to the offending member, `""` for the whole document. */
  readonly pointer: string;
  readonly message: string;
}

export const PROBLEM_CONTENT_TYPE = 'application/problem+json; charset=utf-8';

export const problemType = (code: string): string => `urn:blocks:problem:${code.toLowerCase().replaceAll('_', '-')}`;

interface AjvIssue {
  readonly keyword: string;
  readonly instancePath: string;
  readonly params: Record<string, unknown>;
  readonly message?: string;
}

function fieldErrors(location: string, issues: readonly AjvIssue[]): ProblemFieldError[] {
  return issues.map((issue) => {
    switch (issue.keyword) {
      case 'required':
        return { location, pointer: `${issue.instancePath}/${String(issue.params.missingProperty)}`, message: 'is required' };
      case 'additionalProperties':
        return { location, pointer: `${issue.instancePath}/${String(issue.params.additionalProperty)}`, message: 'is not allowed' };
      case 'enum':
        return {
          location,
          pointer: issue.instancePath,
          message: `must be one of: ${(issue.params.allowedValues as unknown[]).join(', ')}`,
        };
      default:
        return { location, pointer: issue.instancePath, message: issue.message ?? 'is invalid' };
    }
  });
}

/** A problem document for `request`, with the title taken from the status. */
export function buildProblem(status: number, code: string, detail: string, request: FastifyRequest): Problem {
  return {
    type: problemType(code),
    title: STATUS_CODES[status] ?? 'Error',
    status,
    detail,
    code,
    instance: request.url,
    correlation_id: request.id,
  };
}

/** Turns anything thrown while serving a request into a problem document; 5xx details never leak. */
export function problemFor(error: unknown, request: FastifyRequest): Problem {
  if (isBlocksError(error)) {
    return { ...buildProblem(error.status, error.code, error.detail, request), ...error.extensions };
  }
  const fastifyError = error as Partial<FastifyError> & { validation?: AjvIssue[]; validationContext?: string };
  if (fastifyError.validation) {
    const location = fastifyError.validationContext ?? 'body';
    const errors = fieldErrors(location, fastifyError.validation);
    const summary = errors.map((e) => `${e.pointer || '(document)'} ${e.message}`).join('; ');
    return {
      ...buildProblem(httpErrors.VALIDATION_FAILED.status, 'VALIDATION_FAILED', `Invalid ${location}: ${summary}`, request),
      errors,
    };
  }
  const status = fastifyError.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    // Fastify's status stands: for the renamed codes it is the catalogue's, and an unknown 4xx keeps its own.
    const code = FRAMEWORK_CODES[fastifyError.code ?? ''] ?? 'BAD_REQUEST';
    return buildProblem(status, code, fastifyError.message ?? 'Bad request', request);
  }
  const detail = `An internal error occurred; quote correlation id ${request.id} when reporting it.`;
  return buildProblem(httpErrors.INTERNAL.status, 'INTERNAL', detail, request);
}

export function sendProblem(reply: FastifyReply, problem: Problem): FastifyReply {
  return reply.code(problem.status).type(PROBLEM_CONTENT_TYPE).send(problem);
}
