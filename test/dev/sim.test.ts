// The RBM simulator and the SMS sink, over real HTTP: the token exchange, the API semantics the
// guard depends on, the delivery model, faults, and signed Pub/Sub pushes checked with an
// independent HMAC implementation.
import { createHmac, generateKeyPairSync, randomUUID, sign, timingSafeEqual } from 'node:crypto';
import Fastify from 'fastify';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  GOOGLE_TOKEN_AUDIENCE,
  RBM_SCOPE,
  startRbmSimulator,
  userEvent,
  type PubSubEnvelope,
  type RbmEvent,
  type RbmSimulator,
  type RbmSimulatorOptions,
  type ServerEvent,
  type UserEvent,
} from '../../dev/sim/rbm-simulator.ts';
import { startSmsSink, type SmsSink } from '../../dev/sim/sms-sink.ts';

const AGENT = 'guard-test-agent';
const PHONE = '+12223334444';

// --- helpers ------------------------------------------------------------------------------------

function signJwt(claims: object, privateKeyPem: string, header: object = { alg: 'RS256', typ: 'JWT' }): string {
  const encode = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const input = `${encode(header)}.${encode(claims)}`;
  return `${input}.${sign('RSA-SHA256', Buffer.from(input), privateKeyPem).toString('base64url')}`;
}

function claimsFor(sim: RbmSimulator, overrides: Record<string, unknown> = {}) {
  const now = Math.floor(Date.now() / 1000);
  return { iss: sim.serviceAccountKey.client_email, scope: RBM_SCOPE, aud: GOOGLE_TOKEN_AUDIENCE, iat: now, exp: now + 3600, ...overrides };
}

async function exchange(sim: RbmSimulator, assertion: string) {
  const response = await fetch(sim.tokenUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion }),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

async function accessToken(sim: RbmSimulator): Promise<string> {
  const { body } = await exchange(sim, signJwt(claimsFor(sim), sim.serviceAccountKey.private_key));
  return String(body.access_token);
}

interface ApiAnswer {
  status: number;
  body: unknown;
  headers: Headers;
}

async function api(sim: RbmSimulator, token: string, method: 'POST' | 'DELETE', path: string, body?: unknown): Promise<ApiAnswer> {
  const response = await fetch(`${sim.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined, headers: response.headers };
}

const createPath = (messageId: string, phone = PHONE, agentId = AGENT) =>
  `/v1/phones/${phone}/agentMessages?messageId=${messageId}&agentId=${agentId}`;
const revokePath = (messageId: string, phone = PHONE, agentId = AGENT) =>
  `/v1/phones/${phone}/agentMessages/${messageId}?agentId=${agentId}`;
const textMessage = (text = 'Your code is 123456') => ({ contentMessage: { text }, messageTrafficType: 'AUTHENTICATION' });

interface Received {
  /** The model pushes user and server events only (user messages are hand-pushed). */
  event: UserEvent | ServerEvent;
  signatureValid: boolean;
  envelope: PubSubEnvelope;
}

/** A webhook receiver that checks X-Goog-Signature with its own HMAC, and answers as told. */
async function startReceiver(clientToken: string, statuses: number[] = []) {
  const received: Received[] = [];
  const verifications: unknown[] = [];
  const app = Fastify();
  app.post('/rbm/events', async (req, reply) => {
    const body = req.body as Record<string, unknown>;
    if ('clientToken' in body) {
      verifications.push(body);
      return reply.code(200).send(String(body.secret));
    }
    const envelope = body as unknown as PubSubEnvelope;
    const data = Buffer.from(envelope.message.data, 'base64');
    const expected = createHmac('sha512', Buffer.from(clientToken, 'utf8')).update(data).digest();
    const given = Buffer.from(String(req.headers['x-goog-signature'] ?? ''), 'base64');
    const signatureValid = given.length === expected.length && timingSafeEqual(given, expected);
    received.push({ event: JSON.parse(data.toString('utf8')) as UserEvent | ServerEvent, signatureValid, envelope });
    return reply.code(statuses.shift() ?? 200).send();
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  if (!address || typeof address === 'string') throw new Error('no address');
  return { url: `http://127.0.0.1:${address.port}/rbm/events`, received, verifications, close: () => app.close() };
}

async function waitFor(check: () => boolean, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('waitFor: timed out');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const closers: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  await Promise.all(closers.splice(0).map((close) => close()));
});

async function simWithReceiver(options: RbmSimulatorOptions = {}, statuses: number[] = []) {
  const sim = await startRbmSimulator({ push: { minBackoffMs: 5, maxBackoffMs: 20 }, ...options });
  const receiver = await startReceiver(sim.clientToken, statuses);
  sim.setWebhookUrl(receiver.url);
  closers.push(() => sim.close(), () => receiver.close());
  return { sim, receiver, token: await accessToken(sim) };
}

// --- token endpoint -------------------------------------------------------------------------------

