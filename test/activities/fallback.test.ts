// The SMS providers against the sink over real HTTP, one attempt per call: every failure classified
// (permanent, or retryable with whether the SMS may have gone out), the generic endpoint's
// Idempotency-Key, and Twilio — which has none — looking an earlier attempt up before sending again.
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { createServer as createTcpServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createFallbackChannel,
  createHttpChannel,
  createTwilioChannel,
  FallbackError,
  sameSmsBody,
  TWILIO_LOOKUP_MAX_PAGES,
  type FallbackChannel,
} from '../../activities/fallback.ts';
import { ConfigError, loadConfig, type Config } from '../../config/index.ts';
import { ERROR_TYPES, type FallbackInput } from '../../workflows/contract.ts';
import { startSmsSink, type SmsSink } from '../../dev/sim/sms-sink.ts';

const TEXT = 'Your code is 987654';
const FROM = '+15550009999';
const TIMEOUT_MS = 300;

let sink: SmsSink;
let config: Config;
let http: FallbackChannel;
let twilio: FallbackChannel;
/** Every error message the channels produced, checked for leaks at the end. */
const messages: string[] = [];

let phoneCounter = 0;
const nextPhone = () => `+1555${String(Date.now() % 1_000_000).padStart(6, '0')}${phoneCounter++ % 10}`;
const input = (over: Partial<FallbackInput> = {}): FallbackInput => ({
  idempotencyKey: `rbm-guard/fallback-test/${randomUUID()}`,
  channel: 'sms',
  phone: nextPhone(),
  text: TEXT,
  ...over,
});
const sendsTo = (phone: string) => sink.sends.filter((s) => s.to === phone);

beforeAll(async () => {
  sink = await startSmsSink({ httpToken: 'sms-endpoint-token' });
  config = loadConfig({
    FALLBACK_PROVIDER: 'http',
    FALLBACK_HTTP_URL: `${sink.url}/messages`,
    FALLBACK_HTTP_TOKEN: 'sms-endpoint-token',
    FALLBACK_REQUEST_TIMEOUT_MS: String(TIMEOUT_MS),
  });
  http = createFallbackChannel(config);
  twilio = createFallbackChannel({
    ...config,
    FALLBACK_PROVIDER: 'twilio',
    TWILIO_ACCOUNT_SID: sink.twilio.accountSid,
    TWILIO_AUTH_TOKEN: sink.twilio.authToken,
    TWILIO_FROM: FROM,
    TWILIO_API_BASE_URL: sink.url,
  });
});
afterAll(async () => {
  await sink.close();
});

async function failure(promise: Promise<unknown>): Promise<FallbackError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(FallbackError);
  messages.push((error as Error).message);
  return error as FallbackError;
}

async function closedPort(): Promise<number> {
  const server = createTcpServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (!address || typeof address === 'string') throw new Error('no address');
  return address.port;
}

