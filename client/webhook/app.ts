// The RBM webhook as an HTTP app: the verification handshake, the X-Goog-Signature check, the
// Pub/Sub envelope, and RBM events → signals to each message's guard. It never listens itself
// (server.ts does), so tests can drive it with inject() and the process owns the port.
//
// Every status it answers is chosen for Pub/Sub's delivery contract: anything but 200 is retried
// for up to 7 days. So 200 means "Temporal has the signal" (or "deliberately ignored"), 503 means
// "Temporal is down or slow, send it again", and 4xx means "this request can never succeed".
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyReply } from 'fastify';
import { Counter, Histogram, Registry } from 'prom-client';
import { z } from 'zod';
import { isGrpcServiceError, WorkflowExecutionAlreadyStartedError, type Client } from '@temporalio/client';
import { WorkflowIdReusePolicy } from '@temporalio/common';
import { clientTokens, ConfigError, type Config } from '../../config/index.ts';
import { createLogger, REDACT_PATHS, type Logger } from '../../config/logger.ts';
import {
  eventSignals,
  guardWorkflowId,
  isGuardEventType,
  SA,
  WORKFLOW_TYPE,
  type GuardEventType,
  type GuardInput,
  type RbmEventSignal,
  normalizeAgentId,
} from '../../workflows/contract.ts';

export const EVENTS_PATH = '/rbm/events';

/** RBM event types that are acknowledged and ignored: they say nothing about a message's delivery. */
export const IGNORED_EVENT_TYPES = ['IS_TYPING', 'SUBSCRIBE', 'UNSUBSCRIBE'] as const;

export type WebhookConfig = Pick<
  Config,
  | 'RBM_CLIENT_TOKEN'
  | 'RBM_AGENT_ID'
  | 'TEMPORAL_TASK_QUEUE'
  | 'WEBHOOK_BODY_LIMIT_BYTES'
  | 'WEBHOOK_ORPHAN_AFTER_MS'
  | 'LOG_LEVEL'
>;

export interface WebhookAppOptions {
  /** A connected Temporal client; the app never closes it (its owner does). */
  client: Client;
  config: WebhookConfig;
  /** Defaults to config/logger.ts's logger at LOG_LEVEL. Phone numbers are redacted either way. */
  logger?: Logger;
  /** Registry the webhook's metrics are registered in (and served at /metrics). Defaults to a new one. */
  metrics?: Registry;
  /** Deadline for Temporal to accept a signal before the event is answered 503. Default 5 s. */
  signalTimeoutMs?: number;
  /** Deadline for the readiness probe's call to Temporal. Default 2 s. */
  readyTimeoutMs?: number;
}

/** base64(HMAC-SHA512(key = clientToken as UTF-8, message = the decoded bytes of message.data)). */
export function rbmSignature(clientToken: string, data: Buffer): string {
  return createHmac('sha512', Buffer.from(clientToken, 'utf8')).update(data).digest('base64');
}

// ---------------------------------------------------------------------------------------------
// Schemas: the schema is the type.

/**
 * A Pub/Sub push. `messageId`/`publishTime` may come camelCase, snake_case, or both. Only `data`
 * is required: an odd value elsewhere is dropped, never a reason to refuse a signed event.
 */
export const pushEnvelopeSchema = z.object({
  message: z.object({
    data: z.string().min(1, 'message.data is empty'),
    attributes: z.record(z.string(), z.unknown()).optional().catch(undefined),
    messageId: z.string().min(1).optional().catch(undefined),
    message_id: z.string().min(1).optional().catch(undefined),
    publishTime: z.string().optional().catch(undefined),
    publish_time: z.string().optional().catch(undefined),
  }),
  subscription: z.string().optional().catch(undefined),
});
export type PushEnvelope = z.infer<typeof pushEnvelopeSchema>;

/** RBM's URL-verification request. */
export const verificationSchema = z.object({ clientToken: z.string(), secret: z.string() });

