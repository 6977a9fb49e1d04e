// The webhook adapter as a process: config, one Temporal connection, the app, listen, graceful close.
// `npm start` (service/main.ts) calls startWebhookServer() beside the worker; `npm run start:webhook`
// runs this file alone.
import { isEntryPoint } from '../../config/entrypoint.ts';
import type { FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';
import type { Client } from '@temporalio/client';
import { ConfigError, loadConfig, type Config } from '../../config/index.ts';
import { clientOptions, connectClient } from '../connection.ts';
import { createLogger, type Logger } from '../../config/logger.ts';
import { buildWebhookApp, type WebhookAppOptions } from './app.ts';

export interface WebhookServerOptions {
  /** A connected client to share (e.g. the worker process's). Without it one is connected from config and closed on close(). */
  client?: Client;
  logger?: Logger;
  metrics?: Registry;
  signalTimeoutMs?: WebhookAppOptions['signalTimeoutMs'];
}

export interface WebhookServer {
  app: FastifyInstance;
  /** The bound port (useful with WEBHOOK_PORT=0). */
  port: number;
  /** e.g. http://127.0.0.1:8080 — the events URL is `${url}/rbm/events`. */
  url: string;
  /** Stops accepting, lets in-flight requests finish, then closes the Temporal connection if it opened it. */
  close(): Promise<void>;
}

/** A one-line, operator-facing start failure (port taken, Temporal unreachable). */
export class WebhookStartError extends Error {
  override name = 'WebhookStartError';
}

/** Where the webhook finds Temporal: TEMPORAL_ADDRESS, else the embedded dev server `npm start` runs. */
export function temporalAddress(config: Pick<Config, 'TEMPORAL_ADDRESS' | 'TEMPORAL_DEV_PORT'>): string {
  return config.TEMPORAL_ADDRESS ?? `127.0.0.1:${config.TEMPORAL_DEV_PORT}`;
}

async function connect(config: Config): Promise<Client> {
  const address = temporalAddress(config);
  try {
    return await connectClient(clientOptions(config, { address }));
  } catch (err) {
    throw new WebhookStartError(`cannot reach Temporal at ${address}: ${(err as Error).message}`, { cause: err });
  }
}

export async function startWebhookServer(config: Config, options: WebhookServerOptions = {}): Promise<WebhookServer> {
  const logger = options.logger ?? createLogger(config);
  const client = options.client ?? (await connect(config));
  const ownClient = options.client ? undefined : client;
  let app: FastifyInstance;
  try {
    app = buildWebhookApp({
      client,
      config,
      logger,
      metrics: options.metrics,
      signalTimeoutMs: options.signalTimeoutMs ?? config.WEBHOOK_SIGNAL_TIMEOUT_MS,
    });
    await app.listen({ host: config.WEBHOOK_HOST, port: config.WEBHOOK_PORT });
  } catch (err) {
    await ownClient?.connection.close();
    if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') {
      throw new WebhookStartError(
        `WEBHOOK_PORT ${config.WEBHOOK_PORT} on ${config.WEBHOOK_HOST} is already in use: stop the other process or choose another port`,
        { cause: err },
      );
    }
    throw err;
  }
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.WEBHOOK_PORT;
  const host = config.WEBHOOK_HOST === '0.0.0.0' || config.WEBHOOK_HOST === '::' ? '127.0.0.1' : config.WEBHOOK_HOST;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  logger.info({ port, host: config.WEBHOOK_HOST, namespace: config.TEMPORAL_NAMESPACE }, 'webhook adapter listening');

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      await app.close();
      await ownClient?.connection.close();
      logger.info('webhook adapter closed');
    })());
  return { app, port, url, close };
}

async function main(): Promise<void> {
  let server: WebhookServer;
  try {
    server = await startWebhookServer(loadConfig());
  } catch (err) {
    if (err instanceof ConfigError || err instanceof WebhookStartError) {
      console.error(`rbm-guard webhook: ${err.message}`);
      process.exit(1);
    }
    throw err;
  }
  const stop = (signal: NodeJS.Signals) => {
    // A second signal, or a close that hangs on a stuck request, ends the process anyway.
    process.once(signal, () => process.exit(1));
    setTimeout(() => process.exit(1), 15_000).unref();
    server.close().then(
      () => process.exit(0),
      (err: unknown) => {
        console.error(`rbm-guard webhook: error while closing: ${(err as Error).message}`);
        process.exit(1);
      },
    );
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}


if (isEntryPoint(import.meta.url)) await main();
