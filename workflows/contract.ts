// The one definition of every name the guard shares with the outside: signals, queries, updates,
// search-attribute keys, inputs, outcomes, the workflow id. The client, the webhook and the worker
// import this module, never the workflow body. It must stay free of Node built-ins and I/O because
// the workflow bundle includes it.
import { defineQuery, defineSignal, defineUpdate, type Sinks } from '@temporalio/workflow';
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

// The pure names and rules (ids, date-times, states, traffic types) live in names.ts, free of imports.
export * from './names.ts';
import { OUTCOMES, type GuardState, type MessageTrafficType, type Outcome, type PendingState } from './names.ts';

/**
 * The pending states whose RbmState the guard writes (rules 2): the ones an operator acts on. Every
 * outcome is written too. A guard in any other pending state carries no RbmState until it leaves it.
 */
export const WRITTEN_PENDING_STATES: readonly PendingState[] = ['AWAITING_TRACK', 'RECHECK', 'CONFIRMING_DELIVERY'];

export function isOutcome(state: GuardState): state is Outcome {
  return (OUTCOMES as readonly string[]).includes(state);
}

/** RBM's own event types that change a guard. Each is a signal of the same name. */
export const GUARD_EVENT_TYPES = [
  'DELIVERED',
  'READ',
  'TTL_EXPIRATION_REVOKED',
  'TTL_EXPIRATION_REVOKE_FAILED',
] as const;
export type GuardEventType = (typeof GUARD_EVENT_TYPES)[number];

export function isGuardEventType(value: unknown): value is GuardEventType {
  return typeof value === 'string' && (GUARD_EVENT_TYPES as readonly string[]).includes(value);
}

export interface RbmEventSignal {
  /** RBM's eventId: duplicates of one event have one effect. */
  eventId: string;
  /** When RBM says the event happened (RFC 3339), if it said: shown in the timeline, never decided on. */
  sendTime?: string;
}


export const FALLBACK_CHANNELS = ['sms'] as const;
export type FallbackChannel = (typeof FALLBACK_CHANNELS)[number];

export const ON_UNKNOWN = ['fallback', 'no-fallback'] as const;
export type OnUnknown = (typeof ON_UNKNOWN)[number];

export interface GuardPolicy {
  /** How long to wait for a late DELIVERED after an ambiguous revoke or a 404. */
  graceMs: number;
  /** Revoke rounds (each with its own bounded retries) before the outcome counts as unknown. */
  maxRevokeRounds: number;
  /** Attempts per revoke round (429/5xx/network/timeout are retried with backoff). */
  revokeAttempts: number;
  /** Attempts for the fallback send before FALLBACK_FAILED. */
  fallbackAttempts: number;
  /** What to do when revoke rounds are spent and delivery is still unknown. */
  onUnknown: OnUnknown;
  /** How long the guard stays open after its decision to hear a DELIVERED (double delivery). */
  lingerMs: number;
}

/** A tracked message, as the client validated it. Times are absolute ISO-8601 strings. */
export interface TrackedMessage {
  agentId: string;
  messageId: string;
  /** E.164; lives only in encrypted payloads, never in search attributes or logs. */
  phone: string;
  staleAt: string;
  /** When the message was sent (the backend's sentAt, or when it was tracked); RBM keeps a message 15 days at most. */
  sentAt?: string;
  /**
   * The platform's own TTL (the RBM message's expireTime, or sentAt + its ttl), when one was set: RBM may
   * then revoke it first, so a 404 from the guard's DELETE proves nothing. Absent in guards from before it existed.
   */
  platformExpireAt?: string | null;
  trafficType: MessageTrafficType;
  fallback: { channel: FallbackChannel; text: string } | null;
  /** When set, the guard sends the RBM text message itself (same messageId on every retry). */
  send: { text: string } | null;
  policy: GuardPolicy;
  /** Temporal task priority, 1 (first) to 5 (names.ts, TRAFFIC_PRIORITY); absent in guards from before it. */
  priority?: number;
}

/**
 * The decision rules a new guard runs (workflows/lifecycle.ts): 3 = the pessimistic rules with a slow
 * SMS provider in mind (an SMS attempt's request may still become a message after we gave up). Every
 * starter (GuardClient, the webhook, other languages through the generated contract) sets it, and a
 * guard runs exactly the rules its input names: 1 (no `rules`: guards started before the pessimistic
 * rules), 2, 3 or 4; a number this worker does not know fails the workflow task loudly, so a newer guard
 * waits for a newer worker instead of running older rules (workflows/guard.ts, rulesOf). 4 = rules 3
 * shaped for a deadline wave: the revoke is a local activity (no task through the server; a 404 from
 * it proves nothing, since a worker crash runs it again), the SMS goes to its own paced task queue
 * (names.ts, smsTaskQueue) at the guard's priority. Pinned in the
 * input rather than behind patched(): in SDK 1.24 patched() upserts TemporalChangeVersion, a billable
 * action on every guard. docs/architecture.md says why.
 */
