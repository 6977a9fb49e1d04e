// The operators' command line: a thin layer over GuardClient. Input is checked before anything
// reaches Temporal; every failure is one line on stderr and a non-zero exit code, never a stack
// trace; --json prints machine-readable results on stdout. `runCli` runs in-process (tests);
// `main` is the process entry (bin/rbm-guard.js, `npm run cli`).
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import {
  Client,
  Connection,
  isGrpcServiceError,
  NamespaceNotFoundError,
  ServiceError,
  WorkflowFailedError,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
} from '@temporalio/client';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { ConfigError, loadConfig, type Config } from '../config/index.ts';
import {
  guardWorkflowId,
  MESSAGE_TRAFFIC_TYPES,
  OUTCOMES,
  PENDING_STATES,
  SA,
  type GuardStatus,
} from '../workflows/contract.ts';
import { codecFromConfig, dataConverter, devKeyFile, PayloadDecryptionError } from './codec.ts';
import { tlsOptions } from './connection.ts';
import { GuardClient, type GuardSummary } from './guard-client.ts';
import { parseDuration, parseTrackInput, trackInputSchema, ValidationError, type TrackInput } from './track-input.ts';

/** Exit codes, also listed in `rbm-guard --help`. */
export const EXIT = { ok: 0, failed: 1, usage: 2, unreachable: 3, notFound: 4 } as const;

export interface CliIo {
  stdout(text: string): void;
  stderr(text: string): void;
  /** The environment the config module reads (default: process.env). */
  env?: Record<string, string | undefined>;
  /** How long to wait for Temporal before reporting it unreachable (default 5 s). */
  connectTimeoutMs?: number;
  /** How long `status` waits for a worker to answer the guard's status query (default 10 s). */
  queryTimeoutMs?: number;
  /** Help text width (default 80). */
  columns?: number;
}

const ALL_STATES = [...PENDING_STATES, ...OUTCOMES] as const;
/** gRPC status codes the CLI explains (grpc-js's `status` enum, without importing grpc-js itself). */
const GRPC = { CANCELLED: 1, DEADLINE_EXCEEDED: 4, PERMISSION_DENIED: 7, UNAVAILABLE: 14, UNAUTHENTICATED: 16 } as const;
const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;
const DEFAULT_QUERY_TIMEOUT_MS = 10_000;
const DEFAULT_LIST_LIMIT = 100;

/** A failure the CLI explains itself: one line, one exit code. */
class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
    this.name = 'CliError';
  }
}
const usage = (message: string) => new CliError(message, EXIT.usage);

/** Runs one command line (arguments after the program name) and resolves with its exit code. */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  const session = new Session(io);
  const program = buildProgram(session, io);
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return session.exitCode;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Commander has already written its one-line message (or the help text).
      return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    const { message, exitCode } = explain(err, session);
    io.stderr(`error: ${oneLine(message)}\n`);
    return exitCode;
  } finally {
    await session.close();
  }
}

/** The process entry: real stdout/stderr, exit code on the process. */
export async function main(): Promise<void> {
  // `rbm-guard list | head` closes the pipe early: that is not an error.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  });
  process.exitCode = await runCli(process.argv.slice(2), {
    stdout: (text) => void process.stdout.write(text),
    stderr: (text) => void process.stderr.write(text),
    columns: process.stdout.isTTY ? process.stdout.columns : undefined,
  });
}

// ---- the connection, made only once the input is known to be good ----

class Session {
  exitCode: number = EXIT.ok;
  config: Config | undefined;
  address = '';
  connection: Connection | undefined;
  client: Client | undefined;

  constructor(private readonly io: CliIo) {}

  loadConfig(): Config {
    this.config ??= loadConfig(this.io.env ?? process.env);
    // Without TEMPORAL_ADDRESS the service runs an embedded dev server on TEMPORAL_DEV_PORT: talk to that.
    this.address = this.config.TEMPORAL_ADDRESS ?? `127.0.0.1:${this.config.TEMPORAL_DEV_PORT}`;
    return this.config;
  }

