// Builds the guard worker: the prebuilt workflow bundle (or the source, bundled at start) and the
// activities wired to real RBM and SMS clients. Tests use this same function with the simulator.
import type { DataConverter } from '@temporalio/common';
import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import type { GuardActivities } from '../workflows/contract.ts';
import { workflowsPath } from './paths.ts';

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
  shutdownGraceTimeMs?: number;
  /** Tuning knobs the benchmarks measured; see bench/README.md. */
  tuning?: Partial<Pick<WorkerOptions, 'maxCachedWorkflows' | 'maxConcurrentActivityTaskExecutions' | 'maxConcurrentWorkflowTaskExecutions'>>;
}

export async function createGuardWorker(options: GuardWorkerOptions): Promise<Worker> {
  return Worker.create({
    connection: options.connection,
    namespace: options.namespace,
    taskQueue: options.taskQueue,
    ...(options.workflowBundlePath
      ? { workflowBundle: { codePath: options.workflowBundlePath } }
      : { workflowsPath }),
    activities: { ...options.activities },
    dataConverter: options.dataConverter,
    shutdownGraceTime: options.shutdownGraceTimeMs ?? 10_000,
    ...options.tuning,
  });
}
