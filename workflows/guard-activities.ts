// The guard's activity calls: each result, or failure, becomes a lifecycle event. What a failure means
// ("nothing happened" or "it may have happened") is lifecycle.ts's FAILURE_MEANS; this file applies it.
import { ActivityFailure, ApplicationFailure, proxyActivities, proxyLocalActivities, TimeoutFailure, workflowInfo } from '@temporalio/workflow';
import {
  ACTIVITY_ATTEMPT_TIMEOUT_MS,
  ERROR_TYPES,
  MAX_REVOKE_BACKOFF_MS,
  NON_RETRYABLE_ERROR_TYPES,
  type FallbackFailureDetails,
  type GuardActivities,
  type RevokeAnswer,
  type RevokeResult,
  type RulesVersion,
  type TrackedMessage,
  smsTaskQueue,
} from './contract.ts';
import { revokeFailureMeans, sendFailureMeans, smsFailureMeans, type FallbackOutcome, type RevokeOutcome, type SendOutcome } from './lifecycle.ts';

function rbmRetry(m: TrackedMessage) {
  return {
    initialInterval: '1s',
    backoffCoefficient: 2,
    maximumInterval: MAX_REVOKE_BACKOFF_MS,
    maximumAttempts: m.policy.revokeAttempts,
    nonRetryableErrorTypes: [...NON_RETRYABLE_ERROR_TYPES.rbm],
  };
}

function rbmActivities(m: TrackedMessage) {
  return proxyActivities<GuardActivities>({ startToCloseTimeout: ACTIVITY_ATTEMPT_TIMEOUT_MS, retry: rbmRetry(m) });
}

/**
 * Rules 4: the revoke runs in the workflow task that woke the guard (no activity task through the
 * server, and every local activity of one task is one billable action). A worker crash runs it again,
 * so its 404 proves nothing (guard-state.ts, why404ProvesNothing).
 */
function localRbmActivities(m: TrackedMessage) {
  return proxyLocalActivities<GuardActivities>({ startToCloseTimeout: ACTIVITY_ATTEMPT_TIMEOUT_MS, retry: rbmRetry(m) });
}

function ref(m: TrackedMessage) {
  return { agentId: m.agentId, messageId: m.messageId, phone: m.phone };
}

/** The activity's own failure: an activity's comes wrapped in ActivityFailure, a local activity's may come bare. */
function applicationFailure(err: unknown): ApplicationFailure | undefined {
  const cause = err instanceof ActivityFailure ? err.cause : err;
  return cause instanceof ApplicationFailure ? cause : undefined;
}

function failureType(err: unknown): string | undefined {
  return applicationFailure(err)?.type ?? undefined;
}

function failureDetail(err: unknown): string {
  const cause = err instanceof ActivityFailure ? err.cause : err;
  return cause instanceof Error ? cause.message : String(err);
}

/** Rules 1 sent the platform TTL at staleAt itself; rules 2 sends the one the client set (staleAt + one revoke round). */
export async function send(m: TrackedMessage, rules: RulesVersion): Promise<{ result: SendOutcome; detail?: string }> {
  if (!m.send) return { result: 'SENT' };
  const expireTime = rules === 1 ? m.staleAt : (m.platformExpireAt ?? undefined);
  try {
    await rbmActivities(m).sendRbmMessage({ ...ref(m), text: m.send.text, trafficType: m.trafficType, expireTime });
    return { result: 'SENT' };
  } catch (err) {
    return { result: sendFailureMeans(failureType(err)), detail: failureDetail(err) };
  }
}

export async function revoke(m: TrackedMessage, rules: RulesVersion): Promise<{ result: RevokeOutcome; attempt?: number; detail?: string }> {
  try {
    // Guards from before RevokeAnswer existed recorded a bare result.
    const activities = rules >= 4 ? localRbmActivities(m) : rbmActivities(m);
    const answer: RevokeAnswer | RevokeResult = await activities.revoke(ref(m));
    return typeof answer === 'string' ? { result: answer } : { result: answer.result, attempt: answer.attempt };
  } catch (err) {
    const attempt = details(err)?.attempt;
    const result = revokeFailureMeans(failureType(err));
    return { result, detail: failureDetail(err), ...(result === 'REFUSED' && typeof attempt === 'number' ? { attempt } : {}) };
  }
}

