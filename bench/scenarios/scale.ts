// Scenario 5: many sleeping guards, then a deadline wave, on one stack. Guards are tracked (closed
// loop, same concurrency as the other scenarios) up to each checkpoint size in turn (e.g. 20,000
// then 100,000); at each, once every one is asleep (its first workflow task ran, its timer is set),
// the worker's, the server's and PostgreSQL's memory and PostgreSQL's disk are read over a window.
//   - the wave (W guards, tracked last) all have the same deadline, one whole second T chosen from
//     the rates measured on the others, so that all are asleep before it; at T every one is revoked
//     (200) and sends its SMS: time to drain, deadline → SMS per guard;
//   - then a sample of the others is delivered through the webhook (waking guards long evicted
//     from the worker's cache); the rest sleep on and go with the stack.
// Outcomes are read from each woken guard's result, the sleepers are counted in visibility, and the
// SMS sink's records say what was sent.
import { randomBytes } from 'node:crypto';
import type { GuardStatus } from '../../workflows/contract.ts';
import { pendingWorkflowTasks, workflowBacklog } from '../lib/asleep.ts';
import { closedLoop, sleep } from '../lib/drive.ts';
import type { BenchEnv } from '../lib/env.ts';
import { sampleRss, treePssMiB, type RssSample } from '../lib/procs.ts';
import { latency, spread, type Latency } from '../lib/stats.ts';

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

/** Memory and disk with `guards` asleep. */
export interface Checkpoint {
  guards: number;
  /** Seconds from the first track() until all of them were asleep. */
  asleepAtSeconds: number;
  /** RSS (MiB), the median of the window's second half: the heap has settled by then. */
  rss: { worker: number; server: number };
  /** The highest RSS in the window (MiB). */
  rssPeak: { worker: number; server: number };
  /** PostgreSQL engine only: both Temporal databases' size and the cluster's PSS (whole process tree). */
  postgres?: { bytes: number; bytesPerGuard: number; pssMiB: number } | null;
}

export interface ScaleRun {
  engine?: string;
  /** The largest checkpoint: every guard tracked, the wave included. */
  guards: number;
  checkpoints: Checkpoint[];
  revokeShare: number;
  wave?: WaveFigures;
  /** PostgreSQL before the first guard. */
  postgresBefore?: { bytes: number; pssMiB: number } | null;
  /** Until the last track() was acknowledged (checkpoint windows and waits included). */
  startSeconds: number;
  /** track() acknowledged per second, over the time spent tracking. */
  startPerSecond: number;
  /** Until the last guard's first workflow task ran (its timer set): all asleep. */
  asleepSeconds: number;
  /** Guards asleep per second, over the pile-up without the checkpoint windows. */
  asleepPerSecond: number;
  rssBefore: { worker: number; server: number };
  /** The last checkpoint's. */
  rssSleeping: { worker: number; server: number };
  /** The delivered sample: seconds from the first DELIVERED pushed to the last of them closed, and per second. */
  delivered: number;
  wakeSeconds: number;
  wakePerSecond: number;
  outcomes: { delivered: number; fallbackSent: number; other: number; stillOpen: number; sleeping: number; smsSends: number; duplicateSms: number; byOutcome: Record<string, number> };
  correct: boolean;
  failures: number;
  firstError?: string;
  samples: RssSample[];
}

export interface ScaleProgress {
  phase(name: string, total: number): void;
  tick(value: number): void;
  checkpoint?(c: Checkpoint): void;
}

const WINDOW_MS = 40_000;
// track() runs ahead of first workflow tasks (~100/s against ~35/s here). Left alone, 20,000 guards
// built a backlog of 18,000 tasks that matching kept in PostgreSQL, and first tasks slowed from
// 37/s to 21/s as it grew. So tracking pauses while more than this many wait for their first task.
const MAX_BACKLOG = 500;

export interface ScaleOptions {
  /** Checkpoint sizes; the largest is the number of guards tracked in all. */
  sizes: number[];
  wave: number;
  concurrency: number;
  /** How many of the non-wave guards are woken by a DELIVERED at the end. */
  deliverSample: number;
}

