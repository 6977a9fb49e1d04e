// Across languages, on the suite's real Temporal server: the Python (and the Go) client tracks a message, the
// TypeScript worker revokes it against the RBM simulator and sends the SMS to the sink, and the
// Python client reads the outcome and timeline back; then TypeScript writes and Python reads. The
// payloads each side wrote are encrypted, and the other side decrypts them. Last, "the same message"
// (client/same-message.ts): TypeScript, HTTP, Python and Go give the same answer to a message id
// tracked again, with the same body or another one.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DifferentMessageError, GuardClient } from '../../client/guard-client.ts';
import type { TrackInput } from '../../client/track-input.ts';
import { guardStartOptions } from '../../client/start-options.ts';
import { createLogger } from '../../config/logger.ts';
import { startApiServer } from '../../service/api/server.ts';
import { eventSignals, guardWorkflowId, WORKFLOW_TYPE } from '../../workflows/contract.ts';
import { TEST_KEY_1 } from '../support/encryption.ts';
import { startGuardStack, testMessage, type GuardStack } from '../support/stack.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
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

/**
 * Another client tracks a message deferred (staleIn 60s) and prints its status at once: AWAITING_DELIVERY
 * from the start input, the guard still in its start delay. TypeScript's status is the same; that
 * client's cancel then closes it CANCELLED, and no SMS goes out.
 */
async function tracksDeferredThenCancels(lang: 'python' | 'go', trackTest: string, cancelTest: string, printedStatus: (out: string) => unknown): Promise<void> {
  const m = testMessage(`${lang}-defers`);
  const workflowId = guardWorkflowId(m.agentId, m.messageId);
  stack.sim.registerSent({ agentId: m.agentId, messageId: m.messageId, phone: m.phone, plan: { deliverAfterMs: null } });
  try {
    const run = await clientTest(lang, trackTest, {
      RBM_GUARD_XLANG_AGENT_ID: m.agentId,
      RBM_GUARD_XLANG_DEFER_MESSAGE_ID: m.messageId,
      RBM_GUARD_XLANG_PHONE: m.phone,
      RBM_GUARD_XLANG_STALE_IN: '60s',
      RBM_GUARD_XLANG_TEXT: `${lang} deferred code`,
    });
    expect(run.code, run.out).toBe(0);
    const printed = printedStatus(run.out);
    expect(printed).toMatchObject({ workflowId, state: 'AWAITING_DELIVERY', outcome: null, timeline: [{ event: 'TRACKED', state: 'AWAITING_DELIVERY' }] });
    // Still in its start delay (no workflow task ran): TypeScript too answers from the start input that client encrypted.
    expect((await stack.client.workflow.getHandle(workflowId).describe()).historyLength).toBe(1);
    expect(await stack.guards.status(workflowId)).toEqual(printed);
    const cancel = await clientTest(lang, cancelTest, { RBM_GUARD_XLANG_CANCEL_ID: workflowId });
    expect(cancel.code, cancel.out).toBe(0);
    expect(reported(cancel.out)).toMatchObject({ workflowId, outcome: 'CANCELLED' });
    expect((await stack.result(workflowId)).outcome).toBe('CANCELLED');
    expect(stack.sink.sentTo(m.phone)).toEqual([]);
  } finally {
    await stack.client.workflow.getHandle(workflowId).terminate('test done').catch(() => undefined);
  }
}

/** TypeScript tracks a guard deferred (in its start delay, no worker ran it); the other client's status of it must be TypeScript's. */
async function readsTypeScriptsDeferredStatus(lang: 'python' | 'go', test: string, printed: (out: string) => unknown): Promise<void> {
  const deferring = new GuardClient(stack.client, stack.taskQueue, { deferStart: true });
  const m = testMessage(`ts-defers-${lang}`);
  const { workflowId } = await deferring.track({ agentId: m.agentId, messageId: m.messageId, phone: m.phone, staleIn: '60s', fallbackText: 'ts code', policy: m.policy });
  try {
    const described = await stack.client.workflow.getHandle(workflowId).describe();
    expect(described.executionTime?.getTime()).toBeGreaterThan(described.startTime.getTime()); // started with a start delay
    const ts = await deferring.status(workflowId);
    expect(ts).toMatchObject({ workflowId, state: 'AWAITING_DELIVERY', outcome: null });
    const run = await clientTest(lang, test, { RBM_GUARD_XLANG_STATUS_ID: workflowId });
    expect(run.code, run.out).toBe(0);
    expect(printed(run.out)).toEqual(ts);
  } finally {
    await stack.client.workflow.getHandle(workflowId).terminate('test done').catch(() => undefined);
  }
}

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

  // Deferred starts (client/deferred-start.ts): a guard in its start delay has run nothing, so no worker
  // answers a query; each client's status() answers from the start input, by the contract's template.
  it('Python tracks deferred; its status answers at once and TypeScript agrees; Python cancels it: no SMS', async () => {
    await tracksDeferredThenCancels('python', 'test_python_tracks_a_deferred_guard_and_reads_its_status_at_once', 'test_python_cancels_a_guard', reported);
  }, 60_000);

  it('TypeScript tracks deferred; Python reads exactly the status TypeScript gives', async () => {
    await readsTypeScriptsDeferredStatus('python', 'test_python_prints_a_guard_status', reported);
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

  /** The status a Go test printed (`XLANG {"workflowId", "status"}`). */
  const goStatus = (out: string) => (JSON.parse(/^XLANG (.*)$/m.exec(out)?.[1] ?? 'null') as { status: unknown } | null)?.status;

  it('Go tracks deferred; Go and TypeScript read the same status before any worker ran it; Go cancels it', async () => {
    await tracksDeferredThenCancels('go', 'TestCrossLanguageGoTracksDeferred', 'TestCrossLanguageGoCancels', goStatus);
  }, 120_000);

  it('TypeScript tracks deferred; Go reads exactly the status TypeScript gives', async () => {
    await readsTypeScriptsDeferredStatus('go', 'TestCrossLanguageGoStatus', goStatus);
  }, 120_000);
});

