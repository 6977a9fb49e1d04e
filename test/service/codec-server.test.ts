// The codec server over a real port, as the Temporal UI and `temporal --codec-endpoint` call it:
// a valid token decodes (bearer header or the endpoint's path segment), a missing or wrong token
// is 401, a foreign Origin is refused, malformed bodies are 400, and the CORS preflight from the
// UI's origin passes with the headers the UI sends. Nothing secret reaches its log.
import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../config/index.ts';
import { createLogger } from '../../config/logger.ts';
import { codecServerSettings, startCodecServer, type CodecServer } from '../../service/codec.ts';
import { ENCRYPTED_ENCODING } from '../../client/codec.ts';
import { rotatedTestCodec, testCodec } from '../support/encryption.ts';

const TOKEN = 'codec-test-token-0123456789';
const UI = 'http://127.0.0.1:8233';
const PHONE = '+14155550123';
const TEXT = 'Your code is 771204';

let server: CodecServer;
const logLines: string[] = [];

const toJson = (p: Payload) => ({
  metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v).toString('base64')])),
  data: Buffer.from(p.data ?? new Uint8Array()).toString('base64'),
});
const fromJson = (p: { metadata: Record<string, string>; data: string }): Payload => ({
  metadata: Object.fromEntries(Object.entries(p.metadata).map(([k, v]) => [k, new Uint8Array(Buffer.from(v, 'base64'))])),
  data: new Uint8Array(Buffer.from(p.data, 'base64')),
});
const value = { phone: PHONE, fallback: { text: TEXT } };

async function encryptedBody(codec = testCodec) {
  const encoded = await codec.encode([defaultPayloadConverter.toPayload(value), defaultPayloadConverter.toPayload('second')]);
  return { payloads: encoded.map(toJson) };
}

async function post(path: string, body: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(`${server.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-namespace': 'default', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, text, json: () => JSON.parse(text) as { payloads: { metadata: Record<string, string>; data: string }[] } };
}
const bearer = { authorization: `Bearer ${TOKEN}` };

beforeAll(async () => {
  const logger = createLogger({ LOG_LEVEL: 'debug' }, new Writable({ write: (chunk, _e, cb) => (logLines.push(String(chunk)), cb()) }));
  server = await startCodecServer({ codec: rotatedTestCodec, token: TOKEN, origins: [UI], host: '127.0.0.1', port: 0, logger });
});
afterAll(async () => {
  await server?.close();
});

describe('decode and encode with a valid token', () => {
  it('decodes for a bearer token: the payloads come back in clear', async () => {
    const res = await post('/decode', await encryptedBody(), bearer);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    const decoded = res.json().payloads.map(fromJson);
    expect(decoded.map((p) => defaultPayloadConverter.fromPayload(p))).toEqual([value, 'second']);
  });

  it('decodes for the token as the path segment, at the URL the UI builds (`${endpoint}/decode?preserveStorageRefs=true`)', async () => {
    const res = await post(`${new URL(server.uiEndpoint).pathname}/decode?preserveStorageRefs=true`, await encryptedBody());
    expect(res.status).toBe(200);
    expect(defaultPayloadConverter.fromPayload(fromJson(res.json().payloads[0]!))).toEqual(value);
    // An endpoint configured with a trailing slash gives `//decode`: still the decode operation.
    expect((await post(`/${TOKEN}//decode`, await encryptedBody())).status).toBe(200);
  });

  it('decodes payloads of a rotated-out key, and passes plain payloads through untouched', async () => {
    const plain = toJson(defaultPayloadConverter.toPayload({ note: 'not encrypted' }));
    const old = (await encryptedBody(testCodec)).payloads[0]!;
    const res = await post('/decode', { payloads: [plain, old] }, bearer);
    expect(res.status).toBe(200);
    const [first, second] = res.json().payloads;
    expect(first).toEqual(plain);
    expect(defaultPayloadConverter.fromPayload(fromJson(second!))).toEqual(value);
  });

  it('encodes with the current key (what the UI sends when it starts or signals a workflow)', async () => {
    const res = await post('/encode', { payloads: [toJson(defaultPayloadConverter.toPayload(value))] }, bearer);
    expect(res.status).toBe(200);
    const [encoded] = res.json().payloads.map(fromJson);
    expect(Buffer.from(encoded!.metadata!.encoding!).toString()).toBe(ENCRYPTED_ENCODING);
    expect(Buffer.from(encoded!.metadata!['encryption-key-id']!).toString()).toBe('test-2');
    expect(defaultPayloadConverter.fromPayload((await rotatedTestCodec.decode([encoded!]))[0]!)).toEqual(value);
  });
});

