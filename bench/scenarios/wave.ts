// The outage moment: RCS is down, so every deadline of a pile of messages falls in the same second
// and each one is revoked and texted. On one stack, one wave after the other (each waits for the
// last to close):
//   - floor    bare workflows of the revoke path's shape (sleep until T, two trivial activities)
//   - guard    guards, all OTPs: T → the last SMS accepted, deadline → SMS per guard
//   - mixed    OTPs and promotions in the same second, the SMS provider limited to `smsPerSecond` (the
//              sink answers 429 past it) and the workers' SMS queue paced at the same rate: OTPs first?
//   - twoWorkers  the guard wave again with two worker processes instead of one
// Every wave is tracked first and falls asleep (timers set) before T. Each guard's outcome and the
// SMS sink's records are checked: one SMS per guard, every guard FALLBACK_SENT.
import { randomBytes } from 'node:crypto';
import type { Client } from '@temporalio/client';
import type { MessageTrafficType } from '../../workflows/contract.ts';
import { workflowBacklog } from '../lib/asleep.ts';
import { closedLoop, sleep } from '../lib/drive.ts';
import { LEGS, readHistory, type Leg } from '../lib/history.ts';
import { FLOOR_TASK_QUEUE, startBenchWorker, type BenchEnv, type BenchWorker } from '../lib/env.ts';
import { cpuSeconds, machineBusySeconds } from '../lib/procs.ts';
import { latency, type Latency } from '../lib/stats.ts';

export interface WaveRun {
  kind: 'floor' | 'guard' | 'mixed' | 'twoWorkers';
  count: number;
  /** The deadline second (ISO). */
  at: string;
  /** True when some were still falling asleep at T (the wave overlapped its own start). */
  beforeAllAsleep: boolean;
  /** T → the last SMS accepted (floor: the last workflow closed), s; NaN when not all came. */
  drainSeconds: number;
  perSecond: number;
  /** T → each SMS accepted (floor: each close), ms; by traffic type for the mixed wave. */
  latency: Latency;
  byType?: Partial<Record<MessageTrafficType, Latency>>;
  /** Guards only: SMS the sink recorded, guards with an SMS, and guards FALLBACK_SENT. */
  smsSends?: number;
  smsGuards?: number;
  fallbackSent?: number;
  /** The mixed wave: the provider limit, the most SMS the sink accepted in one second, and its 429s. */
  pacing?: { limitPerS: number; maxObservedPerS: number; status429: number };
  correct: boolean;
  workers: number;
  /** Median ms per leg from T to the SMS completed, from a sample of histories per traffic type: which leg holds them back. */
  legsByType?: Partial<Record<MessageTrafficType, Record<Leg, number> & { total: number; histories: number }>>;
  /** Percent of one core each used from T to the drain's end (2 cores = 200 %): where the wave's time went. */
  cpuPercent: { server: number; workers: number; postgres: number; bench: number; machine: number };
}

/** CPU seconds so far of the server, the workers doing the wave, PostgreSQL, this process and the machine. */
function cpuNow(env: BenchEnv, workerPids: () => (number | undefined)[]) {
  const c = process.cpuUsage();
  return {
    server: cpuSeconds(env.serverPid()),
    workers: workerPids().reduce<number>((sum, pid) => sum + (pid === undefined ? 0 : cpuSeconds(pid)), 0),
    postgres: env.postgresPid() === undefined ? 0 : cpuSeconds(env.postgresPid()),
    bench: (c.user + c.system) / 1e6,
    machine: machineBusySeconds(),
  };
}

function cpuPercent(before: ReturnType<typeof cpuNow>, after: ReturnType<typeof cpuNow>, seconds: number): WaveRun['cpuPercent'] {
  const pct = (k: keyof typeof before) => Math.round((100 * (after[k] - before[k])) / seconds);
  return { server: pct('server'), workers: pct('workers'), postgres: pct('postgres'), bench: pct('bench'), machine: pct('machine') };
}

export interface WaveOptions {
  count: number;
  concurrency: number;
  /** The mixed wave's share of OTPs (the rest are promotions). */
  otpShare: number;
  smsPerSecond: number;
}

