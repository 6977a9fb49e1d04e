// The guard against a pessimistic platform, on a real Temporal dev server with the RBM simulator and
// the SMS sink over real HTTP: a 404 that proves nothing, a create that never landed, a platform TTL
// that revokes first, a DELIVERED between two SMS attempts, and Twilio, which has no idempotency key.
// Each asserts the outcome, the timeline and what the provider really sent (docs/architecture.md,
// "The race table", names the rows).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventSignals, GUARD_RULES, guardWorkflowId, RULES_VERSIONS, type GuardInput, type GuardStatus } from '../../workflows/contract.ts';
import { HistoryRecorder } from '../support/histories.ts';
import { eventually } from '../support/eventually.ts';
import { sendAndTrack as sendAndTrackOn, startGuardStack, testMessage, type GuardStack } from '../support/stack.ts';

let stack: GuardStack;
let twilio: GuardStack;
// Guards start deferred, as by default (histories in rules4-deferred/); RBM_GUARD_TEST_DEFER_START=0
// runs the same paths started at once with a deadline timer (histories in rules4/), in CI.
const histories = new HistoryRecorder(new URL(process.env.RBM_GUARD_TEST_DEFER_START === '0' ? '../histories/rules4/' : '../histories/rules4-deferred/', import.meta.url));

beforeAll(async () => {
  stack = await startGuardStack();
  // A second stack whose fallback is the sink's Twilio endpoint (no idempotency key).
  twilio = await startGuardStack({ fallback: 'twilio' });
});

afterAll(async () => {
  await histories.save(stack.client);
  await stack?.close();
  await twilio?.close();
});

const states = (s: GuardStatus) => s.timeline.map((t) => t.state);
const events = (s: GuardStatus) => s.timeline.map((t) => t.event);

/** Sends (simulator) and tracks a message; records the history of those on the main stack. */
async function sendAndTrack(on: GuardStack, name: string, plan: Parameters<GuardStack['sim']['registerSent']>[0]['plan'], track: Record<string, unknown> = {}) {
  const m = await sendAndTrackOn(on, name, plan, track);
  histories.add(name, m.workflowId);
  return m;
}

