// `npm start`: the worker and the webhook adapter in one process. Without TEMPORAL_ADDRESS it first
// starts an embedded Temporal dev server (SQLite under the data folder, Web UI, our search
// attributes). `--only worker` / `--only webhook` run one half (the compose file does).
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NativeConnection, Runtime, DefaultLogger, type LogLevel } from '@temporalio/worker';
import { ConfigError, loadConfig, type Config } from '../config/index.ts';
import { createLogger, type Logger } from '../config/logger.ts';
import { createActivities } from '../activities/index.ts';
import { createRbmClient } from '../activities/rbm.ts';
import { createFallbackChannel } from '../activities/fallback.ts';
import { tlsOptions } from '../client/connection.ts';
import { startWebhookServer } from '../client/webhook/server.ts';
import { startDevServer, type DevServer } from './dev-server.ts';
import { createGuardWorker } from './worker.ts';

type Part = 'worker' | 'webhook';

export interface RunningService {
  temporalAddress: string;
  uiUrl: string | null;
  webhookUrl: string | null;
  stop(): Promise<void>;
}

/** Starts the service; resolves once everything is listening. */
export async function startService(config: Config, parts: Part[], log: Logger): Promise<RunningService> {
  let devServer: DevServer | undefined;
  let address = config.TEMPORAL_ADDRESS;
  if (!address) {
    const dbFile = resolve(join(config.RBM_GUARD_DATA_DIR, 'temporal.db'));
    devServer = await startDevServer({ dbFile, port: config.TEMPORAL_DEV_PORT, uiPort: config.TEMPORAL_UI_PORT });
    address = devServer.address;
    log.info({ address, ui: devServer.uiUrl, dbFile }, 'embedded Temporal dev server started');
  }

  const stops: (() => Promise<void>)[] = [];
  let workerDone: Promise<void> | undefined;
  if (parts.includes('worker')) {
    installRuntime(config, log);
    const connection = await NativeConnection.connect({ address, tls: tlsOptions(config), apiKey: config.TEMPORAL_API_KEY });
    const activities = createActivities({ rbm: createRbmClient({ config }), fallback: createFallbackChannel(config) });
    const worker = await createGuardWorker({
      connection,
      namespace: config.TEMPORAL_NAMESPACE,
      taskQueue: config.TEMPORAL_TASK_QUEUE,
      activities,
      workflowBundlePath: config.RBM_GUARD_WORKFLOW_BUNDLE,
      shutdownGraceTimeMs: config.WORKER_SHUTDOWN_GRACE_MS,
    });
    workerDone = worker.run();
    stops.push(async () => {
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await workerDone;
      await connection.close();
    });
    log.info({ taskQueue: config.TEMPORAL_TASK_QUEUE }, 'worker running');
  }
  let webhookUrl: string | null = null;
  if (parts.includes('webhook')) {
    const webhook = await startWebhookServer({ ...config, TEMPORAL_ADDRESS: address }, { logger: log });
    webhookUrl = webhook.url;
    stops.unshift(() => webhook.close()); // stop taking events first
  }
  if (devServer) stops.push(() => devServer.stop());

  return {
    temporalAddress: address,
    uiUrl: devServer?.uiUrl ?? null,
    webhookUrl,
    async stop() {
      for (const stop of stops) await stop();
    },
  };
}

let runtimeInstalled = false;
function installRuntime(config: Config, log: Logger) {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  const level = (config.LOG_LEVEL === 'silent' || config.LOG_LEVEL === 'fatal' ? 'ERROR' : config.LOG_LEVEL.toUpperCase()) as LogLevel;
  Runtime.install({
    logger: new DefaultLogger(level, ({ level: l, message, meta }) => {
      const method = l === 'TRACE' ? 'trace' : l === 'DEBUG' ? 'debug' : l === 'INFO' ? 'info' : l === 'WARN' ? 'warn' : 'error';
      log[method]({ ...meta }, message);
    }),
    telemetryOptions: config.METRICS_PORT
      ? { metrics: { prometheus: { bindAddress: `0.0.0.0:${config.METRICS_PORT}` } } }
      : undefined,
  });
}

function parseParts(argv: string[]): Part[] {
  const i = argv.indexOf('--only');
  if (i < 0) return ['worker', 'webhook'];
  const part = argv[i + 1];
  if (part !== 'worker' && part !== 'webhook') throw new Error(`--only takes worker or webhook, not ${part ?? 'nothing'}`);
  return [part];
}

async function main() {
  let config: Config;
  let parts: Part[];
  try {
    config = loadConfig();
    parts = parseParts(process.argv.slice(2));
  } catch (err) {
    console.error(err instanceof ConfigError || err instanceof Error ? err.message : String(err));
    process.exit(2);
  }
  const log = createLogger(config);
  let service: RunningService;
  try {
    service = await startService(config, parts, log);
  } catch (err) {
    log.fatal({ err }, 'rbm-guard could not start');
    console.error(`rbm-guard could not start: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  }
  console.log(
    [
      'rbm-guard is running.',
      `  Temporal:  ${service.temporalAddress}`,
      service.uiUrl ? `  Web UI:    ${service.uiUrl}` : '',
      service.webhookUrl ? `  Webhook:   ${service.webhookUrl}/rbm/events` : '',
      '  Ctrl-C stops it.',
    ]
      .filter(Boolean)
      .join('\n'),
  );
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping');
    await service.stop();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
}

if (process.argv[1] && fileURLToPath(import.meta.url) === resolve(process.argv[1])) void main();
