// The chaos checker on hand-made truths: each allowed story passes, each broken promise is caught
// under the right invariant. Pure: no server, no simulator.
import { describe, expect, it } from 'vitest';
import type { Outcome, TimelineEntry } from '../../workflows/contract.ts';
import type { MessageTruth, PushRecord } from '../../dev/sim/rbm-simulator.ts';
import { check, type CheckedMessage, type GuardRecord } from '../../dev/chaos/checker.ts';

const T0 = Date.parse('2030-01-01T00:00:00Z');
const STALE = T0 + 10_000;

function push(eventType: string, ackAt: number | null, eventId = `${eventType}-1`): PushRecord {
  return {
    event: { senderPhoneNumber: '+15550000001', eventType, eventId, messageId: 'm1', agentId: 'a' },
    via: 'webhook',
    createdAt: ackAt ?? T0,
    attempts: ackAt === null ? [{ at: T0, status: 503 }] : [{ at: ackAt, status: 200 }],
    acknowledged: ackAt !== null,
    abandoned: ackAt === null,
  } as PushRecord;
}

function truth(over: Partial<MessageTruth> = {}): MessageTruth {
  return {
    agentId: 'a',
    messageId: 'm1',
    phone: '+15550000001',
    origin: 'registered',
    sentAt: T0,
    plan: { deliverAfterMs: null },
    ttlRevoked: false,
    ttlRevokeFailed: false,
    revokeCalls: 0,
    revokeAnswers: [],
    eventsPushed: [],
    ...over,
  };
}

/** A timeline from [offset ms after the deadline, event, state] triples. */
function timeline(...entries: [number, string, string][]): TimelineEntry[] {
  return entries.map(([ms, event, state]) => ({ at: new Date(STALE + ms).toISOString(), event, state, reason: '' }) as TimelineEntry);
}

function run(
  t: MessageTruth | undefined,
  g: { outcome: Outcome | null; timeline: TimelineEntry[]; closeAfterStale?: number | null; status?: string },
  sms: number,
  m: Partial<CheckedMessage> = {},
) {
  const message: CheckedMessage = {
    messageId: 'm1',
    workflowId: 'rbm-guard/a/m1',
    phone: '+15550000001',
    hasFallback: true,
    onUnknown: 'fallback',
    staleAt: STALE,
    tracked: true,
    ...m,
  };
  const close = g.closeAfterStale === undefined ? 20_000 : g.closeAfterStale;
  const record: GuardRecord = {
    workflowId: message.workflowId,
    executionStatus: g.status ?? (close === null ? 'RUNNING' : 'COMPLETED'),
    state: g.outcome,
    outcome: g.outcome,
    closeTime: close === null ? null : STALE + close,
    timeline: g.timeline,
  };
  return check({ messages: [message], truth: () => t, smsTo: () => sms, guard: () => record, boundMs: 60_000 });
}

const invariants = (r: ReturnType<typeof check>) => r.violations.map((v) => v.invariant);