describe.concurrent('a 404 that proves nothing', () => {
  it('revoke lands, its answer is lost, the retry gets 404: an OTP still falls back, once', async () => {
    const m = testMessage('404-after-lost-200');
    stack.sim.injectRevokeFaults(m.messageId, [{ hangMs: 3000, perform: true }]);
    stack.sim.registerSent({ agentId: m.agentId, messageId: m.messageId, phone: m.phone, plan: { deliverAfterMs: null } });
    const { workflowId } = await stack.guards.track({ ...m, staleIn: '1500ms', fallbackText: 'code', trafficType: 'AUTHENTICATION' });
    histories.add('404-after-lost-200', workflowId);
    const status = await stack.result(workflowId);
    expect(status.outcome).toBe('FALLBACK_SENT');
    expect(states(status)).toEqual(['AWAITING_DELIVERY', 'REVOKING', 'CONFIRMING_DELIVERY', 'FALLBACK', 'FALLBACK_SENT']);
    expect(status.timeline[2]!.reason).toContain('an earlier DELETE of this round');
    // The first DELETE landed and its answer was dropped (recorded when the hang ends); the retry got 404.
    expect([...(stack.sim.truth(m.messageId)?.revokeAnswers ?? [])].map(String).sort()).toEqual(['404', 'dropped']);
    expect(stack.sink.distinctSendsTo(m.phone)).toBe(1);
  });

  it('the same for a promotion: UNRESOLVED, no SMS (its policy does not fall back on an unknown)', async () => {
    const m = testMessage('unresolved-promotion');
    stack.sim.injectRevokeFaults(m.messageId, [{ hangMs: 3000, perform: true }]);
    stack.sim.registerSent({ agentId: m.agentId, messageId: m.messageId, phone: m.phone, plan: { deliverAfterMs: null } });
    const { workflowId } = await stack.guards.track({ ...m, policy: { ...m.policy, lingerMs: 0 }, staleIn: '1500ms', fallbackText: 'sale', trafficType: 'PROMOTION' });
    histories.add('unresolved-promotion', workflowId);
    const status = await stack.result(workflowId);
    expect(status.outcome).toBe('UNRESOLVED');
    expect(states(status)).toEqual(['AWAITING_DELIVERY', 'REVOKING', 'CONFIRMING_DELIVERY', 'UNRESOLVED']);
    expect(stack.sink.distinctSendsTo(m.phone)).toBe(0);
  });

  it('a clean 404 with no DELIVERED within the grace: an OTP falls back (delivery unknown)', async () => {
    const m = await sendAndTrack(stack, 'revoke-404-silent-otp', { deliverAfterMs: null, raceRevoke: 404, noEvent: true });
    const status = await stack.result(m.workflowId);
    expect(status.outcome).toBe('FALLBACK_SENT');
    expect(states(status)).toEqual(['AWAITING_DELIVERY', 'REVOKING', 'CONFIRMING_DELIVERY', 'FALLBACK', 'FALLBACK_SENT']);
    expect(stack.sink.distinctSendsTo(m.phone)).toBe(1);
  });

  it('the guard’s own create never landed (503s): the 404 at the deadline proves nothing; one SMS', async () => {
    const m = testMessage('sending-never-landed');
    stack.sim.injectCreateFaults(m.messageId, [{ status: 503 }, { status: 503 }]);
    const { workflowId } = await stack.guards.track({ ...m, staleIn: '2s', sendText: 'Your code is 1', fallbackText: 'Your code is 1', trafficType: 'AUTHENTICATION' });
    histories.add('sending-never-landed', workflowId);
    const status = await stack.result(workflowId);
    expect(status.outcome).toBe('FALLBACK_SENT');
    expect(events(status).slice(0, 2)).toEqual(['TRACKED', 'SEND_UNKNOWN']);
    expect(states(status)).toEqual(['SENDING', 'AWAITING_DELIVERY', 'REVOKING', 'CONFIRMING_DELIVERY', 'FALLBACK', 'FALLBACK_SENT']);
    expect(stack.sink.distinctSendsTo(m.phone)).toBe(1);
  });

  it('the platform TTL revokes just before our DELETE (404), its event arrives in CONFIRMING_DELIVERY: fallback', async () => {
    const expireTime = new Date(Date.now() + 60_000).toISOString();
    const m = await sendAndTrack(stack, 'ttl-races-revoke', { deliverAfterMs: null, ttlRacesRevoke: true }, { expireTime });
    const status = await stack.result(m.workflowId);
    expect(status.outcome).toBe('FALLBACK_SENT');
    expect(events(status)).toContain('TTL_EXPIRATION_REVOKED');
    expect(states(status).slice(0, 2)).toEqual(['AWAITING_DELIVERY', 'REVOKING']);
    expect(stack.sim.truth(m.messageId)?.revokeAnswers).toEqual([404]);
    expect(stack.sink.distinctSendsTo(m.phone)).toBe(1);
  });
});

