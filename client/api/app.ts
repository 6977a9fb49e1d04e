// The HTTP API for backends in any language, as a Fastify app around an injected Temporal client and
// GuardClient (server.ts owns the port). Every request schema is a zod definition the TypeScript
// client uses too, validated by GuardClient itself; the same schemas give the OpenAPI 3.1 document
// (/openapi.json, browsable at /docs). Errors are RFC 9457 problem+json naming each bad field.
//
// Guards are addressed by their id as ONE percent-encoded path segment (encodeURIComponent):
// `/v1/guards/rbm-guard%2Facme%2Fa%2Fb%3Ac`, `POST /v1/guards/{id}:cancel`. A message id may hold
// `/` or `:`; the action is what follows the segment's last unencoded `:`.
import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import rateLimit from '@fastify/rate-limit';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { z } from 'zod';
import { WorkflowNotFoundError, WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import type { Config } from '../../config/index.ts';
import { createLogger, REDACT_PATHS, type Logger } from '../../config/logger.ts';
import { ALL_STATES, OUTCOMES } from '../../workflows/contract.ts';
import { cancelRequestSchema, extendRequestSchema, guardStatusSchema, jsonSchemaOf } from '../contract-schemas.ts';
import type { GuardClient } from '../guard-client.ts';
import { grpcCode, TRANSIENT_GRPC_CODES } from '../temporal-errors.ts';
import { trackRequestSchema, ValidationError } from '../track-input.ts';
import { matchApiKey, type ApiKey } from './auth.ts';
import { PROBLEM_TYPE, problemError, ProblemError, problemSchema, type Problem } from './problem.ts';
import { heldMessage, isSameMessage } from './same-message.ts';

export type ApiConfig = Pick<Config, 'RBM_GUARD_API_RATE_LIMIT' | 'RBM_GUARD_API_BODY_LIMIT_BYTES' | 'RBM_GUARD_API_TIMEOUT_MS' | 'LOG_LEVEL'>;

export interface ApiAppOptions {
  /** A connected client (its codec decrypts what the API reads); the app never closes it. */
  client: Client;
  guards: GuardClient;
  keys: readonly ApiKey[];
  config: ApiConfig;
  logger?: Logger;
}

/** Seconds a client is told to wait when Temporal is down or slow. */
export const UNAVAILABLE_RETRY_AFTER_S = 5;
const GUARDS = '/v1/guards';

const trackResultSchema = z.object({
  workflowId: z.string(),
  runId: z.string().nullable(),
  created: z.boolean().meta({ description: 'true (201): this call started the guard, or gave an event-started guard its message' }),
  alreadyClosed: z.boolean(),
  href: z.string(),
});
const guardSummarySchema = z.object({
  workflowId: z.string(),
  state: z.enum(ALL_STATES).nullable(),
  outcome: z.enum(OUTCOMES).nullable(),
  agentId: z.string().nullable(),
  staleAt: z.string().nullable(),
  startTime: z.string(),
  closeTime: z.string().nullable(),
});
const listQuerySchema = z
  .object({
    state: z.string().optional(),
    outcome: z.string().optional(),
    agentId: z.string().optional(),
    open: z.enum(['true', 'false']).optional(),
    pageSize: z.coerce.number().int().min(1).max(1000).default(100),
    pageToken: z.string().regex(/^[A-Za-z0-9_-]+$/, 'the nextPageToken of the previous page').optional(),
  })
  .strict();
const listResultSchema = z.object({ guards: z.array(guardSummarySchema), nextPageToken: z.string().nullable() });

/** JSON Schema for the OpenAPI document (draft 2020-12 is OpenAPI 3.1's dialect). */
const doc = (schema: z.ZodType, io: 'input' | 'output' = 'output') => {
  const schemaDoc = jsonSchemaOf(schema, io);
  delete schemaDoc.$schema;
  return schemaDoc;
};
const problemResponse = (description: string) => ({ description, content: { [PROBLEM_TYPE]: { schema: doc(problemSchema) } } });
const errors = {
  400: problemResponse('a bad field (each named in `errors`)'),
  401: problemResponse('missing or unknown API key'),
  429: problemResponse('rate limit of the key reached; see Retry-After'),
  503: problemResponse('Temporal is down or slow; nothing was started; see Retry-After'),
};
const idParam = { type: 'object', properties: { id: { type: 'string', description: 'the guard id, percent-encoded as one segment' } }, required: ['id'] };

export async function buildApiApp(options: ApiAppOptions): Promise<FastifyInstance> {
  const { client, guards, keys, config } = options;
  const logger = (options.logger ?? createLogger(config)).child({ component: 'api' }, { redact: { paths: REDACT_PATHS, censor: '[redacted]' } });
  const fastifyLogger: FastifyBaseLogger = logger;
  const app = Fastify({
    loggerInstance: fastifyLogger,
    bodyLimit: config.RBM_GUARD_API_BODY_LIMIT_BYTES,
    logController: new LogController({ disableRequestLogging: true }),
    requestTimeout: config.RBM_GUARD_API_TIMEOUT_MS + 10_000,
    return503OnClosing: true,
  });
  app.removeContentTypeParser('text/plain');
  // Schemas on routes document; zod (through GuardClient) validates, so errors name fields our way.
  app.setValidatorCompiler(() => (data) => ({ value: data }));
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));

  const deadline = <T>(fn: () => Promise<T>) => client.withDeadline(Date.now() + config.RBM_GUARD_API_TIMEOUT_MS, fn);
  const keyOf = new WeakMap<FastifyRequest, ApiKey>();

  app.setErrorHandler((error: FastifyError, request, reply) => sendProblem(reply, toProblem(error, request), request));
  app.setNotFoundHandler((request, reply) => sendProblem(reply, problemError('not-found', { detail: `no route ${request.method} ${request.url.split('?')[0]}; see /openapi.json` }), request));

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'rbm-guard API', version: '1', description: 'Guard RBM messages from a backend in any language. Errors are RFC 9457 problem+json.' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'a key from RBM_GUARD_API_KEYS' } } },
      security: [{ bearer: [] }],
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  await app.register(rateLimit, {
    global: true,
    hook: 'preHandler', // after auth: the limit is per key, and a refused key spends nobody's budget
    max: config.RBM_GUARD_API_RATE_LIMIT,
    timeWindow: 60_000,
    allowList: (request) => !request.url.startsWith(`${GUARDS}`),
    keyGenerator: (request) => keyOf.get(request)?.id ?? request.ip,
    errorResponseBuilder: (_request, context) =>
      Object.assign(problemError('rate-limited', { detail: `at most ${context.max} requests per minute per key; retry in ${Math.ceil(context.ttl / 1000)} s` }), { statusCode: 429 }),
  });

  // Every /v1 route needs a key; with none configured, every call is refused.
  app.addHook('onRequest', async (request) => {
    if (!request.url.startsWith(GUARDS)) return;
    const key = matchApiKey(keys, request.headers.authorization);
    if (!key) {
      const detail = keys.length === 0 ? 'no API key is configured (RBM_GUARD_API_KEYS): every call is refused' : 'send Authorization: Bearer <key> with a key from RBM_GUARD_API_KEYS';
      throw problemError('unauthorized', { detail }, { 'WWW-Authenticate': 'Bearer' });
    }
    keyOf.set(request, key);
  });

  app.get('/healthz', { schema: { hide: true } }, async () => ({ status: 'ok' }));
  app.get('/readyz', { schema: { hide: true } }, async (_request, reply) => {
    try {
      await client.withDeadline(Date.now() + 2000, () => client.workflowService.getSystemInfo({}));
      return { status: 'ready' };
    } catch {
      return reply.code(503).header('Retry-After', String(UNAVAILABLE_RETRY_AFTER_S)).send({ status: 'unavailable' });
    }
  });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  app.post(
    GUARDS,
    {
      schema: {
        summary: 'Track a sent message: start its guard (idempotent)',
        description:
          '201: this call started the guard (or gave a guard an early RBM event started its message). 200: the same message again — ' +
          'the body, resolved as of the first track, gives the message the guard holds (a resent staleIn without sentAt keeps the first deadline). ' +
          '409: a guard for this agent and message id holds a different message.',
        body: doc(trackRequestSchema, 'input'),
        response: { 201: { description: 'started', content: { 'application/json': { schema: doc(trackResultSchema) } } }, 200: { description: 'the same message again', content: { 'application/json': { schema: doc(trackResultSchema) } } }, 409: problemResponse('the same message id with a different body'), ...errors },
      },
    },
    async (request, reply) => {
      const body = requireObject(request.body);
      const result = await deadline(() => guards.track(body as Parameters<GuardClient['track']>[0]));
      const href = `${GUARDS}/${encodeURIComponent(result.workflowId)}`;
      let created = result.created;
      if (!created) {
        const held = await deadline(() => heldMessage(client, result.workflowId));
        if (!held || !isSameMessage(body, held.message)) {
          throw problemError('conflict', {
            detail: held ? 'a guard for this message id holds a different message (phone, text, deadline, traffic type, policy or TTL)' : 'this message id was guarded before, and that guard\u2019s history is gone',
            workflowId: result.workflowId,
          });
        }
        // The first track of a guard an early RBM event started is this call's: new to the caller.
        created = !held.fromStart && held.trackSignals === 1 && !result.alreadyClosed;
      }
      if (created) reply.code(201).header('Location', href);
      return { workflowId: result.workflowId, runId: result.runId, created, alreadyClosed: result.alreadyClosed, href };
    },
  );

  app.get(
    `${GUARDS}/:id`,
    { schema: { summary: 'A guard\u2019s state, outcome and timeline', params: idParam, response: { 200: { description: 'status', content: { 'application/json': { schema: doc(guardStatusSchema) } } }, 404: problemResponse('no such guard'), ...errors } } },
    async (request) => {
      const id = guardIdOf(request);
      return deadline(() => guards.status(id)).catch((err: unknown) => notFoundAs(err, id));
    },
  );

  app.post(
    `${GUARDS}/:id`,
    {
      schema: {
        summary: '`{id}:cancel` (body {reason?}) or `{id}:extend` (body {staleAt})',
        params: idParam,
        body: { oneOf: [doc(cancelRequestSchema, 'input'), doc(extendRequestSchema, 'input')] },
        response: { 200: { description: 'the guard\u2019s status after it', content: { 'application/json': { schema: doc(guardStatusSchema) } } }, 404: problemResponse('no such guard or action'), 409: problemResponse('the guard is closed, or refused the change'), ...errors },
      },
    },
    async (request) => {
      const raw = rawSegment(request);
      const colon = raw.lastIndexOf(':');
      const action = colon < 0 ? '' : raw.slice(colon + 1);
      if (action !== 'cancel' && action !== 'extend') throw problemError('not-found', { detail: 'POST /v1/guards/{id}:cancel or /v1/guards/{id}:extend' });
      const id = decodeId(raw.slice(0, colon));
      const run = async () => {
        if (action === 'cancel') {
          const { reason } = parseBody(cancelRequestSchema.strict(), request.body ?? {});
          return guards.cancel(id, reason);
        }
        const { staleAt } = parseBody(extendRequestSchema.strict(), request.body);
        return guards.extend(id, staleAt);
      };
      return deadline(run).catch((err: unknown) => notFoundAs(err, id));
    },
  );

  app.get(
    GUARDS,
    {
      schema: {
        summary: 'Guards, newest first, filtered by state, outcome, agent; paginated with nextPageToken',
        querystring: doc(listQuerySchema, 'input'),
        response: { 200: { description: 'one page', content: { 'application/json': { schema: doc(listResultSchema) } } }, ...errors },
      },
    },
    async (request) => {
      const q = parseQuery(listQuerySchema, request.query);
      const page = await deadline(() =>
        guards.listPage(
          { state: q.state as never, outcome: q.outcome as never, agentId: q.agentId, open: q.open === undefined ? undefined : q.open === 'true' },
          { pageSize: q.pageSize, pageToken: q.pageToken ? Buffer.from(q.pageToken, 'base64url') : null },
        ),
      ).catch((err: unknown) => {
        throw err instanceof ValidationError ? fieldErrors(err, 'query') : err;
      });
      return { guards: page.guards, nextPageToken: page.nextPageToken ? Buffer.from(page.nextPageToken).toString('base64url') : null };
    },
  );

  async function notFoundAs(err: unknown, id: string): Promise<never> {
    if (err instanceof WorkflowNotFoundError) {
      // An update to a closed guard also lands here: tell it apart from an unknown id.
      const closed = await deadline(() => client.workflow.getHandle(id).describe()).then((d) => d.status.name, () => null);
      if (closed && closed !== 'RUNNING') throw problemError('conflict', { detail: `the guard is closed (${closed.toLowerCase()}); read its outcome with GET`, workflowId: id });
      throw problemError('not-found', { detail: `no guard ${id}`, workflowId: id });
    }
    if (err instanceof WorkflowUpdateFailedError) throw problemError('conflict', { detail: `the guard refused it: ${err.cause?.message ?? err.message}`, workflowId: id });
    throw err;
  }

  return app;
}

