// The HTTP API's authentication as an attacker on the same network meets it: every route the router
// knows (read from the app, so a new route cannot be forgotten), under every spelling of its path,
// without a key and with a wrong one, must answer 401; failed attempts are limited per address.
// Auth comes before Temporal, so the app runs over a real port with a client that reaches nothing.
import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, Connection } from '@temporalio/client';
import type { FastifyInstance } from 'fastify';
import { buildApiApp, PUBLIC_PATHS, type ApiRoute } from '../../../service/api/app.ts';
import { parseApiKeys } from '../../../service/api/auth.ts';
import { GuardClient } from '../../../client/guard-client.ts';
import { createLogger } from '../../../config/logger.ts';

const KEY = 'auth-test-key-0123456789abcdefgh';
const WRONG_KEYS = [null, `${KEY}x`, KEY.slice(0, -1), `bearer${KEY}`, `Basic ${Buffer.from(`u:${KEY}`).toString('base64')}`];
const ID_SEGMENT = encodeURIComponent('rbm-guard/test-agent/m-1');

const logger = createLogger({ LOG_LEVEL: 'silent' });
const client = new Client({ connection: Connection.lazy({ address: '127.0.0.1:1' }), namespace: 'default' });
const servers: { app: FastifyInstance; port: number }[] = [];

