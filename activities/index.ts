// The activities the guard workflow calls. The clients classify failures; this layer turns them into
// Temporal ApplicationFailures (typed, retryable or not, honouring Retry-After) and logs without
// phone numbers or text.
import { activityInfo, cancellationSignal, log } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { MAX_RETRY_AFTER_MS, NON_RETRYABLE_ERROR_TYPES, type GuardActivities } from '../workflows/contract.ts';
import { FallbackError, type FallbackChannel } from './fallback.ts';
import { RbmError, type RbmClient } from './rbm.ts';

export interface ActivityDependencies {
  rbm: RbmClient;
  fallback: FallbackChannel;
}

/** An expireTime closer than this is dropped from a send (see sendRbmMessage). */
const MIN_EXPIRY_LEAD_MS = 1_000;

/** Failure types no retry can fix (contract.ts: the workflow's retry policies name the same). */
const NON_RETRYABLE = new Set<string>([...NON_RETRYABLE_ERROR_TYPES.rbm, ...NON_RETRYABLE_ERROR_TYPES.fallback]);

export function createActivities({ rbm, fallback }: ActivityDependencies): GuardActivities {
  return {
    async sendRbmMessage(input) {
      const ids = { agentId: input.agentId, messageId: input.messageId };
      // RBM refuses a create whose expireTime is not in the future (400, a config error). A send that
      // runs after the deadline — a guard that started late, or a retry after a lost answer — goes
      // without the platform TTL: the deadline has passed, so the guard revokes the message at once.
      const { expireTime, ...withoutTtl } = input;
      const request = expireTime && Date.parse(expireTime) - Date.now() < MIN_EXPIRY_LEAD_MS ? withoutTtl : input;
      try {
        await rbm.send(request, { signal: cancellationSignal() });
        log.info('RBM message sent', ids);
      } catch (error) {
        throw toFailure(error, 'RBM send failed', ids);
      }
    },

    async revoke(ref) {
      const ids = { agentId: ref.agentId, messageId: ref.messageId };
      try {
        const result = await rbm.revoke(ref, { signal: cancellationSignal() });
        const attempt = activityInfo().attempt;
        log.info('RBM revoke answered', { ...ids, result, attempt });
        // An answer after a retry: an earlier DELETE may have landed, so the workflow reads a 404 differently.
        return { result, attempt };
      } catch (error) {
        // The attempt rides along: a refusal after a DELETE that may have landed proves little (rules 3).
        throw toFailure(error, 'RBM revoke failed', ids, { attempt: activityInfo().attempt });
      }
    },

    async sendFallback(input) {
      const ids = { idempotencyKey: input.idempotencyKey, channel: input.channel, provider: fallback.name };
      try {
        const receipt = await fallback.send(input, { signal: cancellationSignal() });
        log.info(receipt.found ? 'Fallback found: an earlier attempt had gone out' : 'Fallback sent', { ...ids, providerMessageId: receipt.providerMessageId });
        return receipt;
      } catch (error) {
        throw toFailure(error, 'Fallback send failed', ids);
      }
    },
  };
}

/** A classified client error as an ApplicationFailure; anything else (cancellation, bugs) as is. */
export function toFailure(error: unknown, what: string, ids: Record<string, string>, extra: Record<string, unknown> = {}): unknown {
  if (!(error instanceof RbmError || error instanceof FallbackError)) return error;
  const nonRetryable = NON_RETRYABLE.has(error.type);
  log.warn(what, { ...ids, errorType: error.type, status: error.status, nonRetryable, error: error.message });
  return ApplicationFailure.create({
    type: error.type,
    message: error.message,
    nonRetryable,
    // A fallback failure says whether the SMS may have gone out (FallbackFailureDetails).
    details: [error instanceof FallbackError ? error.details : { status: error.status ?? null, retryAfterSeconds: error.retryAfterSeconds ?? null, ...extra }],
    // Retry-After is honoured, capped: one header must not hold an OTP for an hour.
    nextRetryDelay:
      !nonRetryable && error.retryAfterSeconds !== undefined ? Math.min(MAX_RETRY_AFTER_MS, Math.max(1, error.retryAfterSeconds) * 1000) : undefined,
  });
}
