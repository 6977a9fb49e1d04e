// Builds the guard worker: the prebuilt workflow bundle (or the source, bundled at start) and the
// activities wired to real RBM and SMS clients. Tests use this same function with the simulator.
import type { DataConverter } from '@temporalio/common';
import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import type { GuardActivities } from '../workflows/contract.ts';
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
  /** Tuning knobs the benchmarks measured, over DEFAULT_TUNING; see bench/README.md. */
  tuning?: Partial<Pick<WorkerOptions, 'maxCachedWorkflows' | 'maxConcurrentActivityTaskExecutions' | 'maxConcurrentWorkflowTaskExecutions' | 'workflowTaskPollerBehavior' | 'workflowThreadPoolSize' | 'nonStickyToStickyPollRatio'>>;
}

/**
 * maxCachedWorkflows: 500 instead of the SDK's heap-derived default (≈2,300 on a 4 GiB heap). A
 * cached guard costs the worker ~0.4 MB; a sleeping guard needs no cache (waking one replays a
 * history of a few events). Measured with 3,000 sleeping guards: worker RSS 1,066 → 400 MiB, same
 * throughput on both paths (bench/README.md).
 */
export const DEFAULT_TUNING: NonNullable<GuardWorkerOptions['tuning']> = { maxCachedWorkflows: 500 };

export async function createGuardWorker(options: GuardWorkerOptions): Promise<Worker> {
  return Worker.create({
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
}