async function serve(config: { rate?: number; authFailures?: number } = {}) {
  const app = await buildApiApp({
    client,
    guards: new GuardClient(client, 'auth-test'),
    keys: parseApiKeys(KEY),
    logger,
    config: {
      RBM_GUARD_API_RATE_LIMIT: config.rate ?? 1000,
      RBM_GUARD_API_AUTH_FAILURE_LIMIT: config.authFailures ?? 1_000_000,
      RBM_GUARD_API_BODY_LIMIT_BYTES: 65536,
      RBM_GUARD_API_TIMEOUT_MS: 1000,
      LOG_LEVEL: 'silent',
    },
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  const server = { app, port: typeof address === 'object' && address ? address.port : 0 };
  servers.push(server);
  return server;
}

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One request exactly as written: the path goes on the wire verbatim (absolute form, `//`, `%2e`…). */
function raw(port: number, method: string, path: string, authorization: string | null, from = '127.0.0.1'): Promise<Answer> {
  const body = method === 'POST' ? JSON.stringify({ agentId: 'test-agent', messageId: 'm-1', phone: '+14155550100', staleIn: '10m', fallbackText: 'x' }) : undefined;
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port,
        method,
        path,
        localAddress: from,
        headers: { ...(authorization ? { authorization } : {}), ...(body ? { 'content-type': 'application/json' } : {}) },
      },
      (res) => {
        let text = '';
        res.on('data', (chunk: Buffer) => (text += chunk.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** A route's path with its parameters filled as a client would. */
function concrete(route: ApiRoute, action: string): string {
  return route.url.replace(':id', `${ID_SEGMENT}${action}`).replace('*', 'x');
}

/** Every spelling of a path an attacker would try; each reaches the route or no route, never past the key. */
function spellings(path: string): string[] {
  const segments = path.split('/').slice(1);
  const encodeFirst = (segment: string) => `%${segment.charCodeAt(0).toString(16)}${segment.slice(1)}`;
  const encodeFirstUpper = (segment: string) => `%${segment.charCodeAt(0).toString(16).toUpperCase()}${segment.slice(1)}`;
  const one = segments.map((_, i) => `/${segments.map((s, j) => (j === i ? encodeFirst(s) : s)).join('/')}`);
  return [
    path,
    ...one,
    `/${segments.map(encodeFirst).join('/')}`,
    `/${segments.map(encodeFirstUpper).join('/')}`,
    `/${segments.map((s) => `%25${s.charCodeAt(0).toString(16)}${s.slice(1)}`).join('/')}`, // double encoding
    `/${segments.map((s) => s.toUpperCase()).join('/')}`,
    `/${segments.map((s) => s[0]!.toUpperCase() + s.slice(1)).join('/')}`,
    `/${path}`,
    `//${segments.join('//')}`,
    `${path}/`,
    `${path}/.`,
    `${path}/%2e`,
    `/${segments[0]}/./${segments.slice(1).join('/')}`,
    `/${segments[0]}/x/../${segments.slice(1).join('/')}`,
    `/${segments[0]}/%2e%2e/${segments.join('/')}`,
    `${path};x=1`,
    `${path}?agentId=test-agent`,
    `${path}%00`,
    `${path}%ZZ`,
    `/${segments[0]}%2F${segments.slice(1).join('/')}`,
    `http://x${path}`,
    `HTTP://127.0.0.1:1${path}`,
    `http://x//${path}`,
  ];
}

let open: Awaited<ReturnType<typeof serve>>;
let keyed: ApiRoute[];

beforeAll(async () => {
  open = await serve();
  keyed = open.app.apiRoutes.filter((r) => !r.public);
});
afterAll(async () => {
  for (const s of servers) await s.app.close();
  await client.connection.close();
});

describe('every route the router knows', () => {
  it('is keyed unless it is named public', () => {
    const routes = open.app.apiRoutes;
    expect(keyed.map((r) => `${r.method} ${r.url}`)).toEqual(
      expect.arrayContaining(['POST /v1/guards', 'GET /v1/guards', 'GET /v1/guards/:id', 'POST /v1/guards/:id']),
    );
    for (const r of routes.filter((route) => route.public)) {
      expect(PUBLIC_PATHS.includes(r.url) || r.url === '/docs' || r.url.startsWith('/docs/'), `${r.method} ${r.url} is public`).toBe(true);
    }
  });

  it('answers 401 problem+json to every spelling of every keyed route, with no key and with wrong keys', async () => {
    const tried: string[] = [];
    for (const route of keyed) {
      const actions = route.url.includes(':id') && route.method === 'POST' ? [':cancel', ':extend'] : [''];
      for (const action of actions) {
        for (const path of spellings(concrete(route, action))) {
          for (const key of WRONG_KEYS) {
            const answer = await raw(open.port, route.method, path, key === null ? null : key.includes(' ') ? key : `Bearer ${key}`);
            tried.push(`${route.method} ${path} ${answer.status}`);
            expect(answer.status, `${route.method} ${path} with ${key === null ? 'no key' : 'a wrong key'}: ${answer.body}`).toBe(401);
            expect(answer.headers['content-type']).toMatch(/^application\/problem\+json/);
            expect(answer.headers['www-authenticate']).toBe('Bearer');
          }
        }
      }
    }
    expect(tried.length).toBeGreaterThan(400);
  });

  it('HEAD of a keyed GET and an unknown path are keyed too (nothing is discovered without a key)', async () => {
    expect((await raw(open.port, 'HEAD', '/v1/guards', null)).status).toBe(401);
    expect((await raw(open.port, 'HEAD', `/v1/guards/${ID_SEGMENT}`, null)).status).toBe(401);
    expect((await raw(open.port, 'GET', '/v2/secret', null)).status).toBe(401);
    expect((await raw(open.port, 'GET', '/v2/secret', `Bearer ${KEY}`)).status).toBe(404);
  });

  it('serves the public routes without a key', async () => {
    for (const path of PUBLIC_PATHS.filter((p) => p !== '/readyz')) expect((await raw(open.port, 'GET', path, null)).status, path).toBe(200);
    expect((await raw(open.port, 'GET', '/docs/', null)).status).toBe(200);
  });

  it('a URL the router cannot read: 401 without a key, 400 problem+json with one', async () => {
    expect((await raw(open.port, 'GET', '/v1/guards/%ZZ', null)).status).toBe(401);
    const bad = await raw(open.port, 'GET', '/v1/guards/%ZZ', `Bearer ${KEY}`);
    expect(bad.status).toBe(400);
    expect(bad.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(JSON.parse(bad.body)).toMatchObject({ type: 'urn:rbm-guard:problem:validation', errors: [{ field: 'path', message: 'not valid percent-encoding' }] });
  });
});

describe('rate limits', () => {
  it('a key over its rate gets 429; requests without a key still get 401, never through', async () => {
    const limited = await serve({ rate: 2 });
    for (let i = 0; i < 2; i++) expect((await raw(limited.port, 'GET', '/v1/guards/not-a-guard', `Bearer ${KEY}`)).status).toBe(400);
    const over = await raw(limited.port, 'GET', '/v1/guards/not-a-guard', `Bearer ${KEY}`);
    expect(over.status).toBe(429);
    for (const route of limited.app.apiRoutes.filter((r) => !r.public)) {
      for (const path of spellings(concrete(route, route.method === 'POST' && route.url.includes(':id') ? ':cancel' : ''))) {
        expect((await raw(limited.port, route.method, path, null)).status, `${route.method} ${path}`).toBe(401);
        expect((await raw(limited.port, route.method, path, 'Bearer wrong-key-wrong-key-wrong-key')).status, `${route.method} ${path}`).toBe(401);
      }
    }
  });

  it('failed authentications are limited per client address: past the limit even the right key waits', async () => {
    const guarded = await serve({ authFailures: 5 });
    for (let i = 0; i < 5; i++) expect((await raw(guarded.port, 'GET', '/v1/guards', `Bearer guess-${i}-0123456789abcdefghij`)).status).toBe(401);
    const locked = await raw(guarded.port, 'GET', '/v1/guards/not-a-guard', `Bearer ${KEY}`);
    expect(locked.status).toBe(429);
    expect(Number(locked.headers['retry-after'])).toBeGreaterThan(0);
    expect(JSON.parse(locked.body)).toMatchObject({ type: 'urn:rbm-guard:problem:rate-limited' });
    expect((await raw(guarded.port, 'GET', '/v1/%67uards', null)).status).toBe(429);
    // Another address is not held back by this one's failures.
    expect((await raw(guarded.port, 'GET', '/v1/guards/not-a-guard', `Bearer ${KEY}`, '127.0.0.2')).status).toBe(400);
    // Health stays public and unlimited.
    expect((await raw(guarded.port, 'GET', '/healthz', null)).status).toBe(200);
  });

  it('only a presented credential counts as a failed guess: a browser\u2019s /favicon.ico locks nobody out', async () => {
    const guarded = await serve({ authFailures: 3 });
    for (let i = 0; i < 10; i++) expect((await raw(guarded.port, 'GET', '/favicon.ico', null, '127.0.0.3')).status).toBe(401);
    expect((await raw(guarded.port, 'GET', '/v1/guards/not-a-guard', `Bearer ${KEY}`, '127.0.0.3')).status).toBe(400);
  });

  it('/readyz, public, probes Temporal once for a burst of callers', async () => {
    let probes = 0;
    const counting = new Client({ connection: Connection.lazy({ address: '127.0.0.1:1' }), namespace: 'default' });
    const original = counting.workflowService.getSystemInfo.bind(counting.workflowService);
    counting.workflowService.getSystemInfo = ((request: Parameters<typeof original>[0]) => {
      probes += 1;
      return original(request);
    }) as typeof original;
    const app = await buildApiApp({
      client: counting,
      guards: new GuardClient(counting, 'auth-test'),
      keys: parseApiKeys(KEY),
      logger,
      config: { RBM_GUARD_API_RATE_LIMIT: 10, RBM_GUARD_API_AUTH_FAILURE_LIMIT: 10, RBM_GUARD_API_BODY_LIMIT_BYTES: 65536, RBM_GUARD_API_TIMEOUT_MS: 1000, LOG_LEVEL: 'silent' },
    });
    try {
      const answers = await Promise.all(Array.from({ length: 50 }, () => app.inject({ method: 'GET', url: '/readyz' })));
      expect(answers.map((a) => a.statusCode)).toEqual(Array(50).fill(503));
      expect(probes).toBe(1);
    } finally {
      await app.close();
      await counting.connection.close();
    }
  });

  it('a 4xx no route explains is not called broken JSON (a dot-segment path under /docs)', async () => {
    const odd = await raw(open.port, 'GET', '/docs/static/../../package.json', null);
    expect(odd.body).not.toMatch(/not valid JSON/);
    expect(odd.headers['content-type']).toMatch(/problem\+json/);
  });
});