  get namespace(): string {
    return this.config?.TEMPORAL_NAMESPACE ?? 'default';
  }

  async guards(): Promise<GuardClient> {
    const config = this.loadConfig();
    // The service's key ring, resolved before connecting (a key problem is a config error). The CLI
    // never generates the embedded server's dev key: a key of its own would write payloads no
    // worker can read.
    if (
      !config.TEMPORAL_ADDRESS &&
      config.RBM_GUARD_ENCRYPTION === 'on' &&
      !config.RBM_GUARD_ENCRYPTION_KEYS &&
      !config.RBM_GUARD_ENCRYPTION_KEY_FILE &&
      !existsSync(devKeyFile(config.RBM_GUARD_DATA_DIR))
    ) {
      throw usage(
        `no encryption key: ${devKeyFile(config.RBM_GUARD_DATA_DIR)} (the embedded server's) does not exist — run this where \`npm start\` runs, or set RBM_GUARD_DATA_DIR or RBM_GUARD_ENCRYPTION_KEYS`,
      );
    }
    const codec = codecFromConfig(config);
    let tls: ReturnType<typeof tlsOptions>;
    try {
      tls = tlsOptions(config);
    } catch (err) {
      throw usage(`cannot read the TLS certificate or key (TEMPORAL_TLS_CERT, TEMPORAL_TLS_KEY): ${errorText(err)}`);
    }
    const timeoutMs = this.io.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    try {
      this.connection = await Connection.connect({
        address: this.address,
        tls,
        apiKey: config.TEMPORAL_API_KEY,
        connectTimeout: timeoutMs,
      });
    } catch (err) {
      const cause = err instanceof ServiceError && err.cause ? err.cause : err;
      throw this.unreachable(/before the deadline/i.test(errorText(cause)) ? `no answer within ${timeoutMs / 1000}s` : errorText(cause));
    }
    this.client = new Client({ connection: this.connection, namespace: config.TEMPORAL_NAMESPACE, dataConverter: dataConverter(codec) });
    return new GuardClient(this.client, config.TEMPORAL_TASK_QUEUE);
  }

  unreachable(reason: string): CliError {
    const hint = this.config?.TEMPORAL_ADDRESS ? 'is the server up?' : 'TEMPORAL_ADDRESS is unset; is `npm start` running?';
    return new CliError(`cannot reach Temporal at ${this.address}: ${oneLine(reason)} — ${hint}`, EXIT.unreachable);
  }

  async close(): Promise<void> {
    await this.connection?.close().catch(() => undefined);
  }
}

// ---- the commands ----

