// An event for a guard that already closed. A closed run cannot change, so a DELIVERED/READ after a
// guard whose outcome sent an SMS becomes a small record workflow (rbmLateDelivery) of its own: a
// double delivery operators find in the UI (RbmOutcome="DOUBLE_DELIVERY"), one per event, counted
// and logged with the guard id. Other late events are counted by the outcome they met.
import { createHash } from 'node:crypto';
import { WorkflowFailedError, type Client } from '@temporalio/client';
import { WorkflowExecutionAlreadyStartedError, WorkflowIdReusePolicy } from '@temporalio/common';
import type { FastifyBaseLogger } from 'fastify';
import {
  isOutcome,
  LATE_DELIVERY_WORKFLOW_TYPE,
  MAX_WORKFLOW_ID_BYTES,
  MESSAGE_ID,
  SA,
  SMS_OUTCOMES,
  type GuardEventType,
  type GuardState,
  type GuardStatus,
  type LateDeliveryInput,
  type Outcome,
  type RbmEventSignal,
} from '../workflows/contract.ts';
import type { WebhookMetrics } from '../service/webhook/metrics.ts';

export interface LateEvent {
  workflowId: string;
  agentId: string;
  messageId: string;
  eventType: GuardEventType;
  signal: RbmEventSignal;
}

export type LateAnswer =
  | { status: 'late'; workflowId: string; outcome: Outcome | null }
  | { status: 'recorded'; workflowId: string; outcome: Outcome; recordId: string; duplicate: boolean };

export interface LateContext {
  client: Client;
  taskQueue: string;
  metrics: WebhookMetrics;
  log: FastifyBaseLogger;
}

const DELIVERY_EVENTS: readonly GuardEventType[] = ['DELIVERED', 'READ'];

const LATE_RECORD = 'rbm-late/';

/** The start every late record of a guard shares: `rbm-late/<agent>/<message>/`. */
export function lateRecordPrefix(guardId: string): string {
  return `${LATE_RECORD}${guardId.replace(/^rbm-guard\//, '')}/`;
}

/** Whether an id has a late record's shape (`rbm-late/<agent>/<message>/<event>`, printable, within Temporal's limit). */
export function isLateRecordId(id: string): boolean {
  return id.startsWith(LATE_RECORD) && id.split('/').length >= 4 && MESSAGE_ID.pattern.test(id) && Buffer.byteLength(id) <= MAX_WORKFLOW_ID_BYTES;
}

/** Digest hex digits that stand for an event id too long or too odd to be part of an id (128 bits). */
const EVENT_DIGEST_HEX = 32;
/** The event id's own characters kept in front of its digest, so the record stays recognisable. */
const EVENT_ID_KEPT = 48;

/**
 * A late record's id: its own scheme, so the guard's REJECT_DUPLICATE still holds and one event makes
 * one record. The event id comes from outside and can be any length: when it would push the id past
 * Temporal's limit (or holds characters no id may), its first characters and a SHA-256 digest of the
 * whole stand for it, so every event still gets exactly one id Temporal accepts.
 */
export function lateDeliveryWorkflowId(guardId: string, eventId: string): string {
  const prefix = lateRecordPrefix(guardId);
  const whole = prefix + eventId;
  if (MESSAGE_ID.pattern.test(eventId) && Buffer.byteLength(whole) <= MAX_WORKFLOW_ID_BYTES) return whole;
  const digest = createHash('sha256').update(eventId, 'utf8').digest('hex').slice(0, EVENT_DIGEST_HEX);
  let budget = MAX_WORKFLOW_ID_BYTES - Buffer.byteLength(prefix) - EVENT_DIGEST_HEX - 1;
  let kept = '';
  for (const ch of [...eventId].slice(0, EVENT_ID_KEPT)) {
    if (!MESSAGE_ID.pattern.test(ch) || (budget -= Buffer.byteLength(ch)) < 0) break;
    kept += ch;
  }
  return `${prefix}${kept}~${digest}`;
}

/**
 * Handles one late event. Temporal errors (down, slow) propagate: the caller answers 503 and RBM
 * retries; a retry after the record was made finds it (same id) and is answered 200 again.
 */
