// The SMS provider stand-in: one real HTTP server speaking both shapes the fallback providers use —
// a generic JSON endpoint (POST /messages) and Twilio's Messages API — with idempotency keys,
// injectable faults and an outage switch. Every accepted send is recorded, so a test can assert
// "sent exactly once" without trusting the client's own word.
import { seededRandom } from '../random.ts';
import { randomBytes } from 'node:crypto';
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify';
import { z } from 'zod';

export type SmsProvider = 'http' | 'twilio';

export interface SmsSend {
  at: number;
  provider: SmsProvider;
  to: string;
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
  /** Record the send (unless perform: false), hold the response, then drop the socket or reply. */
  | { hangMs: number; then?: 'drop' | 'reply'; perform?: boolean };

/** Random faults for a chaos run, as probabilities in [0, 1] from a seeded PRNG. */
export interface SmsRandomFaults {
  seed: number;
  error5xx?: number;
  error429?: number;
  lostResponse?: number;
  hang?: number;
  /** Default 2000: set it above the client's timeout. */
  hangMs?: number;
}

export interface SmsSinkOptions {
  /** Bearer token the generic endpoint requires (none = no check). */
  httpToken?: string;
  /** Twilio credentials to accept. Default: generated. */
  twilio?: { accountSid: string; authToken: string };
  random?: SmsRandomFaults;
}

export interface SmsSinkStats {
  requests: number;
  sends: number;
  idempotentReplays: number;
  faults: number;
  /** The same faults by kind (a chaos run reports what it injected). */
  faultsByKind: { down: number; status429: number; status5xx: number; status400: number; lostResponse: number; hang: number };
  rejected: number;
}

export interface SmsSink {
  /** Base URL: FALLBACK_HTTP_URL is `${url}/messages`, TWILIO_API_BASE_URL is `url`. */
  readonly url: string;
  readonly twilio: { accountSid: string; authToken: string };
  /** Every accepted send, in order (idempotent repeats are not recorded again). */
  readonly sends: readonly SmsSend[];
  distinctSendsTo(phone: string): number;
  injectFaults(faults: SmsFault[]): void;
  setRandomFaults(random: SmsRandomFaults | undefined): void;
  /** Every request answers 503 for `forMs` (or until up()). */
  down(forMs?: number): void;
  up(): void;
  stats(): SmsSinkStats;
  close(): Promise<void>;
}

const E164 = /^\+[1-9]\d{1,14}$/;
const TWILIO_MAX_BODY = 1600;

const httpBody = z.object({
  to: z.string().regex(E164, 'to must be E.164'),
  text: z.string().min(1).max(TWILIO_MAX_BODY),
  idempotencyKey: z.string().min(1).max(255).optional(),
});
const twilioForm = z.object({ To: z.string().optional(), From: z.string().optional(), Body: z.string().optional() });

interface Answer {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}


function twilioError(status: number, code: number, message: string, headers?: Record<string, string>): Answer {
  return { status, body: { code, message, more_info: `https://www.twilio.com/docs/errors/${code}`, status }, headers };
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
    faults: 0,
    faultsByKind: { down: 0, status429: 0, status5xx: 0, status400: 0, lostResponse: 0, hang: 0 },
    rejected: 0,
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

  const takeFault = (): SmsFault | undefined => {
    const queued = faults.shift();
    if (queued || !random) return queued;
    const { faults: r, next } = random;
    const roll = (rate: number | undefined) => rate !== undefined && rate > 0 && next() < rate;
    if (roll(r.lostResponse)) return { lostResponse: true };
    if (roll(r.hang)) return { hangMs: r.hangMs ?? 2000 };
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

  /** Records the send once per idempotency key and returns the provider's answer. */
  const accept = (provider: SmsProvider, to: string, text: string, key: string | undefined, build: (id: string) => Answer) => {
    const storeKey = key && `${provider}:${key}`;
    const previous = storeKey ? answered.get(storeKey) : undefined;
    if (previous) {
      counters.idempotentReplays++;
      return previous;
    }
    const providerMessageId = provider === 'twilio' ? `SM${randomBytes(16).toString('hex')}` : `msg_${randomBytes(12).toString('hex')}`;
    sends.push({ at: Date.now(), provider, to, text, idempotencyKey: key, providerMessageId });
    counters.sends++;
    const answer = build(providerMessageId);
    if (storeKey) answered.set(storeKey, answer);
    return answer;
  };

  /** Down mode and faults around the real handling, shared by both shapes. */
  const handle = async (provider: SmsProvider, res: FastifyReply, perform: () => Answer): Promise<void> => {
    counters.requests++;
    if (downUntil !== undefined && Date.now() < downUntil) {
      counters.faults++;
      counters.faultsByKind.down++;
      return void reply(res, errorFor(provider, 503, 'Service Unavailable'));
    }
    const fault = takeFault();
    if (!fault) {
      const answer = perform();
      if (answer.status >= 400) counters.rejected++;
      return void reply(res, answer);
    }
    counters.faults++;
    if ('lostResponse' in fault) {
      counters.faultsByKind.lostResponse++;
      perform();
      return drop(res);
    }
    if ('hangMs' in fault) {
      counters.faultsByKind.hang++;
      let answer = fault.perform === false ? undefined : perform();
      await wait(fault.hangMs);
      if (fault.then === 'reply' && !closing) return void reply(res, (answer ??= perform()));
      return drop(res);
    }
    if (fault.status === 400) counters.faultsByKind.status400++;
    else if (fault.status === 429) counters.faultsByKind.status429++;
    else counters.faultsByKind.status5xx++;
    const retryAfter = 'retryAfterSeconds' in fault ? fault.retryAfterSeconds : undefined;
    const headers = retryAfter !== undefined ? { 'retry-after': String(retryAfter) } : undefined;
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

  // Twilio's Messages API: form To/From/Body, HTTP Basic with the account SID and auth token.
  app.post('/2010-04-01/Accounts/:sid/Messages.json', (req: FastifyRequest, res) =>
    handle('twilio', res, () => {
      const { sid } = req.params as { sid: string };
      const expected = `Basic ${Buffer.from(`${twilio.accountSid}:${twilio.authToken}`).toString('base64')}`;
      if (req.headers.authorization !== expected || sid !== twilio.accountSid) {
        return twilioError(401, 20003, 'Authenticate');
      }
      const form = twilioForm.safeParse(req.body);
      const { To, From, Body } = form.success ? form.data : {};
      if (!To) return twilioError(400, 21604, "A 'To' phone number is required.");
      if (!From) return twilioError(400, 21603, "A 'From' phone number is required.");
      if (!Body) return twilioError(400, 21602, 'Message body is required.');
      if (!E164.test(To)) return twilioError(400, 21211, `The 'To' number is not a valid phone number.`);
      if (Body.length > TWILIO_MAX_BODY) return twilioError(400, 21617, 'The concatenated message body exceeds the 1600 character limit.');
      const header = req.headers['idempotency-key'];
      const key = typeof header === 'string' ? header : undefined;
      return accept('twilio', To, Body, key, (id) => {
        const now = new Date().toUTCString().replace('GMT', '+0000');
        const uri = `/2010-04-01/Accounts/${sid}/Messages/${id}`;
        return {
          status: 201,
          body: {
            account_sid: sid,
            api_version: '2010-04-01',
            body: Body,
            date_created: now,
            date_sent: null,
            date_updated: now,
            direction: 'outbound-api',
            error_code: null,
            error_message: null,
            from: From,
            messaging_service_sid: null,
            num_media: '0',
            num_segments: String(Math.ceil(Body.length / 153) || 1),
            price: null,
            price_unit: 'USD',
            sid: id,
            status: 'queued',
            subresource_uris: { media: `${uri}/Media.json` },
            to: To,
            uri: `${uri}.json`,
          },
        };
      });
    }),
  );

  await app.listen({ host: '127.0.0.1', port: 0, backlog: 4096 });
  const address = app.server.address();
  if (!address || typeof address === 'string') throw new Error('sms sink: no TCP address');

  return {
    url: `http://127.0.0.1:${address.port}`,
    twilio,
    sends,
    distinctSendsTo: (phone) => sends.filter((s) => s.to === phone).length,
    injectFaults: (more) => void faults.push(...more),
    setRandomFaults,
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
