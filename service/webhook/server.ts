// The webhook adapter's server: one Temporal connection, the app, listen, graceful close.
// `npm start` (service/main.ts, `--only webhook` alone) calls startWebhookServer().
import type { FastifyInstance } from 'fastify';
import Fastify from 'fastify';
import { Registry } from 'prom-client';
import type { Client } from '@temporalio/client';
import type { Config } from '../../config/index.ts';
import { clientOptions, connectClient } from '../../client/connection.ts';
import { createLogger, type Logger } from '../../config/logger.ts';
import { buildWebhookApp, type WebhookAppOptions } from './app.ts';
import { listenOn } from '../../config/listen.ts';

/** The webhook's metrics on a listener of their own: RBM's public port never serves them. */
function metricsEndpoint(registry: Registry): FastifyInstance {
  const app = Fastify({ logger: false });
  app.get('/metrics', async (_request, reply) => reply.type(registry.contentType).send(await registry.metrics()));
  return app;
}

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
  /** The Prometheus endpoint (WEBHOOK_METRICS_PORT on METRICS_HOST), or null when it is off. */
  metricsUrl: string | null;
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
  let listening: { port: number; url: string };
  let metricsServer: { url: string; close(): Promise<void> } | null = null;
  try {
    const registry = options.metrics ?? new Registry();
    app = buildWebhookApp({
      client,
      config,
      logger,
      metrics: registry,
      signalTimeoutMs: options.signalTimeoutMs ?? config.WEBHOOK_SIGNAL_TIMEOUT_MS,
    });
    const fail = (message: string, cause: unknown) => new WebhookStartError(message, { cause });
    listening = await listenOn(app, { host: config.WEBHOOK_HOST, port: config.WEBHOOK_PORT, variable: 'WEBHOOK_PORT' }, fail);
    if (config.WEBHOOK_METRICS_PORT !== undefined) {
      const metricsApp = metricsEndpoint(registry);
      const at = await listenOn(metricsApp, { host: config.METRICS_HOST, port: config.WEBHOOK_METRICS_PORT, variable: 'WEBHOOK_METRICS_PORT' }, fail).catch(async (err: unknown) => {
        await app.close();
        throw err;
      });
      metricsServer = { url: `${at.url}/metrics`, close: () => metricsApp.close() };
    }
  } catch (err) {
    await ownClient?.connection.close();
    throw err;
  }
  const { port, url } = listening;
  logger.info({ port, host: config.WEBHOOK_HOST, namespace: config.TEMPORAL_NAMESPACE, metrics: metricsServer?.url ?? null }, 'webhook adapter listening');

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      await app.close();
      await metricsServer?.close();
      await ownClient?.connection.close();
      logger.info('webhook adapter closed');
    })());
  return { app, port, url, metricsUrl: metricsServer?.url ?? null, close };
}