const optionalString = z.string().min(1).optional().catch(undefined);
const eventFields = {
  agentId: optionalString,
  eventId: optionalString,
  messageId: optionalString,
  sendTime: optionalString,
};

/** User event (DELIVERED, READ, IS_TYPING, SUBSCRIBE, UNSUBSCRIBE): the phone is `senderPhoneNumber`. */
export const userEventSchema = z.object({
  ...eventFields,
  eventType: z.string().min(1),
  senderPhoneNumber: z.string(),
});
/** Server event (TTL_EXPIRATION_REVOKED / _REVOKE_FAILED): the phone is `phoneNumber`. */
export const serverEventSchema = z.object({
  ...eventFields,
  eventType: z.string().min(1),
  phoneNumber: z.string(),
});
/** An event whose phone field is missing or differently named: still an event, we never use the phone. */
const anyEventSchema = z.object({ ...eventFields, eventType: z.string().min(1) });
export const rbmEventSchema = z.union([userEventSchema, serverEventSchema, anyEventSchema]);
export type RbmEvent = z.infer<typeof rbmEventSchema>;

/** A message the user typed, a file, a location or a suggestion tap: not delivery news. */
export const userMessageSchema = z
  .object({
    ...eventFields,
    text: z.unknown().optional(),
    userFile: z.unknown().optional(),
    location: z.unknown().optional(),
    suggestionResponse: z.unknown().optional(),
  })
  .refine(
    (m) => m.text !== undefined || m.userFile !== undefined || m.location !== undefined || m.suggestionResponse !== undefined,
    'not a user message',
  );

// ---------------------------------------------------------------------------------------------

/** What one push turned into, after its signature was checked. */
type Classified =
  | { kind: 'guard'; eventType: GuardEventType; agentId: string; messageId: string; signal: RbmEventSignal }
  | { kind: 'ignored'; what: string }
  | { kind: 'invalid'; code: string; message: string };

/** A 4xx answer: the request can never succeed as sent. */
class BadRequest extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** Strict base64 (standard or URL-safe alphabet, padding optional); null when it isn't base64. */
export function decodeBase64(value: string): Buffer | null {
  const normalized = value.replace(/-/g, '+').replace(/_/g, '/').replace(/=+$/, '');
  if (!/^[A-Za-z0-9+/]*$/.test(normalized) || normalized.length % 4 === 1) return null;
  const bytes = Buffer.from(normalized, 'base64');
  // Round-trip: rejects stray padding in the middle and non-canonical trailing bits.
  return bytes.toString('base64').replace(/=+$/, '') === normalized ? bytes : null;
}

