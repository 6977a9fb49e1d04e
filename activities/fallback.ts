// The SMS leg: a small channel interface and two real providers (Twilio's Messages API and a
// generic HTTP endpoint of the business's own). One call is ONE attempt: the workflow drives the
// retries and decides, from each failure's details, whether an attempt may have gone out.
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { ConfigError, fallbackProviderIssues, type Config } from '../config/index.ts';
import { ERROR_TYPES, SMS_ATTEMPT_BUDGET_MS, type FallbackFailureDetails, type FallbackInput, type FallbackReceipt } from '../workflows/contract.ts';
import { mayHaveReachedServer, networkCode, redact, retryAfterSeconds } from './http.ts';

export interface FallbackSendOptions {
  /** Aborts the send (e.g. the activity's cancellation); the per-request timeout applies anyway. */
  signal?: AbortSignal;
}

export interface FallbackChannel {
  readonly name: string;
  /** One attempt. Resolves with the receipt; throws FallbackError when the provider did not accept it. */
  send(input: FallbackInput, options?: FallbackSendOptions): Promise<FallbackReceipt>;
}

export type FallbackErrorType = (typeof ERROR_TYPES)['fallbackPermanent' | 'fallbackRetryable' | 'fallbackLookupFailed'];

/** A classified provider failure. Its message never holds the phone number or the text. */
export class FallbackError extends Error {
  override readonly name = 'FallbackError';
  readonly type: FallbackErrorType;
  readonly status?: number;
  readonly retryAfterSeconds?: number;
  /** The request may have reached the provider; for a failed lookup, the earlier attempt may have gone out. */
  readonly maybeSent: boolean;
  constructor(type: FallbackErrorType, message: string, fields: { status?: number; retryAfterSeconds?: number; maybeSent: boolean }) {
    super(message);
    this.type = type;
    this.status = fields.status;
    this.retryAfterSeconds = fields.retryAfterSeconds;
    this.maybeSent = fields.maybeSent;
  }
  get retryable(): boolean {
    return this.type !== ERROR_TYPES.fallbackPermanent;
  }
  /** What the ApplicationFailure carries to the workflow. */
  get details(): FallbackFailureDetails {
    return { maybeSent: this.maybeSent, retryAfterSeconds: this.retryAfterSeconds ?? null, status: this.status ?? null };
  }
}

/**
 * The header both providers get (draft-ietf-httpapi-idempotency-key-header). The generic endpoint
 * must honour it. Twilio documents no idempotent create and ignores it, so a Twilio retry after an
 * attempt that may have gone out looks the message up first (see twilioLookup).
 */
export const IDEMPOTENCY_HEADER = 'Idempotency-Key';

/**
 * The key as a provider can take it: a header value of at most 255 visible ASCII characters. A guard
 * id that is not one (a message id with non-ASCII characters, the longest ids) goes as its SHA-256,
 * the same on every attempt; every other id goes as it is, as it always has.
 */
export function providerIdempotencyKey(key: string): string {
  return /^[\x21-\x7e]{1,255}$/.test(key) ? key : `sha256:${createHash('sha256').update(key, 'utf8').digest('hex')}`;
}

export interface TwilioChannelOptions {
  accountSid: string;
  authToken: string;
  from: string;
  /** Default https://api.twilio.com. */
  baseUrl?: string;
  timeoutMs: number;
  /** Every request of one send() ends within this (default SMS_ATTEMPT_BUDGET_MS): none outlives its attempt. */
  attemptBudgetMs?: number;
}

