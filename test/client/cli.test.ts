// The operators' CLI: bad input gives one line on stderr and a distinct exit code (checked in-process
// and once through the real bin), and every command does what it says against the suite's Temporal
// server with a worker, the RBM simulator and the SMS sink.
import { spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { EXIT, runCli, type CliIo } from '../../client/cli.ts';
import type { GuardSummary } from '../../client/guard-client.ts';
import { freePort } from '../../service/engine/dev-server.ts';
import { guardWorkflowId, OUTCOMES, PENDING_STATES, WORKFLOW_TYPE, type GuardStatus } from '../../workflows/contract.ts';
import { guardStartOptions } from '../../client/start-options.ts';
import { startGuardStack, type GuardStack } from '../support/stack.ts';

const BIN = fileURLToPath(new URL('../../bin/rbm-guard.js', import.meta.url));
const PHONE = '+14155550142';
const ID = 'rbm-guard/agent-1/msg-1';
/** A key ring of its own: against a real Temporal the CLI refuses to run without one. */
const KEYS = { RBM_GUARD_ENCRYPTION_KEYS: `cli-test:${randomBytes(32).toString('base64')}` };

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the CLI in-process with exactly this environment (nothing inherited). */
async function cli(args: string[], env: Record<string, string>, io: Partial<CliIo> = {}): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const code = await runCli(args, {
    stdout: (t) => void (stdout += t),
    stderr: (t) => void (stderr += t),
    env,
    ...io,
  });
  return { code, stdout, stderr };
}

/** Runs bin/rbm-guard.js as operators do: a new Node process. */
function bin(args: string[], env: Record<string, string>): Promise<Run> {
  const base = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith('TEMPORAL_') && !k.startsWith('RBM_')),
  );
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...base, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

function expectError(run: Run, exitCode: number, line: string) {
  expect({ code: run.code, stderr: run.stderr, stdout: run.stdout }).toEqual({ code: exitCode, stderr: `${line}\n`, stdout: '' });
}

