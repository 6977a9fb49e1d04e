// Scenarios 1–3: the two floors and the guard's two paths, each as a closed loop of N messages with
// the same concurrency, on the same server. Throughput is the steady-state completion rate.
//
//   floor-signal      floorTimerOrSignal: started, then signalled D_deliver later by this process
//   delivered         rbmGuard tracked with a far deadline; the simulator delivers it D_deliver after
//                     it is sent and pushes DELIVERED, signed, to the webhook, which signals the guard
//   floor-activities  floorSleepThenTwoActivities: sleeps until now + D_stale, two trivial activities
//   revoke            rbmGuard tracked with staleAt = now + D_stale, never delivered: revoke (200),
//                     SMS accepted by the sink, FALLBACK_SENT, then a 1 s linger and closed
import { randomBytes } from 'node:crypto';
import type { Client } from '@temporalio/client';
import type { GuardStatus } from '../../workflows/contract.ts';
import { floorDoneSignal, floorSleepThenTwoActivities, floorTimerOrSignal } from '../workflows/floor.ts';
import { closedLoop, paced, sleep, steadyRate } from '../lib/drive.ts';
import { FLOOR_TASK_QUEUE, type BenchEnv } from '../lib/env.ts';
import { cpuSeconds, machineBusySeconds, peak, sampleRss } from '../lib/procs.ts';
import { latency, type Latency } from '../lib/stats.ts';

export const PATH_KINDS = ['floor-signal', 'delivered', 'floor-activities', 'revoke'] as const;
export type PathKind = (typeof PATH_KINDS)[number];

/** How long after it is sent the phone takes a message on the delivered path (and the floor's signal comes). */
export const DELIVER_AFTER_MS = 1000;
/** How far ahead the deadline lies on the revoke path (and the floor's sleep). */
export const STALE_IN_MS = 2000;
/** The delivered path's deadline: far enough never to fire. */
const FAR_MS = 10 * 60_000;
export const BENCH_AGENT = 'bench-agent';

export interface CpuSplit {
  /** CPU seconds used during the run by each process (tree). worker = the one running this path. */
  worker: number;
  /** The other worker (idle: the floor's during guard runs and the other way round). */
  idleWorker: number;
  server: number;
  /** The PostgreSQL cluster (postmaster and backends) on the PostgreSQL engine; 0 on the dev server. */
  postgres?: number;
  webhook: number;
  bench: number;
  /** Everything else on the machine (other people's processes): a run with much of it is noisy. */
  foreign: number;
  /** Wall seconds of the run: CPU / wall = cores used. */
  wall: number;
}

export interface PathRun {
  kind: PathKind;
  n: number;
  /** Closed loop: messages in flight. */
  concurrency?: number;
  /** Open loop: new messages per second. */
  ratePerSecond?: number;
  seconds: number;
  /** Steady-state completions per second (between 20 % and 80 % of completions); see steadyRate. */
  perSecond: number;
  /** n / whole run (ramp-up and drain included). */
  overallPerSecond: number;
  failures: number;
  firstError?: string;
  /** Start call → workflow closed, per message (ms). */
  endToEnd: Latency;
  /** Revoke path: staleAt → SMS accepted by the sink (ms), per message. */
  deadlineToSms?: Latency;
  deadlineToSmsSamples?: number[];
  rssPeakMiB: { worker: number; server: number };
  cpu: CpuSplit;
  /** A spread of this run's workflow ids, for history analysis. */
  sampleIds: { workflowId: string; staleAtMs?: number }[];
}

const phoneFor = (i: number) => `+1555${String(i % 10_000_000).padStart(7, '0')}`;

export interface PathLoad {
  /** Closed loop: this many messages in flight. */
  concurrency?: number;
  /** Open loop: this many new messages per second (instead of a concurrency). */
  ratePerSecond?: number;
}

