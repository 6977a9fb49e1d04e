// The command line's shape: commands, options, help. Loading it costs commander and the contract's
// name lists only; each command's work (and the Temporal client) is imported when it runs, so
// `--help`, `--version` and usage errors answer quickly.
import { readFileSync } from 'node:fs';
import { Command, Option } from 'commander';
// The contract's import-free part: the name lists without the Temporal SDK, which --help should not load.
import { ALL_STATES, MESSAGE_TRAFFIC_TYPES, OUTCOMES, type GuardState, type MessageTrafficType, type Outcome } from '../../workflows/names.ts';
import { oneOf, positiveInt } from './checks.ts';
import { oneLine } from './errors.ts';
import type { Session } from './session.ts';

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

/** One run of the CLI: its output, its exit code so far, and the Temporal session once one is needed. */
export interface CliContext {
  io: CliIo;
  exitCode: number;
  session?: Session;
}

export interface TrackOptions {
  agent?: string;
  messageId: string;
  phone: string;
  staleAt?: string;
  staleIn?: string;
  expireTime?: string;
  ttl?: string;
  fallbackText?: string;
  trafficType?: MessageTrafficType;
  priority?: number;
  json?: boolean;
}
export interface CancelOptions {
  reason?: string;
  agent?: string;
  olderThan?: string;
  dryRun?: boolean;
  json?: boolean;
}
export interface ListOptions {
  state?: GuardState;
  outcome?: Outcome;
  agent?: string;
  limit: number;
  json?: boolean;
}

const DEFAULT_LIST_LIMIT = 100;
const commands = () => import('./commands.ts');

export function buildProgram(ctx: CliContext): Command {
  const { io } = ctx;
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
    .addOption(new Option('--expire-time <iso>', 'the RBM message\'s own expireTime, if the backend set one').conflicts('ttl'))
    .addOption(new Option('--ttl <duration>', 'the RBM message\'s own ttl, if the backend set one (from now)').conflicts('expireTime'))
    .option('--fallback-text <text>', 'SMS sent once if the message is revoked (default: no fallback)')
    .addOption(
      new Option('--traffic-type <type>', `${MESSAGE_TRAFFIC_TYPES.join(', ')} (default: TRANSACTION)`).argParser(
        oneOf(MESSAGE_TRAFFIC_TYPES, 'traffic type'),
      ),
    )
    .addOption(new Option('--priority <n>', 'Temporal task priority, 1 (first) to 5 (default: by traffic type)').argParser(positiveInt))
    .option('--json', 'machine-readable output')
    .action(async (opts: TrackOptions) => (await commands()).track(ctx, opts));

  program
    .command('status')
    .description("a guard's state and timeline")
    .argument('<id>', 'guard id')
    .option('--json', 'machine-readable output')
    .action(async (id: string, opts: { json?: boolean }) => (await commands()).status(ctx, id, opts));

  program
    .command('cancel')
    .description('cancel a guard, or in bulk with --agent and --older-than')
    .argument('[id]', 'guard id')
    .option('--reason <text>', 'recorded in the timeline')
    .option('--agent <id>', "bulk: this agent's pending guards…")
    .option('--older-than <duration>', 'bulk: …started longer ago than this (e.g. 1h)')
    .option('--dry-run', 'bulk: list what would be cancelled, cancel nothing')
    .option('--json', 'machine-readable output')
    .action(async (id: string | undefined, opts: CancelOptions) => (await commands()).cancel(ctx, id, opts));

  program
    .command('extend')
    .description("move a pending guard's deadline")
    .argument('<id>', 'guard id')
    .requiredOption('--stale-at <iso>', 'new deadline: ISO-8601 date-time with a zone, in the future')
    .option('--json', 'machine-readable output')
    .action(async (id: string, opts: { staleAt: string; json?: boolean }) => (await commands()).extend(ctx, id, opts));

  program
    .command('list')
    .description('list guards, newest first')
    .addOption(new Option('--state <state>', `only this state: ${ALL_STATES.join(', ')}`).argParser(oneOf(ALL_STATES, 'state')))
    .addOption(new Option('--outcome <outcome>', `only this outcome: ${OUTCOMES.join(', ')}`).argParser(oneOf(OUTCOMES, 'outcome')))
    .option('--agent <id>', "only this agent's guards")
    .addOption(new Option('--limit <n>', 'at most n guards').argParser(positiveInt).default(DEFAULT_LIST_LIMIT))
    .option('--json', 'machine-readable output')
    .action(async (opts: ListOptions) => (await commands()).list(ctx, opts));

  program
    .command('setup')
    .description('create the namespace (retention from TEMPORAL_NAMESPACE_RETENTION_DAYS) and register the search attributes; idempotent')
    .option('--namespace <ns>', 'default: TEMPORAL_NAMESPACE')
    .addOption(new Option('--retention-days <n>', 'default: TEMPORAL_NAMESPACE_RETENTION_DAYS (30)').argParser(positiveInt))
    .option('--json', 'machine-readable output')
    .action(async (opts: { namespace?: string; retentionDays?: number; json?: boolean }) => (await import('../setup.ts')).setupCommand(ctx, opts));

  return program;
}

function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}
