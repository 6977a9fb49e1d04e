// The HTTP API for backends in any language, as a Fastify app around an injected Temporal client and
// GuardClient (server.ts owns the port). Every request schema is a zod definition the TypeScript
// client uses too, validated by GuardClient itself; the same schemas give the OpenAPI 3.1 document
// (/openapi.json, browsable at /docs). Errors are RFC 9457 problem+json naming each bad field.
//
// Guards are addressed by their id as ONE percent-encoded path segment (encodeURIComponent):
// `/v1/guards/rbm-guard%2Facme%2Fa%2Fb%3Ac`, `POST /v1/guards/{id}:cancel`. A message id may hold
// `/` or `:`; the action is what follows the segment's last unencoded `:`.
//
// Authentication belongs to the routes the router matched, never to the raw URL: every route is
// keyed unless PUBLIC_PATHS names it, and so are unknown paths and URLs the router cannot read,
// however the path is spelled (`/v1/%67uards`, absolute form, dot segments).
import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import rateLimit from '@fastify/rate-limit';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { z } from 'zod';
import { WorkflowNotFoundError, WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import type { Config } from '../../config/index.ts';
import { createLogger, REDACT_PATHS, type Logger } from '../../config/logger.ts';
import { ALL_STATES, OUTCOMES } from '../../workflows/contract.ts';
import { cancelRequestSchema, extendRequestSchema, guardStatusSchema, jsonSchemaOf } from '../../client/contract-schemas.ts';
import type { GuardClient } from '../../client/guard-client.ts';
import { GRPC, grpcCode, TRANSIENT_GRPC_CODES } from '../../client/temporal-errors.ts';
import { trackRequestSchema, ValidationError } from '../../client/track-input.ts';
import { AuthFailures, matchApiKey, type ApiKey } from './auth.ts';
import { PROBLEM_TYPE, problemError, ProblemError, problemSchema, type Problem } from './problem.ts';
import { heldMessage, isSameMessage } from './same-message.ts';
import { pageTokens } from './page-token.ts';

export type ApiConfig = Pick<
  Config,
  'RBM_GUARD_API_RATE_LIMIT' | 'RBM_GUARD_API_AUTH_FAILURE_LIMIT' | 'RBM_GUARD_API_BODY_LIMIT_BYTES' | 'RBM_GUARD_API_TIMEOUT_MS' | 'LOG_LEVEL'
>;

/** The only routes served without a key: health, and the API's own description. */
export const PUBLIC_PATHS: readonly string[] = ['/healthz', '/readyz', '/openapi.json'];
const PUBLIC_PREFIX = '/docs';
const isPublicPath = (routeUrl: string) => PUBLIC_PATHS.includes(routeUrl) || routeUrl === PUBLIC_PREFIX || routeUrl.startsWith(`${PUBLIC_PREFIX}/`);

/** A route the app serves, as its router knows it (the auth test walks every one). */
export interface ApiRoute {
  method: string;
  url: string;
  public: boolean;
}

/**
 * Longest guard-id path segment: the longest id (10 + 128 + 1 + 256 UTF-16 units), each unit at
 * most 9 characters percent-encoded (3 UTF-8 bytes), and `:extend`. The router's default (100)
 * made long valid ids unaddressable.
 */
const MAX_ID_SEGMENT = 4096;
/** An `instance` longer than this is left out of a problem rather than echoed. */
const MAX_INSTANCE = 512;

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
    pageToken: z.string().max(4096).optional(),
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
  429: problemResponse('rate limit of the key (or of failed authentications from the address) reached; see Retry-After'),
  502: problemResponse('Temporal failed the call (UNKNOWN/INTERNAL): not an outage, no Retry-After'),
  503: problemResponse('Temporal is down or slow; nothing was started; see Retry-After'),
};
const idParam = { type: 'object', properties: { id: { type: 'string', description: 'the guard id, percent-encoded as one segment' } }, required: ['id'] };

