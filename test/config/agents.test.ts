// Many agents, partners and regions (RBM_AGENTS_FILE, config/agents.ts): two partners, each with its
// own service-account key and webhook client token, their agents in two regions. Over real HTTP
// against the simulator (the real google-auth-library JWT exchange at its token endpoint), the
// suite's Temporal dev server for the webhook and the HTTP API, and the CLI in-process.
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { Client, Connection, WorkflowNotFoundError } from '@temporalio/client';
import { MockActivityEnvironment } from '@temporalio/testing';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createActivities } from '../../activities/index.ts';
import { createFallbackChannel } from '../../activities/fallback.ts';
import { createRbmClient, RbmError, type RbmClient } from '../../activities/rbm.ts';
import { agentDirectory } from '../../config/agents.ts';
import { ConfigError, loadConfig, type Config } from '../../config/index.ts';
import { createLogger } from '../../config/logger.ts';
import { runCli } from '../../client/cli.ts';
import { pubsubPush, startRbmSimulator, userEvent, type RbmSimulator } from '../../dev/sim/rbm-simulator.ts';
import { startApiServer } from '../../service/api/server.ts';
import { buildWebhookApp, EVENTS_PATH } from '../../service/webhook/app.ts';
import { ERROR_TYPES, guardWorkflowId } from '../../workflows/contract.ts';

const PHONE = '+12223334444';
// acme's agent lives in Europe; globex's two agents in the US, sharing globex's key.
const AGENTS = { eu: 'brand-eu', us: 'brand-us', us2: 'brand-us-2' } as const;
const UNKNOWN = 'brand-nobody';

let sim: RbmSimulator;
let dir: string;
let agentsFile: string;
let config: Config;
let client: Client;
const toClose: (() => Promise<unknown>)[] = [];

/** Writes an agents file into the test folder (key files by relative name: read from its folder). */
function writeAgentsFile(name: string, content: unknown): string {
  const path = join(dir, name);
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
  return path;
}

function agentsContent(agents: Record<string, { partner: string; region: string }> = {
  [AGENTS.eu]: { partner: 'acme', region: 'europe' },
  [AGENTS.us]: { partner: 'globex', region: 'us' },
  [`${AGENTS.us2}@rbm.goog`]: { partner: 'globex', region: 'us' },
}) {
  return {
    partners: {
      acme: { keyFile: 'acme-key.json', clientTokens: [sim.partnerClientToken('acme')] },
      globex: { keyFile: 'globex-key.json', clientTokens: ['globex-old-token', sim.partnerClientToken('globex')] },
    },
    agents,
  };
}

const envFor = (file: string, extra: Record<string, string> = {}) => ({
  RBM_AGENTS_FILE: file,
  RBM_API_BASE_URL: sim.regionalUrl,
  RBM_TOKEN_URL: sim.tokenUrl,
  RBM_REQUEST_TIMEOUT_MS: '5000',
  FALLBACK_HTTP_URL: 'http://127.0.0.1:65500/never-called',
  LOG_LEVEL: 'silent',
  ...extra,
});

