// Scenario 5: many sleeping guards. Tracks S guards (closed loop, same concurrency as the other
// scenarios), all waiting for their deadline; measures the start rate and the worker's and the
// server's RSS as they pile up and while they sleep; then wakes every one of them and checks each
// reached the right outcome:
//   - most are delivered: the simulator delivers them and pushes DELIVERED through the webhook;
//   - a share (every 20th) was tracked last with a deadline just after the sleep window: the timer
//     wakes it, it is revoked (200) and its SMS is sent exactly once.
// Outcomes are counted through visibility (RbmAgentId is unique per run) and the SMS sink.
import { randomBytes } from 'node:crypto';
import { closedLoop, sleep } from '../lib/drive.ts';
import type { BenchEnv } from '../lib/env.ts';
import { sampleRss, type RssSample } from '../lib/procs.ts';
import { spread, type Spread } from '../lib/stats.ts';

export interface ScaleRun {
  guards: number;
  revokeShare: number;
  startSeconds: number;
  startPerSecond: number;
  /** RSS (MiB) before the first guard, and the median over the sleep window. */
  rssBefore: { worker: number; server: number };
  rssSleeping: { worker: number; server: number };
  /** Seconds from the wake-up to the last guard closed; guards closed per second in that time. */
  wakeSeconds: number;
  wakePerSecond: number;
  outcomes: { delivered: number; fallbackSent: number; other: number; stillOpen: number; smsSends: number; duplicateSms: number };
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

export async function runScale(env: BenchEnv, guards: number, concurrency: number, progress: ScaleProgress): Promise<ScaleRun> {
  const { stack } = env;
  const agentId = `scale-${randomBytes(4).toString('hex')}`;
  const revokeEvery = 20;
  const revokeCount = Math.floor(guards / revokeEvery);
  const deliveredCount = guards - revokeCount;
  const ids = Array.from({ length: guards }, (_, i) => `${agentId}-${i}`);
  let started = 0;
  const rss = sampleRss({ worker: env.guardWorkerPid, server: env.serverPid }, 1000, () => started);
  await sleep(1500);
  const before = rss.samples.slice(-1)[0] as RssSample;

  // Phase 1: track them all. The delivered share first (far deadline), the revoke share last, its
  // deadline just after the sleep window, so every guard is asleep while RSS is measured.
  progress.phase('start', guards);
  const far = Date.now() + 6 * 3_600_000;
  const t0 = Date.now();
  let revokeDeadline = 0;
  const drive = await closedLoop(guards, concurrency, async (i) => {
    const messageId = ids[i] as string;
    const phone = `+1666${String(i % 10_000_000).padStart(7, '0')}`;
    const revoke = i >= deliveredCount;
    if (revoke && !revokeDeadline) {
      // Just after the sleep window: the time the rest takes to track at the rate so far, plus the window.
      const msPerGuard = (Date.now() - t0) / Math.max(1, started);
      revokeDeadline = Date.now() + 1.2 * revokeCount * msPerGuard + SLEEP_WINDOW_MS + 2_000;
    }
    await stack.guards.track({
      agentId,
      messageId,
      phone,
      staleAt: new Date(revoke ? revokeDeadline + (i - deliveredCount) : far),
      trafficType: 'AUTHENTICATION',
      fallbackText: 'Your code is 424242',
      policy: { lingerMs: 1000 },
    });
    stack.sim.registerSent({ agentId, messageId, phone, plan: { deliverAfterMs: null } });
    started++;
    progress.tick(started);
    return true;
  });
  const startSeconds = drive.seconds;

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
  // time); the revoke share's timers fire at their deadlines.
  progress.phase('wake', guards);
  const wakeStart = Date.now();
  for (let i = 0; i < deliveredCount; i++) stack.sim.deliver(ids[i] as string);
  // Closed guards, as visibility reports them: a record says Completed only once the close (with its
  // final search attributes) was written, so this is the count to wait for.
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

  // Outcomes, from visibility and the sink.
  const countOutcome = (o: string) => stack.client.workflow.count(`RbmAgentId = "${agentId}" AND RbmOutcome = "${o}"`).then((c) => c.count);
  let delivered = 0;
  let fallbackSent = 0;
  [delivered, fallbackSent] = await Promise.all([countOutcome('DELIVERED'), countOutcome('FALLBACK_SENT')]);
  const keys = stack.sink.sends.filter((s) => s.idempotencyKey?.includes(`/${agentId}/`)).map((s) => s.idempotencyKey);
  const smsSends = keys.length;
  const duplicateSms = smsSends - new Set(keys).size;
  const outcomes = { delivered, fallbackSent, other: guards - delivered - fallbackSent - stillOpen, stillOpen, smsSends, duplicateSms };
  return {
    guards,
    revokeShare: revokeCount / guards,
    startSeconds,
    startPerSecond: guards / startSeconds,
    rssBefore: { worker: before.worker, server: before.server },
    rssSleeping: { worker: med('worker').median, server: med('server').median },
    wakeSeconds,
    wakePerSecond: guards / wakeSeconds,
    outcomes,
    correct: stillOpen === 0 && delivered === deliveredCount && fallbackSent === revokeCount && smsSends === revokeCount && duplicateSms === 0,
    failures: drive.failures,
    firstError: drive.firstError,
    samples,
  };
}
