// The SMS provider stand-in: one real HTTP server speaking both shapes the fallback providers use —
// a generic JSON endpoint (POST /messages) that honours idempotency keys, and Twilio's Messages API
// (./twilio-api.ts), which ignores them as real Twilio does — with injectable faults on sends and on
// Twilio lookups, and an outage switch. Every accepted send is recorded: that record is the ground
// truth of how many SMS each phone really got, whatever the client believes.
import { seededRandom } from '../random.ts';
import { randomBytes } from 'node:crypto';
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify';
import { z } from 'zod';
import { E164_PATTERN } from '../../workflows/names.ts';
import { newTwilioSid, registerTwilioRoutes, twilioError, TWILIO_MAX_BODY, type TwilioContext, type TwilioMessage } from './twilio-api.ts';

export type SmsProvider = 'http' | 'twilio';

export interface SmsSend {
  at: number;
  provider: SmsProvider;
  to: string;
  /** Twilio's From. */
  from?: string;
  text: string;
  idempotencyKey?: string;
  providerMessageId: string;
}

/** A fault consumed by one request. */
export type SmsFault =
  | { status: 429 | 500 | 502 | 503 | 504; retryAfterSeconds?: number }
  /** Permanent: the provider refuses the message itself. */
  | { status: 400 }
  /** Record the send, then destroy the socket without answering. */
  | { lostResponse: true }
  /**
   * Record the send (unless perform: false), hold the response, then drop the socket or reply.
   * perform: 'after' — a provider slower than the client: the message is created (and listed) only
   * when the hang ends, after a client with a shorter timeout gave up.
   */
  | { hangMs: number; then?: 'drop' | 'reply'; perform?: boolean | 'after' };

/** A fault consumed by one Twilio lookup (list or fetch). */
export type SmsLookupFault =
  | { status: 401 | 429 | 500 | 502 | 503 | 504; retryAfterSeconds?: number }
  /** Hold the response, then drop the socket (default) or answer. */
  | { hangMs: number; then?: 'drop' | 'reply' }
  | { lostResponse: true };

/** Random faults for a chaos run, as probabilities in [0, 1] from a seeded PRNG. */
export interface SmsRandomFaults {
  seed: number;
  error5xx?: number;
  error429?: number;
  lostResponse?: number;
  hang?: number;
  /** Default 2000: set it above the client's timeout. */
  hangMs?: number;
  /** Twilio lookups (list/fetch) answered 500/503. */
  lookup5xx?: number;
  /** Twilio lookups that hang for hangMs, then drop. */
  lookupHang?: number;
  /** Sends that hang for slowCreateMs and only then create the message (after the client gave up), then drop. */
  slowCreate?: number;
  /** Default hangMs: how long a slow create takes. Set it past the client's timeout plus its first retry. */
  slowCreateMs?: number;
}

export interface SmsSinkOptions {
  /** Bearer token the generic endpoint requires (none = no check). */
  httpToken?: string;
  /** Twilio credentials to accept. Default: generated. */
  twilio?: { accountSid: string; authToken: string };
  random?: SmsRandomFaults;
  /**
   * Whether the Twilio endpoint deduplicates by Idempotency-Key. Default 'ignore', as real Twilio (a
   * retried POST is a second SMS); 'honour' is the old kind sink that no Twilio account behaves like.
   */
  twilioIdempotency?: 'ignore' | 'honour';
  /** How long an accepted Twilio message stays queued (date_sent null, unseen by DateSent filters). Default 300. */
  twilioSendDelayMs?: number;
  /** The account's throughput limit: sends past this many in one second answer 429 + Retry-After 1. Default none. */
  ratePerSecond?: number;
}

export interface SmsSinkStats {
  requests: number;
  sends: number;
  idempotentReplays: number;
  /** Twilio list/fetch requests, and the faults injected on them. */
  lookups: number;
  lookupFaults: number;
  faults: number;
  /** The same faults by kind (a chaos run reports what it injected). */
  faultsByKind: { down: number; status429: number; status5xx: number; status400: number; lostResponse: number; hang: number; slowCreate: number };
  rejected: number;
  /** Sends refused with 429 for the account's throughput limit (ratePerSecond). */
  rateLimited: number;
}

