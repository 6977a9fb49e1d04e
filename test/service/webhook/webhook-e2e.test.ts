// End to end: the RBM simulator pushes signed Pub/Sub events (retrying non-200 like Pub/Sub) at the
// real webhook; a real worker runs the guards against the simulator and the SMS sink. Outcomes are
// read from the guards themselves, the simulator's ground truth and the sink's record of sends.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Registry } from 'prom-client';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import { loadConfig, type Config } from '../../../config/index.ts';
import { createActivities } from '../../../activities/index.ts';
import { createRbmClient } from '../../../activities/rbm.ts';
import { createFallbackChannel } from '../../../activities/fallback.ts';
import { dataConverter, ephemeralEncryption } from '../../../client/codec.ts';
import { GuardClient } from '../../../client/guard-client.ts';
import { EVENTS_PATH, rbmSignature } from '../../../service/webhook/app.ts';
import { startWebhookServer, type WebhookServer } from '../../../service/webhook/server.ts';
import { guardWorkflowId, type GuardStatus, type Outcome } from '../../../workflows/contract.ts';
import { createGuardWorker, type GuardWorker } from '../../../worker/worker.ts';
import { startDevServer, type DevServer } from '../../../service/engine/dev-server.ts';
import { startRbmSimulator, userEvent, type PushRecord, type RbmSimulator } from '../../../dev/sim/rbm-simulator.ts';
import { startSmsSink, type SmsSink } from '../../../dev/sim/sms-sink.ts';
import { eventually } from '../../support/eventually.ts';

// Quiet: the outage test makes the worker's pollers complain (WARN) until the server is back.
Runtime.install({
  logger: new DefaultLogger('ERROR'),
  telemetryOptions: { logging: { filter: { core: 'ERROR', other: 'ERROR' }, forward: {} } },
});

const TOKEN = 'e2e-client-token';
const AGENT = `e2e-agent-${randomUUID().slice(0, 6)}`;
let phoneCounter = 0;
const nextPhone = () => `+1555${String(Date.now() % 1_000_000).padStart(6, '0')}${phoneCounter++ % 10}`;

interface Stack {
  config: Config;
  client: Client;
  guards: GuardClient;
  webhook: WebhookServer;
  worker: GuardWorker;
  running: Promise<void>;
  nativeConnection: NativeConnection;
}

/** A worker (activities against the simulator and the sink) and a webhook, on one Temporal. */
async function startStack(
  address: string,
  sim: RbmSimulator,
  sink: SmsSink,
  env: Record<string, string> = {},
  signalTimeoutMs?: number,
): Promise<Stack> {
  // Payloads encrypted as in production: the webhook's signals and the worker share one key ring.
  const encryption = ephemeralEncryption();
  const config = loadConfig({
    ...encryption.env,
    TEMPORAL_ADDRESS: address,
    TEMPORAL_TASK_QUEUE: `webhook-e2e-${randomUUID()}`,
    RBM_CLIENT_TOKEN: TOKEN,
    RBM_API_BASE_URL: sim.url,
    RBM_TOKEN_URL: sim.tokenUrl,
    GOOGLE_APPLICATION_CREDENTIALS: sim.writeServiceAccountKeyFile(),
    RBM_REQUEST_TIMEOUT_MS: '2000',
    FALLBACK_PROVIDER: 'http',
    FALLBACK_HTTP_URL: `${sink.url}/messages`,
    WEBHOOK_HOST: '127.0.0.1',
    WEBHOOK_PORT: '0',
    WEBHOOK_METRICS_PORT: '0',
    WEBHOOK_ORPHAN_AFTER_MS: '60000',
    LOG_LEVEL: 'silent',
    ...env,
  });
  const converter = dataConverter(encryption.codec);
  const client = new Client({ connection: await Connection.connect({ address }), dataConverter: converter });
  const nativeConnection = await NativeConnection.connect({ address });
  const worker = await createGuardWorker({
    connection: nativeConnection,
    namespace: config.TEMPORAL_NAMESPACE,
    taskQueue: config.TEMPORAL_TASK_QUEUE,
    activities: createActivities({ rbm: createRbmClient({ config }), fallback: createFallbackChannel(config) }),
    workflowBundlePath: inject('workflowBundlePath'),
    dataConverter: converter,
    shutdownGraceTimeMs: 1000,
  });
  const running = worker.run();
  const webhook = await startWebhookServer(config, { client, metrics: new Registry(), signalTimeoutMs });
  return { config, client, guards: new GuardClient(client, config.TEMPORAL_TASK_QUEUE), webhook, worker, running, nativeConnection };
}

