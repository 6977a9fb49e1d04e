// The HTTP API over a real port, on the suite's Temporal dev server with the RBM simulator and the
// SMS sink: auth and rotation, 201/200/409, ids with / and :, status/cancel/extend/list, every
// error as problem+json, 429 and 503 with Retry-After, the OpenAPI document and its page.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, Connection } from '@temporalio/client';
import { eventSignals, guardWorkflowId, WORKFLOW_TYPE, type GuardStatus } from '../../../workflows/contract.ts';
import { guardStartOptions } from '../../../client/start-options.ts';
import { createLogger } from '../../../config/logger.ts';
import { startApiServer, type ApiServer } from '../../../service/api/server.ts';
import { startGuardStack, testMessage, type GuardStack } from '../../support/stack.ts';

const KEY_1 = 'api-test-key-one-0123456789abcdef';
const KEY_2 = 'api-test-key-two-0123456789abcdef';
const logger = createLogger({ LOG_LEVEL: 'silent' });
let stack: GuardStack;
let api: ApiServer;

async function apiFor(env: Record<string, string | number>, client = stack.client): Promise<ApiServer> {
  return startApiServer({ ...stack.config, TEMPORAL_TASK_QUEUE: stack.taskQueue, RBM_GUARD_API_HOST: '127.0.0.1', RBM_GUARD_API_PORT: 0, ...env } as typeof stack.config, { client, logger });
}

beforeAll(async () => {
  stack = await startGuardStack();
  api = await apiFor({ RBM_GUARD_API_KEYS: `${KEY_1},${KEY_2}` });
}, 60_000);
afterAll(async () => {
  await api?.close();
  await stack?.close();
});

