// The RBM client and the activities, against the simulator and the SMS sink over real HTTP: the real
// google-auth-library token exchange, every RBM answer classified, and ApplicationFailures the
// workflow's retry policy can act on. The SMS providers themselves: test/activities/fallback.test.ts.
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { createServer } from 'node:net';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActivities } from '../../activities/index.ts';
import { createFallbackChannel } from '../../activities/fallback.ts';
import { createRbmClient, RbmError, type RbmClient } from '../../activities/rbm.ts';
import { loadConfig, type Config } from '../../config/index.ts';
import { ERROR_TYPES, MAX_RETRY_AFTER_MS, type FallbackInput, type RbmSendInput } from '../../workflows/contract.ts';
import { startRbmSimulator, type RbmSimulator } from '../../dev/sim/rbm-simulator.ts';
import { startSmsSink, type SmsSink } from '../../dev/sim/sms-sink.ts';

const AGENT = 'guard-test-agent';
const PHONE = '+12223334444';
const TEXT = 'Your code is 987654';
const TIMEOUT_MS = 300;

let sim: RbmSimulator;
let sink: SmsSink;
let config: Config;
let rbm: RbmClient;
/** Every error message the clients produced, checked for leaks at the end. */
const messages: string[] = [];

beforeAll(async () => {
  [sim, sink] = await Promise.all([
    startRbmSimulator({ defaultPlan: { deliverAfterMs: null }, noRcsPhones: ['+15550000404'] }),
    startSmsSink({ httpToken: 'sms-endpoint-token' }),
  ]);
  config = loadConfig({
    RBM_API_BASE_URL: sim.url,
    RBM_TOKEN_URL: sim.tokenUrl,
    GOOGLE_APPLICATION_CREDENTIALS: sim.writeServiceAccountKeyFile(),
    RBM_REQUEST_TIMEOUT_MS: String(TIMEOUT_MS),
    FALLBACK_PROVIDER: 'http',
    FALLBACK_HTTP_URL: `${sink.url}/messages`,
    FALLBACK_HTTP_TOKEN: 'sms-endpoint-token',
    FALLBACK_REQUEST_TIMEOUT_MS: String(TIMEOUT_MS),
  });
  rbm = createRbmClient({ config });
});
afterAll(async () => {
  await Promise.all([sim.close(), sink.close()]);
});

/** The error a promise rejects with, for asserting its fields. */
async function failure<T extends Error>(promise: Promise<unknown>, type: abstract new (...args: never[]) => T): Promise<T> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(type);
  messages.push((error as Error).message);
  return error as T;
}

function pending(plan = {}) {
  const messageId = randomUUID();
  sim.registerSent({ agentId: AGENT, messageId, phone: PHONE, plan });
  return { agentId: AGENT, messageId, phone: PHONE };
}

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (!address || typeof address === 'string') throw new Error('no address');
  return address.port;
}