export const GUARD_RULES = 4;
/** Every rules version a worker runs; a guard's input names one (absent: 1). */
export const RULES_VERSIONS = [1, 2, 3, 4] as const;
export type RulesVersion = (typeof RULES_VERSIONS)[number];

/** What every starter sends today (the published contract): the current rules, always named. */
export type NewGuardInput = Omit<GuardInput, 'rules'> & { rules: typeof GUARD_RULES };

/** Workflow input. A guard started by an early webhook event knows only the ids. */
export interface GuardInput {
  agentId: string;
  messageId: string;
  /** The rules this guard runs: GUARD_RULES for every guard started today; absent only in guards started before the pessimistic rules (1). */
  rules?: RulesVersion;
  message?: TrackedMessage;
  /** For a guard started by an event: how long to wait for the backend's track. */
  orphanAfterMs?: number;
  /**
   * Started with a start delay until its deadline (GuardClient's deferStart): it has no deadline timer
   * (one billable action less); its first workflow task runs at the deadline, or at once when an RBM
   * event, a cancel or an extend reaches it. Its story still begins when it was started.
   */
  deferred?: boolean;
}

export interface TimelineEntry {
  at: string;
  state: GuardState;
  event: string;
  reason: string;
}

export interface GuardStatus {
  workflowId: string;
  agentId: string;
  messageId: string;
  state: GuardState;
  outcome: Outcome | null;
  staleAt: string | null;
  revokeRounds: number;
  timeline: TimelineEntry[];
}

export interface CancelRequest {
  reason?: string;
}
export interface ExtendRequest {
  staleAt: string;
}

export const trackSignal = defineSignal<[TrackedMessage]>('track');
export const eventSignals: Record<GuardEventType, ReturnType<typeof defineSignal<[RbmEventSignal]>>> = {
  DELIVERED: defineSignal<[RbmEventSignal]>('DELIVERED'),
  READ: defineSignal<[RbmEventSignal]>('READ'),
  TTL_EXPIRATION_REVOKED: defineSignal<[RbmEventSignal]>('TTL_EXPIRATION_REVOKED'),
  TTL_EXPIRATION_REVOKE_FAILED: defineSignal<[RbmEventSignal]>('TTL_EXPIRATION_REVOKE_FAILED'),
};
export const statusQuery = defineQuery<GuardStatus>('status');
export const cancelUpdate = defineUpdate<GuardStatus, [CancelRequest]>('cancel');
export const extendUpdate = defineUpdate<GuardStatus, [ExtendRequest]>('extend');

/** Search attributes: state, outcome, agent and deadline only — never a phone number or text. */
export const SA = {
  state: defineSearchAttributeKey('RbmState', SearchAttributeType.KEYWORD),
  outcome: defineSearchAttributeKey('RbmOutcome', SearchAttributeType.KEYWORD),
  agentId: defineSearchAttributeKey('RbmAgentId', SearchAttributeType.KEYWORD),
  staleAt: defineSearchAttributeKey('RbmStaleAt', SearchAttributeType.DATETIME),
} as const;
export const SEARCH_ATTRIBUTE_KEYS = Object.values(SA);

/** One attempt of any guard activity: a few RBM/SMS request timeouts; after a worker crash, the wait before a retry. */
export const ACTIVITY_ATTEMPT_TIMEOUT_MS = 30_000;
/**
 * Every request of an SMS attempt ends this long before the attempt's timeout (the activity enforces
 * it), so no request outlives its attempt and two attempts' requests never overlap.
 */
export const SMS_ATTEMPT_BUDGET_MS = ACTIVITY_ATTEMPT_TIMEOUT_MS - 5_000;
/**
 * Rules 3: how long a provider may still turn a request we gave up on into a message, and take to
 * list it. After an SMS attempt that may have gone out, the next attempt (whose lookup must see the
 * earlier message to be trusted) waits at least this long. An assumption about the provider: the
 * chaos run's slow provider finishes within it (dev/chaos), and a provider slower than this can
 * still send twice unrecorded.
 */
export const PROVIDER_SETTLE_MS = 15_000;

/** Error types thrown by activities; the workflow's retry policies name the permanent ones. */
export const ERROR_TYPES = {
  rbmConfig: 'RbmConfigError', // 400/401/403: retrying cannot help
  rbmRetryable: 'RbmRetryableError', // 429/5xx/network/timeout
  rbmNoRcs: 'RbmNoRcsError', // send answered 404: the device has no RCS or the agent isn't launched there
  fallbackPermanent: 'FallbackPermanentError', // the provider refused the message itself (4xx): nothing was sent
  fallbackRetryable: 'FallbackRetryableError', // details: FallbackFailureDetails
  fallbackLookupFailed: 'FallbackLookupFailedError', // could not establish whether an earlier attempt went out
} as const;