function sendProblem(reply: FastifyReply, err: ProblemError, request: FastifyRequest): FastifyReply {
  const p: Problem = { ...err.problem, instance: request.url.split('?')[0] };
  if (p.status >= 500) request.log.warn({ status: p.status, type: p.type }, 'request failed');
  return reply.code(p.status).headers(err.headers).type(PROBLEM_TYPE).send(p);
}

/** Every error as a problem; 5xx never carry internals. */
function toProblem(error: FastifyError | Error, request: FastifyRequest): ProblemError {
  if (error instanceof ProblemError) return error;
  if (error instanceof ValidationError) return fieldErrors(error, 'body');
  const code = grpcCode(error);
  if ((code !== undefined && TRANSIENT_GRPC_CODES.has(code)) || /deadline|unavailable|connect/i.test(error.message)) {
    return problemError('unavailable', { detail: `Temporal did not answer; nothing was started; retry in ${UNAVAILABLE_RETRY_AFTER_S} s` }, { 'Retry-After': String(UNAVAILABLE_RETRY_AFTER_S) });
  }
  const status = (error as FastifyError).statusCode ?? 500;
  if (status === 413) return problemError('too-large', { detail: 'the body is over RBM_GUARD_API_BODY_LIMIT_BYTES' });
  if (status === 415) return problemError('unsupported-media-type', { detail: 'send Content-Type: application/json' });
  if (status === 429) return problemError('rate-limited', {}, {});
  if (status >= 400 && status < 500) return problemError('validation', { detail: 'the body is not valid JSON', errors: [{ field: 'body', message: 'not valid JSON' }] });
  request.log.error({ err: error }, 'unhandled error');
  return problemError('internal');
}