export async function handleLateEvent(ctx: LateContext, event: LateEvent): Promise<LateAnswer> {
  const { metrics, log } = ctx;
  const ids = { eventType: event.eventType, eventId: event.signal.eventId, workflowId: event.workflowId };
  metrics.lateEvents.inc({ event_type: event.eventType });
  if (event.eventType === 'TTL_EXPIRATION_REVOKE_FAILED') {
    metrics.events.inc({ event_type: event.eventType, result: 'late' });
    log.info(ids, 'late event: the guard already closed');
    return { status: 'late', workflowId: event.workflowId, outcome: null };
  }

  const outcome = await closedOutcome(ctx.client, event.workflowId);
  metrics.lateByOutcome.inc({ event_type: event.eventType, outcome: outcome ?? 'unknown' });

  if (!DELIVERY_EVENTS.includes(event.eventType) || outcome === null || !SMS_OUTCOMES.includes(outcome)) {
    metrics.events.inc({ event_type: event.eventType, result: 'late' });
    if (event.eventType === 'TTL_EXPIRATION_REVOKED') {
      // The platform revoked a message after its guard decided: worth a look when no SMS went out.
      log.warn({ ...ids, outcome }, 'TTL_EXPIRATION_REVOKED after the guard closed');
    } else {
      log.info({ ...ids, outcome }, 'late event: the guard already closed');
    }
    return { status: 'late', workflowId: event.workflowId, outcome };
  }

  const recordId = lateDeliveryWorkflowId(event.workflowId, event.signal.eventId);
  const input: LateDeliveryInput = {
    guardWorkflowId: event.workflowId,
    agentId: event.agentId,
    messageId: event.messageId,
    eventType: event.eventType,
    eventId: event.signal.eventId,
    guardOutcome: outcome,
    receivedAt: new Date().toISOString(),
  };
  const doubleDelivery: GuardState = 'DOUBLE_DELIVERY';
  let duplicate = false;
  try {
    await ctx.client.workflow.start(LATE_DELIVERY_WORKFLOW_TYPE, {
      workflowId: recordId,
      taskQueue: ctx.taskQueue,
      args: [input],
      // One record per event: RBM's retry of this event (same eventId) finds it and makes no second one.
      workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
      typedSearchAttributes: [
        { key: SA.outcome, value: doubleDelivery },
        { key: SA.state, value: doubleDelivery },
        { key: SA.agentId, value: event.agentId },
      ],
      staticSummary: `Double delivery: ${event.eventType} reached ${event.workflowId} after it closed ${outcome}`,
    });
  } catch (err) {
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    duplicate = true;
  }
  const result = duplicate ? 'duplicate' : 'recorded';
  metrics.doubleDeliveries.inc({ event_type: event.eventType, outcome, result });
  metrics.events.inc({ event_type: event.eventType, result: 'recorded' });
  log.warn({ ...ids, outcome, recordId, duplicate }, 'double delivery: the message was delivered after its guard sent the SMS');
  return { status: 'recorded', workflowId: event.workflowId, outcome, recordId, duplicate };
}

/** The outcome a closed guard recorded: its RbmOutcome search attribute, else its result; null if neither says. */
async function closedOutcome(client: Client, workflowId: string): Promise<Outcome | null> {
  const handle = client.workflow.getHandle(workflowId);
  const description = await handle.describe();
  const attribute = description.typedSearchAttributes.get(SA.outcome);
  if (typeof attribute === 'string' && isOutcomeName(attribute)) return attribute;
  // Never wait on a run that is still open (the caller only comes here for a closed guard).
  if (description.status.name === 'RUNNING') return null;
  try {
    const status = (await handle.result()) as Partial<GuardStatus> | null;
    const outcome: unknown = status?.outcome;
    return typeof outcome === 'string' && isOutcomeName(outcome) ? outcome : null;
  } catch (err) {
    // Terminated, cancelled, failed or timed out: no outcome was recorded.
    if (err instanceof WorkflowFailedError) return null;
    throw err;
  }
}

function isOutcomeName(value: string): value is Outcome {
  return isOutcome(value as GuardState);
}
