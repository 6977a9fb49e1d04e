// RFC 9457 problem details: every error the HTTP API answers, one shape, each bad field named.
import { z } from 'zod';

export const PROBLEM_TYPE = 'application/problem+json';

export const problemSchema = z.object({
  type: z.string().meta({ description: 'a URN naming the kind of problem, e.g. urn:rbm-guard:problem:validation' }),
  title: z.string(),
  status: z.number().int(),
  detail: z.string().optional(),
  instance: z.string().optional(),
  /** Each bad field: `body.phone`, `query.state`, `path.id`. */
  errors: z.array(z.object({ field: z.string(), message: z.string() })).optional(),
  workflowId: z.string().optional(),
});
export type Problem = z.infer<typeof problemSchema>;

/** An error the API answers as a problem, with headers (Retry-After) where it needs them. */
export class ProblemError extends Error {
  readonly problem: Problem;
  readonly headers: Record<string, string>;
  constructor(problem: Problem, headers: Record<string, string> = {}) {
    super(problem.detail ?? problem.title);
    this.name = 'ProblemError';
    this.problem = problem;
    this.headers = headers;
  }
}

const TITLES: Record<string, { status: number; title: string }> = {
  validation: { status: 400, title: 'The request is not valid' },
  unauthorized: { status: 401, title: 'Missing or unknown API key' },
  'not-found': { status: 404, title: 'Not found' },
  conflict: { status: 409, title: 'Conflict' },
  'too-large': { status: 413, title: 'Request body too large' },
  'unsupported-media-type': { status: 415, title: 'Unsupported media type' },
  'rate-limited': { status: 429, title: 'Too many requests' },
  internal: { status: 500, title: 'Internal error' },
  upstream: { status: 502, title: 'Temporal failed the call' },
  unavailable: { status: 503, title: 'Temporal is unavailable' },
};
export type ProblemKind = keyof typeof TITLES;

export function problem(kind: ProblemKind, fields: Omit<Partial<Problem>, 'type' | 'title' | 'status'> = {}): Problem {
  const { status, title } = TITLES[kind]!;
  return { type: `urn:rbm-guard:problem:${kind}`, title, status, ...fields };
}

export const problemError = (kind: ProblemKind, fields: Omit<Partial<Problem>, 'type' | 'title' | 'status'> = {}, headers: Record<string, string> = {}) =>
  new ProblemError(problem(kind, fields), headers);
