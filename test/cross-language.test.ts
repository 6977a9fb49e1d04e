// Across languages, on the suite's real Temporal server: the Python (and the Go) client tracks a message, the
// TypeScript worker revokes it against the RBM simulator and sends the SMS to the sink, and the
// Python client reads the outcome and timeline back; then TypeScript writes and Python reads. The
// payloads each side wrote are encrypted, and the other side decrypts them.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { guardWorkflowId } from '../workflows/contract.ts';
import { TEST_KEY_1 } from './support/encryption.ts';
import { startGuardStack, testMessage, type GuardStack } from './support/stack.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
/** The Python client's venv (.ci/run and the README's setup create it). */
const PYTHON = process.env.RBM_GUARD_PYTHON ?? `${root}.tools/py-client/bin/python`;

let stack: GuardStack;
beforeAll(async () => {
  stack = await startGuardStack();
}, 60_000);
afterAll(async () => stack?.close());

/** Runs one test of a client's own suite with the stack's address, task queue and key. */
function clientTest(lang: 'python' | 'go', test: string, env: Record<string, string>): Promise<{ code: number | null; out: string }> {
  const [cmd, args, cwd] =
    lang === 'python'
      ? [PYTHON, ['-m', 'pytest', '-q', '-s', '-p', 'no:cacheprovider', `client/python/tests/test_cross_language.py::${test}`], root]
      : ['go', ['test', '-count=1', '-v', '-run', `^${test}$`, '.'], `${root}client/go`];
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd,
      env: { ...process.env, RBM_GUARD_XLANG_ADDRESS: stack.config.TEMPORAL_ADDRESS!, RBM_GUARD_XLANG_TASK_QUEUE: stack.taskQueue, RBM_GUARD_XLANG_KEYS: TEST_KEY_1, ...env },
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, out }));
  });
}
const pytest = (test: string, env: Record<string, string>) => clientTest('python', test, env);
const reported = (out: string) => JSON.parse(/^XLANG (.*)$/m.exec(out)?.[1] ?? 'null') as { workflowId: string; outcome: string } | null;

describe('Python client against the TypeScript worker', () => {
  it('has its venv', () => {
    expect(existsSync(PYTHON), `${PYTHON} missing: python3 -m venv .tools/py-client && .tools/py-client/bin/pip install -r client/python/requirements.txt -e client/python`).toBe(true);
  });

  it('Python tracks; the worker revokes and sends the SMS; Python reads outcome and timeline', async () => {
    const m = testMessage('py-tracks');
    const text = `python code ${m.messageId.slice(-6)}`;
    stack.sim.registerSent({ agentId: m.agentId, messageId: m.messageId, phone: m.phone, plan: { deliverAfterMs: null } });
    const run = await pytest('test_python_tracks_the_typescript_worker_revokes_and_sends', {
      RBM_GUARD_XLANG_AGENT_ID: m.agentId,
      RBM_GUARD_XLANG_MESSAGE_ID: m.messageId,
      RBM_GUARD_XLANG_PHONE: m.phone,
      RBM_GUARD_XLANG_TEXT: text,
    });
    expect(run.code, run.out).toBe(0);
    expect(run.out).toMatch(/1 passed/);
    const workflowId = guardWorkflowId(m.agentId, m.messageId);
    expect(reported(run.out)).toMatchObject({ workflowId, outcome: 'FALLBACK_SENT' });
    expect(stack.sink.sentTo(m.phone).map((s) => s.text)).toEqual([text]);
    expect(stack.sim.truth(m.messageId)?.revokeCalls).toBeGreaterThanOrEqual(1);
    // TypeScript reads what Python wrote (its input was encrypted by the Python codec).
    const status = await stack.guards.status(workflowId);
    expect(status.outcome).toBe('FALLBACK_SENT');
  }, 60_000);

  it('TypeScript tracks; Python reads the outcome, the timeline and the list', async () => {
    const m = testMessage('ts-writes');
    stack.sim.registerSent({ agentId: m.agentId, messageId: m.messageId, phone: m.phone, plan: { deliverAfterMs: 200 } });
    const { workflowId } = await stack.guards.track({ agentId: m.agentId, messageId: m.messageId, phone: m.phone, staleIn: '5s', fallbackText: 'ts code', policy: m.policy });
    expect((await stack.result(workflowId)).outcome).toBe('DELIVERED');
    const run = await pytest('test_python_reads_what_typescript_wrote', { RBM_GUARD_XLANG_READ_ID: workflowId, RBM_GUARD_XLANG_EXPECT_OUTCOME: 'DELIVERED' });
    expect(run.code, run.out).toBe(0);
    expect(reported(run.out)).toMatchObject({ workflowId, outcome: 'DELIVERED' });
  }, 60_000);
});

describe('Go client against the TypeScript worker', () => {
  it('Go tracks; the worker revokes and sends the SMS; Go reads outcome and timeline', async () => {
    const m = testMessage('go-tracks');
    const text = `go code ${m.messageId.slice(-6)}`;
    stack.sim.registerSent({ agentId: m.agentId, messageId: m.messageId, phone: m.phone, plan: { deliverAfterMs: null } });
    const run = await clientTest('go', 'TestCrossLanguageGoTracks', { RBM_GUARD_XLANG_AGENT_ID: m.agentId, RBM_GUARD_XLANG_MESSAGE_ID: m.messageId, RBM_GUARD_XLANG_PHONE: m.phone, RBM_GUARD_XLANG_TEXT: text });
    expect(run.code, run.out).toBe(0);
    expect(run.out).toMatch(/--- PASS: TestCrossLanguageGoTracks/);
    const workflowId = guardWorkflowId(m.agentId, m.messageId);
    expect(reported(run.out)).toMatchObject({ workflowId, outcome: 'FALLBACK_SENT' });
    expect(stack.sink.sentTo(m.phone).map((s) => s.text)).toEqual([text]);
    expect((await stack.guards.status(workflowId)).outcome).toBe('FALLBACK_SENT');
  }, 120_000);

  it('TypeScript tracks; Go reads the outcome, the timeline and the list', async () => {
    const m = testMessage('ts-writes-go');
    stack.sim.registerSent({ agentId: m.agentId, messageId: m.messageId, phone: m.phone, plan: { deliverAfterMs: 200 } });
    const { workflowId } = await stack.guards.track({ agentId: m.agentId, messageId: m.messageId, phone: m.phone, staleIn: '5s', fallbackText: 'ts code', policy: m.policy });
    expect((await stack.result(workflowId)).outcome).toBe('DELIVERED');
    const run = await clientTest('go', 'TestCrossLanguageGoReads', { RBM_GUARD_XLANG_READ_ID: workflowId, RBM_GUARD_XLANG_EXPECT_OUTCOME: 'DELIVERED' });
    expect(run.code, run.out).toBe(0);
    expect(run.out).toMatch(/--- PASS: TestCrossLanguageGoReads/);
    expect(reported(run.out)).toMatchObject({ workflowId, outcome: 'DELIVERED' });
  }, 120_000);
});
