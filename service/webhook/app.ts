// The RBM webhook as an HTTP app: the verification handshake, the X-Goog-Signature check, the
// Pub/Sub envelope, and RBM events → signals to each message's guard. It never listens itself
// (server.ts does), so tests can drive it with inject() and the process owns the port.
//
// Every status it answers is chosen for Pub/Sub's delivery contract: anything but 200 is retried
// for up to 7 days. So 200 means "Temporal has the signal" (or "deliberately ignored"), 503 means
// "Temporal is down or slow, send it again", and 4xx means "this request can never succeed".
import { createHmac } from 'node:crypto';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyReply } from 'fastify';
import { Registry } from 'prom-client';
import { WorkflowExecutionAlreadyStartedError, type Client } from '@temporalio/client';
import { ConfigError, type Config } from '../../config/index.ts';
import { agentDirectory } from '../../config/agents.ts';
import { createLogger, REDACT_PATHS, type Logger } from '../../config/logger.ts';
import { guardWorkflowId, normalizeAgentId } from '../../workflows/contract.ts';
import { causeOf, grpcCode, grpcCodeName, TRANSIENT_GRPC_CODES } from '../../client/temporal-errors.ts';
import { signalGuardEvent } from '../../client/start-options.ts';
import { classifyEvent, eventAgentId, routeRequest, webhookTypeOf, type Classified } from './classify.ts';
import { handleLateEvent } from '../../client/late-records.ts';
import { fastifyClientError, HttpError } from '../http-error.ts';
import { digest, firstMatch } from '../secrets.ts';
import { createMetrics } from './metrics.ts';

export const EVENTS_PATH = '/rbm/events';

export type WebhookConfig = Pick<
  Config,
  | 'RBM_CLIENT_TOKEN'
  | 'RBM_AGENTS_FILE'
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
  /** Registry the webhook's metrics are registered in (server.ts serves it on its own port). Defaults to a new one. */
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



