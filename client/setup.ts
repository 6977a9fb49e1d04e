// `rbm-guard setup`: the namespace (retention from config) and our search attributes, through the
// operator API — idempotent, so the PostgreSQL engine runs it at every start, compose's setup job
// and operators against their own cluster run it too. Temporal Cloud manages both through its own
// API and console, not the operator API: there it says so instead of failing obscurely.
import { Connection } from '@temporalio/client';
import proto from '@temporalio/proto';
import { msToTs } from '@temporalio/common/lib/time.js';
import { loadConfig, type Config } from '../config/index.ts';
import { CliError, EXIT } from './cli/errors.ts';
import type { CliContext } from './cli/program.ts';
import { MAX_MESSAGE_LIFETIME_MS, SEARCH_ATTRIBUTE_KEYS } from '../workflows/contract.ts';
import { tlsOptions } from './connection.ts';
import { registerSearchAttributes } from './search-attributes.ts';
import { errorText, grpcCode, GRPC, TRANSIENT_GRPC_CODES } from './temporal-errors.ts';

const INDEXED = proto.temporal.api.enums.v1.IndexedValueType;
const DAY_S = 24 * 60 * 60;

/** A setup problem, as the one line the CLI prints. */
export class SetupError extends Error {
  override name = 'SetupError';
}

export interface SetupOptions {
  address: string;
  namespace: string;
  retentionDays: number;
  apiKey?: string;
  tls?: ReturnType<typeof tlsOptions>;
  /** How long to keep retrying a server that is still starting (default 60 s). */
  timeoutMs?: number;
  log?: (line: string) => void;
}

export interface SetupResult {
  namespace: 'created' | 'retention updated' | 'unchanged';
  added: string[];
  present: string[];
  /** What works but will cost records (a retention too short for late deliveries). */
  warnings: string[];
}

/** RBM's redelivery of an unacknowledged event (Pub/Sub keeps a push this long). */
const RBM_REDELIVERY_DAYS = 7;
/**
 * The shortest retention that keeps a closed guard until its last possible late DELIVERED: a message
 * lives up to 15 days, and RBM redelivers for 7 more. Past retention a late DELIVERED finds no guard
 * and starts a fresh one that ends ORPHANED, instead of a DOUBLE_DELIVERY record.
 */
export const MIN_RETENTION_DAYS = MAX_MESSAGE_LIFETIME_MS / (24 * 60 * 60 * 1000) + RBM_REDELIVERY_DAYS;

export function retentionWarning(retentionDays: number): string | null {
  return retentionDays < MIN_RETENTION_DAYS
    ? `retention ${retentionDays} d is shorter than a message's longest life plus RBM's redelivery (${MIN_RETENTION_DAYS} d): a late DELIVERED after that starts a guard that ends ORPHANED instead of a DOUBLE_DELIVERY record`
    : null;
}

/** Temporal Cloud: an API key, or a *.tmprl.cloud / *.api.temporal.io address. */
export function isTemporalCloud(target: { address: string; apiKey?: string }): boolean {
  return Boolean(target.apiKey) || /\.(tmprl\.cloud|api\.temporal\.io)(:\d+)?$/.test(target.address);
}

const typeName = (t: number) => (INDEXED[t] ?? String(t)).replace('INDEXED_VALUE_TYPE_', '');
const wanted = SEARCH_ATTRIBUTE_KEYS.map((k) => ({ name: k.name, type: INDEXED[`INDEXED_VALUE_TYPE_${k.type}` as keyof typeof INDEXED] as number, typeLabel: k.type }));

export function cloudInstructions(namespace: string): string {
  const attrs = wanted.map((k) => `${k.name} (${k.typeLabel})`).join(', ');
  return (
    `Temporal Cloud manages namespaces and search attributes through its console, tcld or the Cloud Ops API, not the operator API: ` +
    `create namespace ${namespace} there and add ${attrs} (e.g. \`tcld namespace search-attributes add -n ${namespace} --sa RbmState=Keyword …\`)`
  );
}