function buildProgram(session: Session, io: CliIo): Command {
  const program = new Command('rbm-guard')
    .description('Operate rbm-guard: track RBM messages, inspect, extend and cancel their guards.')
    .version(packageVersion(), '-V, --version')
    .configureOutput({
      writeOut: (text) => io.stdout(text),
      writeErr: (text) => io.stderr(text),
      // Commander appends suggestions on a second line; operators get one line.
      outputError: (text, write) => write(`${oneLine(text)}\n`),
      getOutHelpWidth: () => io.columns ?? 80,
      getErrHelpWidth: () => io.columns ?? 80,
    })
    .exitOverride()
    .showSuggestionAfterError(true)
    .addHelpText(
      'after',
      `
Connection (environment, as for the service):
  TEMPORAL_ADDRESS     host:port of Temporal; unset: 127.0.0.1:$TEMPORAL_DEV_PORT
                       (default 127.0.0.1:7233, the embedded server of \`npm start\`)
  TEMPORAL_NAMESPACE   default: default
  TEMPORAL_TASK_QUEUE  default: rbm-guard
  TEMPORAL_API_KEY, TEMPORAL_TLS_CERT, TEMPORAL_TLS_KEY  Temporal Cloud / mTLS
  RBM_GUARD_ENCRYPTION_KEYS or RBM_GUARD_ENCRYPTION_KEY_FILE  the service's payload keys
                       (required with TEMPORAL_ADDRESS; unset: the embedded server's
                       dev key in RBM_GUARD_DATA_DIR, default .data)

A guard's id is rbm-guard/<agentId>/<messageId>, as \`track\` prints it.
Exit codes: 0 ok, 1 refused or partly done, 2 bad input, 3 Temporal unreachable, 4 guard not found.`,
    );

  program
    .command('track')
    .description('start guarding a sent RBM message')
    .option('--agent <id>', 'RBM agent id (default: $RBM_AGENT_ID)')
    .requiredOption('--message-id <id>', 'the RBM messageId the backend sent')
    .requiredOption('--phone <e164>', 'recipient, E.164 (e.g. +14155550100)')
    .addOption(new Option('--stale-at <iso>', 'deadline: ISO-8601 date-time with a zone').conflicts('staleIn'))
    .addOption(new Option('--stale-in <duration>', 'deadline from now: 90s, 10m, 2h, 1d').conflicts('staleAt'))
    .option('--fallback-text <text>', 'SMS sent once if the message is revoked (default: no fallback)')
    .addOption(
      new Option('--traffic-type <type>', `${MESSAGE_TRAFFIC_TYPES.join(', ')} (default: TRANSACTION)`).argParser(
        oneOf(MESSAGE_TRAFFIC_TYPES, 'traffic type'),
      ),
    )
    .option('--json', 'machine-readable output')
    .action(async (opts: TrackOptions) => trackCommand(session, io, opts));

  program
    .command('status')
    .description("a guard's state and timeline")
    .argument('<id>', 'guard id')
    .option('--json', 'machine-readable output')
    .action(async (id: string, opts: { json?: boolean }) => {
      const workflowId = checkGuardId(id);
      session.loadConfig();
      const status = await statusWithin(session, await session.guards(), workflowId, io.queryTimeoutMs ?? DEFAULT_QUERY_TIMEOUT_MS);
      io.stdout(opts.json ? json(status) : renderStatus(status));
    });

  program
    .command('cancel')
    .description('cancel a guard, or in bulk with --agent and --older-than')
    .argument('[id]', 'guard id')
    .option('--reason <text>', 'recorded in the timeline')
    .option('--agent <id>', "bulk: this agent's pending guards…")
    .option('--older-than <duration>', 'bulk: …started longer ago than this (e.g. 1h)')
    .option('--dry-run', 'bulk: list what would be cancelled, cancel nothing')
    .option('--json', 'machine-readable output')
    .action(async (id: string | undefined, opts: CancelOptions) => {
      if (id !== undefined) return cancelOne(session, io, id, opts);
      if (opts.agent === undefined && opts.olderThan === undefined) {
        throw usage('give a guard id, or --agent and --older-than for a bulk cancel');
      }
      return cancelBulk(session, io, opts);
    });

  program
    .command('extend')
    .description("move a pending guard's deadline")
    .argument('<id>', 'guard id')
    .requiredOption('--stale-at <iso>', 'new deadline: ISO-8601 date-time with a zone, in the future')
    .option('--json', 'machine-readable output')
    .action(async (id: string, opts: { staleAt: string; json?: boolean }) => {
      const workflowId = checkGuardId(id);
      const staleAt = checkFutureDate('--stale-at', opts.staleAt);
      session.loadConfig();
      const guards = await session.guards();
      const status = await whenOpen(guards, workflowId, 'extend', () => guards.extend(workflowId, staleAt));
      io.stdout(opts.json ? json(status) : `${workflowId}: deadline moved to ${status.staleAt ?? staleAt.toISOString()} (state ${status.state})\n`);
    });

  program
    .command('list')
    .description('list guards, newest first')
    .addOption(new Option('--state <state>', `only this state: ${ALL_STATES.join(', ')}`).argParser(oneOf(ALL_STATES, 'state')))
    .addOption(new Option('--outcome <outcome>', `only this outcome: ${OUTCOMES.join(', ')}`).argParser(oneOf(OUTCOMES, 'outcome')))
    .option('--agent <id>', "only this agent's guards")
    .addOption(new Option('--limit <n>', 'at most n guards').argParser(positiveInt).default(DEFAULT_LIST_LIMIT))
    .option('--json', 'machine-readable output')
    .action(async (opts: ListOptions) => {
      if (opts.agent !== undefined) checkAgent('--agent', opts.agent);
      session.loadConfig();
      const guards = await (await session.guards()).list({ state: opts.state, outcome: opts.outcome, agentId: opts.agent, limit: opts.limit });
      if (opts.json) {
        io.stdout(json(guards));
        return;
      }
      io.stdout(guards.length ? renderList(guards) : 'no guards match\n');
      if (guards.length >= opts.limit) io.stdout(`(first ${opts.limit}; raise --limit for more)\n`);
    });

  return program;
}