export function createTwilioChannel(options: TwilioChannelOptions): FallbackChannel {
  const base = (options.baseUrl ?? 'https://api.twilio.com').replace(/\/+$/, '');
  const url = `${base}/2010-04-01/Accounts/${encodeURIComponent(options.accountSid)}/Messages.json`;
  const authorization = `Basic ${Buffer.from(`${options.accountSid}:${options.authToken}`).toString('base64')}`;
  const secrets = [options.authToken, authorization.slice('Basic '.length)];
  return {
    name: 'twilio',
    async send(input, sendOptions = {}) {
      const budget = attemptBudget(options.attemptBudgetMs);
      if (input.lookupSince) {
        const found = await twilioLookup({ base, url, authorization, secrets, from: options.from, timeoutMs: options.timeoutMs, budget }, input, sendOptions.signal);
        if (found) return { provider: 'twilio', providerMessageId: found.sid, found: true, matches: found.matches };
        // A POST must be able to run its whole timeout inside the attempt, or it could outlive it.
        if (budget.left() < options.timeoutMs) {
          throw new FallbackError(ERROR_TYPES.fallbackLookupFailed, `Twilio lookup took the attempt's time: no time left to send within it (${budget.left()} ms)`, { maybeSent: true });
        }
      }
      const res = await exchange('Twilio', url, input, budget.timeout(options.timeoutMs), sendOptions.signal, {
        method: 'POST',
        headers: {
          authorization,
          'content-type': 'application/x-www-form-urlencoded',
          [IDEMPOTENCY_HEADER]: providerIdempotencyKey(input.idempotencyKey),
        },
        body: new URLSearchParams({ To: input.phone, From: options.from, Body: input.text }).toString(),
        secrets,
      });
      if (!res.ok) throw sendFailure('Twilio', res, input, secrets);
      const sid = jsonField(res.text, 'sid');
      return { provider: 'twilio', providerMessageId: sid ?? 'unknown' };
    },
  };
}

/**
 * Characters Twilio's Smart Encoding replaces with GSM ones (curly quotes, dashes, ellipsis, odd
 * spaces): a body it rewrote must still be recognised as ours.
 */
const SMART_ENCODING: [RegExp, string][] = [
  [/[\u2018\u2019\u201a\u2032\u2035\u02bc\uff07]/g, "'"],
  [/[\u201c\u201d\u201e\u2033\u2036\u00ab\u00bb\uff02]/g, '"'],
  [/[\u2010-\u2015\u2212\uff0d]/g, '-'],
  [/\u2026/g, '...'],
  [/[\u00a0\u2000-\u200a\u202f\u205f\u3000]/g, ' '],
  [/[\u200b\u200c\u200d\u2060\ufeff]/g, ''],
];
function comparable(text: string): string {
  return SMART_ENCODING.reduce((t, [from, to]) => t.replace(from, to), text.normalize('NFKC')).replace(/\s+/g, ' ').trim();
}

/**
 * Whether a listed body is our SMS: the same text, or the same after Twilio's Smart Encoding, or ours
 * with text a Messaging Service added around it (an opt-out line). Another guard's identical text to
 * the same phone within the window cannot be told apart: the lookup would count it (docs/architecture.md).
 */
export function sameSmsBody(listed: string | null, sent: string): boolean {
  if (listed === null) return false;
  if (listed === sent) return true;
  const ours = comparable(sent);
  const theirs = comparable(listed);
  return ours.length > 0 && (theirs === ours || theirs.startsWith(`${ours} `) || theirs.startsWith(`${ours}\n`) || theirs.endsWith(` ${ours}`));
}

/** Clock skew allowed between our lookupSince and Twilio's date_created. */
export const TWILIO_LOOKUP_SKEW_MS = 60_000;
/** Pages read before the list counts as too long to be complete (1000 messages per page). */
export const TWILIO_LOOKUP_MAX_PAGES = 5;
const TWILIO_PAGE_SIZE = 1000;
/** Statuses of a message Twilio never handed to a carrier: it did not reach the phone. */
const TWILIO_NOT_SENT = new Set(['failed', 'canceled']);

const twilioPage = z.object({
  messages: z.array(
    z.object({
      sid: z.string().min(1),
      body: z.string().nullable(),
      to: z.string().nullable().optional(),
      from: z.string().nullable().optional(),
      status: z.string().nullable().optional(),
      date_created: z.string().refine((d) => !Number.isNaN(Date.parse(d)), 'date_created is not a date'),
    }),
  ),
  next_page_uri: z.string().nullable().optional(),
});

interface TwilioLookupContext {
  base: string;
  url: string;
  authorization: string;
  secrets: string[];
  from: string;
  timeoutMs: number;
  budget: AttemptBudget;
}

/** What is left of one attempt's time: every request's timeout is cut to it. */
interface AttemptBudget {
  left(): number;
  timeout(requestMs: number): number;
}

function attemptBudget(budgetMs = SMS_ATTEMPT_BUDGET_MS): AttemptBudget {
  const end = Date.now() + budgetMs;
  const left = () => Math.max(0, end - Date.now());
  return { left, timeout: (requestMs) => Math.max(1, Math.min(requestMs, left())) };
}

