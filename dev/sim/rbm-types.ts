// The RBM simulator's public vocabulary: delivery plans, faults, options, the events it pushes, the
// ground truth it keeps, its statistics and its controls. Types only (and two event-type lists).

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
  /**
   * Partner accounts besides the default one, by name: each gets its own service-account key and
   * webhook client token, and owns its agents (agent id → its region). Only its key's tokens may act
   * for them (else 403), only on their region's host (else 404); their events are signed with its
   * token. Agents no partner owns belong to the default account.
   */
  partners?: Record<string, SimPartnerOptions>;
  push?: PushRetryOptions;
  random?: RandomFaults;
}

export type SimRegion = 'global' | 'us' | 'europe' | 'asia';

export interface SimPartnerOptions {
  agents: Record<string, SimRegion>;
  /** The partner's webhook client token. Default: random. */
  clientToken?: string;
}

/** One agentMessages request as the simulator answered it. */
export interface ApiRequestRecord {
  method: string;
  /** The regional host it reached (`regionalUrl`), or null: the plain base URL. */
  region: SimRegion | null;
  agentId: string | null;
  messageId: string | null;
  /** client_email of the key whose token authorised it; null: none did (401). */
  account: string | null;
  status: number;
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
  /**
   * The API with a `{region}` placeholder (RBM_API_BASE_URL): each region's host is the path prefix
   * `/{region}` here, so requests tell which host they reached (see requests()).
   */
  readonly regionalUrl: string;
  /** The token endpoint (RBM_TOKEN_URL). */
  readonly tokenUrl: string;
  readonly clientToken: string;
  readonly serviceAccountKey: ServiceAccountKey;
  /** Writes the key (a partner's if named) as JSON (mode 0600) and returns its path; removed at close when dir is omitted. */
  writeServiceAccountKeyFile(dir?: string, partner?: string): string;
  /** A partner's service-account key (options.partners). */
  partnerKey(partner: string): ServiceAccountKey;
  /** A partner's webhook client token (options.partners). */
  partnerClientToken(partner: string): string;
  /** Access tokens issued per service account (client_email). */
  tokenExchanges(): Record<string, number>;
  /** The latest agentMessages requests (up to 10,000): host reached, account, status. */
  requests(): ApiRequestRecord[];
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
