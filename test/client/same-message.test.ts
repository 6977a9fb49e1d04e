// "The same message" (client/same-message.ts): the rule itself without a server, then
// GuardClient.track() on the suite's real Temporal server refusing a different message under an
// existing id — for a guard it started, one an early RBM event started, and one that already ended.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DifferentMessageError, type TrackResult } from '../../client/guard-client.ts';
import { guardStartOptions } from '../../client/start-options.ts';
import { isSameMessage, messageDifferences } from '../../client/same-message.ts';
import { parseTrackInput } from '../../client/track-input.ts';
import { eventSignals, guardWorkflowId, WORKFLOW_TYPE } from '../../workflows/contract.ts';
import { startGuardStack, testMessage, type GuardStack } from '../support/stack.ts';

describe('the rule', () => {
  const body = { agentId: 'agent', messageId: 'm1', phone: '+14155550100', staleAt: '2030-01-01T00:10:00Z', sentAt: '2030-01-01T00:00:00Z', trafficType: 'AUTHENTICATION', fallbackText: 'code 1' };
  const held = parseTrackInput(body, new Date('2030-01-01T00:00:00Z'));

  it('the same body is the same message; another priority, phone or text is not, and says which', () => {
    expect(isSameMessage(body, held)).toBe(true);
    expect(isSameMessage({ ...body, priority: 1 }, held)).toBe(true); // an OTP's own default
    expect(messageDifferences({ ...body, priority: 3 }, held)).toEqual(['priority']);
    expect(messageDifferences({ ...body, phone: '+14155550101' }, held)).toEqual(['phone']);
    expect(messageDifferences({ ...body, fallbackText: 'code 2', staleAt: '2030-01-01T00:11:00Z' }, held)).toEqual(['deadline', 'fallback text']);
  });

  it('a staleIn without sentAt resolves from the first track: the same deadline later', () => {
    const first = parseTrackInput({ ...body, sentAt: undefined, staleAt: undefined, staleIn: '10m' }, new Date('2030-01-01T00:00:00Z'));
    expect(isSameMessage({ ...body, sentAt: undefined, staleAt: undefined, staleIn: '10m' }, first)).toBe(true);
    expect(messageDifferences({ ...body, sentAt: undefined, staleAt: undefined, staleIn: '11m' }, first)).toEqual(['deadline']);
  });

  it('a guard tracked before messages carried a priority is matched on the rest', () => {
    const before = { ...held };
    delete before.priority;
    expect(isSameMessage(body, before)).toBe(true);
    expect(isSameMessage({ ...body, fallbackText: 'code 2' }, before)).toBe(false);
  });
});

describe('GuardClient.track() on an existing guard', () => {
  let stack: GuardStack;
  beforeAll(async () => {
    stack = await startGuardStack();
  }, 60_000);
  afterAll(async () => stack?.close());

  const bodyFor = (name: string) => {
    const m = testMessage(name);
    return { agentId: m.agentId, messageId: m.messageId, phone: m.phone, staleIn: '10m', fallbackText: `code for ${name}`, trafficType: 'AUTHENTICATION' as const, policy: m.policy };
  };
  const refusal = (promise: Promise<TrackResult>) =>
    promise.then(
      (result) => expect.unreachable(`accepted: ${JSON.stringify(result)}`),
      (err: unknown) => {
        expect(err).toBeInstanceOf(DifferentMessageError);
        return err as DifferentMessageError;
      },
    );

  it('accepts the same body again (staleIn resent later keeps the first deadline), refuses another phone or deadline', async () => {
    const body = bodyFor('same');
    const workflowId = guardWorkflowId(body.agentId, body.messageId);
    const first = await stack.guards.track(body);
    expect(first).toMatchObject({ workflowId, created: true, alreadyClosed: false });
    const { staleAt } = await stack.guards.status(workflowId);
    await new Promise((r) => setTimeout(r, 50)); // staleIn resolves later now
    expect(await stack.guards.track(body)).toEqual({ workflowId, runId: first.runId, created: false, alreadyClosed: false, staleAt: first.staleAt });

    const phone = await refusal(stack.guards.track({ ...body, phone: '+14155550199' }));
    expect(phone).toMatchObject({ workflowId, differences: ['phone'] });
    expect(phone.message).toBe(`${workflowId}: a guard for this message id holds a different message (phone)`);
    expect(phone.message).not.toContain('+1415'); // names the field, never the number
    expect((await refusal(stack.guards.track({ ...body, staleIn: '11m' }))).differences).toEqual(['deadline']);
    // The guard kept its message: the refused tracks changed nothing.
    expect((await stack.guards.status(workflowId)).staleAt).toBe(staleAt);
    await stack.guards.cancel(workflowId);
  });

  it('a guard an early RBM event started: created on its first track, the same after, refused for another text', async () => {
    // A failed platform revoke leaves the tracked guard rechecking for graceMs: it stays open meanwhile.
    const body = { ...bodyFor('early'), policy: { ...testMessage('x').policy, graceMs: 120_000 } };
    const workflowId = guardWorkflowId(body.agentId, body.messageId);
    await stack.client.workflow.signalWithStart(WORKFLOW_TYPE, {
      workflowId,
      taskQueue: stack.taskQueue,
      args: [{ agentId: body.agentId, messageId: body.messageId, orphanAfterMs: 60_000 }],
      signal: eventSignals.TTL_EXPIRATION_REVOKE_FAILED,
      signalArgs: [{ eventId: `ev-${crypto.randomUUID()}` }],
      ...guardStartOptions({ agentId: body.agentId, state: 'AWAITING_TRACK' }),
    });
    const first = await stack.guards.track(body);
    expect(first).toMatchObject({ workflowId, created: true, alreadyClosed: false });
    expect(await stack.guards.track(body)).toEqual({ workflowId, runId: first.runId, created: false, alreadyClosed: false, staleAt: first.staleAt });
    expect(await refusal(stack.guards.track({ ...body, fallbackText: 'another code' }))).toMatchObject({ workflowId, differences: ['fallback text'] });
    await stack.client.workflow.getHandle(workflowId).terminate('test done');
  });

  it('a guard that ended: the same body is alreadyClosed, another one is refused', async () => {
    const body = bodyFor('ended');
    const first = await stack.guards.track(body);
    const { workflowId } = first;
    await stack.guards.cancel(workflowId);
    await stack.result(workflowId);
    expect(await stack.guards.track(body)).toEqual({ workflowId, runId: null, created: false, alreadyClosed: true, staleAt: first.staleAt });
    expect(await refusal(stack.guards.track({ ...body, phone: '+14155550199' }))).toMatchObject({ workflowId, differences: ['phone'] });
  });
});
