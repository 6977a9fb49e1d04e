// How every guard is started, whoever starts it (GuardClient.track, or the webhook's
// signal-with-start for an event that comes first): the same id-reuse policy and the same search
// attributes, so the guard looks the same in the UI and a closed guard is never reopened.
import type { Client } from '@temporalio/client';
import { WorkflowIdReusePolicy, type SearchAttributePair } from '@temporalio/common';
import { eventSignals, GUARD_RULES, guardWorkflowId, SA, WORKFLOW_TYPE, type GuardEventType, type GuardInput, type GuardState } from '../workflows/contract.ts';

export interface GuardStart {
  agentId: string;
  /**
   * RbmState at start, only for a state the guard itself keeps written (AWAITING_TRACK, from an event).
   * A tracked guard starts without one: the guard writes RbmState only for the states operators act on
   * and its outcome (workflows/guard.ts), and a value written here would go stale at its first step.
   */
  state?: GuardState;
  /** The deadline, when known at start (an event-started guard learns it from `track`). */
  staleAt?: Date | string;
  /** Temporal task priority (names.ts, PRIORITY), when known at start: the guard's workflow tasks go in that order. */
  priority?: number;
}

/** The start options shared by `workflow.start` and `workflow.signalWithStart`. */
export function guardStartOptions(start: GuardStart): {
  workflowIdReusePolicy: typeof WorkflowIdReusePolicy.REJECT_DUPLICATE;
  typedSearchAttributes: SearchAttributePair[];
  priority?: { priorityKey: number };
} {
  const typedSearchAttributes: SearchAttributePair[] = [{ key: SA.agentId, value: start.agentId }];
  if (start.state !== undefined) typedSearchAttributes.push({ key: SA.state, value: start.state });
  if (start.staleAt !== undefined) typedSearchAttributes.push({ key: SA.staleAt, value: new Date(start.staleAt) });
  return {
    // A closed guard is never reopened: a second start throws WorkflowExecutionAlreadyStartedError.
    workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
    typedSearchAttributes,
    ...(start.priority !== undefined ? { priority: { priorityKey: start.priority } } : {}),
  };
}

/**
 * Hands an RBM event to its message's guard by signal-with-start: an open guard gets the signal (a
 * deferred one is woken at once, where a plain signal would wait out its start delay), a message not
 * tracked yet gets a guard that waits `orphanAfterMs` for its track, and a closed guard is never
 * reopened (WorkflowExecutionAlreadyStartedError: the event is late).
 */
export async function signalGuardEvent(
  client: Client,
  taskQueue: string,
  event: { agentId: string; messageId: string; eventType: GuardEventType; signal: { eventId: string; sendTime?: string } },
  orphanAfterMs?: number,
): Promise<void> {
  const input: GuardInput = { agentId: event.agentId, messageId: event.messageId, rules: GUARD_RULES, ...(orphanAfterMs === undefined ? {} : { orphanAfterMs }) };
  await client.workflow.signalWithStart(WORKFLOW_TYPE, {
    workflowId: guardWorkflowId(event.agentId, event.messageId),
    taskQueue,
    args: [input],
    signal: eventSignals[event.eventType],
    signalArgs: [event.signal],
    ...guardStartOptions({ agentId: event.agentId, state: 'AWAITING_TRACK' }),
  });
}
