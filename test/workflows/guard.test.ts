// One test per outcome, on a real Temporal dev server, with the RBM simulator and the SMS sink over
// real HTTP. Each asserts the outcome, the timeline and what the SMS sink received.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { guardWorkflowId, smsTaskQueue, type GuardStatus } from '../../workflows/contract.ts';
import { ValidationError } from '../../client/track-input.ts';
import { HistoryRecorder } from '../support/histories.ts';
import { sendAndTrack as sendAndTrackOn, startGuardStack, testMessage, type GuardStack } from '../support/stack.ts';

let stack: GuardStack;
// Replay fixtures: `RBM_GUARD_RECORD_HISTORIES=1 npx vitest run test/workflows/guard.test.ts test/workflows/guard-pessimistic.test.ts`
// records today's rules (GUARD_RULES 4, encrypted, key test-1) into test/histories/rules4/. The older
// folders — test/histories/ and encrypted/ (rules 1), rules2/, rules3/ — hold guards of earlier rules: keep
// them, they must replay.
// Guards start deferred, as by default (histories in rules4-deferred/); RBM_GUARD_TEST_DEFER_START=0
// runs the same paths started at once with a deadline timer (histories in rules4/), in CI.
const histories = new HistoryRecorder(new URL(process.env.RBM_GUARD_TEST_DEFER_START === '0' ? '../histories/rules4/' : '../histories/rules4-deferred/', import.meta.url));
const recorded = { push: ({ name, workflowId }: { name: string; workflowId: string }) => histories.add(name, workflowId) };

beforeAll(async () => {
  stack = await startGuardStack();
});

afterAll(async () => {
  await histories.save(stack.client);
  await stack?.close();
});

/** Registers the message with the simulator as sent, then tracks it. */
/** Sends (simulator) and tracks a message, and records its history under `name`. */
async function sendAndTrack(name: string, plan: Parameters<GuardStack['sim']['registerSent']>[0]['plan'], track: Record<string, unknown> = {}) {
  const m = await sendAndTrackOn(stack, name, plan, track);
  recorded.push({ name, workflowId: m.workflowId });
  return m;
}

const states = (s: GuardStatus) => s.timeline.map((t) => t.state);

