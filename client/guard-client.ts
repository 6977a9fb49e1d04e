// The library backend services call when they send an RBM message: track it, ask how it went,
// cancel or move its deadline, list guards. Input is validated before anything reaches Temporal.
import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError, type Client, type WorkflowExecutionInfo, type WorkflowHandle } from '@temporalio/client';
// The SDK's own raw → info mapping, for listPage's one-page call (the iterator hides the page token).
import { executionInfoFromRaw } from '@temporalio/client/lib/helpers.js';
import { z } from 'zod';
import {
  AGENT_ID,
  ALL_STATES,
  cancelUpdate,
  extendUpdate,
  GUARD_RULES,
  isOutcome,
  WRITTEN_PENDING_STATES,
  guardWorkflowId,
  normalizeAgentId,
  OUTCOMES,
  parseGuardWorkflowId,
  parseIsoDateTime,
  SA,
  statusQuery,
  trackSignal,
  WORKFLOW_TYPE,
  LATE_DELIVERY_WORKFLOW_TYPE,
  type GuardInput,
  type NewGuardInput,
  type GuardState,
  type GuardStatus,
  type Outcome,
} from '../workflows/contract.ts';
import type { rbmGuard } from '../workflows/guard.ts';
import { mayNotHaveRun, startDelayMs, statusBeforeFirstRun } from './deferred-start.ts';
import { guardStartOptions } from './start-options.ts';
import { DifferentMessageError, heldMessage, messageDifferences } from './same-message.ts';
import { parseTrackInput, ValidationError, type TrackInput } from './track-input.ts';

export { DifferentMessageError } from './same-message.ts';

export interface TrackResult {
  workflowId: string;
  /** The guard's run: the same run however often the message is tracked while it is open. */
  runId: string | null;
  /** The guard for this message already ended; nothing new was started. */
  alreadyClosed: boolean;
  /**
   * This call started the guard, or gave its message to a guard an early RBM event started (false:
   * the guard had this message already). The HTTP API answers 201 for it, 200 otherwise.
   */
  created: boolean;
  /** The message's deadline as the guard got it (for a guard that had it already, as first tracked; an extend moves the guard's own, status shows it). */
  staleAt: string;
}

export interface GuardSummary {
  workflowId: string;
  state: GuardState | null;
  outcome: Outcome | null;
  agentId: string | null;
  staleAt: string | null;
  startTime: string;
  closeTime: string | null;
}

/** A list filter's rules (the HTTP API's list query uses its fields too). */
export const listFilterSchema = z
  .object({
    state: z.enum(ALL_STATES).optional(),
    outcome: z.enum(OUTCOMES).optional(),
    // The same agent id track() accepts, bare or `@rbm.goog`: guards know their agent by the bare id.
    agentId: z.string().trim().min(1, 'must not be empty').max(AGENT_ID.maxLength).regex(AGENT_ID.pattern, AGENT_ID.rule).transform(normalizeAgentId).optional(),
    startedBefore: z.date().optional(),
    open: z.boolean().optional(),
    limit: z.number().int().positive().max(100_000).default(100),
  })
  .strict();
export type ListFilter = z.input<typeof listFilterSchema>;

const workflowIdSchema = z.string().refine((id) => parseGuardWorkflowId(id) !== undefined, 'a guard id looks like rbm-guard/<agentId>/<messageId>');

export interface GuardClientOptions {
  /**
   * The agents the service has RBM credentials for (bare or `@rbm.goog` ids): track() refuses any
   * other before a guard starts. Unset: every agent. The service's HTTP API and CLI pass the agents
   * of RBM_AGENTS_FILE (config/agents.ts).
   */
  agents?: Iterable<string>;
  /**
   * Start each guard with a start delay until its deadline instead of a deadline timer (one billable
   * action less on every path; GuardInput.deferred). Its first workflow task then runs at the deadline,
   * or at once when an RBM event (the webhook's signal-with-start), a cancel or an extend reaches it;
   * `status` answers from its start input until then (deferred-start.ts). Default on; off starts every
   * guard at once, with a deadline timer.
   */
  deferStart?: boolean;
}

/** Why a guard for this agent cannot start (no RBM credentials for it), or undefined; `agents` unset: every agent. */
export function noCredentialsFor(agents: ReadonlySet<string> | undefined, agentId: string): string | undefined {
  return agents && !agents.has(normalizeAgentId(agentId)) ? `no RBM credentials for agent "${agentId}" (it is not in the agents file, RBM_AGENTS_FILE)` : undefined;
}

export class GuardClient {
  private readonly client: Client;
  private readonly taskQueue: string;
  private readonly agents: ReadonlySet<string> | undefined;
  private readonly deferStart: boolean;

