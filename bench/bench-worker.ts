// A worker process for the benchmark: the guard's activities wired exactly as service/main.ts wires
// them, plus the floor's trivial activity, built by the same createGuardWorker (so the same tuning
// defaults apply). bench.ts runs the floor workflows on it, and the guards too when asked to
// (`--guard-worker bench`: to try tuning knobs or read the SDK's metrics on 127.0.0.1).
//
// Environment: the usual config (TEMPORAL_ADDRESS, TEMPORAL_TASK_QUEUE, RBM_*, FALLBACK_*), plus
//   BENCH_WORKFLOW_BUNDLE       the bench's prebuilt bundle, guard + floors (bench/lib/env.ts builds it once)
//   BENCH_WORKER_TUNING         JSON of GuardWorkerOptions['tuning'] overrides, e.g. {"maxCachedWorkflows":500}
//   BENCH_METRICS_PORT          serve the SDK's Prometheus metrics on 127.0.0.1:<port>
import { fileURLToPath } from 'node:url';
import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import { loadConfig, smsPerSecond } from '../config/index.ts';
import { createActivities } from '../activities/index.ts';
import { createFallbackChannel } from '../activities/fallback.ts';
import { createRbmClient } from '../activities/rbm.ts';
import { createGuardWorker, type GuardWorkerOptions } from '../worker/worker.ts';
import { codecFromConfig, dataConverter } from '../client/codec.ts';
import type { GuardActivities } from '../workflows/contract.ts';
import { floorActivities } from './lib/floor-activities.ts';

const benchWorkflowsPath = fileURLToPath(new URL('./workflows/index.ts', import.meta.url));

async function main() {
  const config = loadConfig();
  const tuning = JSON.parse(process.env.BENCH_WORKER_TUNING || '{}') as GuardWorkerOptions['tuning'];
  const metricsPort = process.env.BENCH_METRICS_PORT;
  Runtime.install({
    logger: new DefaultLogger('WARN'),
    telemetryOptions: metricsPort ? { metrics: { prometheus: { bindAddress: `127.0.0.1:${metricsPort}` } } } : undefined,
  });
  const connection = await NativeConnection.connect({ address: config.TEMPORAL_ADDRESS ?? `127.0.0.1:${config.TEMPORAL_DEV_PORT}` });
  const guardActivities = createActivities({ rbm: createRbmClient({ config }), fallback: createFallbackChannel(config) });
  const worker = await createGuardWorker({
    connection,
    namespace: config.TEMPORAL_NAMESPACE,
    taskQueue: config.TEMPORAL_TASK_QUEUE,
    // createGuardWorker is typed for the guard's activities; the floor's ride along beside them.
    activities: { ...guardActivities, ...floorActivities } as GuardActivities,
    dataConverter: dataConverter(codecFromConfig(config)),
    workflowBundlePath: process.env.BENCH_WORKFLOW_BUNDLE,
    workflowsPath: benchWorkflowsPath,
    shutdownGraceTimeMs: 2_000,
    tuning,
    smsPerSecond: smsPerSecond(config),
  });
  const running = worker.run();
  console.log(`bench worker running on ${config.TEMPORAL_TASK_QUEUE} ${JSON.stringify(tuning ?? {})}`);
  const stop = () => {
    if (worker.getState() === 'RUNNING') worker.shutdown();
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  await running;
  await connection.close();
  process.exit(0);
}

await main();
