// A guard stack for integration tests: the suite's Temporal dev server, the RBM simulator and the
// SMS sink over real HTTP, a worker on a private task queue with the production activities
// (real google-auth-library token exchange against the simulator), and the client library. Payloads
// are encrypted with the suite's test key, as in production (encryption: false for a plain stack).
import { randomUUID } from 'node:crypto';
import { Client, Connection, WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import { inject } from 'vitest';
import { loadConfig, type Config } from '../../config/index.ts';
import { createActivities } from '../../activities/index.ts';
import { createFallbackChannel } from '../../activities/fallback.ts';
import { createRbmClient } from '../../activities/rbm.ts';
import { GuardClient } from '../../client/guard-client.ts';
import { createGuardWorker, type GuardWorker } from '../../worker/worker.ts';
import { dataConverter, type EncryptionCodec } from '../../client/codec.ts';
import { TEST_ENCRYPTION_ENV, testCodec } from './encryption.ts';
import { eventSignals, guardWorkflowId, isGuardEventType, type GuardStatus } from '../../workflows/contract.ts';
import { signalGuardEvent } from '../../client/start-options.ts';
import { startRbmSimulator, type RbmSimulator, type RbmSimulatorOptions } from '../../dev/sim/rbm-simulator.ts';
import { startSmsSink, type SmsSink } from '../../dev/sim/sms-sink.ts';

export interface GuardStack {
  sim: RbmSimulator;
  sink: SmsSink;
  client: Client;
  guards: GuardClient;
  taskQueue: string;
  config: Config;
  worker: GuardWorker;
  /** The codec the worker and the client share (null when the stack runs without encryption). */
  codec: EncryptionCodec | null;
  /** The env another process (e.g. the CLI) needs to read and write this stack's guards. */
  encryptionEnv: Record<string, string>;
  /** Waits for a guard's final status. */
  result(workflowId: string): Promise<GuardStatus>;
  /** Polls the status query until the guard is in `state` (or throws after timeoutMs). */
  waitForState(workflowId: string, state: string, timeoutMs?: number): Promise<GuardStatus>;
  close(): Promise<void>;
}

export interface StackOptions {
  sim?: RbmSimulatorOptions;
  /** Deliver the simulator's events by signalling guards directly (the webhook has its own suite). */
  directEvents?: boolean;
  env?: Record<string, string>;
  /** Another Temporal server than the suite's (e.g. one with its Web UI). */
  address?: string;
  /** Encrypt payloads with the suite's test key (default true). */
  encryption?: boolean;
  /** The SMS provider the worker uses: the sink's generic HTTP endpoint (default) or its Twilio API. */
  fallback?: 'http' | 'twilio';
  /** Guards start deferred (GuardClient's deferStart, on by default); RBM_GUARD_TEST_DEFER_START=0 in the environment: at once, with a timer. */
  deferStart?: boolean;
}

let runtimeInstalled = false;

export async function startGuardStack(options: StackOptions = {}): Promise<GuardStack> {
  if (!runtimeInstalled) {
    // Activity retries log warnings by design; tests show only errors.
    Runtime.install({ logger: new DefaultLogger('ERROR') });
    runtimeInstalled = true;
  }
  const address = options.address ?? inject('temporalAddress');
  const sim = await startRbmSimulator({ defaultPlan: { deliverAfterMs: null }, ...options.sim });
  const sink = await startSmsSink();
  const codec = options.encryption === false ? null : testCodec;
  const encryptionEnv: Record<string, string> = codec ? { ...TEST_ENCRYPTION_ENV } : { RBM_GUARD_ENCRYPTION: 'off' };
  const config = loadConfig({
    ...encryptionEnv,
    TEMPORAL_ADDRESS: address,
    RBM_API_BASE_URL: sim.url,
    RBM_TOKEN_URL: sim.tokenUrl,
    GOOGLE_APPLICATION_CREDENTIALS: sim.writeServiceAccountKeyFile(),
    // Loose enough that a loaded machine does not turn a slow answer into a lost one (a retried DELETE gets 404).
    RBM_REQUEST_TIMEOUT_MS: '1500',
    ...(options.fallback === 'twilio'
      ? {
          FALLBACK_PROVIDER: 'twilio',
          TWILIO_API_BASE_URL: sink.url,
          TWILIO_ACCOUNT_SID: sink.twilio.accountSid,
          TWILIO_AUTH_TOKEN: sink.twilio.authToken,
          TWILIO_FROM: '+15005550006',
        }
      : { FALLBACK_PROVIDER: 'http', FALLBACK_HTTP_URL: `${sink.url}/messages` }),
    FALLBACK_REQUEST_TIMEOUT_MS: '2000',
    ...options.env,
  });
  const taskQueue = `test-${randomUUID()}`;
  const nativeConnection = await NativeConnection.connect({ address });
  const worker = await createGuardWorker({
    connection: nativeConnection,
    namespace: 'default',
    taskQueue,
    activities: createActivities({ rbm: createRbmClient({ config }), fallback: createFallbackChannel(config) }),
    dataConverter: dataConverter(codec),
    workflowBundlePath: inject('workflowBundlePath'),
    shutdownGraceTimeMs: 1000,
  });
  const running = worker.run();
  const connection = await Connection.connect({ address });
  const client = new Client({ connection, namespace: 'default', dataConverter: dataConverter(codec) });

  const deferStart = options.deferStart ?? process.env.RBM_GUARD_TEST_DEFER_START !== '0';
  if (options.directEvents !== false) {
    sim.setOnEvent(async (event) => {
      if (!('eventType' in event) || !isGuardEventType(event.eventType) || !event.messageId) return;
      const workflowId = guardWorkflowId(event.agentId, event.messageId);
      const signal = { eventId: event.eventId, sendTime: event.sendTime };
      if (!deferStart) {
        await client.workflow.getHandle(workflowId).signal(eventSignals[event.eventType], signal);
        return;
      }
      // As the webhook does (start-options.ts, signalGuardEvent): it wakes a deferred guard at once,
      // where a plain signal would wait out its start delay. A closed guard's event is late: dropped here.
      await signalGuardEvent(client, taskQueue, { agentId: event.agentId, messageId: event.messageId, eventType: event.eventType, signal }).catch((err: unknown) => {
        if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
      });
    });
  }

  return {
    sim,
    sink,
    client,
    guards: new GuardClient(client, taskQueue, { deferStart }),
    taskQueue,
    config,
    worker,
    codec,
    encryptionEnv,
    result: (workflowId) => client.workflow.getHandle(workflowId).result() as Promise<GuardStatus>,
    async waitForState(workflowId, state, timeoutMs = 15_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const status = await client.workflow.getHandle(workflowId).query<GuardStatus>('status');
        if (status.state === state) return status;
        if (Date.now() > deadline) throw new Error(`${workflowId} still ${status.state}, never reached ${state}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    async close() {
      worker.shutdown();
      await running;
      await nativeConnection.close();
      await connection.close();
      await sim.close();
      await sink.close();
    },
  };
}

/** A unique message for one test: ids, a phone number, and a policy short enough for tests. */
export function testMessage(name: string) {
  const n = Math.floor(Math.random() * 9_000_000) + 1_000_000;
  return {
    agentId: 'test-agent',
    messageId: `${name}-${randomUUID()}`,
    phone: `+1415${n}`,
    policy: { graceMs: 1500, lingerMs: 2500, revokeAttempts: 2, maxRevokeRounds: 2, fallbackAttempts: 4 },
  };
}

/**
 * Registers a test message with the simulator as sent (by the backend, with its own TTL when
 * `track.expireTime` is given), then tracks it as an OTP with a 1.5 s deadline unless `track` says otherwise.
 */
export async function sendAndTrack(
  stack: GuardStack,
  name: string,
  plan: Parameters<GuardStack['sim']['registerSent']>[0]['plan'],
  track: Record<string, unknown> = {},
) {
  const m = testMessage(name);
  stack.sim.registerSent({ agentId: m.agentId, messageId: m.messageId, phone: m.phone, plan, expireTime: track.expireTime as string | undefined });
  const { workflowId } = await stack.guards.track({
    agentId: m.agentId,
    messageId: m.messageId,
    phone: m.phone,
    staleIn: '1500ms',
    fallbackText: `code for ${name}`,
    trafficType: 'AUTHENTICATION',
    policy: m.policy,
    ...track,
  });
  return { ...m, workflowId };
}
