// The SMS leg: a small channel interface and two real providers (Twilio's Messages API and a
// generic HTTP endpoint of the business's own). Each send carries the guard's idempotency key in an
// `Idempotency-Key` header, and provider answers are classified here, once.
import { ConfigError, type Config } from '../config/index.ts';
import { ERROR_TYPES, type FallbackInput, type FallbackReceipt } from '../workflows/contract.ts';
import { networkCode, redact, retryAfterSeconds } from './rbm.ts';

export interface FallbackSendOptions {
  /** Aborts the send (e.g. the activity's cancellation); the per-request timeout applies anyway. */
  signal?: AbortSignal;
}

export interface FallbackChannel {
  readonly name: string;
  send(input: FallbackInput, options?: FallbackSendOptions): Promise<FallbackReceipt>;
}

export type FallbackErrorType = (typeof ERROR_TYPES)['fallbackPermanent' | 'fallbackRetryable'];

/** A classified provider failure. Its message never holds the phone number or the text. */
export class FallbackError extends Error {
  override readonly name = 'FallbackError';
  constructor(
    readonly type: FallbackErrorType,
    message: string,
    readonly status?: number,
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
  }
  get retryable(): boolean {
    return this.type === ERROR_TYPES.fallbackRetryable;
  }
}

/**
 * The header both providers get. It is the IETF draft's name (draft-ietf-httpapi-idempotency-key-header),
 * which most SMS APIs with idempotent sends honour. Twilio's Messages API does not document
 * idempotent creates, so against real Twilio the header is harmless but may be ignored: the
 * guard's own single-send logic is then the only protection against a retried lost response.
 */
export const IDEMPOTENCY_HEADER = 'Idempotency-Key';

export interface TwilioChannelOptions {
  accountSid: string;
  authToken: string;
  from: string;
  /** Default https://api.twilio.com. */
  baseUrl?: string;
  timeoutMs: number;
}

export function createTwilioChannel(options: TwilioChannelOptions): FallbackChannel {
  const base = (options.baseUrl ?? 'https://api.twilio.com').replace(/\/+$/, '');
  const url = `${base}/2010-04-01/Accounts/${encodeURIComponent(options.accountSid)}/Messages.json`;
  const authorization = `Basic ${Buffer.from(`${options.accountSid}:${options.authToken}`).toString('base64')}`;
  return {
    name: 'twilio',
    async send(input, sendOptions = {}) {
      const res = await post('Twilio', url, input, options.timeoutMs, sendOptions.signal, {
        headers: {
          authorization,
          'content-type': 'application/x-www-form-urlencoded',
          [IDEMPOTENCY_HEADER]: input.idempotencyKey,
        },
        body: new URLSearchParams({ To: input.phone, From: options.from, Body: input.text }).toString(),
        secrets: [options.authToken, authorization.slice('Basic '.length)],
      });
      const sid = jsonField(res.text, 'sid');
      return { provider: 'twilio', providerMessageId: sid ?? 'unknown' };
    },
  };
}

export interface HttpChannelOptions {
  url: string;
  /** Sent as a bearer token when set. */
  token?: string;
  timeoutMs: number;
}

/** POSTs JSON {to, text, idempotencyKey}; a 2xx answer may carry {id} or {messageId}. */
export function createHttpChannel(options: HttpChannelOptions): FallbackChannel {
  return {
    name: 'http',
    async send(input, sendOptions = {}) {
      const res = await post('SMS endpoint', options.url, input, options.timeoutMs, sendOptions.signal, {
        headers: {
          'content-type': 'application/json',
          [IDEMPOTENCY_HEADER]: input.idempotencyKey,
          ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
        },
        body: JSON.stringify({ to: input.phone, text: input.text, idempotencyKey: input.idempotencyKey }),
        secrets: options.token ? [options.token] : [],
      });
      const id = jsonField(res.text, 'id') ?? jsonField(res.text, 'messageId');
      return { provider: 'http', providerMessageId: id ?? input.idempotencyKey };
    },
  };
}

