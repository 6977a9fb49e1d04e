// `npm start`, the service's process: the worker and the webhook adapter in one process. Without
// TEMPORAL_ADDRESS it first starts an embedded Temporal dev server (SQLite under the data folder,
// Web UI, our search attributes) and the codec server its UI decrypts payloads through.
// `--only worker` / `--only webhook` / `--only api` / `--only codec` run one part (the compose file does). It lives
// in service/, not worker/: it composes parts of worker/ and client/ and belongs to neither.
import { isEntryPoint } from '../config/entrypoint.ts';
import { join, resolve } from 'node:path';
import type { Client } from '@temporalio/client';
import { NativeConnection, Runtime, DefaultLogger, type LogLevel } from '@temporalio/worker';
import { ConfigError, loadConfig, smsPerSecond, type Config } from '../config/index.ts';
import { createLogger, type Logger } from '../config/logger.ts';
import { createActivities } from '../activities/index.ts';
import { createRbmClient } from '../activities/rbm.ts';
import { createFallbackChannel } from '../activities/fallback.ts';
import { dataConverter, describeKeyRing, devKeyFile, EncryptionCodec, loadKeyRing } from '../client/codec.ts';
import { codecServerSettings, startCodecServer, type CodecServer } from './codec.ts';
import { clientOptions, connectClient, tlsOptions } from '../client/connection.ts';
import { startWebhookServer } from './webhook/server.ts';
import { startApiServer, type ApiServer } from './api/server.ts';
import { startDevServer, type DevServer } from './engine/dev-server.ts';
import { startPostgresEngine } from './engine/postgres.ts';
import { createGuardWorker } from '../worker/worker.ts';
import { hostPort } from '../config/listen.ts';
import { toolArgs } from '../config/args.ts';

type Part = 'worker' | 'webhook' | 'api' | 'codec';

export interface RunningService {
  temporalAddress: string;
  uiUrl: string | null;
  webhookUrl: string | null;
  /** The HTTP API for backends (/v1/guards), and the dev key file when one was generated or reused. */
  apiUrl: string | null;
  apiKeyFile: string | null;
  codecUrl: string | null;
  stop(): Promise<void>;
}

/** The parts `npm start` runs by default: the codec server too next to the embedded UI, or when a codec token is configured. */
export function defaultParts(config: Config): Part[] {
  const codec = config.RBM_GUARD_ENCRYPTION === 'on' && (!config.TEMPORAL_ADDRESS || Boolean(config.RBM_GUARD_CODEC_TOKEN));
  return codec ? ['worker', 'webhook', 'api', 'codec'] : ['worker', 'webhook', 'api'];
}

