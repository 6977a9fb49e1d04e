// The RBM API client: OAuth2 with a service-account key through google-auth-library, revoke and
// send over fetch, and the one place where RBM's HTTP answers are classified into our error types.
// With RBM_AGENTS_FILE each agent's calls go to its own region's host with its partner's key: one
// JWT client (and so one token cache) per key file, shared by every agent of that partner.
import { readFileSync } from 'node:fs';
import { JWT } from 'google-auth-library';
import { z } from 'zod';
import { rbmBaseUrl, type Config } from '../config/index.ts';
import { agentDirectory } from '../config/agents.ts';
import { E164_PATTERN, ERROR_TYPES, normalizeAgentId, type RbmMessageRef, type RbmSendInput, type RevokeResult } from '../workflows/contract.ts';
import { networkCode, redact, retryAfterSeconds } from './http.ts';

export const RBM_SCOPE = 'https://www.googleapis.com/auth/rcsbusinessmessaging';
/** Where google-auth-library always sends the token exchange (hard-coded in its gtoken). */
const GOOGLE_TOKEN_URL = 'https://oauth2.googleapis.com/token';

export type RbmErrorType = (typeof ERROR_TYPES)['rbmConfig' | 'rbmRetryable' | 'rbmNoRcs'];

/** A classified RBM failure. Its message never holds a phone number, message text or token. */
export class RbmError extends Error {
  override readonly name = 'RbmError';
  readonly type: RbmErrorType;
  readonly status?: number;
  /** From Retry-After, when the server sent one. */
  readonly retryAfterSeconds?: number;
  constructor(type: RbmErrorType, message: string, status?: number, retryAfterSeconds?: number) {
    super(message);
    this.type = type;
    this.status = status;
    this.retryAfterSeconds = retryAfterSeconds;
  }
  get retryable(): boolean {
    return this.type === ERROR_TYPES.rbmRetryable;
  }
}

export interface RbmCallOptions {
  /** Aborts the call (e.g. the activity's cancellation); the per-request timeout applies anyway. */
  signal?: AbortSignal;
}

export interface RbmClient {
  /** The host of the single-variable setup (RBM_REGION); with an agents file see baseUrlFor. */
  readonly baseUrl: string;
  /** The host an agent's calls go to; throws RbmError (config) for an agent without credentials. */
  baseUrlFor(agentId: string): string;
  /** REVOKED (200) or ALREADY_DELIVERED (404); throws RbmError otherwise. */
  revoke(ref: RbmMessageRef, options?: RbmCallOptions): Promise<RevokeResult>;
  /** Creates the agent message; a retry with the same messageId is safe (RBM ignores reuse). */
  send(input: RbmSendInput, options?: RbmCallOptions): Promise<void>;
}

const serviceAccountKey = z.object({
  client_email: z.string().min(1),
  private_key: z.string().min(1),
  private_key_id: z.string().optional(),
});
export type ServiceAccountCredentials = z.infer<typeof serviceAccountKey>;

export type RbmClientConfig = Pick<
  Config,
  'RBM_API_BASE_URL' | 'RBM_REGION' | 'RBM_TOKEN_URL' | 'RBM_REQUEST_TIMEOUT_MS' | 'GOOGLE_APPLICATION_CREDENTIALS' | 'RBM_AGENTS_FILE'
>;

export interface RbmClientOptions {
  config: RbmClientConfig;
  /** The service-account key file; default GOOGLE_APPLICATION_CREDENTIALS (ignored with RBM_AGENTS_FILE). */
  keyFile?: string;
  /** The key itself, instead of a file (ignored with RBM_AGENTS_FILE). */
  credentials?: ServiceAccountCredentials;
}

/** Where one agent's calls go, and the key (with its token cache) that signs them. */
interface AgentRoute {
  auth: JWT;
  baseUrl: string;
}

