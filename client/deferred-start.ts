// Deferred starts: a guard that only waits for its deadline starts with a Temporal start delay until
// it instead of a deadline timer (one billable action less; GuardInput.deferred). The rules every
// starter follows, in TypeScript here and (through the contract, `deferredStart`) in Python and Go.
import type { Client } from '@temporalio/client';
import { decodeFromPayloadsAtIndex } from '@temporalio/common/lib/internal-non-workflow/index.js';
import { optionalTsToMs } from '@temporalio/common/lib/time.js';
// A CommonJS package whose exports Node's ESM loader cannot list: default import, then destructure.
import proto from '@temporalio/proto';
import type { GuardInput, GuardStatus, TrackedMessage } from '../workflows/contract.ts';
import { initialGuard, statusOf } from '../workflows/lifecycle.ts';

const { EventType } = proto.temporal.api.enums.v1;

/** Below this, a deferred start is not worth it: the guard starts at once, with its timer. */
export const MIN_DEFER_MS = 1_000;

/** A guard that has run no workflow task holds fewer events than this (started, signals, a scheduled task). */
export const FIRST_PAGE = 32;

/**
 * The start delay of a guard for this message, or 0 (start now). A guard that sends the RBM message
 * itself must run now: only a guard that waits is deferred.
 */
export function startDelayMs(message: { staleAt: string; send?: TrackedMessage['send'] }, now: number): number {
  if (message.send) return 0;
  const delay = Date.parse(message.staleAt) - now;
  return delay >= MIN_DEFER_MS ? delay : 0;
}

/** What describe() tells of an open guard: started deferred (execution time ≠ start time) and short enough to have run nothing. */
export function mayNotHaveRun(info: proto.temporal.api.workflow.v1.IWorkflowExecutionInfo | null | undefined): boolean {
  const deferred = optionalTsToMs(info?.executionTime) !== optionalTsToMs(info?.startTime);
  return deferred && Number(info?.historyLength ?? 0) < FIRST_PAGE;
}

/**
 * The status of a deferred guard that has run no workflow task yet (in its start delay, or past it in
 * a deadline wave's backlog: no worker can answer a query), from its start input; undefined once it ran.
 */
export async function statusBeforeFirstRun(client: Client, workflowId: string): Promise<GuardStatus | undefined> {
  const { history } = await client.workflowService.getWorkflowExecutionHistory({ namespace: client.options.namespace, execution: { workflowId }, maximumPageSize: FIRST_PAGE });
  const events = history?.events ?? [];
  if (events.some((e) => e.eventType === EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED)) return undefined;
  const startedAt = optionalTsToMs(events[0]?.eventTime);
  const payloads = events[0]?.workflowExecutionStartedEventAttributes?.input?.payloads;
  if (startedAt === undefined || !payloads) return undefined;
  const input = await decodeFromPayloadsAtIndex<GuardInput>(client.options.loadedDataConverter, 0, payloads);
  return statusOf(initialGuard(workflowId, input, new Date(startedAt).toISOString(), input.rules ?? 1));
}

/** The placeholders of statusBeforeFirstRunTemplate(), each filled from the guard's start. */
export const STATUS_PLACEHOLDERS = {
  workflowId: 'the workflow id',
  agentId: 'GuardInput.agentId',
  messageId: 'GuardInput.messageId',
  staleAt: 'GuardInput.message.staleAt',
  startedAt: 'the WorkflowExecutionStarted event time, as toISOString() (UTC, milliseconds)',
} as const;

/**
 * statusBeforeFirstRun as a template for clients in other languages: lifecycle.ts's own answer for a
 * sample deferred guard, each value that came from the start replaced by its `{placeholder}`.
 */
export function statusBeforeFirstRunTemplate(): unknown {
  const sample = { agentId: '{agentId}', messageId: '{messageId}', staleAt: '2999-01-02T03:04:05.006Z', startedAt: '2998-01-02T03:04:05.006Z' };
  const message = { agentId: sample.agentId, messageId: sample.messageId, phone: '+14155550100', staleAt: sample.staleAt } as TrackedMessage;
  const status = statusOf(initialGuard('{workflowId}', { agentId: sample.agentId, messageId: sample.messageId, rules: 4, message, deferred: true } as GuardInput, sample.startedAt));
  return JSON.parse(JSON.stringify(status).replaceAll(sample.staleAt, '{staleAt}').replaceAll(sample.startedAt, '{startedAt}'));
}

/** Fills the template (what the Python and Go clients do; the contract test checks it against statusBeforeFirstRun's answer). */
export function fillTemplate(template: unknown, values: Record<keyof typeof STATUS_PLACEHOLDERS, string>): unknown {
  if (typeof template === 'string') return template.replace(/\{(\w+)\}/g, (whole, key: string) => (key in values ? values[key as keyof typeof values] : whole));
  if (Array.isArray(template)) return template.map((v) => fillTemplate(v, values));
  if (template && typeof template === 'object') return Object.fromEntries(Object.entries(template).map(([k, v]) => [k, fillTemplate(v, values)]));
  return template;
}
