// Property: whatever is wrong with a POST /v1/guards body, the REAL listening API answers 400
// problem+json naming the broken field (never a 5xx), and no guard exists afterwards — checked
// against Temporal itself.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, expect, inject, it } from 'vitest';
import fc from 'fast-check';
import { Client, Connection } from '@temporalio/client';
import { loadConfig } from '../../../config/index.ts';
import { createLogger } from '../../../config/logger.ts';
import { guardWorkflowId } from '../../../workflows/contract.ts';
import { startApiServer, type ApiServer } from '../../../service/api/server.ts';
import { testCodec } from '../../support/encryption.ts';
import { dataConverter } from '../../../client/codec.ts';

const KEY = 'property-test-key-0123456789abcdef';
const RUNS = Number(process.env.API_PROPERTY_RUNS ?? 100);
let client: Client;
let api: ApiServer;

beforeAll(async () => {
  client = new Client({ connection: await Connection.connect({ address: inject('temporalAddress') }), dataConverter: dataConverter(testCodec) });
  const config = loadConfig({
    TEMPORAL_ADDRESS: inject('temporalAddress'),
    RBM_GUARD_ENCRYPTION_KEYS: 'test-1:kSuLuv8FJQNjSPi0F4RY7d1r518lNfhDtqCcU8mu/Hs=',
    TEMPORAL_TASK_QUEUE: `api-prop-${randomUUID()}`, // no worker: a guard started by mistake would just sit there, and be found
    RBM_GUARD_API_KEYS: KEY,
    RBM_GUARD_API_HOST: '127.0.0.1',
    RBM_GUARD_API_PORT: '0',
    RBM_GUARD_API_RATE_LIMIT: '100000',
    RBM_GUARD_API_BODY_LIMIT_BYTES: '4096',
    LOG_LEVEL: 'silent',
  });
  api = await startApiServer(config, { client, logger: createLogger(config) });
});
afterAll(async () => {
  await api?.close();
  await client?.connection.close();
});

type Body = Record<string, unknown>;
/** One thing wrong with a body, and the field the answer must name. */
type Mutation = { field: string; apply: (b: Body) => void };

const notString = fc.oneof(fc.integer(), fc.boolean(), fc.constant(null), fc.array(fc.integer(), { maxLength: 2 }), fc.constant({}));
const setTo = (key: string, value: unknown): Mutation => ({ field: `body.${key}`, apply: (b) => void (b[key] = value) });
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.constantFrom('agentId', 'messageId', 'phone').map((key): Mutation => ({ field: `body.${key}`, apply: (b) => void delete b[key] })),
  fc.constant<Mutation>({ field: 'body.staleAt', apply: (b) => void delete b.staleIn }),
  fc.tuple(fc.constantFrom('agentId', 'messageId', 'phone', 'trafficType', 'sendText'), notString).map(([k, v]) => setTo(k, v)),
  fc.tuple(fc.constantFrom('fallbackText', 'staleAt', 'sentAt', 'expireTime'), fc.oneof(fc.integer(), fc.boolean(), fc.constant({}))).map(([k, v]) => setTo(k, v)),
  fc.oneof(fc.boolean(), fc.constant(-5), fc.constant(0), fc.constant([])).map((v) => setTo('staleIn', v)),
  fc.string({ maxLength: 12 }).filter((s) => !/^\+[1-9]\d{6,14}$/.test(s)).map((s) => setTo('phone', s)),
  fc.string({ maxLength: 12 }).filter((s) => !/^\s*\d+(\.\d+)?(ms|s|m|h|d)\s*$/.test(s)).map((s) => setTo('staleIn', s)),
  fc.tuple(fc.string({ maxLength: 6 }), fc.constantFrom(' ', '/', '#', '\u00e9')).map(([s, bad]) => setTo('agentId', `a${s}${bad}b`)),
  fc.string({ maxLength: 6 }).map((s) => setTo('messageId', `m ${s}x`)),
  fc.string({ minLength: 1, maxLength: 8 }).filter((s) => !/^\d{4}-\d{2}-\d{2}T/.test(s)).map((s): Mutation => ({ field: 'body.staleAt', apply: (b) => { delete b.staleIn; b.staleAt = s; } })),
  fc.constantFrom('graceMs', 'maxRevokeRounds', 'revokeAttempts', 'fallbackAttempts', 'lingerMs').map((k): Mutation => ({ field: `body.policy.${k}`, apply: (b) => void (b.policy = { [k]: -1 }) })),
  fc.string({ minLength: 1, maxLength: 8 })
    .filter((k) => !['agentId', 'messageId', 'phone', 'staleAt', 'staleIn', 'sentAt', 'expireTime', 'ttl', 'trafficType', 'fallbackText', 'sendText', 'policy', '__proto__'].includes(k))
    .map((k): Mutation => ({ field: 'body', apply: (b) => void (b[k] = 1) })),
);

it('every bad body: 400 problem+json naming the field, and no guard', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(mutation, { minLength: 1, maxLength: 3 }), async (mutations) => {
      const body: Body = { agentId: 'prop-agent', messageId: `prop-${randomUUID()}`, phone: '+14155550100', staleIn: '10m', fallbackText: 'code' };
      const ids = { agentId: body.agentId, messageId: body.messageId };
      for (const m of mutations) m.apply(body);
      const res = await fetch(`${api.url}/v1/guards`, { method: 'POST', headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
      const problem = (await res.json()) as { status: number; errors?: { field: string; message: string }[] };
      expect(res.status).toBe(400);
      expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(problem.status).toBe(400);
      const fields = (problem.errors ?? []).map((e) => e.field);
      expect(fields.length).toBeGreaterThan(0);
      for (const f of fields) expect(f).toMatch(/^body(\.|$)/);
      const expected = mutations.map((m) => m.field);
      if (mutations.length === 1) expect(fields).toContain(expected[0]);
      else expect(fields.some((f) => expected.includes(f))).toBe(true);
      const started = await client.workflow.getHandle(guardWorkflowId(ids.agentId as string, ids.messageId as string)).describe().then(() => true, () => false);
      expect(started).toBe(false);
    }),
    { numRuns: RUNS },
  );
}, 120_000);