describe('RBM client', () => {
  it('gets its token through google-auth-library\'s real JWT exchange, once, and revokes (200 → REVOKED)', async () => {
    const before = sim.stats();
    const refs = [pending(), pending(), pending()];
    // A roomier timeout than the other tests': a cold RSA signature on a loaded machine can take 300 ms.
    const client = createRbmClient({ config: { ...config, RBM_REQUEST_TIMEOUT_MS: 3000 } });
    const results = await Promise.all(refs.map((ref) => client.revoke(ref)));
    expect(results).toEqual(['REVOKED', 'REVOKED', 'REVOKED']);
    for (const ref of refs) expect(sim.truth(ref.messageId)?.revokedAt).toBeTypeOf('number');
    const after = sim.stats();
    expect(after.tokensIssued).toBe(1);
    expect(after.tokenRequests - before.tokenRequests).toBeLessThanOrEqual(1);
  });

  it('reads a 404 as ALREADY_DELIVERED', async () => {
    const ref = pending();
    sim.deliver(ref.messageId);
    expect(await rbm.revoke(ref)).toBe('ALREADY_DELIVERED');
  });

  it('classifies 403 as a config error', async () => {
    sim.setAgentDenied('denied-agent', true);
    const error = await failure(rbm.revoke({ ...pending(), agentId: 'denied-agent' }), RbmError);
    expect(error).toMatchObject({ type: ERROR_TYPES.rbmConfig, status: 403, retryable: false });
    expect(error.message).toContain('PERMISSION_DENIED');
  });

  it('classifies 429 as retryable and carries Retry-After', async () => {
    const ref = pending();
    sim.injectRevokeFaults(ref.messageId, [{ status: 429, retryAfterSeconds: 7 }]);
    const error = await failure(rbm.revoke(ref), RbmError);
    expect(error).toMatchObject({ type: ERROR_TYPES.rbmRetryable, status: 429, retryAfterSeconds: 7 });
    expect(sim.truth(ref.messageId)?.revokedAt).toBeUndefined();
    expect(await rbm.revoke(ref)).toBe('REVOKED');
  });

  it.each([500, 503] as const)('classifies %i as retryable', async (status) => {
    const ref = pending();
    sim.injectRevokeFaults(ref.messageId, [{ status }]);
    const error = await failure(rbm.revoke(ref), RbmError);
    expect(error).toMatchObject({ type: ERROR_TYPES.rbmRetryable, status, retryAfterSeconds: undefined });
  });

  it('times out a hung revoke as retryable, within the configured timeout', async () => {
    const ref = pending();
    sim.injectRevokeFaults(ref.messageId, [{ hangMs: 5000 }]);
    const started = Date.now();
    const error = await failure(rbm.revoke(ref), RbmError);
    expect(error.type).toBe(ERROR_TYPES.rbmRetryable);
    expect(error.message).toMatch(/timed out after 300 ms/);
    expect(Date.now() - started).toBeLessThan(TIMEOUT_MS + 1000);
  });

  it('treats a lost response as retryable — and the revoke had really happened', async () => {
    const ref = pending();
    sim.injectRevokeFaults(ref.messageId, [{ lostResponse: true }]);
    const error = await failure(rbm.revoke(ref), RbmError);
    expect(error.type).toBe(ERROR_TYPES.rbmRetryable);
    expect(error.message).toMatch(/network error/);
    expect(sim.truth(ref.messageId)?.revokedAt).toBeTypeOf('number');
  });

  it('treats a refused connection as retryable, naming only the error code', async () => {
    const client = createRbmClient({ config: { ...config, RBM_API_BASE_URL: `http://127.0.0.1:${await closedPort()}` } });
    const error = await failure(client.revoke(pending()), RbmError);
    expect(error).toMatchObject({ type: ERROR_TYPES.rbmRetryable, message: 'RBM revoke network error: ECONNREFUSED' });
  });

  it('exchanges a fresh token once when the cached one gets 401; a second 401 is a config error', async () => {
    const client = createRbmClient({ config });
    expect(await client.revoke(pending())).toBe('REVOKED');
    const issued = sim.stats().tokensIssued;
    sim.expireTokens();
    expect(await client.revoke(pending())).toBe('REVOKED');
    expect(sim.stats().tokensIssued).toBe(issued + 1);
    const ref = pending();
    sim.injectRevokeFaults(ref.messageId, [{ status: 401 }, { status: 401 }]);
    const error = await failure(client.revoke(ref), RbmError);
    expect(error).toMatchObject({ type: ERROR_TYPES.rbmConfig, status: 401 });
    expect(sim.truth(ref.messageId)?.revokeCalls).toBe(2);
  });

  it('classifies a key the token endpoint refuses as a config error', async () => {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const client = createRbmClient({
      config,
      credentials: {
        client_email: sim.serviceAccountKey.client_email,
        private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      },
    });
    const error = await failure(client.revoke(pending()), RbmError);
    expect(error).toMatchObject({ type: ERROR_TYPES.rbmConfig, status: 400 });
    expect(error.message).toContain('invalid_grant');
  });

  it('classifies a key that cannot sign as a config error', async () => {
    const client = createRbmClient({ config, credentials: { client_email: sim.serviceAccountKey.client_email, private_key: 'not a PEM key' } });
    const error = await failure(client.revoke(pending()), RbmError);
    expect(error).toMatchObject({ type: ERROR_TYPES.rbmConfig, message: expect.stringContaining('cannot sign') });
  });

  it('rides out a token-endpoint 503 (google-auth-library retries) and reports an outage as retryable', async () => {
    const own = await startRbmSimulator({ defaultPlan: { deliverAfterMs: null } });
    try {
      const ownConfig = {
        ...config,
        RBM_API_BASE_URL: own.url,
        RBM_TOKEN_URL: own.tokenUrl,
        GOOGLE_APPLICATION_CREDENTIALS: own.writeServiceAccountKeyFile(),
        RBM_REQUEST_TIMEOUT_MS: 1500,
      };
      const ref = () => {
        const messageId = randomUUID();
        own.registerSent({ agentId: AGENT, messageId, phone: PHONE });
        return { agentId: AGENT, messageId, phone: PHONE };
      };
      own.injectTokenFaults([{ status: 503 }]);
      expect(await createRbmClient({ config: ownConfig }).revoke(ref())).toBe('REVOKED');
      expect(own.stats()).toMatchObject({ tokenRequests: 2, tokensIssued: 1 });

      own.injectTokenFaults(Array.from({ length: 10 }, () => ({ status: 503 as const })));
      const error = await failure(createRbmClient({ config: ownConfig }).revoke(ref()), RbmError);
      expect(error.type).toBe(ERROR_TYPES.rbmRetryable);
      expect(error.message).toMatch(/token exchange failed|timed out/);
    } finally {
      await own.close();
    }
  });

  it('sends a text message with its traffic type and expiry', async () => {
    const messageId = randomUUID();
    const expireTime = new Date(Date.now() + 60_000).toISOString();
    await rbm.send({ agentId: AGENT, messageId, phone: PHONE, text: TEXT, trafficType: 'AUTHENTICATION', expireTime });
    expect(sim.truth(messageId)).toMatchObject({ origin: 'api', phone: PHONE, text: TEXT, expireAt: Date.parse(expireTime) });
    // A retry with the same messageId is harmless.
    await rbm.send({ agentId: AGENT, messageId, phone: PHONE, text: TEXT, trafficType: 'AUTHENTICATION', expireTime });
    expect(sim.allTruth().filter((t) => t.messageId === messageId)).toHaveLength(1);
  });

  it('classifies send 404 as no RCS, and a 400 as a config error', async () => {
    const noRcs = await failure(
      rbm.send({ agentId: AGENT, messageId: randomUUID(), phone: '+15550000404', text: TEXT, trafficType: 'TRANSACTION' }),
      RbmError,
    );
    expect(noRcs).toMatchObject({ type: ERROR_TYPES.rbmNoRcs, status: 404 });
    const tooLong = await failure(
      rbm.send({ agentId: AGENT, messageId: randomUUID(), phone: PHONE, text: 'x'.repeat(4000), trafficType: 'TRANSACTION' }),
      RbmError,
    );
    expect(tooLong).toMatchObject({ type: ERROR_TYPES.rbmConfig, status: 400 });
  });

  it('picks the global or regional host, and the override wins', () => {
    const base = { ...config, RBM_API_BASE_URL: undefined };
    expect(createRbmClient({ config: { ...base, RBM_REGION: 'global' } }).baseUrl).toBe('https://rcsbusinessmessaging.googleapis.com');
    expect(createRbmClient({ config: { ...base, RBM_REGION: 'europe' } }).baseUrl).toBe('https://europe-rcsbusinessmessaging.googleapis.com');
    expect(createRbmClient({ config: { ...base, RBM_REGION: 'asia' } }).baseUrl).toBe('https://asia-rcsbusinessmessaging.googleapis.com');
    expect(createRbmClient({ config: { ...config, RBM_REGION: 'us' } }).baseUrl).toBe(sim.url);
  });
});