interface TrackOptions {
  agent?: string;
  messageId: string;
  phone: string;
  staleAt?: string;
  staleIn?: string;
  fallbackText?: string;
  trafficType?: (typeof MESSAGE_TRAFFIC_TYPES)[number];
  json?: boolean;
}
interface CancelOptions {
  reason?: string;
  agent?: string;
  olderThan?: string;
  dryRun?: boolean;
  json?: boolean;
}
interface ListOptions {
  state?: (typeof ALL_STATES)[number];
  outcome?: (typeof OUTCOMES)[number];
  agent?: string;
  limit: number;
  json?: boolean;
}

async function trackCommand(session: Session, io: CliIo, opts: TrackOptions): Promise<void> {
  const config = session.loadConfig();
  const agentId = opts.agent ?? config.RBM_AGENT_ID;
  if (agentId === undefined) throw usage('--agent is required (or set RBM_AGENT_ID)');
  if (opts.staleAt === undefined && opts.staleIn === undefined) throw usage('--stale-at or --stale-in is required');
  const input: TrackInput = {
    agentId,
    messageId: opts.messageId,
    phone: opts.phone,
    staleAt: opts.staleAt,
    staleIn: opts.staleIn,
    fallbackText: opts.fallbackText,
    trafficType: opts.trafficType,
  };
  // Validate (and turn --stale-in into a deadline) before connecting; the guard gets this exact deadline.
  const message = parseTrackInput(input);
  const result = await (await session.guards()).track({ ...input, staleIn: undefined, staleAt: message.staleAt });
  if (opts.json) {
    io.stdout(json({ ...result, staleAt: message.staleAt, fallback: message.fallback?.channel ?? null }));
    return;
  }
  if (result.alreadyClosed) {
    io.stdout(`${result.workflowId}: this message's guard has already ended; nothing new started (see: rbm-guard status ${result.workflowId})\n`);
    return;
  }
  io.stdout(
    fields([
      ['guarding', result.workflowId],
      ['stale at', `${message.staleAt} (${relative(message.staleAt)})`],
      ['fallback', message.fallback ? message.fallback.channel : 'none'],
      ['traffic', message.trafficType],
      ['run', result.runId ?? '—'],
    ]),
  );
}

async function cancelOne(session: Session, io: CliIo, id: string, opts: CancelOptions): Promise<void> {
  if (opts.agent !== undefined || opts.olderThan !== undefined) throw usage('give a guard id or --agent/--older-than, not both');
  if (opts.dryRun) throw usage('--dry-run applies to a bulk cancel (--agent/--older-than) only');
  const workflowId = checkGuardId(id);
  session.loadConfig();
  const guards = await session.guards();
  const status = await whenOpen(guards, workflowId, 'cancel', () => guards.cancel(workflowId, opts.reason));
  io.stdout(opts.json ? json(status) : `${workflowId}: ${status.state}\n`);
}