async function call(method: string, path: string, body?: unknown, key: string | null = KEY_1, server = api) {
  const headers: Record<string, string> = {};
  if (key) headers.authorization = `Bearer ${key}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${server.url}${path}`, { method, headers, body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}
const guardPath = (id: string) => `/v1/guards/${encodeURIComponent(id)}`;

function trackBody(name: string, extra: Record<string, unknown> = {}) {
  const m = testMessage(name);
  return { agentId: m.agentId, messageId: m.messageId, phone: m.phone, staleIn: '10m', fallbackText: `code for ${name}`, trafficType: 'AUTHENTICATION', policy: m.policy, ...extra };
}

describe('auth', () => {
  it('refuses a missing or wrong key with 401 problem+json, and takes every rotated key', async () => {
    const missing = await call('GET', '/v1/guards', undefined, null);
    expect(missing.status).toBe(401);
    expect(missing.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(missing.headers.get('www-authenticate')).toBe('Bearer');
    expect(missing.body).toMatchObject({ type: 'urn:rbm-guard:problem:unauthorized', status: 401 });
    expect((await call('GET', '/v1/guards', undefined, `${KEY_1}x`)).status).toBe(401);
    expect((await call('GET', '/v1/guards', undefined, KEY_1)).status).toBe(200);
    expect((await call('GET', '/v1/guards', undefined, KEY_2)).status).toBe(200);
  });

  it('with no key configured refuses every call', async () => {
    const locked = await apiFor({ RBM_GUARD_API_KEYS: '', TEMPORAL_ADDRESS: stack.config.TEMPORAL_ADDRESS ?? '127.0.0.1:7233' });
    try {
      const res = await call('POST', '/v1/guards', trackBody('locked'), KEY_1, locked);
      expect(res.status).toBe(401);
      expect(res.body.detail).toMatch(/no API key is configured \(RBM_GUARD_API_KEYS\)/);
    } finally {
      await locked.close();
    }
  });
});

describe('POST /v1/guards', () => {
  it('201 for a new guard, 200 for the same message again (staleIn resent), 409 for a different body', async () => {
    const body = trackBody('idem', { messageId: `idem/${crypto.randomUUID()}:part` });
    const first = await call('POST', '/v1/guards', body);
    expect(first.status).toBe(201);
    const workflowId = guardWorkflowId(body.agentId, body.messageId);
    expect(first.body).toMatchObject({ workflowId, created: true, alreadyClosed: false });
    expect(first.headers.get('location')).toBe(guardPath(workflowId));
    await new Promise((r) => setTimeout(r, 50)); // staleIn resolves later now: still the same message
    const again = await call('POST', '/v1/guards', body);
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ workflowId, created: false, runId: first.body.runId });
    const other = await call('POST', '/v1/guards', { ...body, phone: '+14155550199' });
    expect(other.status).toBe(409);
    expect(other.body).toMatchObject({ type: 'urn:rbm-guard:problem:conflict', workflowId });
    const otherDeadline = await call('POST', '/v1/guards', { ...body, staleIn: '11m' });
    expect(otherDeadline.status).toBe(409);
    const status = await call('GET', guardPath(workflowId));
    expect(status.status).toBe(200);
    expect(status.body).toMatchObject({ workflowId, messageId: body.messageId, state: 'AWAITING_DELIVERY' });
    await call('POST', `${guardPath(workflowId)}:cancel`, {});
  });

  it('a guard an early RBM event started answers 201 on its first track, 200 after', async () => {
    const body = trackBody('early');
    const workflowId = guardWorkflowId(body.agentId, body.messageId);
    await stack.client.workflow.signalWithStart(WORKFLOW_TYPE, {
      workflowId,
      taskQueue: stack.taskQueue,
      args: [{ agentId: body.agentId, messageId: body.messageId, orphanAfterMs: 60_000 }],
      signal: eventSignals.READ,
      signalArgs: [{ eventId: `ev-${crypto.randomUUID()}` }],
      ...guardStartOptions({ agentId: body.agentId, state: 'AWAITING_TRACK' }),
    });
    const firstTrack = await call('POST', '/v1/guards', body);
    expect(firstTrack.body).toMatchObject({ created: true });
    expect(firstTrack.status).toBe(201);
    expect((await call('POST', '/v1/guards', body)).status).toBe(200);
    const final = (await stack.result(workflowId)) as GuardStatus;
    expect(final.outcome).toBe('DELIVERED');
  });

  it('400 names each bad field, and nothing is started', async () => {
    const res = await call('POST', '/v1/guards', { agentId: 'bad agent', messageId: 'm-1', phone: '0800', staleIn: 'soon', colour: 'red' });
    expect(res.status).toBe(400);
    const fields = (res.body.errors as { field: string }[]).map((e) => e.field).sort();
    expect(fields).toEqual(expect.arrayContaining(['body.agentId', 'body.phone', 'body.staleIn']));
    expect(JSON.stringify(res.body.errors)).toMatch(/colour/);
    const missing = await call('POST', '/v1/guards', { agentId: 'a', messageId: 'm', phone: '+14155550100' });
    expect(missing.body.errors).toEqual([{ field: 'body.staleAt', message: 'required (or staleIn)' }]);
    const notObject = await call('POST', '/v1/guards', [1, 2]);
    expect(notObject.body.errors).toEqual([{ field: 'body', message: 'must be a JSON object' }]);
  });

  it('413 for a body over the limit, 415 for another content type, 400 for broken JSON', async () => {
    const big = await call('POST', '/v1/guards', { ...trackBody('big'), fallbackText: 'x'.repeat(70_000) });
    expect(big.status).toBe(413);
    expect(big.body.type).toBe('urn:rbm-guard:problem:too-large');
    const res = await fetch(`${api.url}/v1/guards`, { method: 'POST', headers: { authorization: `Bearer ${KEY_1}`, 'content-type': 'text/plain' }, body: 'hi' });
    expect(res.status).toBe(415);
    expect(res.headers.get('content-type')).toMatch(/problem\+json/);
    const broken = await call('POST', '/v1/guards', '{"agentId": ');
    expect(broken.status).toBe(400);
    expect(broken.body.errors).toEqual([{ field: 'body', message: 'not valid JSON' }]);
  });
});