describe('activities', () => {
  const logged: string[] = [];
  const logger = {
    log: (_level: string, message: string, meta?: Record<string, unknown>) => void logged.push(`${message} ${JSON.stringify(meta ?? {})}`),
    trace: (m: string, meta?: Record<string, unknown>) => logger.log('TRACE', m, meta),
    debug: (m: string, meta?: Record<string, unknown>) => logger.log('DEBUG', m, meta),
    info: (m: string, meta?: Record<string, unknown>) => logger.log('INFO', m, meta),
    warn: (m: string, meta?: Record<string, unknown>) => logger.log('WARN', m, meta),
    error: (m: string, meta?: Record<string, unknown>) => logger.log('ERROR', m, meta),
  };
  const env = new MockActivityEnvironment(undefined, { logger });
  const activities = () => createActivities({ rbm, fallback: createFallbackChannel(config) });
  const sms = (): FallbackInput => ({ idempotencyKey: randomUUID(), channel: 'sms', phone: PHONE, text: TEXT });

  async function applicationFailure(promise: Promise<unknown>): Promise<ApplicationFailure> {
    const error = await promise.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ApplicationFailure);
    return error as ApplicationFailure;
  }

  it('revoke resolves with the client\'s result and the attempt that got it', async () => {
    expect(await env.run(activities().revoke, pending())).toEqual({ result: 'REVOKED', attempt: 1 });
  });

  it('a 429 becomes a retryable failure whose next retry waits for Retry-After', async () => {
    const ref = pending();
    sim.injectRevokeFaults(ref.messageId, [{ status: 429, retryAfterSeconds: 7 }]);
    const error = await applicationFailure(env.run(activities().revoke, ref));
    expect(error).toMatchObject({ type: ERROR_TYPES.rbmRetryable, nonRetryable: false, nextRetryDelay: 7000 });
  });

  it('a 5xx is retryable without an imposed delay', async () => {
    const ref = pending();
    sim.injectRevokeFaults(ref.messageId, [{ status: 503 }]);
    const error = await applicationFailure(env.run(activities().revoke, ref));
    expect(error).toMatchObject({ type: ERROR_TYPES.rbmRetryable, nonRetryable: false, nextRetryDelay: undefined });
  });

  it('config errors, no-RCS and permanent provider refusals are non-retryable', async () => {
    const denied = await applicationFailure(env.run(activities().revoke, { ...pending(), agentId: 'denied-agent' }));
    expect(denied).toMatchObject({ type: ERROR_TYPES.rbmConfig, nonRetryable: true });
    const toNoRcsPhone: RbmSendInput = { agentId: AGENT, messageId: randomUUID(), phone: '+15550000404', text: TEXT, trafficType: 'TRANSACTION' };
    const noRcs = await applicationFailure(env.run(activities().sendRbmMessage, toNoRcsPhone));
    expect(noRcs).toMatchObject({ type: ERROR_TYPES.rbmNoRcs, nonRetryable: true });
    sink.injectFaults([{ status: 400 }]);
    const refused = await applicationFailure(env.run(activities().sendFallback, sms()));
    expect(refused).toMatchObject({ type: ERROR_TYPES.fallbackPermanent, nonRetryable: true });
  });

  it('a fallback failure carries whether the SMS may have gone out, and a Retry-After capped at MAX_RETRY_AFTER_MS', async () => {
    sink.injectFaults([{ lostResponse: true }, { status: 429, retryAfterSeconds: 3600 }]);
    const lost = await applicationFailure(env.run(activities().sendFallback, sms()));
    expect(lost).toMatchObject({ type: ERROR_TYPES.fallbackRetryable, nonRetryable: false, details: [{ maybeSent: true, status: null, retryAfterSeconds: null }] });
    const throttled = await applicationFailure(env.run(activities().sendFallback, sms()));
    expect(throttled).toMatchObject({ details: [{ maybeSent: false, status: 429, retryAfterSeconds: 3600 }], nextRetryDelay: MAX_RETRY_AFTER_MS });
  });

  it('a Twilio lookup that fails is a retryable FallbackLookupFailedError, maybe sent', async () => {
    const twilio = createFallbackChannel({
      ...config,
      FALLBACK_PROVIDER: 'twilio',
      TWILIO_ACCOUNT_SID: sink.twilio.accountSid,
      TWILIO_AUTH_TOKEN: sink.twilio.authToken,
      TWILIO_FROM: '+15550009999',
      TWILIO_API_BASE_URL: sink.url,
    });
    sink.injectLookupFaults([{ status: 503 }]);
    const error = await applicationFailure(
      env.run(createActivities({ rbm, fallback: twilio }).sendFallback, { ...sms(), lookupSince: new Date().toISOString() }),
    );
    expect(error).toMatchObject({ type: ERROR_TYPES.fallbackLookupFailed, nonRetryable: false, details: [{ maybeSent: true, status: 503 }] });
  });

  it('sendFallback returns the provider receipt', async () => {
    const receipt = await env.run(activities().sendFallback, sms());
    expect(receipt).toMatchObject({ provider: 'http', providerMessageId: expect.stringMatching(/^msg_/) });
  });

  it('never puts a phone number, the text or a token in logs or error messages', () => {
    expect(logged.length).toBeGreaterThan(3);
    const everything = [...logged, ...messages].join('\n');
    expect(messages.length).toBeGreaterThan(10);
    for (const secret of [PHONE, '15550000404', TEXT, '987654', 'ya29', 'Bearer']) {
      expect(everything).not.toContain(secret);
    }
  });
});
