// What each command does, once its arguments are parsed: check the input, connect, call
// GuardClient, print. Imported only when a command runs (it brings in the Temporal client).
import { WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import { agentDirectory } from '../../config/agents.ts';
import { SA, type GuardStatus, type LateDeliveryInput } from '../../workflows/contract.ts';
import { noCredentialsFor, type GuardClient } from '../guard-client.ts';
import { errorText, GRPC, grpcCause } from '../temporal-errors.ts';
import { parseDuration, parseTrackInput, type TrackInput } from '../track-input.ts';
import { checkAgent, checkFutureDate, checkGuardId } from './checks.ts';
import { CliError, EXIT, oneLine, usage } from './errors.ts';
import type { CancelOptions, CliContext, ListOptions, TrackOptions } from './program.ts';
import { count, fields, indent, json, relative, renderList, renderStatus, table } from './render.ts';
import { Session } from './session.ts';

const DEFAULT_QUERY_TIMEOUT_MS = 10_000;

function sessionOf(ctx: CliContext): Session {
  ctx.session ??= new Session(ctx.io);
  return ctx.session;
}

export async function track(ctx: CliContext, opts: TrackOptions): Promise<void> {
  const session = sessionOf(ctx);
  const config = session.loadConfig();
  const agentId = opts.agent ?? config.RBM_AGENT_ID;
  if (agentId === undefined) throw usage('--agent is required (or set RBM_AGENT_ID)');
  if (opts.staleAt === undefined && opts.staleIn === undefined) throw usage('--stale-at or --stale-in is required');
  const input: TrackInput = {
    agentId,
    messageId: opts.messageId,
    phone: opts.phone,
    staleAt: opts.staleAt,
    staleIn: opts.staleIn,
    expireTime: opts.expireTime,
    ttl: opts.ttl,
    fallbackText: opts.fallbackText,
    trafficType: opts.trafficType,
    priority: opts.priority,
  };
  // Validate before connecting. The library resolves --stale-in itself, so the same command run again
  // is the same message (its deadline counts from the first track), as in every other entry point.
  const message = parseTrackInput(input);
  // An agent without RBM credentials (not in RBM_AGENTS_FILE): its guard could neither revoke nor send.
  const refusal = noCredentialsFor(agentDirectory(config).agents, message.agentId);
  if (refusal) throw usage(`--agent: ${refusal}`);
  const result = await (await session.guards()).track(input);
  const { io } = ctx;
  if (opts.json) {
    io.stdout(json({ ...result, fallback: message.fallback?.channel ?? null }));
    return;
  }
  if (result.alreadyClosed) {
    io.stdout(`${result.workflowId}: this message's guard has already ended; nothing new started (see: rbm-guard status ${result.workflowId})\n`);
    return;
  }
  io.stdout(
    fields([
      ['guarding', result.workflowId],
      ['stale at', `${result.staleAt} (${relative(result.staleAt)})`],
      ['fallback', message.fallback ? message.fallback.channel : 'none'],
      ['traffic', message.trafficType],
      ['priority', String(message.priority)],
      ['run', result.runId ?? '—'],
    ]),
  );
}

export async function status(ctx: CliContext, id: string, opts: { json?: boolean }): Promise<void> {
  if (id.startsWith('rbm-late/')) return lateRecordStatus(ctx, id, opts);
  const workflowId = checkGuardId(id);
  const session = sessionOf(ctx);
  session.loadConfig();
  const guards = await session.guards();
  const result = await statusWithin(session, guards, workflowId, ctx.io.queryTimeoutMs ?? DEFAULT_QUERY_TIMEOUT_MS);
  ctx.io.stdout(opts.json ? json(result) : renderStatus(result));
}

/** A late-delivery record (`rbm-late/…`, the webhook's DOUBLE_DELIVERY after a closed guard): what it recorded. */
async function lateRecordStatus(ctx: CliContext, id: string, opts: { json?: boolean }): Promise<void> {
  const { isLateRecordId } = await import('../late-records.ts');
  if (!isLateRecordId(id)) throw usage(`bad late-record id '${id}': expected rbm-late/<agentId>/<messageId>/<eventId>, as list prints it`);
  const session = sessionOf(ctx);
  session.loadConfig();
  await session.guards();
  const client = session.client!;
  const timeoutMs = ctx.io.queryTimeoutMs ?? DEFAULT_QUERY_TIMEOUT_MS;
  const record = (await client.connection.withDeadline(Date.now() + timeoutMs, () => client.workflow.getHandle(id).result())) as LateDeliveryInput;
  if (opts.json) return ctx.io.stdout(json({ recordId: id, outcome: 'DOUBLE_DELIVERY', ...record }));
  ctx.io.stdout(
    fields([
      ['record', id],
      ['outcome', 'DOUBLE_DELIVERY (a late-delivery record)'],
      ['guard', record.guardWorkflowId],
      ['guard outcome', record.guardOutcome],
      ['event', `${record.eventType} ${record.eventId}`],
      ['received', record.receivedAt],
    ]),
  );
}

export async function cancel(ctx: CliContext, id: string | undefined, opts: CancelOptions): Promise<void> {
  if (id !== undefined) return cancelOne(ctx, id, opts);
  if (opts.agent === undefined && opts.olderThan === undefined) {
    throw usage('give a guard id, or --agent and --older-than for a bulk cancel');
  }
  return cancelBulk(ctx, opts);
}

export async function extend(ctx: CliContext, id: string, opts: { staleAt: string; json?: boolean }): Promise<void> {
  const workflowId = checkGuardId(id);
  const staleAt = checkFutureDate('--stale-at', opts.staleAt);
  const session = sessionOf(ctx);
  session.loadConfig();
  const guards = await session.guards();
  const result = await whenOpen(guards, workflowId, 'extend', () => guards.extend(workflowId, staleAt));
  ctx.io.stdout(opts.json ? json(result) : `${workflowId}: deadline moved to ${result.staleAt ?? staleAt.toISOString()} (state ${result.state})\n`);
}

export async function list(ctx: CliContext, opts: ListOptions): Promise<void> {
  if (opts.agent !== undefined) checkAgent('--agent', opts.agent);
  const session = sessionOf(ctx);
  session.loadConfig();
  const guards = await (await session.guards()).list({ state: opts.state, outcome: opts.outcome, agentId: opts.agent, limit: opts.limit });
  const { io } = ctx;
  if (opts.json) {
    io.stdout(json(guards));
    return;
  }
  io.stdout(guards.length ? renderList(guards) : 'no guards match\n');
  if (guards.length >= opts.limit) io.stdout(`(first ${opts.limit}; raise --limit for more)\n`);
}

async function cancelOne(ctx: CliContext, id: string, opts: CancelOptions): Promise<void> {
  if (opts.agent !== undefined || opts.olderThan !== undefined) throw usage('give a guard id or --agent/--older-than, not both');
  if (opts.dryRun) throw usage('--dry-run applies to a bulk cancel (--agent/--older-than) only');
  const workflowId = checkGuardId(id);
  const session = sessionOf(ctx);
  session.loadConfig();
  const guards = await session.guards();
  const result = await whenOpen(guards, workflowId, 'cancel', () => guards.cancel(workflowId, opts.reason));
  ctx.io.stdout(opts.json ? json(result) : `${workflowId}: ${result.state}\n`);
}

async function cancelBulk(ctx: CliContext, opts: CancelOptions): Promise<void> {
  if (opts.agent === undefined) throw usage('--agent is required for a bulk cancel (with --older-than)');
  if (opts.olderThan === undefined) throw usage('--older-than is required for a bulk cancel (e.g. --older-than 1h)');
  const agentId = checkAgent('--agent', opts.agent);
  const olderThanMs = parseDuration(opts.olderThan);
  if (olderThanMs === undefined) throw usage(`--older-than: not a duration like 90s, 10m or 2h: ${opts.olderThan}`);
  const session = sessionOf(ctx);
  session.loadConfig();
  const guards = await session.guards();
  const { io } = ctx;

  if (opts.dryRun) {
    const startedBefore = new Date(Date.now() - olderThanMs);
    const pending = await guards.list({ agentId, startedBefore, open: true, limit: 100_000 });
    if (opts.json) io.stdout(json({ dryRun: true, wouldCancel: pending.map((g) => g.workflowId) }));
    else io.stdout(pending.length ? `would cancel ${count(pending.length, 'guard')}:\n${renderList(pending)}` : 'no pending guards match\n');
    return;
  }

  const result = await guards.cancelMany({ agentId, olderThanMs, reason: opts.reason });
  if (result.skipped.length) ctx.exitCode = EXIT.failed;
  if (opts.json) {
    io.stdout(json(result));
    return;
  }
  let out = `cancelled ${count(result.cancelled.length, 'guard')} of ${agentId} started more than ${opts.olderThan} ago\n`;
  for (const workflowId of result.cancelled) out += `  ${workflowId}\n`;
  if (result.skipped.length) {
    out += `skipped ${result.skipped.length}:\n` + indent(table([['ID', 'REASON'], ...result.skipped.map((s) => [s.workflowId, oneLine(s.reason)])]));
  }
  io.stdout(out);
}

/**
 * A running guard's status comes from a worker (query): without one the server would hold the call
 * for a long while. Bound it, and say what the server itself knows when no worker answers.
 */
async function statusWithin(session: Session, guards: GuardClient, workflowId: string, timeoutMs: number): Promise<GuardStatus> {
  const { client } = session;
  if (!client) return guards.status(workflowId);
  const { connection } = client;
  try {
    return await connection.withDeadline(Date.now() + timeoutMs, () => guards.status(workflowId));
  } catch (err) {
    // A deadline that lapses while the call is queued surfaces as CANCELLED ("Call cancelled") in grpc-js.
    const code = grpcCause(err)?.code;
    if (code !== GRPC.DEADLINE_EXCEEDED && code !== GRPC.CANCELLED) throw err;
    const info = await connection.withDeadline(Date.now() + timeoutMs, () => client.workflow.getHandle(workflowId).describe());
    const state = info.typedSearchAttributes.get(SA.state);
    const written = state ? `${SA.state.name}=${state}` : `no ${SA.state.name} written: awaiting delivery, or between two steps`;
    throw new CliError(
      `${workflowId} is ${info.status.name.toLowerCase()} (${written}) but no worker answered its status query within ${timeoutMs / 1000}s — is a worker polling task queue ${info.taskQueue}?`,
      EXIT.failed,
    );
  }
}

/** An update on a guard that has already ended: say how it ended instead of "not found". */
async function whenOpen(guards: GuardClient, workflowId: string, verb: string, run: () => Promise<GuardStatus>): Promise<GuardStatus> {
  try {
    return await run();
  } catch (err) {
    if (err instanceof WorkflowNotFoundError && /already completed/i.test(err.message)) {
      const final = await guards.status(workflowId).catch(() => undefined);
      throw new CliError(`cannot ${verb} ${workflowId}: the guard has already ended${final ? ` (${final.state})` : ''}`, EXIT.failed);
    }
    if (err instanceof WorkflowUpdateFailedError) {
      throw new CliError(`cannot ${verb} ${workflowId}: ${errorText(err.cause ?? err)}`, EXIT.failed);
    }
    throw err;
  }
}
