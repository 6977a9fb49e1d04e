// Scenario 5: many sleeping guards, then a deadline wave. Tracks S guards (closed loop, same
// concurrency as the other scenarios), all waiting for their deadline; measures the start rate, the
// worker's, the server's and PostgreSQL's memory and PostgreSQL's disk as they pile up and sleep:
//   - the wave (W guards, tracked last) all have the same deadline, one whole second T chosen from
//     the rates measured while the others were tracked, so that all are asleep before it; at T
//     every one is revoked (200) and sends its SMS: time to drain, deadline → SMS per guard;
//   - the rest are then delivered: the simulator pushes DELIVERED through the webhook.
// Outcomes are read from each guard's result, and the SMS sink's records.
import { randomBytes } from 'node:crypto';
import proto from '@temporalio/proto';
import type { GuardStatus } from '../../workflows/contract.ts';
import { closedLoop, sleep } from '../lib/drive.ts';
import type { BenchEnv } from '../lib/env.ts';
import { sampleRss, treePssMiB, type RssSample } from '../lib/procs.ts';
import { latency, spread, type Latency, type Spread } from '../lib/stats.ts';

export interface WaveFigures {
  guards: number;
  /** The wave's one deadline (ISO). */
  at: string;
  /** True when the last guard fell asleep after T: the wave overlapped the pile-up (figures then include it). */
  beforeAllAsleep: boolean;
  /** T → the last of its SMS accepted (s); NaN if not all came within the wait. */
  drainSeconds: number;
  /** T → each SMS accepted by the sink (ms). */
  deadlineToSms: Latency;
  smsSends: number;
}

export interface ScaleRun {
  engine?: string;
  guards: number;
  revokeShare: number;
  wave?: WaveFigures;
  /** PostgreSQL engine only: both Temporal databases' size and the cluster's PSS (whole process tree). */
  postgres?: { bytesBefore: number; bytesAsleep: number; bytesPerGuard: number; pssBeforeMiB: number; pssAsleepMiB: number } | null;
  /** Until the last track() was acknowledged. */
  startSeconds: number;
  startPerSecond: number;
  /** Until the last guard's first workflow task ran (its timer set): all asleep. */
  asleepSeconds: number;
  asleepPerSecond: number;
  /** RSS (MiB) before the first guard, and the median over the sleep window. */
  rssBefore: { worker: number; server: number };
  rssSleeping: { worker: number; server: number };
  /** Seconds from the wake-up to the last guard closed; guards closed per second in that time. */
  wakeSeconds: number;
  wakePerSecond: number;
  outcomes: { delivered: number; fallbackSent: number; other: number; stillOpen: number; smsSends: number; duplicateSms: number; byOutcome: Record<string, number> };
  correct: boolean;
  failures: number;
  firstError?: string;
  samples: RssSample[];
}

export interface ScaleProgress {
  phase(name: string, total: number): void;
  tick(value: number): void;
}

const SLEEP_WINDOW_MS = 10_000;
const { temporal } = proto;

async function workflowBacklog(env: BenchEnv): Promise<number> {
  const { stack } = env;
  const res = await stack.client.workflowService.describeTaskQueue({
    namespace: 'default',
    taskQueue: { name: stack.taskQueue, kind: temporal.api.enums.v1.TaskQueueKind.TASK_QUEUE_KIND_NORMAL },
    taskQueueType: temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
    reportStats: true,
  });
  const count = res.stats?.approximateBacklogCount;
  return typeof count === 'number' ? count : Number(count ?? 0);
}