export interface WaveProgress {
  phase(name: string, total: number): void;
  tick(value: number): void;
  done(run: WaveRun): void;
}

// Tracking runs ahead of first workflow tasks; it pauses while this many wait (as scenario 5 does).
const MAX_BACKLOG = 500;
const MARGIN_S = 20;

export async function runWaves(env: BenchEnv, options: WaveOptions, progress: WaveProgress): Promise<WaveRun[]> {
  const runs: WaveRun[] = [];
  // Asleep rate of the previous wave: the next wave's T leaves 30 % to spare. First guess: 25/s.
  let asleepRate = 25;
  const record = (run: WaveRun) => {
    runs.push(run);
    progress.done(run);
  };
  const floor = await floorWave(env, options, progress, asleepRate);
  asleepRate = floor.asleepRate;
  record(floor.run);
  const otp = (n: number) => Array.from({ length: n }, () => 'AUTHENTICATION' as const);
  const stackWorker = () => [env.guardWorkerPid()];
  const guard = await guardWave(env, 'guard', otp(options.count), options, progress, asleepRate, stackWorker);
  asleepRate = guard.asleepRate;
  record(guard.run);

  // Mixed and paced: the stack's worker makes way for one paced like production would be configured.
  const otps = Math.round(options.count * options.otpShare);
  const types: MessageTrafficType[] = [...otp(otps), ...Array.from({ length: options.count - otps }, () => 'PROMOTION' as const)];
  await env.stack.worker.stop();
  const rate = String(options.smsPerSecond);
  let workers = [await guardWorker(env, { FALLBACK_HTTP_MESSAGES_PER_SECOND: rate, TWILIO_MESSAGES_PER_SECOND: rate })];
  env.stack.sink.setRateLimit(options.smsPerSecond);
  try {
    record((await guardWave(env, 'mixed', shuffle(types), options, progress, asleepRate, () => workers.map((w) => w.process.pid))).run);
  } finally {
    env.stack.sink.setRateLimit(undefined);
    await Promise.all(workers.map((w) => w.stop()));
  }
  // A task queue keeps the last rate its pollers named until it unloads: these name an unreachable one.
  const unpaced = { FALLBACK_HTTP_MESSAGES_PER_SECOND: '100000', TWILIO_MESSAGES_PER_SECOND: '100000' };
  workers = [await guardWorker(env, unpaced), await guardWorker(env, unpaced)];
  try {
    record((await guardWave(env, 'twoWorkers', otp(options.count), options, progress, asleepRate, () => workers.map((w) => w.process.pid), 2)).run);
  } finally {
    await Promise.all(workers.map((w) => w.stop()));
    await env.stack.worker.start();
  }
  return runs;
}

function guardWorker(env: BenchEnv, extra: Record<string, string>): Promise<BenchWorker> {
  return startBenchWorker(env.guardWorkerEnv(extra), () => {});
}

function waveSecond(count: number, asleepRate: number): number {
  return Math.ceil((Date.now() + (1.3 * (count / asleepRate) + MARGIN_S) * 1000) / 1000) * 1000;
}

async function untilAsleep(env: BenchEnv, taskQueue: string, progress: WaveProgress, count: number): Promise<void> {
  progress.phase('asleep', count);
  for (;;) {
    const waiting = await workflowBacklog(env.stack.client, taskQueue);
    progress.tick(count - waiting);
    if (waiting === 0) return;
    await sleep(1000);
  }
}

async function gatedLoop(env: BenchEnv, taskQueue: string, count: number, concurrency: number, job: (i: number) => Promise<void>, progress: WaveProgress) {
  let backlog = 0;
  let gateOn = true;
  const gate = (async () => {
    while (gateOn) {
      backlog = await workflowBacklog(env.stack.client, taskQueue).catch(() => backlog);
      await sleep(500);
    }
  })();
  let done = 0;
  try {
    const r = await closedLoop(count, concurrency, async (i) => {
      while (backlog > MAX_BACKLOG) await sleep(100);
      await job(i);
      progress.tick(++done);
      return true;
    });
    if (r.failures) throw new Error(`${r.failures} of ${count} starts failed: ${r.firstError}`);
  } finally {
    gateOn = false;
    await gate;
  }
}