describe('a guard through the API', () => {
  it('revoked and sent by SMS; status shows outcome and timeline; :cancel on it is 409', async () => {
    const body = trackBody('full', { messageId: `full/${crypto.randomUUID()}:x`, staleIn: '1s' });
    stack.sim.registerSent({ agentId: body.agentId, messageId: body.messageId, phone: body.phone, plan: { deliverAfterMs: null } });
    const created = await call('POST', '/v1/guards', body);
    expect(created.status).toBe(201);
    const id = created.body.workflowId as string;
    await stack.result(id);
    const status = await call('GET', guardPath(id));
    expect(status.body).toMatchObject({ outcome: 'FALLBACK_SENT', messageId: body.messageId });
    expect((status.body.timeline as { state: string }[]).map((t) => t.state)).toEqual(expect.arrayContaining(['AWAITING_DELIVERY', 'REVOKING', 'FALLBACK', 'FALLBACK_SENT']));
    expect(stack.sink.sentTo(body.phone).map((s) => s.text)).toEqual([body.fallbackText]);
    const late = await call('POST', `${guardPath(id)}:cancel`, {});
    expect(late.status).toBe(409);
  });

  it(':extend moves the deadline, :cancel cancels, unknown ids and actions are 404, bad ids 400', async () => {
    const body = trackBody('extend');
    const id = (await call('POST', '/v1/guards', body)).body.workflowId as string;
    const staleAt = new Date(Date.now() + 3_600_000).toISOString();
    const extended = await call('POST', `${guardPath(id)}:extend`, { staleAt });
    expect(extended.status).toBe(200);
    expect(extended.body.staleAt).toBe(staleAt);
    const past = await call('POST', `${guardPath(id)}:extend`, { staleAt: '2001-01-01T00:00:00Z' });
    expect(past.status).toBe(400);
    expect((past.body.errors as { field: string }[])[0]!.field).toBe('body.staleAt');
    const cancelled = await call('POST', `${guardPath(id)}:cancel`, { reason: 'test' });
    expect(cancelled.body.state).toBe('CANCELLED');
    expect((await call('GET', guardPath(guardWorkflowId('test-agent', `nope-${crypto.randomUUID()}`)))).status).toBe(404);
    expect((await call('POST', `${guardPath(id)}:pause`, {})).status).toBe(404);
    const bad = await call('GET', guardPath('not-a-guard'));
    expect(bad.status).toBe(400);
    expect(bad.body.errors).toEqual([expect.objectContaining({ field: 'path.id' })]);
    const route = await call('GET', '/v2/nothing');
    expect(route.status).toBe(404);
    expect(route.headers.get('content-type')).toMatch(/problem\+json/);
  });

  it('each action has its own body schema: a missing or foreign field is a 400 naming it, no body cancels', async () => {
    const id = (await call('POST', '/v1/guards', trackBody('actions'))).body.workflowId as string;
    const noBody = await call('POST', `${guardPath(id)}:extend`);
    expect(noBody.status).toBe(400);
    expect(noBody.body.errors).toEqual([{ field: 'body', message: 'must be a JSON object' }]);
    const noStaleAt = await call('POST', `${guardPath(id)}:extend`, {});
    expect((noStaleAt.body.errors as { field: string }[]).map((e) => e.field)).toEqual(['body.staleAt']);
    const foreign = await call('POST', `${guardPath(id)}:cancel`, { staleAt: new Date(Date.now() + 3_600_000).toISOString() });
    expect(foreign.status).toBe(400);
    expect(foreign.body.errors).toEqual([{ field: 'body', message: expect.stringMatching(/staleAt/) }]);
    const badReason = await call('POST', `${guardPath(id)}:cancel`, { reason: 5 });
    expect((badReason.body.errors as { field: string }[]).map((e) => e.field)).toEqual(['body.reason']);
    const cancelled = await call('POST', `${guardPath(id)}:cancel`);
    expect(cancelled.status).toBe(200);
    expect(cancelled.body.state).toBe('CANCELLED');
  });

  it('a list query with an unknown parameter or a wrong type is a 400 naming it', async () => {
    const unknown = await call('GET', '/v1/guards?colour=red');
    expect(unknown.status).toBe(400);
    expect(unknown.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(unknown.body.errors).toEqual([{ field: 'query', message: expect.stringMatching(/colour/) }]);
    for (const query of ['pageSize=ten', 'pageSize=2.5', 'open=yes', 'outcome=LOST', 'state=a&state=b']) {
      const res = await call('GET', `/v1/guards?${query}`);
      expect(res.status, query).toBe(400);
      expect((res.body.errors as { field: string }[]).map((e) => e.field), query).toEqual([`query.${query.split('=')[0]!}`]);
    }
    const badAgent = await call('GET', '/v1/guards?agentId=bad%20agent');
    expect((badAgent.body.errors as { field: string }[]).map((e) => e.field)).toEqual(['query.agentId']);
    const every = await call('GET', '/v1/guards?agentId=bad%20agent&state=SLEEPING&pageSize=0');
    expect((every.body.errors as { field: string }[]).map((e) => e.field).sort()).toEqual(['query.agentId', 'query.pageSize', 'query.state']);
  });

  it('lists by agent, paginated with nextPageToken; a bad filter names the query field', async () => {
    const agentId = `list-${crypto.randomUUID().slice(0, 8)}`;
    for (const n of [1, 2, 3]) expect((await call('POST', '/v1/guards', { ...trackBody(`list${n}`), agentId })).status).toBe(201);
    let first = await call('GET', `/v1/guards?agentId=${agentId}&pageSize=2`);
    for (let i = 0; i < 50 && (first.body.guards as unknown[]).length + 0 < 2; i++) {
      await new Promise((r) => setTimeout(r, 100));
      first = await call('GET', `/v1/guards?agentId=${agentId}&pageSize=2`);
    }
    expect(first.body.guards).toHaveLength(2);
    expect(first.body.nextPageToken).toEqual(expect.any(String));
    const second = await call('GET', `/v1/guards?agentId=${agentId}&pageSize=2&pageToken=${first.body.nextPageToken as string}`);
    expect(second.body.guards).toHaveLength(1);
    const ids = [...(first.body.guards as { workflowId: string }[]), ...(second.body.guards as { workflowId: string }[])].map((g) => g.workflowId);
    expect(new Set(ids).size).toBe(3);
    const bad = await call('GET', '/v1/guards?state=SLEEPING&pageSize=0');
    expect(bad.status).toBe(400);
    expect((bad.body.errors as { field: string }[]).map((e) => e.field)).toContain('query.pageSize');
    const badState = await call('GET', '/v1/guards?state=SLEEPING');
    expect((badState.body.errors as { field: string }[]).map((e) => e.field)).toEqual(['query.state']);
  });
});

describe('hostile ids and tokens', () => {
  it('every message id track accepts is addressable by every route: 100 characters, and the longest (256 three-byte characters)', async () => {
    for (const messageId of [`${crypto.randomUUID()}-`.padEnd(100, 'x'), `${crypto.randomUUID()}/:?#%`.padEnd(256, '\u20ac')]) {
      const body = trackBody('long-id', { messageId });
      const created = await call('POST', '/v1/guards', body);
      expect(created.status).toBe(201);
      const id = created.body.workflowId as string;
      expect(created.headers.get('location')).toBe(guardPath(id));
      const status = await call('GET', guardPath(id));
      expect(status.status).toBe(200);
      expect(status.body).toMatchObject({ workflowId: id, messageId });
      const staleAt = new Date(Date.now() + 3_600_000).toISOString();
      expect((await call('POST', `${guardPath(id)}:extend`, { staleAt })).body).toMatchObject({ staleAt });
      expect((await call('POST', `${guardPath(id)}:cancel`, {})).body).toMatchObject({ state: 'CANCELLED' });
    }
  });

  it('a message id with a control or direction character, or a lone surrogate, is a 400 naming body.messageId', async () => {
    for (const messageId of ['m-\u001b[2J', 'm-\u009b31m', 'm-\u202egnp.exe', 'm-\u200b', 'm-\ud800', 'm-\udc00x']) {
      const res = await call('POST', '/v1/guards', JSON.stringify(trackBody('bad-id', { messageId })));
      expect(res.status, JSON.stringify(messageId)).toBe(400);
      expect((res.body.errors as { field: string }[]).map((e) => e.field)).toEqual(['body.messageId']);
    }
  });

  it('a page token that is not one this API gave is a 400 naming query.pageToken, never a 503', async () => {
    const forged = Buffer.from('{"CloseTime":"2020-01-01T00:00:00Z","StartTime":"x","RunID":"y"}').toString('base64url');
    for (const token of ['AAAA', 'not*base64', forged, `${forged}.AAAAAAAAAAAAAAAAAAAAAA`]) {
      const res = await call('GET', `/v1/guards?pageToken=${token}`);
      expect(res.status, token).toBe(400);
      expect(res.headers.get('retry-after')).toBeNull();
      expect(res.body.errors).toEqual([expect.objectContaining({ field: 'query.pageToken' })]);
    }
  });

  it('a __proto__ key is refused as such, not as broken JSON', async () => {
    const res = await call('POST', '/v1/guards', `{"__proto__": {"x": 1}, "agentId": "a"}`);
    expect(res.status).toBe(400);
    expect(res.body.errors).toEqual([{ field: 'body', message: 'must not hold __proto__ or constructor.prototype keys' }]);
  });
});

describe('limits and outages', () => {
  it('429 with Retry-After once a key spends its rate, per key', async () => {
    const limited = await apiFor({ RBM_GUARD_API_KEYS: `${KEY_1},${KEY_2}`, RBM_GUARD_API_RATE_LIMIT: 3 });
    try {
      for (let i = 0; i < 3; i++) expect((await call('GET', '/v1/guards?pageSize=1', undefined, KEY_1, limited)).status).toBe(200);
      const over = await call('GET', '/v1/guards?pageSize=1', undefined, KEY_1, limited);
      expect(over.status).toBe(429);
      expect(Number(over.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(over.body.type).toBe('urn:rbm-guard:problem:rate-limited');
      expect((await call('GET', '/v1/guards?pageSize=1', undefined, KEY_2, limited)).status).toBe(200);
    } finally {
      await limited.close();
    }
  });

  it('503 with Retry-After when Temporal is down, and nothing is started', async () => {
    const connection = await Connection.connect({ address: stack.config.TEMPORAL_ADDRESS! });
    const client = new Client({ connection, namespace: 'default', dataConverter: stack.client.options.dataConverter });
    const down = await apiFor({ RBM_GUARD_API_KEYS: KEY_1, RBM_GUARD_API_TIMEOUT_MS: 1000 }, new Client({ connection: Connection.lazy({ address: '127.0.0.1:1' }), namespace: 'default' }));
    try {
      const body = trackBody('down');
      const res = await call('POST', '/v1/guards', body, KEY_1, down);
      expect(res.status).toBe(503);
      expect(res.headers.get('retry-after')).toBe('5');
      expect(res.body.type).toBe('urn:rbm-guard:problem:unavailable');
      const exists = await client.workflow.getHandle(guardWorkflowId(body.agentId, body.messageId)).describe().then(() => true, () => false);
      expect(exists).toBe(false);
    } finally {
      await down.close();
      await connection.close();
    }
  });
});

describe('OpenAPI', () => {
  it('serves an OpenAPI 3.1 document from the zod schemas, and a browsable page', async () => {
    const res = await fetch(`${api.url}/openapi.json`);
    const doc = (await res.json()) as { openapi: string; paths: Record<string, Record<string, { requestBody?: { content: Record<string, { schema: { properties: Record<string, unknown> } }> } }>> };
    expect(doc.openapi).toBe('3.1.0');
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/v1/guards', '/v1/guards/{id}']));
    const body = doc.paths['/v1/guards']!.post!.requestBody!.content['application/json']!.schema;
    expect(Object.keys(body.properties)).toEqual(expect.arrayContaining(['agentId', 'messageId', 'phone', 'staleAt', 'staleIn', 'fallbackText', 'policy']));
    const cancel = doc.paths['/v1/guards/{id}:cancel']!.post!.requestBody!.content['application/json']!.schema;
    const extend = doc.paths['/v1/guards/{id}:extend']!.post!.requestBody!.content['application/json']!.schema;
    expect(JSON.stringify(cancel)).toMatch(/reason/);
    expect(Object.keys(extend.properties)).toEqual(['staleAt']);
    const page = await fetch(`${api.url}/docs/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toMatch(/swagger/i);
  });
});
