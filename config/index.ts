// The one configuration module for every process: environment variables → a typed, validated
// object. A bad or missing variable stops the process at start with the variable's name.
import { z } from 'zod';
import { DEFAULT_TASK_QUEUE } from '../workflows/contract.ts';
import { unfetchableUrl } from '../activities/http.ts';
import { agentsFileIssues, RBM_REGIONS, splitTokens } from './agents.ts';
import { ConfigError } from './errors.ts';

const port = z.coerce.number({ error: 'expected a port number (0–65535)' }).int().min(0).max(65535);
/** A whole number of milliseconds or bytes, > 0 (or ≥ 0). */
const messagesPerSecond = z.coerce.number({ error: 'expected messages per second, e.g. 100 or 0.5' }).positive('must be above 0').max(100_000);
const count = (min: 0 | 1 = 1) => z.coerce.number({ error: 'expected a whole number' }).int().min(min);

const emptyToUndefined = (v: unknown) => (typeof v === 'string' && v.trim() === '' ? undefined : v);
const opt = <T extends z.ZodType>(schema: T) => z.preprocess(emptyToUndefined, schema.optional());
const withDefault = <T extends z.ZodType>(schema: T, value: z.input<T>) =>
  z.preprocess(emptyToUndefined, schema.default(value as never));

/** A URL the service sends to with fetch(): http(s), and not on a port fetch() refuses. */
const fetchableUrl = z.url().superRefine((text, ctx) => {
  const problem = unfetchableUrl(text);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});

export { RBM_REGIONS };

/** An encryption key id: short, printable, safe in payload metadata and error messages. */
export const KEY_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const KEY_ID_RULE = 'a key id is 1-64 letters, digits, . _ - (starting with a letter or digit)';

