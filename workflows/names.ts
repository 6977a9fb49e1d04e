// The contract's pure part: the guard's id and its grammars, the date-times, the states, outcomes
// and traffic types. No imports at all, so a command line's --help or a checker can load these
// without the Temporal SDK; workflows/contract.ts re-exports every name, import from there.

export const DEFAULT_TASK_QUEUE = 'rbm-guard';
export const WORKFLOW_TYPE = 'rbmGuard';

/**
 * Rules 4: the fallback SMS runs on its own activity task queue beside the guard's, so one rate set
 * there (the worker's maxTaskQueueActivitiesPerSecond, enforced by the server) paces every worker's
 * SMS together, and the guard's own tasks never wait behind a paced SMS.
 */
export function smsTaskQueue(taskQueue: string): string {
  return `${taskQueue}-sms`;
}

/**
 * Temporal task priority (1 first … 5 last; 3 when unset). A guard's workflow tasks and its SMS
 * carry its priority, so in a deadline wave OTPs are revoked and texted before promotions. A track
 * request may name its own (`priority`); otherwise its traffic type decides.
 */
export const PRIORITY = { min: 1, max: 5, default: 3 } as const;
export const TRAFFIC_PRIORITY: Readonly<Record<MessageTrafficType, number>> = {
  AUTHENTICATION: 1,
  TRANSACTION: 2,
  SERVICEREQUEST: 2,
  ACKNOWLEDGEMENT: 3,
  PROMOTION: 5,
};

/** Temporal refuses workflow ids over this many bytes (the server's limit.maxIDLength default). */
export const MAX_WORKFLOW_ID_BYTES = 1000;

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
// A message id is printed on operators' screens and becomes part of a workflow id: no spaces, no
// control or format characters (terminal escapes, direction overrides, zero-width), well-formed
// Unicode (no lone surrogate). The categories are named so Python, which has no \p{…}, checks them too.
export const MESSAGE_ID = {
  pattern: /^[^\p{Cc}\p{Cf}\p{Cs}\p{Z}]+$/u,
  refusedCategories: ['Cc', 'Cf', 'Cs', 'Zs', 'Zl', 'Zp'],
  maxLength: 256,
  rule: 'no spaces, control or format characters, and well-formed Unicode',
} as const;

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

/** A phone number: E.164, 7 to 15 digits. The clients, the activities and the simulators check this one. */
export const E164_PATTERN = /^\+[1-9]\d{6,14}$/;

/** The date-times every client accepts (exported to the generated contract): full ISO-8601 with a zone; "tomorrow" or a bare date is ambiguous for a deadline. */
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

/** RBM's traffic types (the agentMessages `messageTrafficType`). */
export const MESSAGE_TRAFFIC_TYPES = [
  'AUTHENTICATION',
  'TRANSACTION',
  'PROMOTION',
  'SERVICEREQUEST',
  'ACKNOWLEDGEMENT',
] as const;
export type MessageTrafficType = (typeof MESSAGE_TRAFFIC_TYPES)[number];