export async function setupNamespace(options: SetupOptions): Promise<SetupResult> {
  const { namespace } = options;
  const log = options.log ?? (() => {});
  if (!Number.isInteger(options.retentionDays) || options.retentionDays < 1) throw new SetupError(`retention must be a whole number of days >= 1, not ${options.retentionDays}`);
  if (isTemporalCloud(options)) throw new SetupError(cloudInstructions(namespace));
  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  // A server that is still starting answers UNAVAILABLE; a namespace just registered is NOT_FOUND
  // for a moment to the search-attribute call (it reads the namespace cache).
  const retry = async <T>(what: string, call: () => Promise<T>, alsoRetry: number[] = []): Promise<T> => {
    for (;;) {
      try {
        return await call();
      } catch (err) {
        const code = grpcCode(err);
        const transient = code === undefined || TRANSIENT_GRPC_CODES.has(code) || alsoRetry.includes(code);
        if (code === GRPC.PERMISSION_DENIED || code === GRPC.UNAUTHENTICATED) throw new SetupError(`${what} on ${options.address} was refused (${errorText(err)}): setup needs an admin identity`);
        if (code === GRPC.UNIMPLEMENTED) throw new SetupError(`${what}: ${options.address} has no operator API (${errorText(err)})`);
        if (!transient || Date.now() > deadline) throw new SetupError(`${what} on ${options.address} failed: ${errorText(err)}`);
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  };

  const connection = await retry('connecting', () => Connection.connect({ address: options.address, tls: options.tls, apiKey: options.apiKey, connectTimeout: Math.min(5000, options.timeoutMs ?? 5000) }));
  try {
    const retentionSeconds = options.retentionDays * DAY_S;
    const retention = msToTs(retentionSeconds * 1000);
    let state: SetupResult['namespace'];
    const described = await retry('describing the namespace', () =>
      connection.workflowService.describeNamespace({ namespace }).catch((err: unknown) => {
        if (grpcCode(err) === GRPC.NOT_FOUND) return undefined;
        throw err;
      }),
    );
    if (!described) {
      await retry('registering the namespace', () =>
        connection.workflowService.registerNamespace({ namespace, workflowExecutionRetentionPeriod: retention }).catch((err: unknown) => {
          if (grpcCode(err) !== GRPC.ALREADY_EXISTS) throw err; // a concurrent setup won the race
        }),
      );
      state = 'created';
      log(`namespace ${namespace} created (retention ${options.retentionDays} d)`);
    } else if (Number(described.config?.workflowExecutionRetentionTtl?.seconds ?? 0) !== retentionSeconds) {
      await retry('updating the namespace retention', () => connection.workflowService.updateNamespace({ namespace, config: { workflowExecutionRetentionTtl: retention } }));
      state = 'retention updated';
      log(`namespace ${namespace}: retention set to ${options.retentionDays} d`);
    } else {
      state = 'unchanged';
    }

    const listed = await retry('listing search attributes', () => connection.operatorService.listSearchAttributes({ namespace }), [GRPC.NOT_FOUND]);
    const existing = listed.customAttributes ?? {};
    const present: string[] = [];
    for (const k of wanted) {
      const have = existing[k.name];
      if (have === undefined || have === null) continue;
      if (Number(have) !== k.type) throw new SetupError(`search attribute ${k.name} exists on ${namespace} as ${typeName(Number(have))}, rbm-guard needs ${k.typeLabel}: remove it or use another namespace`);
      present.push(k.name);
    }
    const added = wanted.filter((k) => !present.includes(k.name)).map((k) => k.name);
    if (added.length) {
      await retry('adding search attributes', () => registerSearchAttributes(connection, namespace), [GRPC.NOT_FOUND]);
      log(`search attributes added on ${namespace}: ${added.join(', ')}`);
    }
    const warning = retentionWarning(options.retentionDays);
    if (warning) log(`warning: ${warning}`);
    return { namespace: state, added, present, warnings: warning ? [warning] : [] };
  } finally {
    await connection.close();
  }
}

/** `rbm-guard setup` from config: the target (unset: the local server of `npm start`, as for every command), namespace and retention. */
export function setupOptionsFromConfig(
  config: Pick<Config, 'TEMPORAL_ADDRESS' | 'TEMPORAL_DEV_PORT' | 'TEMPORAL_NAMESPACE' | 'TEMPORAL_API_KEY' | 'TEMPORAL_TLS_CERT' | 'TEMPORAL_TLS_KEY' | 'TEMPORAL_NAMESPACE_RETENTION_DAYS'>,
): SetupOptions {
  return {
    address: config.TEMPORAL_ADDRESS ?? `127.0.0.1:${config.TEMPORAL_DEV_PORT}`,
    namespace: config.TEMPORAL_NAMESPACE,
    retentionDays: config.TEMPORAL_NAMESPACE_RETENTION_DAYS,
    apiKey: config.TEMPORAL_API_KEY,
    tls: tlsOptions(config),
  };
}

export interface SetupCommandOptions {
  namespace?: string;
  retentionDays?: number;
  json?: boolean;
}

/** The CLI command: config, then the flags, then one line per change (or JSON); a refusal is one line, exit 1. */
export async function setupCommand(ctx: CliContext, opts: SetupCommandOptions): Promise<void> {
  const options = setupOptionsFromConfig(loadConfig(ctx.io.env ?? process.env));
  if (opts.namespace) options.namespace = opts.namespace;
  if (opts.retentionDays) options.retentionDays = opts.retentionDays;
  const lines: string[] = [];
  let result: SetupResult;
  try {
    result = await setupNamespace({ ...options, timeoutMs: ctx.io.connectTimeoutMs ?? 15_000, log: (l) => lines.push(l) });
  } catch (err) {
    if (err instanceof SetupError) throw new CliError(err.message, EXIT.failed);
    throw err;
  }
  for (const warning of result.warnings) ctx.io.stderr(`warning: ${warning}\n`);
  if (opts.json) return ctx.io.stdout(`${JSON.stringify({ address: options.address, namespace: options.namespace, retentionDays: options.retentionDays, state: result.namespace, added: result.added, present: result.present, warnings: result.warnings })}\n`);
  for (const line of lines.filter((l) => !l.startsWith('warning: '))) ctx.io.stdout(`${line}\n`);
  ctx.io.stdout(`${options.namespace} on ${options.address} is set up: retention ${options.retentionDays} d, search attributes ${[...result.present, ...result.added].join(', ')}\n`);
}
