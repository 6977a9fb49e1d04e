// The whole system on one machine, as separate processes over real HTTP and gRPC: the embedded
// Temporal dev server (SQLite file), the RBM simulator and SMS sink (in this process), and the
// worker and webhook adapter as child processes started exactly as `npm start --only …` does.
// Every process shares one encryption key ring (by default a dev key generated in the data folder);
// with a Web UI, a codec server runs in this process so the UI shows payloads in clear.
// Used by the demo, the benchmarks and the chaos run; each child can be killed and restarted.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client, Connection } from '@temporalio/client';
import { bundleWorkflows } from '../../worker/paths.ts';
import { GuardClient } from '../../client/guard-client.ts';
import { codecFromConfig, dataConverter, ensureDevKeyFile, devKeyFile, type EncryptionCodec } from '../../client/codec.ts';
import { startCodecServer, type CodecServer } from '../../service/codec.ts';
import { embeddedUiOrigins, loadConfig } from '../../config/index.ts';
import { freePort, startDevServer, type DevServer } from '../../service/engine/dev-server.ts';
import { startPostgresEngine, type PostgresEngine } from '../../service/engine/postgres.ts';
import { engineFromEnv, type EngineName } from '../../service/engine/select.ts';
import { startRbmSimulator, type RbmSimulator, type RbmSimulatorOptions } from '../sim/rbm-simulator.ts';
import { startSmsSink, type SmsSink, type SmsSinkOptions } from '../sim/sms-sink.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
// The service runs in this very process (node + tsx's loader), not under the `tsx` CLI: the CLI is a
// wrapper that spawns node as its own child, so a SIGKILL would hit only the wrapper and leave the
// service running as an orphan — not the crash kill() promises.
const nodeArgs = ['--import', 'tsx'];

