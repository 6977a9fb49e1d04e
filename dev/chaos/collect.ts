// What the chaos run asks Temporal: the backend's track() with retries, how many guards are open, every
// guard's record (status, close time, outcome, timeline) and the late-delivery records.
import type { GuardStatus } from '../../workflows/contract.ts';
import { LATE_DELIVERY_WORKFLOW_TYPE, SA, WORKFLOW_TYPE, type Outcome } from '../../workflows/contract.ts';
import { ValidationError, type TrackInput } from '../../client/track-input.ts';
import type { LocalStack } from '../stack/local-stack.ts';
import type { GuardRecord } from './checker.ts';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, Math.max(0, ms)));

export async function trackWithRetry(
  stack: LocalStack,
  input: TrackInput,
  errors: Map<string, number> = new Map(),
): Promise<{ tracked: boolean; attempts: number; startedAt: number; trackedAt: number; error?: string }> {
  const startedAt = Date.now();
  let delay = 200;
  for (let attempts = 1; ; attempts++) {
    try {
      await stack.client.withDeadline(Date.now() + 10_000, () => stack.guards.track(input));
      return { tracked: true, attempts, startedAt, trackedAt: Date.now() };
    } catch (err) {
      if (err instanceof ValidationError) return { tracked: false, attempts, startedAt, trackedAt: Date.now(), error: err.message };
      const kind = err instanceof Error ? `${err.name}: ${err.message.replace(/\d+/g, 'N').slice(0, 80)}` : String(err);
      errors.set(kind, (errors.get(kind) ?? 0) + 1);
      await sleep(delay * (0.5 + Math.random()));
      delay = Math.min(2_000, delay * 2);
    }
  }
}

export async function countOpen(stack: LocalStack): Promise<number> {
  const { count } = await stack.client.withDeadline(Date.now() + 5_000, () =>
    stack.client.workflow.count(`WorkflowType = "${WORKFLOW_TYPE}" AND ExecutionStatus = "Running"`),
  );
  return count;
}

/** Every guard's execution status, close time and (when closed) its final status with the timeline. */
export async function collectGuards(stack: LocalStack, query = `WorkflowType = "${WORKFLOW_TYPE}"`): Promise<Map<string, GuardRecord>> {
  const guards = new Map<string, GuardRecord>();
  for await (const wf of stack.client.workflow.list({ query })) {
    const sa = wf.typedSearchAttributes;
    guards.set(wf.workflowId, {
      workflowId: wf.workflowId,
      executionStatus: wf.status.name,
      state: sa.get(SA.state) ?? null,
      outcome: (sa.get(SA.outcome) as Outcome | undefined) ?? null,
      closeTime: wf.closeTime ? wf.closeTime.getTime() : null,
      timeline: [],
    });
  }
  const closed = [...guards.values()].filter((g) => g.closeTime !== null);
  await mapLimit(closed, 16, async (g) => {
    try {
      const status = (await stack.client.workflow.getHandle(g.workflowId).result()) as GuardStatus;
      g.outcome = status.outcome;
      g.state = status.state;
      g.timeline = status.timeline;
    } catch (err) {
      g.outcome = null;
      g.state = `no result: ${err instanceof Error ? err.message : String(err)}`;
    }
  });
  return guards;
}

/** The ids of every late-delivery record workflow (a DELIVERED that reached a guard closed with an SMS outcome). */
export async function collectLateRecords(stack: LocalStack): Promise<Set<string>> {
  const ids = new Set<string>();
  for await (const wf of stack.client.workflow.list({ query: `WorkflowType = "${LATE_DELIVERY_WORKFLOW_TYPE}"` })) ids.add(wf.workflowId);
  return ids;
}

export function percentiles(values: number[]): { p50: number; p99: number; max: number } {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (p: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]! : 0);
  return { p50: at(0.5), p99: at(0.99), max: sorted.length ? sorted[sorted.length - 1]! : 0 };
}

export async function mapLimit<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}