export async function runPath(
  env: BenchEnv,
  kind: PathKind,
  n: number,
  load: PathLoad,
  onDone: (ok: boolean) => void,
  samples = 30,
): Promise<PathRun> {
  const { stack } = env;
  const client: Client = stack.client;
  const tag = `${kind}-${randomBytes(4).toString('hex')}`;
  const staleAt = new Map<string, number>();
  const sampleEvery = Math.max(1, Math.floor(n / samples));
  const sampleIds: PathRun['sampleIds'] = [];
  const sampleId = (i: number, workflowId: string, staleAtMs?: number) => {
    if (i % sampleEvery === 0 && sampleIds.length < samples) sampleIds.push({ workflowId, staleAtMs });
  };

  const job = async (i: number): Promise<boolean> => {
    switch (kind) {
      case 'floor-signal': {
        const workflowId = `bench/${tag}/${i}`;
        const handle = await client.workflow.start(floorTimerOrSignal, { workflowId, taskQueue: FLOOR_TASK_QUEUE, args: [FAR_MS] });
        const result = handle.result();
        await sleep(DELIVER_AFTER_MS);
        await handle.signal(floorDoneSignal);
        sampleId(i, workflowId);
        return (await result) === true;
      }
      case 'floor-activities': {
        const workflowId = `bench/${tag}/${i}`;
        const wakeAt = Date.now() + STALE_IN_MS;
        const handle = await client.workflow.start(floorSleepThenTwoActivities, { workflowId, taskQueue: FLOOR_TASK_QUEUE, args: [wakeAt] });
        sampleId(i, workflowId, wakeAt);
        return (await handle.result()) === 3;
      }
      case 'delivered':
      case 'revoke': {
        const messageId = `${tag}-${i}`;
        const phone = phoneFor(i);
        const deadline = Date.now() + (kind === 'delivered' ? FAR_MS : STALE_IN_MS);
        const { workflowId } = await stack.guards.track({
          agentId: BENCH_AGENT,
          messageId,
          phone,
          staleAt: new Date(deadline),
          trafficType: 'AUTHENTICATION',
          fallbackText: 'Your code is 424242',
            // Close soon after the decision: the linger's timer and its workflow task are still paid for
          // (the default 10 min only keeps the guard open longer); the server fires timers under 1 s at ~1 s.
          policy: { lingerMs: 1000 },
        });
        // The backend sent it just now; the phone takes it D_deliver later (or never).
        stack.sim.registerSent({ agentId: BENCH_AGENT, messageId, phone, plan: { deliverAfterMs: kind === 'delivered' ? DELIVER_AFTER_MS : null } });
        staleAt.set(workflowId, deadline);
        sampleId(i, workflowId, deadline);
        const status = (await client.workflow.getHandle(workflowId).result()) as GuardStatus;
        return status.outcome === (kind === 'delivered' ? 'DELIVERED' : 'FALLBACK_SENT');
      }
    }
  };

  const rss = sampleRss({ worker: () => (kind.startsWith('floor') ? env.floorWorkerPid() : env.guardWorkerPid()), server: env.serverPid }, 500);
  const floor = kind.startsWith('floor');
  const pids = {
    worker: floor ? env.floorWorkerPid() : env.guardWorkerPid(),
    idleWorker: floor ? env.guardWorkerPid() : env.floorWorkerPid(),
    server: env.serverPid(),
    webhook: env.webhookPid(),
    postgres: env.postgresPid(),
  };
  const cpuNow = () => ({
    worker: cpuSeconds(pids.worker),
    idleWorker: cpuSeconds(pids.idleWorker),
    server: cpuSeconds(pids.server),
    webhook: cpuSeconds(pids.webhook),
    postgres: pids.postgres === undefined ? 0 : cpuSeconds(pids.postgres),
    bench: process.cpuUsage(),
    machine: machineBusySeconds(),
  });
  const cpu0 = cpuNow();
  const result = load.ratePerSecond ? await paced(n, load.ratePerSecond, job, onDone) : await closedLoop(n, load.concurrency ?? 1, job, onDone);
  const cpu1 = cpuNow();
  const benchCpu = process.cpuUsage(cpu0.bench);
  const cpu: CpuSplit = {
    worker: cpu1.worker - cpu0.worker,
    idleWorker: cpu1.idleWorker - cpu0.idleWorker,
    server: cpu1.server - cpu0.server,
    webhook: cpu1.webhook - cpu0.webhook,
    postgres: cpu1.postgres - cpu0.postgres,
    bench: (benchCpu.user + benchCpu.system) / 1e6,
    foreign: 0,
    wall: result.seconds,
  };
  const ours = cpu.worker + cpu.idleWorker + cpu.server + (cpu.postgres ?? 0) + cpu.webhook + cpu.bench;
  cpu.foreign = Math.max(0, cpu1.machine - cpu0.machine - ours);
  const rssSamples = rss.stop();

  let deadlineToSmsSamples: number[] | undefined;
  if (kind === 'revoke') {
    deadlineToSmsSamples = [];
    for (const send of stack.sink.sends) {
      const deadline = send.idempotencyKey ? staleAt.get(send.idempotencyKey) : undefined;
      if (deadline !== undefined) deadlineToSmsSamples.push(send.at - deadline);
    }
  }
  return {
    kind,
    n,
    concurrency: load.ratePerSecond ? undefined : load.concurrency,
    ratePerSecond: load.ratePerSecond,
    seconds: result.seconds,
    perSecond: load.ratePerSecond ? n / result.seconds : steadyRate(result.doneAtMs),
    overallPerSecond: n / result.seconds,
    failures: result.failures,
    firstError: result.firstError,
    endToEnd: latency(result.latenciesMs),
    deadlineToSms: deadlineToSmsSamples ? latency(deadlineToSmsSamples) : undefined,
    deadlineToSmsSamples,
    rssPeakMiB: { worker: peak(rssSamples, 'worker'), server: peak(rssSamples, 'server') },
    cpu,
    sampleIds,
  };
}
