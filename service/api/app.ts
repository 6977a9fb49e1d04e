// The HTTP API for backends in any language, as a Fastify app around an injected Temporal client and
// GuardClient (server.ts owns the port). Every request schema is a zod definition on its route
// (fastify-type-provider-zod): it validates, types the handler and gives the OpenAPI 3.1 document
// (/openapi.json, browsable at /docs). A track body's schema is the library's own wire schema, and
// GuardClient.track checks the rest (staleAt or staleIn, deadlines, TTLs), so each rule has one owner.
// Errors are RFC 9457 problem+json naming each bad field, whichever of the two found it.
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
import { hasZodFastifySchemaValidationErrors, jsonSchemaTransform, validatorCompiler, type ZodFastifySchemaValidationError, type ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { WorkflowNotFoundError, WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import type { Config } from '../../config/index.ts';
import { createLogger, REDACT_PATHS, type Logger } from '../../config/logger.ts';
import { ALL_STATES, OUTCOMES } from '../../workflows/contract.ts';
import { cancelRequestSchema, extendRequestSchema, guardStatusSchema } from '../../client/contract-schemas.ts';
import { listFilterSchema, type GuardClient } from '../../client/guard-client.ts';
import { GRPC, grpcCode, TRANSIENT_GRPC_CODES } from '../../client/temporal-errors.ts';
import { trackRequestSchema, ValidationError } from '../../client/track-input.ts';
import { AuthFailures, matchApiKey, type ApiKey } from './auth.ts';
import { PROBLEM_TYPE, problemError, ProblemError, problemSchema, type Problem } from './problem.ts';
import { DifferentMessageError } from '../../client/same-message.ts';
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
// The filters' rules are GuardClient's own (listFilterSchema); a query spells them as strings.
const listQuerySchema = z
  .object({
    state: listFilterSchema.shape.state,
    outcome: listFilterSchema.shape.outcome,
    agentId: listFilterSchema.shape.agentId,
    open: z
      .enum(['true', 'false'])
      .transform((open) => open === 'true')
      .optional(),
    pageSize: z.coerce.number().int().min(1).max(1000).default(100),
    pageToken: z.string().max(4096).optional(),
  })
  .strict();
const listResultSchema = z.object({ guards: z.array(guardSummarySchema), nextPageToken: z.string().nullable() });

/** A response as the OpenAPI document shows it; the route's schema compiler turns the zod schema into JSON Schema. */
const jsonResponse = <T extends z.ZodType>(description: string, schema: T) => ({ description, content: { 'application/json': { schema } } });
const problemResponse = (description: string) => ({ description, content: { [PROBLEM_TYPE]: { schema: problemSchema } } });
const errors = {
  400: problemResponse('a bad field (each named in `errors`)'),
  401: problemResponse('missing or unknown API key'),
  429: problemResponse('rate limit of the key (or of failed authentications from the address) reached; see Retry-After'),
  502: problemResponse('Temporal failed the call (UNKNOWN/INTERNAL): not an outage, no Retry-After'),
  503: problemResponse('Temporal is down or slow; nothing was started; see Retry-After'),
};
// Documentation: the handlers read the id from the raw path (guardIdOf), and GuardClient checks it (path.id).
const idParam = z.object({ id: z.string().meta({ description: 'the guard id, percent-encoded as one segment' }) });

/** The router constraint that tells `POST /v1/guards/{id}:cancel` from `:extend`, so each has its own body schema. */
const GUARD_ACTION = 'guardAction';

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
    routerOptions: {
      maxParamLength: MAX_ID_SEGMENT,
      constraints: {
        [GUARD_ACTION]: {
          name: GUARD_ACTION,
          storage: storeByValue,
          deriveConstraint: (req) => actionOf(req.url ?? '') ?? '',
        },
      },
    },
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
  // Route schemas are zod: they validate (errors named in toProblem) and document; responses are
  // documented, and sent as they are.
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));

  const deadline = <T>(fn: () => Promise<T>) => client.withDeadline(Date.now() + config.RBM_GUARD_API_TIMEOUT_MS, fn);

  // Before any route exists: each one the router will match gets the key check in its own lifecycle
  // (and the per-key rate limit), unless it is public.
  app.addHook('onRoute', (route) => {
    const open = isPublicPath(route.url);
    // Once per method and path (the actions of `POST /v1/guards/{id}:action` are routes of one path).
    for (const method of [route.method].flat()) {
      if (!routes.some((r) => r.method === method && r.url === route.url)) routes.push({ method, url: route.url, public: open });
    }
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
    // `{id}:cancel` and `{id}:extend` share a router path: each is its own operation in the document
    // (`::` is how the document's path template spells a literal `:`).
    transform: (input) => {
      const transformed = jsonSchemaTransform(input);
      const action = input.route.constraints?.[GUARD_ACTION];
      return typeof action === 'string' ? { ...transformed, url: `${GUARDS}/{id}::${action}` } : transformed;
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  await app.register(rateLimit, {
    global: true, // every keyed route; public ones opt out in the onRoute hook above
    // After auth (the limit is per key, and a refused key spends nobody's budget), before the route
    // schemas: a request they refuse spends its key's budget too.
    hook: 'preValidation',
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

  const api = app.withTypeProvider<ZodTypeProvider>();
  api.post(
    GUARDS,
    {
      schema: {
        summary: 'Track a sent message: start its guard (idempotent)',
        description:
          '201: this call started the guard (or gave a guard an early RBM event started its message). 200: the same message again — ' +
          'the body, resolved as of the first track, gives the message the guard holds (a resent staleIn without sentAt keeps the first deadline). ' +
          '409: a guard for this agent and message id holds a different message.',
        body: trackRequestSchema,
        response: { 201: jsonResponse('started', trackResultSchema), 200: jsonResponse('the same message again', trackResultSchema), 409: problemResponse('the same message id with a different body'), ...errors },
      },
    },
    async (request, reply) => {
      const body = request.body;
      // The library owns "the same message" (client/same-message.ts): a different one is a 409.
      const result = await deadline(() => guards.track(body)).catch((err: unknown) => {
        if (!(err instanceof DifferentMessageError)) throw err;
        throw problemError('conflict', {
          detail: err.differences ? 'a guard for this message id holds a different message (phone, text, deadline, traffic type, policy or TTL)' : 'this message id was guarded before, and that guard\u2019s history is gone',
          workflowId: err.workflowId,
        });
      });
      const href = `${GUARDS}/${encodeURIComponent(result.workflowId)}`;
      const { created } = result;
      if (created) reply.code(201).header('Location', href);
      return { workflowId: result.workflowId, runId: result.runId, created, alreadyClosed: result.alreadyClosed, href };
    },
  );

  api.get(
    `${GUARDS}/:id`,
    { schema: { summary: 'A guard\u2019s state, outcome and timeline', params: idParam, response: { 200: jsonResponse('status', guardStatusSchema), 404: problemResponse('no such guard'), ...errors } } },
    async (request) => {
      const id = guardIdOf(request);
      return deadline(() => guards.status(id)).catch((err: unknown) => notFoundAs(err, id));
    },
  );

  // `{id}:cancel` and `{id}:extend` are one router path told apart by the action after the id
  // (GUARD_ACTION), so each has its own body schema.
  const afterAction = { 200: jsonResponse('the guard\u2019s status after it', guardStatusSchema), 404: problemResponse('no such guard'), 409: problemResponse('the guard is closed, or refused the change'), ...errors };
  api.post(
    `${GUARDS}/:id`,
    {
      constraints: { [GUARD_ACTION]: 'cancel' },
      // No body reaches the schema as null (Fastify's rule): a cancel without a reason.
      schema: { summary: '`{id}:cancel` (body {reason?}, or none)', params: idParam, body: cancelRequestSchema.strict().nullable(), response: afterAction },
    },
    async (request) => {
      const id = actionIdOf(request);
      return deadline(() => guards.cancel(id, request.body?.reason)).catch((err: unknown) => notFoundAs(err, id));
    },
  );
  api.post(
    `${GUARDS}/:id`,
    {
      constraints: { [GUARD_ACTION]: 'extend' },
      schema: { summary: '`{id}:extend` (body {staleAt})', params: idParam, body: extendRequestSchema.strict(), response: afterAction },
    },
    async (request) => {
      const id = actionIdOf(request);
      return deadline(() => guards.extend(id, request.body.staleAt)).catch((err: unknown) => notFoundAs(err, id));
    },
  );
  // Any other action, or none: a 404 that names the two.
  api.post(`${GUARDS}/:id`, { schema: { hide: true } }, async () => {
    throw problemError('not-found', { detail: 'POST /v1/guards/{id}:cancel or /v1/guards/{id}:extend' });
  });

  api.get(
    GUARDS,
    {
      schema: {
        summary: 'Guards, newest first, filtered by state, outcome, agent; paginated with nextPageToken',
        querystring: listQuerySchema,
        response: { 200: jsonResponse('one page', listResultSchema), ...errors },
      },
    },
    async (request) => {
      const q = request.query;
      const pageToken = q.pageToken === undefined ? null : tokens.open(q.pageToken);
      if (pageToken === undefined) {
        throw problemError('validation', { errors: [{ field: 'query.pageToken', message: 'not a nextPageToken this API gave: pass the previous page\u2019s, unchanged (tokens end with a key rotation)' }] });
      }
      const page = await deadline(() =>
        guards.listPage(
          { state: q.state, outcome: q.outcome, agentId: q.agentId, open: q.open },
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
  return pathOfUrl(request.raw.url ?? '');
}

function pathOfUrl(url: string): string {
  const raw = url.split('?')[0]!;
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
  if (hasZodFastifySchemaValidationErrors(error)) return schemaErrors(error.validation, error.validationContext);
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

/** Where a route schema found the errors, as the problem names its fields. */
const FIELD_PREFIX = { body: 'body', querystring: 'query', params: 'path', headers: 'headers' } as const;
type RequestPart = NonNullable<FastifyError['validationContext']>;

/**
 * A route schema's errors (fastify-type-provider-zod's), each named as GuardClient names a field
 * (ValidationError.fromZod): `body.policy.graceMs`, `query.pageSize`; a body that is not an object
 * (an array, null, none at all) is one error naming the body.
 */
function schemaErrors(validation: readonly ZodFastifySchemaValidationError[], context: RequestPart = 'body'): ProblemError {
  const issues = validation.map((v) => {
    const path = v.instancePath.split('/').slice(1).filter((key) => key !== '');
    const notObject = path.length === 0 && v.keyword === 'invalid_type' && v.params.expected === 'object';
    return { path, message: notObject ? 'must be a JSON object' : (v.message ?? 'not valid') };
  });
  return fieldErrors(ValidationError.fromZod({ issues }), FIELD_PREFIX[context]);
}

function fieldErrors(err: ValidationError, where: (typeof FIELD_PREFIX)[RequestPart]): ProblemError {
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

/** A router constraint's store: one route per value. */
function storeByValue<Store>(): { get(value: string): Store | null; set(value: string, store: Store): void } {
  const byValue = new Map<string, Store>();
  return { get: (value) => byValue.get(value) ?? null, set: (value, store) => void byValue.set(value, store) };
}

/** What follows the last unencoded `:` of a URL's last path segment (`cancel` of `…/{id}:cancel`), if any. */
function actionOf(url: string): string | undefined {
  const segment = pathOfUrl(url).split('/').at(-1)!;
  const colon = segment.lastIndexOf(':');
  return colon < 0 ? undefined : segment.slice(colon + 1);
}

/** The guard id of `POST /v1/guards/{id}:action`: the segment before its last `:`, decoded. */
function actionIdOf(request: FastifyRequest): string {
  const raw = rawSegment(request);
  return decodeId(raw.slice(0, raw.lastIndexOf(':')));
}