async function stopStack(stack: Stack | undefined): Promise<void> {
  if (!stack) return;
  await stack.webhook.close();
  if (stack.worker.getState() === 'RUNNING') stack.worker.shutdown();
  await stack.running.catch(() => {});
  await stack.nativeConnection.close();
  await stack.client.connection.close();
}


const outcome = (guards: GuardClient, workflowId: string, want: Outcome) =>
  eventually(
    () => guards.status(workflowId),
    (s: GuardStatus) => s.outcome === want,
  );

const statuses = (record: PushRecord) => record.attempts.map((a) => a.status);
const timelineEvents = (status: GuardStatus, event: string) => status.timeline.filter((t) => t.event === event);

/** Sum of a metric's series whose labels include all of `labels`. */
async function metric(server: WebhookServer, name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await (await fetch(server.metricsUrl!)).text();
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  return text
    .split('\n')
    .filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `))
    .filter((l) => want.every((w) => l.split(' ')[0]?.includes(w)))
    .reduce((sum, l) => sum + Number(l.split(' ')[1]), 0);
}

describe('signed simulator pushes into guards (suite Temporal, real worker)', () => {
  let sim: RbmSimulator;
  let sink: SmsSink;
  let stack: Stack;

  beforeAll(async () => {
    sim = await startRbmSimulator({
      clientToken: TOKEN,
      defaultPlan: { deliverAfterMs: null },
      push: { maxAttempts: 20, minBackoffMs: 100, maxBackoffMs: 1000 },
    });
    sink = await startSmsSink();
    stack = await startStack(inject('temporalAddress'), sim, sink);
    sim.setWebhookUrl(`${stack.webhook.url}${EVENTS_PATH}`);
  });
  afterAll(async () => {
    await sim?.close();
    await stopStack(stack);
    await sink?.close();
  });

  it('passes the URL-verification handshake the simulator sends', async () => {
    expect(await sim.verifyWebhook({ secret: 'verify-me' })).toEqual({ status: 200, body: 'verify-me' });
    expect((await sim.verifyWebhook({ clientToken: 'wrong' })).status).toBe(403);
  });

  it('delivers a DELIVERED event to the right guard (DELIVERED, no SMS), and a forged one changes nothing', async () => {
    const delivered = { messageId: randomUUID(), phone: nextPhone() };
    const forged = { messageId: randomUUID(), phone: nextPhone() };
    for (const m of [delivered, forged]) {
      await stack.guards.track({ agentId: AGENT, ...m, staleIn: '5m', fallbackText: 'your code is 123456' });
      sim.registerSent({ agentId: AGENT, ...m });
    }

    const push = await sim.pushEvent(userEvent({ agentId: AGENT, phone: forged.phone, eventType: 'DELIVERED', messageId: forged.messageId }), {
      signature: 'invalid',
      retry: false,
    });
    expect(statuses(push)).toEqual([401]);
    expect(sim.deliver(delivered.messageId)).toBe(true);

    const done = await outcome(stack.guards, guardWorkflowId(AGENT, delivered.messageId), 'DELIVERED');
    expect(timelineEvents(done, 'DELIVERED')).toHaveLength(1);
    expect(sim.truth(delivered.messageId)?.eventsPushed.map(statuses)).toEqual([[200]]);

    const untouched = await stack.guards.status(guardWorkflowId(AGENT, forged.messageId));
    expect(untouched.state).toBe('AWAITING_DELIVERY');
    expect(timelineEvents(untouched, 'DELIVERED')).toHaveLength(0);
    expect(sink.sends.filter((s) => s.to === delivered.phone || s.to === forged.phone)).toHaveLength(0);
    await stack.guards.cancel(guardWorkflowId(AGENT, forged.messageId), 'test cleanup');
  });

  it('routes a platform TTL revoke (server event, phoneNumber shape) to the fallback: one SMS', async () => {
    const m = { messageId: randomUUID(), phone: nextPhone() };
    await stack.guards.track({ agentId: AGENT, ...m, staleIn: '5m', fallbackText: 'fallback text', policy: { lingerMs: 500 } });
    sim.registerSent({ agentId: AGENT, ...m, expireTime: new Date(Date.now() + 300).toISOString(), plan: { ttlOutcome: 'revoked' } });
    const done = await outcome(stack.guards, guardWorkflowId(AGENT, m.messageId), 'FALLBACK_SENT');
    expect(timelineEvents(done, 'TTL_EXPIRATION_REVOKED')).toHaveLength(1);
    expect(sink.distinctSendsTo(m.phone)).toBe(1);
  });

  it('keeps an event that arrives before the track: the track finds it waiting (DELIVERED, no revoke, no SMS)', async () => {
    const m = { messageId: randomUUID(), phone: nextPhone() };
    const workflowId = guardWorkflowId(AGENT, m.messageId);
    const push = await sim.pushEvent(userEvent({ agentId: `${AGENT}@rbm.goog`, phone: m.phone, eventType: 'DELIVERED', messageId: m.messageId }));
    expect(statuses(push)).toEqual([200]);
    const waiting = await eventually(
      () => stack.guards.status(workflowId),
      (s) => s.state === 'AWAITING_TRACK' && timelineEvents(s, 'DELIVERED').length === 1,
    );
    expect(waiting.outcome).toBeNull();

    const tracked = await stack.guards.track({ agentId: AGENT, ...m, staleIn: '5m', fallbackText: 'x' });
    expect(tracked.alreadyClosed).toBe(false);
    const done = await outcome(stack.guards, workflowId, 'DELIVERED');
    expect(done.timeline.at(-1)).toMatchObject({ state: 'DELIVERED', event: 'TRACKED' });
    expect(done.revokeRounds).toBe(0);
    expect(sink.distinctSendsTo(m.phone)).toBe(0);
  });

  it('gives a duplicated event (×3, same eventId, three Pub/Sub messages) one effect', async () => {
    const m = { messageId: randomUUID(), phone: nextPhone() };
    const workflowId = guardWorkflowId(AGENT, m.messageId);
    await stack.guards.track({ agentId: AGENT, ...m, staleIn: '5m', fallbackText: 'x' });
    const event = userEvent({ agentId: AGENT, phone: m.phone, eventType: 'DELIVERED', messageId: m.messageId });
    const pushes = await Promise.all([1, 2, 3].map(() => sim.pushEvent(event)));
    expect(pushes.map(statuses)).toEqual([[200], [200], [200]]);

    const done = await outcome(stack.guards, workflowId, 'DELIVERED');
    expect(timelineEvents(done, 'DELIVERED')).toHaveLength(1);
    const runs = [];
    for await (const w of stack.client.workflow.list({ query: `WorkflowId = "${workflowId}"` })) runs.push(w.runId);
    expect(runs).toHaveLength(1);
    expect(sink.distinctSendsTo(m.phone)).toBe(0);
  });

  it('acknowledges an event for a closed guard as late and starts no new run', async () => {
    const m = { messageId: randomUUID(), phone: nextPhone() };
    const workflowId = guardWorkflowId(AGENT, m.messageId);
    await stack.guards.track({ agentId: AGENT, ...m, staleIn: '5m' });
    sim.registerSent({ agentId: AGENT, ...m });
    sim.deliver(m.messageId);
    await outcome(stack.guards, workflowId, 'DELIVERED');
    await eventually(
      () => stack.client.workflow.getHandle(workflowId).describe(),
      (d) => d.status.name === 'COMPLETED',
    );
    const before = await metric(stack.webhook, 'rbm_webhook_late_events_total', { event_type: 'READ' });

    const push = await sim.pushEvent(userEvent({ agentId: AGENT, phone: m.phone, eventType: 'READ', messageId: m.messageId }));
    expect(statuses(push)).toEqual([200]);
    expect(await metric(stack.webhook, 'rbm_webhook_late_events_total', { event_type: 'READ' })).toBe(before + 1);
    const runs = [];
    for await (const w of stack.client.workflow.list({ query: `WorkflowId = "${workflowId}"` })) runs.push(w.status.name);
    expect(runs).toEqual(['COMPLETED']);
  });

  it('ends a guard started by an event for a message never tracked as ORPHANED after the window', async () => {
    const orphanHook = await startWebhookServer(
      { ...stack.config, WEBHOOK_ORPHAN_AFTER_MS: 1500 },
      { client: stack.client, metrics: new Registry() },
    );
    try {
      const m = { messageId: randomUUID(), phone: nextPhone() };
      const res = await fetch(`${orphanHook.url}${EVENTS_PATH}`, {
        method: 'POST',
        ...signedBody(userEvent({ agentId: AGENT, phone: m.phone, eventType: 'READ', messageId: m.messageId })),
      });
      expect(res.status).toBe(200);
      const done = await outcome(stack.guards, guardWorkflowId(AGENT, m.messageId), 'ORPHANED');
      expect(timelineEvents(done, 'READ')).toHaveLength(1);
    } finally {
      await orphanHook.close();
    }
  });
});

describe('Temporal stopped mid-stream (private dev server)', () => {
  let dir: string;
  let server: DevServer | undefined;
  let sim: RbmSimulator;
  let sink: SmsSink;
  let stack: Stack | undefined;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'rbm-webhook-outage-'));
    server = await startDevServer({ dbFile: join(dir, 'temporal.db') });
    sim = await startRbmSimulator({
      clientToken: TOKEN,
      defaultPlan: { deliverAfterMs: null },
      // Pub/Sub-like: keeps retrying non-200 with backoff.
      push: { maxAttempts: 200, minBackoffMs: 100, maxBackoffMs: 500, timeoutMs: 10_000 },
    });
    sink = await startSmsSink();
    stack = await startStack(server.address, sim, sink, {}, 1000);
    sim.setWebhookUrl(`${stack.webhook.url}${EVENTS_PATH}`);
  }, 90_000);
  afterAll(async () => {
    await sim?.close();
    await stopStack(stack);
    await sink?.close();
    await server?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it('answers 503 while Temporal is down; after the restart the retried events land and every guard ends DELIVERED', async () => {
    const s = stack as Stack;
    const messages = Array.from({ length: 6 }, () => ({ messageId: randomUUID(), phone: nextPhone() }));
    for (const m of messages) {
      await s.guards.track({ agentId: AGENT, ...m, staleIn: '10m', fallbackText: 'sms' });
      sim.registerSent({ agentId: AGENT, ...m });
    }
    const [before, during, after] = [messages.slice(0, 2), messages.slice(2, 4), messages.slice(4)];

    for (const m of before) sim.deliver(m.messageId);
    for (const m of before) await outcome(s.guards, guardWorkflowId(AGENT, m.messageId), 'DELIVERED');

    const port = (server as DevServer).port;
    await (server as DevServer).stop();
    server = undefined;
    for (const m of during) sim.deliver(m.messageId);
    // The pushes are answered 503 (not 200, not dropped) while Temporal is away.
    await eventually(
      async () => during.map((m) => sim.truth(m.messageId)?.eventsPushed[0]?.attempts.map((a) => a.status) ?? []),
      (all) => all.every((attempts) => attempts.filter((st) => st === 503).length >= 2),
    );
    const ready = await fetch(`${s.webhook.url}/readyz`);
    expect(ready.status).toBe(503);
    expect((await fetch(`${s.webhook.url}/healthz`)).status).toBe(200);

    server = await startDevServer({ dbFile: join(dir, 'temporal.db'), port });
    for (const m of after) sim.deliver(m.messageId);
    await sim.settled();

    for (const m of messages) {
      const truth = sim.truth(m.messageId);
      const pushes = truth?.eventsPushed ?? [];
      expect(pushes).toHaveLength(1);
      expect(pushes[0]?.acknowledged).toBe(true);
      expect(pushes[0]?.attempts.every((a) => a.status === 200 || a.status === 503)).toBe(true);
      const done = await outcome(s.guards, guardWorkflowId(AGENT, m.messageId), 'DELIVERED');
      expect(timelineEvents(done, 'DELIVERED')).toHaveLength(1);
      expect(done.revokeRounds).toBe(0);
    }
    for (const m of during) expect(sim.truth(m.messageId)?.eventsPushed[0]?.attempts.at(-1)?.status).toBe(200);
    expect(sink.sends).toHaveLength(0);
    expect(await metric(s.webhook, 'rbm_webhook_signals_failed_total')).toBeGreaterThanOrEqual(4);
    expect(await metric(s.webhook, 'rbm_webhook_ack_seconds_count', { status: '503' })).toBeGreaterThanOrEqual(4);
    expect((await fetch(`${s.webhook.url}/readyz`)).status).toBe(200);
  }, 120_000);

  it('answers 503 to a late DELIVERED while Temporal is down; the retry after the restart records the double delivery once', async () => {
    const s = stack as Stack;
    const m = { messageId: randomUUID(), phone: nextPhone() };
    const workflowId = guardWorkflowId(AGENT, m.messageId);
    sim.registerSent({ agentId: AGENT, ...m });
    await s.guards.track({ agentId: AGENT, ...m, staleIn: '1s', fallbackText: 'late sms', policy: { lingerMs: 300 } });
    await outcome(s.guards, workflowId, 'FALLBACK_SENT');
    await eventually(
      () => s.client.workflow.getHandle(workflowId).describe(),
      (d) => d.status.name === 'COMPLETED',
    );

    const port = (server as DevServer).port;
    await (server as DevServer).stop();
    server = undefined;
    const late = signedBody(userEvent({ agentId: AGENT, phone: m.phone, eventType: 'DELIVERED', messageId: m.messageId }));
    const post = () => fetch(`${s.webhook.url}${EVENTS_PATH}`, { method: 'POST', ...late });
    const down = await post();
    expect(down.status).toBe(503);
    expect(down.headers.get('retry-after')).toBe('5');

    server = await startDevServer({ dbFile: join(dir, 'temporal.db'), port });
    const recorded = await eventually(
      async () => {
        const res = await post();
        return { status: res.status, body: (await res.json()) as Record<string, unknown> };
      },
      (r) => r.status === 200,
      60_000,
    );
    expect(recorded.body).toMatchObject({ status: 'recorded', workflowId, outcome: 'FALLBACK_SENT', duplicate: false });
    const again = await post();
    expect(await again.json()).toMatchObject({ status: 'recorded', recordId: recorded.body.recordId, duplicate: true });
    expect(sink.distinctSendsTo(m.phone)).toBe(1);
  }, 120_000);
});

function signedBody(event: object): { headers: Record<string, string>; body: string } {
  const data = Buffer.from(JSON.stringify(event));
  return {
    headers: { 'content-type': 'application/json', 'x-goog-signature': signEvent(data) },
    body: JSON.stringify({ message: { data: data.toString('base64'), messageId: randomUUID() } }),
  };
}

const signEvent = (data: Buffer) => rbmSignature(TOKEN, data);