describe('token endpoint', () => {
  let sim: RbmSimulator;
  beforeAll(async () => {
    sim = await startRbmSimulator();
  });
  afterAll(() => sim.close());

  it('issues a bearer token for an assertion signed by the registered key', async () => {
    const answer = await exchange(sim, signJwt(claimsFor(sim), sim.serviceAccountKey.private_key));
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({ token_type: 'Bearer', expires_in: expect.any(Number) });
    expect(String(answer.body.access_token)).toMatch(/^ya29\./);
  });

  it('rejects an assertion signed by another key, with invalid_grant', async () => {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const stranger = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const answer = await exchange(sim, signJwt(claimsFor(sim), stranger));
    expect(answer).toEqual({ status: 400, body: { error: 'invalid_grant', error_description: 'Invalid JWT Signature.' } });
  });

  it.each([
    ['a wrong audience', { aud: 'https://example.com/token' }],
    ['no RBM scope', { scope: 'https://www.googleapis.com/auth/cloud-platform' }],
    ['an expired token', { iat: Math.floor(Date.now() / 1000) - 7200, exp: Math.floor(Date.now() / 1000) - 3600 }],
    ['an unknown account', { iss: 'someone@else.iam.gserviceaccount.com' }],
  ])('rejects %s', async (_what, overrides) => {
    const answer = await exchange(sim, signJwt(claimsFor(sim, overrides), sim.serviceAccountKey.private_key));
    expect(answer.status).toBe(400);
    expect(answer.body.error).toBe('invalid_grant');
  });

  it('counts token requests, accepted and refused', async () => {
    const before = sim.stats();
    await exchange(sim, 'not.a-jwt');
    await accessToken(sim);
    const after = sim.stats();
    expect(after.tokenRequests - before.tokenRequests).toBe(2);
    expect(after.tokensIssued - before.tokensIssued).toBe(1);
    expect(after.tokensRejected - before.tokensRejected).toBe(1);
  });

  it('answers the API 401 in Google\'s shape without a valid bearer token', async () => {
    const answer = await api(sim, 'ya29.forged', 'DELETE', revokePath(randomUUID()));
    expect(answer.status).toBe(401);
    expect(answer.body).toMatchObject({ error: { code: 401, status: 'UNAUTHENTICATED' } });
  });

  it('writes a service-account key file in Google\'s shape', async () => {
    const { readFileSync } = await import('node:fs');
    const key = JSON.parse(readFileSync(sim.writeServiceAccountKeyFile(), 'utf8')) as Record<string, string>;
    expect(key).toMatchObject({ type: 'service_account', client_email: sim.serviceAccountKey.client_email });
    expect(key.private_key).toContain('BEGIN PRIVATE KEY');
    expect(Object.keys(key)).toEqual(expect.arrayContaining(['project_id', 'private_key_id', 'client_id', 'token_uri']));
  });
});

// --- create and revoke semantics ----------------------------------------------------------------

describe('agentMessages create', () => {
  it('accepts a text message with + or %2B in the path and answers the AgentMessage', async () => {
    const { sim, token } = await simWithReceiver({ defaultPlan: { deliverAfterMs: null } });
    const id = randomUUID();
    const plus = await api(sim, token, 'POST', createPath(id), textMessage());
    expect(plus.status).toBe(200);
    expect(plus.body).toMatchObject({ name: `phones/${PHONE}/agentMessages/${id}`, sendTime: expect.any(String) });
    const encoded = await api(sim, token, 'POST', createPath(randomUUID(), '%2B12223334445'), textMessage());
    expect(encoded.status).toBe(200);
    expect(sim.truth(id)).toMatchObject({ agentId: AGENT, phone: PHONE, origin: 'api', text: 'Your code is 123456' });
    expect(sim.allTruth().map((t) => t.phone)).toContain('+12223334445');
  });

  it.each([
    ['text over 3072 characters', { contentMessage: { text: 'x'.repeat(3073) } }],
    ['both expireTime and ttl', { ...textMessage(), expireTime: new Date(Date.now() + 60_000).toISOString(), ttl: '60s' }],
    ['an unknown traffic type', { contentMessage: { text: 'hi' }, messageTrafficType: 'SPAM' }],
    ['an unknown field', { ...textMessage(), priority: 'HIGH' }],
    ['a TTL over 15 days', { ...textMessage(), ttl: `${16 * 24 * 3600}s` }],
  ])('answers 400 INVALID_ARGUMENT for %s', async (_what, body) => {
    const { sim, token } = await simWithReceiver();
    const answer = await api(sim, token, 'POST', createPath(randomUUID()), body);
    expect(answer.status).toBe(400);
    expect(answer.body).toMatchObject({ error: { code: 400, status: 'INVALID_ARGUMENT' } });
    expect(sim.allTruth()).toHaveLength(0);
  });

  it('ignores a reused messageId by default, and answers 409 when configured to', async () => {
    const { sim, token } = await simWithReceiver({ defaultPlan: { deliverAfterMs: null } });
    const id = randomUUID();
    await api(sim, token, 'POST', createPath(id), textMessage('first'));
    const again = await api(sim, token, 'POST', createPath(id), textMessage('second'));
    expect(again.status).toBe(200);
    expect(sim.truth(id)?.text).toBe('first');
    expect(sim.stats().createsAccepted).toBe(1);

    const strict = await simWithReceiver({ reusedMessageId: 'conflict' });
    await api(strict.sim, strict.token, 'POST', createPath(id), textMessage());
    const conflict = await api(strict.sim, strict.token, 'POST', createPath(id), textMessage());
    expect(conflict.status).toBe(409);
    expect(conflict.body).toMatchObject({ error: { status: 'ALREADY_EXISTS' } });
  });

  it('answers 403 PERMISSION_DENIED for a denied agent and 404 for a phone without RCS', async () => {
    const { sim, token } = await simWithReceiver({ deniedAgents: ['banned-agent'], noRcsPhones: ['+15550001111'] });
    const denied = await api(sim, token, 'POST', createPath(randomUUID(), PHONE, 'banned-agent'), textMessage());
    expect(denied.status).toBe(403);
    expect(denied.body).toMatchObject({ error: { status: 'PERMISSION_DENIED' } });
    const noRcs = await api(sim, token, 'POST', createPath(randomUUID(), '+15550001111'), textMessage());
    expect(noRcs.status).toBe(404);
    expect(noRcs.body).toMatchObject({ error: { status: 'NOT_FOUND' } });
  });
});

