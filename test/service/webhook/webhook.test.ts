// The webhook adapter against the suite's Temporal dev server: the handshake and every kind of bad
// input through inject(); signed events over a real port into signals, read back from each guard's
// history. No worker runs here, so guards stay open and their histories show exactly what arrived.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { pino, type Logger } from 'pino';
import { Registry } from 'prom-client';
import type { FastifyInstance, InjectOptions } from 'fastify';
import { Client, Connection, WorkflowNotFoundError } from '@temporalio/client';
import { defaultPayloadConverter, WorkflowIdReusePolicy } from '@temporalio/common';
import { loadConfig, type Config } from '../../../config/index.ts';
import { eventSignals, GUARD_RULES, guardWorkflowId, SA, WORKFLOW_TYPE, type GuardInput, type RbmEventSignal } from '../../../workflows/contract.ts';
import { buildWebhookApp, EVENTS_PATH, rbmSignature } from '../../../service/webhook/app.ts';
import { normalizeAgentId } from '../../../workflows/contract.ts';
import { startWebhookServer, WebhookStartError, type WebhookServer } from '../../../service/webhook/server.ts';

const TOKEN = 'token-current';
const OLD_TOKEN = 'token-previous';
const PHONE = '+15557654321';

function testConfig(overrides: Record<string, string> = {}): Config {
  return loadConfig({
    RBM_CLIENT_TOKEN: `${TOKEN}, ${OLD_TOKEN}`,
    TEMPORAL_TASK_QUEUE: `webhook-test-${randomUUID()}`,
    WEBHOOK_HOST: '127.0.0.1',
    WEBHOOK_PORT: '0',
    WEBHOOK_BODY_LIMIT_BYTES: '4096',
    WEBHOOK_ORPHAN_AFTER_MS: '600000',
    LOG_LEVEL: 'silent',
    ...overrides,
  });
}

/** A Pub/Sub push carrying `event`, signed the way RBM signs (or not, or with another token). */
function push(event: unknown, opts: { token?: string | null; attributes?: Record<string, string>; pubsubId?: string } = {}) {
  const data = Buffer.from(typeof event === 'string' ? event : JSON.stringify(event), 'utf8');
  const body = {
    message: {
      data: data.toString('base64'),
      attributes: opts.attributes ?? {},
      messageId: opts.pubsubId ?? String(Math.floor(Math.random() * 1e12)),
      publishTime: new Date().toISOString(),
    },
    subscription: 'projects/p/subscriptions/rbm',
  };
  const token = opts.token === undefined ? TOKEN : opts.token;
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (token !== null) headers['x-goog-signature'] = rbmSignature(token, data);
  return { body, headers };
}

function delivered(agentId: string, messageId: string, eventId: string = randomUUID(), eventType = 'DELIVERED') {
  return { senderPhoneNumber: PHONE, eventType, eventId, messageId, sendTime: new Date().toISOString(), agentId };
}

function serverEvent(agentId: string, messageId: string, eventType: string, eventId: string = randomUUID()) {
  return { phoneNumber: PHONE, agentId, messageId, eventType, eventId, sendTime: new Date().toISOString() };
}

/** Signals a guard's history holds: [signal name, its argument]. */
async function signalsOf(client: Client, workflowId: string): Promise<[string, RbmEventSignal][]> {
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  return (history.events ?? [])
    .map((e) => e.workflowExecutionSignaledEventAttributes)
    .filter((a) => a != null)
    .map((a) => [a.signalName ?? '', defaultPayloadConverter.fromPayload<RbmEventSignal>(a.input!.payloads![0]!)]);
}

async function startInput(client: Client, workflowId: string): Promise<GuardInput> {
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  const started = history.events?.[0]?.workflowExecutionStartedEventAttributes;
  return defaultPayloadConverter.fromPayload<GuardInput>(started!.input!.payloads![0]!);
}

async function metricValue(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of (await registry.metrics()).split('\n')) {
    if (!line.startsWith(name)) continue;
    const [series, value] = line.split(' ');
    if (series === name || (series?.startsWith(`${name}{`) && want.every((w) => series.includes(w)))) return Number(value);
  }
  return 0;
}