describe.concurrent('guard outcomes on a real server', () => {
  it('delivered before the deadline: DELIVERED, no revoke, no SMS', async () => {
    const m = await sendAndTrack('delivered', { deliverAfterMs: 200 });
    const status = await stack.result(m.workflowId);
    expect(status.outcome).toBe('DELIVERED');
    expect(states(status)).toEqual(['AWAITING_DELIVERY', 'DELIVERED']);
    expect(stack.sim.truth(m.messageId)?.revokeCalls).toBe(0);
    expect(stack.sink.distinctSendsTo(m.phone)).toBe(0);
  });

  it('not delivered: revoked, then exactly one SMS', async () => {
    const m = await sendAndTrack('revoked', { deliverAfterMs: null });
    const status = await stack.result(m.workflowId);
    expect(status.outcome).toBe('FALLBACK_SENT');
    expect(states(status)).toEqual(['AWAITING_DELIVERY', 'REVOKING', 'FALLBACK', 'FALLBACK_SENT']);
    expect(stack.sim.truth(m.messageId)?.revokedAt).toBeDefined();
    expect(stack.sink.distinctSendsTo(m.phone)).toBe(1);
    const sent = stack.sink.sends.find((s) => s.to === m.phone);
    expect(sent?.text).toBe('code for revoked');
    expect(sent?.idempotencyKey).toBe(guardWorkflowId(m.agentId, m.messageId));
  });

  // Rules 4: in a wave, priority orders the guards' workflow tasks and their SMS (names.ts, TRAFFIC_PRIORITY).
  it('a guard runs at its priority, its SMS too, on the paced SMS queue: by traffic type, or the one the track names', async () => {
    const otp = await sendAndTrackOn(stack, 'priority-otp', { deliverAfterMs: null });
    const promo = await sendAndTrackOn(stack, 'priority-promo', { deliverAfterMs: null }, { trafficType: 'PROMOTION', policy: { ...testMessage('p').policy, onUnknown: 'fallback' } });
    const named = await sendAndTrackOn(stack, 'priority-named', { deliverAfterMs: null }, { trafficType: 'PROMOTION', priority: 2 });
    for (const [m, key] of [[otp, 1], [promo, 5], [named, 2]] as const) {
      expect((await stack.result(m.workflowId)).outcome).toBe('FALLBACK_SENT');
      const handle = stack.client.workflow.getHandle(m.workflowId);
      const { raw } = await handle.describe();
      expect(raw.workflowExecutionInfo?.priority?.priorityKey, m.workflowId).toBe(key);
      const sms = (await handle.fetchHistory()).events?.find((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'sendFallback')?.activityTaskScheduledEventAttributes;
      expect(sms?.priority?.priorityKey).toBe(key);
      expect(sms?.taskQueue?.name).toBe(smsTaskQueue(stack.taskQueue));
      expect((await handle.describe()).raw.executionConfig?.taskQueue?.name).toBe(stack.taskQueue);
    }
  });

  it('revoke 404 (already delivered): DELIVERED after the event, no SMS', async () => {
    const m = await sendAndTrack('revoke-404', { deliverAfterMs: null, raceRevoke: 404 });
    const status = await stack.result(m.workflowId);
    expect(status.outcome).toBe('DELIVERED');
    // The DELIVERED event follows the 404 closely: it may land while the revoke result is still
    // on its way (noted in REVOKING) or after it (CONFIRMING_DELIVERY). Either way, no fallback.
    expect(states(status).slice(0, 2)).toEqual(['AWAITING_DELIVERY', 'REVOKING']);
    expect(states(status)).not.toContain('FALLBACK');
    expect(stack.sim.truth(m.messageId)?.revokeAnswers).toEqual([404]);
    expect(stack.sink.distinctSendsTo(m.phone)).toBe(0);
  });

  // Rules 4: the revoke is a local activity, which a worker crash runs again, so its 404 proves nothing:
  // without a DELIVERED the outcome says unknown (rules 2 and 3 said DELIVERED_UNCONFIRMED).
  it('revoke 404 and no DELIVERED event, a promotion: UNRESOLVED (a local revoke’s 404 proves nothing), no SMS', async () => {
    const m = await sendAndTrack('revoke-404-silent', { deliverAfterMs: null, raceRevoke: 404, noEvent: true }, { trafficType: 'PROMOTION' });
    const status = await stack.result(m.workflowId);
    expect(status.outcome).toBe('UNRESOLVED');
    expect(status.timeline.find((t) => t.event === 'REVOKE_404')?.reason).toMatch(/local revoke runs again after a worker crash/);
    expect(states(status)).toEqual(['AWAITING_DELIVERY', 'REVOKING', 'CONFIRMING_DELIVERY', 'UNRESOLVED']);
    expect(stack.sink.distinctSendsTo(m.phone)).toBe(0);
  });

  it('revoke 503 then 200: one SMS', async () => {
    const m = testMessage('revoke-5xx');
    stack.sim.injectRevokeFaults(m.messageId, [{ status: 503 }]);
    const t = await sendAndTrackAs(m, 'revoke-5xx', { deliverAfterMs: null });
    const status = await stack.result(t.workflowId);
    expect(status.outcome).toBe('FALLBACK_SENT');
    expect(stack.sim.truth(m.messageId)?.revokeAnswers).toEqual([503, 200]);
    expect(status.revokeRounds).toBe(1);
    expect(stack.sink.distinctSendsTo(m.phone)).toBe(1);
  });

  it('revoke hangs → RECHECK → late DELIVERED: DELIVERED, no SMS', async () => {
    const m = testMessage('revoke-hang-delivered');
    stack.sim.injectRevokeFaults(m.messageId, [{ hangMs: 3000, perform: false }, { hangMs: 3000, perform: false }]);
    const t = await sendAndTrackAs(m, 'revoke-hang-delivered', { deliverAfterMs: null });
    await stack.waitForState(t.workflowId, 'RECHECK');
    expect(stack.sim.deliver(m.messageId)).toBe(true);
    const status = await stack.result(t.workflowId);
    expect(status.outcome).toBe('DELIVERED');
    expect(states(status)).toEqual(['AWAITING_DELIVERY', 'REVOKING', 'RECHECK', 'DELIVERED']);
    expect(stack.sink.distinctSendsTo(m.phone)).toBe(0);
  });

  it('revoke hangs → no DELIVERED → second revoke round: one SMS', async () => {
    const m = testMessage('revoke-hang-twice');
    stack.sim.injectRevokeFaults(m.messageId, [{ hangMs: 3000, perform: false }, { hangMs: 3000, perform: false }]);
    const t = await sendAndTrackAs(m, 'revoke-hang-twice', { deliverAfterMs: null });
    const status = await stack.result(t.workflowId);
    expect(status.outcome).toBe('FALLBACK_SENT');
    expect(states(status)).toEqual(['AWAITING_DELIVERY', 'REVOKING', 'RECHECK', 'REVOKING', 'FALLBACK', 'FALLBACK_SENT']);
    expect(status.revokeRounds).toBe(2);
    expect(stack.sink.distinctSendsTo(m.phone)).toBe(1);
  });

  it('TTL_EXPIRATION_REVOKED: fallback without our own revoke', async () => {
    const expireTime = new Date(Date.now() + 500).toISOString();
    const m = await sendAndTrack('ttl-revoked', { deliverAfterMs: null, ttlOutcome: 'revoked' }, { expireTime, staleIn: '1m' });
    const status = await stack.result(m.workflowId);
    expect(status.outcome).toBe('FALLBACK_SENT');
    expect(status.timeline.map((t) => t.event)).toContain('TTL_EXPIRATION_REVOKED');
    expect(stack.sim.truth(m.messageId)?.revokeCalls).toBe(0);
    expect(stack.sink.distinctSendsTo(m.phone)).toBe(1);
  });

  it('TTL_EXPIRATION_REVOKE_FAILED → DELIVERED: no SMS', async () => {
    const expireTime = new Date(Date.now() + 300).toISOString();
    const m = await sendAndTrack('ttl-revoke-failed', { deliverAfterMs: 1000, ttlOutcome: 'revoke-failed' }, { expireTime, staleIn: '1m' });
    const status = await stack.result(m.workflowId);
    expect(status.outcome).toBe('DELIVERED');
    expect(states(status)).toEqual(['AWAITING_DELIVERY', 'RECHECK', 'DELIVERED']);
    expect(stack.sink.distinctSendsTo(m.phone)).toBe(0);
  });

  it('READ before DELIVERED: delivered once, the later DELIVERED is only noted', async () => {
    const m = await sendAndTrack('read-first', { deliverAfterMs: 200, readBeforeDelivered: true });
    const status = await stack.result(m.workflowId);
    expect(status.outcome).toBe('DELIVERED');
    expect(status.timeline.map((t) => t.event).slice(0, 2)).toEqual(['TRACKED', 'READ']);
    expect(stack.sink.distinctSendsTo(m.phone)).toBe(0);
  });

  it('duplicate events have one effect', async () => {
    const m = await sendAndTrack('duplicates', { deliverAfterMs: 200, duplicateEvent: true });
    const status = await stack.result(m.workflowId);
    expect(status.outcome).toBe('DELIVERED');
    expect(status.timeline.filter((t) => t.event === 'DELIVERED')).toHaveLength(1);
    expect(stack.sim.truth(m.messageId)?.eventsPushed.length).toBeGreaterThanOrEqual(2);
  });

  it('cancel: CANCELLED, no revoke, no SMS', async () => {
    const m = await sendAndTrack('cancel', { deliverAfterMs: null }, { staleIn: '1h' });
    const after = await stack.guards.cancel(m.workflowId, 'user completed login');
    expect(after.state).toBe('CANCELLED');
    const status = await stack.result(m.workflowId);
    expect(status.outcome).toBe('CANCELLED');
    expect(status.timeline.at(-1)?.reason).toBe('user completed login');
    expect(stack.sim.truth(m.messageId)?.revokeCalls).toBe(0);
    expect(stack.sink.distinctSendsTo(m.phone)).toBe(0);
  });

  it('a deadline that passed while the track was on its way is guarded at once: revoked, one SMS', async () => {
    const m = await sendAndTrack('late-track', { deliverAfterMs: null }, { staleIn: undefined, staleAt: new Date(Date.now() - 30_000).toISOString() });
    const status = await stack.result(m.workflowId);
    expect(status.outcome).toBe('FALLBACK_SENT');
    expect(states(status)).toEqual(['AWAITING_DELIVERY', 'REVOKING', 'FALLBACK', 'FALLBACK_SENT']);
    expect(stack.sink.distinctSendsTo(m.phone)).toBe(1);
  });

  it('extend: the new deadline holds; a deadline in the past is refused', async () => {
    const m = await sendAndTrack('extend', { deliverAfterMs: 2500 }, { staleIn: '1500ms' });
    const later = new Date(Date.now() + 6000);
    const extended = await stack.guards.extend(m.workflowId, later);
    expect(extended.staleAt).toBe(later.toISOString());
    await expect(stack.guards.extend(m.workflowId, new Date(Date.now() - 1000))).rejects.toThrow(/staleAt: .* is in the past/);
    const status = await stack.result(m.workflowId);
    expect(status.outcome).toBe('DELIVERED');
    expect(status.timeline.map((t) => t.event)).toEqual(['TRACKED', 'EXTEND', 'DELIVERED']);
    expect(stack.sim.truth(m.messageId)?.revokeCalls).toBe(0);
  });

  it('revoke 403: REVOKE_ERROR, no SMS', async () => {
    const m = testMessage('revoke-403');
    const agentId = `denied-${m.messageId.slice(-8)}`;
    stack.sim.setAgentDenied(agentId, true);
    const t = await sendAndTrackAs({ ...m, agentId }, 'revoke-403', { deliverAfterMs: null });
    const status = await stack.result(t.workflowId);
    expect(status.outcome).toBe('REVOKE_ERROR');
    expect(status.timeline.at(-1)?.reason).toMatch(/403|PERMISSION_DENIED/);
    expect(stack.sim.truth(m.messageId)?.revokeCalls).toBe(1);
    expect(stack.sink.distinctSendsTo(m.phone)).toBe(0);
  });


  it('the guard sends the RBM message itself with the same messageId', async () => {
    const m = testMessage('guard-sends');
    stack.sim.plan(m.messageId, { deliverAfterMs: 200 });
    stack.sim.injectCreateFaults(m.messageId, [{ status: 500 }]);
    const { workflowId } = await stack.guards.track({ ...m, staleIn: '5s', sendText: 'Your code is 4242', fallbackText: 'Your code is 4242' });
    const status = await stack.result(workflowId);
    expect(status.outcome).toBe('DELIVERED');
    expect(states(status)).toEqual(['SENDING', 'AWAITING_DELIVERY', 'DELIVERED']);
    expect(stack.sim.truth(m.messageId)?.origin).toBe('api');
    expect(stack.sim.truth(m.messageId)?.text).toBe('Your code is 4242');
  });
});

describe('guard: SMS provider faults', () => {
  // Not concurrent: the sink's fault queue is shared.
  it('DELIVERED while the SMS is in flight: DOUBLE_DELIVERY recorded (after the guard closed: the webhook’s record, webhook-e2e)', async () => {
    const m = testMessage('double-delivery');
    stack.sim.registerSent({ agentId: m.agentId, messageId: m.messageId, phone: m.phone, plan: { deliverAfterMs: null, raceRevoke: 200, eventDelayMs: 100 } });
    stack.sink.injectFaults([{ hangMs: 800, then: 'reply' }]); // the SMS is accepted, slowly
    const { workflowId } = await stack.guards.track({ ...m, staleIn: '1500ms', fallbackText: 'code', trafficType: 'AUTHENTICATION' });
    recorded.push({ name: 'double-delivery', workflowId });
    const status = await stack.result(workflowId);
    expect(status.outcome).toBe('DOUBLE_DELIVERY');
    expect(states(status)).toEqual(['AWAITING_DELIVERY', 'REVOKING', 'FALLBACK', 'FALLBACK', 'DOUBLE_DELIVERY']);
    expect(stack.sink.distinctSendsTo(m.phone)).toBe(1);
  });
  it('the SMS provider fails twice then accepts: one SMS', async () => {
    stack.sink.injectFaults([{ status: 500 }, { status: 503 }]);
    const m = await sendAndTrack('sms-retries', { deliverAfterMs: null });
    const status = await stack.result(m.workflowId);
    expect(status.outcome).toBe('FALLBACK_SENT');
    expect(stack.sink.distinctSendsTo(m.phone)).toBe(1);
  });

  it('the SMS provider refuses the message (400): FALLBACK_FAILED, no retry', async () => {
    const before = stack.sink.stats().requests;
    stack.sink.injectFaults([{ status: 400 }]);
    const m = await sendAndTrack('sms-refused', { deliverAfterMs: null }, { policy: { ...testMessage('x').policy, lingerMs: 0 } });
    const status = await stack.result(m.workflowId);
    expect(status.outcome).toBe('FALLBACK_FAILED');
    expect(stack.sink.stats().requests - before).toBe(1);
    expect(stack.sink.distinctSendsTo(m.phone)).toBe(0);
  });
});

describe('client: track', () => {
  it('tracking the same message twice returns the same guard', async () => {
    const m = testMessage('twice');
    const input = { ...m, staleIn: '1h', fallbackText: 'x' };
    const first = await stack.guards.track(input);
    const second = await stack.guards.track(input);
    expect(second.workflowId).toBe(first.workflowId);
    expect(second.runId).toBe(first.runId);
    const status = await stack.guards.status(first.workflowId);
    expect(status.timeline).toHaveLength(1);
    await stack.guards.cancel(first.workflowId);
    const again = await stack.guards.track(input);
    await stack.result(first.workflowId);
    const closed = await stack.guards.track(input);
    expect(closed.alreadyClosed).toBe(true);
    expect(again.workflowId).toBe(first.workflowId);
  });

  it.each([
    ['a phone without +', { phone: '4155550100' }, 'phone: must be an E.164 number'],
    ['no phone', { phone: undefined }, 'phone:'],
    ['an empty messageId', { messageId: '' }, 'messageId: must not be empty'],
    ['staleAt far in the past (a clock or unit error)', { staleIn: undefined, staleAt: '2001-01-01T00:00:00Z' }, 'staleAt: 2001-01-01T00:00:00.000Z is more than 24 h in the past'],
    ['staleAt before sentAt', { staleIn: undefined, sentAt: '2001-01-01T00:00:10Z', staleAt: '2001-01-01T00:00:00Z' }, 'is not after sentAt'],
    ['sentAt in the future', { sentAt: '2999-01-01T00:00:00Z' }, 'sentAt: 2999-01-01T00:00:00.000Z is in the future'],
    ['an unparseable staleAt', { staleIn: undefined, staleAt: 'next tuesday' }, 'staleAt: not an ISO-8601 date-time'],
    ['an unparseable staleIn', { staleIn: 'soon' }, 'staleIn: not a duration'],
    ['a fallback text over the SMS limit', { fallbackText: 'x'.repeat(2000) }, 'fallbackText: at most 1530 characters'],
    ['an unknown policy value', { policy: { onUnknown: 'maybe' } }, 'policy.onUnknown'],
    ['an unknown traffic type', { trafficType: 'SPAM' }, 'trafficType'],
    ['a priority past 5', { priority: 6 }, 'priority: at most 5 (last)'],
    ['a priority that is not whole', { priority: 1.5 }, 'priority: must be a whole number'],
  ])('refuses %s before anything reaches Temporal', async (_label, override, message) => {
    const m = testMessage('bad');
    const input = { ...m, staleIn: '1h', fallbackText: 'x', ...override };
    const error = await stack.guards.track(input as never).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as Error).message).toContain(message);
    const started = await stack.client.workflow.count(`WorkflowId = "${guardWorkflowId(m.agentId, m.messageId)}"`);
    expect(started.count).toBe(0);
  });
});

/** Like sendAndTrack, for a message whose faults were injected before tracking. */
async function sendAndTrackAs(m: ReturnType<typeof testMessage>, name: string, plan: Parameters<GuardStack['sim']['registerSent']>[0]['plan']) {
  stack.sim.registerSent({ agentId: m.agentId, messageId: m.messageId, phone: m.phone, plan });
  const { workflowId } = await stack.guards.track({ ...m, staleIn: '1500ms', fallbackText: `code for ${name}`, trafficType: 'AUTHENTICATION' });
  recorded.push({ name, workflowId });
  return { workflowId };
}