async function cancelBulk(session: Session, io: CliIo, opts: CancelOptions): Promise<void> {
  if (opts.agent === undefined) throw usage('--agent is required for a bulk cancel (with --older-than)');
  if (opts.olderThan === undefined) throw usage('--older-than is required for a bulk cancel (e.g. --older-than 1h)');
  const agentId = checkAgent('--agent', opts.agent);
  const olderThanMs = parseDuration(opts.olderThan);
  if (olderThanMs === undefined) throw usage(`--older-than: not a duration like 90s, 10m or 2h: ${opts.olderThan}`);
  session.loadConfig();
  const guards = await session.guards();

  if (opts.dryRun) {
    const startedBefore = new Date(Date.now() - olderThanMs);
    const pending = await guards.list({ agentId, startedBefore, open: true, limit: 100_000 });
    if (opts.json) io.stdout(json({ dryRun: true, wouldCancel: pending.map((g) => g.workflowId) }));
    else io.stdout(pending.length ? `would cancel ${count(pending.length, 'guard')}:\n${renderList(pending)}` : 'no pending guards match\n');
    return;
  }

  const result = await guards.cancelMany({ agentId, olderThanMs, reason: opts.reason });
  if (result.skipped.length) session.exitCode = EXIT.failed;
  if (opts.json) {
    io.stdout(json(result));
    return;
  }
  let out = `cancelled ${count(result.cancelled.length, 'guard')} of ${agentId} started more than ${opts.olderThan} ago\n`;
  for (const workflowId of result.cancelled) out += `  ${workflowId}\n`;
  if (result.skipped.length) {
    out += `skipped ${result.skipped.length}:\n` + indent(table(['ID', 'REASON'], result.skipped.map((s) => [s.workflowId, oneLine(s.reason)])));
  }
  io.stdout(out);
}

/**
 * A running guard's status comes from a worker (query): without one the server would hold the call
 * for a long while. Bound it, and say what the server itself knows when no worker answers.
 */
async function statusWithin(session: Session, guards: GuardClient, workflowId: string, timeoutMs: number): Promise<GuardStatus> {
  const { connection, client } = session;
  if (!connection || !client) return guards.status(workflowId);
  try {
    return await connection.withDeadline(Date.now() + timeoutMs, () => guards.status(workflowId));
  } catch (err) {
    // A deadline that lapses while the call is queued surfaces as CANCELLED ("Call cancelled") in grpc-js.
    const code = grpcCause(err)?.code;
    if (code !== GRPC.DEADLINE_EXCEEDED && code !== GRPC.CANCELLED) throw err;
    const info = await connection.withDeadline(Date.now() + timeoutMs, () => client.workflow.getHandle(workflowId).describe());
    const state = info.typedSearchAttributes.get(SA.state) ?? 'unknown';
    throw new CliError(
      `${workflowId} is ${info.status.name.toLowerCase()} (${SA.state.name}=${state}) but no worker answered its status query within ${timeoutMs / 1000}s — is a worker polling task queue ${info.taskQueue}?`,
      EXIT.failed,
    );
  }
}

/** An update on a guard that has already ended: say how it ended instead of "not found". */
async function whenOpen(guards: GuardClient, workflowId: string, verb: string, run: () => Promise<GuardStatus>): Promise<GuardStatus> {
  try {
    return await run();
  } catch (err) {
    if (err instanceof WorkflowNotFoundError && /already completed/i.test(err.message)) {
      const final = await guards.status(workflowId).catch(() => undefined);
      throw new CliError(`cannot ${verb} ${workflowId}: the guard has already ended${final ? ` (${final.state})` : ''}`, EXIT.failed);
    }
    if (err instanceof WorkflowUpdateFailedError) {
      throw new CliError(`cannot ${verb} ${workflowId}: ${errorText(err.cause ?? err)}`, EXIT.failed);
    }
    throw err;
  }
}

