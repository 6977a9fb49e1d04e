// The benchmark's environment: the local stack (dev server, simulator, SMS sink, worker, webhook)
// plus a bench worker for the floor workflows on the same server, started the way the stack starts
// its own children (tsx, same createGuardWorker defaults). Bench workers load the bench's own bundle:
// the guard as production bundles it, plus the floor workflows (bench/workflows/index.ts).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleWorkflows } from '../../worker/paths.ts';
import { startLocalStack, type LocalStack } from '../../dev/stack/local-stack.ts';
import { postgresBinDir } from '../../service/engine/postgres-cluster.ts';
import type { EngineName } from '../../service/engine/select.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const benchWorkflowsPath = fileURLToPath(new URL('../workflows/index.ts', import.meta.url));

export const FLOOR_TASK_QUEUE = 'bench-floor';

export interface BenchWorker {
  readonly process: ChildProcess;
  stop(): Promise<void>;
}

export interface EnvOptions {
  dataDir: string;
  /** The Temporal engine of the stack: the dev server (SQLite) or the PostgreSQL engine. */
  engine: EngineName;
  /** Passed to the dev server; undefined = the embedded default (service/engine/dev-server.ts). */
  sqlitePragmas?: string[];
  /** 'stack' = guards on the stack's own worker (service/main.ts); 'bench' = on a bench worker. */
  guardWorker: 'stack' | 'bench';
  /** Worker tuning overrides for bench workers (guards with guardWorker 'bench', and the floors). */
  tuning?: Record<string, unknown>;
  /** Serve the SDK metrics of the bench guard worker on 127.0.0.1:<port>. */
  metricsPort?: number;
  /** Extra environment for the stack's worker and webhook. */
  childEnv?: Record<string, string>;
  /** Node flags for the bench workers, e.g. --cpu-prof (not allowed in NODE_OPTIONS). */
  workerNodeArgs?: string[];
  log?: (source: string, line: string) => void;
}

export interface BenchEnv {
  stack: LocalStack;
  /** The environment of another guard worker on this stack (bench/bench-worker.ts), over `extra`. */
  guardWorkerEnv(extra?: Record<string, string>): Record<string, string>;
  floorWorker: BenchWorker;
  /** The guards' worker: the stack's (undefined here) or a bench worker. */
  guardBenchWorker: BenchWorker | undefined;
  guardWorkerPid(): number | undefined;
  floorWorkerPid(): number | undefined;
  serverPid(): number | undefined;
  webhookPid(): number | undefined;
  /** The PostgreSQL postmaster (its backends are its children); undefined on the dev server. */
  postgresPid(): number | undefined;
  /** Bytes of both Temporal databases (pg_database_size); NaN on the dev server or when psql fails. */
  postgresBytes(): number;
  options: EnvOptions;
  stop(): Promise<void>;
}

export async function startBenchWorker(env: Record<string, string>, log: (line: string) => void, nodeArgs: string[] = []): Promise<BenchWorker> {
  // As the stack starts its services: node with tsx's loader, no wrapper process in between.
  const child = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', 'bench/bench-worker.ts'], { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('bench worker did not start within 60 s')), 60_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`bench worker exited at start with code ${code}`));
    });
    child.stdout?.on('data', (chunk: Buffer) => {
      const text = chunk.toString();
      log(text);
      if (text.includes('bench worker running')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.stderr?.on('data', (chunk: Buffer) => log(chunk.toString()));
  });
  return {
    process: child,
    async stop() {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

export async function startBenchEnv(options: EnvOptions): Promise<BenchEnv> {
  const log = options.log ?? (() => {});
  const stack = await startLocalStack({
    dataDir: options.dataDir,
    engine: options.engine,
    sqlitePragmas: options.sqlitePragmas,
    env: { LOG_LEVEL: 'error', ...options.childEnv },
    log,
  });
  const benchBundlePath = join(options.dataDir, 'bench-workflow-bundle.js');
  await bundleWorkflows(benchBundlePath, benchWorkflowsPath);
  const benchEnv = (taskQueue: string, metricsPort?: number): Record<string, string> => ({
    ...stack.env,
    BENCH_WORKFLOW_BUNDLE: benchBundlePath,
    TEMPORAL_TASK_QUEUE: taskQueue,
    BENCH_WORKER_TUNING: JSON.stringify(options.tuning ?? {}),
    ...(metricsPort ? { BENCH_METRICS_PORT: String(metricsPort) } : {}),
  });
  let guardBenchWorker: BenchWorker | undefined;
  let floorWorker: BenchWorker | undefined;
  try {
    floorWorker = await startBenchWorker(benchEnv(FLOOR_TASK_QUEUE), (l) => log('floor-worker', l), options.workerNodeArgs);
    if (options.guardWorker === 'bench') {
      await stack.worker.stop();
      guardBenchWorker = await startBenchWorker(benchEnv(stack.taskQueue, options.metricsPort), (l) => log('guard-worker', l), options.workerNodeArgs);
    }
  } catch (err) {
    await floorWorker?.stop();
    await stack.stop();
    throw err;
  }
  const floor = floorWorker;
  return {
    stack,
    guardWorkerEnv: (extra = {}) => ({ ...benchEnv(stack.taskQueue), ...extra }),
    floorWorker: floor,
    guardBenchWorker,
    guardWorkerPid: () => (guardBenchWorker ? guardBenchWorker.process.pid : stack.worker.process?.pid),
    floorWorkerPid: () => floor.process.pid,
    serverPid: () => stack.devServer.process.pid,
    webhookPid: () => stack.webhook.process?.pid,
    postgresPid: () => stack.postgres?.postgres.process.pid,
    postgresBytes: () => (stack.postgres ? databaseBytes(stack.postgres.postgres) : NaN),
    options,
    async stop() {
      await Promise.allSettled([floor.stop(), guardBenchWorker?.stop()]);
      await stack.stop();
    },
  };
}

/** pg_database_size of Temporal's two databases, through psql (the cluster listens on TCP only). */
function databaseBytes(db: { host: string; port: number; user: string; password: string }): number {
  const sql = "SELECT pg_database_size('temporal') + pg_database_size('temporal_visibility')";
  const r = spawnSync(join(postgresBinDir(), 'psql'), ['-h', db.host, '-p', String(db.port), '-U', db.user, '-d', 'temporal', '-tAc', sql], {
    env: { ...process.env, PGPASSWORD: db.password },
    encoding: 'utf8',
    timeout: 30_000,
  });
  const bytes = Number(r.stdout?.trim());
  return r.status === 0 && Number.isFinite(bytes) ? bytes : NaN;
}
