// The RBM platform, simulated over real HTTP: the OAuth2 JWT-bearer token exchange, agentMessages
// create and revoke, a per-message delivery model, injectable faults, and signed Pub/Sub pushes to
// the webhook. Every answer rbm-protocol.md leaves open is a switch here, and the ground truth (what
// really happened to each message) is kept so invariants can be checked afterwards.
//
// Deliberately independent of the code under test: it defines its own constants (scope, audience)
// so a typo on the client side shows up as a failure instead of matching itself.
import { seededRandom } from '../random.ts';
import { createHmac, generateKeyPairSync, randomBytes, randomUUID, verify, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { z } from 'zod';

export const RBM_SCOPE = 'https://www.googleapis.com/auth/rcsbusinessmessaging';
/** google-auth-library signs every assertion for this audience, wherever the request really goes. */
export const GOOGLE_TOKEN_AUDIENCE = 'https://oauth2.googleapis.com/token';
const JWT_BEARER_GRANT = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
const MAX_TTL_MS = 15 * 24 * 60 * 60 * 1000;
/** Status codes a Pub/Sub push endpoint acknowledges with; anything else is redelivered. */
const PUBSUB_ACK_STATUSES = new Set([102, 200, 201, 202, 204]);

// ---------------------------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------------------------

/** What happens to one message on the platform side. */
export interface DeliveryPlan {
  /** When the phone takes the message, in ms after send; null = never (the phone stays offline). */
  deliverAfterMs: number | null;
  /**
   * The first revoke while the message is pending races the delivery: the revoke answers this
   * status and the phone gets the message anyway (a DELIVERED event follows).
   */
  raceRevoke?: 200 | 404;
  /** A message with expireTime/ttl that lapses undelivered: revoked by the platform (default) or not. */
  ttlOutcome?: 'revoked' | 'revoke-failed';
  /**
   * The platform's TTL revoke races the first DELETE: it lands just before it (however far expireTime
   * still is), so the DELETE answers 404 and TTL_EXPIRATION_REVOKED follows. Only for a pending message
   * with a TTL.
   */
  ttlRacesRevoke?: boolean;
  /** Push each event twice (same eventId, new Pub/Sub message). */
  duplicateEvent?: boolean;
  /** Push READ before DELIVERED. */
  readBeforeDelivered?: boolean;
  /** The message is delivered (or TTL-revoked) but no event is ever pushed. */
  noEvent?: boolean;
  /** Hold events this long before the first push. */
  eventDelayMs?: number;
  /** Also push READ this long after DELIVERED. */
  readAfterMs?: number;
}

/** A fault consumed by one call. `perform` = whether the operation really happens on the server. */
export type RbmFault =
  /** Answer this status in Google's error shape (429/5xx are the usual; 4xx for odd cases). */
  | { status: FaultStatus; retryAfterSeconds?: number; perform?: boolean }
  /** Hold the response (performed first unless perform: false), then drop the socket or reply. */
  | { hangMs: number; then?: 'drop' | 'reply'; perform?: boolean }
  /** Perform the operation, then destroy the socket without answering. */
  | { lostResponse: true };

export type FaultStatus = 400 | 401 | 403 | 404 | 408 | 409 | 429 | 500 | 502 | 503 | 504;

/** Random faults for a chaos run; rates are probabilities in [0, 1], drawn from a seeded PRNG. */
export interface RandomFaults {
  seed: number;
  revoke429or5xx?: number;
  /** A revoke that hangs past the client's timeout; performed or not, half each. */
  revokeHang?: number;
  revokeLostResponse?: number;
  create429or5xx?: number;
  createLostResponse?: number;
  /** Per message: the first revoke races the delivery (answer 200 or 404, half each). */
  raceDelivery?: number;
  /** Per message: the platform's TTL revoke lands just before the first DELETE (plan.ttlRacesRevoke). */
  ttlRacesRevoke?: number;
  /** Per message with a TTL: the platform's own TTL revoke fails (plan.ttlOutcome 'revoke-failed'). */
  ttlRevokeFailed?: number;
  duplicateEvent?: number;
  readBeforeDelivered?: number;
  noEvent?: number;
  eventDelay?: number;
  /** How long a random hang lasts (set it above the client's timeout). Default 2000. */
  hangMs?: number;
  /** Upper bound of a random event delay. Default 500. */
  eventDelayMaxMs?: number;
}

export interface PushRetryOptions {
  maxAttempts?: number;
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /** Per-attempt HTTP timeout. */
  timeoutMs?: number;
  /** Concurrent HTTP pushes (protects the webhook under thousands of messages). */
  concurrency?: number;
}

export interface RbmSimulatorOptions {
  /** Where events are pushed (settable later with setWebhookUrl). */
  webhookUrl?: string;
  /** The webhook client token used to sign pushes. Default: random. */
  clientToken?: string;
  /** When set, model-produced events go to this callback instead of HTTP (a rejection is retried). */
  onEvent?: (event: RbmEvent) => Promise<void>;
  /** Merged over { deliverAfterMs: 100 }. */
  defaultPlan?: Partial<DeliveryPlan>;
  /** A create with a messageId already used: 'ignore' = 200, nothing happens (documented); 'conflict' = 409. */
  reusedMessageId?: 'ignore' | 'conflict';
  /** Revoke of a messageId the platform never saw (undocumented). Default 404. */
  unknownRevoke?: 200 | 404;
  /**
   * Revoke of a message already gone — revoked by an earlier DELETE or expired by its TTL (undocumented).
   * Default 404, the answer that hurts the guard most (it reads like "delivered"); 200 = the kind,
   * idempotent DELETE.
   */
  revokeOfRevoked?: 200 | 404;
  /** Agents answered 403 PERMISSION_DENIED (see also setAgentDenied). */
  deniedAgents?: string[];
  /** Phones without RCS: create answers 404 (see also setNoRcs). */
  noRcsPhones?: string[];
  /** agentId as events carry it: as the backend sent it (default) or with '@rbm.goog'. */
  eventAgentId?: 'as-sent' | 'rbm.goog';
  tokenLifetimeSeconds?: number;
  push?: PushRetryOptions;
  random?: RandomFaults;
}

export const USER_EVENT_TYPES = ['DELIVERED', 'READ', 'IS_TYPING', 'SUBSCRIBE', 'UNSUBSCRIBE'] as const;
export type UserEventType = (typeof USER_EVENT_TYPES)[number];
export const SERVER_EVENT_TYPES = ['TTL_EXPIRATION_REVOKED', 'TTL_EXPIRATION_REVOKE_FAILED'] as const;
export type ServerEventType = (typeof SERVER_EVENT_TYPES)[number];

export interface UserEvent {
  senderPhoneNumber: string;
  eventType: UserEventType;
  eventId: string;
  messageId?: string;
  sendTime?: string;
  agentId: string;
}
export interface ServerEvent {
  phoneNumber: string;
  agentId: string;
  messageId: string;
  eventType: ServerEventType;
  eventId: string;
  sendTime: string;
}
export interface UserMessage {
  senderPhoneNumber: string;
  messageId: string;
  sendTime: string;
  agentId: string;
  text: string;
}
export type RbmEvent = UserEvent | ServerEvent | UserMessage;

export interface PubSubEnvelope {
  message: {
    data: string;
    attributes: Record<string, string>;
    messageId: string;
    publishTime: string;
    message_id?: string;
    publish_time?: string;
  };
  subscription: string;
}

export type PushAttemptStatus = number | 'error' | 'no-endpoint';
export interface PushRecord {
  event: RbmEvent;
  via: 'webhook' | 'callback';
  createdAt: number;
  attempts: { at: number; status: PushAttemptStatus }[];
  acknowledged: boolean;
  /** Retries spent without an acknowledgement (or the simulator closed). */
  abandoned: boolean;
}

export type RevokeAnswer = number | 'lost' | 'dropped';
export interface MessageTruth {
  agentId: string;
  messageId: string;
  phone: string;
  text?: string;
  /** 'api' = created through the simulator's API; 'registered' = sent elsewhere (registerSent). */
  origin: 'api' | 'registered';
  sentAt: number;
  expireAt?: number;
  plan: DeliveryPlan;
  deliveredAt?: number;
  /** A revoke that took effect on the server (by API, answered or not, or by TTL): never delivered. */
  revokedAt?: number;
  ttlRevoked: boolean;
  ttlRevokeFailed: boolean;
  revokeCalls: number;
  revokeAnswers: RevokeAnswer[];
  eventsPushed: PushRecord[];
}

export interface RbmSimulatorStats {
  tokenRequests: number;
  tokensIssued: number;
  tokensRejected: number;
  unauthenticated: number;
  creates: number;
  createsAccepted: number;
  revokes: number;
  revoked: number;
  revokeAlreadyDelivered: number;
  revokeUnknown: number;
  /** DELETEs of a message already revoked or expired (answered 404 unless revokeOfRevoked: 200). */
  revokeOfGone: number;
  /** TTL revokes that landed just before the first DELETE (plan.ttlRacesRevoke). */
  ttlRaces: number;
  faults: { status: number; hang: number; lostResponse: number };
  /** Revokes that raced a delivery (plan.raceRevoke): the phone got the message as the revoke landed. */
  raceRevokes: number;
  delivered: number;
  ttlRevoked: number;
  ttlRevokeFailed: number;
  events: number;
  pushAttempts: number;
  pushFailedAttempts: number;
  pushesAcknowledged: number;
  pushesAbandoned: number;
}

export interface ServiceAccountKey {
  type: 'service_account';
  project_id: string;
  private_key_id: string;
  private_key: string;
  client_email: string;
  client_id: string;
  auth_uri: string;
  token_uri: string;
  universe_domain: string;
}

export interface RegisterSentInput {
  agentId: string;
  messageId: string;
  phone: string;
  plan?: Partial<DeliveryPlan>;
  /** Epoch ms; default now. */
  sentAt?: number;
  expireTime?: string;
}

export interface PushOptions {
  /** Retry non-acknowledged pushes like Pub/Sub (default true). */
  retry?: boolean;
  signature?: 'valid' | 'invalid' | 'missing';
  clientToken?: string;
  attributes?: Record<string, string>;
}

export interface RbmSimulator {
  /** Base URL of the API (RBM_API_BASE_URL). */
  readonly url: string;
  /** The token endpoint (RBM_TOKEN_URL). */
  readonly tokenUrl: string;
  readonly clientToken: string;
  readonly serviceAccountKey: ServiceAccountKey;
  /** Writes the key as JSON (mode 0600) and returns its path; removed at close when dir is omitted. */
  writeServiceAccountKeyFile(dir?: string): string;
  setWebhookUrl(url: string | undefined): void;
  setOnEvent(onEvent: ((event: RbmEvent) => Promise<void>) | undefined): void;
  /** Sets a message's plan: before it is created (applied at creation) or after (re-scheduled). */
  plan(messageId: string, plan: Partial<DeliveryPlan>): void;
  registerSent(input: RegisterSentInput): void;
  /** Delivers a pending message now; false if it was not pending. */
  deliver(messageId: string): boolean;
  injectRevokeFaults(messageIdOrAll: string, faults: RbmFault[]): void;
  injectCreateFaults(messageIdOrAll: string, faults: RbmFault[]): void;
  injectTokenFaults(faults: RbmFault[]): void;
  setRandomFaults(random: RandomFaults | undefined): void;
  setAgentDenied(agentId: string, denied: boolean): void;
  setNoRcs(phone: string, noRcs: boolean): void;
  /** Invalidates every issued access token (the next API call gets 401). */
  expireTokens(): void;
  /** Pushes an event to the webhook as a signed Pub/Sub message; resolves when acked or given up. */
  pushEvent(event: RbmEvent, options?: PushOptions): Promise<PushRecord>;
  /** POSTs the URL-verification request; resolves with the webhook's answer. */
  verifyWebhook(options?: { secret?: string; clientToken?: string }): Promise<{ status: number; body: string }>;
  truth(messageId: string): MessageTruth | undefined;
  allTruth(): MessageTruth[];
  /** Every push so far, including those of unknown messages. */
  pushes(): PushRecord[];
  stats(): RbmSimulatorStats;
  /** Resolves once no push is pending or in flight (scheduled deliveries are not waited for). */
  settled(): Promise<void>;
  close(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// Builders (also used by webhook tests without a simulator)
// ---------------------------------------------------------------------------------------------

export function userEvent(input: {
  agentId: string;
  phone: string;
  eventType: UserEventType;
  messageId?: string;
  eventId?: string;
  /** null = leave sendTime out (the docs say it may be absent). */
  sendTime?: string | null;
}): UserEvent {
  const event: UserEvent = {
    senderPhoneNumber: input.phone,
    eventType: input.eventType,
    eventId: input.eventId ?? randomEventId(),
    agentId: input.agentId,
  };
  if (input.messageId !== undefined) event.messageId = input.messageId;
  if (input.sendTime !== null) event.sendTime = input.sendTime ?? new Date().toISOString();
  return event;
}

export function serverEvent(input: {
  agentId: string;
  phone: string;
  messageId: string;
  eventType: ServerEventType;
  eventId?: string;
  sendTime?: string;
}): ServerEvent {
  return {
    phoneNumber: input.phone,
    agentId: input.agentId,
    messageId: input.messageId,
    eventType: input.eventType,
    eventId: input.eventId ?? randomEventId(),
    sendTime: input.sendTime ?? new Date().toISOString(),
  };
}

export function userMessage(input: { agentId: string; phone: string; text: string; messageId?: string }): UserMessage {
  return {
    senderPhoneNumber: input.phone,
    // The phone's own id, not a UUID.
    messageId: input.messageId ?? `MxB${randomBytes(9).toString('base64url')}`,
    sendTime: new Date().toISOString(),
    agentId: input.agentId,
    text: input.text,
  };
}

/** base64(HMAC-SHA512(key = clientToken, message = the decoded data bytes)). */
export function signEventData(data: Buffer | string, clientToken: string): string {
  return createHmac('sha512', Buffer.from(clientToken, 'utf8')).update(data).digest('base64');
}

/** A Pub/Sub push body for an event, and its headers (X-Goog-Signature unless 'missing'). */
export function pubsubPush(
  event: object,
  options: PushOptions & { clientToken: string; subscription?: string; pubsubMessageId?: string },
): { body: PubSubEnvelope; headers: Record<string, string> } {
  const data = Buffer.from(JSON.stringify(event), 'utf8');
  const messageId = options.pubsubMessageId ?? String(randomBytes(6).readUIntBE(0, 6));
  const publishTime = new Date().toISOString();
  const body: PubSubEnvelope = {
    message: {
      data: data.toString('base64'),
      attributes: options.attributes ?? {},
      messageId,
      message_id: messageId,
      publishTime,
      publish_time: publishTime,
    },
    subscription: options.subscription ?? 'projects/rbm-sim/subscriptions/rbm-guard-push',
  };
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  const signature = options.signature ?? 'valid';
  if (signature === 'valid') headers['x-goog-signature'] = signEventData(data, options.clientToken);
  if (signature === 'invalid') headers['x-goog-signature'] = signEventData(data, `not-${options.clientToken}`);
  return { body, headers };
}

/** The URL-verification POST body RBM sends when a webhook is configured. */
export function verificationRequest(clientToken: string, secret: string): { clientToken: string; secret: string } {
  return { clientToken, secret };
}

const randomEventId = () => `MxSim${randomBytes(12).toString('base64url')}`;

// ---------------------------------------------------------------------------------------------
// Wire schemas
// ---------------------------------------------------------------------------------------------

const E164 = /^\+[1-9]\d{1,14}$/;
const TRAFFIC_TYPES = ['AUTHENTICATION', 'TRANSACTION', 'PROMOTION', 'SERVICEREQUEST', 'ACKNOWLEDGEMENT'] as const;

const createQuery = z.object({ messageId: z.string().min(1).max(512), agentId: z.string().min(1) });
const revokeQuery = z.object({ agentId: z.string().min(1) });
const phoneParams = z.object({ phone: z.string().regex(E164, 'phone must be E.164') });
const revokeParams = phoneParams.extend({ messageId: z.string().min(1) });

const agentMessageBody = z
  .strictObject({
    contentMessage: z
      .strictObject({
        text: z.string().min(1).max(3072).optional(),
        richCard: z.record(z.string(), z.unknown()).optional(),
        contentInfo: z.record(z.string(), z.unknown()).optional(),
        uploadedRbmFile: z.record(z.string(), z.unknown()).optional(),
        suggestions: z.array(z.unknown()).max(11).optional(),
      })
      .refine(
        (c) => [c.text, c.richCard, c.contentInfo, c.uploadedRbmFile].filter((v) => v !== undefined).length === 1,
        'contentMessage needs exactly one of text, richCard, contentInfo, uploadedRbmFile',
      ),
    messageTrafficType: z.enum(TRAFFIC_TYPES).optional(),
    expireTime: z.iso.datetime({ offset: true }).optional(),
    ttl: z.string().regex(/^\d+(\.\d{1,9})?s$/, 'ttl must be a duration like "3.5s"').optional(),
  })
  .refine((b) => !(b.expireTime && b.ttl), 'at most one of expireTime and ttl');

const jwtHeader = z.object({ alg: z.string(), kid: z.string().optional() });
const jwtClaims = z.object({
  iss: z.string(),
  aud: z.union([z.string(), z.array(z.string())]),
  scope: z.string().optional(),
  exp: z.number(),
  iat: z.number(),
});

const GOOGLE_STATUS: Record<number, string> = {
  400: 'INVALID_ARGUMENT',
  401: 'UNAUTHENTICATED',
  403: 'PERMISSION_DENIED',
  404: 'NOT_FOUND',
  408: 'DEADLINE_EXCEEDED',
  409: 'ALREADY_EXISTS',
  429: 'RESOURCE_EXHAUSTED',
  500: 'INTERNAL',
  502: 'UNAVAILABLE',
  503: 'UNAVAILABLE',
  504: 'DEADLINE_EXCEEDED',
};

const FAULT_MESSAGES: Partial<Record<number, string>> = {
  401: 'Request had invalid authentication credentials.',
  429: 'Quota exceeded.',
  500: 'Internal error encountered.',
  503: 'The service is currently unavailable.',
};

interface Outcome {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

function googleError(code: number, message: string, headers?: Record<string, string>): Outcome {
  return { status: code, body: { error: { code, message, status: GOOGLE_STATUS[code] ?? 'UNKNOWN' } }, headers };
}


// ---------------------------------------------------------------------------------------------
// The simulator
// ---------------------------------------------------------------------------------------------

interface SimMessage extends MessageTruth {
  state: 'pending' | 'delivered' | 'revoked';
  deliveryTimer?: NodeJS.Timeout;
  ttlTimer?: NodeJS.Timeout;
  createdBody?: unknown;
}

interface ServiceAccount {
  email: string;
  keyId: string;
  publicKey: KeyObject;
}

type FaultOp = 'create' | 'revoke' | 'token';

class Simulator implements RbmSimulator {
  private baseUrl = '';
  readonly clientToken: string;
  readonly serviceAccountKey: ServiceAccountKey;

  private readonly messages = new Map<string, SimMessage>();
  private readonly pendingPlans = new Map<string, Partial<DeliveryPlan>>();
  private readonly faultQueues = new Map<string, RbmFault[]>();
  private readonly accounts = new Map<string, ServiceAccount>();
  private readonly tokens = new Map<string, number>();
  private readonly deniedAgents: Set<string>;
  private readonly noRcsPhones: Set<string>;
  private readonly allPushes: PushRecord[] = [];
  /** Every live timer, with what to do if the simulator closes first. */
  private readonly timers = new Map<NodeJS.Timeout, () => void>();
  private readonly inflight = new Set<Promise<unknown>>();
  private readonly closeController = new AbortController();
  private readonly tempDirs: string[] = [];
  private readonly defaultPlan: DeliveryPlan;
  private readonly push: Required<PushRetryOptions>;
  private random: { faults: RandomFaults; next: () => number } | undefined;
  private webhookUrl: string | undefined;
  private onEvent: ((event: RbmEvent) => Promise<void>) | undefined;
  private pushSlots: number;
  private readonly pushQueue: (() => void)[] = [];
  private closing = false;
  private readonly counters: RbmSimulatorStats = {
    tokenRequests: 0,
    tokensIssued: 0,
    tokensRejected: 0,
    unauthenticated: 0,
    creates: 0,
    createsAccepted: 0,
    revokes: 0,
    revoked: 0,
    revokeAlreadyDelivered: 0,
    revokeUnknown: 0,
    revokeOfGone: 0,
    ttlRaces: 0,
    faults: { status: 0, hang: 0, lostResponse: 0 },
    raceRevokes: 0,
    delivered: 0,
    ttlRevoked: 0,
    ttlRevokeFailed: 0,
    events: 0,
    pushAttempts: 0,
    pushFailedAttempts: 0,
    pushesAcknowledged: 0,
    pushesAbandoned: 0,
  };

  constructor(
    private readonly app: FastifyInstance,
    private readonly options: RbmSimulatorOptions,
    key: { privateKeyPem: string; publicKey: KeyObject },
  ) {
    this.clientToken = options.clientToken ?? randomBytes(16).toString('hex');
    this.webhookUrl = options.webhookUrl;
    this.onEvent = options.onEvent;
    this.deniedAgents = new Set(options.deniedAgents);
    this.noRcsPhones = new Set(options.noRcsPhones);
    this.defaultPlan = { deliverAfterMs: 100, ...options.defaultPlan };
    this.push = {
      maxAttempts: options.push?.maxAttempts ?? 8,
      minBackoffMs: options.push?.minBackoffMs ?? 20,
      maxBackoffMs: options.push?.maxBackoffMs ?? 1000,
      timeoutMs: options.push?.timeoutMs ?? 5000,
      concurrency: options.push?.concurrency ?? 32,
    };
    this.pushSlots = this.push.concurrency;
    this.setRandomFaults(options.random);

    const keyId = randomBytes(20).toString('hex');
    const email = 'rbm-guard-sim@rbm-sim.iam.gserviceaccount.com';
    this.accounts.set(email, { email, keyId, publicKey: key.publicKey });
    this.serviceAccountKey = {
      type: 'service_account',
      project_id: 'rbm-sim',
      private_key_id: keyId,
      private_key: key.privateKeyPem,
      client_email: email,
      client_id: String(100000000000000000000n + BigInt(randomBytes(6).readUIntBE(0, 6))),
      auth_uri: 'https://accounts.google.com/o/oauth2/auth',
      token_uri: GOOGLE_TOKEN_AUDIENCE,
      universe_domain: 'googleapis.com',
    };
  }

  setBaseUrl(url: string): void {
    this.baseUrl = url;
  }

  get url(): string {
    return this.baseUrl;
  }

  get tokenUrl(): string {
    return `${this.baseUrl}/token`;
  }

  // --- HTTP routes -----------------------------------------------------------------------------

  routes(): void {
    const app = this.app;
    app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) => {
      done(null, Object.fromEntries(new URLSearchParams(String(body))));
    });
    // Every error, including fastify's own (bad JSON, body too large), in Google's shape.
    app.setErrorHandler((error: { statusCode?: number; message: string }, _req, reply) => {
      const code = error.statusCode && error.statusCode < 500 ? error.statusCode : 500;
      return this.send(reply, googleError(code, code === 500 ? 'Internal error encountered.' : error.message));
    });
    app.setNotFoundHandler((_req, reply) => this.send(reply, googleError(404, 'Not found.')));

    app.post('/token', (req, reply) => this.tokenRoute(req, reply));
    app.post('/v1/phones/:phone/agentMessages', (req, reply) => this.createRoute(req, reply));
    app.delete('/v1/phones/:phone/agentMessages/:messageId', (req, reply) => this.revokeRoute(req, reply));
  }

  private async tokenRoute(req: FastifyRequest, reply: FastifyReply): Promise<void> {
    this.counters.tokenRequests++;
    const form = z.object({ grant_type: z.string(), assertion: z.string() }).safeParse(req.body);
    if (!form.success || form.data.grant_type !== JWT_BEARER_GRANT) {
      this.counters.tokensRejected++;
      return this.send(reply, {
        status: 400,
        body: { error: 'unsupported_grant_type', error_description: 'Invalid grant_type or missing assertion.' },
      });
    }
    return this.respond('token', undefined, reply, () => {
      const problem = this.checkAssertion(form.data.assertion);
      if (problem) {
        this.counters.tokensRejected++;
        return { status: 400, body: { error: 'invalid_grant', error_description: problem } };
      }
      const token = `ya29.sim.${randomBytes(24).toString('base64url')}`;
      const lifetime = this.options.tokenLifetimeSeconds ?? 3599;
      this.tokens.set(token, Date.now() + lifetime * 1000);
      this.counters.tokensIssued++;
      return { status: 200, body: { access_token: token, expires_in: lifetime, token_type: 'Bearer' } };
    });
  }

  /** Returns why the assertion is refused, or undefined if it is good. */
  private checkAssertion(assertion: string): string | undefined {
    const [headerPart, claimsPart, signaturePart, ...rest] = assertion.split('.');
    if (!headerPart || !claimsPart || !signaturePart || rest.length) return 'Invalid JWT: malformed assertion.';
    const header = jwtHeader.safeParse(parseBase64Json(headerPart));
    const claims = jwtClaims.safeParse(parseBase64Json(claimsPart));
    if (!header.success || !claims.success) return 'Invalid JWT: unreadable header or claims.';
    if (header.data.alg !== 'RS256') return 'Invalid JWT: alg must be RS256.';
    const account = this.accounts.get(claims.data.iss);
    if (!account) return 'Invalid grant: account not found';
    if (header.data.kid && header.data.kid !== account.keyId) return 'Invalid JWT Signature.';
    const signed = Buffer.from(`${headerPart}.${claimsPart}`);
    if (!verify('RSA-SHA256', signed, account.publicKey, Buffer.from(signaturePart, 'base64url'))) {
      return 'Invalid JWT Signature.';
    }
    const audiences = [claims.data.aud].flat();
    if (!audiences.includes(GOOGLE_TOKEN_AUDIENCE)) return 'Invalid JWT: aud must be the token endpoint.';
    if (!(claims.data.scope ?? '').split(' ').includes(RBM_SCOPE)) return 'Invalid JWT: missing the RBM scope.';
    const now = Date.now() / 1000;
    const { exp, iat } = claims.data;
    if (exp <= now || iat > now + 300 || exp - iat > 3600) {
      return 'Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe.';
    }
    return undefined;
  }

  private authorized(req: FastifyRequest, reply: FastifyReply): boolean {
    const token = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '')?.[1];
    const expiresAt = token ? this.tokens.get(token) : undefined;
    if (expiresAt !== undefined && expiresAt > Date.now()) return true;
    this.counters.unauthenticated++;
    this.send(
      reply,
      googleError(
        401,
        'Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.',
      ),
    );
    return false;
  }

  private async createRoute(req: FastifyRequest, reply: FastifyReply): Promise<void> {
    this.counters.creates++;
    if (!this.authorized(req, reply)) return;
    const params = phoneParams.safeParse(req.params);
    const query = createQuery.safeParse(req.query);
    const body = agentMessageBody.safeParse(req.body);
    if (!params.success || !query.success || !body.success) {
      const issue = (params.error ?? query.error ?? body.error)?.issues[0]?.message ?? 'bad request';
      return this.send(reply, googleError(400, `Invalid argument: ${issue}`));
    }
    const { agentId, messageId } = query.data;
    const { phone } = params.data;
    if (this.deniedAgents.has(agentId)) return this.send(reply, googleError(403, 'The caller does not have permission'));

    const now = Date.now();
    let expireAt: number | undefined;
    if (body.data.expireTime) expireAt = Date.parse(body.data.expireTime);
    if (body.data.ttl) expireAt = now + parseFloat(body.data.ttl) * 1000;
    if (expireAt !== undefined && (expireAt <= now || expireAt - now > MAX_TTL_MS)) {
      return this.send(reply, googleError(400, 'Invalid argument: expiry must be in the future and at most 15 days away.'));
    }

    return this.respond('create', messageId, reply, () => {
      if (this.noRcsPhones.has(phone)) return googleError(404, 'Requested entity was not found.');
      const existing = this.messages.get(messageId);
      if (existing) {
        // Documented: a reused messageId is ignored. 'conflict' models providers that refuse it.
        if (this.options.reusedMessageId === 'conflict') return googleError(409, 'Requested entity already exists');
        return { status: 200, body: existing.createdBody ?? {} };
      }
      const response = {
        name: `phones/${phone}/agentMessages/${messageId}`,
        sendTime: new Date(now).toISOString(),
        contentMessage: body.data.contentMessage,
        ...(body.data.messageTrafficType ? { messageTrafficType: body.data.messageTrafficType } : {}),
        ...(expireAt !== undefined ? { expireTime: new Date(expireAt).toISOString() } : {}),
      };
      const message = this.addMessage({ agentId, messageId, phone, origin: 'api', sentAt: now, expireAt });
      message.text = body.data.contentMessage.text;
      message.createdBody = response;
      this.counters.createsAccepted++;
      return { status: 200, body: response };
    });
  }

  private async revokeRoute(req: FastifyRequest, reply: FastifyReply): Promise<void> {
    this.counters.revokes++;
    if (!this.authorized(req, reply)) return;
    const params = revokeParams.safeParse(req.params);
    const query = revokeQuery.safeParse(req.query);
    if (!params.success || !query.success) {
      const issue = (params.error ?? query.error)?.issues[0]?.message ?? 'bad request';
      return this.send(reply, googleError(400, `Invalid argument: ${issue}`));
    }
    const { messageId } = params.data;
    const { agentId } = query.data;
    const message = this.messages.get(messageId);
    const known = message && message.agentId === agentId ? message : undefined;
    if (known) known.revokeCalls++;
    if (this.deniedAgents.has(agentId)) {
      known?.revokeAnswers.push(403);
      return this.send(reply, googleError(403, 'The caller does not have permission'));
    }
    return this.respond(
      'revoke',
      messageId,
      reply,
      () => this.revoke(known),
      (answer) => known?.revokeAnswers.push(answer),
    );
  }

  /** The revoke itself, as the platform performs it. */
  private revoke(message: SimMessage | undefined): Outcome {
    const notFound = googleError(404, 'Requested entity was not found.');
    if (!message) {
      this.counters.revokeUnknown++;
      return this.options.unknownRevoke === 200 ? { status: 200, body: {} } : notFound;
    }
    // A TTL that lapsed a moment ago counts even if its timer has not fired yet; a TTL race lands now.
    if (message.state === 'pending' && message.expireAt !== undefined && message.expireAt <= Date.now()) this.expire(message);
    if (message.state === 'pending' && message.plan.ttlRacesRevoke && message.expireAt !== undefined) {
      this.counters.ttlRaces++;
      this.expire(message, 'revoked');
    }
    if (message.state === 'delivered') {
      this.counters.revokeAlreadyDelivered++;
      return notFound;
    }
    if (message.state === 'revoked') {
      this.counters.revokeOfGone++;
      return this.options.revokeOfRevoked === 200 ? { status: 200, body: {} } : notFound;
    }
    const race = message.plan.raceRevoke;
    if (race) {
      // The phone took the message while the revoke was on its way.
      this.counters.raceRevokes++;
      this.markDelivered(message);
      if (race === 404) this.counters.revokeAlreadyDelivered++;
      return race === 200 ? { status: 200, body: {} } : notFound;
    }
    this.markRevoked(message);
    this.counters.revoked++;
    return { status: 200, body: {} };
  }

  /** Applies the next fault (if any) around `perform`, and answers. */
  private async respond(
    op: FaultOp,
    messageId: string | undefined,
    reply: FastifyReply,
    perform: () => Outcome,
    record?: (answer: RevokeAnswer) => void,
  ): Promise<void> {
    const fault = this.takeFault(op, messageId);
    if (!fault) {
      const outcome = perform();
      record?.(outcome.status);
      return this.send(reply, outcome);
    }
    if ('lostResponse' in fault) {
      this.counters.faults.lostResponse++;
      perform();
      record?.('lost');
      return this.drop(reply);
    }
    if ('hangMs' in fault) {
      this.counters.faults.hang++;
      let outcome = fault.perform === false ? undefined : perform();
      await this.wait(fault.hangMs);
      if (fault.then === 'reply' && !this.closing) {
        // perform: false + reply = a slow server that acts after the client gave up.
        outcome ??= perform();
        record?.(outcome.status);
        return this.send(reply, outcome);
      }
      record?.('dropped');
      return this.drop(reply);
    }
    this.counters.faults.status++;
    if (fault.perform) perform();
    record?.(fault.status);
    const headers = fault.retryAfterSeconds !== undefined ? { 'retry-after': String(fault.retryAfterSeconds) } : undefined;
    return this.send(reply, googleError(fault.status, FAULT_MESSAGES[fault.status] ?? 'Injected fault.', headers));
  }

  private takeFault(op: FaultOp, messageId: string | undefined): RbmFault | undefined {
    for (const key of [messageId && `${op}:${messageId}`, `${op}:*`]) {
      const queue = key ? this.faultQueues.get(key) : undefined;
      const fault = queue?.shift();
      if (fault) return fault;
    }
    const random = this.random;
    if (!random || op === 'token') return undefined;
    const r = random.faults;
    const roll = (rate: number | undefined) => rate !== undefined && rate > 0 && random.next() < rate;
    const hangMs = r.hangMs ?? 2000;
    if (op === 'revoke') {
      if (roll(r.revokeLostResponse)) return { lostResponse: true };
      // A timed-out revoke in a chaos run may or may not have happened, as in production.
      if (roll(r.revokeHang)) return { hangMs, perform: random.next() < 0.5 };
      if (roll(r.revoke429or5xx)) return this.randomStatusFault(random.next);
    } else {
      if (roll(r.createLostResponse)) return { lostResponse: true };
      if (roll(r.create429or5xx)) return this.randomStatusFault(random.next);
    }
    return undefined;
  }

  private randomStatusFault(next: () => number): RbmFault {
    const pick = next();
    if (pick < 0.4) return { status: 429, retryAfterSeconds: 1 };
    return { status: pick < 0.7 ? 500 : 503 };
  }

  private send(reply: FastifyReply, outcome: Outcome): FastifyReply {
    if (outcome.headers) reply.headers(outcome.headers);
    return reply.code(outcome.status).send(outcome.body);
  }

  private drop(reply: FastifyReply): void {
    reply.hijack();
    reply.raw.destroy();
  }

  // --- Delivery model --------------------------------------------------------------------------

  private addMessage(input: {
    agentId: string;
    messageId: string;
    phone: string;
    origin: 'api' | 'registered';
    sentAt: number;
    expireAt?: number;
    plan?: Partial<DeliveryPlan>;
  }): SimMessage {
    const planned = this.pendingPlans.get(input.messageId);
    this.pendingPlans.delete(input.messageId);
    const message: SimMessage = {
      agentId: input.agentId,
      messageId: input.messageId,
      phone: input.phone,
      origin: input.origin,
      sentAt: input.sentAt,
      expireAt: input.expireAt,
      plan: { ...this.defaultPlan, ...this.randomPlan(), ...input.plan, ...planned },
      state: 'pending',
      ttlRevoked: false,
      ttlRevokeFailed: false,
      revokeCalls: 0,
      revokeAnswers: [],
      eventsPushed: [],
    };
    this.messages.set(input.messageId, message);
    this.schedule(message);
    return message;
  }

  /** Per-message faults drawn for a chaos run. */
  private randomPlan(): Partial<DeliveryPlan> {
    const random = this.random;
    if (!random) return {};
    const r = random.faults;
    const roll = (rate: number | undefined) => rate !== undefined && rate > 0 && random.next() < rate;
    const plan: Partial<DeliveryPlan> = {};
    if (roll(r.raceDelivery)) plan.raceRevoke = random.next() < 0.5 ? 200 : 404;
    if (roll(r.ttlRacesRevoke)) plan.ttlRacesRevoke = true;
    if (roll(r.ttlRevokeFailed)) plan.ttlOutcome = 'revoke-failed';
    if (roll(r.duplicateEvent)) plan.duplicateEvent = true;
    if (roll(r.readBeforeDelivered)) plan.readBeforeDelivered = true;
    if (roll(r.noEvent)) plan.noEvent = true;
    if (roll(r.eventDelay)) plan.eventDelayMs = Math.floor(random.next() * (r.eventDelayMaxMs ?? 500));
    return plan;
  }

  private schedule(message: SimMessage): void {
    this.cancel(message.deliveryTimer);
    this.cancel(message.ttlTimer);
    message.deliveryTimer = message.ttlTimer = undefined;
    if (message.state !== 'pending') return;
    const now = Date.now();
    if (message.plan.deliverAfterMs !== null) {
      const at = message.sentAt + message.plan.deliverAfterMs;
      message.deliveryTimer = this.after(at - now, () => this.markDelivered(message));
    }
    if (message.expireAt !== undefined && !message.ttlRevokeFailed) {
      message.ttlTimer = this.after(message.expireAt - now, () => this.expire(message));
    }
  }

  private markDelivered(message: SimMessage): void {
    if (message.state !== 'pending') return;
    message.state = 'delivered';
    message.deliveredAt = Date.now();
    this.cancel(message.deliveryTimer);
    this.cancel(message.ttlTimer);
    this.counters.delivered++;
    const plan = message.plan;
    const delivered = this.messageEvent(message, 'DELIVERED');
    const sequence: RbmEvent[] = plan.readBeforeDelivered ? [this.messageEvent(message, 'READ'), delivered] : [delivered];
    if (plan.duplicateEvent) sequence.push(delivered);
    this.emit(message, sequence, plan.readAfterMs);
  }

  private markRevoked(message: SimMessage): void {
    message.state = 'revoked';
    message.revokedAt = Date.now();
    this.cancel(message.deliveryTimer);
    this.cancel(message.ttlTimer);
  }

  /** The message's TTL lapsed while it was pending. */
  private expire(message: SimMessage, outcome = message.plan.ttlOutcome): void {
    if (message.state !== 'pending' || message.ttlRevokeFailed) return;
    if (outcome === 'revoke-failed') {
      message.ttlRevokeFailed = true;
      this.counters.ttlRevokeFailed++;
    } else {
      this.markRevoked(message);
      message.ttlRevoked = true;
      this.counters.ttlRevoked++;
    }
    const eventType = message.ttlRevoked ? 'TTL_EXPIRATION_REVOKED' : 'TTL_EXPIRATION_REVOKE_FAILED';
    const event = serverEvent({ ...message, agentId: this.eventAgentId(message.agentId), eventType });
    this.emit(message, message.plan.duplicateEvent ? [event, event] : [event]);
  }

  private messageEvent(message: SimMessage, eventType: 'DELIVERED' | 'READ'): UserEvent {
    return userEvent({ ...message, agentId: this.eventAgentId(message.agentId), eventType });
  }

  private eventAgentId(agentId: string): string {
    return this.options.eventAgentId === 'rbm.goog' ? `${agentId}@rbm.goog` : agentId;
  }

  /** Pushes events in order (each after the previous was acked or given up), honouring the plan. */
  private emit(message: SimMessage, events: RbmEvent[], readAfterMs?: number): void {
    if (message.plan.noEvent) return;
    const delayMs = message.plan.eventDelayMs ?? 0;
    void this.track(
      (async () => {
        if (delayMs > 0) await this.wait(delayMs);
        for (const event of events) {
          if (this.closing) return;
          await this.pushWithRetry(event, { retry: true }, message);
        }
        if (readAfterMs !== undefined && !this.closing) {
          await this.wait(readAfterMs);
          if (!this.closing) await this.pushWithRetry(this.messageEvent(message, 'READ'), { retry: true }, message);
        }
      })(),
    );
  }

  // --- Pushes ----------------------------------------------------------------------------------

  private async pushWithRetry(
    event: RbmEvent,
    options: PushOptions,
    message?: SimMessage,
    via: PushRecord['via'] = this.onEvent ? 'callback' : 'webhook',
  ): Promise<PushRecord> {
    const record: PushRecord = {
      event,
      via,
      createdAt: Date.now(),
      attempts: [],
      acknowledged: false,
      abandoned: false,
    };
    this.counters.events++;
    this.allPushes.push(record);
    message?.eventsPushed.push(record);
    // One Pub/Sub message: redeliveries keep its id.
    const push = pubsubPush(event, { ...options, clientToken: options.clientToken ?? this.clientToken });
    const maxAttempts = options.retry === false ? 1 : this.push.maxAttempts;
    for (let attempt = 1; !this.closing; attempt++) {
      const status = await this.attempt(via, event, push);
      record.attempts.push({ at: Date.now(), status });
      this.counters.pushAttempts++;
      if (typeof status === 'number' && PUBSUB_ACK_STATUSES.has(status)) {
        record.acknowledged = true;
        this.counters.pushesAcknowledged++;
        return record;
      }
      this.counters.pushFailedAttempts++;
      if (attempt >= maxAttempts) break;
      await this.wait(Math.min(this.push.maxBackoffMs, this.push.minBackoffMs * 2 ** (attempt - 1)));
    }
    record.abandoned = true;
    this.counters.pushesAbandoned++;
    return record;
  }

  private async attempt(
    via: PushRecord['via'],
    event: RbmEvent,
    push: ReturnType<typeof pubsubPush>,
  ): Promise<PushAttemptStatus> {
    if (via === 'callback') {
      const onEvent = this.onEvent;
      if (!onEvent) return 'no-endpoint';
      try {
        await onEvent(event);
        return 200;
      } catch {
        return 'error';
      }
    }
    const url = this.webhookUrl;
    if (!url) return 'no-endpoint';
    await this.acquirePushSlot();
    try {
      const response = await fetch(url, {
        method: 'POST',
        headers: push.headers,
        body: JSON.stringify(push.body),
        signal: AbortSignal.any([this.closeController.signal, AbortSignal.timeout(this.push.timeoutMs)]),
      });
      await response.arrayBuffer();
      return response.status;
    } catch {
      return 'error';
    } finally {
      this.releasePushSlot();
    }
  }

  private acquirePushSlot(): Promise<void> {
    if (this.pushSlots > 0) {
      this.pushSlots--;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.pushQueue.push(resolve));
  }

  private releasePushSlot(): void {
    const next = this.pushQueue.shift();
    if (next) next();
    else this.pushSlots++;
  }

  // --- Timers ----------------------------------------------------------------------------------

  private after(ms: number, fn: () => void): NodeJS.Timeout {
    const timer = setTimeout(
      () => {
        this.timers.delete(timer);
        fn();
      },
      Math.max(0, ms),
    );
    this.timers.set(timer, () => {});
    return timer;
  }

  private cancel(timer: NodeJS.Timeout | undefined): void {
    if (!timer) return;
    clearTimeout(timer);
    this.timers.delete(timer);
  }

  /** Sleeps, but wakes at once when the simulator closes. */
  private wait(ms: number): Promise<void> {
    if (this.closing) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        resolve();
      }, ms);
      this.timers.set(timer, resolve);
    });
  }

  private track<T>(promise: Promise<T>): Promise<T> {
    this.inflight.add(promise);
    void promise.finally(() => this.inflight.delete(promise)).catch(() => {});
    return promise;
  }

  // --- Public controls -------------------------------------------------------------------------

  writeServiceAccountKeyFile(dir?: string): string {
    let target = dir;
    if (!target) {
      target = mkdtempSync(join(tmpdir(), 'rbm-sim-key-'));
      this.tempDirs.push(target);
    }
    const path = join(target, `${this.serviceAccountKey.project_id}-${this.serviceAccountKey.private_key_id.slice(0, 12)}.json`);
    writeFileSync(path, JSON.stringify(this.serviceAccountKey, null, 2), { mode: 0o600 });
    return path;
  }

  setWebhookUrl(url: string | undefined): void {
    this.webhookUrl = url;
  }

  setOnEvent(onEvent: ((event: RbmEvent) => Promise<void>) | undefined): void {
    this.onEvent = onEvent;
  }

  plan(messageId: string, plan: Partial<DeliveryPlan>): void {
    const message = this.messages.get(messageId);
    if (!message) {
      this.pendingPlans.set(messageId, { ...this.pendingPlans.get(messageId), ...plan });
      return;
    }
    message.plan = { ...message.plan, ...plan };
    this.schedule(message);
  }

  registerSent(input: RegisterSentInput): void {
    if (!E164.test(input.phone)) throw new Error('registerSent: phone must be E.164');
    if (this.messages.has(input.messageId)) throw new Error(`registerSent: ${input.messageId} is already known`);
    const sentAt = input.sentAt ?? Date.now();
    const expireAt = input.expireTime ? Date.parse(input.expireTime) : undefined;
    this.addMessage({ ...input, origin: 'registered', sentAt, expireAt });
  }

  deliver(messageId: string): boolean {
    const message = this.messages.get(messageId);
    if (message?.state !== 'pending') return false;
    this.markDelivered(message);
    return true;
  }

  injectRevokeFaults(messageIdOrAll: string, faults: RbmFault[]): void {
    this.enqueue(`revoke:${messageIdOrAll}`, faults);
  }

  injectCreateFaults(messageIdOrAll: string, faults: RbmFault[]): void {
    this.enqueue(`create:${messageIdOrAll}`, faults);
  }

  injectTokenFaults(faults: RbmFault[]): void {
    this.enqueue('token:*', faults);
  }

  private enqueue(key: string, faults: RbmFault[]): void {
    this.faultQueues.set(key, [...(this.faultQueues.get(key) ?? []), ...faults]);
  }

  setRandomFaults(random: RandomFaults | undefined): void {
    this.random = random ? { faults: random, next: seededRandom(random.seed) } : undefined;
  }

  setAgentDenied(agentId: string, denied: boolean): void {
    if (denied) this.deniedAgents.add(agentId);
    else this.deniedAgents.delete(agentId);
  }

  setNoRcs(phone: string, noRcs: boolean): void {
    if (noRcs) this.noRcsPhones.add(phone);
    else this.noRcsPhones.delete(phone);
  }

  expireTokens(): void {
    this.tokens.clear();
  }

  pushEvent(event: RbmEvent, options: PushOptions = {}): Promise<PushRecord> {
    const messageId = 'messageId' in event ? event.messageId : undefined;
    const message = messageId ? this.messages.get(messageId) : undefined;
    // An explicit push always goes over HTTP, even when model events go to the callback.
    return this.track(this.pushWithRetry(event, options, message, 'webhook'));
  }

  async verifyWebhook(options: { secret?: string; clientToken?: string } = {}): Promise<{ status: number; body: string }> {
    if (!this.webhookUrl) throw new Error('verifyWebhook: no webhook URL set');
    const response = await fetch(this.webhookUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(verificationRequest(options.clientToken ?? this.clientToken, options.secret ?? randomUUID())),
      signal: AbortSignal.timeout(this.push.timeoutMs),
    });
    return { status: response.status, body: await response.text() };
  }

  truth(messageId: string): MessageTruth | undefined {
    const message = this.messages.get(messageId);
    return message ? toTruth(message) : undefined;
  }

  allTruth(): MessageTruth[] {
    return [...this.messages.values()].map(toTruth);
  }

  pushes(): PushRecord[] {
    return [...this.allPushes];
  }

  stats(): RbmSimulatorStats {
    return structuredClone(this.counters);
  }

  async settled(): Promise<void> {
    while (this.inflight.size > 0) await Promise.allSettled([...this.inflight]);
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    this.closeController.abort();
    for (const [timer, onClose] of this.timers) {
      clearTimeout(timer);
      onClose();
    }
    this.timers.clear();
    for (const release of this.pushQueue.splice(0)) release();
    await this.settled();
    await this.app.close();
    for (const dir of this.tempDirs) rmSync(dir, { recursive: true, force: true });
  }
}