export async function buildApiApp(options: ApiAppOptions): Promise<FastifyInstance> {
  const { client, guards, keys, config } = options;
  const logger = (options.logger ?? createLogger(config)).child({ component: 'api' }, { redact: { paths: REDACT_PATHS, censor: '[redacted]' } });
  const fastifyLogger: FastifyBaseLogger = logger;
  const keyOf = new WeakMap<FastifyRequest, ApiKey>();
  const failures = new AuthFailures(config.RBM_GUARD_API_AUTH_FAILURE_LIMIT);
  const routes: ApiRoute[] = [];
  const tokens = pageTokens(keys);

  /** Throws 401 (or 429 for an address that failed too often) unless the request carries a key. */
  function authenticate(request: FastifyRequest): void {
    const wait = failures.blockedFor(request.ip);
    if (wait > 0) {
      throw problemError('rate-limited', { detail: `too many failed authentications from this address; retry in ${wait} s` }, { 'Retry-After': String(wait) });
    }
    const key = matchApiKey(keys, request.headers.authorization);
    if (!key) {
      // Only a presented credential is a guess: a browser's /favicon.ico must not lock out its address.
      if (request.headers.authorization !== undefined) failures.record(request.ip);
      const detail = keys.length === 0 ? 'no API key is configured (RBM_GUARD_API_KEYS): every call is refused' : 'send Authorization: Bearer <key> with a key from RBM_GUARD_API_KEYS';
      throw problemError('unauthorized', { detail }, { 'WWW-Authenticate': 'Bearer' });
    }
    keyOf.set(request, key);
  }

  const app = Fastify({
    loggerInstance: fastifyLogger,
    routerOptions: { maxParamLength: MAX_ID_SEGMENT },
    // A URL the router cannot read (bad percent-encoding, an over-long segment): a key first, then a problem.
    frameworkErrors: (error, request, reply) => {
      try {
        authenticate(request);
        throw error.code === 'FST_ERR_BAD_URL'
          ? problemError('validation', { detail: 'the path is not valid percent-encoding', errors: [{ field: 'path', message: 'not valid percent-encoding' }] })
          : problemError('validation', { detail: `a path segment is over ${MAX_ID_SEGMENT} characters`, errors: [{ field: 'path', message: `over ${MAX_ID_SEGMENT} characters` }] });
      } catch (err) {
        void sendProblem(reply, err instanceof ProblemError ? err : problemError('internal'), request);
      }
    },
    bodyLimit: config.RBM_GUARD_API_BODY_LIMIT_BYTES,
    logController: new LogController({ disableRequestLogging: true }),
    requestTimeout: config.RBM_GUARD_API_TIMEOUT_MS + 10_000,
    return503OnClosing: true,
  });
  app.removeContentTypeParser('text/plain');
  // JSON by our own parse: a prototype key is refused by name (Fastify's parser calls it broken JSON).
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => {
    try {
      done(null, parseJson(body as string));
    } catch (err) {
      done(err as Error, undefined);
    }
  });
  // Schemas on routes document; zod (through GuardClient) validates, so errors name fields our way.
  app.setValidatorCompiler(() => (data) => ({ value: data }));
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));

  const deadline = <T>(fn: () => Promise<T>) => client.withDeadline(Date.now() + config.RBM_GUARD_API_TIMEOUT_MS, fn);

  // Before any route exists: each one the router will match gets the key check in its own lifecycle
  // (and the per-key rate limit), unless it is public.
  app.addHook('onRoute', (route) => {
    const open = isPublicPath(route.url);
    for (const method of [route.method].flat()) routes.push({ method, url: route.url, public: open });
    if (open) {
      route.config = { ...route.config, rateLimit: false };
      return;
    }
    const own = route.onRequest ? [route.onRequest].flat() : [];
    route.onRequest = [async (request: FastifyRequest) => authenticate(request), ...own] as typeof route.onRequest;
  });

  app.setErrorHandler((error: FastifyError, request, reply) => sendProblem(reply, toProblem(error, request), request));
  // An unknown path is keyed too: no route is discovered, and none is public by accident.
  app.setNotFoundHandler((request, reply) => {
    authenticate(request);
    return sendProblem(reply, problemError('not-found', { detail: `no route ${request.method} ${pathOf(request)}; see /openapi.json` }), request);
  });

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
    global: true, // every keyed route; public ones opt out in the onRoute hook above
    hook: 'preHandler', // after auth: the limit is per key, and a refused key spends nobody's budget
    max: config.RBM_GUARD_API_RATE_LIMIT,
    timeWindow: 60_000,
    keyGenerator: (request) => keyOf.get(request)?.id ?? request.ip,
    errorResponseBuilder: (_request, context) =>
      Object.assign(problemError('rate-limited', { detail: `at most ${context.max} requests per minute per key; retry in ${Math.ceil(context.ttl / 1000)} s` }), { statusCode: 429 }),
  });

  app.get('/healthz', { schema: { hide: true } }, async () => ({ status: 'ok' }));
  // Public, so one probe of Temporal at a time, its answer shared for a second: no fan-out on demand.
  let readiness: { at: number; ready: Promise<boolean> } | undefined;
  app.get('/readyz', { schema: { hide: true } }, async (_request, reply) => {
    if (!readiness || Date.now() - readiness.at > 1000) {
      const ready = client.withDeadline(Date.now() + 2000, () => client.workflowService.getSystemInfo({})).then(() => true, () => false);
      readiness = { at: Date.now(), ready };
    }
    if (await readiness.ready) return { status: 'ready' };
    return reply.code(503).header('Retry-After', String(UNAVAILABLE_RETRY_AFTER_S)).send({ status: 'unavailable' });
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
      const pageToken = q.pageToken === undefined ? null : tokens.open(q.pageToken);
      if (pageToken === undefined) {
        throw problemError('validation', { errors: [{ field: 'query.pageToken', message: 'not a nextPageToken this API gave: pass the previous page\u2019s, unchanged (tokens end with a key rotation)' }] });
      }
      const page = await deadline(() =>
        guards.listPage(
          { state: q.state as never, outcome: q.outcome as never, agentId: q.agentId, open: q.open === undefined ? undefined : q.open === 'true' },
          { pageSize: q.pageSize, pageToken },
        ),
      ).catch((err: unknown) => {
        throw err instanceof ValidationError ? fieldErrors(err, 'query') : err;
      });
      return { guards: page.guards, nextPageToken: page.nextPageToken ? tokens.seal(page.nextPageToken) : null };
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

  app.decorate('apiRoutes', routes);
  return app;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Every route registered, with whether it is public (see PUBLIC_PATHS). */
    apiRoutes: readonly ApiRoute[];
  }
}