describe('who may call', () => {
  it('a missing or wrong token is 401', async () => {
    const body = await encryptedBody();
    for (const [path, headers] of [
      ['/decode', {}],
      ['/decode', { authorization: 'Bearer wrong-token-0123456789' }],
      ['/decode', { authorization: TOKEN }], // not a bearer
      ['/wrong-token-0123456789/decode', {}],
      ['/encode', {}],
    ] as [string, Record<string, string>][]) {
      const res = await post(path, body, headers);
      expect({ path, status: res.status }).toEqual({ path, status: 401 });
      expect(res.headers.get('www-authenticate')).toBe('Bearer realm="rbm-guard codec"');
      expect(res.text).not.toContain(PHONE);
    }
  });

  it('the UI origin gets CORS headers; a foreign origin is refused even with the token', async () => {
    const ok = await post('/decode', await encryptedBody(), { ...bearer, origin: UI });
    expect(ok.status).toBe(200);
    expect(ok.headers.get('access-control-allow-origin')).toBe(UI);
    expect(ok.headers.get('vary')).toContain('Origin');

    for (const origin of ['http://evil.example', 'http://127.0.0.1:9999', 'null']) {
      const res = await post('/decode', await encryptedBody(), { ...bearer, origin });
      expect({ origin, status: res.status }).toEqual({ origin, status: 403 });
      expect(res.headers.get('access-control-allow-origin')).toBeNull();
      expect(res.text).not.toContain(PHONE);
    }
  });

  it('the CORS preflight from the UI origin allows POST with Authorization, Content-Type and X-Namespace', async () => {
    const res = await fetch(`${server.uiEndpoint}/decode?preserveStorageRefs=true`, {
      method: 'OPTIONS',
      headers: { origin: UI, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type,x-namespace' },
    });
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-origin')).toBe(UI);
    expect(res.headers.get('access-control-allow-methods')).toContain('POST');
    const allowed = (res.headers.get('access-control-allow-headers') ?? '').split(',').map((h) => h.trim());
    expect(allowed).toEqual(expect.arrayContaining(['authorization', 'content-type', 'x-namespace']));
    expect(res.headers.get('access-control-allow-credentials')).toBe('true');

    const foreign = await fetch(`${server.url}/decode`, {
      method: 'OPTIONS',
      headers: { origin: 'http://evil.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization' },
    });
    expect(foreign.status).toBe(403);
    expect(foreign.headers.get('access-control-allow-origin')).toBeNull();
  });
});

describe('malformed bodies', () => {
  it.each([
    ['not JSON', '{"payloads": [', 'the body is not valid JSON'],
    ['empty object', {}, 'expected {"payloads": [{"metadata": {…}, "data": "<base64>"}]}: Invalid input: expected array, received undefined at payloads'],
    ['payloads not an array', { payloads: 'x' }, 'expected {"payloads": [{"metadata": {…}, "data": "<base64>"}]}: Invalid input: expected array, received string at payloads'],
    ['data not base64', { payloads: [{ metadata: {}, data: '!!!' }] }, 'expected {"payloads": [{"metadata": {…}, "data": "<base64>"}]}: expected base64 at payloads.0.data'],
    ['metadata not a map of base64', { payloads: [{ metadata: { encoding: 42 }, data: '' }] }, 'expected {"payloads": [{"metadata": {…}, "data": "<base64>"}]}: Invalid input: expected string, received number at payloads.0.metadata.encoding'],
  ])('%s → 400', async (_name, body, message) => {
    const res = await post('/decode', body, bearer);
    expect(res.status).toBe(400);
    expect(JSON.parse(res.text)).toEqual({ error: 'bad_request', message });
  });

  it('an encrypted payload of an unknown key, or tampered, is 400 with the reason (the protocol\'s decoder error)', async () => {
    const [foreign] = await (await import('../../client/codec.ts')).ephemeralEncryption('k-other').codec.encode([defaultPayloadConverter.toPayload(value)]);
    const res = await post('/decode', { payloads: [toJson(foreign!)] }, bearer);
    expect(res.status).toBe(400);
    expect(JSON.parse(res.text)).toEqual({
      error: 'decode_failed',
      message: 'payload is encrypted with key id "k-other", which is not loaded (loaded: test-1, test-2); add that key to RBM_GUARD_ENCRYPTION_KEYS (or the key file) to read it',
    });
    const good = (await encryptedBody()).payloads[0]!;
    const data = Buffer.from(good.data, 'base64');
    data[15]! ^= 1;
    const tampered = await post('/decode', { payloads: [{ ...good, data: data.toString('base64') }] }, bearer);
    expect(tampered.status).toBe(400);
    expect(JSON.parse(tampered.text).error).toBe('decode_failed');
  });

  it('a body that is not JSON by content type is 415; unknown paths are 404', async () => {
    const res = await post('/decode', JSON.stringify(await encryptedBody()), { ...bearer, 'content-type': 'text/plain' });
    expect(res.status).toBe(415);
    expect((await post('/decrypt', await encryptedBody(), bearer)).status).toBe(404);
  });
});

describe('settings and logs', () => {
  it('the log names requests but never holds the token, a phone number or a text', () => {
    const log = logLines.join('');
    expect(log).toContain('codec request');
    expect(log).not.toContain(TOKEN);
    expect(log).not.toContain(PHONE);
    expect(log).not.toContain(TEXT);
  });

  it('next to the embedded dev server a token is generated (0600) and the embedded UI origins allowed; production requires RBM_GUARD_CODEC_TOKEN', () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'rbm-guard-codec-'));
    const dev = codecServerSettings(loadConfig({ RBM_GUARD_DATA_DIR: dataDir, TEMPORAL_UI_PORT: '8233' }));
    expect(dev.token).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(statSync(join(dataDir, 'codec-token')).mode & 0o777).toBe(0o600);
    expect(codecServerSettings(loadConfig({ RBM_GUARD_DATA_DIR: dataDir })).token).toBe(dev.token);
    expect(dev.origins).toEqual(['http://127.0.0.1:8233', 'http://localhost:8233']);
    expect(dev.host).toBe('127.0.0.1');

    let err: unknown;
    try {
      codecServerSettings(loadConfig({ RBM_GUARD_DATA_DIR: dataDir, TEMPORAL_ADDRESS: 'temporal:7233' }));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).issues).toEqual([
      { variable: 'RBM_GUARD_CODEC_TOKEN', message: 'required to run the codec server against a real Temporal or in production' },
    ]);
    const prod = codecServerSettings(
      loadConfig({ TEMPORAL_ADDRESS: 'temporal:7233', RBM_GUARD_CODEC_TOKEN: TOKEN, RBM_GUARD_CODEC_ORIGINS: 'https://temporal-ui.example.com' }),
    );
    expect(prod).toMatchObject({ token: TOKEN, origins: ['https://temporal-ui.example.com'] });
  });
});