describe('chaos checker', () => {
  it('delivered in time, heard, no SMS: clean', () => {
    const r = run(
      truth({ deliveredAt: T0 + 2_000, eventsPushed: [push('DELIVERED', T0 + 2_100)] }),
      { outcome: 'DELIVERED', timeline: timeline([-8_000, 'TRACKED', 'AWAITING_DELIVERY'], [-7_900, 'DELIVERED', 'DELIVERED']) },
      0,
    );
    expect(r.violations).toEqual([]);
  });

  it('revoked, one SMS, FALLBACK_SENT: clean', () => {
    const r = run(
      truth({ revokedAt: STALE + 100, revokeCalls: 1, revokeAnswers: [200] }),
      { outcome: 'FALLBACK_SENT', timeline: timeline([0, 'STALE', 'REVOKING'], [100, 'REVOKED', 'FALLBACK'], [200, 'FALLBACK_ACCEPTED', 'FALLBACK_SENT']) },
      1,
    );
    expect(r.violations).toEqual([]);
  });

  it('invariant 2: delivered, no revoke said 200, yet an SMS', () => {
    const r = run(
      truth({ deliveredAt: T0 + 2_000, revokeAnswers: [404] }),
      { outcome: 'FALLBACK_SENT', timeline: timeline([0, 'STALE', 'REVOKING'], [100, 'REVOKE_404', 'FALLBACK'], [200, 'FALLBACK_ACCEPTED', 'FALLBACK_SENT']) },
      1,
    );
    expect(invariants(r)).toContain(2);
  });

  it('the revoke-200 race heard after the fallback started: an unavoidable, recorded double', () => {
    const r = run(
      truth({ deliveredAt: STALE + 100, revokeAnswers: [200], eventsPushed: [push('DELIVERED', STALE + 400)] }),
      {
        outcome: 'DOUBLE_DELIVERY',
        timeline: timeline([0, 'STALE', 'REVOKING'], [150, 'REVOKED', 'FALLBACK'], [400, 'DELIVERED', 'FALLBACK'], [500, 'FALLBACK_ACCEPTED', 'DOUBLE_DELIVERY']),
      },
      1,
    );
    expect(r.violations).toEqual([]);
    expect(r.doubles).toMatchObject({ recorded: 1, unheard: 0, byCause: { 'revoke-200': 1 } });
  });

  it('invariant 4: the DELIVERED was acknowledged before the guard fell back', () => {
    const r = run(
      truth({ deliveredAt: STALE + 100, revokeAnswers: [200], eventsPushed: [push('DELIVERED', STALE + 120)] }),
      {
        outcome: 'DOUBLE_DELIVERY',
        timeline: timeline([0, 'STALE', 'REVOKING'], [150, 'REVOKED', 'FALLBACK'], [200, 'DELIVERED', 'FALLBACK'], [500, 'FALLBACK_ACCEPTED', 'DOUBLE_DELIVERY']),
      },
      1,
    );
    expect(invariants(r)).toEqual([4]);
  });

  it('invariant 4: a double the guard heard of, recorded as FALLBACK_SENT', () => {
    const r = run(
      truth({ deliveredAt: STALE + 100, revokeAnswers: [200], eventsPushed: [push('DELIVERED', STALE + 400)] }),
      {
        outcome: 'FALLBACK_SENT',
        timeline: timeline([0, 'STALE', 'REVOKING'], [150, 'REVOKED', 'FALLBACK'], [300, 'FALLBACK_ACCEPTED', 'FALLBACK_SENT'], [400, 'DELIVERED', 'FALLBACK_SENT']),
      },
      1,
    );
    expect(invariants(r)).toContain(4);
  });

  it('a policy double with no event at all: unheard, FALLBACK_SENT allowed', () => {
    const r = run(
      truth({ deliveredAt: STALE - 500, revokeAnswers: ['dropped', 'dropped'], plan: { deliverAfterMs: 9_500, noEvent: true } }),
      {
        outcome: 'FALLBACK_SENT',
        timeline: timeline([0, 'STALE', 'REVOKING'], [1_000, 'REVOKE_UNKNOWN', 'RECHECK'], [3_000, 'ROUNDS_SPENT', 'FALLBACK'], [3_100, 'FALLBACK_ACCEPTED', 'FALLBACK_SENT']),
      },
      1,
    );
    expect(r.violations).toEqual([]);
    expect(r.doubles).toMatchObject({ unheard: 1, byCause: { 'policy-on-unknown': 1 } });
  });

  it('invariant 3: revoked, no SMS, and the policy would have sent one', () => {
    const r = run(truth({ revokedAt: STALE + 100, revokeAnswers: [200] }), { outcome: 'REVOKED', timeline: timeline([100, 'REVOKED', 'REVOKED']) }, 0);
    expect(invariants(r)).toContain(3);
  });

  it('a promotion whose revoke answers were all lost ends UNRESOLVED: allowed', () => {
    const r = run(
      truth({ revokedAt: STALE + 100, revokeAnswers: ['lost', 503, 'dropped'] }),
      { outcome: 'UNRESOLVED', timeline: timeline([0, 'STALE', 'REVOKING'], [3_000, 'ROUNDS_SPENT', 'UNRESOLVED']) },
      0,
      { onUnknown: 'no-fallback' },
    );
    expect(r.violations).toEqual([]);
  });

  it('invariant 3: two SMS to one phone', () => {
    const r = run(
      truth({ revokedAt: STALE + 100, revokeAnswers: [200] }),
      { outcome: 'FALLBACK_SENT', timeline: timeline([100, 'REVOKED', 'FALLBACK'], [200, 'FALLBACK_ACCEPTED', 'FALLBACK_SENT']) },
      2,
    );
    expect(invariants(r)).toContain(3);
  });

  it('invariant 5: an acknowledged event missing from the timeline; a late one is only counted', () => {
    const lost = run(
      truth({ deliveredAt: T0 + 1_000, revokeAnswers: [404], eventsPushed: [push('DELIVERED', T0 + 1_100)] }),
      { outcome: 'DELIVERED_UNCONFIRMED', timeline: timeline([0, 'STALE', 'REVOKING'], [100, 'REVOKE_404', 'CONFIRMING_DELIVERY'], [2_100, 'GRACE_ELAPSED', 'DELIVERED_UNCONFIRMED']) },
      0,
    );
    expect(invariants(lost)).toContain(5);
    const late = run(
      truth({ deliveredAt: T0 + 1_000, revokeAnswers: [404], eventsPushed: [push('DELIVERED', STALE + 30_000)], plan: { deliverAfterMs: 1_000, eventDelayMs: 39_000 } }),
      { outcome: 'DELIVERED_UNCONFIRMED', timeline: timeline([0, 'STALE', 'REVOKING'], [100, 'REVOKE_404', 'CONFIRMING_DELIVERY'], [2_100, 'GRACE_ELAPSED', 'DELIVERED_UNCONFIRMED']) },
      0,
    );
    expect(late.violations).toEqual([]);
    expect(late.lateEvents).toBe(1);
  });

  it('invariant 1: still open past the bound, never tracked, or a SEND_ERROR', () => {
    expect(invariants(run(truth(), { outcome: null, timeline: [], closeAfterStale: null }, 0))).toEqual([1]);
    expect(invariants(run(truth(), { outcome: 'FALLBACK_SENT', timeline: [] }, 1, { tracked: false, trackError: 'staleAt in the past' }))).toEqual([1]);
    expect(invariants(run(truth(), { outcome: 'FALLBACK_SENT', timeline: [], closeAfterStale: 90_000 }, 1))).toContain(1);
    expect(invariants(run(truth(), { outcome: 'SEND_ERROR', timeline: [] }, 0))).toContain(1);
  });

  it('FALLBACK_FAILED is right only when the provider was down past the budget', () => {
    const revoked = truth({ revokedAt: STALE + 100, revokeAnswers: [200] });
    const g = { outcome: 'FALLBACK_FAILED' as const, timeline: timeline([100, 'REVOKED', 'FALLBACK'], [5_000, 'FALLBACK_FAILED', 'FALLBACK_FAILED']) };
    expect(run(revoked, g, 0, { expectFallbackFailed: true }).violations).toEqual([]);
    expect(invariants(run(revoked, g, 0))).toContain(3);
  });
});
