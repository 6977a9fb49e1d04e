// A promotion with a 3-day deadline runs its whole life in seconds on the time-skipping test
// server: the deadline passes, the revoke lands at the simulator, and one SMS goes out.
import { randomUUID } from 'node:crypto';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { afterAll, beforeAll, expect, inject, it } from 'vitest';
import { createActivities } from '../../activities/index.ts';
import { createFallbackChannel } from '../../activities/fallback.ts';
import { createRbmClient } from '../../activities/rbm.ts';
import { loadConfig } from '../../config/index.ts';
import { GuardClient } from '../../client/guard-client.ts';
import { registerSearchAttributes } from '../../client/search-attributes.ts';
import { createGuardWorker } from '../../worker/worker.ts';
import { executableOption, temporalTestServerPath } from '../../service/engine/temporal-binaries.ts';
import type { GuardStatus } from '../../workflows/contract.ts';
import { startRbmSimulator, type RbmSimulator } from '../../dev/sim/rbm-simulator.ts';
import { startSmsSink, type SmsSink } from '../../dev/sim/sms-sink.ts';
import { testDataConverter } from '../support/encryption.ts';

let env: TestWorkflowEnvironment;
let sim: RbmSimulator;
let sink: SmsSink;

beforeAll(async () => {
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  [env, sim, sink] = await Promise.all([
    TestWorkflowEnvironment.createTimeSkipping({
      server: { executable: executableOption(temporalTestServerPath()) },
      client: { dataConverter: testDataConverter },
    }),
    startRbmSimulator({ defaultPlan: { deliverAfterMs: null } }),
    startSmsSink(),
  ]);
  await registerSearchAttributes(env.connection, env.namespace ?? 'default');
});

afterAll(async () => {
  await env?.teardown();
  await sim?.close();
  await sink?.close();
});

it('a promotion with a 3-day deadline is revoked and falls back, in seconds of test time', async () => {
  const config = loadConfig({
    RBM_API_BASE_URL: sim.url,
    RBM_TOKEN_URL: sim.tokenUrl,
    GOOGLE_APPLICATION_CREDENTIALS: sim.writeServiceAccountKeyFile(),
    FALLBACK_PROVIDER: 'http',
    FALLBACK_HTTP_URL: `${sink.url}/messages`,
  });
  const taskQueue = `skip-${randomUUID()}`;
  const worker = await createGuardWorker({
    connection: env.nativeConnection,
    namespace: env.namespace ?? 'default',
    taskQueue,
    activities: createActivities({ rbm: createRbmClient({ config }), fallback: createFallbackChannel(config) }),
    dataConverter: testDataConverter,
    workflowBundlePath: inject('workflowBundlePath'),
  });
  const guards = new GuardClient(env.client, taskQueue);
  const messageId = `promo-${randomUUID()}`;
  const phone = '+447700900123';
  sim.registerSent({ agentId: 'shop', messageId, phone });

  const started = Date.now();
  const status = await worker.runUntil(async () => {
    const { workflowId } = await guards.track({
      agentId: 'shop',
      messageId,
      phone,
      staleIn: '3d',
      trafficType: 'PROMOTION',
      fallbackText: 'Weekend sale ends Sunday',
    });
    return env.client.workflow.getHandle(workflowId).result() as Promise<GuardStatus>;
  });

  expect(status.outcome).toBe('FALLBACK_SENT');
  expect(status.timeline.map((t) => t.state)).toEqual(['AWAITING_DELIVERY', 'REVOKING', 'FALLBACK', 'FALLBACK_SENT']);
  // The deadline was three days after tracking; the revoke happened at it or after, in test time.
  // (A deferred guard's story starts when the server started it, a few ms after staleAt was set.)
  const tracked = Date.parse(status.timeline[0]!.at);
  const revoking = Date.parse(status.timeline[1]!.at);
  expect(revoking).toBeGreaterThanOrEqual(Date.parse(status.staleAt!));
  expect(revoking - tracked).toBeGreaterThan(3 * 24 * 3600 * 1000 - 60_000);
  expect(Date.now() - started).toBeLessThan(30_000);
  expect(sim.truth(messageId)?.revokedAt).toBeDefined();
  expect(sink.distinctSendsTo(phone)).toBe(1);
});