export function createRbmClient({ config, keyFile, credentials }: RbmClientOptions): RbmClient {
  const baseUrl = rbmBaseUrl(config);
  const routeOf = agentRoutes(config, () => credentials ?? readKeyFile(keyFile ?? config.GOOGLE_APPLICATION_CREDENTIALS, 'GOOGLE_APPLICATION_CREDENTIALS'));
  const timeoutMs = config.RBM_REQUEST_TIMEOUT_MS;

  async function call(
    route: AgentRoute,
    operation: 'revoke' | 'send',
    method: 'DELETE' | 'POST',
    path: string,
    options: RbmCallOptions,
    body?: unknown,
  ): Promise<{ status: number; text: string; headers: Headers }> {
    const { auth } = route;
    const url = `${route.baseUrl}${path}`;
    const timeout = AbortSignal.timeout(timeoutMs);
    const signal = options.signal ? AbortSignal.any([timeout, options.signal]) : timeout;
    const label = `RBM ${operation}`;
    try {
      for (let attempt = 1; ; attempt++) {
        const token = await accessToken(auth, signal, label);
        const response = await fetch(url, {
          method,
          headers: {
            authorization: `Bearer ${token}`,
            ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          },
          body: body === undefined ? undefined : JSON.stringify(body),
          signal,
          redirect: 'manual',
        });
        const text = await response.text();
        // A cached token the server no longer accepts: exchange a fresh one and try once more
        // (what google-auth-library's own request() does). A second 401 is a real config error.
        if (response.status === 401 && attempt === 1) {
          if (auth.credentials.access_token === token) auth.credentials = { ...auth.credentials, expiry_date: 1 };
          continue;
        }
        return { status: response.status, text, headers: response.headers };
      }
    } catch (error) {
      if (error instanceof RbmError) throw error;
      // The caller's own cancellation is not an RBM failure: let it through untouched.
      if (options.signal?.aborted) throw options.signal.reason;
      if (timeout.aborted) throw new RbmError(ERROR_TYPES.rbmRetryable, `${label} timed out after ${timeoutMs} ms`);
      throw new RbmError(ERROR_TYPES.rbmRetryable, `${label} network error: ${networkCode(error)}`);
    }
  }

  return {
    baseUrl,

    baseUrlFor: (agentId) => routeOf(agentId).baseUrl,

    async revoke(ref, options = {}) {
      const route = routeOf(ref.agentId);
      const path = `/v1/phones/${phonePath(ref.phone)}/agentMessages/${encodeURIComponent(ref.messageId)}?${new URLSearchParams({ agentId: ref.agentId })}`;
      const secrets = [ref.phone];
      const res = await call(route, 'revoke', 'DELETE', path, options);
      if (res.status >= 200 && res.status < 300) return 'REVOKED';
      if (res.status === 404) return 'ALREADY_DELIVERED';
      throw classify('RBM revoke', res, secrets);
    },

    async send(input, options = {}) {
      const route = routeOf(input.agentId);
      const path = `/v1/phones/${phonePath(input.phone)}/agentMessages?${new URLSearchParams({ messageId: input.messageId, agentId: input.agentId })}`;
      const body = {
        contentMessage: { text: input.text },
        messageTrafficType: input.trafficType,
        ...(input.expireTime ? { expireTime: input.expireTime } : {}),
      };
      const secrets = [input.phone, input.text];
      const res = await call(route, 'send', 'POST', path, options, body);
      // 409: a platform that refuses a reused messageId already holds this very message.
      if ((res.status >= 200 && res.status < 300) || res.status === 409) return;
      if (res.status === 404) {
        throw new RbmError(ERROR_TYPES.rbmNoRcs, `RBM send: 404 ${summarizeBody(res.text, secrets)} (no RCS on the device, or the agent is not launched there)`, 404);
      }
      throw classify('RBM send', res, secrets);
    },
  };
}

/**
 * Each agent's route. Without an agents file one key and RBM_REGION's host serve every agent (as
 * always); with one, every partner's key is read now (a bad one stops the worker at start, naming
 * the partner) and an agent the file does not list has no route: a config error, never retried.
 */
function agentRoutes(config: RbmClientConfig, defaultKey: () => ServiceAccountCredentials): (agentId: string) => AgentRoute {
  const directory = agentDirectory(config);
  if (!directory.file) {
    const single: AgentRoute = { auth: jwtClient(config, defaultKey()), baseUrl: rbmBaseUrl(config) };
    return () => single;
  }
  const byKeyFile = new Map<string, JWT>();
  const routes = new Map<string, AgentRoute>();
  for (const agentId of directory.agents ?? []) {
    const settings = directory.lookup(agentId)!;
    const keyFile = settings.keyFile!;
    let auth = byKeyFile.get(keyFile);
    if (!auth) {
      auth = jwtClient(config, readKeyFile(keyFile, `RBM_AGENTS_FILE: partners.${settings.partner}.keyFile`));
      byKeyFile.set(keyFile, auth);
    }
    routes.set(agentId, { auth, baseUrl: rbmBaseUrl({ ...config, RBM_REGION: settings.region }) });
  }
  const file = directory.file;
  return (agentId) => {
    const route = routes.get(normalizeAgentId(agentId));
    if (!route) throw new RbmError(ERROR_TYPES.rbmConfig, `RBM: no credentials for agent "${agentId}": it is not in ${file} (RBM_AGENTS_FILE)`);
    return route;
  };
}