  constructor(client: Client, taskQueue: string, options: GuardClientOptions = {}) {
    this.client = client;
    this.taskQueue = taskQueue;
    this.agents = options.agents ? new Set([...options.agents].map(normalizeAgentId)) : undefined;
    this.deferStart = options.deferStart ?? true;
  }

  /**
   * Starts the guard for a sent message, or finds the one already guarding it. Throws
   * DifferentMessageError when that guard holds another message under this id (same-message.ts).
   */
  async track(input: TrackInput): Promise<TrackResult> {
    const message = parseTrackInput(input);
    // A guard for an agent without credentials could neither revoke nor send: refuse it up front.
    const refusal = noCredentialsFor(this.agents, message.agentId);
    if (refusal) throw new ValidationError([{ field: 'agentId', message: refusal }]);
    const workflowId = guardWorkflowId(message.agentId, message.messageId);
    const delayMs = this.deferStart ? startDelayMs(message, Date.now()) : 0;
    const deferred = delayMs > 0;
    const guardInput: NewGuardInput = { agentId: message.agentId, messageId: message.messageId, rules: GUARD_RULES, message, ...(deferred ? { deferred } : {}) };
    const options = {
      workflowId,
      taskQueue: this.taskQueue,
      args: [guardInput] as [GuardInput],
      ...(deferred ? { startDelay: delayMs } : {}),
      ...guardStartOptions({ agentId: message.agentId, staleAt: message.staleAt, priority: message.priority }),
      staticSummary: `RBM ${message.trafficType.toLowerCase()} from ${message.agentId}, stale at ${message.staleAt}, fallback: ${message.fallback ? message.fallback.channel : 'none'}, priority ${message.priority}`,
    };
    try {
      const handle = await this.client.workflow.start<typeof rbmGuard>(WORKFLOW_TYPE, options);
      return { workflowId, runId: handle.firstExecutionRunId, alreadyClosed: false, created: true, staleAt: message.staleAt };
    } catch (err) {
      if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    }
    // The guard exists: tracked before, or started by an early RBM event. Hand it the message (a
    // no-op if it has one; the first one a guard gets is the one it keeps); a closed guard is never
    // reopened. Then the rule every entry point shares (same-message.ts): it must hold this message.
    const handle = this.client.workflow.getHandle<typeof rbmGuard>(workflowId);
    let runId: string | null = null;
    try {
      await handle.signal(trackSignal, message);
      runId = (await handle.describe()).runId;
    } catch (err) {
      if (!(err instanceof WorkflowNotFoundError)) throw err;
    }
    const alreadyClosed = runId === null;
    const held = await heldMessage(this.client, workflowId);
    if (!held) throw new DifferentMessageError(workflowId, null);
    const differences = messageDifferences(input, held.message);
    if (differences.length > 0) throw new DifferentMessageError(workflowId, differences);
    // The first track of a guard an early RBM event started is this call's: new to the caller.
    const created = !held.fromStart && held.trackSignals === 1 && !alreadyClosed;
    return { workflowId, runId, alreadyClosed, created, staleAt: held.message.staleAt };
  }

  /** State and timeline; for a closed guard, its final status (no worker needed). */
  async status(workflowId: string): Promise<GuardStatus> {
    const handle = this.handle(workflowId);
    const { status, raw } = await handle.describe();
    if (status.name !== 'RUNNING') return handle.result();
    // A deferred guard that has run no workflow task yet (in its start delay, or past it in a deadline
    // wave's backlog) has no worker to answer a query: its status is the one its start input gives.
    if (mayNotHaveRun(raw.workflowExecutionInfo)) {
      const waiting = await statusBeforeFirstRun(this.client, workflowId);
      if (waiting) return waiting;
    }
    return handle.query(statusQuery);
  }

  async cancel(workflowId: string, reason?: string): Promise<GuardStatus> {
    return this.handle(workflowId).executeUpdate(cancelUpdate, { args: [{ reason }] });
  }

  async extend(workflowId: string, staleAt: Date | string): Promise<GuardStatus> {
    const at = staleAt instanceof Date ? staleAt : (parseIsoDateTime(staleAt) ?? new Date(NaN));
    if (Number.isNaN(at.getTime())) throw new ValidationError([{ field: 'staleAt', message: `not an ISO-8601 date-time with a zone: ${String(staleAt)}` }]);
    if (at.getTime() <= Date.now()) throw new ValidationError([{ field: 'staleAt', message: `${at.toISOString()} is in the past` }]);
    return this.handle(workflowId).executeUpdate(extendUpdate, { args: [{ staleAt: at.toISOString() }] });
  }