describe('both providers: one attempt, classified', () => {
  it('picks the provider FALLBACK_PROVIDER names, and names a missing setting', () => {
    expect(http.name).toBe('http');
    expect(twilio.name).toBe('twilio');
    expect(() => createFallbackChannel({ ...config, FALLBACK_HTTP_URL: undefined })).toThrow(ConfigError);
    expect(() => createFallbackChannel({ ...config, FALLBACK_HTTP_URL: undefined })).toThrow(/FALLBACK_HTTP_URL/);
    expect(() => createFallbackChannel({ ...config, FALLBACK_PROVIDER: 'twilio' })).toThrow(/TWILIO_ACCOUNT_SID/);
  });

  it.each(['http', 'twilio'] as const)('%s: 400 is permanent and surely not sent; 500 maybe sent; 503, 429 and a refused connection not', async (which) => {
    const channel = which === 'http' ? http : twilio;
    sink.injectFaults([{ status: 400 }, { status: 500 }, { status: 503 }, { status: 429, retryAfterSeconds: 3 }]);
    expect(await failure(channel.send(input()))).toMatchObject({
      type: ERROR_TYPES.fallbackPermanent,
      retryable: false,
      details: { maybeSent: false, status: 400, retryAfterSeconds: null },
    });
    expect(await failure(channel.send(input()))).toMatchObject({
      type: ERROR_TYPES.fallbackRetryable,
      retryable: true,
      details: { maybeSent: true, status: 500, retryAfterSeconds: null },
    });
    expect(await failure(channel.send(input()))).toMatchObject({
      type: ERROR_TYPES.fallbackRetryable,
      details: { maybeSent: false, status: 503, retryAfterSeconds: null },
    });
    expect(await failure(channel.send(input()))).toMatchObject({
      type: ERROR_TYPES.fallbackRetryable,
      details: { maybeSent: false, status: 429, retryAfterSeconds: 3 },
    });
    const nowhere = `http://127.0.0.1:${await closedPort()}`;
    const refused =
      which === 'http'
        ? createHttpChannel({ url: `${nowhere}/messages`, timeoutMs: TIMEOUT_MS })
        : createTwilioChannel({ accountSid: 'AC1', authToken: 't', from: FROM, baseUrl: nowhere, timeoutMs: TIMEOUT_MS });
    expect(await failure(refused.send(input()))).toMatchObject({
      type: ERROR_TYPES.fallbackRetryable,
      message: expect.stringMatching(/network error: ECONNREFUSED$/),
      details: { maybeSent: false, status: null },
    });
  });

  it('a guard id no header can carry (non-ASCII, over 255 characters) still sends once, and a resend is a no-op', async () => {
    for (const key of [`rbm-guard/test-agent/${randomUUID()}-\u20ac\u00e9`, `rbm-guard/test-agent/${randomUUID()}-`.padEnd(395, 'x')]) {
      const sms = input({ idempotencyKey: key });
      expect(await http.send(sms)).toMatchObject({ provider: 'http' });
      expect(await http.send(sms)).toMatchObject({ provider: 'http' });
      expect(sendsTo(sms.phone)).toHaveLength(1);
      expect(sendsTo(sms.phone)[0]!.idempotencyKey).toMatch(/^sha256:[0-9a-f]{64}$/);
    }
  });

  it.each(['http', 'twilio'] as const)('%s: a port fetch() refuses fails before connecting: not sent (and config refuses such a URL at start)', async (which) => {
    const blocked = 'http://127.0.0.1:9';
    const channel =
      which === 'http'
        ? createHttpChannel({ url: `${blocked}/messages`, timeoutMs: TIMEOUT_MS })
        : createTwilioChannel({ accountSid: 'AC1', authToken: 't', from: FROM, baseUrl: blocked, timeoutMs: TIMEOUT_MS });
    expect(await failure(channel.send(input()))).toMatchObject({
      type: ERROR_TYPES.fallbackRetryable,
      message: expect.stringMatching(/network error: BAD_PORT$/),
      details: { maybeSent: false, status: null },
    });
    const variable = which === 'http' ? 'FALLBACK_HTTP_URL' : 'TWILIO_API_BASE_URL';
    let refused: unknown;
    try {
      loadConfig({ FALLBACK_PROVIDER: which, [variable]: `${blocked}/messages`, TWILIO_ACCOUNT_SID: `AC${'0'.repeat(32)}`, TWILIO_AUTH_TOKEN: 't', TWILIO_FROM: FROM });
    } catch (err) {
      refused = err;
    }
    expect(refused).toBeInstanceOf(ConfigError);
    expect((refused as ConfigError).issues).toEqual([{ variable, message: expect.stringMatching(/port 9 is one fetch\(\) refuses/) }]);
  });

  it.each(['http', 'twilio'] as const)('%s: a lost response and a timeout are retryable and maybe sent (and the sink did record the lost one)', async (which) => {
    const channel = which === 'http' ? http : twilio;
    const lost = input();
    sink.injectFaults([{ lostResponse: true }, { hangMs: 5000, perform: false }]);
    expect(await failure(channel.send(lost))).toMatchObject({ type: ERROR_TYPES.fallbackRetryable, details: { maybeSent: true, status: null } });
    expect(sendsTo(lost.phone)).toHaveLength(1);
    const started = Date.now();
    const timedOut = await failure(channel.send(input()));
    expect(timedOut).toMatchObject({ type: ERROR_TYPES.fallbackRetryable, message: expect.stringMatching(/timed out after 300 ms/), details: { maybeSent: true } });
    expect(Date.now() - started).toBeLessThan(TIMEOUT_MS + 1000);
  });

  it('refused credentials are permanent on a send', async () => {
    const badHttp = createHttpChannel({ url: `${sink.url}/messages`, token: 'wrong', timeoutMs: TIMEOUT_MS });
    expect(await failure(badHttp.send(input()))).toMatchObject({ type: ERROR_TYPES.fallbackPermanent, status: 401 });
    const badTwilio = createTwilioChannel({ accountSid: sink.twilio.accountSid, authToken: 'wrong', from: FROM, baseUrl: sink.url, timeoutMs: TIMEOUT_MS });
    const error = await failure(badTwilio.send(input()));
    expect(error).toMatchObject({ type: ERROR_TYPES.fallbackPermanent, status: 401, details: { maybeSent: false } });
    expect(error.message).toContain('20003');
  });
});

