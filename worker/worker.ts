// Builds the guard worker: the prebuilt workflow bundle (or the source, bundled at start) and the
// activities wired to real RBM and SMS clients. Tests use this same function with the simulator.
import type { DataConverter } from '@temporalio/common';
import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import { smsTaskQueue, type GuardActivities } from '../workflows/contract.ts';
import { workflowsPath } from './paths.ts';
import { guardMetricSinks } from './metric-sinks.ts';

export interface GuardWorkerOptions {
  connection: NativeConnection;
  namespace: string;
  taskQueue: string;
  activities: GuardActivities;
  /**
   * `dataConverter(codec)` from client/codec.ts: the same codec as the clients, or histories are
   * unreadable. Required so no worker is built without deciding. The codec runs in the worker's
   * main thread, outside the workflow sandbox, so it needs no bundling.
   */
  dataConverter: DataConverter;
  /** A prebuilt bundle (production, tests); without it the worker bundles the source at start. */
  workflowBundlePath?: string;
  /** The entry point bundled at start when there is no prebuilt bundle (the bench's carries its floors). */
  workflowsPath?: string;
  shutdownGraceTimeMs?: number;
  /**
   * The SMS provider's throughput limit (messages/s for the account or sender), held across every
   * worker: the server hands out the SMS queue's tasks no faster (maxTaskQueueActivitiesPerSecond).
   * Unset: this worker names no rate, and the queue keeps the one its pollers last named (none ever:
   * unpaced); to lift a limit, name a high one. config: TWILIO_ / FALLBACK_HTTP_MESSAGES_PER_SECOND.
   */
  smsPerSecond?: number;
  /** Tuning knobs the benchmarks measured, over DEFAULT_TUNING; see bench/README.md. */
  tuning?: Partial<Pick<WorkerOptions, 'maxCachedWorkflows' | 'stickyQueueScheduleToStartTimeout' | 'maxConcurrentActivityTaskExecutions' | 'maxConcurrentWorkflowTaskExecutions' | 'workflowTaskPollerBehavior' | 'workflowThreadPoolSize' | 'nonStickyToStickyPollRatio'>>;
}

/**
 * maxCachedWorkflows: 500 instead of the SDK's heap-derived default (≈2,300 on a 4 GiB heap). A
 * cached guard costs the worker ~0.4 MB; a sleeping guard needs no cache (waking one replays a
 * history of a few events). Measured with 3,000 sleeping guards: worker RSS 1,066 → 400 MiB, same
 * throughput on both paths (bench/README.md).
 *
 * stickyQueueScheduleToStartTimeout: 60 s instead of the SDK's 10 s (config WORKER_STICKY_TIMEOUT_MS).
 * A guard wakes on the sticky queue of the worker that put it to sleep (the server keeps that queue
 * even after the worker evicted the guard). In a deadline wave that queue holds more than 10 s of
 * work, so with 10 s most wake-ups timed out, were written to history again and re-queued: 10 s and
 * extra server work per guard. Measured with 120 s (bench, waves of 2,000, PostgreSQL): 21.4 → 34.6
 * guards/s, the 10 s leg gone; but a worker SIGKILLed in a chaos wave left its queued wake-ups 120 s
 * (guards closed up to 161 s after their deadline). 60 s halves that price.
 */
export const DEFAULT_TUNING: NonNullable<GuardWorkerOptions['tuning']> = { maxCachedWorkflows: 500, stickyQueueScheduleToStartTimeout: 60_000 };

/**
 * The guard's two pollers, run and stopped together: the guard's task queue (workflows, the RBM
 * activities, and the SMS of guards before rules 4) and the paced SMS queue (names.ts, smsTaskQueue).
 */
export interface GuardWorker {
  run(): Promise<void>;
  /** Runs until the promise (or the function's) settles, then shuts down and waits for both pollers. */
  runUntil<R>(work: Promise<R> | (() => Promise<R>)): Promise<R>;
  shutdown(): void;
  getState(): ReturnType<Worker['getState']>;
}

export async function createGuardWorker(options: GuardWorkerOptions): Promise<GuardWorker> {
  const guards = await Worker.create({
    connection: options.connection,
    namespace: options.namespace,
    taskQueue: options.taskQueue,
    ...(options.workflowBundlePath
      ? { workflowBundle: { codePath: options.workflowBundlePath } }
      : { workflowsPath: options.workflowsPath ?? workflowsPath }),
    activities: { ...options.activities },
    sinks: guardMetricSinks(),
    dataConverter: options.dataConverter,
    shutdownGraceTime: options.shutdownGraceTimeMs ?? 10_000,
    ...DEFAULT_TUNING,
    ...options.tuning,
  });
  const sms = await Worker.create({
    connection: options.connection,
    namespace: options.namespace,
    taskQueue: smsTaskQueue(options.taskQueue),
    activities: { sendFallback: options.activities.sendFallback },
    dataConverter: options.dataConverter,
    shutdownGraceTime: options.shutdownGraceTimeMs ?? 10_000,
    ...(options.smsPerSecond ? { maxTaskQueueActivitiesPerSecond: options.smsPerSecond } : {}),
  });
  const workers = [guards, sms];
  const shutdown = () => {
    for (const w of workers) if (w.getState() === 'RUNNING') w.shutdown();
  };
  const run = async () => {
    // One poller failing stops the other: a worker that takes guards but never their SMS is worse than none.
    const runs = workers.map((w) => w.run().catch((err: unknown) => { shutdown(); throw err; }));
    await Promise.all(runs);
  };
  return {
    run,
    async runUntil<R>(work: Promise<R> | (() => Promise<R>)): Promise<R> {
      const running = run();
      const promise = typeof work === 'function' ? work() : work;
      try {
        return await Promise.race([promise, running.then(() => { throw new Error('worker stopped before the work was done'); })]);
      } finally {
        shutdown();
        await running.catch(() => undefined);
      }
    },
    shutdown,
    getState: () => guards.getState(),
  };
}