export async function runScale(env: BenchEnv, guards: number, wave: number, concurrency: number, progress: ScaleProgress): Promise<ScaleRun> {
  const { stack } = env;
  const agentId = `scale-${randomBytes(4).toString('hex')}`;
  const revokeCount = Math.min(wave, guards);
  const deliveredCount = guards - revokeCount;
  const ids = Array.from({ length: guards }, (_, i) => `${agentId}-${i}`);
  const workflowIds: string[] = [];
  let started = 0;
  const rss = sampleRss({ worker: env.guardWorkerPid, server: env.serverPid }, 1000, () => started);
  await sleep(1500);
  const before = rss.samples.slice(-1)[0] as RssSample;
  const pg = env.postgresPid() !== undefined;
  const pgBefore = pg ? { bytes: env.postgresBytes(), pss: treePssMiB(env.postgresPid()) } : undefined;

  const track = (staleAt: Date) => async (i: number) => {
    const messageId = ids[i] as string;
    const phone = `+1666${String(i % 10_000_000).padStart(7, '0')}`;
    const { workflowId } = await stack.guards.track({ agentId, messageId, phone, staleAt, trafficType: 'AUTHENTICATION', fallbackText: 'Your code is 424242', policy: { lingerMs: 1000 } });
    workflowIds[i] = workflowId;
    stack.sim.registerSent({ agentId, messageId, phone, plan: { deliverAfterMs: null } });
    started++;
    progress.tick(started);
    return true;
  };

  // Phase 1: the delivered share, every one with a far deadline.
  progress.phase('start', guards);
  const t0 = Date.now();
  const drive = await closedLoop(deliveredCount, concurrency, track(new Date(t0 + 6 * 3_600_000)));
  // The wave's second: after the rest is tracked and every guard is asleep, at the rates seen so
  // far (first workflow tasks lag behind track()), with 30 % and the sleep window to spare.
  const elapsed = Math.max(1, (Date.now() - t0) / 1000);
  const backlogNow = await workflowBacklog(env);
  const trackRate = Math.max(5, deliveredCount / elapsed);
  const asleepRate = Math.max(5, (deliveredCount - backlogNow) / elapsed);
  const ahead = 1.3 * Math.max(revokeCount / trackRate, (backlogNow + revokeCount) / asleepRate) + SLEEP_WINDOW_MS / 1000 + 20;
  const waveAt = Math.ceil((Date.now() + ahead * 1000) / 1000) * 1000;
  const waveDrive = await closedLoop(revokeCount, concurrency, (k) => track(new Date(waveAt))(deliveredCount + k));
  const startSeconds = (Date.now() - t0) / 1000;

  // Phase 1b: a started guard is asleep once its first workflow task ran (its timer is set). Until
  // the task queue's backlog is empty, some are still waiting for the worker.
  progress.phase('asleep', guards);
  for (;;) {
    const backlog = await workflowBacklog(env);
    progress.tick(guards - backlog);
    if (backlog === 0) break;
    await sleep(1000);
  }
  const asleepSeconds = (Date.now() - t0) / 1000;
  const beforeAllAsleep = Date.now() > waveAt;

  // Phase 2: all asleep (as long as the wave leaves time for).
  const windowMs = Math.max(1000, Math.min(SLEEP_WINDOW_MS, waveAt - Date.now() - 2000));
  progress.phase('sleep', Math.round(windowMs / 1000));
  const windowStart = rss.samples.length;
  for (let s = 1; s <= windowMs / 1000; s++) {
    await sleep(1000);
    progress.tick(s);
  }
  const window = rss.samples.slice(windowStart);
  const med = (key: 'worker' | 'server'): Spread => spread(window.map((x) => x[key]));
  const pgAsleep = pg ? { bytes: env.postgresBytes(), pss: treePssMiB(env.postgresPid()) } : undefined;

  // Phase 3: the wave. Wait for T, then for every wave guard's SMS (the sink's records).
  const waitS = Math.max(0, Math.round((waveAt - Date.now()) / 1000));
  progress.phase('wait for the wave', waitS);
  while (Date.now() < waveAt) {
    await sleep(Math.min(1000, waveAt - Date.now()));
    progress.tick(Math.round(waitS - (waveAt - Date.now()) / 1000));
  }
  progress.phase('wave', revokeCount);
  const waveIds = new Set(workflowIds.slice(deliveredCount));
  const waveSends = () => stack.sink.sends.filter((x) => x.idempotencyKey !== undefined && waveIds.has(x.idempotencyKey));
  const waveDeadline = Date.now() + Math.max(600_000, revokeCount * 200);
  while (new Set(waveSends().map((x) => x.idempotencyKey)).size < revokeCount && Date.now() < waveDeadline) {
    await sleep(1000);
    progress.tick(new Set(waveSends().map((x) => x.idempotencyKey)).size);
  }
  const sends = waveSends();
  const allSent = new Set(sends.map((x) => x.idempotencyKey)).size >= revokeCount;
  const waveFigures: WaveFigures = {
    guards: revokeCount,
    at: new Date(waveAt).toISOString(),
    beforeAllAsleep,
    drainSeconds: allSent && sends.length ? (Math.max(...sends.map((x) => x.at)) - waveAt) / 1000 : NaN,
    deadlineToSms: latency(sends.map((x) => x.at - waveAt)),
    smsSends: sends.length,
  };

  // Phase 4: the rest are delivered (the simulator's push queue, Pub/Sub-like, 32 at a time).
  progress.phase('deliver', guards);
  const wakeStart = Date.now();
  for (let i = 0; i < deliveredCount; i++) stack.sim.deliver(ids[i] as string);
  // Closed guards, as visibility reports them (ExecutionStatus is written with the close).
  const completed = () => stack.client.workflow.count(`RbmAgentId = "${agentId}" AND ExecutionStatus = "Completed"`).then((c) => c.count);
  let stillOpen = guards;
  const deadline = Date.now() + Math.max(600_000, guards * 200);
  while (stillOpen > 0 && Date.now() < deadline) {
    await sleep(2000);
    stillOpen = guards - (await completed());
    progress.tick(guards - stillOpen);
  }
  const wakeSeconds = (Date.now() - wakeStart) / 1000;
  const samples = rss.stop();
  // Outcomes: each guard's own result (its final status), and what the SMS sink received.
  progress.phase('check', guards);
  const byOutcome: Record<string, number> = {};
  let checked = 0;
  await closedLoop(guards, 100, async (i) => {
    // A guard still open after the wait counts as such instead of blocking the check.
    const result = stack.client.workflow.getHandle(workflowIds[i] as string).result() as Promise<GuardStatus>;
    const status = stillOpen > 0 ? await Promise.race([result, sleep(5000).then(() => null)]) : await result;
    const key = status ? (status.outcome ?? 'none') : 'still open';
    byOutcome[key] = (byOutcome[key] ?? 0) + 1;
    progress.tick(++checked);
    return true;
  });
  const delivered = byOutcome.DELIVERED ?? 0;
  const fallbackSent = byOutcome.FALLBACK_SENT ?? 0;
  const keys = stack.sink.sends.filter((s) => s.idempotencyKey?.includes(`/${agentId}/`)).map((s) => s.idempotencyKey);
  const smsSends = keys.length;
  const duplicateSms = smsSends - new Set(keys).size;
  const outcomes = { delivered, fallbackSent, other: guards - delivered - fallbackSent, stillOpen, smsSends, duplicateSms, byOutcome };
  return {
    engine: env.options.engine,
    guards,
    revokeShare: revokeCount / guards,
    wave: waveFigures,
    postgres:
      pgBefore && pgAsleep
        ? { bytesBefore: pgBefore.bytes, bytesAsleep: pgAsleep.bytes, bytesPerGuard: (pgAsleep.bytes - pgBefore.bytes) / guards, pssBeforeMiB: pgBefore.pss, pssAsleepMiB: pgAsleep.pss }
        : null,
    startSeconds,
    startPerSecond: guards / startSeconds,
    asleepSeconds,
    asleepPerSecond: guards / asleepSeconds,
    rssBefore: { worker: before.worker, server: before.server },
    rssSleeping: { worker: med('worker').median, server: med('server').median },
    wakeSeconds,
    wakePerSecond: deliveredCount / wakeSeconds,
    outcomes,
    correct: stillOpen === 0 && delivered === deliveredCount && fallbackSent === revokeCount && smsSends === revokeCount && duplicateSms === 0,
    failures: drive.failures + waveDrive.failures,
    firstError: drive.firstError ?? waveDrive.firstError,
    samples,
  };
}
