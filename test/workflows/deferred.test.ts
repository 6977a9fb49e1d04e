// Deferred starts (GuardClient's deferStart): a guard waits for its deadline in a start delay, not on a
// timer. Until it runs, status answers from its start input; a cancel or an extend wakes it; its story
// starts when it was started; a guard that sends the RBM message itself is never deferred. (The whole
// outcome suite runs deferred too, by default; RBM_GUARD_TEST_DEFER_START=0 runs it with timers, in CI.)
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GuardClient } from '../../client/guard-client.ts';
import { startGuardStack, testMessage, type GuardStack } from '../support/stack.ts';

let stack: GuardStack;
beforeAll(async () => {
  stack = await startGuardStack({ deferStart: true });
});
afterAll(async () => {
  await stack?.close();
});

const track = (name: string, extra: Record<string, unknown> = {}) => {
  const m = testMessage(name);
  stack.sim.registerSent({ agentId: m.agentId, messageId: m.messageId, phone: m.phone, plan: { deliverAfterMs: null } });
  return stack.guards.track({ ...m, staleIn: '1h', fallbackText: `code for ${name}`, ...extra });
};

describe.concurrent('a deferred guard before its deadline', () => {
  it('is in its start delay, and status answers from its start input', async () => {
    const before = Date.now();
    const { workflowId, staleAt } = await track('waiting');
    const description = await stack.client.workflow.getHandle(workflowId).describe();
    expect(description.status.name).toBe('RUNNING');
    expect(description.historyLength).toBe(1); // started, no workflow task yet
    const status = await stack.guards.status(workflowId);
    expect(status).toMatchObject({ state: 'AWAITING_DELIVERY', outcome: null, staleAt });
    expect(status.timeline.map((t) => t.event)).toEqual(['TRACKED']);
    expect(Date.parse(status.timeline[0]!.at)).toBeGreaterThanOrEqual(before - 1000);
    expect(Date.parse(status.timeline[0]!.at)).toBeLessThanOrEqual(Date.now());
  });

  it('a cancel wakes it: CANCELLED, nothing revoked or sent', async () => {
    const { workflowId } = await track('cancel-early');
    const after = await stack.guards.cancel(workflowId, 'login completed');
    expect(after).toMatchObject({ state: 'CANCELLED', outcome: 'CANCELLED' });
    expect((await stack.result(workflowId)).outcome).toBe('CANCELLED');
  });

  it('an extend wakes it: the new deadline holds, and its story starts when it was tracked', async () => {
    const before = Date.now();
    const { workflowId } = await track('extend-early');
    const later = new Date(Date.now() + 2 * 3_600_000).toISOString();
    const after = await stack.guards.extend(workflowId, later);
    expect(after.staleAt).toBe(later);
    expect(after.timeline.map((t) => t.event)).toEqual(['TRACKED', 'EXTEND']);
    expect(Date.parse(after.timeline[0]!.at)).toBeLessThan(Date.parse(after.timeline[1]!.at) + 1);
    expect(Date.parse(after.timeline[0]!.at)).toBeGreaterThanOrEqual(before - 1000);
    expect(await stack.guards.status(workflowId)).toMatchObject({ state: 'AWAITING_DELIVERY', staleAt: later });
    await stack.guards.cancel(workflowId);
  });

  it('a guard that sends the RBM message itself starts at once', async () => {
    const { workflowId } = await track('sends-itself', { sendText: 'Your code is 4242', staleIn: '1h' });
    const status = await stack.guards.status(workflowId);
    expect(status.timeline[0]?.state).toBe('SENDING');
    const input = (await stack.client.workflow.getHandle(workflowId).fetchHistory()).events?.[0]?.workflowExecutionStartedEventAttributes;
    expect(Number(input?.firstWorkflowTaskBackoff?.seconds ?? 0)).toBe(0);
    await stack.guards.cancel(workflowId).catch(() => undefined);
  });
});

describe('a deferred guard at its deadline', () => {
  it('past its deadline with no worker to run it yet (a wave\u2019s backlog): status answers from its start input', async () => {
    const idle = new GuardClient(stack.client, `no-worker-${randomUUID()}`, { deferStart: true });
    const m = testMessage('backlog');
    const { workflowId, staleAt } = await idle.track({ ...m, staleIn: '1100ms', fallbackText: 'code' });
    await new Promise((r) => setTimeout(r, 1500));
    const description = await stack.client.workflow.getHandle(workflowId).describe();
    expect(description.historyLength).toBeGreaterThanOrEqual(2); // its first workflow task is scheduled
    expect(await idle.status(workflowId)).toMatchObject({ state: 'AWAITING_DELIVERY', outcome: null, staleAt });
    await stack.client.workflow.getHandle(workflowId).terminate('test done');
  });


  it('undelivered: revoked and sent once by SMS at the deadline, its story from the track on', async () => {
    const m = testMessage('deferred-revoked');
    stack.sim.registerSent({ agentId: m.agentId, messageId: m.messageId, phone: m.phone, plan: { deliverAfterMs: null } });
    const tracked = Date.now();
    const { workflowId, staleAt } = await stack.guards.track({ ...m, staleIn: '2s', fallbackText: 'code' });
    const status = await stack.result(workflowId);
    expect(status.outcome).toBe('FALLBACK_SENT');
    expect(stack.sink.distinctSendsTo(m.phone)).toBe(1);
    const [first, stale] = status.timeline;
    expect(first?.event).toBe('TRACKED');
    expect(Math.abs(Date.parse(first!.at) - tracked)).toBeLessThan(1000);
    expect(stale?.event).toBe('STALE');
    expect(Date.parse(stale!.at)).toBeGreaterThanOrEqual(Date.parse(staleAt));
  });
});
