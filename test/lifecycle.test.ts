// The state machine without a server: every transition of design.md, the both/neither races,
// duplicates and out-of-order events.
import { describe, expect, it } from 'vitest';
import type { GuardEventType, GuardInput, TrackedMessage } from '../workflows/contract.ts';
import { canCancel, canExtend, initialGuard, nextAction, step, type Guard, type LifecycleEvent } from '../workflows/lifecycle.ts';

const NOW = '2026-11-22T10:00:00.000Z';
const LATER = '2026-11-22T10:10:00.000Z';

function message(overrides: Partial<TrackedMessage> = {}): TrackedMessage {
  return {
    agentId: 'agent',
    messageId: 'm1',
    phone: '+14155550100',
    staleAt: LATER,
    trafficType: 'AUTHENTICATION',
    fallback: { channel: 'sms', text: 'Your code is 123456' },
    send: null,
    policy: { graceMs: 1000, maxRevokeRounds: 2, revokeAttempts: 3, fallbackAttempts: 3, onUnknown: 'fallback', lingerMs: 5000 },
    ...overrides,
  };
}

const tracked = (m: TrackedMessage = message()): GuardInput => ({ agentId: m.agentId, messageId: m.messageId, message: m });
const ev = (eventType: GuardEventType, eventId = `${eventType}-1`): LifecycleEvent => ({ type: 'RBM_EVENT', eventType, eventId });

function run(input: GuardInput, ...events: LifecycleEvent[]): Guard {
  return events.reduce((g, e) => step(g, e, NOW), initialGuard('wf', input, NOW));
}
const states = (g: Guard) => g.timeline.map((t) => t.state);

describe('lifecycle: delivery before the deadline', () => {
  it('DELIVERED while awaiting ends DELIVERED with nothing sent', () => {
    const g = run(tracked(), ev('DELIVERED'));
    expect(g.state).toBe('DELIVERED');
    expect(states(g)).toEqual(['AWAITING_DELIVERY', 'DELIVERED']);
    expect(nextAction(g, tracked(), NOW)).toEqual({ kind: 'done' });
  });

  it('READ before DELIVERED counts as delivery; the later DELIVERED changes nothing', () => {
    const g = run(tracked(), ev('READ'), ev('DELIVERED'));
    expect(g.state).toBe('DELIVERED');
    expect(g.timeline.at(-1)?.reason).toBe('delivery already known');
  });

  it('a duplicate event has one effect', () => {
    const g = run(tracked(), ev('TTL_EXPIRATION_REVOKE_FAILED', 'e1'), ev('TTL_EXPIRATION_REVOKE_FAILED', 'e1'));
    expect(g.timeline).toHaveLength(2);
    expect(g.state).toBe('RECHECK');
  });
});