/**
 * Whether an earlier attempt's SMS exists: lists Messages To=phone From=TWILIO_FROM and matches one
 * with the same body created since lookupSince − skew. Returns the first match and how many matched, or null only when the SMS is
 * KNOWN NOT TO EXIST: every page of that list was read (HTTP 200, well-formed, at most
 * TWILIO_LOOKUP_MAX_PAGES) and none matched (a message Twilio marks failed/canceled never reached a
 * carrier and does not count). Anything less — an error status, a timeout, refused credentials, a
 * malformed page, a list too long — throws FallbackLookupFailedError: the earlier attempt's fate stays
 * unknown and the workflow's policy decides.
 *
 * No DateSent>= filter, though it would shorten the list: a message Twilio still holds `queued` has
 * date_sent null, and a date filter does not match it — exactly the SMS a lost answer leaves behind.
 */
async function twilioLookup(ctx: TwilioLookupContext, input: FallbackInput, signal: AbortSignal | undefined): Promise<{ sid: string; matches: number } | null> {
  const since = Date.parse(input.lookupSince ?? '');
  const fail = (message: string, res?: ExchangeResult) =>
    new FallbackError(ERROR_TYPES.fallbackLookupFailed, `Twilio lookup: ${message}`, {
      status: res?.status,
      retryAfterSeconds: res ? retryAfterSeconds(res.headers.get('retry-after')) : undefined,
      maybeSent: true,
    });
  if (Number.isNaN(since)) throw fail('lookupSince is not a date');
  const after = since - TWILIO_LOOKUP_SKEW_MS;
  const query = new URLSearchParams({ To: input.phone, From: ctx.from, PageSize: String(TWILIO_PAGE_SIZE) });
  let next: string | null | undefined = `${ctx.url}?${query}`;
  // Every page is read, even after a match: two of ours (two slow attempts both completed) are two sent.
  const matches: string[] = [];
  for (let page = 0; next; page++) {
    if (page === TWILIO_LOOKUP_MAX_PAGES) throw fail(`more than ${TWILIO_LOOKUP_MAX_PAGES} pages: the list cannot be read completely`);
    if (ctx.budget.left() <= 0) throw fail('the attempt\u2019s time ran out before the list was read');
    const res = await exchange('Twilio lookup', next, input, ctx.budget.timeout(ctx.timeoutMs), signal, {
      method: 'GET',
      headers: { authorization: ctx.authorization, accept: 'application/json' },
      secrets: ctx.secrets,
      failAs: ERROR_TYPES.fallbackLookupFailed,
    });
    if (!res.ok) throw fail(`HTTP ${res.status} ${errorDetail(res.text, input, ctx.secrets)}`.trimEnd(), res);
    const parsed = twilioPage.safeParse(safeJson(res.text));
    if (!parsed.success) throw fail(`malformed list page (${parsed.error.issues[0]?.path.join('.') ?? ''})`, res);
    const found = parsed.data.messages.filter(
      (m) =>
        sameSmsBody(m.body, input.text) &&
        Date.parse(m.date_created) >= after &&
        !TWILIO_NOT_SENT.has(m.status ?? '') &&
        // A server that ignored a filter must not match another number's message.
        (m.to == null || m.to === input.phone) &&
        (m.from == null || m.from === ctx.from),
    );
    matches.push(...found.map((m) => m.sid));
    next = parsed.data.next_page_uri ? new URL(parsed.data.next_page_uri, `${ctx.base}/`).toString() : null;
    // Our credentials go only to the host we were configured with.
    if (next && new URL(next).origin !== new URL(ctx.base).origin) throw fail('next_page_uri points at another host', res);
  }
  return matches.length ? { sid: matches[0]!, matches: new Set(matches).size } : null;
}

export interface HttpChannelOptions {
  url: string;
  /** Sent as a bearer token when set. */
  token?: string;
  timeoutMs: number;
  /** The request ends within this (default SMS_ATTEMPT_BUDGET_MS): it never outlives its attempt. */
  attemptBudgetMs?: number;
}