describe('generic HTTP provider: the Idempotency-Key is the protection', () => {
  it('a lost response, resent with the same key (lookupSince set), is one SMS with one id', async () => {
    const sms = input();
    sink.injectFaults([{ lostResponse: true }]);
    expect((await failure(http.send(sms))).details.maybeSent).toBe(true);
    const receipt = await http.send({ ...sms, lookupSince: new Date(Date.now() - 1000).toISOString() });
    expect(receipt).toEqual({ provider: 'http', providerMessageId: expect.stringMatching(/^msg_/) });
    expect(sendsTo(sms.phone)).toEqual([expect.objectContaining({ providerMessageId: receipt.providerMessageId, idempotencyKey: sms.idempotencyKey })]);
  });
});

describe('Twilio: no idempotency key, so a retry looks first', () => {
  it('sends a second SMS when called twice without lookupSince (the sink, like Twilio, ignores the key)', async () => {
    const sms = input();
    const first = await twilio.send(sms);
    const second = await twilio.send(sms);
    expect(first.providerMessageId).toMatch(/^SM[0-9a-f]{32}$/);
    expect(second.providerMessageId).not.toBe(first.providerMessageId);
    expect(sendsTo(sms.phone)).toHaveLength(2);
  });

  it('after a lost response, the retry finds the first SMS by listing Messages and sends nothing', async () => {
    const sms = input();
    const lookupSince = new Date().toISOString();
    sink.injectFaults([{ lostResponse: true }]);
    expect((await failure(twilio.send(sms))).details.maybeSent).toBe(true);
    const [sent] = sendsTo(sms.phone);
    // Within the sink's 300 ms the first SMS is still queued (date_sent null): a DateSent filter would miss it.
    const receipt = await twilio.send({ ...sms, lookupSince });
    expect(receipt).toEqual({ provider: 'twilio', providerMessageId: sent?.providerMessageId, found: true, matches: 1 });
    expect(sendsTo(sms.phone)).toHaveLength(1);
  });

  it('after an attempt that never got out, the lookup finds nothing and the retry sends once', async () => {
    const sms = input();
    const lookupSince = new Date().toISOString();
    sink.injectFaults([{ hangMs: 5000, perform: false }]);
    expect((await failure(twilio.send(sms))).details.maybeSent).toBe(true);
    const receipt = await twilio.send({ ...sms, lookupSince });
    expect(receipt.found).toBeUndefined();
    expect(sendsTo(sms.phone)).toEqual([expect.objectContaining({ providerMessageId: receipt.providerMessageId, text: TEXT })]);
  });

  it('matches only the same text to the same number from our number: other messages there do not count', async () => {
    const sms = input();
    const lookupSince = new Date().toISOString();
    await twilio.send({ ...sms, text: 'Your code is 111111' });
    const otherSender = createTwilioChannel({ accountSid: sink.twilio.accountSid, authToken: sink.twilio.authToken, from: '+15550008888', baseUrl: sink.url, timeoutMs: TIMEOUT_MS });
    await otherSender.send(sms);
    await twilio.send({ ...sms, phone: nextPhone() });
    const receipt = await twilio.send({ ...sms, lookupSince });
    expect(receipt.found).toBeUndefined();
    expect(sendsTo(sms.phone).map((s) => s.text)).toEqual(['Your code is 111111', TEXT, TEXT]);
  });

  it.each([
    ['a 503', [{ status: 503 as const }], 503],
    ['a timeout', [{ hangMs: 5000 }], null],
  ])('a lookup answered with %s fails as FallbackLookupFailedError, maybe sent, and sends nothing', async (_what, faults, status) => {
    const sms = input();
    await twilio.send(sms);
    sink.injectLookupFaults(faults);
    const error = await failure(twilio.send({ ...sms, lookupSince: new Date(Date.now() - 5000).toISOString() }));
    expect(error).toMatchObject({ type: ERROR_TYPES.fallbackLookupFailed, retryable: true, details: { maybeSent: true, status } });
    expect(error.message).toMatch(/^Twilio lookup/);
    expect(sendsTo(sms.phone)).toHaveLength(1);
  });

  it('refused credentials on the lookup are a lookup failure, not "nothing sent"', async () => {
    const badTwilio = createTwilioChannel({ accountSid: sink.twilio.accountSid, authToken: 'wrong', from: FROM, baseUrl: sink.url, timeoutMs: TIMEOUT_MS });
    const sms = input({ lookupSince: new Date().toISOString() });
    expect(await failure(badTwilio.send(sms))).toMatchObject({ type: ERROR_TYPES.fallbackLookupFailed, details: { maybeSent: true, status: 401 } });
    expect(sendsTo(sms.phone)).toHaveLength(0);
  });
});