describe('lifecycle: the deadline passes', () => {
  it('stale → revoke 200 → FALLBACK → FALLBACK_SENT, and closes (a later DELIVERED is the webhook’s record)', () => {
    const g = run(tracked(), { type: 'STALE' }, { type: 'REVOKE_RESULT', result: 'REVOKED' }, { type: 'FALLBACK_RESULT', result: 'ACCEPTED' });
    expect(states(g)).toEqual(['AWAITING_DELIVERY', 'REVOKING', 'FALLBACK', 'FALLBACK_SENT']);
    expect(g.revokeRounds).toBe(1);
    expect(nextAction(g, tracked(), NOW)).toEqual({ kind: 'done' });
  });

  it('rules 1 (guards from before the pessimistic rules) linger after FALLBACK_SENT, as they ran', () => {
    const g = [{ type: 'STALE' } as const, { type: 'REVOKE_RESULT', result: 'REVOKED' } as const, { type: 'FALLBACK_RESULT', result: 'ACCEPTED' } as const].reduce(
      (guard: Guard, e: LifecycleEvent) => step(guard, e, NOW),
      initialGuard('wf', tracked(), NOW, 1),
    );
    expect(nextAction(g, tracked(), NOW)).toEqual({ kind: 'linger', ms: 5000 });
  });

  it('revoke 404 → CONFIRMING_DELIVERY → DELIVERED event → DELIVERED', () => {
    const g = run(tracked(), { type: 'STALE' }, { type: 'REVOKE_RESULT', result: 'ALREADY_DELIVERED' }, ev('DELIVERED'));
    expect(states(g)).toEqual(['AWAITING_DELIVERY', 'REVOKING', 'CONFIRMING_DELIVERY', 'DELIVERED']);
  });

  it('revoke 404 and no event within the grace: unknown, so an OTP falls back and a promotion ends DELIVERED_UNCONFIRMED', () => {
    const otp = run(tracked(), { type: 'STALE' }, { type: 'REVOKE_RESULT', result: 'ALREADY_DELIVERED' }, { type: 'GRACE_ELAPSED' });
    expect(otp.state).toBe('FALLBACK');
    const promo = message({ trafficType: 'PROMOTION', policy: { ...message().policy, onUnknown: 'no-fallback' } });
    const g = run(tracked(promo), { type: 'STALE' }, { type: 'REVOKE_RESULT', result: 'ALREADY_DELIVERED' }, { type: 'GRACE_ELAPSED' });
    expect(g.state).toBe('DELIVERED_UNCONFIRMED');
    expect(states(g)).not.toContain('FALLBACK');
  });

  it('ambiguous revoke → RECHECK → late DELIVERED → DELIVERED (no SMS)', () => {
    const g = run(tracked(), { type: 'STALE' }, { type: 'REVOKE_RESULT', result: 'AMBIGUOUS' }, ev('DELIVERED'));
    expect(states(g)).toEqual(['AWAITING_DELIVERY', 'REVOKING', 'RECHECK', 'DELIVERED']);
  });

  it('ambiguous revoke → RECHECK → grace → second round → 200 → FALLBACK', () => {
    const g = run(
      tracked(),
      { type: 'STALE' },
      { type: 'REVOKE_RESULT', result: 'AMBIGUOUS' },
      { type: 'GRACE_ELAPSED' },
      { type: 'REVOKE_RESULT', result: 'REVOKED' },
    );
    expect(states(g)).toEqual(['AWAITING_DELIVERY', 'REVOKING', 'RECHECK', 'REVOKING', 'FALLBACK']);
    expect(g.revokeRounds).toBe(2);
  });

  it('the neither case: rounds spent, policy fallback → FALLBACK; policy no-fallback → UNRESOLVED', () => {
    const spend = (onUnknown: 'fallback' | 'no-fallback') => {
      const m = message({ policy: { ...message().policy, onUnknown } });
      return run(
        tracked(m),
        { type: 'STALE' },
        { type: 'REVOKE_RESULT', result: 'AMBIGUOUS' },
        { type: 'GRACE_ELAPSED' },
        { type: 'REVOKE_RESULT', result: 'AMBIGUOUS' },
        { type: 'GRACE_ELAPSED' },
      );
    };
    expect(spend('fallback').state).toBe('FALLBACK');
    expect(spend('fallback').revokeRounds).toBe(2);
    expect(spend('no-fallback').state).toBe('UNRESOLVED');
  });

  it('rounds spent with policy fallback but nothing to send → UNRESOLVED, not REVOKED', () => {
    const m = message({ fallback: null });
    const g = run(tracked(m), { type: 'STALE' }, { type: 'REVOKE_RESULT', result: 'AMBIGUOUS' }, { type: 'GRACE_ELAPSED' }, { type: 'REVOKE_RESULT', result: 'AMBIGUOUS' }, { type: 'GRACE_ELAPSED' });
    expect(g.state).toBe('UNRESOLVED');
  });

  it('revoke refused as a config error → REVOKE_ERROR, no fallback', () => {
    const g = run(tracked(), { type: 'STALE' }, { type: 'REVOKE_RESULT', result: 'CONFIG_ERROR', detail: '403 PERMISSION_DENIED' });
    expect(g.state).toBe('REVOKE_ERROR');
    expect(g.timeline.at(-1)?.reason).toBe('403 PERMISSION_DENIED');
  });

  it('a message without a fallback ends REVOKED after a 200 revoke', () => {
    const g = run(tracked(message({ fallback: null })), { type: 'STALE' }, { type: 'REVOKE_RESULT', result: 'REVOKED' });
    expect(g.state).toBe('REVOKED');
  });

  it('SMS refused or retries spent → FALLBACK_FAILED', () => {
    const g = run(tracked(), { type: 'STALE' }, { type: 'REVOKE_RESULT', result: 'REVOKED' }, { type: 'FALLBACK_RESULT', result: 'FAILED', detail: 'provider 400' });
    expect(g.state).toBe('FALLBACK_FAILED');
  });
});