describe('agentMessages revoke', () => {
  it('revokes a pending message (200 {}), which is then never delivered and pushes no event', async () => {
    const { sim, token, receiver } = await simWithReceiver({ defaultPlan: { deliverAfterMs: 300 } });
    const id = randomUUID();
    await api(sim, token, 'POST', createPath(id), textMessage());
    const answer = await api(sim, token, 'DELETE', revokePath(id));
    expect(answer).toMatchObject({ status: 200, body: {} });
    await sleep(400);
    const truth = sim.truth(id);
    expect(truth?.revokedAt).toBeTypeOf('number');
    expect(truth?.deliveredAt).toBeUndefined();
    expect(truth?.revokeAnswers).toEqual([200]);
    expect(receiver.received).toHaveLength(0);
  });

  it('answers 404 once delivered, and a signed DELIVERED event was pushed', async () => {
    const { sim, token, receiver } = await simWithReceiver({ defaultPlan: { deliverAfterMs: 20 } });
    const id = randomUUID();
    await api(sim, token, 'POST', createPath(id), textMessage());
    await waitFor(() => receiver.received.length === 1);
    const [push] = receiver.received;
    expect(push?.signatureValid).toBe(true);
    expect(push?.event).toMatchObject({ eventType: 'DELIVERED', messageId: id, senderPhoneNumber: PHONE, agentId: AGENT });
    expect(push?.envelope.message).toMatchObject({ messageId: expect.any(String), publishTime: expect.any(String) });
    expect(push?.envelope.subscription).toMatch(/^projects\/.+\/subscriptions\/.+/);
    const answer = await api(sim, token, 'DELETE', revokePath(id));
    expect(answer.status).toBe(404);
    expect(answer.body).toMatchObject({ error: { code: 404, status: 'NOT_FOUND' } });
    expect(sim.stats().revokeAlreadyDelivered).toBe(1);
  });

  it('answers an unknown messageId 404 by default, or 200 when configured', async () => {
    const strict = await simWithReceiver();
    expect((await api(strict.sim, strict.token, 'DELETE', revokePath(randomUUID()))).status).toBe(404);
    const lenient = await simWithReceiver({ unknownRevoke: 200 });
    expect((await api(lenient.sim, lenient.token, 'DELETE', revokePath(randomUUID()))).status).toBe(200);
  });

  it('answers a repeat DELETE of a revoked message 404 by default (pessimistic), 200 when configured', async () => {
    const strict = await simWithReceiver({ defaultPlan: { deliverAfterMs: null } });
    const id = randomUUID();
    await api(strict.sim, strict.token, 'POST', createPath(id), textMessage());
    expect((await api(strict.sim, strict.token, 'DELETE', revokePath(id))).status).toBe(200);
    const repeat = await api(strict.sim, strict.token, 'DELETE', revokePath(id));
    expect(repeat).toMatchObject({ status: 404, body: { error: { code: 404, status: 'NOT_FOUND' } } });
    expect(strict.sim.truth(id)).toMatchObject({ revokeAnswers: [200, 404], deliveredAt: undefined });
    const kind = await simWithReceiver({ defaultPlan: { deliverAfterMs: null }, revokeOfRevoked: 200 });
    await api(kind.sim, kind.token, 'POST', createPath(id), textMessage());
    await api(kind.sim, kind.token, 'DELETE', revokePath(id));
    expect((await api(kind.sim, kind.token, 'DELETE', revokePath(id))).status).toBe(200);
  });

  it('answers the retry of a revoke whose response was lost 404: the first DELETE had landed', async () => {
    const { sim, token } = await simWithReceiver({ defaultPlan: { deliverAfterMs: null } });
    const id = randomUUID();
    sim.registerSent({ agentId: AGENT, messageId: id, phone: PHONE });
    sim.injectRevokeFaults(id, [{ lostResponse: true }]);
    await expect(api(sim, token, 'DELETE', revokePath(id))).rejects.toThrow(/fetch failed/);
    expect((await api(sim, token, 'DELETE', revokePath(id))).status).toBe(404);
    expect(sim.truth(id)).toMatchObject({ revokeAnswers: ['lost', 404], revokedAt: expect.any(Number), deliveredAt: undefined });
  });

  it('answers 403 for a denied agent (settable at run time)', async () => {
    const { sim, token } = await simWithReceiver({ defaultPlan: { deliverAfterMs: null } });
    const id = randomUUID();
    await api(sim, token, 'POST', createPath(id), textMessage());
    sim.setAgentDenied(AGENT, true);
    expect((await api(sim, token, 'DELETE', revokePath(id))).status).toBe(403);
    expect(sim.truth(id)?.revokedAt).toBeUndefined();
  });

  it.each([200, 404] as const)('races the delivery: revoke answers %i and DELIVERED follows', async (revokeStatus) => {
    const { sim, token, receiver } = await simWithReceiver({ defaultPlan: { deliverAfterMs: null } });
    const id = randomUUID();
    sim.plan(id, { raceRevoke: revokeStatus });
    await api(sim, token, 'POST', createPath(id), textMessage());
    const answer = await api(sim, token, 'DELETE', revokePath(id));
    expect(answer.status).toBe(revokeStatus);
    await waitFor(() => receiver.received.length === 1);
    expect(receiver.received[0]?.event).toMatchObject({ eventType: 'DELIVERED', messageId: id });
    const truth = sim.truth(id);
    expect(truth?.deliveredAt).toBeTypeOf('number');
    expect(truth?.revokedAt).toBeUndefined();
  });
});

