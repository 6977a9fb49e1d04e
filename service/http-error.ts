// The webhook's and the codec server's refusals: one error class, one answer shape `{error, message}`.
// (The HTTP API answers RFC 9457 problems instead: service/api/problem.ts.)

/** A 4xx answer: the request can never succeed as sent. */
export class HttpError extends Error {
  readonly statusCode: number;
  readonly code: string;
  constructor(statusCode: number, code: string, message: string) {
    super(message);
    this.name = 'HttpError';
    this.statusCode = statusCode;
    this.code = code;
  }
}

const FASTIFY_CLIENT_ERRORS: Record<number, { error: string; message: string }> = {
  400: { error: 'bad_request', message: 'the body is not valid JSON' },
  413: { error: 'body_too_large', message: 'the body is over the size limit' },
  415: { error: 'unsupported_media_type', message: 'expected Content-Type: application/json' },
};

/**
 * Fastify's own 4xx (body parsing, size, content type) as a fixed answer: their messages can quote
 * the body, so none of it is sent back (or logged).
 */
export function fastifyClientError(status: number): { status: number; answer: { error: string; message: string } } {
  const answer = FASTIFY_CLIENT_ERRORS[status];
  return answer ? { status, answer } : { status: 400, answer: { error: 'bad_request', message: 'the request was rejected' } };
}
