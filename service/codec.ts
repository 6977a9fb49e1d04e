// The codec server: the Temporal UI (and `temporal --codec-endpoint`) POSTs encrypted payloads to
// `/decode` and gets them back in clear, or plain ones to `/encode`. The remote codec protocol:
// a JSON body `{"payloads": [{"metadata": {k: base64}, "data": base64}]}` (protobuf JSON), answered
// in kind; only the last path segment names the operation, so the server may sit under a prefix.
//
// Who may call it:
// - a bearer token (RBM_GUARD_CODEC_TOKEN): `Authorization: Bearer <token>` — what the temporal
//   CLI's `--codec-auth` and scripts send — or the token as the endpoint's one path segment,
//   `http://host:port/<token>`, which is how the embedded UI reaches it: the dev server's UI sends
//   no credentials of its own (its "pass access token" option forwards the UI's OIDC token, over
//   https only), so `npm start` hands the UI an endpoint that carries the token.
// - browsers only from the configured UI origins (RBM_GUARD_CODEC_ORIGINS): CORS for those, 403
//   for any other Origin. Requests without an Origin (CLI, curl) need only the token.
// Payloads, tokens and URLs are never logged.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { Payload, PayloadCodec } from '@temporalio/common';
import { codecOrigins, ConfigError, encryptionKeyRequired, type Config } from '../config/index.ts';
import { createLogger, type Logger } from '../config/logger.ts';
import { ENCRYPTED_ENCODING, PayloadDecryptionError, writeSecretFileOnce } from '../client/codec.ts';
import { listenOn } from '../config/listen.ts';
import { fastifyClientError, HttpError } from './http-error.ts';
import { digest, sameBytes } from './secrets.ts';

/** The dev token's file inside RBM_GUARD_DATA_DIR. */
export const DEV_TOKEN_FILE = 'codec-token';
const ALLOWED_HEADERS = 'authorization, authorization-extras, content-type, x-namespace';
const DEFAULT_BODY_LIMIT = 8 * 1024 * 1024;
const MAX_PAYLOADS = 10_000;

export interface CodecAppOptions {
  codec: PayloadCodec;
  /** The bearer token callers must present. */
  token: string;
  /** Browser origins allowed to call (the Temporal UI's). Requests without an Origin need only the token. */
  origins: readonly string[];
  logger?: Logger;
  bodyLimitBytes?: number;
}

const base64 = z.string().regex(/^[A-Za-z0-9+/_-]*={0,2}$/, 'expected base64');
const payloadJson = z.looseObject({
  metadata: z.record(z.string(), base64).nullish(),
  data: base64.nullish(),
});
const bodySchema = z.looseObject({ payloads: z.array(payloadJson).max(MAX_PAYLOADS) });
type PayloadJson = z.infer<typeof payloadJson>;


export function buildCodecApp(options: CodecAppOptions): FastifyInstance {
  const { codec } = options;
  const tokenHash = digest(options.token);
  const origins = new Set(options.origins);
  const logger: FastifyBaseLogger = (options.logger ?? createLogger({ LOG_LEVEL: 'warn' })).child({ component: 'codec-server' });
  const app = Fastify({
    loggerInstance: logger,
    bodyLimit: options.bodyLimitBytes ?? DEFAULT_BODY_LIMIT,
    // Request lines would carry the token in the path: this server logs its own lines instead.
    logController: new LogController({ disableRequestLogging: true }),
    return503OnClosing: true,
  });
  app.removeContentTypeParser('text/plain');

  const tokenMatches = (candidate: string | undefined) => candidate !== undefined && candidate !== '' && sameBytes(digest(candidate), tokenHash);

  app.setErrorHandler((error: FastifyError | HttpError, request, reply) => {
    if (error instanceof HttpError) {
      request.log.info({ status: error.statusCode, code: error.code }, 'codec request refused');
      if (error.statusCode === 401) reply.header('www-authenticate', 'Bearer realm="rbm-guard codec"');
      return reply.code(error.statusCode).send({ error: error.code, message: error.message });
    }
    if (error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500) {
      const { status, answer } = fastifyClientError(error.statusCode);
      request.log.info({ status, code: error.code }, 'codec request refused');
      return reply.code(status).send(answer);
    }
    request.log.error({ err: error }, 'codec server error');
    return reply.code(500).send({ error: 'internal_error', message: 'internal error' });
  });

  // Origin first (browsers), then CORS headers for an allowed one, then the token.
  app.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
    const origin = request.headers.origin;
    if (origin !== undefined) {
      if (!origins.has(origin)) throw new HttpError(403, 'origin_not_allowed', 'this origin may not use the codec server');
      reply.header('access-control-allow-origin', origin);
      reply.header('access-control-allow-credentials', 'true');
      reply.header('vary', 'Origin');
    }
    if (request.method !== 'POST') return;
    const route = operationOf(request.url);
    if (!route) return; // 404 below
    const bearer = /^Bearer\s+(\S+)\s*$/i.exec(request.headers.authorization ?? '')?.[1];
    if (!tokenMatches(route.pathToken) && !tokenMatches(bearer)) {
      throw new HttpError(401, 'unauthorized', 'a valid codec token is required (Authorization: Bearer <token>)');
    }
  });

  app.get('/healthz', async () => ({ status: 'ok' }));

  // CORS preflight: the UI sends content-type and X-Namespace (and Authorization when it passes a token).
  app.options('/*', async (_request, reply) =>
    reply
      .code(204)
      .header('access-control-allow-methods', 'POST, OPTIONS')
      .header('access-control-allow-headers', ALLOWED_HEADERS)
      .header('access-control-max-age', '600')
      .send(),
  );

  app.post('/*', async (request, reply) => {
    const route = operationOf(request.url);
    if (!route) return reply.code(404).send({ error: 'not_found', message: 'POST …/decode or …/encode' });
    const parsed = bodySchema.safeParse(request.body);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const where = issue?.path.length ? ` at ${issue.path.join('.')}` : '';
      throw new HttpError(400, 'bad_request', `expected {"payloads": [{"metadata": {…}, "data": "<base64>"}]}: ${issue?.message ?? 'invalid'}${where}`);
    }
    const input = parsed.data.payloads;
    const namespace = request.headers['x-namespace'];
    let payloads: PayloadJson[];
    try {
      payloads = route.operation === 'decode' ? await decodeJson(codec, input) : (await codec.encode(input.map(fromJson))).map(toJson);
    } catch (err) {
      if (err instanceof PayloadDecryptionError) throw new HttpError(400, 'decode_failed', err.message);
      throw err;
    }
    request.log.debug({ operation: route.operation, payloads: input.length, namespace }, 'codec request');
    return reply.send({ payloads });
  });

  return app;
}