/** Starts the service; resolves once everything is listening. A failed start stops what did start. */
export async function startService(config: Config, parts: Part[], log: Logger): Promise<RunningService> {
  // The key ring first: a missing or bad key stops the start before anything runs.
  const ring = loadKeyRing(config);
  const codec = ring && new EncryptionCodec(ring.keys, ring.currentKeyId);
  const codecSettings = parts.includes('codec') && codec ? codecServerSettings(config) : undefined;
  if (ring?.generated) log.warn({ file: devKeyFile(config.RBM_GUARD_DATA_DIR) }, "generated a development encryption key: keep it, the dev server's payloads need it");
  if (ring) log.info(describeKeyRing(ring));
  else log.warn(describeKeyRing(ring));

  // Stopped in order: the webhook first (stop taking events), the Temporal dev server last.
  const stops: (() => Promise<void>)[] = [];
  let stopServer: (() => Promise<void>) | undefined;
  const stop = async () => {
    for (const s of stops) await s();
    await stopServer?.();
  };

  try {
    // The codec server before the dev server: the UI is told its endpoint at start.
    let codecServer: CodecServer | undefined;
    if (codecSettings && codec) {
      const server = await startCodecServer({ codec, ...codecSettings, logger: log });
      codecServer = server;
      stops.push(() => server.close());
      log.info({ url: server.url, origins: codecSettings.origins, tokenFrom: codecSettings.tokenSource }, 'codec server listening');
    } else if (parts.includes('codec')) {
      log.warn('codec server not started: encryption is off');
    }

    let devServer: DevServer | undefined;
    let address = config.TEMPORAL_ADDRESS;
    let engineUiUrl: string | null = null;
    if (!address && config.RBM_GUARD_ENGINE === 'postgres') {
      // The engine production runs: a local PostgreSQL cluster, the Temporal server and its Web UI.
      const engine = await startPostgresEngine({ dataDir: config.RBM_GUARD_DATA_DIR, port: config.TEMPORAL_DEV_PORT, namespace: config.TEMPORAL_NAMESPACE, retentionDays: config.TEMPORAL_NAMESPACE_RETENTION_DAYS, uiPort: config.TEMPORAL_UI_PORT, codecEndpoint: codecServer?.uiEndpoint });
      stopServer = () => engine.stop();
      address = engine.address;
      engineUiUrl = engine.uiUrl;
      log.info({ address, ui: engine.uiUrl, postgres: `127.0.0.1:${engine.postgres.port}`, metrics: engine.metricsUrl }, 'Temporal server on PostgreSQL started');
    }
    if (!address) {
      const dbFile = resolve(join(config.RBM_GUARD_DATA_DIR, 'temporal.db'));
      const server = await startDevServer({
        dbFile,
        port: config.TEMPORAL_DEV_PORT,
        uiPort: config.TEMPORAL_UI_PORT,
        // The endpoint carries the codec token as its path: the dev server's UI sends no credentials.
        codecEndpoint: codecServer?.uiEndpoint,
      });
      devServer = server;
      stopServer = () => server.stop();
      address = server.address;
      log.info({ address, ui: server.uiUrl, dbFile }, 'embedded Temporal dev server started');
    }

    if (parts.includes('worker')) {
      installRuntime(config, log);
      const connection = await NativeConnection.connect({ address, tls: tlsOptions(config), apiKey: config.TEMPORAL_API_KEY });
      stops.push(() => connection.close());
      const activities = createActivities({ rbm: createRbmClient({ config }), fallback: createFallbackChannel(config) });
      const worker = await createGuardWorker({
        connection,
        namespace: config.TEMPORAL_NAMESPACE,
        taskQueue: config.TEMPORAL_TASK_QUEUE,
        activities,
        dataConverter: dataConverter(codec),
        workflowBundlePath: config.RBM_GUARD_WORKFLOW_BUNDLE,
        shutdownGraceTimeMs: config.WORKER_SHUTDOWN_GRACE_MS,
        smsPerSecond: smsPerSecond(config),
        tuning: { stickyQueueScheduleToStartTimeout: config.WORKER_STICKY_TIMEOUT_MS },
      });
      const workerDone = worker.run();
      stops.unshift(async () => {
        if (worker.getState() === 'RUNNING') worker.shutdown();
        await workerDone;
      });
      log.info({ taskQueue: config.TEMPORAL_TASK_QUEUE }, 'worker running');
    }

    let webhookUrl: string | null = null;
    if (parts.includes('webhook')) {
      // The webhook's client carries this process's codec, like every client.
      const client: Client = await connectClient(clientOptions(config, { address, codec }));
      stops.unshift(() => client.connection.close());
      const webhook = await startWebhookServer({ ...config, TEMPORAL_ADDRESS: address }, { logger: log, client });
      webhookUrl = webhook.url;
      stops.unshift(() => webhook.close()); // stop taking events first
    }

    let api: ApiServer | undefined;
    if (parts.includes('api')) {
      const client: Client = await connectClient(clientOptions(config, { address, codec }));
      stops.unshift(() => client.connection.close());
      // config as given, not with the embedded server's address: without TEMPORAL_ADDRESS the dev key applies.
      const server = await startApiServer(config, { logger: log, client });
      api = server;
      stops.unshift(() => server.close());
    }

    return {
      temporalAddress: address,
      uiUrl: devServer?.uiUrl ?? engineUiUrl,
      webhookUrl,
      apiUrl: api?.url ?? null,
      apiKeyFile: api?.keys.devKeyFile ?? null,
      codecUrl: codecServer?.url ?? null,
      stop,
    };
  } catch (err) {
    await stop().catch(() => undefined);
    throw err;
  }
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
      ? { metrics: { prometheus: { bindAddress: hostPort(config.METRICS_HOST, config.METRICS_PORT) } } }
      : undefined,
  });
}

const USAGE = `
npm start [-- --only worker|webhook|api|codec]

The service: the worker, the webhook adapter and the HTTP API (and the codec server next to the
embedded dev server), all configured from the environment (README: Configuration). Without
TEMPORAL_ADDRESS it starts a local Temporal first (RBM_GUARD_ENGINE=dev|postgres).
  --only  run one part (the compose file runs each apart)`;

function parseParts(config: Config): Part[] {
  const { values } = toolArgs('rbm-guard', USAGE, { only: { type: 'string' } });
  const part = values.only;
  if (part === undefined) return defaultParts(config);
  if (part !== 'worker' && part !== 'webhook' && part !== 'api' && part !== 'codec') throw new Error(`--only takes worker, webhook, api or codec, not ${part}`);
  return [part];
}

/** A config problem as one line: `VARIABLE: what is wrong` (several joined by `; `). */
function configErrorLine(err: ConfigError): string {
  return err.issues.map((i) => `${i.variable}: ${i.message}`).join('; ');
}

async function main() {
  let config: Config;
  let parts: Part[];
  try {
    config = loadConfig();
    parts = parseParts(config);
  } catch (err) {
    console.error(`rbm-guard: ${err instanceof ConfigError ? configErrorLine(err) : err instanceof Error ? err.message : String(err)}`);
    process.exit(2);
  }
  const log = createLogger(config);
  let service: RunningService;
  try {
    service = await startService(config, parts, log);
  } catch (err) {
    if (err instanceof ConfigError) {
      // e.g. production without an encryption key: one line naming the variable.
      console.error(`rbm-guard: ${configErrorLine(err)}`);
      process.exit(2);
    }
    log.debug({ err }, 'rbm-guard could not start');
    console.error(`rbm-guard could not start: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  }
  console.log(
    [
      'rbm-guard is running.',
      `  Temporal:  ${service.temporalAddress}`,
      service.uiUrl ? `  Web UI:    ${service.uiUrl}` : '',
      service.webhookUrl ? `  Webhook:   ${service.webhookUrl}/rbm/events` : '',
      service.apiUrl ? `  HTTP API:  ${service.apiUrl}/v1/guards (OpenAPI: ${service.apiUrl}/docs)` : '',
      service.apiKeyFile ? `  API key:   in ${service.apiKeyFile} (Authorization: Bearer <key>)` : '',
      service.codecUrl ? `  Codec:     ${service.codecUrl} (the UI decrypts payloads through it; token required)` : '',
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

if (isEntryPoint(import.meta.url)) void main();