describe('lifecycle: the both race', () => {
  it('DELIVERED during the revoke wins over its 200: no fallback', () => {
    const g = run(tracked(), { type: 'STALE' }, ev('DELIVERED'), { type: 'REVOKE_RESULT', result: 'REVOKED' });
    expect(g.state).toBe('DELIVERED');
    expect(states(g)).not.toContain('FALLBACK');
  });

  it('DELIVERED while the SMS is in flight → DOUBLE_DELIVERY when the provider accepts', () => {
    const g = run(tracked(), { type: 'STALE' }, { type: 'REVOKE_RESULT', result: 'REVOKED' }, ev('DELIVERED'), { type: 'FALLBACK_RESULT', result: 'ACCEPTED' });
    expect(g.state).toBe('DOUBLE_DELIVERY');
  });

  it('DELIVERED after the SMS was accepted is recorded as a double delivery', () => {
    const g = run(tracked(), { type: 'STALE' }, { type: 'REVOKE_RESULT', result: 'REVOKED' }, { type: 'FALLBACK_RESULT', result: 'ACCEPTED' }, ev('DELIVERED'));
    expect(states(g)).toEqual(['AWAITING_DELIVERY', 'REVOKING', 'FALLBACK', 'FALLBACK_SENT', 'DOUBLE_DELIVERY']);
    expect(nextAction(g, tracked(), NOW)).toEqual({ kind: 'done' });
  });

  it('a late DELIVERED turns UNRESOLVED and DELIVERED_UNCONFIRMED into DELIVERED', () => {
    const m = message({ policy: { ...message().policy, onUnknown: 'no-fallback', maxRevokeRounds: 1 } });
    const unresolved = run(tracked(m), { type: 'STALE' }, { type: 'REVOKE_RESULT', result: 'AMBIGUOUS' }, { type: 'GRACE_ELAPSED' });
    expect(unresolved.state).toBe('UNRESOLVED');
    expect(step(unresolved, ev('DELIVERED'), NOW).state).toBe('DELIVERED');
  });
});

describe('lifecycle: the platform TTL', () => {
  it('TTL_EXPIRATION_REVOKED while awaiting → FALLBACK', () => {
    expect(run(tracked(), ev('TTL_EXPIRATION_REVOKED')).state).toBe('FALLBACK');
  });

  it('TTL_EXPIRATION_REVOKE_FAILED → RECHECK → DELIVERED → no fallback', () => {
    const g = run(tracked(), ev('TTL_EXPIRATION_REVOKE_FAILED'), ev('DELIVERED'));
    expect(states(g)).toEqual(['AWAITING_DELIVERY', 'RECHECK', 'DELIVERED']);
  });

  it('TTL_EXPIRATION_REVOKE_FAILED → RECHECK → grace → our own revoke', () => {
    const g = run(tracked(), ev('TTL_EXPIRATION_REVOKE_FAILED'), { type: 'GRACE_ELAPSED' });
    expect(g.state).toBe('REVOKING');
    expect(g.revokeRounds).toBe(1);
  });

  it('DELIVERED wins over a later expiry notice', () => {
    const g = run(tracked(), ev('DELIVERED'), ev('TTL_EXPIRATION_REVOKED'));
    expect(g.state).toBe('DELIVERED');
  });

  it('an ambiguous revoke after the platform TTL revoked it falls back', () => {
    const g = run(tracked(), { type: 'STALE' }, ev('TTL_EXPIRATION_REVOKED'), { type: 'REVOKE_RESULT', result: 'AMBIGUOUS' });
    expect(g.state).toBe('FALLBACK');
  });
});