function safeEqual(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

function sha256(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}

export function buildWebhookApp(options: WebhookAppOptions): FastifyInstance {
  const { client, config } = options;
  const tokens = clientTokens(config);
  if (tokens.length === 0) {
    throw new ConfigError([{ variable: 'RBM_CLIENT_TOKEN', message: 'required by the webhook adapter' }]);
  }
  const tokenKeys = tokens.map((t) => Buffer.from(t, 'utf8'));
  const tokenHashes = tokens.map(sha256);
  const signalTimeoutMs = options.signalTimeoutMs ?? 5_000;
  const readyTimeoutMs = options.readyTimeoutMs ?? 2_000;
  const fallbackAgentId = config.RBM_AGENT_ID ? normalizeAgentId(config.RBM_AGENT_ID) : undefined;

  const baseLogger = options.logger ?? createLogger(config);
  // A child with the project's redaction: even a caller's own logger never prints a phone number from here.
  const logger = baseLogger.child(
    { component: 'webhook' },
    { redact: { paths: REDACT_PATHS, censor: '[redacted]' } },
  );

  const registry = options.metrics ?? new Registry();
  const metrics = createMetrics(registry);

  const fastifyLogger: FastifyBaseLogger = logger;
  const app = Fastify({
    loggerInstance: fastifyLogger,
    bodyLimit: config.WEBHOOK_BODY_LIMIT_BYTES,
    // One log line per event (below) instead of two per request: a webhook is high-volume.
    logController: new LogController({ disableRequestLogging: true }),
    // Longer than the signal deadline, so a slow Temporal gets a 503 rather than a dropped socket.
    requestTimeout: signalTimeoutMs + 10_000,
    return503OnClosing: true,
  });

  // JSON only: Pub/Sub pushes application/json. Fastify's text/plain parser would let a plain-text
  // body through to the schema; without it a wrong content type is a clear 415.
  app.removeContentTypeParser('text/plain');

  app.setErrorHandler((error: FastifyError, request, reply) => {
    const status = error.statusCode ?? 500;
    if (error instanceof BadRequest) {
      metrics.rejected.inc({ reason: error.code });
      request.log.info({ code: error.code, status }, 'request rejected');
      return reply.code(status).send({ error: error.code, message: error.message });
    }
    if (status >= 400 && status < 500) {
      // Fastify's own 4xx (body parsing, size, content type). Its messages can quote the body, so
      // answer with a fixed text per status and log only the code.
      const answer = CLIENT_ERRORS[status] ?? { error: 'bad_request', message: 'the request was rejected' };
      metrics.rejected.inc({ reason: answer.error });
      request.log.info({ code: error.code, status }, 'request rejected');
      return reply.code(status).send(answer);
    }
    request.log.error({ err: error }, 'unhandled error');
    return reply.code(500).send({ error: 'internal_error', message: 'internal error' });
  });

  app.setNotFoundHandler((_request, reply) =>
    reply.code(404).send({ error: 'not_found', message: `no such route; RBM events go to POST ${EVENTS_PATH}` }),
  );

  app.addHook('onResponse', async (request, reply) => {
    if (request.routeOptions.url === EVENTS_PATH && request.method === 'POST') {
      metrics.ackSeconds.observe({ status: String(reply.statusCode) }, reply.elapsedTime / 1000);
    }
  });

  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/readyz', async (request, reply) => {
    try {
      await client.withDeadline(Date.now() + readyTimeoutMs, () => client.workflowService.getSystemInfo({}));
      return { status: 'ready' };
    } catch (err) {
      request.log.warn({ grpcCode: grpcCode(err) }, 'readiness: Temporal unreachable');
      return reply.code(503).send({ status: 'unavailable', message: 'Temporal is not reachable' });
    }
  });

  app.get('/metrics', async (_request, reply) => {
    const body = await registry.metrics();
    return reply.type(registry.contentType).send(body);
  });

  app.route({
    method: ['GET', 'PUT', 'DELETE', 'PATCH'],
    url: EVENTS_PATH,
    handler: async (_request, reply) =>
      reply
        .code(405)
        .header('allow', 'POST')
        .send({ error: 'method_not_allowed', message: `${EVENTS_PATH} accepts POST only` }),
  });

  app.post(EVENTS_PATH, async (request, reply) => {
    const body: unknown = request.body;
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      throw new BadRequest(400, 'not_an_object', 'expected a JSON object: a Pub/Sub push or a verification request');
    }

    if (!('message' in body)) {
      const verification = verificationSchema.safeParse(body);
      if (!verification.success) {
        throw new BadRequest(400, 'no_message', 'expected a Pub/Sub push ({"message":{"data":…}}) or {clientToken, secret}');
      }
      return handshake(verification.data.clientToken, verification.data.secret, reply);
    }

    const envelope = pushEnvelopeSchema.safeParse(body);
    if (!envelope.success) {
      throw new BadRequest(400, 'bad_envelope', `not a Pub/Sub push: ${describeIssue(envelope.error)}`);
    }
    const data = decodeBase64(envelope.data.message.data);
    if (!data) throw new BadRequest(400, 'data_not_base64', 'message.data is not base64');

    verifySignature(request.headers['x-goog-signature'], data);

    let decoded: unknown;
    try {
      decoded = JSON.parse(data.toString('utf8'));
    } catch {
      throw new BadRequest(400, 'data_not_json', 'message.data does not decode to JSON');
    }

    const event = classify(envelope.data, decoded);
    if (event.kind === 'invalid') throw new BadRequest(400, event.code, event.message);
    if (event.kind === 'ignored') {
      metrics.events.inc({ event_type: event.what, result: 'ignored' });
      request.log.debug({ what: event.what }, 'event ignored');
      return reply.code(200).send({ status: 'ignored', what: event.what });
    }
    return deliver(event, reply);
  });

  function handshake(clientToken: string, secret: string, reply: FastifyReply) {
    const offered = sha256(clientToken);
    // Compare against every token without stopping early: no timing hint of which one matched.
    const ok = tokenHashes.reduce((found, hash) => safeEqual(hash, offered) || found, false);
    metrics.handshakes.inc({ result: ok ? 'accepted' : 'rejected' });
    if (!ok) {
      reply.log.warn('verification handshake with an unknown clientToken');
      return reply.code(403).send({ error: 'forbidden', message: 'clientToken does not match' });
    }
    reply.log.info('verification handshake accepted');
    // The documented answer: the plain secret. nosniff keeps a browser from reading it as HTML.
    return reply
      .code(200)
      .type('text/plain; charset=utf-8')
      .header('x-content-type-options', 'nosniff')
      .header('cache-control', 'no-store')
      .send(secret);
  }

  function verifySignature(header: string | string[] | undefined, data: Buffer): void {
    const value = Array.isArray(header) ? header[0] : header;
    if (!value) {
      metrics.signaturesRejected.inc({ reason: 'missing' });
      throw new BadRequest(401, 'signature_missing', 'X-Goog-Signature is missing');
    }
    const offered = Buffer.from(value.trim(), 'base64');
    const ok = tokenKeys.reduce(
      (found, key) => safeEqual(createHmac('sha512', key).update(data).digest(), offered) || found,
      false,
    );
    if (!ok) {
      metrics.signaturesRejected.inc({ reason: 'invalid' });
      throw new BadRequest(401, 'signature_invalid', 'X-Goog-Signature does not match any client token');
    }
  }

  function classify(envelope: PushEnvelope, decoded: unknown): Classified {
    if (envelope.message.attributes?.type === 'agent_launch_event') return { kind: 'ignored', what: 'AGENT_LAUNCH_EVENT' };
    if (typeof decoded !== 'object' || decoded === null || Array.isArray(decoded)) {
      return { kind: 'invalid', code: 'data_not_object', message: 'message.data is not a JSON object' };
    }
    if (!('eventType' in decoded)) {
      if (userMessageSchema.safeParse(decoded).success) return { kind: 'ignored', what: 'USER_MESSAGE' };
      if ('agentLaunchEvent' in decoded) return { kind: 'ignored', what: 'AGENT_LAUNCH_EVENT' };
      return { kind: 'invalid', code: 'unknown_payload', message: 'message.data is neither an event nor a user message' };
    }
    const parsed = rbmEventSchema.safeParse(decoded);
    if (!parsed.success) {
      return { kind: 'invalid', code: 'bad_event', message: `bad event: ${describeIssue(parsed.error)}` };
    }
    const event = parsed.data;
    if ((IGNORED_EVENT_TYPES as readonly string[]).includes(event.eventType)) {
      return { kind: 'ignored', what: event.eventType };
    }
    if (!isGuardEventType(event.eventType)) {
      return { kind: 'invalid', code: 'unknown_event_type', message: `unknown eventType ${JSON.stringify(event.eventType.slice(0, 64))}` };
    }
    const messageId = event.messageId?.trim();
    if (!messageId) {
      return { kind: 'invalid', code: 'missing_message_id', message: `${event.eventType} without a messageId` };
    }
    if (!MESSAGE_ID.test(messageId)) {
      return { kind: 'invalid', code: 'bad_message_id', message: 'messageId is over 256 characters or holds control characters' };
    }
    const agentId = event.agentId ? normalizeAgentId(event.agentId) : fallbackAgentId;
    if (!agentId) {
      return { kind: 'invalid', code: 'missing_agent_id', message: `${event.eventType} without an agentId` };
    }
    if (!AGENT_ID.test(agentId)) {
      return { kind: 'invalid', code: 'bad_agent_id', message: 'agentId must be 1-128 letters, digits and . _ @ -' };
    }
    // eventId is how the guard drops duplicates. Pub/Sub's own message id is stable across its
    // retries of one push, so it stands in when RBM sent none.
    const pubsubId = envelope.message.messageId ?? envelope.message.message_id;
    const eventId = event.eventId ?? (pubsubId ? `pubsub:${pubsubId}` : undefined);
    if (!eventId) {
      return { kind: 'invalid', code: 'missing_event_id', message: `${event.eventType} without an eventId` };
    }
    const signal: RbmEventSignal = event.sendTime ? { eventId, sendTime: event.sendTime } : { eventId };
    return { kind: 'guard', eventType: event.eventType, agentId, messageId, signal };
  }

  async function deliver(event: Extract<Classified, { kind: 'guard' }>, reply: FastifyReply) {
    const workflowId = guardWorkflowId(event.agentId, event.messageId);
    // Fields for this event's log lines (no per-event child logger: creating one costs more than the lines).
    const ids = { eventType: event.eventType, eventId: event.signal.eventId, workflowId };
    const log = reply.log;
    const input: GuardInput = {
      agentId: event.agentId,
      messageId: event.messageId,
      orphanAfterMs: config.WEBHOOK_ORPHAN_AFTER_MS,
    };
    const started = performance.now();
    try {
      await client.withDeadline(Date.now() + signalTimeoutMs, () =>
        client.workflow.signalWithStart(WORKFLOW_TYPE, {
          workflowId,
          taskQueue: config.TEMPORAL_TASK_QUEUE,
          args: [input],
          signal: eventSignals[event.eventType],
          signalArgs: [event.signal],
          // A closed guard is never reopened: the event is late, and is answered 200 below.
          workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
          typedSearchAttributes: [
            { key: SA.agentId, value: event.agentId },
            { key: SA.state, value: 'AWAITING_TRACK' },
          ],
        }),
      );
    } catch (err) {
      if (err instanceof WorkflowExecutionAlreadyStartedError) {
        metrics.events.inc({ event_type: event.eventType, result: 'late' });
        metrics.lateEvents.inc({ event_type: event.eventType });
        log.info(ids, 'late event: the guard already closed');
        return reply.code(200).send({ status: 'late', workflowId });
      }
      const code = grpcCode(err);
      const transient = code === undefined || TRANSIENT_GRPC_CODES.has(code);
      metrics.signalsFailed.inc({ reason: code === undefined ? 'unknown' : (GRPC_CODE_NAMES[code] ?? String(code)) });
      metrics.events.inc({ event_type: event.eventType, result: 'failed' });
      if (transient) {
        log.warn({ ...ids, grpcCode: code }, 'Temporal did not accept the signal in time: answering 503 so RBM retries');
        return reply
          .code(503)
          .header('retry-after', '5')
          .send({ error: 'temporal_unavailable', message: 'the event could not be recorded now; retry' });
      }
      log.error({ ...ids, grpcCode: code, err }, 'Temporal refused the signal');
      return reply.code(500).send({ error: 'signal_failed', message: 'the event could not be recorded' });
    } finally {
      metrics.signalSeconds.observe((performance.now() - started) / 1000);
    }
    metrics.events.inc({ event_type: event.eventType, result: 'signalled' });
    log.debug(ids, 'event signalled');
    return reply.code(200).send({ status: 'signalled', workflowId });
  }

  return app;
}