describe('Twilio lookup against list pages the sink cannot produce (a raw HTTP server)', () => {
  let server: Server;
  let base: string;
  let pages: (url: URL) => { status: number; body: string; delayMs?: number };
  const seen: { method: string; url: URL; authorization?: string }[] = [];

  beforeAll(async () => {
    server = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      seen.push({ method: req.method ?? '', url, authorization: req.headers.authorization });
      if (req.method === 'POST') {
        res.writeHead(201, { 'content-type': 'application/json' }).end(JSON.stringify({ sid: 'SMposted' }));
        return;
      }
      const answer = pages(url);
      setTimeout(() => res.writeHead(answer.status, { 'content-type': 'application/json' }).end(answer.body), answer.delayMs ?? 0);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    if (!address || typeof address === 'string') throw new Error('no address');
    base = `http://127.0.0.1:${address.port}`;
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
  });

  const channel = () => createTwilioChannel({ accountSid: 'ACraw', authToken: 'raw-token', from: FROM, baseUrl: base, timeoutMs: TIMEOUT_MS });
  const message = (over: Record<string, unknown>) => ({ sid: `SM${randomUUID().replace(/-/g, '')}`, body: TEXT, to: '+15551230000', from: FROM, status: 'delivered', date_created: new Date().toUTCString(), ...over });

  it('a body Twilio rewrote (Smart Encoding) or a Messaging Service extended (opt-out line) is still ours; another text is not', () => {
    const sent = 'Your code is \u201c123456\u201d \u2014 don\u2019t share it\u2026';
    expect(sameSmsBody(sent, sent)).toBe(true);
    expect(sameSmsBody('Your code is "123456" - don\'t share it...', sent)).toBe(true);
    expect(sameSmsBody(`${sent} Reply STOP to unsubscribe.`, sent)).toBe(true);
    expect(sameSmsBody('Your code is "654321" - don\'t share it...', sent)).toBe(false);
    expect(sameSmsBody(null, sent)).toBe(false);
    expect(sameSmsBody('Your code is', 'Your code is 1')).toBe(false);
  });

  it('two of ours on the list (two slow attempts both completed) are reported as two, across pages', async () => {
    pages = (url) =>
      url.searchParams.get('Page') === '1'
        ? { status: 200, body: JSON.stringify({ messages: [message({ sid: 'SMsecond' })], next_page_uri: null }) }
        : { status: 200, body: JSON.stringify({ messages: [message({ sid: 'SMfirst' }), message({ body: 'other' })], next_page_uri: `${url.pathname}?Page=1` }) };
    const receipt = await channel().send(input({ phone: '+15551230000', lookupSince: new Date().toISOString() }));
    expect(receipt).toEqual({ provider: 'twilio', providerMessageId: 'SMfirst', found: true, matches: 2 });
  });

  it('no request outlives its attempt: a lookup that used the attempt\u2019s time leaves the POST unsent (lookup failed, retried later)', async () => {
    seen.length = 0;
    pages = () => ({ status: 200, body: JSON.stringify({ messages: [], next_page_uri: null }), delayMs: 150 });
    const slow = createTwilioChannel({ accountSid: 'ACraw', authToken: 'raw-token', from: FROM, baseUrl: base, timeoutMs: TIMEOUT_MS, attemptBudgetMs: 400 });
    expect(await failure(slow.send(input({ phone: '+15551230000', lookupSince: new Date().toISOString() })))).toMatchObject({
      type: ERROR_TYPES.fallbackLookupFailed,
      message: expect.stringMatching(/no time left to send within it/),
      details: { maybeSent: true },
    });
    expect(seen.map((s) => s.method)).toEqual(['GET']);
  });

  it('asks with Twilio\'s parameters (To, From; no DateSent, which misses queued messages), Basic auth, and follows next_page_uri', async () => {
    seen.length = 0;
    const lookupSince = '2026-03-04T00:00:30.000Z';
    pages = (url) =>
      url.searchParams.get('Page') === '1'
        ? { status: 200, body: JSON.stringify({ messages: [message({ date_created: 'Wed, 04 Mar 2026 00:00:10 +0000', sid: 'SMfound' })], next_page_uri: null }) }
        : { status: 200, body: JSON.stringify({ messages: [message({ body: 'other' })], next_page_uri: `${url.pathname}?Page=1&PageToken=PA1` }) };
    const receipt = await channel().send(input({ phone: '+15551230000', lookupSince }));
    expect(receipt).toEqual({ provider: 'twilio', providerMessageId: 'SMfound', found: true, matches: 1 });
    const first = seen[0];
    expect(first?.method).toBe('GET');
    expect(first?.url.pathname).toBe('/2010-04-01/Accounts/ACraw/Messages.json');
    expect(Object.fromEntries(first?.url.searchParams ?? [])).toEqual({ To: '+15551230000', From: FROM, PageSize: '1000' });
    expect(first?.authorization).toBe(`Basic ${Buffer.from('ACraw:raw-token').toString('base64')}`);
    expect(seen.map((s) => s.method)).toEqual(['GET', 'GET']);
  });

  it('does not count a message created before lookupSince − 60 s, nor one Twilio marks failed', async () => {
    seen.length = 0;
    const lookupSince = new Date().toISOString();
    pages = () => ({
      status: 200,
      body: JSON.stringify({
        messages: [
          message({ date_created: new Date(Date.now() - 120_000).toUTCString() }),
          message({ status: 'failed' }),
        ],
        next_page_uri: null,
      }),
    });
    const receipt = await channel().send(input({ phone: '+15551230000', lookupSince }));
    expect(receipt).toEqual({ provider: 'twilio', providerMessageId: 'SMposted' });
    expect(seen.map((s) => s.method)).toEqual(['GET', 'POST']);
  });

  it.each([
    ['not JSON', () => ({ status: 200, body: '<html>oops</html>' })],
    ['no messages array', () => ({ status: 200, body: JSON.stringify({ page: 0 }) })],
    ['an unreadable date_created', () => ({ status: 200, body: JSON.stringify({ messages: [message({ date_created: 'yesterday-ish' })] }) })],
    ['a 403', () => ({ status: 403, body: JSON.stringify({ code: 20003, message: 'Permission denied' }) })],
    ['a next page on another host', () => ({ status: 200, body: JSON.stringify({ messages: [], next_page_uri: 'http://elsewhere.example/2010-04-01/Accounts/ACraw/Messages.json?Page=1' }) })],
    ['a list longer than the pages it reads', (url: URL) => ({ status: 200, body: JSON.stringify({ messages: [], next_page_uri: `${url.pathname}?Page=${Number(url.searchParams.get('Page') ?? 0) + 1}` }) })],
  ])('a page with %s is a lookup failure and nothing is posted', async (_what, answer) => {
    seen.length = 0;
    pages = answer;
    const error = await failure(channel().send(input({ lookupSince: new Date().toISOString() })));
    expect(error).toMatchObject({ type: ERROR_TYPES.fallbackLookupFailed, details: { maybeSent: true } });
    expect(seen.every((s) => s.method === 'GET')).toBe(true);
    expect(seen.length).toBeLessThanOrEqual(TWILIO_LOOKUP_MAX_PAGES);
  });
});

describe('privacy', () => {
  it('never puts a phone number, the text or a credential in an error message', () => {
    expect(messages.length).toBeGreaterThan(15);
    const everything = messages.join('\n');
    for (const secret of [TEXT, '987654', '+1555', sink.twilio.authToken, 'sms-endpoint-token', 'raw-token']) {
      expect(everything).not.toContain(secret);
    }
  });
});