function fieldErrors(err: ValidationError, where: 'body' | 'query' | 'path'): ProblemError {
  const errors = err.issues.map((i) => ({ field: i.field === 'workflowId' ? 'path.id' : i.field === '(input)' ? where : `${where}.${i.field}`, message: i.message }));
  return problemError('validation', { detail: errors.map((e) => `${e.field}: ${e.message}`).join('; '), errors });
}

function requireObject(body: unknown): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw problemError('validation', { detail: 'the body must be a JSON object', errors: [{ field: 'body', message: 'must be a JSON object' }] });
  }
  return body as Record<string, unknown>;
}

function parseBody<T extends z.ZodType>(schema: T, body: unknown): z.output<T> {
  const parsed = schema.safeParse(requireObject(body));
  if (parsed.success) return parsed.data;
  throw fieldErrors(new ValidationError(parsed.error.issues.map((i) => ({ field: i.path.join('.') || '(input)', message: i.message }))), 'body');
}

function parseQuery<T extends z.ZodType>(schema: T, query: unknown): z.output<T> {
  const parsed = schema.safeParse(query ?? {});
  if (parsed.success) return parsed.data;
  throw fieldErrors(new ValidationError(parsed.error.issues.map((i) => ({ field: i.path.join('.') || '(input)', message: i.message }))), 'query');
}

/** The guard id segment as sent (still percent-encoded), from the raw URL. */
function rawSegment(request: FastifyRequest): string {
  return (request.raw.url ?? '').split('?')[0]!.slice(GUARDS.length + 1);
}

function decodeId(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw problemError('validation', { errors: [{ field: 'path.id', message: 'not valid percent-encoding' }] });
  }
}

function guardIdOf(request: FastifyRequest): string {
  return decodeId(rawSegment(request));
}