// ---- input checks that need no server ----

/** A guard id is exactly guardWorkflowId(agentId, messageId) for a valid agent id and message id. */
function checkGuardId(id: string): string {
  const match = /^rbm-guard\/([^/]+)\/(.+)$/.exec(id);
  const ok =
    match !== null &&
    !/\s/.test(id) &&
    trackInputSchema.shape.agentId.safeParse(match[1]).success &&
    trackInputSchema.shape.messageId.safeParse(match[2]).success &&
    guardWorkflowId(match[1] ?? '', match[2] ?? '') === id;
  if (!ok) throw usage(`bad guard id '${id}': expected rbm-guard/<agentId>/<messageId>, as track prints it`);
  return id;
}

function checkAgent(flag: string, agentId: string): string {
  const parsed = trackInputSchema.shape.agentId.safeParse(agentId);
  if (!parsed.success) throw usage(`${flag}: ${parsed.error.issues[0]?.message ?? 'not an agent id'}: '${agentId}'`);
  return parsed.data;
}

/** Full ISO-8601 date-times with a zone only, as for track: a bare date or "tomorrow" is ambiguous. */
function checkFutureDate(flag: string, text: string): Date {
  const at = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/i.test(text) ? new Date(text) : undefined;
  if (!at || Number.isNaN(at.getTime())) throw usage(`${flag}: not an ISO-8601 date-time with a zone: ${text}`);
  if (at.getTime() <= Date.now()) throw usage(`${flag}: ${at.toISOString()} is in the past`);
  return at;
}

/** An option parser accepting one of a list, case-insensitively. */
function oneOf<T extends string>(values: readonly T[], what: string) {
  return (value: string): T => {
    const upper = value.toUpperCase();
    if ((values as readonly string[]).includes(upper)) return upper as T;
    throw new InvalidArgumentError(`Unknown ${what}; expected one of ${values.join(', ')}.`);
  };
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError('Expected a whole number ≥ 1.');
  return n;
}

// ---- failures → one line and an exit code ----

const FLAG_OF_FIELD: Record<string, string> = {
  agentId: '--agent',
  messageId: '--message-id',
  phone: '--phone',
  staleAt: '--stale-at',
  staleIn: '--stale-in',
  fallbackText: '--fallback-text',
  trafficType: '--traffic-type',
  state: '--state',
  outcome: '--outcome',
  limit: '--limit',
  workflowId: 'guard id',
};

function explain(err: unknown, session: Session): { message: string; exitCode: number } {
  if (err instanceof CliError) return { message: err.message, exitCode: err.exitCode };
  if (err instanceof ValidationError) {
    return { message: err.issues.map((i) => `${FLAG_OF_FIELD[i.field] ?? i.field}: ${i.message}`).join('; '), exitCode: EXIT.usage };
  }
  if (err instanceof ConfigError) {
    return { message: `invalid configuration: ${err.issues.map((i) => `${i.variable}: ${i.message}`).join('; ')}`, exitCode: EXIT.usage };
  }
  if (err instanceof WorkflowNotFoundError) {
    return { message: `no guard ${err.workflowId || ''} in namespace ${session.namespace}`.replace('  ', ' '), exitCode: EXIT.notFound };
  }
  if (err instanceof NamespaceNotFoundError) {
    return { message: `namespace ${err.namespace} does not exist on Temporal at ${session.address} (TEMPORAL_NAMESPACE)`, exitCode: EXIT.unreachable };
  }
  const undecryptable = causeOf(err, PayloadDecryptionError);
  if (undecryptable) {
    return {
      message: `cannot decrypt the guard's data: ${undecryptable.message} — use the service's keys (RBM_GUARD_ENCRYPTION_KEYS or RBM_GUARD_ENCRYPTION_KEY_FILE)`,
      exitCode: EXIT.failed,
    };
  }
  if (err instanceof WorkflowFailedError) {
    return { message: `the guard ended without a status: ${errorText(err.cause ?? err)}`, exitCode: EXIT.failed };
  }
  const grpc = grpcCause(err);
  if (grpc) {
    if (grpc.code === GRPC.UNAVAILABLE || grpc.code === GRPC.DEADLINE_EXCEEDED) {
      return { message: session.unreachable(grpc.details || grpc.message).message, exitCode: EXIT.unreachable };
    }
    if (grpc.code === GRPC.UNAUTHENTICATED || grpc.code === GRPC.PERMISSION_DENIED) {
      return {
        message: `Temporal at ${session.address} refused the credentials (TEMPORAL_API_KEY / TEMPORAL_TLS_CERT): ${grpc.details || grpc.message}`,
        exitCode: EXIT.unreachable,
      };
    }
    return { message: `Temporal refused the request: ${grpc.details || grpc.message}`, exitCode: EXIT.failed };
  }
  return { message: `unexpected failure: ${errorText(err)}`, exitCode: EXIT.failed };
}

