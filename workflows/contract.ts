// The one definition of every name the guard shares with the outside: signals, queries, updates,
// search-attribute keys, inputs, outcomes, the workflow id. The client, the webhook and the worker
// import this module, never the workflow body. It must stay free of Node built-ins and I/O because
// the workflow bundle includes it.
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

export const DEFAULT_TASK_QUEUE = 'rbm-guard';
export const WORKFLOW_TYPE = 'rbmGuard';

/** Every guard's id: one per (agent, message), so registration and events meet whichever comes first. */
export function guardWorkflowId(agentId: string, messageId: string): string {
  return `rbm-guard/${normalizeAgentId(agentId)}/${messageId}`;
}

/** RBM writes agent ids both bare and as `<id>@rbm.goog`; a guard knows its agent by the bare id. */
export function normalizeAgentId(agentId: string): string {
  const trimmed = agentId.trim();
  return trimmed.toLowerCase().endsWith('@rbm.goog') ? trimmed.slice(0, -'@rbm.goog'.length) : trimmed;
}

/** The ids a guard can be tracked under; anything else could never meet a track (and Temporal refuses workflow ids over 1000 bytes). */
export const AGENT_ID = { pattern: /^[A-Za-z0-9._@-]+$/, maxLength: 128, rule: 'letters, digits and . _ @ - only' } as const;
export const MESSAGE_ID = { pattern: /^\S+$/, maxLength: 256, rule: 'must not contain spaces' } as const;

/** Why a text is not an agent id, or undefined when it is one (bare or `@rbm.goog`, not yet normalised). */
export function agentIdProblem(agentId: string): string | undefined {
  if (agentId.length === 0) return 'must not be empty';
  if (agentId.length > AGENT_ID.maxLength) return `at most ${AGENT_ID.maxLength} characters`;
  return AGENT_ID.pattern.test(agentId) ? undefined : AGENT_ID.rule;
}

/** Why a text is not an RBM message id, or undefined when it is one. */
export function messageIdProblem(messageId: string): string | undefined {
  if (messageId.length === 0) return 'must not be empty';
  if (messageId.length > MESSAGE_ID.maxLength) return `at most ${MESSAGE_ID.maxLength} characters`;
  return MESSAGE_ID.pattern.test(messageId) ? undefined : MESSAGE_ID.rule;
}

/** The agent and message of a guard id; undefined unless `id` is exactly what guardWorkflowId makes of valid ids. */
export function parseGuardWorkflowId(id: string): { agentId: string; messageId: string } | undefined {
  const match = /^rbm-guard\/([^/]+)\/(.+)$/s.exec(id);
  const agentId = match?.[1];
  const messageId = match?.[2];
  if (agentId === undefined || messageId === undefined) return undefined;
  if (agentIdProblem(agentId) !== undefined || messageIdProblem(messageId) !== undefined) return undefined;
  return guardWorkflowId(agentId, messageId) === id ? { agentId, messageId } : undefined;
}

/** Full ISO-8601 date-times with a zone only: "tomorrow" or a bare date is ambiguous for a deadline. */
/** The date-times every client accepts (exported to the generated contract): a zone is required. */
export const ISO_DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/i;
export function parseIsoDateTime(text: string): Date | undefined {
  if (!ISO_DATE_TIME.test(text)) return undefined;
  const at = new Date(text);
  return Number.isNaN(at.getTime()) ? undefined : at;
}

/** States a guard passes through. Terminal states are also outcomes. */
export const PENDING_STATES = [
  'AWAITING_TRACK', // started by an RBM event before the backend tracked the message
  'SENDING', // the guard sends the RBM message itself
  'AWAITING_DELIVERY',
  'REVOKING',
  'CONFIRMING_DELIVERY', // revoke said 404 (already delivered): wait the grace for the DELIVERED event
  'RECHECK', // revoke outcome unknown: wait the grace for a late DELIVERED, then revoke again
  'FALLBACK',
] as const;