beforeAll(async () => {
  sim = await startRbmSimulator({
    defaultPlan: { deliverAfterMs: null },
    partners: {
      acme: { agents: { [AGENTS.eu]: 'europe' } },
      globex: { agents: { [AGENTS.us]: 'us', [AGENTS.us2]: 'us' } },
    },
  });
  dir = mkdtempSync(join(tmpdir(), 'rbm-guard-agents-'));
  for (const partner of ['acme', 'globex']) {
    writeFileSync(join(dir, `${partner}-key.json`), JSON.stringify(sim.partnerKey(partner)), { mode: 0o600 });
  }
  agentsFile = writeAgentsFile('agents.json', agentsContent());
  config = loadConfig(envFor(agentsFile));
  client = new Client({ connection: await Connection.connect({ address: inject('temporalAddress') }) });
});
afterAll(async () => {
  for (const close of toClose.reverse()) await close();
  await client?.connection.close();
  await sim?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function pending(agentId: string) {
  const messageId = randomUUID();
  sim.registerSent({ agentId, messageId, phone: PHONE });
  return { agentId, messageId, phone: PHONE };
}

const requestsFor = (messageId: string) => sim.requests().filter((r) => r.messageId === messageId);
const email = (partner: string) => sim.partnerKey(partner).client_email;

describe('the agents file', () => {
  it('refuses a bad file with a ConfigError naming the field path', () => {
    const bad = writeAgentsFile('bad.json', {
      partners: { acme: { keyFile: 'acme-key.json', clientTokens: [] } },
      agents: { 'brand-x': { partner: 'acme', region: 'mars' } },
    });
    const error = (() => {
      try {
        loadConfig(envFor(bad));
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(ConfigError);
    const issues = (error as ConfigError).issues;
    expect(issues).toContainEqual({ variable: 'RBM_AGENTS_FILE', message: 'agents.brand-x.region: expected one of global, us, europe, asia' });
    expect(issues).toContainEqual({ variable: 'RBM_AGENTS_FILE', message: 'partners.acme.clientTokens: at least one webhook client token' });
    expect((error as ConfigError).message).toContain('RBM_AGENTS_FILE: agents.brand-x.region: ');

    const orphan = writeAgentsFile('orphan.json', agentsContent({ 'brand-y': { partner: 'initech', region: 'asia' } }));
    expect(() => loadConfig(envFor(orphan))).toThrow(/RBM_AGENTS_FILE: agents\.brand-y\.partner: no partner "initech" in partners \(acme, globex\)/);
    expect(() => loadConfig(envFor(writeAgentsFile('broken.json', '{"partners": ')))).toThrow(/RBM_AGENTS_FILE: .*broken\.json: not JSON/);
    expect(() => loadConfig(envFor(join(dir, 'missing.json')))).toThrow(/RBM_AGENTS_FILE: .*missing\.json: cannot read it \(ENOENT\)/);
  });

  it('without a file, the single variables serve every agent, exactly as before', () => {
    const single = agentDirectory(loadConfig({ GOOGLE_APPLICATION_CREDENTIALS: '/keys/k.json', RBM_REGION: 'asia', RBM_CLIENT_TOKEN: 'a, b' }));
    expect(single.agents).toBeUndefined();
    expect(single.lookup('any-agent-at-all')).toEqual({ partner: 'default', keyFile: '/keys/k.json', region: 'asia', clientTokens: ['a', 'b'] });
    const listed = agentDirectory(config);
    expect([...(listed.agents ?? [])].sort()).toEqual([AGENTS.eu, AGENTS.us2, AGENTS.us].sort());
    expect(listed.lookup(`${AGENTS.eu}@rbm.goog`)).toMatchObject({ partner: 'acme', keyFile: join(dir, 'acme-key.json'), region: 'europe' });
    expect(listed.lookup(UNKNOWN)).toBeUndefined();
  });

  it('in production, each agent\u2019s calls go to its own region\u2019s Google host', () => {
    const production = createRbmClient({ config: { ...config, RBM_API_BASE_URL: undefined } });
    expect(production.baseUrlFor(AGENTS.eu)).toBe('https://europe-rcsbusinessmessaging.googleapis.com');
    expect(production.baseUrlFor(AGENTS.us)).toBe('https://us-rcsbusinessmessaging.googleapis.com');
    expect(() => production.baseUrlFor(UNKNOWN)).toThrow(RbmError);
  });
});

describe('RBM calls per agent', () => {
  let rbm: RbmClient;
  beforeAll(() => {
    rbm = createRbmClient({ config });
  });

  it('sends each DELETE to its agent\u2019s regional host with its partner\u2019s token; one token exchange per key', async () => {
    const before = sim.tokenExchanges();
    const refs = [pending(AGENTS.eu), pending(AGENTS.us), pending(AGENTS.eu), pending(AGENTS.us2), pending(AGENTS.us)];
    for (const ref of refs) expect(await rbm.revoke(ref)).toBe('REVOKED');
    for (const ref of refs) {
      const want = ref.agentId === AGENTS.eu ? { region: 'europe', account: email('acme') } : { region: 'us', account: email('globex') };
      expect(requestsFor(ref.messageId)).toEqual([{ method: 'DELETE', agentId: ref.agentId, messageId: ref.messageId, status: 200, ...want }]);
      expect(sim.truth(ref.messageId)?.revokedAt).toBeGreaterThan(0);
    }
    const after = sim.tokenExchanges();
    const delta = (account: string) => (after[account] ?? 0) - (before[account] ?? 0);
    // The token cache is per key: globex's two agents share one token, acme has its own.
    expect(delta(email('acme'))).toBe(1);
    expect(delta(email('globex'))).toBe(1);
    expect(delta(sim.serviceAccountKey.client_email)).toBe(0);
  });

  it('sends a message to its agent\u2019s regional host', async () => {
    const messageId = randomUUID();
    await rbm.send({ agentId: AGENTS.us2, messageId, phone: PHONE, text: 'hello', trafficType: 'TRANSACTION' });
    expect(requestsFor(messageId)).toMatchObject([{ method: 'POST', region: 'us', account: email('globex'), status: 200 }]);
  });

  it('the simulator refuses another partner\u2019s token (403) and another region\u2019s host, and leaves the message alone', async () => {
    const wrong = writeAgentsFile('wrong.json', agentsContent({
      [AGENTS.eu]: { partner: 'globex', region: 'europe' }, // acme's agent, with globex's key
      [AGENTS.us]: { partner: 'globex', region: 'asia' }, // globex's agent, on the wrong host
    }));
    const misrouted = createRbmClient({ config: loadConfig(envFor(wrong)) });
    const stolen = pending(AGENTS.eu);
    const refused = await misrouted.revoke(stolen).then(() => undefined, (e: unknown) => e);
    expect(refused).toBeInstanceOf(RbmError);
    expect(refused).toMatchObject({ type: ERROR_TYPES.rbmConfig, status: 403 });
    expect(requestsFor(stolen.messageId)).toMatchObject([{ region: 'europe', account: email('globex'), status: 403 }]);
    const lost = pending(AGENTS.us);
    await misrouted.revoke(lost);
    expect(requestsFor(lost.messageId)).toMatchObject([{ region: 'asia', account: email('globex'), status: 404 }]);
    expect([stolen, lost].map((r) => sim.truth(r.messageId)).map((t) => [t?.revokedAt, t?.deliveredAt, t?.revokeCalls])).toEqual([[undefined, undefined, 1], [undefined, undefined, 1]]);
  });

  it('an agent in no entry fails non-retryably, naming the agent, and nothing reaches RBM', async () => {
    const calls = sim.requests().length;
    const error = await rbm.revoke({ agentId: UNKNOWN, messageId: randomUUID(), phone: PHONE }).then(() => undefined, (e: unknown) => e);
    expect(error).toBeInstanceOf(RbmError);
    expect(error).toMatchObject({ type: ERROR_TYPES.rbmConfig, message: expect.stringContaining(`"${UNKNOWN}"`) });

    const activities = createActivities({ rbm, fallback: createFallbackChannel(config) });
    const quiet = () => {};
    const env = new MockActivityEnvironment(undefined, { logger: { log: quiet, trace: quiet, debug: quiet, info: quiet, warn: quiet, error: quiet } });
    for (const run of [
      () => env.run(activities.revoke, { agentId: UNKNOWN, messageId: randomUUID(), phone: PHONE }),
      () => env.run(activities.sendRbmMessage, { agentId: UNKNOWN, messageId: randomUUID(), phone: PHONE, text: 'hi', trafficType: 'TRANSACTION' as const }),
    ]) {
      const failure = await run().then(() => undefined, (e: unknown) => e);
      expect(failure).toBeInstanceOf(ApplicationFailure);
      expect(failure).toMatchObject({ type: ERROR_TYPES.rbmConfig, nonRetryable: true, message: expect.stringContaining(UNKNOWN) });
    }
    expect(sim.requests().length).toBe(calls);
  });
});

describe('track refuses an agent without credentials before any guard starts', () => {
  it('HTTP API: 400 naming body.agentId; a listed agent is guarded', async () => {
    const key = `agents-test-key-${randomBytes(12).toString('hex')}`;
    const api = await startApiServer(
      loadConfig(envFor(agentsFile, { RBM_GUARD_API_KEYS: key, RBM_GUARD_API_PORT: '0', RBM_GUARD_API_HOST: '127.0.0.1', TEMPORAL_TASK_QUEUE: `agents-test-${randomUUID()}` })),
      { client, logger: createLogger({ LOG_LEVEL: 'silent' }) },
    );
    toClose.push(() => api.close());
    const track = (agentId: string, messageId = randomUUID()) =>
      fetch(`${api.url}/v1/guards`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ agentId, messageId, phone: PHONE, staleIn: '10m', trafficType: 'TRANSACTION' }),
      });
    const messageId = randomUUID();
    const refused = await track(UNKNOWN, messageId);
    expect(refused.status).toBe(400);
    const problem = (await refused.json()) as { errors?: { field: string; message: string }[] };
    expect(problem.errors).toEqual([{ field: 'body.agentId', message: expect.stringContaining(`"${UNKNOWN}"`) }]);
    await expect(client.workflow.getHandle(guardWorkflowId(UNKNOWN, messageId)).describe()).rejects.toBeInstanceOf(WorkflowNotFoundError);

    const accepted = await track(`${AGENTS.us2}@rbm.goog`);
    expect(accepted.status).toBe(201);
    const { workflowId } = (await accepted.json()) as { workflowId: string };
    await client.workflow.getHandle(workflowId).terminate('test cleanup');
  });

  it('CLI: exit 2 naming the agent, without connecting to Temporal', async () => {
    let stderr = '';
    const code = await runCli(['track', '--agent', UNKNOWN, '--message-id', randomUUID(), '--phone', PHONE, '--stale-in', '10m'], {
      stdout: () => {},
      stderr: (t) => void (stderr += t),
      // An address nothing listens on: reaching for it would exit 3 (unreachable), not 2.
      env: { ...envFor(agentsFile), TEMPORAL_ADDRESS: '127.0.0.1:9', RBM_GUARD_ENCRYPTION_KEYS: `agents-test:${randomBytes(32).toString('base64')}` },
    });
    expect(code).toBe(2);
    expect(stderr).toContain(`--agent: no RBM credentials for agent "${UNKNOWN}"`);
  });
});

describe('webhook: each event checked against its own partner\u2019s tokens', () => {
  let app: FastifyInstance;
  let url: string;
  beforeAll(async () => {
    app = buildWebhookApp({ client, config: loadConfig(envFor(agentsFile, { TEMPORAL_TASK_QUEUE: `agents-webhook-${randomUUID()}` })) });
    url = `${await app.listen({ host: '127.0.0.1', port: 0 })}${EVENTS_PATH}`;
    sim.setWebhookUrl(url);
    toClose.push(() => app.close());
  });

  const delivered = (agentId: string) => userEvent({ agentId, phone: PHONE, eventType: 'DELIVERED', messageId: randomUUID() });

  it('accepts each partner\u2019s event signed with its own token (the simulator signs as RBM would)', async () => {
    for (const agentId of [AGENTS.eu, AGENTS.us, `${AGENTS.us2}@rbm.goog`]) {
      const event = delivered(agentId);
      const record = await sim.pushEvent(event, { retry: false });
      expect(record.attempts.map((a) => a.status), agentId).toEqual([200]);
      await client.workflow.getHandle(guardWorkflowId(agentId, event.messageId!)).terminate('test cleanup');
    }
    // globex's token during a rotation: the previous one still signs globex's events.
    const rotated = delivered(AGENTS.us);
    expect((await sim.pushEvent(rotated, { retry: false, clientToken: 'globex-old-token' })).attempts.map((a) => a.status)).toEqual([200]);
    await client.workflow.getHandle(guardWorkflowId(AGENTS.us, rotated.messageId!)).terminate('test cleanup');
  });

  it('refuses partner A\u2019s event signed with partner B\u2019s token, and an unknown agent\u2019s, with 401', async () => {
    const forged = await sim.pushEvent(delivered(AGENTS.eu), { retry: false, clientToken: sim.partnerClientToken('globex') });
    expect(forged.attempts.map((a) => a.status)).toEqual([401]);

    const push = pubsubPush(delivered(UNKNOWN), { clientToken: sim.partnerClientToken('acme') });
    const res = await fetch(url, { method: 'POST', headers: push.headers, body: JSON.stringify(push.body) });
    expect(res.status).toBe(401);
    expect(await res.json()).toEqual({ error: 'unknown_agent', message: expect.stringContaining(`"${UNKNOWN}"`) });
  });

  it('accepts the verification handshake with any partner\u2019s token, and no other', async () => {
    expect(await sim.verifyWebhook({ clientToken: sim.partnerClientToken('acme'), secret: 's-1' })).toEqual({ status: 200, body: 's-1' });
    expect(await sim.verifyWebhook({ clientToken: sim.partnerClientToken('globex'), secret: 's-2' })).toEqual({ status: 200, body: 's-2' });
    expect((await sim.verifyWebhook({ clientToken: sim.clientToken, secret: 's-3' })).status).toBe(403);
  });
});