/** The request's path as sent (absolute form reduced to its path), without the query. */
function pathOf(request: FastifyRequest): string {
  const raw = (request.raw.url ?? '').split('?')[0]!;
  return raw.startsWith('/') ? raw : raw.replace(/^[a-z][a-z0-9+.-]*:\/\/[^/]*/i, '') || '/';
}

function sendProblem(reply: FastifyReply, err: ProblemError, request: FastifyRequest): FastifyReply {
  const path = pathOf(request);
  const p: Problem = { ...err.problem, ...(path.length <= MAX_INSTANCE ? { instance: path } : {}) };
  if (p.status >= 500) request.log.warn({ status: p.status, type: p.type }, 'request failed');
  return reply.code(p.status).headers(err.headers).type(PROBLEM_TYPE).send(p);
}

/** Every error as a problem; 5xx never carry internals. */
function toProblem(error: FastifyError | Error, request: FastifyRequest): ProblemError {
  if (error instanceof ProblemError) return error;
  if (error instanceof ValidationError) return fieldErrors(error, 'body');
  const code = grpcCode(error);
  // UNKNOWN and INTERNAL are Temporal failing this call, not Temporal being away: an honest 502, no
  // Retry-After (a client retrying forever and a monitor seeing an outage would both be wrong).
  if (code === GRPC.UNKNOWN || code === GRPC.INTERNAL) {
    request.log.warn({ grpcCode: code }, 'Temporal failed the call');
    return problemError('upstream', { detail: 'Temporal failed this call; it is not an outage, and retrying the same request may fail the same way' });
  }
  if (code === GRPC.INVALID_ARGUMENT) return problemError('validation', { detail: 'Temporal refused the request as invalid' });
  if ((code !== undefined && TRANSIENT_GRPC_CODES.has(code)) || (code === undefined && /deadline|unavailable|connect/i.test(error.message))) {
    return problemError('unavailable', { detail: `Temporal did not answer; nothing was started; retry in ${UNAVAILABLE_RETRY_AFTER_S} s` }, { 'Retry-After': String(UNAVAILABLE_RETRY_AFTER_S) });
  }
  const status = (error as FastifyError).statusCode ?? 500;
  if (status === 413) return problemError('too-large', { detail: 'the body is over RBM_GUARD_API_BODY_LIMIT_BYTES' });
  if (status === 415) return problemError('unsupported-media-type', { detail: 'send Content-Type: application/json' });
  if (status === 429) return problemError('rate-limited', {}, {});
  const fastifyCode = (error as FastifyError).code ?? '';
  if (fastifyCode.startsWith('FST_ERR_CTP_')) return problemError('validation', { detail: 'the body is not valid JSON', errors: [{ field: 'body', message: 'not valid JSON' }] });
  if (status === 404) return problemError('not-found', { detail: 'no such resource; see /openapi.json' });
  if (status >= 400 && status < 500) return problemError('validation', { detail: 'the request is not valid' });
  request.log.error({ err: error }, 'unhandled error');
  return problemError('internal');
}

