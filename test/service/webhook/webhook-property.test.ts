// Property: whatever arrives at the REAL listening webhook, bad input gets a 4xx (never a 5xx, never
// a crash), and nothing without a valid signature ever reaches Temporal — checked against Temporal
// itself: no workflow exists on this test's task queue for any unsigned or forged event.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import fc from 'fast-check';
import { Registry } from 'prom-client';
import { Client, Connection, WorkflowNotFoundError } from '@temporalio/client';
import { loadConfig, type Config } from '../../../config/index.ts';
import { GUARD_EVENT_TYPES, guardWorkflowId } from '../../../workflows/contract.ts';
import { EVENTS_PATH, rbmSignature } from '../../../service/webhook/app.ts';
import { normalizeAgentId } from '../../../workflows/contract.ts';
import { startWebhookServer, type WebhookServer } from '../../../service/webhook/server.ts';

const TOKEN = 'prop-token';
const RUNS = Number(process.env.WEBHOOK_PROPERTY_RUNS ?? 150);

let client: Client;
let server: WebhookServer;
let config: Config;
let eventsUrl: string;
/** Every (agent, message) an unsigned or forged event named: none may have a guard. */
const forgedTargets: [string, string][] = [];

beforeAll(async () => {
  client = new Client({ connection: await Connection.connect({ address: inject('temporalAddress') }) });
  config = loadConfig({
    RBM_CLIENT_TOKEN: TOKEN,
    TEMPORAL_TASK_QUEUE: `webhook-prop-${randomUUID()}`,
    WEBHOOK_HOST: '127.0.0.1',
    WEBHOOK_PORT: '0',
    WEBHOOK_METRICS_PORT: '0',
    WEBHOOK_BODY_LIMIT_BYTES: '2048',
    LOG_LEVEL: 'silent',
  });
  server = await startWebhookServer(config, { client, metrics: new Registry() });
  eventsUrl = `${server.url}${EVENTS_PATH}`;
});

afterAll(async () => {
  await server?.close();
  await client?.connection.close();
});

async function send(body: Uint8Array | string, headers: Record<string, string>, method = 'POST') {
  const payload = typeof body === 'string' ? body : new Uint8Array(body).buffer;
  const res = await fetch(eventsUrl, { method, headers, body: method === 'GET' ? undefined : payload });
  const text = await res.text();
  return { status: res.status, text };
}

const contentTypes = fc.constantFrom(
  'application/json',
  'application/json; charset=utf-8',
  'text/plain',
  'application/octet-stream',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
);
const guardEventType = fc.constantFrom(...GUARD_EVENT_TYPES, 'IS_TYPING', 'SUBSCRIBE', 'UNSUBSCRIBE', 'WHATEVER');
const agentId = fc.constantFrom('prop-agent', 'prop-agent@rbm.goog');
const eventLike = fc.record(
  {
    agentId,
    messageId: fc.uuid(),
    eventId: fc.uuid(),
    eventType: guardEventType,
    senderPhoneNumber: fc.constant('+15550001111'),
    phoneNumber: fc.constant('+15550001111'),
    sendTime: fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
    text: fc.string(),
  },
  { requiredKeys: ['agentId', 'messageId', 'eventType'] },
);
/** How an event is (mis)signed: not at all, garbage, the wrong token, the right token over other bytes. */
const badSignature = fc.oneof(
  fc.constant({ kind: 'none' as const }),
  fc.string({ maxLength: 100 }).map((s) => ({ kind: 'garbage' as const, value: s.replace(/[^\x20-\x7e]/g, '') })),
  fc.base64String({ minLength: 88, maxLength: 88 }).map((value) => ({ kind: 'random' as const, value })),
  fc.string({ minLength: 1, maxLength: 20 }).map((token) => ({ kind: 'wrong-token' as const, token: `${token}x` })),
  fc.uint8Array({ maxLength: 64 }).map((bytes) => ({ kind: 'other-bytes' as const, bytes })),
);

type BadSignature = typeof badSignature extends fc.Arbitrary<infer T> ? T : never;

function signatureHeader(sig: BadSignature, data: Buffer): string | undefined {
  switch (sig.kind) {
    case 'none':
      return undefined;
    case 'garbage':
    case 'random':
      return sig.value;
    case 'wrong-token':
      return rbmSignature(sig.token === TOKEN ? `${TOKEN}!` : sig.token, data);
    case 'other-bytes': {
      const other = Buffer.from(sig.bytes);
      return rbmSignature(TOKEN, other.equals(data) ? Buffer.concat([other, Buffer.from([0])]) : other);
    }
  }
}

function expectClientError(status: number, text: string) {
  // A 4xx with a JSON error body: never 5xx, never 200 for something unsigned.
  expect(status, text).toBeGreaterThanOrEqual(400);
  expect(status, text).toBeLessThan(500);
  expect(JSON.parse(text)).toHaveProperty('error');
}