/** Every environment variable rbm-guard reads, with its default. The README table mirrors this. */
export const envSchema = z.object({
  TEMPORAL_ADDRESS: opt(z.string().regex(/^[^\s:]+:\d+$/, 'expected host:port')),
  TEMPORAL_NAMESPACE: withDefault(z.string().min(1), 'default'),
  TEMPORAL_TASK_QUEUE: withDefault(z.string().min(1), DEFAULT_TASK_QUEUE),
  TEMPORAL_API_KEY: opt(z.string().min(1)),
  TEMPORAL_TLS_CERT: opt(z.string().min(1)),
  TEMPORAL_TLS_KEY: opt(z.string().min(1)),
  /** Folder of the embedded dev server's SQLite file (used when TEMPORAL_ADDRESS is unset). */
  RBM_GUARD_DATA_DIR: withDefault(z.string().min(1), '.data'),
  TEMPORAL_UI_PORT: withDefault(port, 8233),
  /** A prebuilt workflow bundle (`npm run build:workflows`); unset = bundle the source at start. */
  RBM_GUARD_WORKFLOW_BUNDLE: opt(z.string().min(1)),
  TEMPORAL_DEV_PORT: withDefault(port, 7233),
  /**
   * Which Temporal `npm start` (without TEMPORAL_ADDRESS), the demo, bench and chaos run start:
   * `dev` the CLI's dev server (SQLite), `postgres` the Temporal server on a local PostgreSQL
   * cluster (service/engine/postgres.ts), the engine production runs.
   */
  RBM_GUARD_ENGINE: withDefault(z.enum(['dev', 'postgres']), 'dev'),
  /** Closed guards are kept this long (`rbm-guard setup`; beyond Pub/Sub's 7 days of redelivery). */
  TEMPORAL_NAMESPACE_RETENTION_DAYS: withDefault(count(), 30),

  GOOGLE_APPLICATION_CREDENTIALS: opt(z.string().min(1)),
  RBM_AGENT_ID: opt(z.string().min(1)),
  RBM_REGION: withDefault(z.enum(RBM_REGIONS), 'global'),
  /** The simulator's URL; a `{region}` in it is replaced by each agent's region (tests tell the hosts apart). */
  RBM_API_BASE_URL: opt(z.url()),
  RBM_TOKEN_URL: opt(z.url()),
  /** Per-request timeout for RBM calls; a revoke that times out counts as ambiguous. */
  RBM_REQUEST_TIMEOUT_MS: withDefault(count(), 10_000),

  RBM_CLIENT_TOKEN: opt(z.string().min(1)),
  /**
   * Per-agent settings for many agents, partners and regions (config/agents.ts): each agent's key file,
   * region and webhook client tokens. Unset: the three variables above serve every agent.
   */
  RBM_AGENTS_FILE: opt(z.string().min(1)),
  WEBHOOK_PORT: withDefault(port, 8080),
  WEBHOOK_HOST: withDefault(z.string().min(1), '0.0.0.0'),
  /** The webhook's Prometheus endpoint, on METRICS_HOST: never on the public webhook port. Unset: none. */
  WEBHOOK_METRICS_PORT: opt(port),
  /** How long the webhook waits for Temporal to accept a signal before answering 503 (RBM retries). */
  WEBHOOK_SIGNAL_TIMEOUT_MS: withDefault(count(), 5000),
  WEBHOOK_BODY_LIMIT_BYTES: withDefault(count(), 64 * 1024),
  /** How long a guard started by an early event waits for the backend's track before ORPHANED. */
  WEBHOOK_ORPHAN_AFTER_MS: withDefault(count(), 24 * 60 * 60 * 1000),

  /** Bearer keys of the HTTP API for backends, comma-separated for rotation; none = every call refused. */
  RBM_GUARD_API_KEYS: opt(z.string().min(1)),
  /** The HTTP API (`--only api`, and in `npm start`); its OpenAPI is at /openapi.json. */
  RBM_GUARD_API_PORT: withDefault(port, 8082),
  /** Loopback unless set: a deployment that serves other hosts says so (e.g. 0.0.0.0 in a container). */
  RBM_GUARD_API_HOST: withDefault(z.string().min(1), '127.0.0.1'),
  /** Requests per minute per API key before 429 + Retry-After. */
  RBM_GUARD_API_RATE_LIMIT: withDefault(count(), 600),
  /** Failed authentications per minute from one client address before every request from it gets 429. */
  RBM_GUARD_API_AUTH_FAILURE_LIMIT: withDefault(count(), 30),
  RBM_GUARD_API_BODY_LIMIT_BYTES: withDefault(count(), 64 * 1024),
  /** How long a request waits for Temporal before answering 503 + Retry-After. */
  RBM_GUARD_API_TIMEOUT_MS: withDefault(count(), 5000),

  FALLBACK_PROVIDER: withDefault(z.enum(['twilio', 'http']), 'http'),
  FALLBACK_HTTP_URL: opt(fetchableUrl),
  FALLBACK_HTTP_TOKEN: opt(z.string().min(1)),
  TWILIO_ACCOUNT_SID: opt(z.string().regex(/^AC[0-9a-fA-F]{32}$/, 'expected AC followed by 32 hex digits')),
  TWILIO_AUTH_TOKEN: opt(z.string().min(1)),
  TWILIO_FROM: opt(z.string().min(1)),
  TWILIO_API_BASE_URL: withDefault(fetchableUrl, 'https://api.twilio.com'),
  FALLBACK_REQUEST_TIMEOUT_MS: withDefault(count(), 10_000),
  /**
   * The provider's throughput limit (SMS/s for the account or sender), held across every worker (the
   * SMS task queue's rate, worker/worker.ts). The one for FALLBACK_PROVIDER applies; unset: unpaced.
   */
  TWILIO_MESSAGES_PER_SECOND: opt(messagesPerSecond),
  FALLBACK_HTTP_MESSAGES_PER_SECOND: opt(messagesPerSecond),

  /**
   * `on` (default): the HTTP API and the CLI start every guard that waits for its deadline with a start
   * delay until it instead of a timer (GuardClient's deferStart, client/deferred-start.ts): one billable
   * action less per message. `off`: every guard starts at once, with a deadline timer.
   */
  RBM_GUARD_DEFER_START: withDefault(z.enum(['on', 'off']), 'on'),

  /**
   * Payload encryption (AES-256-GCM) for every Temporal client and worker. `off` is for local
   * debugging only and is refused with NODE_ENV=production.
   */
  RBM_GUARD_ENCRYPTION: withDefault(z.enum(['on', 'off']), 'on'),
  /** `id:base64key` pairs (32-byte keys), comma-separated: all decrypt, the current one encrypts. */
  RBM_GUARD_ENCRYPTION_KEYS: opt(z.string().min(1)),
  /** A file of `id:base64key` lines instead of RBM_GUARD_ENCRYPTION_KEYS (e.g. a mounted secret). */
  RBM_GUARD_ENCRYPTION_KEY_FILE: opt(z.string().min(1)),
  /** The key that encrypts new payloads; default the last key listed. */
  RBM_GUARD_ENCRYPTION_KEY_ID: opt(z.string().regex(KEY_ID_PATTERN, KEY_ID_RULE)),
  /** The codec server the Temporal UI calls to show decrypted payloads. */
  RBM_GUARD_CODEC_PORT: withDefault(port, 8081),
  RBM_GUARD_CODEC_HOST: withDefault(z.string().min(1), '127.0.0.1'),
  /** Bearer token the codec server requires (also accepted as the endpoint's first path segment). */
  RBM_GUARD_CODEC_TOKEN: opt(z.string().regex(/^[A-Za-z0-9._~-]{16,}$/, 'at least 16 characters, letters, digits and . _ ~ - only')),
  /** Browser origins (the Temporal UI's) allowed to call the codec server, comma-separated. */
  RBM_GUARD_CODEC_ORIGINS: opt(z.string().min(1)),
  /** `production` makes a configured encryption key (and codec token) mandatory. */
  NODE_ENV: opt(z.string().min(1)),

  /** The worker's Prometheus endpoint (SDK and guard metrics). Unset: none. */
  METRICS_PORT: opt(port),
  /** Where METRICS_PORT and WEBHOOK_METRICS_PORT listen: loopback unless a scraper elsewhere needs them. */
  METRICS_HOST: withDefault(z.string().min(1), '127.0.0.1'),
  LOG_LEVEL: withDefault(z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']), 'info'),
  WORKER_SHUTDOWN_GRACE_MS: withDefault(count(0), 10_000),
  /**
   * How long a woken guard's task waits for the worker that put it to sleep before any worker may take
   * it (worker/worker.ts, DEFAULT_TUNING): longer drains a deadline wave faster, shorter recovers faster
   * from a worker that died with wake-ups queued for it.
   */
  WORKER_STICKY_TIMEOUT_MS: withDefault(count(1).max(600_000, 'at most 600000 (10 minutes)'), 60_000),
});

export type Config = z.infer<typeof envSchema>;

export { ConfigError };

/** What the chosen SMS provider needs and is not given. (The HTTP provider's URL is checked where it is used: only the worker sends.) */
export function fallbackProviderIssues(config: Pick<Config, 'FALLBACK_PROVIDER' | 'TWILIO_ACCOUNT_SID' | 'TWILIO_AUTH_TOKEN' | 'TWILIO_FROM'>): { variable: string; message: string }[] {
  if (config.FALLBACK_PROVIDER !== 'twilio') return [];
  return (['TWILIO_ACCOUNT_SID', 'TWILIO_AUTH_TOKEN', 'TWILIO_FROM'] as const).filter((k) => !config[k]).map((variable) => ({ variable, message: 'required when FALLBACK_PROVIDER=twilio' }));
}

/** Parses the environment; throws ConfigError naming every bad variable. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((i) => ({ variable: String(i.path[0] ?? '?'), message: i.message })),
    );
  }
  const config = parsed.data;
  const missing: { variable: string; message: string }[] = [];
  missing.push(...fallbackProviderIssues(config));
  if (Boolean(config.TEMPORAL_TLS_CERT) !== Boolean(config.TEMPORAL_TLS_KEY)) {
    missing.push({ variable: 'TEMPORAL_TLS_KEY', message: 'TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY go together' });
  }
  missing.push(...encryptionIssues(config));
  if (config.RBM_AGENTS_FILE) missing.push(...agentsFileIssues(config.RBM_AGENTS_FILE));
  if (missing.length) throw new ConfigError(missing);
  return config;
}

/** The active SMS provider's throughput limit (SMS/s), or undefined: unpaced. */
export function smsPerSecond(config: Pick<Config, 'FALLBACK_PROVIDER' | 'TWILIO_MESSAGES_PER_SECOND' | 'FALLBACK_HTTP_MESSAGES_PER_SECOND'>): number | undefined {
  return config.FALLBACK_PROVIDER === 'twilio' ? config.TWILIO_MESSAGES_PER_SECOND : config.FALLBACK_HTTP_MESSAGES_PER_SECOND;
}

/** The RBM API host for a region (the simulator's URL when RBM_API_BASE_URL is set). */
export function rbmBaseUrl(config: Pick<Config, 'RBM_API_BASE_URL' | 'RBM_REGION'>): string {
  if (config.RBM_API_BASE_URL) return config.RBM_API_BASE_URL.replace(/\{region\}|%7Bregion%7D/gi, config.RBM_REGION).replace(/\/+$/, '');
  const prefix = config.RBM_REGION === 'global' ? '' : `${config.RBM_REGION}-`;
  return `https://${prefix}rcsbusinessmessaging.googleapis.com`;
}

/** Client tokens for the webhook signature check (several at once during a rotation). */
export function clientTokens(config: Pick<Config, 'RBM_CLIENT_TOKEN'>): string[] {
  return splitTokens(config.RBM_CLIENT_TOKEN);
}

// ---- payload encryption and the codec server ----

export interface EncryptionKey {
  id: string;
  /** 32 bytes (AES-256). */
  key: Buffer;
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const BASE64URL = /^[A-Za-z0-9_-]+$/;

/**
 * Parses `id:base64key` entries, separated by commas or newlines (`#` starts a comment line).
 * Throws ConfigError naming `variable`. Messages name entries by position and id, never by the
 * key material.
 */
export function parseEncryptionKeys(text: string, variable: string, where = ''): EncryptionKey[] {
  const issues: { variable: string; message: string }[] = [];
  const fail = (message: string) => issues.push({ variable, message: `${where}${message}` });
  const entries = text
    .split(/\r?\n/)
    .filter((line) => !line.trim().startsWith('#'))
    .flatMap((line) => line.split(','))
    .map((e) => e.trim())
    .filter(Boolean);
  const keys: EncryptionKey[] = [];
  const seen = new Set<string>();
  entries.forEach((entry, i) => {
    const n = i + 1;
    const colon = entry.indexOf(':');
    if (colon < 0) return void fail(`entry ${n} is not id:base64key`);
    const id = entry.slice(0, colon).trim();
    const material = entry.slice(colon + 1).trim();
    if (!KEY_ID_PATTERN.test(id)) return void fail(`entry ${n}: ${KEY_ID_RULE}`);
    if (seen.has(id)) return void fail(`key id "${id}" appears twice`);
    seen.add(id);
    if (!BASE64.test(material) && !BASE64URL.test(material)) return void fail(`key "${id}" is not base64`);
    const key = Buffer.from(material, 'base64');
    if (key.length !== 32) return void fail(`key "${id}" is ${key.length} bytes; AES-256 needs 32 (e.g. \`openssl rand -base64 32\`)`);
    keys.push({ id, key });
  });
  if (!issues.length && keys.length === 0) fail('no keys (expected id:base64key, comma-separated)');
  if (issues.length) throw new ConfigError(issues);
  return keys;
}

/**
 * Where a configured key is mandatory: against a real Temporal (TEMPORAL_ADDRESS set: every worker,
 * webhook and CLI must share one key ring, so none may invent its own) and with NODE_ENV=production.
 * Only the embedded dev server of `npm start` and the demo gets a generated dev key.
 */
export function encryptionKeyRequired(config: Pick<Config, 'TEMPORAL_ADDRESS' | 'NODE_ENV'>): boolean {
  return Boolean(config.TEMPORAL_ADDRESS) || config.NODE_ENV === 'production';
}

/** The origins of the embedded Temporal UI (`npm start` without TEMPORAL_ADDRESS). */
export function embeddedUiOrigins(uiPort: number): string[] {
  return [`http://127.0.0.1:${uiPort}`, `http://localhost:${uiPort}`];
}

/** RBM_GUARD_CODEC_ORIGINS, or the embedded UI's origins when there is no other Temporal. */
export function codecOrigins(config: Pick<Config, 'RBM_GUARD_CODEC_ORIGINS' | 'TEMPORAL_ADDRESS' | 'TEMPORAL_UI_PORT'>): string[] {
  if (config.RBM_GUARD_CODEC_ORIGINS) return parseOrigins(config.RBM_GUARD_CODEC_ORIGINS).origins;
  return config.TEMPORAL_ADDRESS ? [] : embeddedUiOrigins(config.TEMPORAL_UI_PORT);
}

function parseOrigins(text: string): { origins: string[]; bad: string[] } {
  const origins: string[] = [];
  const bad: string[] = [];
  for (const raw of text.split(',').map((o) => o.trim()).filter(Boolean)) {
    let origin: string | undefined;
    try {
      const url = new URL(raw);
      if ((url.protocol === 'http:' || url.protocol === 'https:') && url.origin === raw.replace(/\/$/, '')) origin = url.origin;
    } catch {
      // reported below
    }
    if (origin) origins.push(origin);
    else bad.push(raw);
  }
  return { origins, bad };
}

function encryptionIssues(config: Config): { variable: string; message: string }[] {
  const issues: { variable: string; message: string }[] = [];
  if (config.RBM_GUARD_ENCRYPTION === 'off' && config.NODE_ENV === 'production') {
    issues.push({ variable: 'RBM_GUARD_ENCRYPTION', message: 'cannot be off with NODE_ENV=production: payloads hold phone numbers and message text' });
  }
  if (config.RBM_GUARD_ENCRYPTION_KEYS && config.RBM_GUARD_ENCRYPTION_KEY_FILE) {
    issues.push({ variable: 'RBM_GUARD_ENCRYPTION_KEY_FILE', message: 'set RBM_GUARD_ENCRYPTION_KEYS or RBM_GUARD_ENCRYPTION_KEY_FILE, not both' });
  }
  if (config.RBM_GUARD_ENCRYPTION_KEYS) {
    try {
      const ids = parseEncryptionKeys(config.RBM_GUARD_ENCRYPTION_KEYS, 'RBM_GUARD_ENCRYPTION_KEYS').map((k) => k.id);
      const current = config.RBM_GUARD_ENCRYPTION_KEY_ID;
      if (current && !ids.includes(current)) {
        issues.push({ variable: 'RBM_GUARD_ENCRYPTION_KEY_ID', message: `"${current}" is not among RBM_GUARD_ENCRYPTION_KEYS (${ids.join(', ')})` });
      }
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      issues.push(...err.issues);
    }
  }
  if (config.RBM_GUARD_CODEC_ORIGINS) {
    const { bad } = parseOrigins(config.RBM_GUARD_CODEC_ORIGINS);
    if (bad.length) issues.push({ variable: 'RBM_GUARD_CODEC_ORIGINS', message: `not an origin (scheme://host[:port], no path): ${bad.join(', ')}` });
  }
  return issues;
}