/** Rules 1: one activity, retried by the SDK with the same idempotency key until accepted or spent. */
export async function fallbackWithSdkRetries(m: TrackedMessage, workflowId: string): Promise<{ result: FallbackOutcome; detail?: string }> {
  if (!m.fallback) return { result: 'FAILED', detail: 'no fallback configured' };
  const sms = proxyActivities<GuardActivities>({
    startToCloseTimeout: ACTIVITY_ATTEMPT_TIMEOUT_MS,
    retry: {
      initialInterval: '1s',
      backoffCoefficient: 2,
      maximumInterval: '60s',
      maximumAttempts: m.policy.fallbackAttempts,
      nonRetryableErrorTypes: [...NON_RETRYABLE_ERROR_TYPES.fallback],
    },
  });
  try {
    const receipt = await sms.sendFallback({ idempotencyKey: workflowId, channel: m.fallback.channel, phone: m.phone, text: m.fallback.text });
    return { result: 'ACCEPTED', detail: `${receipt.provider} accepted it as ${receipt.providerMessageId}` };
  } catch (err) {
    return { result: 'FAILED', detail: failureDetail(err) };
  }
}

/**
 * Rules 2: one SMS attempt. The workflow drives the retries, so a DELIVERED between two attempts stops
 * the SMS, and an attempt whose answer was lost makes the next one look before it sends.
 */
export async function fallbackAttempt(
  m: TrackedMessage,
  workflowId: string,
  lookupSince: string | null,
  startedAt: string,
  rules: RulesVersion,
): Promise<{ result: FallbackOutcome; maybeSent?: boolean; retryAfterMs?: number; startedAt: string; detail?: string; matches?: number }> {
  if (!m.fallback) return { result: 'REFUSED', startedAt, detail: 'no fallback configured' };
  const sms = proxyActivities<GuardActivities>({
    startToCloseTimeout: ACTIVITY_ATTEMPT_TIMEOUT_MS,
    retry: { maximumAttempts: 1 },
    // Rules 4: the paced SMS queue, first by the guard's priority (also for a guard an event started, whose workflow has none).
    ...(rules >= 4 ? { taskQueue: smsTaskQueue(workflowInfo().taskQueue), ...(m.priority ? { priority: { priorityKey: m.priority } } : {}) } : {}),
  });
  try {
    const receipt = await sms.sendFallback({
      idempotencyKey: workflowId, // one logical message, one SMS, however often it is attempted
      channel: m.fallback.channel,
      phone: m.phone,
      text: m.fallback.text,
      lookupSince,
    });
    return receipt.found
      ? { result: 'FOUND', startedAt, matches: receipt.matches ?? 1, detail: `${receipt.provider} already has it as ${receipt.providerMessageId}` }
      : { result: 'ACCEPTED', startedAt, detail: `${receipt.provider} accepted it as ${receipt.providerMessageId}` };
  } catch (err) {
    const type = failureType(err);
    const detail = failureDetail(err);
    const result = smsFailureMeans(type);
    if (result === 'REFUSED') return { result, startedAt, detail };
    if (result === 'LOOKUP_FAILED') return { result, startedAt, detail, ...retryAfter(err) };
    if (type === ERROR_TYPES.fallbackRetryable) return { result, startedAt, detail, maybeSent: details(err)?.maybeSent ?? true, ...retryAfter(err) };
    // A timeout (worker crash, hang) or anything unclassified: the request may have gone out.
    const timedOut = err instanceof ActivityFailure && err.cause instanceof TimeoutFailure;
    return { result, startedAt, maybeSent: true, detail: timedOut ? `attempt timed out: ${detail}` : detail };
  }
}

function details(err: unknown): (Partial<FallbackFailureDetails> & { attempt?: unknown }) | undefined {
  const first = applicationFailure(err)?.details?.[0];
  return first && typeof first === 'object' ? (first as Partial<FallbackFailureDetails>) : undefined;
}

function retryAfter(err: unknown): { retryAfterMs?: number } {
  const s = details(err)?.retryAfterSeconds;
  return typeof s === 'number' && s > 0 ? { retryAfterMs: s * 1000 } : {};
}