// --- delivery model and events ----------------------------------------------------------------

describe('delivery model', () => {
  it('revokes on TTL expiry and pushes TTL_EXPIRATION_REVOKED with phoneNumber', async () => {
    const { sim, token, receiver } = await simWithReceiver({ defaultPlan: { deliverAfterMs: 5000 } });
    const id = randomUUID();
    await api(sim, token, 'POST', createPath(id), { ...textMessage(), ttl: '0.1s' });
    await waitFor(() => receiver.received.length === 1);
    const event = receiver.received[0]?.event;
    expect(event).toMatchObject({ eventType: 'TTL_EXPIRATION_REVOKED', phoneNumber: PHONE, messageId: id, agentId: AGENT });
    expect(event).not.toHaveProperty('senderPhoneNumber');
    expect(sim.truth(id)).toMatchObject({ ttlRevoked: true, revokedAt: expect.any(Number) });
    // An expired message is gone: its DELETE answers 404, like a delivered one.
    expect((await api(sim, token, 'DELETE', revokePath(id))).status).toBe(404);
    expect(sim.stats()).toMatchObject({ revokeOfGone: 1, revokeAlreadyDelivered: 0 });
  });

  it('counts a lapsed TTL at the DELETE even before its timer fired: 404 and TTL_EXPIRATION_REVOKED', async () => {
    const { sim, token, receiver } = await simWithReceiver({ defaultPlan: { deliverAfterMs: null } });
    const id = randomUUID();
    // registered with an expireTime already past: the TTL timer has not run when the DELETE lands
    sim.registerSent({ agentId: AGENT, messageId: id, phone: PHONE, sentAt: Date.now() - 1000, expireTime: new Date(Date.now() - 1).toISOString() });
    expect((await api(sim, token, 'DELETE', revokePath(id))).status).toBe(404);
    await waitFor(() => receiver.received.length === 1);
    expect(receiver.received[0]?.event).toMatchObject({ eventType: 'TTL_EXPIRATION_REVOKED', messageId: id });
    expect(sim.truth(id)).toMatchObject({ ttlRevoked: true, deliveredAt: undefined });
  });

  it('races its TTL revoke with the first DELETE when planned: 404, then TTL_EXPIRATION_REVOKED', async () => {
    const { sim, token, receiver } = await simWithReceiver({ defaultPlan: { deliverAfterMs: null } });
    const id = randomUUID();
    sim.plan(id, { ttlRacesRevoke: true });
    await api(sim, token, 'POST', createPath(id), { ...textMessage(), ttl: '60s' });
    expect((await api(sim, token, 'DELETE', revokePath(id))).status).toBe(404);
    await waitFor(() => receiver.received.length === 1);
    expect(receiver.received[0]?.event).toMatchObject({ eventType: 'TTL_EXPIRATION_REVOKED', messageId: id, phoneNumber: PHONE });
    expect(sim.truth(id)).toMatchObject({ ttlRevoked: true, revokeAnswers: [404], deliveredAt: undefined });
    expect(sim.stats()).toMatchObject({ ttlRaces: 1, ttlRevoked: 1, revoked: 0 });
  });

  it('does not race a message without a TTL: ttlRacesRevoke needs an expireTime or ttl', async () => {
    const { sim, token } = await simWithReceiver({ defaultPlan: { deliverAfterMs: null } });
    const id = randomUUID();
    sim.plan(id, { ttlRacesRevoke: true });
    await api(sim, token, 'POST', createPath(id), textMessage());
    expect((await api(sim, token, 'DELETE', revokePath(id))).status).toBe(200);
    expect(sim.truth(id)).toMatchObject({ ttlRevoked: false, revokedAt: expect.any(Number) });
  });

  it('stores the expiry it was given, from expireTime or from ttl, and answers it on create', async () => {
    const { sim, token } = await simWithReceiver({ defaultPlan: { deliverAfterMs: null } });
    const id = randomUUID();
    const expireTime = new Date(Date.now() + 30_000).toISOString();
    const created = await api(sim, token, 'POST', createPath(id), { ...textMessage(), expireTime });
    expect(created.body).toMatchObject({ expireTime });
    expect(sim.truth(id)?.expireAt).toBe(Date.parse(expireTime));
    const other = randomUUID();
    const before = Date.now();
    await api(sim, token, 'POST', createPath(other), { ...textMessage(), ttl: '20.5s' });
    expect(sim.truth(other)?.expireAt).toBeGreaterThanOrEqual(before + 20_500);
    expect(sim.truth(other)?.expireAt).toBeLessThan(Date.now() + 20_500 + 1);
  });

  it('can fail its own TTL revoke: TTL_EXPIRATION_REVOKE_FAILED, and delivery still happens', async () => {
    const { sim, token, receiver } = await simWithReceiver({ defaultPlan: { deliverAfterMs: 600, ttlOutcome: 'revoke-failed' } });
    const id = randomUUID();
    await api(sim, token, 'POST', createPath(id), { ...textMessage(), expireTime: new Date(Date.now() + 300).toISOString() });
    await waitFor(() => receiver.received.length === 2);
    expect(receiver.received.map((r) => r.event.eventType)).toEqual(['TTL_EXPIRATION_REVOKE_FAILED', 'DELIVERED']);
    expect(sim.truth(id)).toMatchObject({ ttlRevokeFailed: true, ttlRevoked: false, deliveredAt: expect.any(Number) });
  });

  it('pushes a duplicate with the same eventId, READ before DELIVERED, or no event at all', async () => {
    const { sim, receiver } = await simWithReceiver();
    const [dup, readFirst, silent] = [randomUUID(), randomUUID(), randomUUID()];
    sim.registerSent({ agentId: AGENT, messageId: dup, phone: PHONE, plan: { deliverAfterMs: 0, duplicateEvent: true } });
    sim.registerSent({ agentId: AGENT, messageId: readFirst, phone: PHONE, plan: { deliverAfterMs: 0, readBeforeDelivered: true } });
    sim.registerSent({ agentId: AGENT, messageId: silent, phone: PHONE, plan: { deliverAfterMs: 0, noEvent: true } });
    await waitFor(() => receiver.received.length === 4);
    await sim.settled();
    const of = (id: string) => receiver.received.filter((r) => r.event.messageId === id);
    const dupEvents = of(dup).map((r) => r.event);
    expect(dupEvents.map((e) => e.eventType)).toEqual(['DELIVERED', 'DELIVERED']);
    expect(dupEvents[0]?.eventId).toBe(dupEvents[1]?.eventId);
    expect(of(readFirst).map((r) => r.event.eventType)).toEqual(['READ', 'DELIVERED']);
    expect(of(silent)).toHaveLength(0);
    expect(sim.truth(silent)?.deliveredAt).toBeTypeOf('number');
    expect(receiver.received.every((r) => r.signatureValid)).toBe(true);
  });

  it('delays events and re-plans a registered message', async () => {
    const { sim, receiver } = await simWithReceiver();
    const id = randomUUID();
    sim.registerSent({ agentId: AGENT, messageId: id, phone: PHONE, plan: { deliverAfterMs: null } });
    sim.plan(id, { deliverAfterMs: 0, eventDelayMs: 300 });
    await sleep(100);
    expect(sim.truth(id)?.deliveredAt).toBeTypeOf('number');
    expect(receiver.received).toHaveLength(0);
    await waitFor(() => receiver.received.length === 1);
  });

  it('retries a push the webhook refuses, like Pub/Sub, and records each attempt', async () => {
    const { sim, receiver } = await simWithReceiver({}, [503, 500]);
    const id = randomUUID();
    sim.registerSent({ agentId: AGENT, messageId: id, phone: PHONE, plan: { deliverAfterMs: 0 } });
    await waitFor(() => sim.truth(id)?.eventsPushed[0]?.acknowledged === true);
    const record = sim.truth(id)?.eventsPushed[0];
    expect(record?.attempts.map((a) => a.status)).toEqual([503, 500, 200]);
    expect(receiver.received).toHaveLength(3);
    // A redelivery is the same Pub/Sub message.
    expect(new Set(receiver.received.map((r) => r.envelope.message.messageId)).size).toBe(1);
    expect(sim.stats()).toMatchObject({ pushAttempts: 3, pushFailedAttempts: 2, pushesAcknowledged: 1 });
  });

  it('gives up after the bounded attempts', async () => {
    const { sim } = await simWithReceiver({ push: { maxAttempts: 3, minBackoffMs: 1, maxBackoffMs: 2 } }, [500, 500, 500, 500]);
    const record = await sim.pushEvent(userEvent({ agentId: AGENT, phone: PHONE, eventType: 'DELIVERED', messageId: 'x' }));
    expect(record).toMatchObject({ acknowledged: false, abandoned: true });
    expect(record.attempts.map((a) => a.status)).toEqual([500, 500, 500]);
  });

  it('sends model events to onEvent instead of HTTP when set', async () => {
    const seen: RbmEvent[] = [];
    const { sim, receiver } = await simWithReceiver({
      onEvent: async (event) => {
        seen.push(event);
      },
    });
    const id = randomUUID();
    sim.registerSent({ agentId: AGENT, messageId: id, phone: PHONE, plan: { deliverAfterMs: 0 } });
    await waitFor(() => seen.length === 1);
    expect(seen[0]).toMatchObject({ eventType: 'DELIVERED', messageId: id });
    expect(sim.truth(id)?.eventsPushed[0]).toMatchObject({ via: 'callback', acknowledged: true });
    expect(receiver.received).toHaveLength(0);
  });

  it('pushes hand-built events with a bad or missing signature, and sends the verification POST', async () => {
    const { sim, receiver } = await simWithReceiver();
    const event = userEvent({ agentId: AGENT, phone: PHONE, eventType: 'IS_TYPING' });
    await sim.pushEvent(event, { signature: 'invalid', retry: false });
    await sim.pushEvent(event, { signature: 'missing', retry: false });
    expect(receiver.received.map((r) => r.signatureValid)).toEqual([false, false]);
    const answer = await sim.verifyWebhook({ secret: 's3cret' });
    expect(answer).toEqual({ status: 200, body: 's3cret' });
    expect(receiver.verifications).toEqual([{ clientToken: sim.clientToken, secret: 's3cret' }]);
  });
});