describe('lifecycle: events before track', () => {
  const early: GuardInput = { agentId: 'agent', messageId: 'm1', orphanAfterMs: 60_000 };

  it('a guard started by an event waits for track, then applies what it heard', () => {
    const g0 = run(early, ev('DELIVERED'));
    expect(g0.state).toBe('AWAITING_TRACK');
    expect(nextAction(g0, early, NOW)).toEqual({ kind: 'wait-track', ms: 60_000, until: '2026-11-22T10:01:00.000Z' });
    const g = step(g0, { type: 'TRACKED', message: message() }, NOW);
    expect(g.state).toBe('DELIVERED');
  });

  it('TTL revoked before track → FALLBACK at track', () => {
    const g = run(early, ev('TTL_EXPIRATION_REVOKED'), { type: 'TRACKED', message: message() });
    expect(g.state).toBe('FALLBACK');
  });

  it('never tracked → ORPHANED', () => {
    expect(run(early, ev('READ'), { type: 'ORPHAN_WINDOW_ELAPSED' }).state).toBe('ORPHANED');
  });

  it('tracking twice is one guard', () => {
    const g = run(tracked(), { type: 'TRACKED', message: message({ staleAt: '2027-01-01T00:00:00.000Z' }) });
    expect(g.staleAt).toBe(LATER);
    expect(g.timeline).toHaveLength(1);
  });
});

describe('lifecycle: the guard sends the message itself', () => {
  const sending = message({ send: { text: 'hello' } });

  it('SENDING → SENT → AWAITING_DELIVERY', () => {
    expect(run(tracked(sending), { type: 'SEND_RESULT', result: 'SENT' }).state).toBe('AWAITING_DELIVERY');
  });
  it('send 404 (no RCS on the phone) → FALLBACK at once', () => {
    expect(run(tracked(sending), { type: 'SEND_RESULT', result: 'NO_RCS' }).state).toBe('FALLBACK');
  });
  it('send refused (403) → SEND_ERROR', () => {
    expect(run(tracked(sending), { type: 'SEND_RESULT', result: 'CONFIG_ERROR' }).state).toBe('SEND_ERROR');
  });
  it('send outcome unknown → guarded as sent', () => {
    expect(run(tracked(sending), { type: 'SEND_RESULT', result: 'AMBIGUOUS' }).state).toBe('AWAITING_DELIVERY');
  });
});

describe('lifecycle: cancel and extend', () => {
  it('cancel while awaiting → CANCELLED; not once the revoke has started', () => {
    expect(run(tracked(), { type: 'CANCEL', reason: 'user logged in' }).state).toBe('CANCELLED');
    const revoking = run(tracked(), { type: 'STALE' });
    expect(canCancel(revoking)).toMatch(/cannot cancel a guard in state REVOKING/);
    expect(step(revoking, { type: 'CANCEL', reason: 'x' }, NOW).state).toBe('REVOKING');
  });

  it('extend moves the deadline; a past deadline is refused with a reason', () => {
    const g = run(tracked(), { type: 'EXTEND', staleAt: '2026-11-22T11:00:00.000Z' });
    expect(g.staleAt).toBe('2026-11-22T11:00:00.000Z');
    expect(nextAction(g, tracked(), NOW)).toEqual({ kind: 'wait-stale', until: '2026-11-22T11:00:00.000Z' });
    expect(canExtend(g, '2026-11-22T09:00:00.000Z', NOW)).toMatch(/not in the future/);
    expect(canExtend(g, 'soon', NOW)).toMatch(/not a valid date/);
  });
});

describe('contract: one guard per (agent, message)', () => {
  it('the webhook’s `agent@rbm.goog` and the backend’s bare agent id name the same guard', async () => {
    const { guardWorkflowId } = await import('../workflows/contract.ts');
    const { parseTrackInput } = await import('../client/track-input.ts');
    expect(guardWorkflowId('acme@rbm.goog', 'm1')).toBe(guardWorkflowId('acme', 'm1'));
    const tracked = parseTrackInput({ agentId: 'acme@rbm.goog', messageId: 'm1', phone: '+14155550100', staleIn: '1m' });
    expect(tracked.agentId).toBe('acme');
  });
});
