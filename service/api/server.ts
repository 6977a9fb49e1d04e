// The HTTP API as a process part: keys, the app, listen, graceful close. `npm start` runs it beside
// the worker and the webhook (service/main.ts); `npm start -- --only api` runs it alone.
import type { FastifyInstance } from 'fastify';
import type { Client } from '@temporalio/client';
import type { Config } from '../../config/index.ts';
import type { Logger } from '../../config/logger.ts';
import { agentDirectory } from '../../config/agents.ts';
import { GuardClient } from '../../client/guard-client.ts';
import { buildApiApp } from './app.ts';
import { loadApiKeys, type ApiKeys } from './auth.ts';
import { listenOn } from '../../config/listen.ts';

export interface ApiServer {
  app: FastifyInstance;
  port: number;
  /** e.g. http://127.0.0.1:8082; the guards are at `${url}/v1/guards`. */
  url: string;
  keys: ApiKeys;
  close(): Promise<void>;
}

/** Listens with the given client (the caller owns and closes it). Throws a one-line Error on a taken port. */
export async function startApiServer(config: Config, options: { client: Client; logger: Logger }): Promise<ApiServer> {
  const keys = loadApiKeys(config);
  // With RBM_AGENTS_FILE a track for an agent it does not list is refused (400, body.agentId) before any guard starts.
  const guards = new GuardClient(options.client, config.TEMPORAL_TASK_QUEUE, { agents: agentDirectory(config).agents, deferStart: config.RBM_GUARD_DEFER_START === 'on' });
  const app = await buildApiApp({ client: options.client, guards, keys: keys.keys, config, logger: options.logger });
  const { port, url } = await listenOn(app, { host: config.RBM_GUARD_API_HOST, port: config.RBM_GUARD_API_PORT, variable: 'RBM_GUARD_API_PORT' });
  if (keys.keys.length === 0) options.logger.warn(`HTTP API: ${keys.source}`);
  else options.logger.info({ url, keys: keys.keys.length, from: keys.source }, 'HTTP API listening');
  let closing: Promise<void> | undefined;
  return { app, port, url, keys, close: () => (closing ??= app.close()) };
}