// --- faults -----------------------------------------------------------------------------------

describe('faults', () => {
  it('answers 429 with Retry-After and 500 in Google\'s shape without performing the revoke', async () => {
    const { sim, token } = await simWithReceiver({ defaultPlan: { deliverAfterMs: null } });
    const id = randomUUID();
    sim.registerSent({ agentId: AGENT, messageId: id, phone: PHONE });
    sim.injectRevokeFaults(id, [{ status: 429, retryAfterSeconds: 7 }, { status: 500 }]);
    const limited = await api(sim, token, 'DELETE', revokePath(id));
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toBe('7');
    expect(limited.body).toMatchObject({ error: { code: 429, status: 'RESOURCE_EXHAUSTED' } });
    const failed = await api(sim, token, 'DELETE', revokePath(id));
    expect(failed.body).toMatchObject({ error: { code: 500, status: 'INTERNAL' } });
    expect(sim.truth(id)?.revokedAt).toBeUndefined();
    expect((await api(sim, token, 'DELETE', revokePath(id))).status).toBe(200);
    expect(sim.truth(id)).toMatchObject({ revokeCalls: 3, revokeAnswers: [429, 500, 200] });
  });

  it('loses the response of a revoke that really happened', async () => {
    const { sim, token } = await simWithReceiver({ defaultPlan: { deliverAfterMs: null } });
    const id = randomUUID();
    sim.registerSent({ agentId: AGENT, messageId: id, phone: PHONE });
    sim.injectRevokeFaults('*', [{ lostResponse: true }]);
    await expect(api(sim, token, 'DELETE', revokePath(id))).rejects.toThrow(/fetch failed/);
    expect(sim.truth(id)).toMatchObject({ revokedAt: expect.any(Number), revokeAnswers: ['lost'] });
  });

  it('hangs past a client timeout, and close() does not wait for the hang', async () => {
    const { sim, token } = await simWithReceiver({ defaultPlan: { deliverAfterMs: null } });
    const id = randomUUID();
    sim.registerSent({ agentId: AGENT, messageId: id, phone: PHONE });
    sim.injectRevokeFaults(id, [{ hangMs: 60_000 }]);
    const started = Date.now();
    const call = fetch(`${sim.url}${revokePath(id)}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${token}` },
      signal: AbortSignal.timeout(100),
    });
    await expect(call).rejects.toThrow(/aborted|timeout/i);
    expect(Date.now() - started).toBeLessThan(1000);
    expect(sim.truth(id)?.revokedAt).toBeTypeOf('number'); // performed before hanging
    const closing = Date.now();
    await sim.close();
    expect(Date.now() - closing).toBeLessThan(1000);
  });

  it('replies after a hang when told to', async () => {
    const { sim, token } = await simWithReceiver();
    sim.injectCreateFaults('*', [{ hangMs: 50, then: 'reply' }]);
    const started = Date.now();
    const answer = await api(sim, token, 'POST', createPath(randomUUID()), textMessage());
    expect(answer.status).toBe(200);
    expect(Date.now() - started).toBeGreaterThanOrEqual(45);
  });

  it('draws random faults from a seed: the same seed gives the same story', async () => {
    const run = async () => {
      const { sim, token } = await simWithReceiver({
        defaultPlan: { deliverAfterMs: null },
        random: { seed: 42, revoke429or5xx: 0.5, raceDelivery: 0.3, duplicateEvent: 0.3 },
      });
      const answers: number[] = [];
      for (let i = 0; i < 20; i++) {
        const id = `msg-${i}`;
        sim.registerSent({ agentId: AGENT, messageId: id, phone: PHONE });
        answers.push((await api(sim, token, 'DELETE', revokePath(id))).status);
      }
      return { answers, plans: sim.allTruth().map((t) => [t.plan.raceRevoke, t.plan.duplicateEvent]) };
    };
    const first = await run();
    const second = await run();
    expect(second).toEqual(first);
    expect(new Set(first.answers).size).toBeGreaterThan(1); // some faults, some successes
  });
});

