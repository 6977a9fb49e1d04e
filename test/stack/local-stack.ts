// The whole system on one machine, as separate processes over real HTTP and gRPC: the embedded
// Temporal dev server (SQLite file), the RBM simulator and SMS sink (in this process), and the
// worker and webhook adapter as child processes started exactly as `npm start --only …` does.
// Used by the demo, the benchmarks and the chaos run; each child can be killed and restarted.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client, Connection } from '@temporalio/client';
import { bundleWorkflowCode } from '@temporalio/worker';
import { workflowsPath } from '../../worker/paths.ts';
import { GuardClient } from '../../client/guard-client.ts';
import { freePort, startDevServer, type DevServer } from '../../worker/dev-server.ts';
import { startRbmSimulator, type RbmSimulator, type RbmSimulatorOptions } from '../sim/rbm-simulator.ts';
import { startSmsSink, type SmsSink, type SmsSinkOptions } from '../sim/sms-sink.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const tsx = join(root, 'node_modules/.bin/tsx');

export interface LocalStackOptions {
  /** Folder for the SQLite file and keys; default a fresh temp folder. */
  dataDir?: string;
  /** Web UI port; undefined = headless. */
  uiPort?: number;
  sim?: RbmSimulatorOptions;
  sink?: SmsSinkOptions;
  taskQueue?: string;
  /** Extra environment for the worker and webhook processes. */
  env?: Record<string, string>;
  sqlitePragmas?: string[];
  /** Where child process output goes (default: discarded). */
  log?: (source: string, line: string) => void;
}

export interface ChildService {
  readonly name: string;
  readonly process: ChildProcess | undefined;
  start(): Promise<void>;
  /** SIGKILL: no graceful shutdown, as a crash would. */
  kill(): Promise<void>;
  stop(): Promise<void>;
}

export interface LocalStack {
  dataDir: string;
  devServer: DevServer;
  sim: RbmSimulator;
  sink: SmsSink;
  worker: ChildService;
  webhook: ChildService;
  webhookUrl: string;
  client: Client;
  guards: GuardClient;
  taskQueue: string;
  env: Record<string, string>;
  /** Stops and restarts the Temporal dev server on the same SQLite file. */
  restartTemporal(downMs?: number): Promise<void>;
  stop(): Promise<void>;
}

export async function startLocalStack(options: LocalStackOptions = {}): Promise<LocalStack> {
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'rbm-guard-stack-'));
  mkdirSync(dataDir, { recursive: true });
  const dbFile = join(dataDir, 'temporal.db');
  const log = options.log ?? (() => {});
  const port = await freePort();
  let devServer = await startDevServer({ dbFile, port, uiPort: options.uiPort, sqlitePragmas: options.sqlitePragmas, log: (l) => log('temporal', l) });
  const webhookPort = await freePort();
  const webhookUrl = `http://127.0.0.1:${webhookPort}`;
  const clientToken = `demo-token-${Math.random().toString(36).slice(2)}`;
  const sim = await startRbmSimulator({ webhookUrl: `${webhookUrl}/rbm/events`, clientToken, defaultPlan: { deliverAfterMs: null }, ...options.sim });
  const sink = await startSmsSink(options.sink);
  const taskQueue = options.taskQueue ?? 'rbm-guard';
  // Bundle the workflow code once: every worker (re)start then loads it instead of re-bundling.
  const workflowBundlePath = join(dataDir, 'workflow-bundle.js');
  const { code } = await bundleWorkflowCode({ workflowsPath, logger: quietBundler });
  writeFileSync(workflowBundlePath, code);

  const env: Record<string, string> = {
    TEMPORAL_ADDRESS: devServer.address,
    TEMPORAL_TASK_QUEUE: taskQueue,
    RBM_API_BASE_URL: sim.url,
    RBM_TOKEN_URL: sim.tokenUrl,
    GOOGLE_APPLICATION_CREDENTIALS: sim.writeServiceAccountKeyFile(dataDir),
    RBM_CLIENT_TOKEN: clientToken,
    RBM_REQUEST_TIMEOUT_MS: '1000',
    WEBHOOK_PORT: String(webhookPort),
    WEBHOOK_HOST: '127.0.0.1',
    FALLBACK_PROVIDER: 'http',
    FALLBACK_HTTP_URL: `${sink.url}/messages`,
    FALLBACK_REQUEST_TIMEOUT_MS: '2000',
    LOG_LEVEL: 'warn',
    RBM_GUARD_WORKFLOW_BUNDLE: workflowBundlePath,
    ...options.env,
  };

  const worker = childService('worker', ['worker/main.ts', '--only', 'worker'], env, log, async () => {});
  const webhook = childService('webhook', ['worker/main.ts', '--only', 'webhook'], env, log, () => waitForHttp(`${webhookUrl}/healthz`));
  await Promise.all([worker.start(), webhook.start()]);

  const connection = await Connection.connect({ address: devServer.address });
  const client = new Client({ connection });

  return {
    dataDir,
    get devServer() {
      return devServer;
    },
    sim,
    sink,
    worker,
    webhook,
    webhookUrl,
    client,
    guards: new GuardClient(client, taskQueue),
    taskQueue,
    env,
    async restartTemporal(downMs = 0) {
      await devServer.stop();
      if (downMs) await new Promise((r) => setTimeout(r, downMs));
      devServer = await startDevServer({ dbFile, port, uiPort: options.uiPort, sqlitePragmas: options.sqlitePragmas, log: (l) => log('temporal', l) });
    },
    async stop() {
      await Promise.allSettled([webhook.stop(), worker.stop()]);
      await connection.close();
      await sim.close();
      await sink.close();
      await devServer.stop();
    },
  };
}

function childService(
  name: string,
  args: string[],
  env: Record<string, string>,
  log: (source: string, line: string) => void,
  ready: () => Promise<void>,
): ChildService {
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  const service: ChildService = {
    name,
    get process() {
      return child;
    },
    async start() {
      const proc = spawn(tsx, args, { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
      child = proc;
      exited = new Promise((resolve) => proc.once('exit', () => resolve()));
      let started = false;
      const onLine = (chunk: Buffer) => {
        const text = chunk.toString();
        if (text.includes('rbm-guard is running')) started = true;
        log(name, text);
      };
      proc.stdout?.on('data', onLine);
      proc.stderr?.on('data', (chunk: Buffer) => log(name, chunk.toString()));
      const deadline = Date.now() + 60_000;
      while (!started) {
        if (proc.exitCode !== null) throw new Error(`${name} exited at start with code ${proc.exitCode}`);
        if (Date.now() > deadline) throw new Error(`${name} did not start within 60 s`);
        await new Promise((r) => setTimeout(r, 50));
      }
      await ready();
    },
    async kill() {
      if (!child || child.exitCode !== null) return;
      child.kill('SIGKILL');
      await exited;
    },
    async stop() {
      if (!child || child.exitCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child?.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
  return service;
}

async function waitForHttp(url: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const res = await fetch(url);
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`${url} not answering after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const quietBundler = {
  log: () => {},
  trace: () => {},
  debug: () => {},
  info: () => {},
  warn: () => {},
  error: (m: string) => console.error(m),
};
