// One guard per sent RBM message. It waits for DELIVERED until staleAt; then it revokes, and only a
// confirmed revoke (or a grace without DELIVERED, as the policy says) leads to the fallback SMS. Every
// decision comes from lifecycle.ts; this file only waits, runs activities and feeds their results back in.
import {
  ApplicationFailure,
  condition,
  metricMeter,
  proxySinks,
  setCurrentDetails,
  setDefaultSignalHandler,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { SearchAttributeUpdatePair } from '@temporalio/common';
import {
  cancelUpdate,
  eventSignals,
  extendUpdate,
  GUARD_EVENT_TYPES,
  RULES_VERSIONS,
  WRITTEN_PENDING_STATES,
  SA,
  statusQuery,
  trackSignal,
  type GuardInput,
  type GuardSinks,
  type RulesVersion,
  type GuardState,
  type GuardEventType,
  type GuardStatus,
  type TrackedMessage,
} from './contract.ts';
import { cancelRefusal, extendRefusal, initialGuard, nextAction, outcomeOf, statusOf, step, type Guard, type LifecycleEvent } from './lifecycle.ts';
import { fallbackAttempt, fallbackWithSdkRetries, revoke, send } from './guard-activities.ts';

const nowIso = () => new Date().toISOString(); // deterministic inside a workflow


/**
 * RbmState is written for WRITTEN_PENDING_STATES and every outcome (rules 2). The transient states
 * (SENDING, AWAITING_DELIVERY, REVOKING, FALLBACK) are written only when the attribute already holds
 * a value, so that it never names a state the guard has left.
 */
const WRITTEN_STATES = new Set<GuardState>(WRITTEN_PENDING_STATES);

export async function rbmGuard(input: GuardInput): Promise<GuardStatus> {
  // The rules are pinned in the input (contract.ts, GUARD_RULES): the same on every replay.
  const rules = rulesOf(input);
  const workflowId = workflowInfo().workflowId;
  // A deferred guard first runs at its deadline (or its first event): its story starts when it was started.
  const startedAt = input.deferred ? workflowInfo().startTime.toISOString() : nowIso();
  let guard: Guard = initialGuard(workflowId, input, startedAt, rules);
  let version = 0; // bumps on every transition, so waits wake when anything changes

  const apply = (event: LifecycleEvent) => {
    const next = step(guard, event, nowIso());
    if (next !== guard) {
      guard = next;
      version += 1;
    }
  };

  setHandler(trackSignal, (message: TrackedMessage) => apply({ type: 'TRACKED', message }));
  if (input.deferred) {
    // A deferred guard's first workflow task can hold several events at once. Handlers set name by
    // name would take those buffered signals name by name; the default handler takes them in the
    // order they arrived. (Only deferred guards: the others replay as they ran.)
    const eventTypeOf = new Map<string, GuardEventType>(GUARD_EVENT_TYPES.map((t) => [eventSignals[t].name, t]));
    setDefaultSignalHandler((name, ...args) => {
      const eventType = eventTypeOf.get(name);
      const signal = args[0] as { eventId: string; sendTime?: string } | undefined;
      if (eventType && signal) apply({ type: 'RBM_EVENT', eventType, eventId: signal.eventId, sendTime: signal.sendTime });
    });
  } else {
    for (const eventType of GUARD_EVENT_TYPES) {
      setHandler(eventSignals[eventType], ({ eventId, sendTime }) => apply({ type: 'RBM_EVENT', eventType, eventId, sendTime }));
    }
  }
  setHandler(statusQuery, () => statusOf(guard));
  setHandler(
    cancelUpdate,
    ({ reason }) => {
      apply({ type: 'CANCEL', reason: reason ?? 'cancelled by the backend' });
      return statusOf(guard);
    },
    { validator: (_req) => throwIf(cancelRefusal(guard)) },
  );
  setHandler(
    extendUpdate,
    ({ staleAt }) => {
      apply({ type: 'EXTEND', staleAt });
      return statusOf(guard);
    },
    { validator: (req) => throwIf(extendRefusal(guard, req?.staleAt, nowIso())) },
  );

  // Race and latency metrics, exported by the worker runtime's Prometheus endpoint (not on replay).
  // Outcomes go through the worker's sink, which counts each run once (contract.ts: GuardSinks).
  const { guardMetrics } = proxySinks<GuardSinks>();
  const revokeRounds = metricMeter.createCounter('rbm_guard_revoke_rounds', '1', 'revoke rounds started');

  const attributes = rules === 1 ? attributesV1() : attributesV2();
  for (;;) {
    attributes.publish();
    const action = nextAction(guard, input, nowIso());
    switch (action.kind) {
      case 'wait-track':
        await waitForChange(action.until ?? action.ms, 'ORPHAN_WINDOW_ELAPSED', 'wait for track');
        break;
      case 'wait-stale':
        await waitForChange(action.until, 'STALE', 'staleAt');
        break;
      case 'wait-grace':
        await waitForChange(action.until ?? action.ms, 'GRACE_ELAPSED', 'grace for a late DELIVERED');
        break;
      case 'wait-retry':
        await waitForChange(action.until, 'RETRY_DUE', 'wait before the next SMS attempt');
        break;
      case 'send':
        apply({ type: 'SEND_RESULT', ...(await send(message(), rules)) });
        break;
      case 'revoke':
        apply({ type: 'REVOKE_RESULT', ...(await revoke(message(), rules)) });
        break;
      case 'fallback':
        if (rules === 1) apply({ type: 'FALLBACK_RESULT', ...(await fallbackWithSdkRetries(message(), workflowId)) });
        else apply({ type: 'FALLBACK_RESULT', ...(await fallbackAttempt(message(), workflowId, action.lookupSince, nowIso(), rules)) });
        break;
      case 'linger': {
        // Stay open a while to hear an event that still changes the story (a late DELIVERED, a TTL revoke).
        const decided = guard.state;
        if (rules === 1) {
          await condition(() => outcomeOf(guard) !== decided, action.ms, { summary: 'listen for a late DELIVERED' });
          if (outcomeOf(guard) !== decided) attributes.publish();
          return statusOf(guard);
        }
        const ms = Date.parse(action.until ?? nowIso()) - Date.now();
        const changed = ms > 0 && (await condition(() => guard.state !== decided, ms, { summary: 'listen for a late event' }));
        if (!changed) return statusOf(guard);
        break; // e.g. a TTL revoke reopened it for the fallback
      }
      case 'done':
        return statusOf(guard);
    }
  }

  /**
   * Waits until a time (rules 2: an absolute, fixed end — duplicates and noted events postpone nothing)
   * or for ms (rules 1: re-armed in full after every change, as those guards ran).
   */
  async function waitForChange(until: string | number, onTimeout: 'STALE' | 'GRACE_ELAPSED' | 'ORPHAN_WINDOW_ELAPSED' | 'RETRY_DUE', summary: string) {
    if (rules === 1 || typeof until === 'number') {
      const ms = typeof until === 'number' ? until : Date.parse(until) - Date.now();
      const seen = version;
      const changed = ms > 0 ? await condition(() => version !== seen, ms, { summary }) : false;
      if (!changed) apply({ type: onTimeout });
      return;
    }
    const key = waitKey();
    const ms = Date.parse(until) - Date.now();
    const changed = ms > 0 ? await condition(() => waitKey() !== key, ms, { summary }) : false;
    if (!changed) apply({ type: onTimeout });
  }

  /** What a rules-2 wait wakes for: a new state or a moved deadline, never a noted event. */
  function waitKey(): string {
    return `${guard.state}|${guard.staleAt}|${guard.waitUntil}|${guard.sms.retryAt}`;
  }

  function message(): TrackedMessage {
    if (!guard.message) throw ApplicationFailure.nonRetryable('guard has no tracked message', 'GuardBug');
    return guard.message;
  }

  /** Counts an outcome once, when it is first reached. */
  function countOutcome(before: string | null) {
    const outcome = outcomeOf(guard);
    if (!outcome || outcome === before) return;
    const sent = (outcome === 'FALLBACK_SENT' || outcome === 'FALLBACK_MAYBE_TWICE') && guard.staleAt;
    guardMetrics.outcome(outcome, sent ? Math.max(0, Date.now() - Date.parse(guard.staleAt!)) : null);
  }

  function setDetails(key: { last: string }) {
    const now = `${guard.state}|${guard.staleAt}|${guard.sms.attempts}`;
    if (now === key.last) return;
    key.last = now;
    const last = guard.timeline[guard.timeline.length - 1];
    setCurrentDetails(
      [
        `**${guard.state}**${outcomeOf(guard) ? ' (outcome)' : ''}`,
        `deadline: ${guard.staleAt ?? 'not tracked yet'}`,
        `revoke rounds: ${guard.revokeRounds}${guard.sms.attempts ? ` · SMS attempts: ${guard.sms.attempts}` : ''}`,
        last ? `last: ${last.event} — ${last.reason}` : '',
      ].join('\n\n'),
    );
  }

  /** Rules 1: every state change upserts all four attributes (as the guards of that time ran). */
  function attributesV1() {
    // A guard started by track() already carries its starting attributes, so its first state needs no upsert.
    let published = input.message ? `${guard.state}|${guard.staleAt}` : '';
    const details = { last: '' };
    return {
      publish() {
        setDetails(details);
        const key = `${guard.state}|${guard.staleAt}`;
        if (key === published) return;
        const before = published.split('|')[0] ?? null;
        published = key;
        countOutcome(before);
        if (guard.state === 'REVOKING') revokeRounds.add(1);
        upsertSearchAttributes([
          { key: SA.state, value: guard.state },
          { key: SA.outcome, value: outcomeOf(guard) },
          { key: SA.agentId, value: guard.agentId },
          { key: SA.staleAt, value: guard.staleAt ? new Date(guard.staleAt) : null },
        ]);
      },
    };
  }

  /**
   * Rules 2: an upsert only when an operator-facing value changes — RbmState for WRITTEN_STATES and
   * outcomes (or to keep a written value true), RbmOutcome, RbmStaleAt when the deadline moves. The
   * happy paths pay one upsert each: the outcome.
   */
  function attributesV2() {
    const start = workflowInfo().typedSearchAttributes;
    let writtenState: string | null = start.get(SA.state) ?? null;
    let writtenStaleAt: string | null = start.get(SA.staleAt)?.toISOString() ?? null;
    let counted: string | null = null;
    let rounds = 0;
    const details = { last: '' };
    return {
      publish() {
        setDetails(details);
        countOutcome(counted);
        counted = outcomeOf(guard);
        for (; rounds < guard.revokeRounds; rounds++) revokeRounds.add(1);
        const updates: SearchAttributeUpdatePair[] = [];
        const outcome = outcomeOf(guard);
        const wanted = outcome || WRITTEN_STATES.has(guard.state) || writtenState !== null;
        if (wanted && writtenState !== guard.state) {
          updates.push({ key: SA.state, value: guard.state });
          if (outcome) updates.push({ key: SA.outcome, value: outcome });
          writtenState = guard.state;
        }
        if (guard.staleAt && Date.parse(guard.staleAt) !== (writtenStaleAt ? Date.parse(writtenStaleAt) : NaN)) {
          updates.push({ key: SA.staleAt, value: new Date(guard.staleAt) });
          writtenStaleAt = guard.staleAt;
        }
        if (updates.length) upsertSearchAttributes(updates);
      },
    };
  }
}

/**
 * The rules the input names, exactly: absent is 1 (guards from before the field), 1–3 as given. Any
 * other value is a guard from a newer starter: a plain Error fails the workflow task (not the guard),
 * so it stays open and retries until a worker that knows those rules takes it.
 */
function rulesOf(input: GuardInput): RulesVersion {
  if (input.rules === undefined) return 1;
  if ((RULES_VERSIONS as readonly unknown[]).includes(input.rules)) return input.rules;
  throw new Error(`guard rules ${String(input.rules)} are unknown to this worker (it runs ${RULES_VERSIONS.join(', ')}): deploy a worker with GUARD_RULES ${String(input.rules)}`);
}

function throwIf(error: string | null): void {
  if (error) throw new Error(error);
}