export function buildWebhookApp(options: WebhookAppOptions): FastifyInstance {
  const { client, config } = options;
  // Each agent's events are signed with its own partner's token(s) (RBM_AGENTS_FILE); without the
  // file, RBM_CLIENT_TOKEN's tokens sign every agent's.
  const directory = agentDirectory(config);
  const tokens = directory.allClientTokens;
  if (tokens.length === 0) {
    throw new ConfigError([{ variable: 'RBM_CLIENT_TOKEN', message: 'required by the webhook adapter' }]);
  }
  const keysOf = new Map<readonly string[], Buffer[]>();
  /** The HMAC keys that may sign an event of this agent; undefined: the agent is not configured. */
  const signingKeys = (agentId: string | undefined): Buffer[] | undefined => {
    // An event that names no agent (and no RBM_AGENT_ID) reaches no guard: any partner may have sent it.
    const candidates = agentId === undefined ? tokens : directory.lookup(agentId)?.clientTokens;
    if (!candidates) return undefined;
    let keys = keysOf.get(candidates);
    if (!keys) keysOf.set(candidates, (keys = candidates.map((t) => Buffer.from(t, 'utf8'))));
    return keys;
  };
  // The verification handshake names no agent: any configured partner's token is accepted.
  const tokenHashes = tokens.map(digest);
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
    if (error instanceof HttpError) {
      metrics.rejected.inc({ reason: error.code });
      request.log.info({ code: error.code, status }, 'request rejected');
      return reply.code(status).send({ error: error.code, message: error.message });
    }
    if (status >= 400 && status < 500) {
      // Fastify's own 4xx (body parsing, size, content type). Its messages can quote the body, so
      // answer with a fixed text per status and log only the code.
      const { answer } = fastifyClientError(status);
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
    // Routed on X-Goog-Webhook-Type when present; the verification request is known by its body too.
    const webhookType = webhookTypeOf(request.headers['x-goog-webhook-type']);
    metrics.webhookTypes.inc({ webhook_type: webhookType });
    const route = routeRequest(request.body, webhookType);
    if (route.kind === 'invalid') throw new HttpError(route.status, route.code, route.message);
    if (route.kind === 'verification') return handshake(route.clientToken, route.secret, reply);

    verifySignature(request.headers['x-goog-signature'], route.data, eventAgentId(route.data) ?? fallbackAgentId);

    // Signed from here on: RBM sent it, so nothing below is a 4xx (Pub/Sub would retry it for 7 days).
    const event = classifyEvent({ envelope: route.envelope, data: route.data, webhookType, fallbackAgentId });
    if (event.kind === 'unroutable') {
      metrics.unroutable.inc({ reason: event.reason });
      metrics.events.inc({ event_type: 'UNKNOWN', result: 'unroutable' });
      request.log.warn({ reason: event.reason, detail: event.message, webhookType }, 'signed event no guard can take: acknowledged');
      return reply.code(200).send({ status: 'unroutable', reason: event.reason, message: event.message });
    }
    if (event.kind === 'ignored') {
      metrics.events.inc({ event_type: event.what, result: 'ignored' });
      request.log.debug({ what: event.what }, 'event ignored');
      return reply.code(200).send({ status: 'ignored', what: event.what });
    }
    return deliver(event, reply);
  });

  function handshake(clientToken: string, secret: string, reply: FastifyReply) {
    const offered = digest(clientToken);
    // Compare against every token without stopping early: no timing hint of which one matched.
    const ok = firstMatch(offered, tokenHashes, (h) => h) !== undefined;
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

  function verifySignature(header: string | string[] | undefined, data: Buffer, agentId: string | undefined): void {
    const value = Array.isArray(header) ? header[0] : header;
    if (!value) {
      metrics.signaturesRejected.inc({ reason: 'missing' });
      throw new HttpError(401, 'signature_missing', 'X-Goog-Signature is missing');
    }
    const keys = signingKeys(agentId);
    if (!keys) {
      // Answered like a bad signature: no configured partner may speak for this agent.
      metrics.signaturesRejected.inc({ reason: 'unknown_agent' });
      throw new HttpError(401, 'unknown_agent', `agent ${JSON.stringify((agentId ?? '').slice(0, 128))} is not in the agents file (RBM_AGENTS_FILE): no client token to check its signature`);
    }
    const offered = Buffer.from(value.trim(), 'base64');
    // Every candidate token is compared, without stopping early: no timing hint of which one matched.
    const ok = firstMatch(offered, keys, (key) => createHmac('sha512', key).update(data).digest()) !== undefined;
    if (!ok) {
      metrics.signaturesRejected.inc({ reason: 'invalid' });
      throw new HttpError(401, 'signature_invalid', directory.file ? `X-Goog-Signature does not match the client token of agent ${agentId === undefined ? '(none named)' : JSON.stringify(agentId)}'s partner` : 'X-Goog-Signature does not match any client token');
    }
  }

  async function deliver(event: Extract<Classified, { kind: 'guard' }>, reply: FastifyReply) {
    const workflowId = guardWorkflowId(event.agentId, event.messageId);
    // Fields for this event's log lines (no per-event child logger: creating one costs more than the lines).
    const ids = { eventType: event.eventType, eventId: event.signal.eventId, workflowId };
    const log = reply.log;
    // Nothing here can postpone a guard's windows: an existing guard only gets the signal (its input
    // and orphan window were fixed at its start), and a duplicate is the same eventId, dropped by the guard.
    const deadline = () => Date.now() + signalTimeoutMs;
    const started = performance.now();
    try {
      await client.withDeadline(deadline(), () => signalGuardEvent(client, config.TEMPORAL_TASK_QUEUE, event, config.WEBHOOK_ORPHAN_AFTER_MS));
    } catch (err) {
      if (!causeOf(err, WorkflowExecutionAlreadyStartedError)) return failed(err, reply, ids, 'signal');
      try {
        const answer = await client.withDeadline(deadline(), () =>
          handleLateEvent({ client, taskQueue: config.TEMPORAL_TASK_QUEUE, metrics, log }, { ...event, workflowId }),
        );
        return reply.code(200).send(answer);
      } catch (lateErr) {
        return failed(lateErr, reply, ids, 'late');
      }
    } finally {
      metrics.signalSeconds.observe((performance.now() - started) / 1000);
    }
    metrics.events.inc({ event_type: event.eventType, result: 'signalled' });
    log.debug(ids, 'event signalled');
    return reply.code(200).send({ status: 'signalled', workflowId });
  }

  /** Temporal did not take the event: 503 (RBM retries) when that may pass, else 500. */
  function failed(err: unknown, reply: FastifyReply, ids: Record<string, string>, step: 'signal' | 'late') {
    const log = reply.log;
    const code = grpcCode(err);
    const transient = code === undefined || TRANSIENT_GRPC_CODES.has(code);
    metrics.signalsFailed.inc({ reason: code === undefined ? 'unknown' : grpcCodeName(code) });
    metrics.events.inc({ event_type: ids.eventType ?? 'UNKNOWN', result: 'failed' });
    if (transient) {
      log.warn({ ...ids, grpcCode: code, step }, 'Temporal did not take the event in time: answering 503 so RBM retries');
      return reply
        .code(503)
        .header('retry-after', '5')
        .send({ error: 'temporal_unavailable', message: 'the event could not be recorded now; retry' });
    }
    log.error({ ...ids, grpcCode: code, step, err }, 'Temporal refused the event');
    return reply.code(500).send({ error: 'signal_failed', message: 'the event could not be recorded' });
  }

  return app;
}