function causeOf<T extends Error>(err: unknown, type: new (...args: never[]) => T): T | undefined {
  for (let e: unknown = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof type) return e;
  }
  return undefined;
}

function grpcCause(err: unknown): { code: number; details: string; message: string } | undefined {
  for (let e: unknown = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if (isGrpcServiceError(e)) return { code: e.code, details: e.details, message: e.message };
  }
  return undefined;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').trim();
}

// ---- output ----

function json(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}

function renderStatus(s: GuardStatus): string {
  const head = fields([
    ['guard', s.workflowId],
    ['state', s.state],
    ['outcome', s.outcome ?? '—'],
    ['agent', s.agentId],
    ['message', s.messageId],
    ['stale at', s.staleAt ? `${s.staleAt} (${relative(s.staleAt)})` : '—'],
    ['revoke rounds', String(s.revokeRounds)],
  ]);
  const timeline = table(
    ['TIME', 'STATE', 'EVENT', 'REASON'],
    s.timeline.map((t) => [t.at, t.state, t.event, oneLine(t.reason)]),
  );
  return `${head}\n${timeline}`;
}

function renderList(guards: GuardSummary[]): string {
  return table(
    ['ID', 'STATE', 'OUTCOME', 'STALE AT', 'STARTED'],
    guards.map((g) => [g.workflowId, g.state ?? '—', g.outcome ?? '—', g.staleAt ?? '—', g.startTime]),
  );
}

function fields(rows: [string, string][]): string {
  const width = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(width)}  ${v}\n`).join('');
}

/** Columns padded to their widest cell, two spaces apart; the last column is not padded. */
export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [headers, ...rows].map(line).join('\n') + '\n';
}

function indent(text: string): string {
  return text.replace(/^(?=.)/gm, '  ');
}

function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}

/** "in 9m 59s" / "3h 2m ago" */
function relative(iso: string, now = Date.now()): string {
  const ms = Date.parse(iso) - now;
  let s = Math.round(Math.abs(ms) / 1000);
  const parts: string[] = [];
  for (const [unit, size] of [['d', 86_400], ['h', 3_600], ['m', 60], ['s', 1]] as const) {
    if (s >= size || (unit === 's' && parts.length === 0)) {
      parts.push(`${Math.floor(s / size)}${unit}`);
      s %= size;
    }
    if (parts.length === 2) break;
  }
  return ms >= 0 ? `in ${parts.join(' ')}` : `${parts.join(' ')} ago`;
}

function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

function isEntry(): boolean {
  const script = process.argv[1];
  if (!script) return false;
  try {
    return pathToFileURL(realpathSync(script)).href === import.meta.url;
  } catch {
    return false;
  }
}

if (isEntry()) await main();