export interface SmsSink {
  /** Base URL: FALLBACK_HTTP_URL is `${url}/messages`, TWILIO_API_BASE_URL is `url`. */
  readonly url: string;
  readonly twilio: { accountSid: string; authToken: string };
  /** Every accepted send, in order (idempotent repeats are not recorded again). */
  readonly sends: readonly SmsSend[];
  /** How many SMS this phone really got: every accepted send to it (the ground truth). */
  distinctSendsTo(phone: string): number;
  sentTo(phone: string): SmsSend[];
  injectFaults(faults: SmsFault[]): void;
  /** Faults for the next Twilio lookups (list or fetch), in order. */
  injectLookupFaults(faults: SmsLookupFault[]): void;
  setRandomFaults(random: SmsRandomFaults | undefined): void;
  /** The account's throughput limit from now on (undefined: none). */
  setRateLimit(perSecond: number | undefined): void;
  /** Every request answers 503 for `forMs` (or until up()). */
  down(forMs?: number): void;
  up(): void;
  stats(): SmsSinkStats;
  close(): Promise<void>;
}


const httpBody = z.object({
  to: z.string().regex(E164_PATTERN, 'to must be E.164'),
  text: z.string().min(1).max(TWILIO_MAX_BODY),
  idempotencyKey: z.string().min(1).max(255).optional(),
});