/** A JWT client for one service-account key: its own token cache, refreshed before expiry. */
function jwtClient(config: RbmClientConfig, key: ServiceAccountCredentials): JWT {
  const auth = new JWT({
    email: key.client_email,
    key: key.private_key,
    keyId: key.private_key_id,
    scopes: [RBM_SCOPE],
    // Node's own fetch, not gaxios's default node-fetch: node-fetch emits an 'error' on a response body
    // nobody listens to when its timeout fires at the wrong moment, which crashed a worker under load.
    transporterOptions: { timeout: config.RBM_REQUEST_TIMEOUT_MS, fetchImplementation: fetch },
  });
  const tokenUrl = config.RBM_TOKEN_URL;
  if (tokenUrl) {
    // The one test seam: the client's own transporter (which its gtoken uses for the exchange)
    // sends the token request to RBM_TOKEN_URL instead of Google. Signing, the assertion's
    // audience and the form body stay exactly as in production.
    auth.transporter.interceptors.request.add({
      resolved: async (options) => {
        if (String(options.url) === GOOGLE_TOKEN_URL) options.url = new URL(tokenUrl);
        return options;
      },
    });
  }
  return auth;
}

/** 429/408/5xx are worth retrying; other 4xx say the request or the setup is wrong. */
function classify(label: string, res: { status: number; text: string; headers: Headers }, secrets: string[]): RbmError {
  const detail = `${label}: HTTP ${res.status} ${summarizeBody(res.text, secrets)}`.trimEnd();
  if (res.status === 429 || res.status === 408 || res.status >= 500) {
    return new RbmError(ERROR_TYPES.rbmRetryable, detail, res.status, retryAfterSeconds(res.headers.get('retry-after')));
  }
  return new RbmError(ERROR_TYPES.rbmConfig, detail, res.status);
}

async function accessToken(auth: JWT, signal: AbortSignal, label: string): Promise<string> {
  let token: string | null | undefined;
  try {
    ({ token } = await abortable(auth.getAccessToken(), signal));
  } catch (error) {
    if (signal.aborted) throw error;
    const status = errorStatus(error);
    // Refused by the token endpoint (bad key, unknown account, revoked key): retrying cannot help.
    if (status !== undefined && status >= 400 && status < 500 && status !== 408 && status !== 429) {
      throw new RbmError(ERROR_TYPES.rbmConfig, `${label}: token exchange refused (HTTP ${status} ${oauthError(error)})`, status);
    }
    if (status === undefined && !isHttpClientError(error)) {
      // Not an HTTP failure: the key could not be used to sign (a malformed private_key).
      throw new RbmError(ERROR_TYPES.rbmConfig, `${label}: cannot sign the token request with the service-account key`);
    }
    throw new RbmError(ERROR_TYPES.rbmRetryable, `${label}: token exchange failed (${status ?? networkCode(error)})`, status);
  }
  if (!token) throw new RbmError(ERROR_TYPES.rbmRetryable, `${label}: token exchange returned no token`);
  return token;
}

/** google-auth-library can't take an AbortSignal for the exchange; stop waiting when it fires. */
function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/** `where` names the setting the path came from, for the error. */
function readKeyFile(path: string | undefined, where: string): ServiceAccountCredentials {
  if (!path) throw new Error(`${where}: set it to the RBM service-account key file`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new Error(`${where}: cannot read ${path} as JSON (${(error as Error).message})`);
  }
  const key = serviceAccountKey.safeParse(parsed);
  if (!key.success) throw new Error(`${where}: ${path} is not a service-account key (needs client_email and private_key)`);
  return key.data;
}

/** The path segment of a phone: E.164 with a literal '+', as the API documents it. */
function phonePath(phone: string): string {
  if (!E164_PATTERN.test(phone)) {
    throw new RbmError(ERROR_TYPES.rbmConfig, 'RBM: phone number is not E.164');
  }
  return phone;
}

/** A short, safe summary of an error body: Google's status and message, secrets and numbers removed. */
export function summarizeBody(body: string, secrets: string[]): string {
  let text = body;
  try {
    const parsed = z
      .object({ error: z.object({ status: z.string().optional(), message: z.string().optional() }) })
      .safeParse(JSON.parse(body));
    if (parsed.success) text = [parsed.data.error.status, parsed.data.error.message].filter(Boolean).join(': ');
  } catch {
    // not JSON: keep the raw text
  }
  return redact(text, secrets).replace(/\s+/g, ' ').trim().slice(0, 200);
}

function errorStatus(error: unknown): number | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const status = (error as { status?: unknown; response?: { status?: unknown } }).response?.status ?? (error as { status?: unknown }).status;
  return typeof status === 'number' ? status : undefined;
}

/** Gaxios errors carry the request config; signing errors don't. */
function isHttpClientError(error: unknown): boolean {
  return typeof error === 'object' && error !== null && 'config' in error;
}

function oauthError(error: unknown): string {
  const data = (error as { response?: { data?: unknown } }).response?.data;
  const parsed = z.object({ error: z.string() }).safeParse(data);
  return parsed.success ? redact(parsed.data.error, []).slice(0, 60) : '';
}