/** Short request timeouts, so that hung RBM and SMS calls cost the stack's runs seconds, not minutes. */
export const STACK_REQUEST_TIMEOUTS = { rbmMs: 1_000, fallbackMs: 2_000 } as const;

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
  /**
   * The encryption variables every process of the stack gets (see keyRingEnv in client/codec.ts).
   * Default: a dev key generated in dataDir. `{ RBM_GUARD_ENCRYPTION: 'off' }` runs in clear.
   */
  encryptionEnv?: Record<string, string>;
  sqlitePragmas?: string[];
  /** The Temporal engine; default RBM_GUARD_ENGINE (`dev`: the CLI's dev server, `postgres`: service/engine/postgres.ts). */
  engine?: EngineName;
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
  /** The PostgreSQL engine's handles (server and cluster), null on the dev server. */
  postgres: PostgresEngine | null;
  sim: RbmSimulator;
  sink: SmsSink;
  worker: ChildService;
  webhook: ChildService;
  webhookUrl: string;
  /** The webhook's Prometheus endpoint (WEBHOOK_METRICS_PORT, on loopback). */
  webhookMetricsUrl: string;
  client: Client;
  guards: GuardClient;
  taskQueue: string;
  env: Record<string, string>;
  /** The codec every process uses (null: encryption off). */
  codec: EncryptionCodec | null;
  /** The codec server the UI decrypts through (only with a UI port), e.g. http://127.0.0.1:41234. */
  codecUrl: string | null;
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

  // One key ring for every process. Each encryption variable is set so none leaks in from this
  // process's environment.
  let encryptionEnv = options.encryptionEnv;
  if (!encryptionEnv) {
    const keyFile = devKeyFile(dataDir);
    ensureDevKeyFile(keyFile);
    encryptionEnv = { RBM_GUARD_ENCRYPTION_KEY_FILE: keyFile };
  }
  encryptionEnv = { RBM_GUARD_ENCRYPTION: 'on', RBM_GUARD_ENCRYPTION_KEYS: '', RBM_GUARD_ENCRYPTION_KEY_FILE: '', RBM_GUARD_ENCRYPTION_KEY_ID: '', ...encryptionEnv };
  const codec = codecFromConfig(loadConfig(encryptionEnv));
  // With a UI: the codec server first, so the dev server can hand its endpoint (with a fresh token) to the UI.
  let codecServer: CodecServer | undefined;
  if (codec && options.uiPort !== undefined) {
    codecServer = await startCodecServer({ codec, token: randomBytes(24).toString('base64url'), origins: embeddedUiOrigins(options.uiPort), host: '127.0.0.1', port: 0 });
  }
  const engine = options.engine ?? engineFromEnv();
  let postgres: PostgresEngine | null = null;
  // Temp folders are mode 700: the cluster's non-root user must get through (x, not list) to its subfolder.
  if (engine === 'postgres') chmodSync(dataDir, (statSync(dataDir).mode & 0o777) | 0o011);
  const startTemporal = async (): Promise<DevServer> => {
    if (engine !== 'postgres') return startDevServerHere();
    if (postgres) await postgres.startServer();
    else postgres = await startPostgresEngine({ dataDir, port, uiPort: options.uiPort, codecEndpoint: codecServer?.uiEndpoint, log });
    return postgres;
  };
  const startDevServerHere = () =>
    startDevServer({ dbFile, port, uiPort: options.uiPort, codecEndpoint: codecServer?.uiEndpoint, sqlitePragmas: options.sqlitePragmas, log: (l) => log('temporal', l) });
  let devServer = await startTemporal();
  const webhookPort = await freePort();
  const webhookUrl = `http://127.0.0.1:${webhookPort}`;
  const webhookMetricsPort = await freePort();
  const clientToken = `demo-token-${Math.random().toString(36).slice(2)}`;
  const sim = await startRbmSimulator({ webhookUrl: `${webhookUrl}/rbm/events`, clientToken, defaultPlan: { deliverAfterMs: null }, ...options.sim });
  const sink = await startSmsSink(options.sink);
  const taskQueue = options.taskQueue ?? 'rbm-guard';
  // Bundle the workflow code once: every worker (re)start then loads it instead of re-bundling.
  const workflowBundlePath = join(dataDir, 'workflow-bundle.js');
  await bundleWorkflows(workflowBundlePath);

  const env: Record<string, string> = {
    TEMPORAL_ADDRESS: devServer.address,
    TEMPORAL_TASK_QUEUE: taskQueue,
    RBM_API_BASE_URL: sim.url,
    RBM_TOKEN_URL: sim.tokenUrl,
    GOOGLE_APPLICATION_CREDENTIALS: sim.writeServiceAccountKeyFile(dataDir),
    RBM_CLIENT_TOKEN: clientToken,
    RBM_REQUEST_TIMEOUT_MS: String(STACK_REQUEST_TIMEOUTS.rbmMs),
    WEBHOOK_PORT: String(webhookPort),
    WEBHOOK_HOST: '127.0.0.1',
    WEBHOOK_METRICS_PORT: String(webhookMetricsPort),
    FALLBACK_PROVIDER: 'http',
    FALLBACK_HTTP_URL: `${sink.url}/messages`,
    FALLBACK_REQUEST_TIMEOUT_MS: String(STACK_REQUEST_TIMEOUTS.fallbackMs),
    LOG_LEVEL: 'warn',
    RBM_GUARD_WORKFLOW_BUNDLE: workflowBundlePath,
    ...encryptionEnv,
    ...options.env,
  };

  const worker = childService('worker', ['service/main.ts', '--only', 'worker'], env, log, async () => {});
  const webhook = childService('webhook', ['service/main.ts', '--only', 'webhook'], env, log, () => waitForHttp(`${webhookUrl}/healthz`));
  try {
    await Promise.all([worker.start(), webhook.start()]);
  } catch (err) {
    // A child that cannot start must not leave the dev server (or the other child) running.
    await Promise.allSettled([worker.stop(), webhook.stop(), sim.close(), sink.close(), codecServer?.close()]);
    await devServer.stop();
    throw err;
  }

  const connection = await Connection.connect({ address: devServer.address });
  const client = new Client({ connection, dataConverter: dataConverter(codec) });

  return {
    dataDir,
    get devServer() {
      return devServer;
    },
    get postgres() {
      return postgres;
    },
    sim,
    sink,
    worker,
    webhook,
    webhookUrl,
    webhookMetricsUrl: `http://127.0.0.1:${webhookMetricsPort}/metrics`,
    client,
    // RBM_GUARD_DEFER_START (the stack's env, else this process's): the guards it tracks start deferred.
    guards: new GuardClient(client, taskQueue, { deferStart: loadConfig({ RBM_GUARD_DEFER_START: env.RBM_GUARD_DEFER_START ?? process.env.RBM_GUARD_DEFER_START }).RBM_GUARD_DEFER_START === 'on' }),
    taskQueue,
    env,
    codec,
    codecUrl: codecServer?.url ?? null,
    async restartTemporal(downMs = 0) {
      // The PostgreSQL engine restarts its Temporal server only; the cluster keeps running.
      if (postgres) await postgres.stopServer();
      else await devServer.stop();
      if (downMs) await new Promise((r) => setTimeout(r, downMs));
      devServer = await startTemporal();
    },
    async stop() {
      await Promise.allSettled([webhook.stop(), worker.stop()]);
      await connection.close();
      await sim.close();
      await sink.close();
      await codecServer?.close();
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
      const proc = spawn(process.execPath, [...nodeArgs, ...args], { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
      child = proc;
      exited = new Promise((resolve) => proc.once('exit', () => resolve()));
      let started = false;
      let last = ''; // the last thing it said: why it died, when it dies at start
      const onLine = (chunk: Buffer) => {
        const text = chunk.toString();
        if (text.includes('rbm-guard is running')) started = true;
        if (text.trim()) last = text.trim().split('\n').slice(-3).join(' | ').slice(-600);
        log(name, text);
      };
      proc.stdout?.on('data', onLine);
      proc.stderr?.on('data', onLine);
      const deadline = Date.now() + 60_000;
      while (!started) {
        if (proc.exitCode !== null) throw new Error(`${name} exited at start with code ${proc.exitCode}${last ? `: ${last}` : ''}`);
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