// --- SMS sink -----------------------------------------------------------------------------------

describe('SMS sink', () => {
  let sink: SmsSink;
  beforeAll(async () => {
    sink = await startSmsSink({ httpToken: 'sink-token' });
  });
  afterAll(() => sink.close());

  const postHttp = (body: object, key: string, token = 'sink-token') =>
    fetch(`${sink.url}/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'idempotency-key': key, authorization: `Bearer ${token}` },
      body: JSON.stringify(body),
    });
  const postTwilio = (form: Record<string, string>, authToken = sink.twilio.authToken) =>
    fetch(`${sink.url}/2010-04-01/Accounts/${sink.twilio.accountSid}/Messages.json`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${Buffer.from(`${sink.twilio.accountSid}:${authToken}`).toString('base64')}`,
      },
      body: new URLSearchParams(form),
    });

  it('records one send per idempotency key on the generic endpoint and replays the first answer', async () => {
    const key = randomUUID();
    const first = await postHttp({ to: '+15550100001', text: 'hello' }, key);
    const second = await postHttp({ to: '+15550100001', text: 'hello' }, key);
    expect(first.status).toBe(201);
    expect(await second.json()).toEqual(await first.json());
    expect(sink.distinctSendsTo('+15550100001')).toBe(1);
    expect((await postHttp({ to: '+15550100001', text: 'hello' }, key, 'wrong')).status).toBe(401);
  });

  it('speaks Twilio: 201 with an SM sid, Basic auth, Twilio-shaped errors', async () => {
    const created = await postTwilio({ To: '+15550100002', From: '+15550009999', Body: 'hi' });
    expect(created.status).toBe(201);
    expect(await created.json()).toMatchObject({ sid: expect.stringMatching(/^SM[0-9a-f]{32}$/), status: 'queued', to: '+15550100002' });
    const unauthorized = await postTwilio({ To: '+15550100002', From: '+15550009999', Body: 'hi' }, 'bad');
    expect(unauthorized.status).toBe(401);
    expect(await unauthorized.json()).toMatchObject({ code: 20003, status: 401, more_info: expect.stringContaining('20003') });
    const missingTo = await postTwilio({ From: '+15550009999', Body: 'hi' });
    expect(await missingTo.json()).toMatchObject({ code: 21604, status: 400 });
    expect(sink.sends.filter((s) => s.provider === 'twilio')).toHaveLength(1);
  });

  const twilioAuth = () => `Basic ${Buffer.from(`${sink.twilio.accountSid}:${sink.twilio.authToken}`).toString('base64')}`;
  const getTwilio = async (path: string, auth = twilioAuth()) => {
    const response = await fetch(`${sink.url}${path}`, { headers: { authorization: auth } });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  };
  const listPath = (query: string) => `/2010-04-01/Accounts/${sink.twilio.accountSid}/Messages.json?${query}`;
  const today = () => new Date().toISOString().slice(0, 10);

  it('ignores Idempotency-Key on Twilio, as Twilio does: a retried POST is a second SMS with a new SID', async () => {
    const to = '+15550100010';
    const key = randomUUID();
    const post = () =>
      fetch(`${sink.url}/2010-04-01/Accounts/${sink.twilio.accountSid}/Messages.json`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: twilioAuth(), 'idempotency-key': key },
        body: new URLSearchParams({ To: to, From: '+15550009999', Body: 'code 1' }),
      }).then((r) => r.json() as Promise<{ sid: string }>);
    const [first, second] = [await post(), await post()];
    expect(first.sid).not.toBe(second.sid);
    expect(sink.distinctSendsTo(to)).toBe(2);
    expect(sink.sentTo(to).map((s) => s.providerMessageId)).toEqual([first.sid, second.sid]);
  });

  it('deduplicates Twilio by Idempotency-Key only behind twilioIdempotency: honour', async () => {
    const kind = await startSmsSink({ twilioIdempotency: 'honour' });
    closers.push(() => kind.close());
    const auth = `Basic ${Buffer.from(`${kind.twilio.accountSid}:${kind.twilio.authToken}`).toString('base64')}`;
    const post = () =>
      fetch(`${kind.url}/2010-04-01/Accounts/${kind.twilio.accountSid}/Messages.json`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: auth, 'idempotency-key': 'k-1' },
        body: new URLSearchParams({ To: '+15550100011', From: '+15550009999', Body: 'x' }),
      }).then((r) => r.json() as Promise<{ sid: string }>);
    expect((await post()).sid).toBe((await post()).sid);
    expect(kind.distinctSendsTo('+15550100011')).toBe(1);
    expect(kind.stats().idempotentReplays).toBe(1);
  });

  it('sends twice when a Twilio response is lost and the client retries blindly', async () => {
    const to = '+15550100012';
    sink.injectFaults([{ lostResponse: true }]);
    await expect(postTwilio({ To: to, From: '+15550009999', Body: 'x' })).rejects.toThrow(/fetch failed/);
    expect((await postTwilio({ To: to, From: '+15550009999', Body: 'x' })).status).toBe(201);
    expect(sink.distinctSendsTo(to)).toBe(2);
  });

  it('lists Twilio messages to a number since a day, newest first, in Twilio\'s shape with RFC 2822 dates', async () => {
    const to = '+15550100013';
    const sids: string[] = [];
    for (const body of ['one', 'two', 'three']) {
      sids.push(((await (await postTwilio({ To: to, From: '+15550009999', Body: body })).json()) as { sid: string }).sid);
    }
    await postTwilio({ To: '+15550100099', From: '+15550009999', Body: 'someone else' });
    // queued: date_sent is null, so a DateSent filter does not see them yet; without one they are listed
    const queued = await getTwilio(listPath(`To=${encodeURIComponent(to)}&DateSent>=${today()}`));
    expect(queued.body.messages).toEqual([]);
    const unfiltered = await getTwilio(listPath(`To=${encodeURIComponent(to)}`));
    expect(unfiltered.body.messages).toMatchObject([{ status: 'queued', date_sent: null }, {}, {}]);
    await sleep(350);
    const listed = await getTwilio(listPath(`To=${encodeURIComponent(to)}&From=${encodeURIComponent('+15550009999')}&DateSent%3E=${today()}`));
    expect(listed.status).toBe(200);
    const messages = listed.body.messages as Record<string, unknown>[];
    expect(messages.map((m) => m.sid)).toEqual([...sids].reverse());
    expect(messages[0]).toMatchObject({ to, from: '+15550009999', body: 'three', status: 'sent', direction: 'outbound-api', account_sid: sink.twilio.accountSid });
    const rfc2822 = /^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} \+0000$/;
    expect(messages[0]?.date_created).toMatch(rfc2822);
    expect(messages[0]?.date_sent).toMatch(rfc2822);
    expect(listed.body).toMatchObject({ page: 0, page_size: 50, start: 0, end: 2, next_page_uri: null, previous_page_uri: null });
    // tomorrow and later: nothing; on or before today: all three
    const tomorrow = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);
    expect((await getTwilio(listPath(`To=${encodeURIComponent(to)}&DateSent>=${tomorrow}`))).body.messages).toEqual([]);
    expect((await getTwilio(listPath(`To=${encodeURIComponent(to)}&DateSent<=${today()}`))).body.messages).toHaveLength(3);
    expect((await getTwilio(listPath(`To=${encodeURIComponent(to)}&DateSent=${today()}`))).body.messages).toHaveLength(3);
  });

  it('pages a Twilio list: next_page_uri leads to the older messages', async () => {
    const to = '+15550100014';
    for (const body of ['a', 'b', 'c']) await postTwilio({ To: to, From: '+15550009999', Body: body });
    const first = await getTwilio(listPath(`To=${encodeURIComponent(to)}&PageSize=2`));
    expect((first.body.messages as { body: string }[]).map((m) => m.body)).toEqual(['c', 'b']);
    expect(first.body.next_page_uri).toMatch(/Page=1&PageToken=PA/);
    const second = await getTwilio(String(first.body.next_page_uri));
    expect((second.body.messages as { body: string }[]).map((m) => m.body)).toEqual(['a']);
    expect(second.body).toMatchObject({ page: 1, next_page_uri: null, start: 2 });
  });

  it('fetches one Twilio message by SID, 404 20404 for an unknown one, 400 for a bad DateSent, 401 without auth', async () => {
    const created = (await (await postTwilio({ To: '+15550100015', From: '+15550009999', Body: 'hi' })).json()) as { sid: string };
    const base = `/2010-04-01/Accounts/${sink.twilio.accountSid}/Messages`;
    expect(await getTwilio(`${base}/${created.sid}.json`)).toMatchObject({ status: 200, body: { sid: created.sid, to: '+15550100015', body: 'hi' } });
    expect(await getTwilio(`${base}/SM${'0'.repeat(32)}.json`)).toMatchObject({ status: 404, body: { code: 20404, status: 404 } });
    expect(await getTwilio(listPath('DateSent>=yesterday'))).toMatchObject({ status: 400, body: { code: 20001 } });
    expect(await getTwilio(listPath('To=%2B15550100015'), 'Basic bad')).toMatchObject({ status: 401, body: { code: 20003 } });
  });

  it('injects faults on Twilio lookups: 5xx, 401, and a hang past the client timeout', async () => {
    const lookups = sink.stats().lookups;
    sink.injectLookupFaults([{ status: 503 }, { status: 401 }, { hangMs: 5_000 }]);
    expect(await getTwilio(listPath('To=%2B15550100016'))).toMatchObject({ status: 503, body: { code: 20503 } });
    expect(await getTwilio(listPath('To=%2B15550100016'))).toMatchObject({ status: 401, body: { code: 20003 } });
    const hung = fetch(`${sink.url}${listPath('To=%2B15550100016')}`, { headers: { authorization: twilioAuth() }, signal: AbortSignal.timeout(100) });
    await expect(hung).rejects.toThrow(/aborted|timeout/i);
    // a send is not a lookup: the lookup queue does not touch it
    expect((await postTwilio({ To: '+15550100016', From: '+15550009999', Body: 'x' })).status).toBe(201);
    expect(sink.stats().lookups - lookups).toBe(3);
  });

  it('injects faults in order, records a lost response\'s send, and goes down for a while', async () => {
    sink.injectFaults([{ status: 503 }, { lostResponse: true }]);
    const to = '+15550100003';
    const key = randomUUID();
    expect((await postHttp({ to, text: 'x' }, key)).status).toBe(503);
    await expect(postHttp({ to, text: 'x' }, key)).rejects.toThrow(/fetch failed/);
    expect(sink.distinctSendsTo(to)).toBe(1);
    expect((await postHttp({ to, text: 'x' }, key)).status).toBe(201); // the replay of the lost answer
    expect(sink.distinctSendsTo(to)).toBe(1);
    sink.down(100);
    expect((await postHttp({ to, text: 'y' }, randomUUID())).status).toBe(503);
    await sleep(120);
    expect((await postHttp({ to, text: 'y' }, randomUUID())).status).toBe(201);
    expect(sink.distinctSendsTo(to)).toBe(2);
  });
});