async function waitUntil(at: number, progress: WaveProgress) {
  const total = Math.max(0, Math.round((at - Date.now()) / 1000));
  progress.phase('wait for T', total);
  while (Date.now() < at) {
    await sleep(Math.min(1000, at - Date.now()));
    progress.tick(Math.round(total - (at - Date.now()) / 1000));
  }
}

async function floorWave(env: BenchEnv, options: WaveOptions, progress: WaveProgress, asleepRate: number): Promise<{ run: WaveRun; asleepRate: number }> {
  const { client } = env.stack;
  const tag = `floor-wave-${randomBytes(4).toString('hex')}`;
  const at = waveSecond(options.count, asleepRate);
  const t0 = Date.now();
  progress.phase('floor wave: start', options.count);
  await gatedLoop(env, FLOOR_TASK_QUEUE, options.count, options.concurrency, async (i) => {
    await client.workflow.start('floorSleepThenTwoActivities', { taskQueue: FLOOR_TASK_QUEUE, workflowId: `${tag}-${i}`, args: [at] });
  }, progress);
  await untilAsleep(env, FLOOR_TASK_QUEUE, progress, options.count);
  const rate = options.count / Math.max(1, (Date.now() - t0) / 1000);
  const beforeAllAsleep = Date.now() > at;
  await waitUntil(at, progress);
  const floorPids = () => [env.floorWorkerPid()];
  const cpu0 = cpuNow(env, floorPids);
  progress.phase('floor wave: drain', options.count);
  const query = `WorkflowId STARTS_WITH "${tag}-"`;
  const deadline = Date.now() + Math.max(600_000, options.count * 200);
  let closed = 0;
  while (closed < options.count && Date.now() < deadline) {
    await sleep(1000);
    closed = (await client.workflow.count(`${query} AND ExecutionStatus = "Completed"`)).count;
    progress.tick(closed);
  }
  const cpu = cpuPercent(cpu0, cpuNow(env, floorPids), (Date.now() - at) / 1000);
  const closeTimes: number[] = [];
  for await (const w of client.workflow.list({ query: `${query} AND ExecutionStatus = "Completed"`, pageSize: 1000 })) if (w.closeTime) closeTimes.push(w.closeTime.getTime() - at);
  const all = closeTimes.length === options.count;
  const drainSeconds = all ? Math.max(...closeTimes) / 1000 : NaN;
  return {
    asleepRate: rate,
    run: { kind: 'floor', count: options.count, at: new Date(at).toISOString(), beforeAllAsleep, drainSeconds, perSecond: options.count / drainSeconds, latency: latency(closeTimes), correct: all, workers: 1, cpuPercent: cpu },
  };
}