function parseBase64Json(part: string): unknown {
  try {
    return JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
}

function toTruth(message: SimMessage): MessageTruth {
  return {
    agentId: message.agentId,
    messageId: message.messageId,
    phone: message.phone,
    text: message.text,
    origin: message.origin,
    sentAt: message.sentAt,
    expireAt: message.expireAt,
    plan: { ...message.plan },
    deliveredAt: message.deliveredAt,
    revokedAt: message.revokedAt,
    ttlRevoked: message.ttlRevoked,
    ttlRevokeFailed: message.ttlRevokeFailed,
    revokeCalls: message.revokeCalls,
    revokeAnswers: [...message.revokeAnswers],
    eventsPushed: [...message.eventsPushed],
  };
}

/** Starts the simulator on 127.0.0.1 with an OS-chosen port. */
export async function startRbmSimulator(options: RbmSimulatorOptions = {}): Promise<RbmSimulator> {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const privateKeyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  // forceCloseConnections: close() must not wait for hung requests or keep-alive sockets.
  const app = Fastify({ logger: false, forceCloseConnections: true, bodyLimit: 256 * 1024 });
  const simulator = new Simulator(app, options, { privateKeyPem, publicKey });
  simulator.routes();
  // A deep accept queue: a benchmark opens thousands of connections at once.
  await app.listen({ host: '127.0.0.1', port: 0, backlog: 4096 });
  const address = app.server.address();
  if (!address || typeof address === 'string') throw new Error('simulator: no TCP address');
  simulator.setBaseUrl(`http://127.0.0.1:${address.port}`);
  return simulator;
}