export const OUTCOMES = [
  'DELIVERED',
  'DELIVERED_UNCONFIRMED', // revoke said 404 with nothing else to explain it, no DELIVERED within the grace, policy: no fallback
  'FALLBACK_SENT', // exactly one SMS is known to have been accepted
  'FALLBACK_FAILED', // no SMS went out: the provider refused or stayed down past the retry budget: alert on it
  'FALLBACK_MAYBE_TWICE', // an SMS was accepted, and an earlier attempt whose fate could not be established may have gone out too
  'FALLBACK_UNCONFIRMED', // an SMS attempt may have gone out, it could not be established, and the policy said not to resend
  'DOUBLE_DELIVERY', // DELIVERED arrived after an SMS was (or may have been) accepted: the platform's race, recorded
  'REVOKED', // revoked, and the message had no fallback
  'UNRESOLVED', // revoke rounds spent, outcome unknown, and the policy said not to fall back
  'CANCELLED',
  'REVOKE_ERROR', // RBM refused the revoke as a config error (400/401/403)
  'SEND_ERROR', // RBM refused the send as a config error (400/401/403)
  'ORPHANED', // an event arrived for a message that was never tracked
] as const;

/** Every state a guard can be in, pending first. */
export const ALL_STATES = [...PENDING_STATES, ...OUTCOMES] as const;

export type PendingState = (typeof PENDING_STATES)[number];
export type Outcome = (typeof OUTCOMES)[number];
export type GuardState = PendingState | Outcome;

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
  /** When RBM says the event happened (RFC 3339), if it said. */
  sendTime?: string;
}

export const MESSAGE_TRAFFIC_TYPES = [
  'AUTHENTICATION',
  'TRANSACTION',
  'PROMOTION',
  'SERVICEREQUEST',
  'ACKNOWLEDGEMENT',
] as const;
export type MessageTrafficType = (typeof MESSAGE_TRAFFIC_TYPES)[number];

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
}

/**
 * The decision rules a new guard runs (workflows/lifecycle.ts): 2 = the pessimistic rules. Every starter
 * (GuardClient, the webhook, other languages through the generated contract) sets it; a guard without
 * it started before they existed and replays with rules 1. Pinned in the input rather than behind
 * patched(): in SDK 1.24 patched() also upserts TemporalChangeVersion, a billable action on every guard.
 */
export const GUARD_RULES = 2;

/** Workflow input. A guard started by an early webhook event knows only the ids. */
export interface GuardInput {
  agentId: string;
  messageId: string;
  /** GUARD_RULES for every guard started today; absent only in guards started before the pessimistic rules. */
  rules?: typeof GUARD_RULES;
  message?: TrackedMessage;
  /** For a guard started by an event: how long to wait for the backend's track. */
  orphanAfterMs?: number;
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

/** Error types thrown by activities; the workflow's retry policies name the permanent ones. */
export const ERROR_TYPES = {
  rbmConfig: 'RbmConfigError', // 400/401/403: retrying cannot help
  rbmRetryable: 'RbmRetryableError', // 429/5xx/network/timeout
  rbmNoRcs: 'RbmNoRcsError', // send answered 404: the device has no RCS or the agent isn't launched there
  fallbackPermanent: 'FallbackPermanentError', // the provider refused the message itself (4xx): nothing was sent
  fallbackRetryable: 'FallbackRetryableError', // details: FallbackFailureDetails
  fallbackLookupFailed: 'FallbackLookupFailedError', // could not establish whether an earlier attempt went out
} as const;

/** What the activities do, as the workflow sees them (the workflow imports this type only). */
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
/** Its own id scheme, so the guard's REJECT_DUPLICATE still holds and one event makes one record. */
export function lateDeliveryWorkflowId(guardId: string, eventId: string): string {
  return `rbm-late/${guardId.replace(/^rbm-guard\//, '')}/${eventId}`;
}
/** Outcomes whose guard sent (or may have sent) an SMS: a DELIVERED after them is a double delivery. */
export const SMS_OUTCOMES: readonly Outcome[] = ['FALLBACK_SENT', 'FALLBACK_MAYBE_TWICE', 'FALLBACK_UNCONFIRMED'];