async function guardWave(
  env: BenchEnv,
  kind: WaveRun['kind'],
  types: MessageTrafficType[],
  options: WaveOptions,
  progress: WaveProgress,
  asleepRate: number,
  workerPids: () => (number | undefined)[],
  workers = 1,
): Promise<{ run: WaveRun; asleepRate: number }> {
  const { stack } = env;
  const agentId = `wave-${randomBytes(4).toString('hex')}`;
  const count = types.length;
  const at = waveSecond(count, asleepRate);
  const typeOf = new Map<string, MessageTrafficType>();
  const t0 = Date.now();
  const rateLimitedBefore = stack.sink.stats().rateLimited;
  progress.phase(`${kind} wave: track`, count);
  await gatedLoop(env, stack.taskQueue, count, options.concurrency, async (i) => {
    const messageId = `${agentId}-${i}`;
    const phone = `+1777${String(i).padStart(7, '0')}`;
    const trafficType = types[i] as MessageTrafficType;
    const { workflowId } = await stack.guards.track({ agentId, messageId, phone, staleAt: new Date(at), trafficType, fallbackText: 'Your code is 424242', policy: { lingerMs: 1000 } });
    typeOf.set(workflowId, trafficType);
    stack.sim.registerSent({ agentId, messageId, phone, plan: { deliverAfterMs: null } });
  }, progress);
  await untilAsleep(env, stack.taskQueue, progress, count);
  const rate = count / Math.max(1, (Date.now() - t0) / 1000);
  const beforeAllAsleep = Date.now() > at;
  await waitUntil(at, progress);
  const cpu0 = cpuNow(env, workerPids);

  progress.phase(`${kind} wave: drain`, count);
  const mine = () => stack.sink.sends.filter((s) => s.idempotencyKey !== undefined && typeOf.has(s.idempotencyKey));
  const deadline = Date.now() + Math.max(600_000, count * 200);
  const guardsTexted = () => new Set(mine().map((s) => s.idempotencyKey)).size;
  while (guardsTexted() < count && Date.now() < deadline) {
    await sleep(1000);
    progress.tick(guardsTexted());
  }
  const cpu = cpuPercent(cpu0, cpuNow(env, workerPids), (Date.now() - at) / 1000);
  // Every guard closes (its linger ends) before the next wave; then the outcomes are counted.
  const query = `RbmAgentId = "${agentId}"`;
  while ((await stack.client.workflow.count(`${query} AND ExecutionStatus = "Running"`)).count > 0 && Date.now() < deadline) await sleep(2000);
  const fallbackSent = (await stack.client.workflow.count(`${query} AND RbmOutcome = "FALLBACK_SENT"`)).count;
  const sends = mine();
  const smsGuards = guardsTexted();
  const since = (s: { at: number }) => s.at - at;
  const byType: Partial<Record<MessageTrafficType, Latency>> = {};
  const legsByType: WaveRun['legsByType'] = {};
  for (const t of new Set(types)) {
    byType[t] = latency(sends.filter((s) => typeOf.get(s.idempotencyKey as string) === t).map(since));
    legsByType[t] = await sampleLegs(stack.client, [...typeOf].filter(([, type]) => type === t).map(([id]) => id), at);
  }
  const perSecond = new Map<number, number>();
  for (const s of sends) perSecond.set(Math.floor(s.at / 1000), (perSecond.get(Math.floor(s.at / 1000)) ?? 0) + 1);
  const drainSeconds = smsGuards === count && sends.length ? Math.max(...sends.map(since)) / 1000 : NaN;
  return {
    asleepRate: rate,
    run: {
      kind,
      count,
      at: new Date(at).toISOString(),
      beforeAllAsleep,
      drainSeconds,
      perSecond: count / drainSeconds,
      latency: latency(sends.map(since)),
      byType,
      legsByType,
      smsSends: sends.length,
      smsGuards,
      fallbackSent,
      ...(kind === 'mixed' ? { pacing: { limitPerS: options.smsPerSecond, maxObservedPerS: Math.max(0, ...perSecond.values()), status429: stack.sink.stats().rateLimited - rateLimitedBefore } } : {}),
      correct: smsGuards === count && sends.length === count && fallbackSent === count,
      workers,
      cpuPercent: cpu,
    },
  };
}

// Histories read per traffic type after a wave: enough for medians, few enough to read in seconds.
const LEG_SAMPLE = 40;

/** Median legs (bench/lib/history.ts) of an evenly spread sample of the given guards. */
async function sampleLegs(client: Client, workflowIds: string[], at: number): Promise<Record<Leg, number> & { total: number; histories: number }> {
  const every = Math.max(1, Math.floor(workflowIds.length / LEG_SAMPLE));
  const sample = workflowIds.filter((_, i) => i % every === 0).slice(0, LEG_SAMPLE);
  const figures = (await Promise.all(sample.map((id) => readHistory(client, id, at)))).flatMap((f) => (f.afterDeadline ? [f.afterDeadline] : []));
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
  const legs = Object.fromEntries([...LEGS, 'total' as const].map((l) => [l, Math.round(median(figures.map((f) => f[l])))])) as Record<Leg, number> & { total: number };
  return { ...legs, histories: figures.length };
}

/** A fixed interleaving (not random: runs compare like with like): every k-th message an OTP. */
function shuffle<T>(items: T[]): T[] {
  const out: T[] = [];
  const a = items.filter((_, i) => i % 2 === 0);
  const b = items.filter((_, i) => i % 2 === 1);
  // Interleave from both ends so OTPs (first in the list) spread over the whole tracking order.
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if (i < a.length) out.push(a[i] as T);
    if (i < b.length) out.push(b[b.length - 1 - i] as T);
  }
  return out;
}