describe('the SMS leg', () => {
  it('DELIVERED between two SMS attempts (nothing in flight): DELIVERED, no SMS', async () => {
    const m = await sendAndTrack(stack, 'delivered-between-attempts', { deliverAfterMs: null, raceRevoke: 200, eventDelayMs: 800 });
    // 429: surely not sent (a 5xx may have been), so nothing can have gone out before the DELIVERED.
    stack.sink.injectFaults([{ status: 429, retryAfterSeconds: 10 }]);
    const status = await stack.result(m.workflowId);
    expect(status.outcome).toBe('DELIVERED');
    expect(events(status)).toEqual(['TRACKED', 'STALE', 'REVOKED', 'FALLBACK_RETRY', 'DELIVERED']);
    expect(stack.sink.distinctSendsTo(m.phone)).toBe(0);
  });

  it('Twilio: an SMS whose answer was lost is found by the lookup, not sent twice', async () => {
    twilio.sink.injectFaults([{ lostResponse: true }]);
    const m = await sendAndTrack(twilio, 'twilio-lost-answer', { deliverAfterMs: null });
    const status = await twilio.result(m.workflowId);
    expect(status.outcome).toBe('FALLBACK_SENT');
    expect(events(status).slice(-2)).toEqual(['FALLBACK_RETRY', 'FALLBACK_FOUND']);
    expect(twilio.sink.sentTo(m.phone)).toHaveLength(1);
  });

  it('Twilio: an attempt that hung without sending is looked up, found missing, and sent once', async () => {
    twilio.sink.injectFaults([{ hangMs: 3000, perform: false, then: 'drop' }]);
    const m = await sendAndTrack(twilio, 'twilio-hung-unsent', { deliverAfterMs: null });
    const status = await twilio.result(m.workflowId);
    expect(status.outcome).toBe('FALLBACK_SENT');
    expect(events(status).slice(-2)).toEqual(['FALLBACK_RETRY', 'FALLBACK_ACCEPTED']);
    expect(twilio.sink.sentTo(m.phone)).toHaveLength(1);
  });

  it('Twilio slower than the client: the SMS appears after the client gave up; the next attempt waits for it to settle, finds it, and sends nothing more', async () => {
    // The client gives up at 2 s; Twilio creates the message at 6 s. Rules 2 looked it up ~1 s after
    // the timeout, found nothing and sent a second SMS recorded as one (FALLBACK_SENT).
    twilio.sink.injectFaults([{ hangMs: 6000, perform: 'after', then: 'drop' }]);
    const m = await sendAndTrack(twilio, 'twilio-slow-create', { deliverAfterMs: null });
    const status = await twilio.result(m.workflowId);
    expect(twilio.sink.sentTo(m.phone)).toHaveLength(1);
    expect(status.outcome).toBe('FALLBACK_SENT');
    expect(events(status).slice(-2)).toEqual(['FALLBACK_RETRY', 'FALLBACK_FOUND']);
  });

  it('Twilio: lost answer and the lookup keeps failing: an OTP resends once, FALLBACK_MAYBE_TWICE says so', async () => {
    twilio.sink.injectFaults([{ lostResponse: true }]);
    twilio.sink.injectLookupFaults([{ status: 503 }, { status: 503 }, { status: 503 }]);
    const m = await sendAndTrack(twilio, 'twilio-maybe-twice', { deliverAfterMs: null });
    const status = await twilio.result(m.workflowId);
    expect(status.outcome).toBe('FALLBACK_MAYBE_TWICE');
    expect(events(status)).toContain('FALLBACK_UNKNOWN');
    expect(twilio.sink.sentTo(m.phone)).toHaveLength(2);
  });
});

describe('events before track', () => {
  it('an event for a message that is never tracked: ORPHANED after the orphan window', async () => {
    const m = testMessage('orphaned');
    const workflowId = guardWorkflowId(m.agentId, m.messageId);
    await stack.client.workflow.signalWithStart('rbmGuard', {
      workflowId,
      taskQueue: stack.taskQueue,
      args: [{ agentId: m.agentId, messageId: m.messageId, rules: GUARD_RULES, orphanAfterMs: 1000 }],
      signal: eventSignals.DELIVERED,
      signalArgs: [{ eventId: 'orphan-event-1' }],
    });
    histories.add('orphaned', workflowId);
    const status = await stack.result(workflowId);
    expect(status.outcome).toBe('ORPHANED');
    expect(states(status)).toEqual(['AWAITING_TRACK', 'AWAITING_TRACK', 'ORPHANED']);
  });
});

describe('rules versions', () => {
  it('a guard naming rules this worker does not know fails its workflow task and waits, open, for a worker that does — never runs older rules', async () => {
    const m = testMessage('rules-unknown');
    const workflowId = guardWorkflowId(m.agentId, m.messageId);
    const handle = await stack.client.workflow.start('rbmGuard', {
      workflowId,
      taskQueue: stack.taskQueue,
      args: [{ agentId: m.agentId, messageId: m.messageId, rules: 99, orphanAfterMs: 1000 } as unknown as GuardInput],
    });
    try {
      const failed = await eventually(
        () => handle.fetchHistory(),
        (h) => (h.events ?? []).some((e) => e.workflowTaskFailedEventAttributes),
      );
      const failure = failed.events!.find((e) => e.workflowTaskFailedEventAttributes)!.workflowTaskFailedEventAttributes!.failure?.message;
      expect(failure).toBe(`guard rules 99 are unknown to this worker (it runs ${RULES_VERSIONS.join(', ')}): deploy a worker with GUARD_RULES 99`);
      // No timer, no activity: nothing of any rules ran; and the guard is still open.
      expect((failed.events ?? []).some((e) => e.timerStartedEventAttributes || e.activityTaskScheduledEventAttributes)).toBe(false);
      expect((await handle.describe()).status.name).toBe('RUNNING');
    } finally {
      await handle.terminate('test done');
    }
  });
});