/** One client's answer to tracking a message id again (`differences`: the library's words for a refusal). */
interface Answer {
  accepted: boolean;
  created: boolean | null;
  runId: string | null;
  differences?: string[] | null;
}
const answers = (out: string) => JSON.parse(/^XLANG (.*)$/m.exec(out)?.[1] ?? 'null') as Answer[] | null;

describe('the same message, in every client', () => {
  const KEY = 'xlang-same-message-key-0123456789abcdef';
  const bodyFor = (name: string) => {
    const m = testMessage(name);
    return { agentId: m.agentId, messageId: m.messageId, phone: m.phone, staleIn: '10m', fallbackText: `code for ${name}`, trafficType: 'AUTHENTICATION' as const, policy: m.policy };
  };

  it('TypeScript, HTTP, Python and Go accept the same body again and refuse a different one alike', async () => {
    const api = await startApiServer(
      { ...stack.config, TEMPORAL_TASK_QUEUE: stack.taskQueue, RBM_GUARD_API_HOST: '127.0.0.1', RBM_GUARD_API_PORT: 0, RBM_GUARD_API_KEYS: KEY } as typeof stack.config,
      { client: stack.client, logger: createLogger({ LOG_LEVEL: 'silent' }) },
    );
    const post = async (body: TrackInput) => {
      const res = await fetch(`${api.url}/v1/guards`, { method: 'POST', headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
      return { status: res.status, body: (await res.json()) as { created?: boolean; runId?: string | null; type?: string } };
    };
    // A: started with its message by TypeScript (staleIn, no sentAt: a resend later keeps its deadline).
    const a = bodyFor('xsame-started');
    // B: started by an early RBM event, its message brought by a first track over HTTP (201). A failed
    // platform revoke keeps it rechecking for graceMs after that: open for the whole test.
    const b = { ...bodyFor('xsame-early'), policy: { ...testMessage('x').policy, graceMs: 120_000 } };
    const ids = [a, b].map((m) => guardWorkflowId(m.agentId, m.messageId));
    try {
      const aRun = (await stack.guards.track(a)).runId;
      await stack.client.workflow.signalWithStart(WORKFLOW_TYPE, {
        workflowId: ids[1]!,
        taskQueue: stack.taskQueue,
        args: [{ agentId: b.agentId, messageId: b.messageId, orphanAfterMs: 60_000 }],
        signal: eventSignals.TTL_EXPIRATION_REVOKE_FAILED,
        signalArgs: [{ eventId: `ev-${crypto.randomUUID()}` }],
        ...guardStartOptions({ agentId: b.agentId, state: 'AWAITING_TRACK' }),
      });
      const bFirst = await post(b);
      expect(bFirst).toMatchObject({ status: 201, body: { created: true } });
      const bRun = bFirst.body.runId ?? null;

      const cases: TrackInput[] = [a, { ...a, phone: '+14155550199' }, { ...a, staleIn: '11m' }, b, { ...b, fallbackText: 'another code' }];
      const refused = (differences: string[]): Answer => ({ accepted: false, created: null, runId: null, differences });
      const expected: Answer[] = [
        { accepted: true, created: false, runId: aRun, differences: null },
        refused(['phone']),
        refused(['deadline']),
        { accepted: true, created: false, runId: bRun, differences: null },
        refused(['fallback text']),
      ];

      const ts: Answer[] = [];
      for (const body of cases) {
        ts.push(
          await stack.guards.track(body).then(
            (r): Answer => ({ accepted: true, created: r.created, runId: r.runId, differences: null }),
            (err: unknown) => (err instanceof DifferentMessageError ? refused([...(err.differences ?? [])]) : Promise.reject(err)),
          ),
        );
      }
      const http: Answer[] = [];
      for (const body of cases) {
        const res = await post(body);
        if (res.status === 409) expect(res.body.type).toBe('urn:rbm-guard:problem:conflict');
        else expect(res.status).toBe(200);
        http.push(res.status === 409 ? { accepted: false, created: null, runId: null } : { accepted: true, created: res.body.created ?? null, runId: res.body.runId ?? null });
      }
      const env = { RBM_GUARD_XLANG_CASES: JSON.stringify(cases) };
      const [py, go] = await Promise.all([pytest('test_python_answers_the_same_message_like_every_client', env), clientTest('go', 'TestCrossLanguageSameMessage', env)]);
      expect(py.code, py.out).toBe(0);
      expect(py.out).toMatch(/1 passed/);
      expect(go.code, go.out).toBe(0);
      expect(go.out).toMatch(/--- PASS: TestCrossLanguageSameMessage/);

      expect(ts).toEqual(expected);
      expect(http).toEqual(expected.map(({ differences: _, ...answer }) => answer)); // the 409 body names no field
      expect(answers(py.out)).toEqual(expected);
      expect(answers(go.out)).toEqual(expected);
    } finally {
      await api.close();
      for (const id of ids) await stack.client.workflow.getHandle(id).terminate('test done').catch(() => undefined);
    }
  }, 120_000);
});