describe('webhook under random input (real server, real Temporal)', () => {
  it('answers random bytes with a 4xx, whatever the content type', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 4096 }), contentTypes, async (bytes, contentType) => {
        const { status, text } = await send(bytes, { 'content-type': contentType });
        expectClientError(status, text);
      }),
      { numRuns: RUNS },
    );
  });

  it('answers random JSON with a 4xx', async () => {
    await fc.assert(
      fc.asyncProperty(fc.jsonValue({ maxDepth: 4 }), async (value) => {
        const { status, text } = await send(JSON.stringify(value) ?? 'null', { 'content-type': 'application/json' });
        expectClientError(status, text);
      }),
      { numRuns: RUNS },
    );
  });

  it('answers random envelopes with unsigned or forged events with a 4xx and never signals', async () => {
    const data = fc.oneof(
      eventLike.map((e) => ({ bytes: Buffer.from(JSON.stringify(e)), event: e as { agentId?: string; messageId?: string } | null })),
      fc.uint8Array({ minLength: 1, maxLength: 300 }).map((b) => ({ bytes: Buffer.from(b), event: null })),
      fc.string({ minLength: 1 }).map((s) => ({ bytes: Buffer.from(s), event: null })),
    );
    const dataEncoding = fc.constantFrom('base64', 'base64url', 'raw', 'broken');
    const envelopeExtras = fc.record(
      {
        attributes: fc.dictionary(fc.string({ maxLength: 10 }), fc.jsonValue({ maxDepth: 1 }), { maxKeys: 3 }),
        messageId: fc.string({ maxLength: 20 }),
        message_id: fc.string({ maxLength: 20 }),
        publishTime: fc.string({ maxLength: 30 }),
        subscription: fc.jsonValue({ maxDepth: 1 }),
      },
      { requiredKeys: [] },
    );
    const tally = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(data, dataEncoding, envelopeExtras, badSignature, async ({ bytes, event }, encoding, extras, sig) => {
        const encoded =
          encoding === 'raw'
            ? bytes.toString('utf8')
            : encoding === 'broken'
              ? `${bytes.toString('base64')}*`
              : bytes.toString(encoding);
        const { subscription, ...messageExtras } = extras;
        const body = JSON.stringify({ message: { ...messageExtras, data: encoded }, subscription });
        const headers: Record<string, string> = { 'content-type': 'application/json' };
        const signature = signatureHeader(sig, bytes);
        if (signature !== undefined) headers['x-goog-signature'] = signature;
        if (event?.agentId && event.messageId) forgedTargets.push([normalizeAgentId(event.agentId), event.messageId]);

        const { status, text } = await send(body, headers);
        expectClientError(status, text);
        tally.set(status, (tally.get(status) ?? 0) + 1);
      }),
      { numRuns: RUNS * 2 },
    );
    // Most forged events parse fine and are stopped by the signature check itself.
    expect(tally.get(401) ?? 0).toBeGreaterThan(RUNS / 4);

    expect(forgedTargets.length).toBeGreaterThan(10);
    // Asked of Temporal itself: no run exists for any forged target, none on this task queue at all.
    for (const [agent, messageId] of forgedTargets) {
      await expect(client.workflow.getHandle(guardWorkflowId(agent, messageId)).describe()).rejects.toBeInstanceOf(
        WorkflowNotFoundError,
      );
    }
    const { count } = await client.workflow.count(`TaskQueue = "${config.TEMPORAL_TASK_QUEUE}"`);
    expect(count).toBe(0);
  });

  it('signs arbitrary JSON objects correctly: acknowledged with 200 (never a 4xx Pub/Sub would retry, never a 5xx); guard events reach their guard', async () => {
    const signedTargets: string[] = [];
    const payload = fc.oneof(
      fc.dictionary(fc.string({ maxLength: 12 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 6 }),
      eventLike,
    );
    await fc.assert(
      fc.asyncProperty(payload, async (decoded) => {
        const bytes = Buffer.from(JSON.stringify(decoded));
        const body = JSON.stringify({ message: { data: bytes.toString('base64'), messageId: randomUUID() } });
        const { status, text } = await send(body, {
          'content-type': 'application/json',
          'x-goog-signature': rbmSignature(TOKEN, bytes),
        });
        expect([200, 413]).toContain(status);
        const answer = JSON.parse(text) as { status?: string; workflowId?: string };
        if (status === 200) {
          expect(['signalled', 'ignored', 'unroutable']).toContain(answer.status);
          if (answer.status === 'signalled') signalledTargets(answer.workflowId, signedTargets);
        }
      }),
      { numRuns: RUNS },
    );
    // The positive control: signed guard events did start guards (so the negative check above is not vacuous).
    expect(signedTargets.length).toBeGreaterThan(5);
    for (const workflowId of signedTargets.slice(0, 20)) {
      const history = await client.workflow.getHandle(workflowId).fetchHistory();
      expect(history.events?.some((e) => e.workflowExecutionSignaledEventAttributes)).toBe(true);
    }
  });

  it('still serves after all of it', async () => {
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    const metrics = await (await fetch(server.metricsUrl!)).text();
    expect(metrics).not.toMatch(/rbm_webhook_ack_seconds_count\{status="5\d\d"\}/);
  });
});

function signalledTargets(workflowId: string | undefined, into: string[]) {
  expect(workflowId).toMatch(/^rbm-guard\/prop-agent\//);
  into.push(workflowId as string);
}