let client: Client;
beforeAll(async () => {
  client = new Client({ connection: await Connection.connect({ address: inject('temporalAddress') }) });
});
afterAll(async () => {
  await client?.connection.close();
});

describe('handshake and bad input (inject, no port)', () => {
  let app: FastifyInstance;
  const registry = new Registry();
  let signalWithStart: ReturnType<typeof vi.spyOn>;
  const logLines: string[] = [];

  beforeAll(async () => {
    const logger: Logger = pino({ level: 'debug' }, { write: (line: string) => void logLines.push(line) });
    app = buildWebhookApp({ client, config: testConfig(), logger, metrics: registry });
    await app.ready();
    signalWithStart = vi.spyOn(client.workflow, 'signalWithStart');
  });
  afterAll(async () => {
    signalWithStart.mockRestore();
    await app.close();
  });

  it('answers the verification handshake with the plain secret for any configured token', async () => {
    for (const token of [TOKEN, OLD_TOKEN]) {
      const res = await app.inject({ method: 'POST', url: EVENTS_PATH, payload: { clientToken: token, secret: 'the-secret-42' } });
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-type']).toMatch(/^text\/plain/);
      expect(res.body).toBe('the-secret-42');
    }
  });

  it('refuses a handshake with a wrong token (403) and touches nothing', async () => {
    const res = await app.inject({ method: 'POST', url: EVENTS_PATH, payload: { clientToken: 'nope', secret: 's' } });
    expect(res.statusCode).toBe(403);
    expect(res.body).not.toContain('s"');
    expect(res.json()).toMatchObject({ error: 'forbidden' });
    expect(signalWithStart).not.toHaveBeenCalled();
    expect(await metricValue(registry, 'rbm_webhook_handshakes_total', { result: 'rejected' })).toBe(1);
  });

  const agent = 'bad-input-agent';
  const cases: { name: string; status: number; error: string; req: () => InjectOptions }[] = [
    { name: 'not JSON', status: 400, error: 'bad_request', req: () => ({ method: 'POST', url: EVENTS_PATH, headers: { 'content-type': 'application/json' }, payload: '{"message": nope' }) },
    { name: 'an empty JSON body', status: 400, error: 'bad_request', req: () => ({ method: 'POST', url: EVENTS_PATH, headers: { 'content-type': 'application/json' }, payload: '' }) },
    { name: 'a JSON array', status: 400, error: 'not_an_object', req: () => ({ method: 'POST', url: EVENTS_PATH, payload: [1, 2] }) },
    { name: 'JSON null', status: 400, error: 'not_an_object', req: () => ({ method: 'POST', url: EVENTS_PATH, headers: { 'content-type': 'application/json' }, payload: 'null' }) },
    { name: 'JSON without message', status: 400, error: 'no_message', req: () => ({ method: 'POST', url: EVENTS_PATH, payload: { subscription: 's' } }) },
    { name: 'message without data', status: 400, error: 'bad_envelope', req: () => ({ method: 'POST', url: EVENTS_PATH, payload: { message: { messageId: '1' } } }) },
    { name: 'message that is a string', status: 400, error: 'bad_envelope', req: () => ({ method: 'POST', url: EVENTS_PATH, payload: { message: 'hi' } }) },
    { name: 'data not base64', status: 400, error: 'data_not_base64', req: () => ({ method: 'POST', url: EVENTS_PATH, payload: { message: { data: 'this is not base64!' } }, headers: { 'x-goog-signature': 'x' } }) },
    { name: 'a prototype-poisoning body', status: 400, error: 'bad_request', req: () => ({ method: 'POST', url: EVENTS_PATH, headers: { 'content-type': 'application/json' }, payload: '{"__proto__":{"x":1},"message":{"data":"e30="}}' }) },
    {
      name: 'a body over the size limit',
      status: 413,
      error: 'body_too_large',
      req: () => {
        const p = push({ ...delivered(agent, 'm2'), padding: 'x'.repeat(8000) });
        return { method: 'POST', url: EVENTS_PATH, payload: p.body, headers: p.headers };
      },
    },
    { name: 'text/plain', status: 415, error: 'unsupported_media_type', req: () => ({ method: 'POST', url: EVENTS_PATH, headers: { 'content-type': 'text/plain' }, payload: '{"message":{}}' }) },
    { name: 'a form body', status: 415, error: 'unsupported_media_type', req: () => ({ method: 'POST', url: EVENTS_PATH, headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: 'a=b' }) },
    { name: 'GET on the endpoint', status: 405, error: 'method_not_allowed', req: () => ({ method: 'GET', url: EVENTS_PATH }) },
    { name: 'PUT on the endpoint', status: 405, error: 'method_not_allowed', req: () => ({ method: 'PUT', url: EVENTS_PATH, payload: {} }) },
    { name: 'DELETE on the endpoint', status: 405, error: 'method_not_allowed', req: () => ({ method: 'DELETE', url: EVENTS_PATH }) },
    { name: 'an unknown route', status: 404, error: 'not_found', req: () => ({ method: 'POST', url: '/rbm/event', payload: {} }) },
    {
      name: 'an unsigned event',
      status: 401,
      error: 'signature_missing',
      req: () => {
        const p = push(delivered(agent, 'm3'), { token: null });
        return { method: 'POST', url: EVENTS_PATH, payload: p.body, headers: p.headers };
      },
    },
    {
      name: 'an event signed with an unknown token',
      status: 401,
      error: 'signature_invalid',
      req: () => {
        const p = push(delivered(agent, 'm4'), { token: 'attacker' });
        return { method: 'POST', url: EVENTS_PATH, payload: p.body, headers: p.headers };
      },
    },
    {
      name: 'an event whose signature covers the base64 text instead of the decoded bytes',
      status: 401,
      error: 'signature_invalid',
      req: () => {
        const p = push(delivered(agent, 'm5'));
        const wrong = rbmSignature(TOKEN, Buffer.from(p.body.message.data, 'utf8'));
        return { method: 'POST', url: EVENTS_PATH, payload: p.body, headers: { ...p.headers, 'x-goog-signature': wrong } };
      },
    },
    {
      name: 'a signed event with its data swapped',
      status: 401,
      error: 'signature_invalid',
      req: () => {
        const p = push(delivered(agent, 'm6'));
        const other = push(delivered(agent, 'm7'));
        return { method: 'POST', url: EVENTS_PATH, payload: { ...p.body, message: { ...p.body.message, data: other.body.message.data } }, headers: p.headers };
      },
    },
  ];

  const unroutable: { name: string; reason: string; req: () => InjectOptions }[] = [
    {
      name: 'data that is not JSON (signed)',
      reason: 'data_not_json',
      req: () => {
        const p = push('not json at all');
        return { method: 'POST', url: EVENTS_PATH, payload: p.body, headers: p.headers };
      },
    },
    {
      name: 'data that is a JSON array (signed)',
      reason: 'data_not_object',
      req: () => {
        const p = push([1]);
        return { method: 'POST', url: EVENTS_PATH, payload: p.body, headers: p.headers };
      },
    },
    {
      name: 'an unknown eventType (signed)',
      reason: 'unknown_event_type',
      req: () => {
        const p = push(delivered(agent, 'm1', 'e1', 'TELEPORTED'));
        return { method: 'POST', url: EVENTS_PATH, payload: p.body, headers: p.headers };
      },
    },
    {
      name: 'DELIVERED without messageId (signed)',
      reason: 'missing_message_id',
      req: () => {
        const p = push({ senderPhoneNumber: PHONE, eventType: 'DELIVERED', eventId: 'e', agentId: agent });
        return { method: 'POST', url: EVENTS_PATH, payload: p.body, headers: p.headers };
      },
    },
    {
      name: 'DELIVERED without agentId and no RBM_AGENT_ID (signed)',
      reason: 'missing_agent_id',
      req: () => {
        const p = push({ senderPhoneNumber: PHONE, eventType: 'DELIVERED', eventId: 'e', messageId: 'm' });
        return { method: 'POST', url: EVENTS_PATH, payload: p.body, headers: p.headers };
      },
    },
    {
      name: 'a messageId no guard could be tracked under (signed)',
      reason: 'bad_message_id',
      req: () => {
        const p = push(delivered(agent, 'm'.repeat(257)));
        return { method: 'POST', url: EVENTS_PATH, payload: p.body, headers: p.headers };
      },
    },
    {
      name: 'an agentId no guard could be tracked under (signed)',
      reason: 'bad_agent_id',
      req: () => {
        const p = push(delivered('agent with spaces/and/slashes', 'm'));
        return { method: 'POST', url: EVENTS_PATH, payload: p.body, headers: p.headers };
      },
    },
    {
      name: 'a payload that is neither event nor user message (signed)',
      reason: 'unknown_payload',
      req: () => {
        const p = push({ agentId: agent, hello: 'world' });
        return { method: 'POST', url: EVENTS_PATH, payload: p.body, headers: p.headers };
      },
    },
  ];

  it.each(cases)('answers $status ($error) to $name, without a signal', async ({ status, error, req }) => {
    const res = await app.inject(req());
    expect(res.statusCode).toBe(status);
    expect(res.json()).toMatchObject({ error });
    expect(res.body).not.toMatch(/stack|at .*\.ts|node_modules/);
    if (status === 405) expect(res.headers.allow).toBe('POST');
    expect(signalWithStart).not.toHaveBeenCalled();
  });

  it.each(unroutable)('acknowledges a signed event no guard can take with 200 ($reason: $name), counted, without a signal', async ({ reason, req }) => {
    const before = await metricValue(registry, 'rbm_webhook_unroutable_total', { reason });
    const res = await app.inject(req());
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ status: 'unroutable', reason });
    expect(signalWithStart).not.toHaveBeenCalled();
    expect(await metricValue(registry, 'rbm_webhook_unroutable_total', { reason })).toBe(before + 1);
  });

  it('routes on X-Goog-Webhook-Type, and still knows the verification request by its body', async () => {
    const handshake = { clientToken: TOKEN, secret: 'by-header' };
    const byHeader = await app.inject({ method: 'POST', url: EVENTS_PATH, headers: { 'x-goog-webhook-type': 'verification' }, payload: handshake });
    expect([byHeader.statusCode, byHeader.body]).toEqual([200, 'by-header']);
    // A header that says otherwise (or an unknown value) does not hide a verification body.
    for (const type of ['message_callback', 'agent_callback', 'something_new']) {
      const res = await app.inject({ method: 'POST', url: EVENTS_PATH, headers: { 'x-goog-webhook-type': type }, payload: handshake });
      expect([res.statusCode, res.body]).toEqual([200, 'by-header']);
    }
    const p = push(delivered(agent, 'mv'));
    const mislabelled = await app.inject({ method: 'POST', url: EVENTS_PATH, payload: p.body, headers: { ...p.headers, 'x-goog-webhook-type': 'verification' } });
    expect(mislabelled.statusCode).toBe(400);
    expect(mislabelled.json()).toMatchObject({ error: 'bad_verification' });
    const notAHandshake = await app.inject({ method: 'POST', url: EVENTS_PATH, headers: { 'x-goog-webhook-type': 'verification' }, payload: { hello: 1 } });
    expect(notAHandshake.json()).toMatchObject({ error: 'bad_verification' });

    const agentNews = push({ agentId: agent, somethingAboutTheAgent: true });
    const agentCallback = await app.inject({ method: 'POST', url: EVENTS_PATH, payload: agentNews.body, headers: { ...agentNews.headers, 'x-goog-webhook-type': 'agent_callback' } });
    expect([agentCallback.statusCode, agentCallback.json()]).toEqual([200, { status: 'ignored', what: 'AGENT_CALLBACK' }]);
    expect(signalWithStart).not.toHaveBeenCalled();
    expect(await metricValue(registry, 'rbm_webhook_requests_by_type_total', { webhook_type: 'verification' })).toBe(3);
    expect(await metricValue(registry, 'rbm_webhook_requests_by_type_total', { webhook_type: 'other' })).toBe(1);
    expect(await metricValue(registry, 'rbm_webhook_requests_by_type_total', { webhook_type: 'agent_callback' })).toBe(2);
  });

  it('counts rejected signatures by reason', async () => {
    expect(await metricValue(registry, 'rbm_webhook_signatures_rejected_total', { reason: 'missing' })).toBe(1);
    expect(await metricValue(registry, 'rbm_webhook_signatures_rejected_total', { reason: 'invalid' })).toBe(3);
  });

  it.each([
    ['IS_TYPING', delivered(agent, 'm', 'e', 'IS_TYPING'), {}],
    ['SUBSCRIBE', { senderPhoneNumber: PHONE, eventType: 'SUBSCRIBE', eventId: 'e', agentId: agent }, {}],
    ['UNSUBSCRIBE', { senderPhoneNumber: PHONE, eventType: 'UNSUBSCRIBE', eventId: 'e', agentId: agent }, {}],
    ['USER_MESSAGE', { senderPhoneNumber: PHONE, messageId: 'MxPhoneOwnId', sendTime: '2025-01-01T00:00:00Z', agentId: agent, text: 'STOP' }, {}],
    ['USER_MESSAGE', { senderPhoneNumber: PHONE, messageId: 'MxTap', agentId: agent, suggestionResponse: { postbackData: 'x' } }, {}],
    ['AGENT_LAUNCH_EVENT', { agentId: agent, launchState: 'LAUNCHED' }, { type: 'agent_launch_event' }],
  ] as const)('acknowledges %s with 200 and ignores it', async (what, event, attributes) => {
    const before = await metricValue(registry, 'rbm_webhook_events_total', { event_type: what, result: 'ignored' });
    const p = push(event, { attributes });
    const res = await app.inject({ method: 'POST', url: EVENTS_PATH, payload: p.body, headers: p.headers });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: 'ignored', what });
    expect(signalWithStart).not.toHaveBeenCalled();
    expect(await metricValue(registry, 'rbm_webhook_events_total', { event_type: what, result: 'ignored' })).toBe(before + 1);
  });

  it('keeps serving after all of that, and never logged a phone number', async () => {
    expect((await app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
    expect(logLines.length).toBeGreaterThan(0);
    expect(logLines.join('\n')).not.toContain(PHONE.slice(2));
  });
});

