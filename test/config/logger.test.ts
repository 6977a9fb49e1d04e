// Redaction happens at the logger, for every call: phone numbers and message text at any depth and
// inside error messages and stacks, secrets by field name (tokens, keys, the config itself). And an
// SMS provider that echoes our credentials in an error body never gets them into an error message.
import { createServer, type Server } from 'node:http';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHttpChannel, createTwilioChannel, FallbackError } from '../../activities/fallback.ts';
import { loadConfig } from '../../config/index.ts';
import { createLogger } from '../../config/logger.ts';
import { TEST_KEY_1 } from '../support/encryption.ts';

const PHONE = '+14155550178';
const TEXT = 'Your code is 319024';
const TOKEN = 'codec-token-abcdefghijklmnop';

function capture() {
  const lines: string[] = [];
  const log = createLogger({ LOG_LEVEL: 'debug' }, new Writable({ write: (chunk, _e, cb) => (lines.push(String(chunk)), cb()) }));
  return { log, text: () => lines.join(''), json: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

describe('the logger redacts, whatever the call site logs', () => {
  it('phone numbers and texts at any depth, in messages, error messages, stacks and causes', () => {
    const { log, text, json } = capture();
    const cause = new Error(`upstream refused ${PHONE}`);
    const err = Object.assign(new Error(`revoke failed for /v1/phones/%2B${PHONE.slice(1)}/agentMessages`, { cause }), { code: 'E_RBM' });
    log.info({ guard: { message: { phone: PHONE, fallback: { channel: 'sms', text: TEXT } } }, events: [{ senderPhoneNumber: PHONE }] }, `tracked ${PHONE}`);
    log.error({ err }, 'revoke failed');
    log.error(err);
    log.warn({ deep: { a: { b: { c: { d: { body: TEXT, content: TEXT, note: `call ${PHONE}` } } } } } });
    log.child({ phone: PHONE }).info('child bindings too');
    const out = text();
    expect(out).not.toContain(PHONE.slice(2));
    expect(out).not.toContain(TEXT);
    const [tracked, byKey, bare] = json();
    expect(tracked).toMatchObject({ msg: 'tracked +14…', guard: { message: { phone: '[redacted]', fallback: { channel: 'sms', text: '[redacted]' } } } });
    // An error keeps its type, code and (masked) message and stack.
    // (pino appends the cause's message: masked as well)
    expect(byKey).toMatchObject({ msg: 'revoke failed', err: { type: 'Error', code: 'E_RBM', message: 'revoke failed for /v1/phones/%2B14…/agentMessages: upstream refused +14…' } });
    expect(String((byKey!.err as { stack: string }).stack)).toContain('revoke failed for /v1/phones/%2B14…');
    expect(bare).toMatchObject({ msg: 'revoke failed for /v1/phones/%2B14…/agentMessages' });
  });

  it('raw bytes are never written (a client error\u2019s rawPacket carries headers and body as they came)', () => {
    const { log, text, json } = capture();
    const rawPacket = Buffer.from(`POST /v1/guards HTTP/1.1\r\nAuthorization: Bearer ${TOKEN}\r\n\r\n{"phone":"${PHONE}"}`);
    log.info({ err: Object.assign(new Error('Parse Error'), { rawPacket }), packet: new Uint8Array(rawPacket) }, 'client error');
    expect(text()).not.toContain(TOKEN);
    expect(text()).not.toContain(Buffer.from(TOKEN).toString('base64'));
    expect(text()).not.toContain(PHONE.slice(2));
    expect(json()[0]).toMatchObject({ err: { rawPacket: `[${rawPacket.length} bytes]` }, packet: `[${rawPacket.length} bytes]` });
  });

  it('secrets by field name: tokens, keys, authorization headers, a whole config object', () => {
    const { log, text } = capture();
    const config = loadConfig({
      RBM_GUARD_ENCRYPTION_KEYS: TEST_KEY_1,
      RBM_GUARD_CODEC_TOKEN: TOKEN,
      RBM_CLIENT_TOKEN: 'client-token-xyz',
      TEMPORAL_API_KEY: 'temporal-api-key-xyz',
      FALLBACK_PROVIDER: 'twilio',
      TWILIO_ACCOUNT_SID: `AC${'0'.repeat(32)}`,
      TWILIO_AUTH_TOKEN: 'twilio-auth-token-xyz',
      TWILIO_FROM: '+15550000000',
      FALLBACK_HTTP_TOKEN: 'fallback-token-xyz',
    });
    log.info({ config }, 'configuration');
    log.info({ headers: { authorization: `Bearer ${TOKEN}`, 'x-goog-signature': 'c2ln', cookie: 's=1' }, token: TOKEN, apiKey: 'k', private_key: '-----BEGIN' });
    const out = text();
    for (const secret of [TEST_KEY_1.split(':')[1]!, TOKEN, 'client-token-xyz', 'temporal-api-key-xyz', 'twilio-auth-token-xyz', 'fallback-token-xyz', 'c2ln', '-----BEGIN']) {
      expect(out).not.toContain(secret);
    }
    expect(out).toContain('"RBM_GUARD_ENCRYPTION_KEYS":"[redacted]"');
  });
});

describe('provider error bodies are trimmed of our own credentials', () => {
  let server: Server;
  let url: string;
  beforeAll(async () => {
    // A provider that echoes everything it got back in a 400 body.
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        res.writeHead(400, { 'content-type': 'text/plain' });
        res.end(`rejected: auth=${req.headers.authorization ?? ''} raw=${(req.headers.authorization ?? '').replace(/^\w+ /, '')} body=${body}`);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
  });

  it('the HTTP channel: no bearer token, phone or text in the FallbackError', async () => {
    const channel = createHttpChannel({ url: `${url}/sms`, token: 'sms-api-token-0123456789', timeoutMs: 2000 });
    const err = await channel.send({ idempotencyKey: 'k', channel: 'sms', phone: PHONE, text: TEXT }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FallbackError);
    const message = (err as Error).message;
    expect(message).toMatch(/^SMS endpoint: HTTP 400 rejected:/);
    for (const secret of ['sms-api-token-0123456789', PHONE, PHONE.slice(1), TEXT]) expect(message).not.toContain(secret);
  });

  it('the Twilio channel: no auth token (plain or inside the Basic header), phone or text', async () => {
    const channel = createTwilioChannel({ accountSid: `AC${'1'.repeat(32)}`, authToken: 'twilio-secret-0123456789', from: '+15550000001', baseUrl: url, timeoutMs: 2000 });
    const err = await channel.send({ idempotencyKey: 'k', channel: 'sms', phone: PHONE, text: TEXT }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FallbackError);
    const message = (err as Error).message;
    const basic = Buffer.from(`AC${'1'.repeat(32)}:twilio-secret-0123456789`).toString('base64');
    for (const secret of ['twilio-secret-0123456789', basic, PHONE.slice(1), TEXT]) expect(message).not.toContain(secret);
  });
});