// ---------------------------------------------------------------------------------------------

// The ids a guard can be tracked under (client/track-input.ts accepts the same): anything else could
// never meet a track, and Temporal refuses workflow ids over 1000 bytes.
const AGENT_ID = /^[A-Za-z0-9._@-]{1,128}$/;
const MESSAGE_ID = /^[^\u0000-\u001f\u007f]{1,256}$/u;

const CLIENT_ERRORS: Record<number, { error: string; message: string }> = {
  400: { error: 'bad_request', message: 'the body is not valid JSON' },
  413: { error: 'body_too_large', message: 'the body is over the size limit' },
  415: { error: 'unsupported_media_type', message: 'expected Content-Type: application/json' },
};

// gRPC status codes that mean "try again later" (Temporal down, overloaded, slow, restarting).
const GRPC_CODE_NAMES: Record<number, string> = {
  1: 'cancelled',
  2: 'unknown',
  3: 'invalid_argument',
  4: 'deadline_exceeded',
  5: 'not_found',
  7: 'permission_denied',
  8: 'resource_exhausted',
  9: 'failed_precondition',
  10: 'aborted',
  13: 'internal',
  14: 'unavailable',
  16: 'unauthenticated',
};
const TRANSIENT_GRPC_CODES = new Set([1, 2, 4, 8, 10, 13, 14]);