  async list(filter: ListFilter = {}): Promise<GuardSummary[]> {
    const f = parseOrThrow(listFilterSchema, filter);
    const out: GuardSummary[] = [];
    for await (const wf of this.client.workflow.list({ query: listQuery(f) })) {
      out.push(guardSummary(wf));
      if (out.length >= f.limit) break;
    }
    return out;
  }

  /** One page of guards, newest first; `nextPageToken` (Temporal's own, opaque) is null on the last page. */
  async listPage(filter: Omit<ListFilter, 'limit'>, page: { pageSize: number; pageToken?: Uint8Array | null }): Promise<{ guards: GuardSummary[]; nextPageToken: Uint8Array | null }> {
    const f = parseOrThrow(listFilterSchema, filter);
    const { executions, nextPageToken } = await this.client.workflowService.listWorkflowExecutions({
      namespace: this.client.options.namespace,
      query: listQuery(f),
      pageSize: page.pageSize,
      nextPageToken: page.pageToken ?? undefined,
    });
    const infos = await Promise.all(executions.map((raw) => executionInfoFromRaw(raw, this.client.options.loadedDataConverter, raw, this.client.options.namespace)));
    return { guards: infos.map(guardSummary), nextPageToken: nextPageToken?.length ? nextPageToken : null };
  }

  /** Bulk cancel: every pending guard of an agent started before a moment. Returns what it cancelled. */
  async cancelMany(filter: { agentId: string; olderThanMs: number; reason?: string }): Promise<{ cancelled: string[]; skipped: { workflowId: string; reason: string }[] }> {
    const startedBefore = new Date(Date.now() - filter.olderThanMs);
    const guards = await this.list({ agentId: filter.agentId, startedBefore, open: true, limit: 100_000 });
    const cancelled: string[] = [];
    const skipped: { workflowId: string; reason: string }[] = [];
    for (const g of guards) {
      try {
        await this.cancel(g.workflowId, filter.reason ?? 'bulk cancel');
        cancelled.push(g.workflowId);
      } catch (err) {
        skipped.push({ workflowId: g.workflowId, reason: err instanceof Error ? err.message : String(err) });
      }
    }
    return { cancelled, skipped };
  }

  private handle(workflowId: string): WorkflowHandle<typeof rbmGuard> {
    return this.client.workflow.getHandle<typeof rbmGuard>(parseOrThrow(workflowIdSchema, workflowId, 'workflowId'));
  }
}

function listQuery(f: z.output<typeof listFilterSchema>): string {
  // A DOUBLE_DELIVERY is a guard's outcome or, after it closed, the webhook's late-delivery record: both.
  const doubles = f.outcome === 'DOUBLE_DELIVERY' || f.state === 'DOUBLE_DELIVERY';
  const clauses = [doubles ? `(WorkflowType = "${WORKFLOW_TYPE}" OR WorkflowType = "${LATE_DELIVERY_WORKFLOW_TYPE}")` : `WorkflowType = "${WORKFLOW_TYPE}"`];
  // Transient states carry no RbmState (WRITTEN_PENDING_STATES): they are the open guards without one.
  if (f.state && (isOutcome(f.state) || WRITTEN_PENDING_STATES.includes(f.state))) clauses.push(`${SA.state.name} = "${f.state}"`);
  else if (f.state) clauses.push(`ExecutionStatus = "Running"`, `${SA.state.name} IS NULL`);
  if (f.outcome) clauses.push(`${SA.outcome.name} = "${f.outcome}"`);
  if (f.agentId) clauses.push(`${SA.agentId.name} = "${f.agentId}"`);
  if (f.startedBefore) clauses.push(`StartTime < "${f.startedBefore.toISOString()}"`);
  if (f.open) clauses.push(`ExecutionStatus = "Running"`);
  return clauses.join(' AND ');
}

function guardSummary(wf: WorkflowExecutionInfo): GuardSummary {
  const sa = wf.typedSearchAttributes;
  return {
    workflowId: wf.workflowId,
    state: (sa.get(SA.state) as GuardState | undefined) ?? null,
    outcome: (sa.get(SA.outcome) as Outcome | undefined) ?? null,
    agentId: sa.get(SA.agentId) ?? null,
    staleAt: sa.get(SA.staleAt)?.toISOString() ?? null,
    startTime: wf.startTime.toISOString(),
    closeTime: wf.closeTime?.toISOString() ?? null,
  };
}

function parseOrThrow<T extends z.ZodType>(schema: T, value: unknown, field?: string): z.output<T> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  throw ValidationError.fromZod(parsed.error, field);
}