export async function runScale(env: BenchEnv, options: ScaleOptions, progress: ScaleProgress): Promise<ScaleRun> {
  const { stack } = env;
  const sizes = [...new Set(options.sizes)].sort((a, b) => a - b);
  const guards = sizes[sizes.length - 1] as number;
  const agentId = `scale-${randomBytes(4).toString('hex')}`;
  const waveCount = Math.min(options.wave, guards);
  const restCount = guards - waveCount;
  const sampleCount = Math.min(restCount, options.deliverSample);
  const ids = Array.from({ length: guards }, (_, i) => `${agentId}-${i}`);
  const workflowIds: string[] = [];
  let started = 0;
  const rss = sampleRss({ worker: env.guardWorkerPid, server: env.serverPid }, 1000, () => started);
  await sleep(1500);
  const before = rss.samples.slice(-1)[0] as RssSample;
  const pg = env.postgresPid() !== undefined;
  const postgresBefore = pg ? { bytes: env.postgresBytes(), pssMiB: treePssMiB(env.postgresPid()) } : null;
  const failures: { n: number; first?: string } = { n: 0 };
  let trackSeconds = 0;

  let backlog = 0;
  let gateOn = true;
  const gate = (async () => {
    while (gateOn) {
      backlog = await workflowBacklog(stack.client, stack.taskQueue).catch(() => backlog);
      await sleep(500);
    }
  })();
  const track = (staleAt: Date) => async (i: number) => {
    while (backlog > MAX_BACKLOG) await sleep(100);
    const messageId = ids[i] as string;
    const phone = `+1666${String(i % 10_000_000).padStart(7, '0')}`;
    const { workflowId } = await stack.guards.track({ agentId, messageId, phone, staleAt, trafficType: 'AUTHENTICATION', fallbackText: 'Your code is 424242', policy: { lingerMs: 1000 } });
    workflowIds[i] = workflowId;
    stack.sim.registerSent({ agentId, messageId, phone, plan: { deliverAfterMs: null } });
    started++;
    progress.tick(started);
    return true;
  };
  const trackRange = async (from: number, to: number, staleAt: Date) => {
    const d = await closedLoop(to - from, options.concurrency, (k) => track(staleAt)(from + k));
    trackSeconds += d.seconds;
    failures.n += d.failures;
    failures.first ??= d.firstError;
  };
  const untilAsleep = async () => {
    progress.phase('asleep', started);
    for (;;) {
      // Asleep (bench/lib/asleep.ts): an empty backlog, and none of the last 20 tracked still pending.
      const waiting = await workflowBacklog(stack.client, stack.taskQueue);
      progress.tick(started - waiting);
      if (waiting === 0 && (await pendingWorkflowTasks(stack.client, workflowIds.slice(Math.max(0, started - 20), started).filter(Boolean))) === 0) return;
      await sleep(1000);
    }
  };
  let windowsSeconds = 0;
  const checkpoint = async (n: number, windowMs: number): Promise<Checkpoint> => {
    const asleepAtSeconds = (Date.now() - t0) / 1000;
    windowsSeconds += windowMs / 1000;
    progress.phase(`sleep at ${n}`, Math.round(windowMs / 1000));
    const from = rss.samples.length;
    for (let s = 1; s <= windowMs / 1000; s++) {
      await sleep(1000);
      progress.tick(s);
    }
    const window = rss.samples.slice(from);
    const settled = window.slice(Math.floor(window.length / 2));
    const med = (key: 'worker' | 'server') => spread(settled.map((x) => x[key])).median;
    const max = (key: 'worker' | 'server') => Math.max(...window.map((x) => x[key]).filter(Number.isFinite));
    const bytes = pg ? env.postgresBytes() : NaN;
    return {
      guards: n,
      asleepAtSeconds,
      rss: { worker: med('worker'), server: med('server') },
      rssPeak: { worker: max('worker'), server: max('server') },
      postgres: pg && postgresBefore ? { bytes, bytesPerGuard: (bytes - postgresBefore.bytes) / n, pssMiB: treePssMiB(env.postgresPid()) } : null,
    };
  };

  // Phase 1: the others, every one with a far deadline, checkpoint by checkpoint.
  const checkpoints: Checkpoint[] = [];
  const t0 = Date.now();
  const far = new Date(t0 + 24 * 3_600_000);
  for (const size of sizes.filter((s) => s <= restCount)) {
    progress.phase('start', size);
    await trackRange(started, size, far);
    await untilAsleep();
    checkpoints.push(await checkpoint(size, WINDOW_MS));
    progress.checkpoint?.(checkpoints[checkpoints.length - 1] as Checkpoint);
  }
  if (started < restCount) {
    progress.phase('start', restCount);
    await trackRange(started, restCount, far);
    await untilAsleep();
  }
  // The wave's second T: after the wave is tracked and asleep at the rates seen so far, with 30 %
  // and the checkpoint window to spare.
  const soFar = Math.max(1, (Date.now() - t0) / 1000);
  const rate = Math.max(5, restCount / soFar);
  const waveAt = Math.ceil((Date.now() + (1.3 * (waveCount / rate) + WINDOW_MS / 1000 + 15) * 1000) / 1000) * 1000;
  progress.phase('start the wave', guards);
  await trackRange(started, guards, new Date(waveAt));
  const startSeconds = (Date.now() - t0) / 1000;
  await untilAsleep();
  const asleepSeconds = (Date.now() - t0) / 1000;
  const pileUpSeconds = asleepSeconds - windowsSeconds;
  const beforeAllAsleep = Date.now() > waveAt;
  gateOn = false;
  await gate;
  if (checkpoints[checkpoints.length - 1]?.guards !== guards) {
    checkpoints.push(await checkpoint(guards, Math.max(2000, Math.min(WINDOW_MS, waveAt - Date.now() - 2000))));
    progress.checkpoint?.(checkpoints[checkpoints.length - 1] as Checkpoint);
  }

  // Phase 2: the wave. Wait for T, then for every wave guard's SMS (the sink's records).
  const waitS = Math.max(0, Math.round((waveAt - Date.now()) / 1000));
  progress.phase('wait for the wave', waitS);
  while (Date.now() < waveAt) {
    await sleep(Math.min(1000, waveAt - Date.now()));
    progress.tick(Math.round(waitS - (waveAt - Date.now()) / 1000));
  }
  progress.phase('wave', waveCount);
  const waveIds = new Set(workflowIds.slice(restCount));
  const waveSends = () => stack.sink.sends.filter((x) => x.idempotencyKey !== undefined && waveIds.has(x.idempotencyKey));
  const waveDeadline = Date.now() + Math.max(600_000, waveCount * 200);
  while (new Set(waveSends().map((x) => x.idempotencyKey)).size < waveCount && Date.now() < waveDeadline) {
    await sleep(1000);
    progress.tick(new Set(waveSends().map((x) => x.idempotencyKey)).size);
  }
  const sends = waveSends();
  const allSent = new Set(sends.map((x) => x.idempotencyKey)).size >= waveCount;
  const wave: WaveFigures = {
    guards: waveCount,
    at: new Date(waveAt).toISOString(),
    beforeAllAsleep,
    drainSeconds: allSent && sends.length ? (Math.max(...sends.map((x) => x.at)) - waveAt) / 1000 : NaN,
    deadlineToSms: latency(sends.map((x) => x.at - waveAt)),
    smsSends: sends.length,
  };

  // Phase 3: a sample of the others is delivered (the simulator's push queue, Pub/Sub-like, 32 at a
  // time), spread over the whole pile so that most were evicted from the worker's cache long ago.
  progress.phase('deliver', sampleCount);
  const step = restCount / Math.max(1, sampleCount);
  const sample = Array.from({ length: sampleCount }, (_, k) => Math.floor(k * step));
  const wakeStart = Date.now();
  for (const i of sample) stack.sim.deliver(ids[i] as string);
  const count = (status: string) => stack.client.workflow.count(`RbmAgentId = "${agentId}" AND ExecutionStatus = "${status}"`).then((c) => c.count);
  const woken = waveCount + sampleCount;
  let closed = 0;
  const deadline = Date.now() + Math.max(600_000, woken * 200);
  while (closed < woken && Date.now() < deadline) {
    await sleep(2000);
    closed = await count('Completed');
    progress.tick(Math.max(0, closed - waveCount));
  }
  const wakeSeconds = (Date.now() - wakeStart) / 1000;
  const samples = rss.stop();

  // Outcomes: each woken guard's own result, the sleepers counted, and what the SMS sink received.
  progress.phase('check', woken);
  const byOutcome: Record<string, number> = {};
  let checked = 0;
  const check = [...sample, ...Array.from({ length: waveCount }, (_, k) => restCount + k)];
  await closedLoop(check.length, 100, async (k) => {
    const result = stack.client.workflow.getHandle(workflowIds[check[k] as number] as string).result() as Promise<GuardStatus>;
    // A guard still open after the wait counts as such instead of blocking the check.
    const status = closed < woken ? await Promise.race([result, sleep(5000).then(() => null)]) : await result;
    const key = status ? (status.outcome ?? 'none') : 'still open';
    byOutcome[key] = (byOutcome[key] ?? 0) + 1;
    progress.tick(++checked);
    return true;
  });
  const sleeping = await count('Running');
  const delivered = byOutcome.DELIVERED ?? 0;
  const fallbackSent = byOutcome.FALLBACK_SENT ?? 0;
  const keys = stack.sink.sends.filter((s) => s.idempotencyKey?.includes(`/${agentId}/`)).map((s) => s.idempotencyKey);
  const smsSends = keys.length;
  const duplicateSms = smsSends - new Set(keys).size;
  const stillOpen = byOutcome['still open'] ?? 0;
  const outcomes = { delivered, fallbackSent, other: check.length - delivered - fallbackSent, stillOpen, sleeping, smsSends, duplicateSms, byOutcome };
  const last = checkpoints[checkpoints.length - 1] as Checkpoint;
  return {
    engine: env.options.engine,
    guards,
    checkpoints,
    revokeShare: waveCount / guards,
    wave,
    postgresBefore,
    startSeconds,
    startPerSecond: guards / trackSeconds,
    asleepSeconds,
    asleepPerSecond: guards / pileUpSeconds,
    rssBefore: { worker: before.worker, server: before.server },
    rssSleeping: last.rss,
    delivered: sampleCount,
    wakeSeconds,
    wakePerSecond: sampleCount / wakeSeconds,
    outcomes,
    correct:
      stillOpen === 0 && delivered === sampleCount && fallbackSent === waveCount && sleeping === restCount - sampleCount && smsSends === waveCount && duplicateSms === 0 && failures.n === 0,
    failures: failures.n,
    firstError: failures.first,
    samples,
  };
}