/** The gRPC status code of a client error (the SDK wraps it in a ServiceError's cause). */
function grpcCode(err: unknown): number | undefined {
  for (let e: unknown = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if (isGrpcServiceError(e)) return e.code;
  }
  return undefined;
}

function describeIssue(error: z.ZodError): string {
  const issue = error.issues[0];
  if (!issue) return 'invalid';
  return issue.path.length ? `${issue.path.join('.')}: ${issue.message}` : issue.message;
}

function createMetrics(registry: Registry) {
  const registers = [registry];
  return {
    events: new Counter({
      name: 'rbm_webhook_events_total',
      help: 'RBM events received with a valid signature, by type and result (signalled, ignored, late, failed)',
      labelNames: ['event_type', 'result'] as const,
      registers,
    }),
    signaturesRejected: new Counter({
      name: 'rbm_webhook_signatures_rejected_total',
      help: 'Pushes refused for a missing or wrong X-Goog-Signature',
      labelNames: ['reason'] as const,
      registers,
    }),
    signalsFailed: new Counter({
      name: 'rbm_webhook_signals_failed_total',
      help: 'Signals Temporal did not accept (answered 503/500 so RBM retries), by gRPC status',
      labelNames: ['reason'] as const,
      registers,
    }),
    lateEvents: new Counter({
      name: 'rbm_webhook_late_events_total',
      help: 'Events for a guard that had already closed: acknowledged, no new run',
      labelNames: ['event_type'] as const,
      registers,
    }),
    rejected: new Counter({
      name: 'rbm_webhook_requests_rejected_total',
      help: 'Requests answered 4xx, by reason',
      labelNames: ['reason'] as const,
      registers,
    }),
    handshakes: new Counter({
      name: 'rbm_webhook_handshakes_total',
      help: 'URL-verification handshakes, by result',
      labelNames: ['result'] as const,
      registers,
    }),
    ackSeconds: new Histogram({
      name: 'rbm_webhook_ack_seconds',
      help: 'Time from request to answer on POST /rbm/events, by status',
      labelNames: ['status'] as const,
      buckets: [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    signalSeconds: new Histogram({
      name: 'rbm_webhook_signal_seconds',
      help: 'Time Temporal took to accept (or refuse) a signal-with-start',
      buckets: [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    }),
  };
}