describe('Temporal unreachable (inject)', () => {
  it('answers 503 within the signal deadline, counts the failure, and readyz says not ready', async () => {
    // Nothing listens on port 1: every call fails UNAVAILABLE and the SDK retries until the deadline.
    const down = new Client({ connection: await Connection.lazy({ address: '127.0.0.1:1' }) });
    const registry = new Registry();
    const app = buildWebhookApp({ client: down, config: testConfig(), metrics: registry, signalTimeoutMs: 800, readyTimeoutMs: 500 });
    try {
      const p = push(delivered('down-agent', randomUUID()));
      const started = Date.now();
      const res = await app.inject({ method: 'POST', url: EVENTS_PATH, payload: p.body, headers: p.headers });
      expect(res.statusCode).toBe(503);
      expect(res.json()).toMatchObject({ error: 'temporal_unavailable' });
      expect(Date.now() - started).toBeLessThan(5_000);
      expect(await metricValue(registry, 'rbm_webhook_signals_failed_total')).toBe(1);
      const ready = await app.inject({ method: 'GET', url: '/readyz' });
      expect(ready.statusCode).toBe(503);
      expect((await app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
    } finally {
      await app.close();
      await down.connection.close();
    }
  });

  it('never leaks an internal error message', async () => {
    const broken = new Client({ connection: await Connection.lazy({ address: inject('temporalAddress') }) });
    vi.spyOn(broken.workflow, 'signalWithStart').mockRejectedValue(new Error('secret internal detail at db.ts:42'));
    const app = buildWebhookApp({ client: broken, config: testConfig() });
    try {
      const p = push(delivered('broken-agent', randomUUID()));
      const res = await app.inject({ method: 'POST', url: EVENTS_PATH, payload: p.body, headers: p.headers });
      expect(res.statusCode).toBe(503);
      expect(res.body).not.toContain('secret internal detail');
    } finally {
      await app.close();
      await broken.connection.close();
    }
  });
});

describe('signed events over a real port', () => {
  let server: WebhookServer;
  const serverRegistry = new Registry();
  let config: Config;
  let eventsUrl: string;
  const agentId = `agent-${randomUUID().slice(0, 8)}`;

  beforeAll(async () => {
    config = testConfig();
    server = await startWebhookServer({ ...config, WEBHOOK_METRICS_PORT: 0 }, { client, metrics: serverRegistry });
    eventsUrl = `${server.url}${EVENTS_PATH}`;
  });
  afterAll(async () => {
    await server?.close();
  });

  async function post(p: ReturnType<typeof push>) {
    const res = await fetch(eventsUrl, { method: 'POST', headers: p.headers, body: JSON.stringify(p.body) });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  }

  it('serves healthz and readyz, and its metrics on a loopback port of their own, never on the public one', async () => {
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    const ready = await fetch(`${server.url}/readyz`);
    expect(ready.status).toBe(200);
    expect((await fetch(`${server.url}/metrics`)).status).toBe(404);
    expect(server.metricsUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    expect(new URL(server.metricsUrl!).port).not.toBe(String(server.port));
    const metrics = await fetch(server.metricsUrl!);
    expect(metrics.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = await metrics.text();
    for (const name of [
      'rbm_webhook_events_total',
      'rbm_webhook_signatures_rejected_total',
      'rbm_webhook_signals_failed_total',
      'rbm_webhook_late_events_total',
      'rbm_webhook_ack_seconds',
    ]) {
      expect(text).toContain(`# TYPE ${name}`);
    }
  });

  it('turns a signed DELIVERED into a signal-with-start on the message guard, before any track', async () => {
    const messageId = randomUUID();
    const eventId = randomUUID();
    const res = await post(push(delivered(`${agentId}@rbm.goog`, messageId, eventId)));
    const workflowId = guardWorkflowId(agentId, messageId);
    expect(res).toEqual({ status: 200, body: { status: 'signalled', workflowId } });

    const signals = await signalsOf(client, workflowId);
    expect(signals).toEqual([['DELIVERED', { eventId, sendTime: expect.any(String) }]]);
    expect(await startInput(client, workflowId)).toEqual({ agentId, messageId, rules: GUARD_RULES, orphanAfterMs: 600_000 });
    const description = await client.workflow.getHandle(workflowId).describe();
    expect(description.type).toBe(WORKFLOW_TYPE);
    expect(description.taskQueue).toBe(config.TEMPORAL_TASK_QUEUE);
    expect(description.typedSearchAttributes.get(SA.agentId)).toBe(agentId);
    expect(description.typedSearchAttributes.get(SA.state)).toBe('AWAITING_TRACK');
  });

  it('maps each guard event type to the signal of the same name (user and server event shapes)', async () => {
    const messageId = randomUUID();
    const workflowId = guardWorkflowId(agentId, messageId);
    const events = [
      delivered(agentId, messageId, 'e-read', 'READ'),
      serverEvent(agentId, messageId, 'TTL_EXPIRATION_REVOKED', 'e-ttl'),
      serverEvent(agentId, messageId, 'TTL_EXPIRATION_REVOKE_FAILED', 'e-ttl-failed'),
      delivered(agentId, messageId, 'e-delivered', 'DELIVERED'),
    ];
    for (const event of events) expect((await post(push(event))).status).toBe(200);
    const signals = await signalsOf(client, workflowId);
    expect(signals.map(([name, arg]) => [name, arg.eventId])).toEqual([
      ['READ', 'e-read'],
      ['TTL_EXPIRATION_REVOKED', 'e-ttl'],
      ['TTL_EXPIRATION_REVOKE_FAILED', 'e-ttl-failed'],
      ['DELIVERED', 'e-delivered'],
    ]);
    expect(Object.keys(eventSignals).sort()).toEqual(signals.map(([name]) => name).sort());
  });

  it('accepts an event signed with the previous token during a rotation', async () => {
    const messageId = randomUUID();
    const res = await post(push(delivered(agentId, messageId), { token: OLD_TOKEN }));
    expect(res.status).toBe(200);
    expect(await signalsOf(client, guardWorkflowId(agentId, messageId))).toHaveLength(1);
  });

  it('rejects a forged event with 401 and starts no guard', async () => {
    const messageId = randomUUID();
    const res = await post(push(delivered(agentId, messageId), { token: 'forger' }));
    expect(res.status).toBe(401);
    await expect(client.workflow.getHandle(guardWorkflowId(agentId, messageId)).describe()).rejects.toBeInstanceOf(
      WorkflowNotFoundError,
    );
  });

  it('passes duplicates through with the same eventId, all answered 200, one guard run', async () => {
    const messageId = randomUUID();
    const eventId = randomUUID();
    const event = delivered(agentId, messageId, eventId);
    const statuses = await Promise.all([1, 2, 3].map(() => post(push(event)).then((r) => r.status)));
    expect(statuses).toEqual([200, 200, 200]);
    const workflowId = guardWorkflowId(agentId, messageId);
    const signals = await signalsOf(client, workflowId);
    // The guard drops repeats by eventId (lifecycle.ts); the adapter keeps them identical for that.
    expect(signals).toHaveLength(3);
    expect(new Set(signals.map(([, arg]) => arg.eventId))).toEqual(new Set([eventId]));
    const runs = [];
    for await (const w of client.workflow.list({ query: `WorkflowId = "${workflowId}"` })) runs.push(w.runId);
    expect(runs).toHaveLength(1);
  });

  it('uses the Pub/Sub message id (snake_case twin) as the eventId when RBM sent none', async () => {
    const messageId = randomUUID();
    const p = push({ senderPhoneNumber: PHONE, eventType: 'DELIVERED', messageId, agentId });
    const message = { data: p.body.message.data, message_id: 'ps-123', publish_time: new Date().toISOString() };
    const res = await fetch(eventsUrl, { method: 'POST', headers: p.headers, body: JSON.stringify({ message }) });
    expect(res.status).toBe(200);
    expect(await signalsOf(client, guardWorkflowId(agentId, messageId))).toEqual([['DELIVERED', { eventId: 'pubsub:ps-123' }]]);
  });

  it('acknowledges an event for a closed guard as late (200) and never starts a new run', async () => {
    const messageId = randomUUID();
    const workflowId = guardWorkflowId(agentId, messageId);
    const first = await client.workflow.signalWithStart(WORKFLOW_TYPE, {
      workflowId,
      taskQueue: config.TEMPORAL_TASK_QUEUE,
      args: [{ agentId, messageId } satisfies GuardInput],
      signal: eventSignals.DELIVERED,
      signalArgs: [{ eventId: 'first' }],
      workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
    });
    await first.terminate('closed for the test');
    const before = await metricValue(serverRegistry, 'rbm_webhook_late_events_total', { event_type: 'READ' });

    const res = await post(push(delivered(agentId, messageId, 'late-one', 'READ')));
    expect(res).toEqual({ status: 200, body: { status: 'late', workflowId, outcome: null } });

    const description = await client.workflow.getHandle(workflowId).describe();
    expect(description.runId).toBe(first.signaledRunId);
    expect(description.status.name).toBe('TERMINATED');
    expect((await signalsOf(client, workflowId)).map(([, a]) => a.eventId)).toEqual(['first']);
    expect(await metricValue(serverRegistry, 'rbm_webhook_late_events_total', { event_type: 'READ' })).toBe(before + 1);
  });

  it('records the ack latency histogram per status', async () => {
    expect(await metricValue(serverRegistry, 'rbm_webhook_ack_seconds_count', { status: '200' })).toBeGreaterThan(5);
    expect(await metricValue(serverRegistry, 'rbm_webhook_ack_seconds_count', { status: '401' })).toBe(1);
  });
});

describe('the process', () => {
  it('reports a taken port in one clear line', async () => {
    const first = await startWebhookServer(testConfig(), { client });
    try {
      const err = await startWebhookServer(testConfig({ WEBHOOK_PORT: String(first.port) }), { client }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(WebhookStartError);
      expect((err as Error).message).toBe(
        `WEBHOOK_PORT ${first.port} on 127.0.0.1 is already in use: stop the other process or choose another port`,
      );
      expect((await fetch(`${first.url}/healthz`)).status).toBe(200);
    } finally {
      await first.close();
    }
  });

  it('refuses to start without a client token', () => {
    expect(() => buildWebhookApp({ client, config: testConfig({ RBM_CLIENT_TOKEN: '' }) })).toThrow(/RBM_CLIENT_TOKEN/);
  });

  it('normalises agent ids in one place', () => {
    expect(normalizeAgentId('acme-bot@rbm.goog')).toBe('acme-bot');
    expect(normalizeAgentId('acme-bot')).toBe('acme-bot');
    expect(normalizeAgentId(' acme@RBM.GOOG ')).toBe('acme');
  });
});