/** POSTs JSON {to, text, idempotencyKey}; a 2xx answer may carry {id} or {messageId}. */
export function createHttpChannel(options: HttpChannelOptions): FallbackChannel {
  return {
    name: 'http',
    async send(input, sendOptions = {}) {
      // lookupSince needs no lookup here: the same Idempotency-Key makes a resend of a sent SMS a no-op.
      const secrets = options.token ? [options.token] : [];
      const res = await exchange('SMS endpoint', options.url, input, attemptBudget(options.attemptBudgetMs).timeout(options.timeoutMs), sendOptions.signal, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          [IDEMPOTENCY_HEADER]: providerIdempotencyKey(input.idempotencyKey),
          ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
        },
        body: JSON.stringify({ to: input.phone, text: input.text, idempotencyKey: providerIdempotencyKey(input.idempotencyKey) }),
        secrets,
      });
      if (!res.ok) throw sendFailure('SMS endpoint', res, input, secrets);
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
    if (!accountSid || !authToken || !from) throw new ConfigError(fallbackProviderIssues(config));
    return createTwilioChannel({ accountSid, authToken, from, baseUrl: config.TWILIO_API_BASE_URL, timeoutMs });
  }
  if (!config.FALLBACK_HTTP_URL) {
    throw new ConfigError([{ variable: 'FALLBACK_HTTP_URL', message: 'required when FALLBACK_PROVIDER=http' }]);
  }
  return createHttpChannel({ url: config.FALLBACK_HTTP_URL, token: config.FALLBACK_HTTP_TOKEN, timeoutMs });
}

interface ExchangeResult {
  ok: boolean;
  status: number;
  text: string;
  headers: Headers;
}

/** One HTTP request; a failure without an answer is classified here (did the request get out?). */
async function exchange(
  label: string,
  url: string,
  input: FallbackInput,
  timeoutMs: number,
  external: AbortSignal | undefined,
  init: {
    method: 'GET' | 'POST';
    headers: Record<string, string>;
    body?: string;
    /** The provider's own credentials: never echoed into an error. */
    secrets: string[];
    /** Default: a retryable send failure. */
    failAs?: FallbackErrorType;
  },
): Promise<ExchangeResult> {
  const timeout = AbortSignal.timeout(timeoutMs);
  const signal = external ? AbortSignal.any([timeout, external]) : timeout;
  const failAs = init.failAs ?? ERROR_TYPES.fallbackRetryable;
  // A failed lookup always leaves the earlier attempt's fate open; a failed send may or may not have got out.
  const maybeSent = (sent: boolean) => failAs === ERROR_TYPES.fallbackLookupFailed || sent;
  try {
    const response = await fetch(url, { method: init.method, headers: init.headers, body: init.body, signal, redirect: 'manual' });
    const text = await response.text();
    return { ok: response.ok, status: response.status, text, headers: response.headers };
  } catch (error) {
    if (external?.aborted) throw external.reason;
    // A timeout cannot tell a slow connect from a lost answer: the request may have been written.
    if (timeout.aborted) throw new FallbackError(failAs, `${label} timed out after ${timeoutMs} ms`, { maybeSent: true });
    throw new FallbackError(failAs, `${label} network error: ${networkCode(error)}`, { maybeSent: maybeSent(mayHaveReachedServer(error)) });
  }
}

/** A send's non-2xx answer, classified. */
function sendFailure(label: string, res: ExchangeResult, input: FallbackInput, secrets: string[]): FallbackError {
  const message = `${label}: HTTP ${res.status} ${errorDetail(res.text, input, secrets)}`.trimEnd();
  const status = res.status;
  // 408 and 429 are the provider asking us to come back before it took the message; any other 4xx
  // refuses the message itself, and a redirect means the URL is wrong (re-POSTing a send elsewhere
  // is not ours to decide). 503 is the provider refusing to take work (down, overloaded): not sent,
  // so an outage ends FALLBACK_FAILED, which operators alert on. Any other 5xx (500, 502, 504) may
  // come after the message was created: maybe sent.
  if (status < 500 && status !== 408 && status !== 429) {
    return new FallbackError(ERROR_TYPES.fallbackPermanent, message, { status, maybeSent: false });
  }
  return new FallbackError(ERROR_TYPES.fallbackRetryable, message, {
    status,
    retryAfterSeconds: retryAfterSeconds(res.headers.get('retry-after')),
    maybeSent: status >= 500 && status !== 503,
  });
}

function errorDetail(text: string, input: FallbackInput, secrets: string[]): string {
  return redact(text, [input.phone, input.text, ...secrets]).replace(/\s+/g, ' ').trim().slice(0, 200);
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function jsonField(text: string, field: string): string | undefined {
  const parsed = safeJson(text);
  const value: unknown = typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>)[field] : undefined;
  return typeof value === 'string' && value ? value : undefined;
}