interface Answer {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

function httpError(status: number, message: string, headers?: Record<string, string>): Answer {
  return { status, body: { error: { status, message } }, headers };
}

function errorFor(provider: SmsProvider, status: number, message: string, headers?: Record<string, string>): Answer {
  if (provider === 'http') return httpError(status, message, headers);
  const code = status === 400 ? 21211 : 20000 + status; // 21211 = invalid 'To' number; 20429/20500/20503
  return twilioError(status, code, message, headers);
}

/** Starts the sink on 127.0.0.1 with an OS-chosen port. */
export async function startSmsSink(options: SmsSinkOptions = {}): Promise<SmsSink> {
  const twilio = options.twilio ?? {
    accountSid: `AC${randomBytes(16).toString('hex')}`,
    authToken: randomBytes(16).toString('hex'),
  };
  const sends: SmsSend[] = [];
  const faults: SmsFault[] = [];
  /** provider + idempotency key → the first answer. */
  const answered = new Map<string, Answer>();
  const timers = new Map<NodeJS.Timeout, () => void>();
  const counters: SmsSinkStats = {
    requests: 0,
    sends: 0,
    idempotentReplays: 0,
    lookups: 0,
    lookupFaults: 0,
    faults: 0,
    faultsByKind: { down: 0, status429: 0, status5xx: 0, status400: 0, lostResponse: 0, hang: 0, slowCreate: 0 },
    rejected: 0,
    rateLimited: 0,
  };
  let random: { faults: SmsRandomFaults; next: () => number } | undefined;
  let downUntil: number | undefined;
  let closing = false;

  const setRandomFaults = (r: SmsRandomFaults | undefined) => {
    random = r ? { faults: r, next: seededRandom(r.seed) } : undefined;
  };
  setRandomFaults(options.random);

  const wait = (ms: number) =>
    new Promise<void>((resolve) => {
      if (closing) return resolve();
      const timer = setTimeout(() => {
        timers.delete(timer);
        resolve();
      }, ms);
      timers.set(timer, resolve);
    });

  // The throughput limit: a count per wall-clock second, as providers meter an account.
  let ratePerSecond = options.ratePerSecond;
  let rateSecond = 0;
  let rateCount = 0;
  const overRate = (): boolean => {
    if (ratePerSecond === undefined) return false;
    const second = Math.floor(Date.now() / 1000);
    if (second !== rateSecond) {
      rateSecond = second;
      rateCount = 0;
    }
    return ++rateCount > ratePerSecond;
  };

  const lookupFaults: SmsLookupFault[] = [];
  const twilioMessages: TwilioMessage[] = [];
  const twilioIdempotent = options.twilioIdempotency === 'honour';

  const takeFault = (kind: 'send' | 'lookup'): SmsFault | SmsLookupFault | undefined => {
    const queued = kind === 'send' ? faults.shift() : lookupFaults.shift();
    if (queued || !random) return queued;
    const { faults: r, next } = random;
    const roll = (rate: number | undefined) => rate !== undefined && rate > 0 && next() < rate;
    if (kind === 'lookup') {
      if (roll(r.lookupHang)) return { hangMs: r.hangMs ?? 2000 };
      if (roll(r.lookup5xx)) return { status: next() < 0.5 ? 500 : 503 };
      return undefined;
    }
    if (roll(r.lostResponse)) return { lostResponse: true };
    if (roll(r.hang)) return { hangMs: r.hangMs ?? 2000 };
    if (roll(r.slowCreate)) return { hangMs: r.slowCreateMs ?? r.hangMs ?? 2000, perform: 'after' };
    if (roll(r.error429)) return { status: 429, retryAfterSeconds: 1 };
    if (roll(r.error5xx)) return { status: next() < 0.5 ? 500 : 503 };
    return undefined;
  };

  const reply = (res: FastifyReply, answer: Answer) => {
    if (answer.headers) res.headers(answer.headers);
    return res.code(answer.status).send(answer.body);
  };
  const drop = (res: FastifyReply) => {
    res.hijack();
    res.raw.destroy();
  };

  /** Records a send (once per idempotency key where the endpoint honours keys) and returns the provider's answer. */
  const accept = (provider: SmsProvider, to: string, text: string, key: string | undefined, build: (id: string) => Answer, from?: string) => {
    const honoursKey = provider === 'http' || twilioIdempotent;
    const storeKey = honoursKey && key ? `${provider}:${key}` : undefined;
    const previous = storeKey ? answered.get(storeKey) : undefined;
    if (previous) {
      counters.idempotentReplays++;
      return previous;
    }
    const now = Date.now();
    const providerMessageId = provider === 'twilio' ? newTwilioSid() : `msg_${randomBytes(12).toString('hex')}`;
    sends.push({ at: now, provider, to, ...(from ? { from } : {}), text, idempotencyKey: key, providerMessageId });
    if (provider === 'twilio') {
      twilioMessages.push({ sid: providerMessageId, to, from: from ?? '', body: text, createdAt: now, sentAt: now + (options.twilioSendDelayMs ?? 300) });
    }
    counters.sends++;
    const answer = build(providerMessageId);
    if (storeKey) answered.set(storeKey, answer);
    return answer;
  };

  /** Down mode and faults around the real handling, shared by both shapes and by Twilio lookups. */
  const handle = async (provider: SmsProvider, res: FastifyReply, perform: () => Answer, kind: 'send' | 'lookup' = 'send'): Promise<void> => {
    counters.requests++;
    if (kind === 'lookup') counters.lookups++;
    if (kind === 'send' && overRate()) {
      counters.rateLimited++;
      return void reply(res, errorFor(provider, 429, 'Too Many Requests: the account sends at most ' + ratePerSecond + ' messages per second', { 'retry-after': '1' }));
    }
    if (downUntil !== undefined && Date.now() < downUntil) {
      counters.faults++;
      counters.faultsByKind.down++;
      return void reply(res, errorFor(provider, 503, 'Service Unavailable'));
    }
    const fault = takeFault(kind);
    if (!fault) {
      const answer = perform();
      if (answer.status >= 400) counters.rejected++;
      return void reply(res, answer);
    }
    counters.faults++;
    if (kind === 'lookup') counters.lookupFaults++;
    if ('lostResponse' in fault) {
      counters.faultsByKind.lostResponse++;
      perform();
      return drop(res);
    }
    if ('hangMs' in fault) {
      const later = 'perform' in fault && fault.perform === 'after';
      if (later) counters.faultsByKind.slowCreate++;
      else counters.faultsByKind.hang++;
      let answer = ('perform' in fault && fault.perform === false) || later ? undefined : perform();
      await wait(fault.hangMs);
      if (later && !closing) answer = perform();
      if (fault.then === 'reply' && !closing) return void reply(res, (answer ??= perform()));
      return drop(res);
    }
    if (fault.status === 400) counters.faultsByKind.status400++;
    else if (fault.status === 429) counters.faultsByKind.status429++;
    else if (fault.status >= 500) counters.faultsByKind.status5xx++;
    const retryAfter = 'retryAfterSeconds' in fault ? fault.retryAfterSeconds : undefined;
    const headers = retryAfter !== undefined ? { 'retry-after': String(retryAfter) } : undefined;
    if (fault.status === 401) return void reply(res, provider === 'twilio' ? twilioError(401, 20003, 'Authenticate') : httpError(401, 'Unauthorized'));
    const message = fault.status === 400 ? 'Invalid destination' : fault.status === 429 ? 'Too Many Requests' : 'Internal Server Error';
    return void reply(res, errorFor(provider, fault.status, message, headers));
  };

  const app = Fastify({ logger: false, forceCloseConnections: true });
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) => {
    done(null, Object.fromEntries(new URLSearchParams(String(body))));
  });
  app.setErrorHandler((error: { statusCode?: number; message: string }, _req, res) => {
    const status = error.statusCode && error.statusCode < 500 ? error.statusCode : 500;
    return reply(res, httpError(status, status === 500 ? 'Internal error' : error.message));
  });

  // The generic provider: JSON {to, text, idempotencyKey} + Idempotency-Key header + optional bearer.
  app.post('/messages', (req: FastifyRequest, res) =>
    handle('http', res, () => {
      if (options.httpToken && req.headers.authorization !== `Bearer ${options.httpToken}`) {
        return httpError(401, 'Unauthorized');
      }
      const body = httpBody.safeParse(req.body);
      if (!body.success) return httpError(400, body.error.issues[0]?.message ?? 'Bad request');
      const header = req.headers['idempotency-key'];
      const headerKey = typeof header === 'string' ? header : undefined;
      if (headerKey && body.data.idempotencyKey && headerKey !== body.data.idempotencyKey) {
        return httpError(400, 'Idempotency-Key header and body disagree');
      }
      const key = headerKey ?? body.data.idempotencyKey;
      return accept('http', body.data.to, body.data.text, key, (id) => ({ status: 201, body: { id, status: 'accepted' } }));
    }),
  );

  const twilioContext: TwilioContext = {
    ...twilio,
    messages: twilioMessages,
    handle: (kind, res, perform) => handle('twilio', res, perform, kind),
    accept: (to, from, text, key, build) => accept('twilio', to, text, key, build, from),
  };
  registerTwilioRoutes(app, twilioContext);

  await app.listen({ host: '127.0.0.1', port: 0, backlog: 4096 });
  const address = app.server.address();
  if (!address || typeof address === 'string') throw new Error('sms sink: no TCP address');

  return {
    url: `http://127.0.0.1:${address.port}`,
    twilio,
    sends,
    distinctSendsTo: (phone) => sends.filter((s) => s.to === phone).length,
    sentTo: (phone) => sends.filter((s) => s.to === phone),
    injectFaults: (more) => void faults.push(...more),
    injectLookupFaults: (more) => void lookupFaults.push(...more),
    setRandomFaults,
    setRateLimit(perSecond) {
      ratePerSecond = perSecond;
    },
    down: (forMs) => {
      downUntil = forMs === undefined ? Number.POSITIVE_INFINITY : Date.now() + forMs;
    },
    up: () => {
      downUntil = undefined;
    },
    stats: () => structuredClone(counters),
    close: async () => {
      closing = true;
      for (const [timer, wake] of timers) {
        clearTimeout(timer);
        wake();
      }
      timers.clear();
      await app.close();
    },
  };
}