/** The channel FALLBACK_PROVIDER names, with its settings checked. */
export function createFallbackChannel(
  config: Pick<
    Config,
    | 'FALLBACK_PROVIDER'
    | 'FALLBACK_HTTP_URL'
    | 'FALLBACK_HTTP_TOKEN'
    | 'TWILIO_ACCOUNT_SID'
    | 'TWILIO_AUTH_TOKEN'
    | 'TWILIO_FROM'
    | 'TWILIO_API_BASE_URL'
    | 'FALLBACK_REQUEST_TIMEOUT_MS'
  >,
): FallbackChannel {
  const timeoutMs = config.FALLBACK_REQUEST_TIMEOUT_MS;
  if (config.FALLBACK_PROVIDER === 'twilio') {
    const { TWILIO_ACCOUNT_SID: accountSid, TWILIO_AUTH_TOKEN: authToken, TWILIO_FROM: from } = config;
    if (!accountSid || !authToken || !from) {
      throw new ConfigError(
        (['TWILIO_ACCOUNT_SID', 'TWILIO_AUTH_TOKEN', 'TWILIO_FROM'] as const)
          .filter((k) => !config[k])
          .map((variable) => ({ variable, message: 'required when FALLBACK_PROVIDER=twilio' })),
      );
    }
    return createTwilioChannel({ accountSid, authToken, from, baseUrl: config.TWILIO_API_BASE_URL, timeoutMs });
  }
  if (!config.FALLBACK_HTTP_URL) {
    throw new ConfigError([{ variable: 'FALLBACK_HTTP_URL', message: 'required when FALLBACK_PROVIDER=http' }]);
  }
  return createHttpChannel({ url: config.FALLBACK_HTTP_URL, token: config.FALLBACK_HTTP_TOKEN, timeoutMs });
}

async function post(
  label: string,
  url: string,
  input: FallbackInput,
  timeoutMs: number,
  external: AbortSignal | undefined,
  init: { headers: Record<string, string>; body: string; /** The provider's own credentials: never echoed into an error. */ secrets: string[] },
): Promise<{ status: number; text: string }> {
  const timeout = AbortSignal.timeout(timeoutMs);
  const signal = external ? AbortSignal.any([timeout, external]) : timeout;
  let response: Response;
  let text: string;
  try {
    response = await fetch(url, { method: 'POST', headers: init.headers, body: init.body, signal, redirect: 'manual' });
    text = await response.text();
  } catch (error) {
    if (external?.aborted) throw external.reason;
    if (timeout.aborted) throw new FallbackError(ERROR_TYPES.fallbackRetryable, `${label} timed out after ${timeoutMs} ms`);
    throw new FallbackError(ERROR_TYPES.fallbackRetryable, `${label} network error: ${networkCode(error)}`);
  }
  if (response.ok) return { status: response.status, text };
  const detail = redact(text, [input.phone, input.text, ...init.secrets]).replace(/\s+/g, ' ').trim().slice(0, 200);
  const message = `${label}: HTTP ${response.status} ${detail}`.trimEnd();
  const status = response.status;
  // 408 and 429 are the provider asking us to come back; any other 4xx refuses the message itself,
  // and a redirect means the URL is wrong (re-POSTing a send elsewhere is not ours to decide).
  if (status < 500 && status !== 408 && status !== 429) {
    throw new FallbackError(ERROR_TYPES.fallbackPermanent, message, status);
  }
  throw new FallbackError(ERROR_TYPES.fallbackRetryable, message, status, retryAfterSeconds(response.headers.get('retry-after')));
}

function jsonField(text: string, field: string): string | undefined {
  try {
    const value: unknown = (JSON.parse(text) as Record<string, unknown>)[field];
    return typeof value === 'string' && value ? value : undefined;
  } catch {
    return undefined;
  }
}