/** The permanent ones, per leg: the activities mark them non-retryable and the retry policies name them. */
export const NON_RETRYABLE_ERROR_TYPES = {
  rbm: [ERROR_TYPES.rbmConfig, ERROR_TYPES.rbmNoRcs],
  fallback: [ERROR_TYPES.fallbackPermanent],
} as const;

/** What the activities do, as the workflow sees them (the workflow imports this type only). */
/**
 * What a guard reports to its worker beside its history: the outcome metrics. A sink, not the
 * workflow's own metric meter, because a workflow task that fails after reaching the outcome (e.g.
 * UnhandledCommand: a signal landed as the guard completed) runs again and would count it twice;
 * the worker's sink counts each run's outcome once (worker/metric-sinks.ts).
 */
export interface GuardSinks extends Sinks {
  guardMetrics: {
    /** An outcome reached; `staleToFallbackMs` when an SMS was accepted after the deadline. */
    outcome(outcome: Outcome, staleToFallbackMs: number | null): void;
  };
}

export interface GuardActivities {
  sendRbmMessage(input: RbmSendInput): Promise<void>;
  /** Resolves REVOKED (200) or ALREADY_DELIVERED (404) with the attempt; throws a typed ApplicationFailure otherwise. */
  revoke(input: RbmMessageRef): Promise<RevokeAnswer>;
  /** One attempt of the fallback (the workflow drives the retries); resolves with the provider's id. */
  sendFallback(input: FallbackInput): Promise<FallbackReceipt>;
}

export interface RbmMessageRef {
  agentId: string;
  messageId: string;
  phone: string;
}
export interface RbmSendInput extends RbmMessageRef {
  text: string;
  trafficType: MessageTrafficType;
  /** RFC 3339: the platform's own TTL as a second line of defence. */
  expireTime?: string;
}
export type RevokeResult = 'REVOKED' | 'ALREADY_DELIVERED';
/** The revoke activity's answer with how it was reached: a 404 after an earlier attempt may be our own revoke. */
export interface RevokeAnswer {
  result: RevokeResult;
  /** The activity attempt that got this answer (1 = the first DELETE of this round). */
  attempt: number;
}
export interface FallbackInput {
  idempotencyKey: string;
  channel: FallbackChannel;
  phone: string;
  text: string;
  /**
   * Set when an earlier attempt may have gone out (its answer was lost): a provider without idempotency
   * keys (Twilio) must first look for an SMS sent to this phone since then, and send only if there is none.
   */
  lookupSince?: string | null;
}
export interface FallbackReceipt {
  provider: string;
  providerMessageId: string;
  /** True when the SMS was an earlier attempt's, found by the lookup, not sent by this attempt. */
  found?: boolean;
  /** With `found`: how many of our SMS the lookup found (two slow attempts can both have completed). */
  matches?: number;
}
/** Details every retryable fallback failure carries, so the workflow knows whether the SMS may have gone out. */
export interface FallbackFailureDetails {
  /** The request may have reached the provider (timeout, reset after writing, 5xx): never resend blindly. */
  maybeSent: boolean;
  retryAfterSeconds: number | null;
  status: number | null;
}

/** RBM keeps a message at most 15 days: no deadline or platform TTL may lie further from its send. */
export const MAX_MESSAGE_LIFETIME_MS = 15 * 24 * 60 * 60 * 1000;
/** The revoke activity's longest wait between attempts. */
export const MAX_REVOKE_BACKOFF_MS = 20_000;
/**
 * One full revoke round, whatever its retries: every attempt timing out and waiting the longest backoff.
 * A message the guard sends itself expires on the platform this long after staleAt, so the guard's own
 * DELETE always comes first and the platform's TTL is only the safety net.
 */
export function revokeRoundBudgetMs(policy: Pick<GuardPolicy, 'revokeAttempts'>): number {
  return policy.revokeAttempts * (ACTIVITY_ATTEMPT_TIMEOUT_MS + MAX_REVOKE_BACKOFF_MS);
}

/** Retry-After is honoured up to this: an OTP must not sit in REVOKING or FALLBACK for an hour on one header. */
export const MAX_RETRY_AFTER_MS = 20_000;

/** A DELIVERED that reached a closed guard whose outcome sent an SMS: one small record workflow per event. */
export const LATE_DELIVERY_WORKFLOW_TYPE = 'rbmLateDelivery';
export interface LateDeliveryInput {
  guardWorkflowId: string;
  agentId: string;
  messageId: string;
  eventType: GuardEventType;
  eventId: string;
  /** The closed guard's outcome (FALLBACK_SENT, FALLBACK_MAYBE_TWICE, FALLBACK_UNCONFIRMED). */
  guardOutcome: Outcome;
  receivedAt: string;
}
/** Outcomes whose guard sent (or may have sent) an SMS: a DELIVERED after them is a double delivery. */
export const SMS_OUTCOMES: readonly Outcome[] = ['FALLBACK_SENT', 'FALLBACK_MAYBE_TWICE', 'FALLBACK_UNCONFIRMED'];
