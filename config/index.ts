// The one configuration module for every process: environment variables → a typed, validated
// object. A bad or missing variable stops the process at start with the variable's name.
import { z } from 'zod';
import { DEFAULT_TASK_QUEUE } from '../workflows/contract.ts';

const port = z.coerce.number().int().min(0).max(65535);
const optionalUrl = z.url().optional();
const emptyToUndefined = (v: unknown) => (typeof v === 'string' && v.trim() === '' ? undefined : v);
const opt = <T extends z.ZodType>(schema: T) => z.preprocess(emptyToUndefined, schema.optional());
const withDefault = <T extends z.ZodType>(schema: T, value: z.input<T>) =>
  z.preprocess(emptyToUndefined, schema.default(value as never));

export const RBM_REGIONS = ['global', 'us', 'europe', 'asia'] as const;

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

  GOOGLE_APPLICATION_CREDENTIALS: opt(z.string().min(1)),
  RBM_AGENT_ID: opt(z.string().min(1)),
  RBM_REGION: withDefault(z.enum(RBM_REGIONS), 'global'),
  RBM_API_BASE_URL: optionalUrl,
  RBM_TOKEN_URL: optionalUrl,
  /** Per-request timeout for RBM calls; a revoke that times out counts as ambiguous. */
  RBM_REQUEST_TIMEOUT_MS: withDefault(z.coerce.number().int().positive(), 10_000),

  RBM_CLIENT_TOKEN: opt(z.string().min(1)),
  WEBHOOK_PORT: withDefault(port, 8080),
  WEBHOOK_HOST: withDefault(z.string().min(1), '0.0.0.0'),
  WEBHOOK_BODY_LIMIT_BYTES: withDefault(z.coerce.number().int().positive(), 64 * 1024),
  /** How long a guard started by an early event waits for the backend's track before ORPHANED. */
  WEBHOOK_ORPHAN_AFTER_MS: withDefault(z.coerce.number().int().positive(), 24 * 60 * 60 * 1000),

  FALLBACK_PROVIDER: withDefault(z.enum(['twilio', 'http']), 'http'),
  FALLBACK_HTTP_URL: optionalUrl,
  FALLBACK_HTTP_TOKEN: opt(z.string().min(1)),
  TWILIO_ACCOUNT_SID: opt(z.string().regex(/^AC[0-9a-fA-F]{32}$/, 'expected AC followed by 32 hex digits')),
  TWILIO_AUTH_TOKEN: opt(z.string().min(1)),
  TWILIO_FROM: opt(z.string().min(1)),
  TWILIO_API_BASE_URL: withDefault(z.url(), 'https://api.twilio.com'),
  FALLBACK_REQUEST_TIMEOUT_MS: withDefault(z.coerce.number().int().positive(), 10_000),

  METRICS_PORT: opt(port),
  LOG_LEVEL: withDefault(z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']), 'info'),
  WORKER_SHUTDOWN_GRACE_MS: withDefault(z.coerce.number().int().nonnegative(), 10_000),
});

export type Config = z.infer<typeof envSchema>;

export class ConfigError extends Error {
  constructor(readonly issues: { variable: string; message: string }[]) {
    super(
      'Invalid configuration:\n' + issues.map((i) => `  ${i.variable}: ${i.message}`).join('\n'),
    );
    this.name = 'ConfigError';
  }
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
  if (config.FALLBACK_PROVIDER === 'twilio') {
    for (const key of ['TWILIO_ACCOUNT_SID', 'TWILIO_AUTH_TOKEN', 'TWILIO_FROM'] as const) {
      if (!config[key]) missing.push({ variable: key, message: 'required when FALLBACK_PROVIDER=twilio' });
    }
  }
  if (Boolean(config.TEMPORAL_TLS_CERT) !== Boolean(config.TEMPORAL_TLS_KEY)) {
    missing.push({ variable: 'TEMPORAL_TLS_KEY', message: 'TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY go together' });
  }
  if (missing.length) throw new ConfigError(missing);
  return config;
}

/** The RBM API host for a region (the simulator's URL when RBM_API_BASE_URL is set). */
export function rbmBaseUrl(config: Pick<Config, 'RBM_API_BASE_URL' | 'RBM_REGION'>): string {
  if (config.RBM_API_BASE_URL) return config.RBM_API_BASE_URL.replace(/\/+$/, '');
  const prefix = config.RBM_REGION === 'global' ? '' : `${config.RBM_REGION}-`;
  return `https://${prefix}rcsbusinessmessaging.googleapis.com`;
}

/** Client tokens for the webhook signature check (several at once during a rotation). */
export function clientTokens(config: Pick<Config, 'RBM_CLIENT_TOKEN'>): string[] {
  return (config.RBM_CLIENT_TOKEN ?? '')
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean);
}