function fieldErrors(err: ValidationError, where: 'body' | 'query' | 'path'): ProblemError {
  const errors = err.issues.map((i) => ({ field: i.field === 'workflowId' ? 'path.id' : i.field === '(input)' ? where : `${where}.${i.field}`, message: i.message }));
  return problemError('validation', { detail: errors.map((e) => `${e.field}: ${e.message}`).join('; '), errors });
}

/** JSON.parse, refusing the keys that could reach an object's prototype when the body is copied. */
function parseJson(text: string): unknown {
  let value: unknown;
  try {
    value = JSON.parse(text, (key, v: unknown) => {
      if (key === '__proto__' || (key === 'constructor' && typeof v === 'object' && v !== null && 'prototype' in v)) throw new ProtoKeyError();
      return v;
    });
  } catch (err) {
    if (err instanceof ProtoKeyError) {
      throw problemError('validation', { detail: 'the body holds a __proto__ or constructor.prototype key', errors: [{ field: 'body', message: 'must not hold __proto__ or constructor.prototype keys' }] });
    }
    throw problemError('validation', { detail: 'the body is not valid JSON', errors: [{ field: 'body', message: 'not valid JSON' }] });
  }
  return value;
}
class ProtoKeyError extends Error {}

function requireObject(body: unknown): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw problemError('validation', { detail: 'the body must be a JSON object', errors: [{ field: 'body', message: 'must be a JSON object' }] });
  }
  return body as Record<string, unknown>;
}

function parseBody<T extends z.ZodType>(schema: T, body: unknown): z.output<T> {
  const parsed = schema.safeParse(requireObject(body));
  if (parsed.success) return parsed.data;
  throw fieldErrors(ValidationError.fromZod(parsed.error), 'body');
}

function parseQuery<T extends z.ZodType>(schema: T, query: unknown): z.output<T> {
  const parsed = schema.safeParse(query ?? {});
  if (parsed.success) return parsed.data;
  throw fieldErrors(ValidationError.fromZod(parsed.error), 'query');
}

/**
 * The guard id segment as sent (still percent-encoded): the path's last segment, whichever spelling
 * of `/v1/guards` the router matched (the id is one segment, its own `/` encoded).
 */
function rawSegment(request: FastifyRequest): string {
  return pathOf(request).split('/').at(-1)!;
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