/** `…/decode` or `…/encode`, optionally under one path segment (the token). */
function operationOf(url: string): { operation: 'decode' | 'encode'; pathToken?: string } | undefined {
  const segments = (url.split('?')[0] ?? '').split('/').filter(Boolean);
  const last = segments.pop();
  if ((last !== 'decode' && last !== 'encode') || segments.length > 1) return undefined;
  let pathToken: string | undefined;
  try {
    pathToken = segments[0] === undefined ? undefined : decodeURIComponent(segments[0]);
  } catch {
    return undefined;
  }
  return { operation: last, pathToken };
}

/** Only our encrypted payloads are touched; any other comes back exactly as sent. */
async function decodeJson(codec: PayloadCodec, input: PayloadJson[]): Promise<PayloadJson[]> {
  const ours = input.map((p) => Buffer.from(p.metadata?.encoding ?? '', 'base64').toString('utf8') === ENCRYPTED_ENCODING);
  const decoded = await codec.decode(input.filter((_, i) => ours[i]).map(fromJson));
  let next = 0;
  return input.map((p, i) => (ours[i] ? toJson(decoded[next++]!) : p));
}

function fromJson(p: PayloadJson): Payload {
  return {
    metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, new Uint8Array(Buffer.from(v, 'base64'))])),
    data: new Uint8Array(Buffer.from(p.data ?? '', 'base64')),
  };
}

function toJson(p: Payload): PayloadJson {
  return {
    metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v).toString('base64')])),
    data: Buffer.from(p.data ?? new Uint8Array()).toString('base64'),
  };
}

// ---- the server process ----

export interface CodecServer {
  app: FastifyInstance;
  port: number;
  /** e.g. http://127.0.0.1:8081 (no token). */
  url: string;
  /** The endpoint to give the Temporal UI: the URL with the token as its path. A secret: never log it. */
  uiEndpoint: string;
  close(): Promise<void>;
}

export interface CodecServerSettings {
  host: string;
  port: number;
  token: string;
  origins: string[];
  /** Where the token came from, for the start-up log (never the token). */
  tokenSource: string;
}

/**
 * The codec server's settings from config. The token is RBM_GUARD_CODEC_TOKEN; only next to the
 * embedded dev server (no TEMPORAL_ADDRESS, not production) is one generated into the data folder.
 */
export function codecServerSettings(
  config: Pick<
    Config,
    'RBM_GUARD_CODEC_TOKEN' | 'RBM_GUARD_CODEC_HOST' | 'RBM_GUARD_CODEC_PORT' | 'RBM_GUARD_CODEC_ORIGINS' | 'RBM_GUARD_DATA_DIR' | 'TEMPORAL_ADDRESS' | 'TEMPORAL_UI_PORT' | 'NODE_ENV'
  >,
): CodecServerSettings {
  let token = config.RBM_GUARD_CODEC_TOKEN;
  let tokenSource = 'RBM_GUARD_CODEC_TOKEN';
  if (!token) {
    if (encryptionKeyRequired(config)) {
      throw new ConfigError([{ variable: 'RBM_GUARD_CODEC_TOKEN', message: 'required to run the codec server against a real Temporal or in production' }]);
    }
    const file = join(config.RBM_GUARD_DATA_DIR, DEV_TOKEN_FILE);
    writeSecretFileOnce(file, `${randomBytes(24).toString('base64url')}\n`);
    token = readFileSync(file, 'utf8').trim();
    tokenSource = `${file} (dev token)`;
  }
  return { host: config.RBM_GUARD_CODEC_HOST, port: config.RBM_GUARD_CODEC_PORT, token, origins: codecOrigins(config), tokenSource };
}

export class CodecServerStartError extends Error {
  override name = 'CodecServerStartError';
}

export async function startCodecServer(options: CodecAppOptions & { host: string; port: number }): Promise<CodecServer> {
  const app = buildCodecApp(options);
  const { port, url } = await listenOn(app, { host: options.host, port: options.port, variable: 'RBM_GUARD_CODEC_PORT' }, (message, cause) => new CodecServerStartError(message, { cause }));
  return { app, port, url, uiEndpoint: `${url}/${encodeURIComponent(options.token)}`, close: () => app.close() };
}
