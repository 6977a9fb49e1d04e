// Scenario 5: many sleeping guards. Tracks S guards (closed loop, same concurrency as the other
// scenarios), all waiting for their deadline; measures the start rate and the worker's and the
// server's RSS as they pile up and while they sleep; then wakes every one of them and checks each
// reached the right outcome:
//   - most are delivered: the simulator delivers them and pushes DELIVERED through the webhook;
//   - a share (one in 20) has its deadline moved to 10 s ahead (the extend update): the
//     timer wakes it, it is revoked (200) and its SMS is sent exactly once.
// Outcomes are read from each guard's result, and the SMS sink's records.
import { randomBytes } from 'node:crypto';
import proto from '@temporalio/proto';
import type { GuardStatus } from '../../workflows/contract.ts';
import { closedLoop, sleep } from '../lib/drive.ts';
import type { BenchEnv } from '../lib/env.ts';
import { sampleRss, type RssSample } from '../lib/procs.ts';
import { spread, type Spread } from '../lib/stats.ts';

export interface ScaleRun {
  guards: number;
  revokeShare: number;
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

export async function runScale(env: BenchEnv, guards: number, concurrency: number, progress: ScaleProgress): Promise<ScaleRun> {
  const { stack } = env;
  const agentId = `scale-${randomBytes(4).toString('hex')}`;
  const revokeEvery = 20;
  const revokeCount = Math.floor(guards / revokeEvery);
  const deliveredCount = guards - revokeCount;
  const ids = Array.from({ length: guards }, (_, i) => `${agentId}-${i}`);
  const workflowIds: string[] = [];
  let started = 0;
  const rss = sampleRss({ worker: env.guardWorkerPid, server: env.serverPid }, 1000, () => started);
  await sleep(1500);
  const before = rss.samples.slice(-1)[0] as RssSample;

  // Phase 1: track them all, every one with a far deadline (the revoke share's is moved close later).
  progress.phase('start', guards);
  const far = Date.now() + 6 * 3_600_000;
  const t0 = Date.now();
  const drive = await closedLoop(guards, concurrency, async (i) => {
    const messageId = ids[i] as string;
    const phone = `+1666${String(i % 10_000_000).padStart(7, '0')}`;
    const { workflowId } = await stack.guards.track({
      agentId,
      messageId,
      phone,
      staleAt: new Date(far),
      trafficType: 'AUTHENTICATION',
      fallbackText: 'Your code is 424242',
      policy: { lingerMs: 1000 },
    });
    workflowIds[i] = workflowId;
    stack.sim.registerSent({ agentId, messageId, phone, plan: { deliverAfterMs: null } });
    started++;
    progress.tick(started);
    return true;
  });
  const startSeconds = drive.seconds;

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

  // Phase 2: all asleep.
  progress.phase('sleep', SLEEP_WINDOW_MS / 1000);
  const windowStart = rss.samples.length;
  for (let s = 1; s <= SLEEP_WINDOW_MS / 1000; s++) {
    await sleep(1000);
    progress.tick(s);
  }
  const window = rss.samples.slice(windowStart);
  const med = (key: 'worker' | 'server'): Spread => spread(window.map((x) => x[key]));

  // Phase 3: wake them. Deliveries go out through the simulator's push queue (Pub/Sub-like, 32 at a
  // time); the revoke share's deadlines are moved to 10 s from now (the extend update).
  progress.phase('wake', guards);
  const wakeStart = Date.now();
  for (let i = 0; i < deliveredCount; i++) stack.sim.deliver(ids[i] as string);
  let extendErrors = 0;
  let lastExtendError: string | undefined;
  const extend = await closedLoop(revokeCount, concurrency, async (k) => {
    // An update waits for the worker; under the wake-up's load one can time out: try again.
    for (let attempt = 1; ; attempt++) {
      try {
        await stack.guards.extend(workflowIds[deliveredCount + k] as string, new Date(Date.now() + 10_000));
        return true;
      } catch (err) {
        extendErrors++;
        const cause = err instanceof Error && err.cause instanceof Error ? ` (${err.cause.message})` : '';
        lastExtendError = err instanceof Error ? `${err.name}: ${err.message}${cause}` : String(err);
        if (attempt >= 5) throw err;
        await sleep(1000);
      }
    }
  });
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
    guards,
    revokeShare: revokeCount / guards,
    startSeconds,
    startPerSecond: guards / startSeconds,
    asleepSeconds,
    asleepPerSecond: guards / asleepSeconds,
    rssBefore: { worker: before.worker, server: before.server },
    rssSleeping: { worker: med('worker').median, server: med('server').median },
    wakeSeconds,
    wakePerSecond: guards / wakeSeconds,
    outcomes,
    correct: stillOpen === 0 && delivered === deliveredCount && fallbackSent === revokeCount && smsSends === revokeCount && duplicateSms === 0,
    failures: drive.failures + extend.failures,
    firstError: drive.firstError ?? extend.firstError ?? (extendErrors ? `${extendErrors} extend attempts failed, last: ${lastExtendError}` : undefined),
    samples,
  };
}
