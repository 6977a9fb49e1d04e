// The chaos checker on hand-made truths: each allowed story passes, each broken promise is caught
// under the right invariant. Pure: no server, no simulator.
import { describe, expect, it } from 'vitest';
import { type Outcome, type TimelineEntry } from '../../../workflows/contract.ts';
import { lateDeliveryWorkflowId } from '../../../client/late-records.ts';
import type { MessageTruth, PushRecord } from '../../../dev/sim/rbm-simulator.ts';
import { check, type CheckedMessage, type GuardRecord } from '../../../dev/chaos/checker.ts';

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
function timeline(...entries: ([number, string, string] | [number, string, string, string])[]): TimelineEntry[] {
  return entries.map(([ms, event, state, reason]) => ({ at: new Date(STALE + ms).toISOString(), event, state, reason: reason ?? '' }) as TimelineEntry);
}

function run(
  t: MessageTruth | undefined,
  g: { outcome: Outcome | null; timeline: TimelineEntry[]; closeAfterStale?: number | null; status?: string },
  sms: number,
  m: Partial<CheckedMessage> = {},
  lateRecords: string[] = [],
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
  return check({ messages: [message], truth: () => t, smsTo: () => sms, guard: () => record, lateRecords: new Set(lateRecords), boundMs: 60_000 });
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

  it('invariant 3: a promotion delivered, no revoke said 200, yet an SMS (its policy does not fall back on unknown)', () => {
    const r = run(
      truth({ deliveredAt: T0 + 2_000, revokeAnswers: [404] }),
      { outcome: 'FALLBACK_SENT', timeline: timeline([0, 'STALE', 'REVOKING'], [100, 'REVOKE_404', 'FALLBACK'], [200, 'FALLBACK_ACCEPTED', 'FALLBACK_SENT']) },
      1,
      { onUnknown: 'no-fallback' },
    );
    expect(invariants(r)).toEqual([3]);
  });

  it('an OTP delivered with its events lost, a 404 read as unknown, one SMS: an unheard double, apart', () => {
    const r = run(
      truth({ deliveredAt: T0 + 2_000, revokeAnswers: [404], plan: { deliverAfterMs: 2_000, noEvent: true } }),
      { outcome: 'FALLBACK_SENT', timeline: timeline([0, 'STALE', 'REVOKING'], [100, 'REVOKE_404', 'CONFIRMING_DELIVERY'], [2_100, 'GRACE_ELAPSED', 'FALLBACK'], [2_200, 'FALLBACK_ACCEPTED', 'FALLBACK_SENT']) },
      1,
    );
    expect(r.violations).toEqual([]);
    expect(r.doubles).toMatchObject({ unheard: 1, recorded: 0, recordedLate: 0, byCause: { 'policy-on-unknown': 1 } });
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

  it('invariant 3: the DELIVERED was acknowledged before the guard fell back', () => {
    const r = run(
      truth({ deliveredAt: STALE + 100, revokeAnswers: [200], eventsPushed: [push('DELIVERED', STALE + 120)] }),
      {
        outcome: 'DOUBLE_DELIVERY',
        timeline: timeline([0, 'STALE', 'REVOKING'], [150, 'REVOKED', 'FALLBACK'], [200, 'DELIVERED', 'FALLBACK'], [500, 'FALLBACK_ACCEPTED', 'DOUBLE_DELIVERY']),
      },
      1,
    );
    expect(invariants(r)).toEqual([3]);
  });

  it('invariant 3: a double the guard heard of, recorded as FALLBACK_SENT', () => {
    const r = run(
      truth({ deliveredAt: STALE + 100, revokeAnswers: [200], eventsPushed: [push('DELIVERED', STALE + 400)] }),
      {
        outcome: 'FALLBACK_SENT',
        timeline: timeline([0, 'STALE', 'REVOKING'], [150, 'REVOKED', 'FALLBACK'], [300, 'FALLBACK_ACCEPTED', 'FALLBACK_SENT'], [400, 'DELIVERED', 'FALLBACK_SENT']),
      },
      1,
    );
    expect(invariants(r)).toContain(3);
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

  it('invariant 2: revoked, no SMS, and the policy would have sent one', () => {
    const r = run(truth({ revokedAt: STALE + 100, revokeAnswers: [200] }), { outcome: 'REVOKED', timeline: timeline([100, 'REVOKED', 'REVOKED']) }, 0);
    expect(invariants(r)).toContain(2);
  });

  it('invariant 2, the issue\'s finding: an OTP revoked by a DELETE whose 200 was lost, the retry said 404, DELIVERED_UNCONFIRMED and no SMS', () => {
    const story = {
      outcome: 'DELIVERED_UNCONFIRMED' as const,
      timeline: timeline([0, 'STALE', 'REVOKING'], [1_100, 'REVOKE_404', 'CONFIRMING_DELIVERY'], [3_100, 'GRACE_ELAPSED', 'DELIVERED_UNCONFIRMED']),
    };
    const revoked = truth({ revokedAt: STALE + 50, revokeCalls: 2, revokeAnswers: ['lost', 404] });
    expect(invariants(run(revoked, story, 0))).toEqual([2]);
    // the same story for a promotion: its policy said no fallback, and the outcome says so
    expect(run(revoked, story, 0, { onUnknown: 'no-fallback' }).violations).toEqual([]);
  });

  it('invariant 2: a promotion that heard TTL_EXPIRATION_REVOKED must fall back, whatever else it heard', () => {
    const r = run(
      truth({ revokedAt: STALE - 10, ttlRevoked: true, revokeAnswers: [404], eventsPushed: [push('TTL_EXPIRATION_REVOKED', STALE + 300)] }),
      {
        outcome: 'UNRESOLVED',
        timeline: timeline([0, 'STALE', 'REVOKING'], [100, 'REVOKE_404', 'CONFIRMING_DELIVERY'], [300, 'TTL_EXPIRATION_REVOKED', 'CONFIRMING_DELIVERY'], [2_100, 'GRACE_ELAPSED', 'UNRESOLVED']),
      },
      0,
      { onUnknown: 'no-fallback' },
    );
    expect(invariants(r)).toEqual([2]);
  });

  it('FALLBACK_UNCONFIRMED with no SMS: allowed for a promotion, a violation for an OTP (its policy resends)', () => {
    const story = {
      outcome: 'FALLBACK_UNCONFIRMED' as const,
      timeline: timeline([100, 'REVOKED', 'FALLBACK'], [2_200, 'FALLBACK_UNKNOWN', 'FALLBACK_UNCONFIRMED']),
    };
    const revoked = truth({ revokedAt: STALE + 100, revokeAnswers: [200] });
    expect(run(revoked, story, 0, { onUnknown: 'no-fallback' }).violations).toEqual([]);
    expect(run(revoked, story, 1, { onUnknown: 'no-fallback' }).violations).toEqual([]);
    expect(invariants(run(revoked, story, 0))).toEqual([2]);
  });

  it('two SMS recorded as FALLBACK_MAYBE_TWICE: counted apart, not a violation; three never', () => {
    const revoked = truth({ revokedAt: STALE + 100, revokeAnswers: [200] });
    const story = {
      outcome: 'FALLBACK_MAYBE_TWICE' as const,
      timeline: timeline([100, 'REVOKED', 'FALLBACK'], [4_000, 'FALLBACK_ACCEPTED', 'FALLBACK_MAYBE_TWICE']),
    };
    const twice = run(revoked, story, 2);
    expect(twice.violations).toEqual([]);
    expect(twice.twiceRecorded).toBe(1);
    expect(run(revoked, story, 1).violations).toEqual([]);
    expect(invariants(run(revoked, story, 3))).toContain(4);
    expect(invariants(run(revoked, story, 0))).toEqual([1, 2]); // claims an SMS that never went out
  });

  it('invariant 4: two SMS recorded as DOUBLE_DELIVERY only with a note of the possible second SMS', () => {
    const delivered = truth({ deliveredAt: STALE + 100, revokeAnswers: [200], eventsPushed: [push('DELIVERED', STALE + 5_000)] });
    const entries: [number, string, string, string][] = [
      [0, 'STALE', 'REVOKING', ''],
      [150, 'REVOKED', 'FALLBACK', ''],
      [4_000, 'FALLBACK_ACCEPTED', 'FALLBACK_MAYBE_TWICE', 'sent without knowing whether an earlier attempt went out'],
      [5_000, 'DELIVERED', 'DOUBLE_DELIVERY', 'DELIVERED after the SMS was accepted'],
    ];
    expect(run(delivered, { outcome: 'DOUBLE_DELIVERY', timeline: timeline(...entries) }, 2).violations).toEqual([]);
    const unnoted = timeline(entries[0]!, entries[1]!, [4_000, 'FALLBACK_ACCEPTED', 'FALLBACK_SENT', ''], entries[3]!);
    expect(invariants(run(delivered, { outcome: 'DOUBLE_DELIVERY', timeline: unnoted }, 2))).toEqual([4]);
  });

  it('a DELIVERED after the guard closed with an SMS: recorded by its late-delivery workflow, or a violation', () => {
    const delivered = truth({ deliveredAt: STALE + 100, revokeAnswers: [200], eventsPushed: [push('DELIVERED', STALE + 40_000, 'ev-late')] });
    const story = {
      outcome: 'FALLBACK_SENT' as const,
      timeline: timeline([0, 'STALE', 'REVOKING'], [150, 'REVOKED', 'FALLBACK'], [300, 'FALLBACK_ACCEPTED', 'FALLBACK_SENT']),
    };
    const recorded = run(delivered, story, 1, {}, [lateDeliveryWorkflowId('rbm-guard/a/m1', 'ev-late')]);
    expect(recorded.violations).toEqual([]);
    expect(recorded).toMatchObject({ lateRecords: 1, lateEvents: 1, doubles: { recordedLate: 1, unheard: 0, byCause: { 'revoke-200': 1 } } });
    expect(invariants(run(delivered, story, 1)).sort()).toEqual([3, 5]);
    // a record for another event of the same guard does not cover this one
    expect(invariants(run(delivered, story, 1, {}, [lateDeliveryWorkflowId('rbm-guard/a/m1', 'ev-other')]))).toEqual([5]);
  });

  it('DOUBLE_DELIVERY with no SMS at the sink: allowed after an SMS attempt that may have gone out, counted', () => {
    const delivered = truth({ deliveredAt: STALE + 3_000, revokeAnswers: [200], eventsPushed: [push('DELIVERED', STALE + 3_100)] });
    const r = run(
      delivered,
      { outcome: 'DOUBLE_DELIVERY', timeline: timeline([150, 'REVOKED', 'FALLBACK'], [2_500, 'FALLBACK_RETRY', 'FALLBACK'], [3_100, 'DELIVERED', 'DOUBLE_DELIVERY']) },
      0,
    );
    expect(r.violations).toEqual([]);
    expect(r.doubles.withoutSms).toBe(1);
    expect(invariants(run(delivered, { outcome: 'DOUBLE_DELIVERY', timeline: timeline([3_100, 'DELIVERED', 'DOUBLE_DELIVERY']) }, 0))).toContain(1);
  });

  it('an SMS the outcome denies: UNRESOLVED with one SMS at the sink', () => {
    const r = run(truth({ revokedAt: STALE + 100, revokeAnswers: ['lost', 404] }), { outcome: 'UNRESOLVED', timeline: timeline([3_000, 'ROUNDS_SPENT', 'UNRESOLVED']) }, 1, {
      onUnknown: 'no-fallback',
    });
    expect(invariants(r)).toEqual([2]);
  });

  it('a message the guard sends itself whose create never landed: never delivered, so one SMS is due', () => {
    const story = { outcome: 'FALLBACK_SENT' as const, timeline: timeline([100, 'REVOKE_404', 'FALLBACK'], [200, 'FALLBACK_ACCEPTED', 'FALLBACK_SENT']) };
    expect(run(undefined, story, 1, { guardSends: true }).violations).toEqual([]);
    expect(invariants(run(undefined, { ...story, outcome: 'DELIVERED_UNCONFIRMED' }, 0, { guardSends: true }))).toEqual([2]);
    expect(invariants(run(undefined, story, 1))).toEqual([1]); // a backend-sent message the platform never saw
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

  it('invariant 4: two SMS to one phone recorded as FALLBACK_SENT', () => {
    const r = run(
      truth({ revokedAt: STALE + 100, revokeAnswers: [200] }),
      { outcome: 'FALLBACK_SENT', timeline: timeline([100, 'REVOKED', 'FALLBACK'], [200, 'FALLBACK_ACCEPTED', 'FALLBACK_SENT']) },
      2,
    );
    expect(invariants(r)).toContain(4);
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
    expect(invariants(run(revoked, g, 0))).toContain(2);
  });
});