async function eventually<T>(fn: () => Promise<T>, ok: (value: T) => boolean, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (ok(value)) return value;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms; last value: ${JSON.stringify(value)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const inAnHour = () => new Date(Date.now() + 3_600_000).toISOString();

describe('bad input: one line on stderr, exit code, nothing reaches Temporal', () => {
  // Nothing listens on this address: a command that got as far as connecting would exit 3, not 2.
  let env: Record<string, string>;
  beforeAll(async () => {
    env = { TEMPORAL_ADDRESS: `127.0.0.1:${await freePort()}`, ...KEYS };
  });
  const track = (...extra: string[]) => ['track', '--agent', 'agent-1', '--message-id', 'msg-1', '--phone', PHONE, ...extra];

  it.each([
    ['unknown command', ['stauts', ID], "error: unknown command 'stauts' (Did you mean status?)"],
    ['unknown option', ['list', '--bogus'], "error: unknown option '--bogus'"],
    ['bad id', ['status', 'msg-1'], "error: bad guard id 'msg-1': expected rbm-guard/<agentId>/<messageId>, as track prints it"],
    ['bad id (agent with a space)', ['cancel', 'rbm-guard/agent 1/msg-1'], "error: bad guard id 'rbm-guard/agent 1/msg-1': expected rbm-guard/<agentId>/<messageId>, as track prints it"],
    ['missing id', ['status'], "error: missing required argument 'id'"],
    ['bad date', track('--stale-at', 'tomorrow'), 'error: --stale-at: not an ISO-8601 date-time with a zone: tomorrow'],
    ['date without a zone', track('--stale-at', '2030-01-01T10:00:00'), 'error: --stale-at: not an ISO-8601 date-time with a zone: 2030-01-01T10:00:00'],
    ['date far in the past', track('--stale-at', '2020-01-01T00:00:00Z'), 'error: --stale-at: 2020-01-01T00:00:00.000Z is more than 24 h in the past: a clock or unit error?'],
    ['both platform TTL forms', track('--stale-in', '1m', '--expire-time', '2099-01-01T00:00:00Z', '--ttl', '1h'), "error: option '--expire-time <iso>' cannot be used with option '--ttl <duration>'"],
    ['bad duration', track('--stale-in', '10x'), 'error: --stale-in: not a duration like 90s, 10m or 2h (or positive milliseconds): 10x'],
    ['no deadline', track(), 'error: --stale-at or --stale-in is required'],
    ['two deadlines', track('--stale-in', '10m', '--stale-at', '2030-01-01T00:00:00Z'), "error: option '--stale-at <iso>' cannot be used with option '--stale-in <duration>'"],
    ['bad phone', ['track', '--agent', 'a', '--message-id', 'm', '--phone', '555-0100', '--stale-in', '10m'], 'error: --phone: must be an E.164 number like +14155550100'],
    ['no agent', ['track', '--message-id', 'm', '--phone', PHONE, '--stale-in', '10m'], 'error: --agent is required (or set RBM_AGENT_ID)'],
    ['unknown traffic type', track('--stale-in', '10m', '--traffic-type', 'spam'), "error: option '--traffic-type <type>' argument 'spam' is invalid. Unknown traffic type; expected one of AUTHENTICATION, TRANSACTION, PROMOTION, SERVICEREQUEST, ACKNOWLEDGEMENT."],
    ['priority past 5', track('--stale-in', '10m', '--priority', '6'), 'error: --priority: at most 5 (last)'],
    ['priority not a number', track('--stale-in', '10m', '--priority', 'high'), "error: option '--priority <n>' argument 'high' is invalid. Expected a whole number ≥ 1."],
    ['extend: bad date', ['extend', ID, '--stale-at', 'next week'], 'error: --stale-at: not an ISO-8601 date-time with a zone: next week'],
    ['extend: bare date', ['extend', ID, '--stale-at', '2030-01-01'], 'error: --stale-at: not an ISO-8601 date-time with a zone: 2030-01-01'],
    ['extend: no date', ['extend', ID], "error: required option '--stale-at <iso>' not specified"],
    ['unknown state', ['list', '--state', 'LOST'], `error: option '--state <state>' argument 'LOST' is invalid. Unknown state; expected one of ${[...PENDING_STATES, ...OUTCOMES].join(', ')}.`],
    ['a state is not an outcome', ['list', '--outcome', 'AWAITING_DELIVERY'], `error: option '--outcome <outcome>' argument 'AWAITING_DELIVERY' is invalid. Unknown outcome; expected one of ${OUTCOMES.join(', ')}.`],
    ['bad limit', ['list', '--limit', '0'], "error: option '--limit <n>' argument '0' is invalid. Expected a whole number ≥ 1."],
    ['cancel: nothing to cancel', ['cancel'], 'error: give a guard id, or --agent and --older-than for a bulk cancel'],
    ['cancel: id and bulk', ['cancel', ID, '--agent', 'agent-1'], 'error: give a guard id or --agent/--older-than, not both'],
    ['bulk cancel: no age', ['cancel', '--agent', 'agent-1'], 'error: --older-than is required for a bulk cancel (e.g. --older-than 1h)'],
    ['bulk cancel: no agent', ['cancel', '--older-than', '1h'], 'error: --agent is required for a bulk cancel (with --older-than)'],
    ['bulk cancel: bad duration', ['cancel', '--agent', 'agent-1', '--older-than', 'soon'], 'error: --older-than: not a duration like 90s, 10m or 2h: soon'],
    ['bulk cancel: bad agent', ['cancel', '--agent', 'agent 1', '--older-than', '1h'], "error: --agent: letters, digits and . _ @ - only: 'agent 1'"],
    ['dry run of one id', ['cancel', ID, '--dry-run'], 'error: --dry-run applies to a bulk cancel (--agent/--older-than) only'],
  ])('%s → exit 2', async (_name, args, line) => {
    expectError(await cli(args, env), EXIT.usage, line);
  });

  it('an id with a terminal escape or a direction override is echoed escaped, never raw', async () => {
    const run = await cli(['status', 'rbm-guard/agent-1/m-\u001b[2J\u009b31m\u202e'], env);
    expect(run.code).toBe(EXIT.usage);
    expect(run.stderr).toContain('m-\\u001b[2J\\u009b31m\\u202e');
    expect(run.stderr).not.toMatch(/[\u001b\u009b\u202e]/);
  });

  it('a bad environment variable is named → exit 2', async () => {
    expectError(await cli(['status', ID], { TEMPORAL_ADDRESS: 'temporal' }), EXIT.usage, 'error: invalid configuration: TEMPORAL_ADDRESS: expected host:port');
    expectError(
      await cli(['track', '--agent', 'a', '--message-id', 'm', '--phone', PHONE, '--stale-in', '10m'], { TEMPORAL_ADDRESS: '127.0.0.1:1', RBM_GUARD_DEFER_START: 'maybe' }),
      EXIT.usage,
      'error: invalid configuration: RBM_GUARD_DEFER_START: Invalid option: expected one of "on"|"off"',
    );
  });

  it('no encryption key for a real Temporal → exit 2, naming the variable', async () => {
    const run = await cli(['status', ID], { TEMPORAL_ADDRESS: env.TEMPORAL_ADDRESS ?? '' });
    expect(run.code).toBe(EXIT.usage);
    expect(run.stderr).toMatch(/^error: invalid configuration: RBM_GUARD_ENCRYPTION_KEYS: required when TEMPORAL_ADDRESS is set[^\n]*\n$/);
  });

  it('never invents the embedded server’s dev key (its payloads would be unreadable)', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'rbm-guard-cli-'));
    try {
      const run = await cli(['list'], { RBM_GUARD_DATA_DIR: dataDir });
      const keyFile = join(dataDir, 'encryption-keys');
      expectError(
        run,
        EXIT.usage,
        `error: no encryption key: ${keyFile} (the embedded server's) does not exist — run this where \`npm start\` runs, or set RBM_GUARD_DATA_DIR or RBM_GUARD_ENCRYPTION_KEYS`,
      );
      expect(existsSync(keyFile)).toBe(false);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('Temporal unreachable → exit 3, naming the address', async () => {
    const run = await cli(['status', ID], env, { connectTimeoutMs: 500 });
    expectError(run, EXIT.unreachable, `error: cannot reach Temporal at ${env.TEMPORAL_ADDRESS}: no answer within 0.5s — is the server up?`);
  });

  it('without TEMPORAL_ADDRESS it tries the embedded dev server on TEMPORAL_DEV_PORT', async () => {
    const port = await freePort();
    const run = await cli(['list'], { TEMPORAL_DEV_PORT: String(port), ...KEYS }, { connectTimeoutMs: 500 });
    expectError(
      run,
      EXIT.unreachable,
      `error: cannot reach Temporal at 127.0.0.1:${port}: no answer within 0.5s — TEMPORAL_ADDRESS is unset; is \`npm start\` running?`,
    );
  });

  it('--help lists the commands and the connection defaults on stdout, exit 0', async () => {
    const run = await cli(['--help'], {});
    expect(run.code).toBe(EXIT.ok);
    expect(run.stderr).toBe('');
    for (const command of ['track', 'status', 'cancel', 'extend', 'list']) expect(run.stdout).toMatch(new RegExp(`^  ${command} `, 'm'));
    expect(run.stdout).toContain('default 127.0.0.1:7233');
  });

  it('through the real bin: one line, exit code 2, no stack trace', async () => {
    const run = await bin(['status', 'msg-1'], env);
    expectError(run, EXIT.usage, "error: bad guard id 'msg-1': expected rbm-guard/<agentId>/<messageId>, as track prints it");
  });

  it('through the real bin: Temporal unreachable → one line, exit code 3', async () => {
    const run = await bin(['cancel', ID], env);
    expectError(run, EXIT.unreachable, `error: cannot reach Temporal at ${env.TEMPORAL_ADDRESS}: no answer within 5s — is the server up?`);
  });
});

describe('against a Temporal server with a worker', () => {
  let stack: GuardStack;
  let env: Record<string, string>;
  const agent = `cli-${randomUUID().slice(0, 8)}`;
  const run = (...args: string[]) => cli(args, env);
  const json = async <T>(...args: string[]): Promise<T> => {
    const r = await run(...args, '--json');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(EXIT.ok);
    return JSON.parse(r.stdout) as T;
  };
  const list = (...args: string[]) => json<GuardSummary[]>('list', '--agent', agent, ...args);

  beforeAll(async () => {
    stack = await startGuardStack();
    // The worker's key ring, whichever way the stack configures it.
    const encryption = (['RBM_GUARD_ENCRYPTION', 'RBM_GUARD_ENCRYPTION_KEYS', 'RBM_GUARD_ENCRYPTION_KEY_FILE', 'RBM_GUARD_ENCRYPTION_KEY_ID'] as const)
      .flatMap((k) => (stack.config[k] === undefined ? [] : [[k, String(stack.config[k])] as const]));
    env = { TEMPORAL_ADDRESS: inject('temporalAddress'), TEMPORAL_TASK_QUEUE: stack.taskQueue, RBM_AGENT_ID: agent, ...Object.fromEntries(encryption) };
  });
  afterAll(async () => {
    await stack?.close();
  });

  describe('one guard: track → status → list → extend → cancel', () => {
    const workflowId = guardWorkflowId(agent, 'order-1');
    let trackedStaleAt = '';

    it('track (agent from RBM_AGENT_ID) starts a guard with the deadline it prints', async () => {
      const before = Date.now();
      const result = await json<{ workflowId: string; alreadyClosed: boolean; staleAt: string; fallback: string | null }>(
        'track', '--message-id', 'order-1', '--phone', PHONE, '--stale-in', '1h', '--fallback-text', 'Your order shipped',
      );
      expect(result).toMatchObject({ workflowId, alreadyClosed: false, fallback: 'sms' });
      trackedStaleAt = result.staleAt;
      expect(Date.parse(result.staleAt) - before).toBeGreaterThanOrEqual(3_600_000);
      expect(Date.parse(result.staleAt) - Date.now()).toBeLessThanOrEqual(3_600_000);
      const status = await json<GuardStatus>('status', workflowId);
      expect(status).toMatchObject({ state: 'AWAITING_DELIVERY', outcome: null, staleAt: result.staleAt, agentId: agent, messageId: 'order-1' });
    });

    it('status prints the state and the timeline as an aligned table', async () => {
      const r = await run('status', workflowId);
      expect(r.code).toBe(EXIT.ok);
      expect(r.stdout).toMatch(/^state +AWAITING_DELIVERY$/m);
      expect(r.stdout).toMatch(/^outcome +—$/m);
      const lines = r.stdout.split('\n');
      const header = lines.find((l) => l.startsWith('TIME'));
      const row = lines.find((l) => / TRACKED /.test(l));
      expect(header).toMatch(/^TIME +STATE +EVENT +REASON$/);
      expect(row?.indexOf('AWAITING_DELIVERY')).toBe(header?.indexOf('STATE'));
      expect(row?.indexOf('TRACKED')).toBe(header?.indexOf('EVENT'));
    });

    it('the bin prints the same status as JSON', async () => {
      const r = await bin(['status', workflowId, '--json'], env);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(EXIT.ok);
      expect(JSON.parse(r.stdout)).toMatchObject({ workflowId, state: 'AWAITING_DELIVERY' });
    });

    it('list --state finds it (case-insensitive state)', async () => {
      const found = await eventually(() => list('--state', 'awaiting_delivery'), (l) => l.some((g) => g.workflowId === workflowId));
      // A guard awaiting delivery carries no RbmState (only operator-facing states are written): the list says so.
      expect(found.find((g) => g.workflowId === workflowId)).toMatchObject({ state: null, outcome: null, agentId: agent });
      expect(await list('--state', 'CANCELLED')).toEqual([]);
    });

    it('extend moves the deadline', async () => {
      const later = new Date(Date.now() + 2 * 3_600_000).toISOString();
      const r = await run('extend', workflowId, '--stale-at', later);
      expect(r).toEqual({ code: EXIT.ok, stderr: '', stdout: `${workflowId}: deadline moved to ${later} (state AWAITING_DELIVERY)\n` });
      const status = await json<GuardStatus>('status', workflowId);
      expect(status.staleAt).toBe(later);
      expect(status.timeline.at(-1)).toMatchObject({ event: 'EXTEND', state: 'AWAITING_DELIVERY' });
    });

    it('cancel ends it CANCELLED with the reason in the timeline', async () => {
      const r = await run('cancel', workflowId, '--reason', 'order withdrawn');
      expect(r).toEqual({ code: EXIT.ok, stderr: '', stdout: `${workflowId}: CANCELLED\n` });
      const final = await stack.result(workflowId);
      expect(final).toMatchObject({ state: 'CANCELLED', outcome: 'CANCELLED' });
      expect(final.timeline.at(-1)).toMatchObject({ event: 'CANCEL', reason: 'order withdrawn' });
      expect(await json<GuardStatus>('status', workflowId)).toMatchObject({ state: 'CANCELLED' });
    });

    it('cancel or extend of an ended guard → exit 1, saying how it ended', async () => {
      expectError(await run('cancel', workflowId), EXIT.failed, `error: cannot cancel ${workflowId}: the guard has already ended (CANCELLED)`);
      expectError(await run('extend', workflowId, '--stale-at', inAnHour()), EXIT.failed, `error: cannot extend ${workflowId}: the guard has already ended (CANCELLED)`);
    });

    it('tracking the same message again (the same command, later) starts nothing new', async () => {
      const result = await json<{ alreadyClosed: boolean; staleAt: string }>('track', '--message-id', 'order-1', '--phone', PHONE, '--stale-in', '1h', '--fallback-text', 'Your order shipped');
      // The first track's deadline: --stale-in counts from then, as in every other entry point.
      expect(result).toMatchObject({ alreadyClosed: true, created: false, staleAt: trackedStaleAt });
      expect(await json<GuardStatus>('status', workflowId)).toMatchObject({ state: 'CANCELLED' });
    });

    it('tracking another message under the same id → exit 1 naming what differs, nothing changed', async () => {
      const r = await run('track', '--message-id', 'order-1', '--phone', '+14155550199', '--stale-in', '1h', '--fallback-text', 'Your order shipped');
      expect(r.code).toBe(EXIT.failed);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(new RegExp(`^error: .*${workflowId.replaceAll('/', '\\/')}.*phone.*; nothing changed\n$`));
      expect(r.stderr).not.toContain('+14155550199');
    });

    it('list --outcome finds it once cancelled', async () => {
      const found = await eventually(() => list('--outcome', 'CANCELLED'), (l) => l.some((g) => g.workflowId === workflowId));
      expect(found.find((g) => g.workflowId === workflowId)).toMatchObject({ state: 'CANCELLED', outcome: 'CANCELLED' });
    });
  });

  it('a guard tracked before the id rules, whose message id holds escapes, is listed escaped; --json still reads back the id', async () => {
    const messageId = `old-\u001b[2J-\u202e-${randomUUID()}`;
    const workflowId = guardWorkflowId(agent, messageId);
    await stack.client.workflow.start(WORKFLOW_TYPE, {
      workflowId,
      taskQueue: stack.taskQueue,
      args: [{ agentId: agent, messageId, orphanAfterMs: 60_000 }],
      ...guardStartOptions({ agentId: agent, state: 'AWAITING_TRACK' }),
    });
    try {
      const text = await eventually(() => run('list', '--agent', agent), (r) => r.stdout.includes('old-'));
      expect(text.stdout).toContain('old-\\u001b[2J-\\u202e-');
      expect(text.stdout).not.toMatch(/[\u001b\u202e]/);
      const listed = await list();
      expect(listed.map((g) => g.workflowId)).toContain(workflowId);
    } finally {
      await stack.client.workflow.getHandle(workflowId).terminate('test done');
    }
  });

  it('bulk cancel: only the agent’s guards older than the age; --dry-run cancels nothing', async () => {
    const bulkAgent = `${agent}-bulk`;
    const other = `${agent}-other`;
    const ids = [guardWorkflowId(bulkAgent, 'b1'), guardWorkflowId(bulkAgent, 'b2')];
    for (const m of ['b1', 'b2']) await json('track', '--agent', bulkAgent, '--message-id', m, '--phone', PHONE, '--stale-in', '1h');
    await json('track', '--agent', other, '--message-id', 'keep', '--phone', PHONE, '--stale-in', '1h');
    await eventually(() => json<GuardSummary[]>('list', '--agent', bulkAgent, '--state', 'AWAITING_DELIVERY'), (l) => l.length === 2);

    const young = await json<{ cancelled: string[]; skipped: unknown[] }>('cancel', '--agent', bulkAgent, '--older-than', '1h');
    expect(young).toEqual({ cancelled: [], skipped: [] });

    const dry = await json<{ dryRun: boolean; wouldCancel: string[] }>('cancel', '--agent', bulkAgent, '--older-than', '0s', '--dry-run');
    expect(dry.wouldCancel.sort()).toEqual(ids);
    for (const id of ids) expect(await json<GuardStatus>('status', id)).toMatchObject({ state: 'AWAITING_DELIVERY' });

    const r = await run('cancel', '--agent', bulkAgent, '--older-than', '0s', '--reason', 'campaign stopped');
    expect(r.code).toBe(EXIT.ok);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(new RegExp(`^cancelled 2 guards of ${bulkAgent} started more than 0s ago$`, 'm'));
    for (const id of ids) {
      expect(r.stdout).toContain(`  ${id}\n`);
      expect(await stack.result(id)).toMatchObject({ state: 'CANCELLED' });
    }
    expect(await json<GuardStatus>('status', guardWorkflowId(other, 'keep'))).toMatchObject({ state: 'AWAITING_DELIVERY' });
    await json('cancel', guardWorkflowId(other, 'keep'));
  });

  it('a message left undelivered: revoked and sent by SMS once, as status and list show', async () => {
    stack.sim.registerSent({ agentId: agent, messageId: 'otp-1', phone: PHONE, plan: { deliverAfterMs: null } });
    const workflowId = guardWorkflowId(agent, 'otp-1');
    const r = await run('track', '--message-id', 'otp-1', '--phone', PHONE, '--stale-in', '1s', '--fallback-text', 'Your code is 481516', '--traffic-type', 'authentication');
    expect(r.code).toBe(EXIT.ok);
    expect(r.stdout).toMatch(new RegExp(`^guarding +${workflowId}$`, 'm'));
    await stack.waitForState(workflowId, 'FALLBACK_SENT');

    const status = await json<GuardStatus>('status', workflowId);
    expect(status.outcome).toBe('FALLBACK_SENT');
    expect(status.timeline.map((t) => t.state)).toEqual(['AWAITING_DELIVERY', 'REVOKING', 'FALLBACK', 'FALLBACK_SENT']);
    expect(stack.sink.sends.filter((s) => s.to === PHONE && s.text === 'Your code is 481516')).toHaveLength(1);
    await eventually(() => list('--outcome', 'FALLBACK_SENT'), (l) => l.some((g) => g.workflowId === workflowId));

    // Closed at once after the SMS (a late DELIVERED is the webhook's record): nothing left to cancel.
    expectError(
      await run('cancel', workflowId),
      EXIT.failed,
      `error: cannot cancel ${workflowId}: the guard has already ended (FALLBACK_SENT)`,
    );
  });

  it('a key ring that is not the service’s → exit 1, saying so', async () => {
    const workflowId = guardWorkflowId(agent, 'other-keys');
    await json('track', '--message-id', 'other-keys', '--phone', PHONE, '--stale-in', '1h');
    try {
      const r = await cli(['status', workflowId], { ...env, ...KEYS });
      expect(r.code).toBe(EXIT.failed);
      expect(r.stderr).toMatch(/^error: cannot decrypt the guard's data: [^\n]+ — use the service's keys \(RBM_GUARD_ENCRYPTION_KEYS or RBM_GUARD_ENCRYPTION_KEY_FILE\)\n$/);
    } finally {
      await json('cancel', workflowId);
    }
  });

  it('guard not found → exit 4', async () => {
    const id = guardWorkflowId(agent, 'never-tracked');
    expectError(await run('status', id), EXIT.notFound, `error: no guard ${id} in namespace default`);
    expectError(await run('cancel', id), EXIT.notFound, `error: no guard ${id} in namespace default`);
  });

  it('unknown namespace → exit 3, naming it', async () => {
    const r = await cli(['list'], { ...env, TEMPORAL_NAMESPACE: 'no-such-namespace' });
    expectError(r, EXIT.unreachable, `error: namespace no-such-namespace does not exist on Temporal at ${env.TEMPORAL_ADDRESS} (TEMPORAL_NAMESPACE)`);
  });

  it('no worker on the task queue: status says so within its timeout → exit 1', async () => {
    const queue = `nobody-${randomUUID()}`;
    const workflowId = guardWorkflowId(agent, 'orphan-queue');
    // Started at once (a deferred guard's status needs no worker: the next test).
    const workerless = { ...env, TEMPORAL_TASK_QUEUE: queue, RBM_GUARD_DEFER_START: 'off' };
    expect((await cli(['track', '--message-id', 'orphan-queue', '--phone', PHONE, '--stale-in', '1h'], workerless)).code).toBe(EXIT.ok);
    try {
      const r = await cli(['status', workflowId], workerless, { queryTimeoutMs: 1500 });
      expectError(
        r,
        EXIT.failed,
        `error: ${workflowId} is running (no RbmState written: awaiting delivery, or between two steps) but no worker answered its status query within 1.5s — is a worker polling task queue ${queue}?`,
      );
    } finally {
      await stack.client.workflow.getHandle(workflowId).terminate('test cleanup');
    }
  });

  it('no worker on the task queue, a deferred guard (the default): status answers from its start input → exit 0', async () => {
    const queue = `nobody-${randomUUID()}`;
    const workflowId = guardWorkflowId(agent, 'deferred-orphan-queue');
    const workerless = { ...env, TEMPORAL_TASK_QUEUE: queue };
    expect((await cli(['track', '--message-id', 'deferred-orphan-queue', '--phone', PHONE, '--stale-in', '1h'], workerless)).code).toBe(EXIT.ok);
    try {
      const r = await cli(['status', workflowId, '--json'], workerless, { queryTimeoutMs: 1500 });
      expect(r.code, r.stderr).toBe(EXIT.ok);
      expect(JSON.parse(r.stdout)).toMatchObject({ workflowId, state: 'AWAITING_DELIVERY', outcome: null, timeline: [{ event: 'TRACKED' }] });
    } finally {
      await stack.client.workflow.getHandle(workflowId).terminate('test cleanup');
    }
  });
});
