// The CLI as an install builds it (scripts/build-cli.js → dist/cli/, what bin/rbm-guard.js runs
// while it is fresh): built into a temporary folder, it prints what the sources print and tracks a
// message through the suite's Temporal server.
import { spawn, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { runCli } from '../../client/cli.ts';
import { guardWorkflowId, type GuardStatus } from '../../workflows/contract.ts';
import { startGuardStack, type GuardStack } from '../support/stack.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const outdir = mkdtempSync(join(tmpdir(), 'rbm-guard-cli-build-'));
const bundle = join(outdir, 'rbm-guard.mjs');

/** Runs the built CLI as a process with exactly this environment (plus PATH); never blocks the worker in this process. */
function built(args: string[], env: Record<string, string> = {}): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bundle, ...args], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

describe('the built CLI', () => {
  let stack: GuardStack;
  let env: Record<string, string>;

  beforeAll(async () => {
    const build = spawnSync(process.execPath, ['scripts/build-cli.js', '--outdir', outdir], { cwd: root, encoding: 'utf8', timeout: 120_000 });
    expect(build.stderr).toBe('');
    expect(build.status).toBe(0);
    stack = await startGuardStack();
    // The worker's key ring, whichever way the stack configures it.
    const encryption = (['RBM_GUARD_ENCRYPTION', 'RBM_GUARD_ENCRYPTION_KEYS', 'RBM_GUARD_ENCRYPTION_KEY_FILE', 'RBM_GUARD_ENCRYPTION_KEY_ID'] as const)
      .flatMap((k) => (stack.config[k] === undefined ? [] : [[k, String(stack.config[k])] as const]));
    env = { TEMPORAL_ADDRESS: inject('temporalAddress'), TEMPORAL_TASK_QUEUE: stack.taskQueue, ...Object.fromEntries(encryption) };
  }, 180_000);
  afterAll(async () => {
    await stack?.close();
    rmSync(outdir, { recursive: true, force: true });
  });

  it('lists every file it was built from, and only files that exist', () => {
    const inputs = JSON.parse(readFileSync(join(outdir, 'inputs.json'), 'utf8')) as string[];
    expect(inputs).toEqual(expect.arrayContaining(['client/cli.ts', 'client/guard-client.ts', 'workflows/contract.ts', 'package-lock.json']));
    expect(inputs.filter((file) => !existsSync(join(root, file)))).toEqual([]);
  });

  it('--help prints exactly what the sources print', async () => {
    let sources = '';
    await runCli(['--help'], { stdout: (t) => void (sources += t), stderr: () => undefined, env: {} });
    const run = await built(['--help']);
    expect({ status: run.status, stderr: run.stderr, stdout: run.stdout }).toEqual({ status: 0, stderr: '', stdout: sources });
  });

  it('bad input: the same one line and exit code as the sources', async () => {
    const run = await built(['status', 'msg-1']);
    expect({ status: run.status, stdout: run.stdout, stderr: run.stderr }).toEqual({
      status: 2,
      stdout: '',
      stderr: "error: bad guard id 'msg-1': expected rbm-guard/<agentId>/<messageId>, as track prints it\n",
    });
  });

  it('tracks a message through Temporal and reads its status back', async () => {
    const agent = `built-${randomUUID().slice(0, 8)}`;
    const track = await built(['track', '--agent', agent, '--message-id', 'm-1', '--phone', '+14155550142', '--stale-in', '1h', '--fallback-text', 'hi', '--json'], env);
    expect(track.stderr).toBe('');
    expect(track.status).toBe(0);
    expect(JSON.parse(track.stdout)).toMatchObject({ workflowId: guardWorkflowId(agent, 'm-1'), alreadyClosed: false });
    const status = await built(['status', guardWorkflowId(agent, 'm-1'), '--json'], env);
    expect(status.status).toBe(0);
    expect(JSON.parse(status.stdout) as GuardStatus).toMatchObject({ state: 'AWAITING_DELIVERY', agentId: agent, messageId: 'm-1' });
  });
});
