// One guard per sent RBM message. It waits for DELIVERED until staleAt; then it revokes, and only a
// confirmed revoke (or a grace without DELIVERED) leads to the fallback SMS. Every decision comes
// from lifecycle.ts; this file only waits, runs activities and feeds their results back in.
import {
  ActivityFailure,
  ApplicationFailure,
  condition,
  metricMeter,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import {
  ACTIVITY_ATTEMPT_TIMEOUT_MS,
  cancelUpdate,
  ERROR_TYPES,
  eventSignals,
  extendUpdate,
  GUARD_EVENT_TYPES,
  SA,
  statusQuery,
  trackSignal,
  type GuardActivities,
  type GuardInput,
  type GuardStatus,
  type TrackedMessage,
} from './contract.ts';
import {
  canCancel,
  canExtend,
  initialGuard,
  nextAction,
  outcomeOf,
  statusOf,
  step,
  type Guard,
  type LifecycleEvent,
} from './lifecycle.ts';

const nowIso = () => new Date().toISOString(); // deterministic inside a workflow

export async function rbmGuard(input: GuardInput): Promise<GuardStatus> {
  const workflowId = workflowInfo().workflowId;
  let guard: Guard = initialGuard(workflowId, input, nowIso());
  let version = 0; // bumps on every transition, so waits wake when anything changes

  const apply = (event: LifecycleEvent) => {
    const next = step(guard, event, nowIso());
    if (next !== guard) {
      guard = next;
      version += 1;
    }
  };

  setHandler(trackSignal, (message: TrackedMessage) => apply({ type: 'TRACKED', message }));
  for (const eventType of GUARD_EVENT_TYPES) {
    setHandler(eventSignals[eventType], ({ eventId }) => apply({ type: 'RBM_EVENT', eventType, eventId }));
  }
  setHandler(statusQuery, () => statusOf(guard));
  setHandler(
    cancelUpdate,
    ({ reason }) => {
      apply({ type: 'CANCEL', reason: reason ?? 'cancelled by the backend' });
      return statusOf(guard);
    },
    { validator: (_req) => throwIf(canCancel(guard)) },
  );
  setHandler(
    extendUpdate,
    ({ staleAt }) => {
      apply({ type: 'EXTEND', staleAt });
      return statusOf(guard);
    },
    { validator: (req) => throwIf(canExtend(guard, req?.staleAt, nowIso())) },
  );

  // Race and latency metrics, exported by the worker runtime's Prometheus endpoint (not on replay).
  const outcomes = metricMeter.createCounter('rbm_guard_outcomes', '1', 'guards reaching each outcome');
  const staleToFallback = metricMeter.createHistogram('rbm_guard_stale_to_fallback', 'int', 'ms', 'staleAt → SMS accepted');
  const revokeRounds = metricMeter.createCounter('rbm_guard_revoke_rounds', '1', 'revoke rounds started');

  // Search attributes and details are written when the state changes. A guard started by track()
  // already carries its starting attributes, so its first state needs no upsert.
  let published = input.message ? `${guard.state}|${guard.staleAt}` : '';
  let detailed = '';
  for (;;) {
    publish();
    const action = nextAction(guard, input, nowIso());
    switch (action.kind) {
      case 'wait-track':
        await waitForChange(action.ms, 'ORPHAN_WINDOW_ELAPSED', 'wait for track');
        break;
      case 'wait-stale':
        await waitForChange(Date.parse(action.until) - Date.now(), 'STALE', 'staleAt');
        break;
      case 'wait-grace':
        await waitForChange(action.ms, 'GRACE_ELAPSED', 'grace for a late DELIVERED');
        break;
      case 'send':
        apply({ type: 'SEND_RESULT', ...(await send(message())) });
        break;
      case 'revoke':
        apply({ type: 'REVOKE_RESULT', ...(await revoke(message())) });
        break;
      case 'fallback':
        apply({ type: 'FALLBACK_RESULT', ...(await sendFallback(message(), workflowId)) });
        break;
      case 'linger': {
        // Stay open a while to hear a DELIVERED that would make this a double delivery.
        const decided = outcomeOf(guard);
        await condition(() => outcomeOf(guard) !== decided, action.ms, { summary: 'listen for a late DELIVERED' });
        if (outcomeOf(guard) !== decided) publish();
        return statusOf(guard);
      }
      case 'done':
        return statusOf(guard);
    }
  }

  async function waitForChange(ms: number, onTimeout: 'STALE' | 'GRACE_ELAPSED' | 'ORPHAN_WINDOW_ELAPSED', summary: string) {
    const seen = version;
    const changed = ms > 0 ? await condition(() => version !== seen, ms, { summary }) : false;
    if (!changed) apply({ type: onTimeout });
  }

  function message(): TrackedMessage {
    if (!guard.message) throw ApplicationFailure.nonRetryable('guard has no tracked message', 'GuardBug');
    return guard.message;
  }

  function publish() {
    const key = `${guard.state}|${guard.staleAt}`;
    if (key !== detailed) {
      detailed = key;
      setCurrentDetails(details());
    }
    if (key === published) return;
    const before = published.split('|')[0];
    published = key;
    const outcome = outcomeOf(guard);
    if (outcome && outcome !== before) {
      outcomes.add(1, { outcome });
      if (outcome === 'FALLBACK_SENT' && guard.staleAt) staleToFallback.record(Math.max(0, Date.now() - Date.parse(guard.staleAt)));
    }
    if (guard.state === 'REVOKING') revokeRounds.add(1);
    upsertSearchAttributes([
      { key: SA.state, value: guard.state },
      { key: SA.outcome, value: outcome },
      { key: SA.agentId, value: guard.agentId },
      { key: SA.staleAt, value: guard.staleAt ? new Date(guard.staleAt) : null },
    ]);
  }

  function details(): string {
    const last = guard.timeline[guard.timeline.length - 1];
    return [
      `**${guard.state}**${outcomeOf(guard) ? ' (outcome)' : ''}`,
      `deadline: ${guard.staleAt ?? 'not tracked yet'}`,
      `revoke rounds: ${guard.revokeRounds}`,
      last ? `last: ${last.event} — ${last.reason}` : '',
    ].join('\n\n');
  }
}

function throwIf(error: string | null): void {
  if (error) throw new Error(error);
}

// ---- activity calls: each result is mapped to a lifecycle event; failures are classified here ----


function activities(message: TrackedMessage) {
  const { revokeAttempts, fallbackAttempts } = message.policy;
  const rbmRetry = { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '20s' };
  const rbm = proxyActivities<GuardActivities>({
    startToCloseTimeout: ACTIVITY_ATTEMPT_TIMEOUT_MS,
    retry: { ...rbmRetry, maximumAttempts: revokeAttempts, nonRetryableErrorTypes: [ERROR_TYPES.rbmConfig, ERROR_TYPES.rbmNoRcs] },
  });
  const sms = proxyActivities<GuardActivities>({
    startToCloseTimeout: ACTIVITY_ATTEMPT_TIMEOUT_MS,
    retry: {
      initialInterval: '1s',
      backoffCoefficient: 2,
      maximumInterval: '60s',
      maximumAttempts: fallbackAttempts,
      nonRetryableErrorTypes: [ERROR_TYPES.fallbackPermanent],
    },
  });
  return { rbm, sms };
}

function ref(m: TrackedMessage) {
  return { agentId: m.agentId, messageId: m.messageId, phone: m.phone };
}

function failureType(err: unknown): string | undefined {
  return err instanceof ActivityFailure && err.cause instanceof ApplicationFailure ? err.cause.type ?? undefined : undefined;
}

function failureDetail(err: unknown): string {
  const cause = err instanceof ActivityFailure ? err.cause : err;
  return cause instanceof Error ? cause.message : String(err);
}

async function send(m: TrackedMessage) {
  if (!m.send) return { result: 'SENT' as const };
  try {
    await activities(m).rbm.sendRbmMessage({ ...ref(m), text: m.send.text, trafficType: m.trafficType, expireTime: m.staleAt });
    return { result: 'SENT' as const };
  } catch (err) {
    const type = failureType(err);
    const result = type === ERROR_TYPES.rbmConfig ? 'CONFIG_ERROR' : type === ERROR_TYPES.rbmNoRcs ? 'NO_RCS' : 'AMBIGUOUS';
    return { result: result as 'CONFIG_ERROR' | 'NO_RCS' | 'AMBIGUOUS', detail: failureDetail(err) };
  }
}

async function revoke(m: TrackedMessage) {
  try {
    return { result: await activities(m).rbm.revoke(ref(m)) };
  } catch (err) {
    const result = failureType(err) === ERROR_TYPES.rbmConfig ? 'CONFIG_ERROR' : 'AMBIGUOUS';
    return { result: result as 'CONFIG_ERROR' | 'AMBIGUOUS', detail: failureDetail(err) };
  }
}

async function sendFallback(m: TrackedMessage, workflowId: string) {
  if (!m.fallback) return { result: 'FAILED' as const, detail: 'no fallback configured' };
  try {
    const receipt = await activities(m).sms.sendFallback({
      idempotencyKey: workflowId, // one logical message, one SMS, however often the activity retries
      channel: m.fallback.channel,
      phone: m.phone,
      text: m.fallback.text,
    });
    return { result: 'ACCEPTED' as const, detail: `${receipt.provider} accepted it as ${receipt.providerMessageId}` };
  } catch (err) {
    return { result: 'FAILED' as const, detail: failureDetail(err) };
  }
}
