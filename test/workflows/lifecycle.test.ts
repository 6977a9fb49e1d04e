// The state machine without a server: every transition of design.md, the both/neither races,
// duplicates and out-of-order events.
import { describe, expect, it } from 'vitest';
import type { GuardEventType, GuardInput, TrackedMessage } from '../../workflows/contract.ts';
import { cancelRefusal, extendRefusal, initialGuard, nextAction, step, type Guard, type LifecycleEvent } from '../../workflows/lifecycle.ts';

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

  it('RBM’s sendTime is shown on the event’s timeline entry and decides nothing; a duplicate adds nothing', () => {
    const sendTime = '2026-11-22T09:59:58.123Z';
    const g = run(tracked(), { type: 'RBM_EVENT', eventType: 'DELIVERED', eventId: 'd1', sendTime }, { type: 'RBM_EVENT', eventType: 'DELIVERED', eventId: 'd1', sendTime: '2026-11-22T09:00:00Z' });
    expect(g.state).toBe('DELIVERED');
    expect(g.timeline).toHaveLength(2);
    expect(g.timeline[1]?.reason).toBe(`DELIVERED before the fallback (RBM sendTime ${sendTime})`);
    expect(g.timeline[0]?.reason).not.toContain('sendTime');
    const long = run(tracked(), { type: 'RBM_EVENT', eventType: 'DELIVERED', eventId: 'd2', sendTime: 'x'.repeat(41) });
    expect(long.timeline[1]?.reason).toBe('DELIVERED before the fallback');
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

  it('revoke 404 and no event within the grace: unknown, so an OTP falls back and a promotion ends UNRESOLVED (rules 4; before: DELIVERED_UNCONFIRMED)', () => {
    const otp = run(tracked(), { type: 'STALE' }, { type: 'REVOKE_RESULT', result: 'ALREADY_DELIVERED' }, { type: 'GRACE_ELAPSED' });
    expect(otp.state).toBe('FALLBACK');
    const promo = message({ trafficType: 'PROMOTION', policy: { ...message().policy, onUnknown: 'no-fallback' } });
    const g = run(tracked(promo), { type: 'STALE' }, { type: 'REVOKE_RESULT', result: 'ALREADY_DELIVERED' }, { type: 'GRACE_ELAPSED' });
    // A local revoke runs again after a worker crash: its 404 may answer our own landed DELETE.
    expect(g.state).toBe('UNRESOLVED');
    expect(states(g)).not.toContain('FALLBACK');
    const before = [{ type: 'STALE' }, { type: 'REVOKE_RESULT', result: 'ALREADY_DELIVERED' }, { type: 'GRACE_ELAPSED' }] as LifecycleEvent[];
    const rules3 = before.reduce((x, e) => step(x, e, NOW), initialGuard('wf', tracked(promo), NOW, 3));
    expect(rules3.state).toBe('DELIVERED_UNCONFIRMED');
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
    const g = run(tracked(), { type: 'STALE' }, { type: 'REVOKE_RESULT', result: 'REFUSED', detail: '403 PERMISSION_DENIED' });
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
    expect(run(tracked(sending), { type: 'SEND_RESULT', result: 'REFUSED' }).state).toBe('SEND_ERROR');
  });
  it('send outcome unknown → guarded as sent', () => {
    expect(run(tracked(sending), { type: 'SEND_RESULT', result: 'AMBIGUOUS' }).state).toBe('AWAITING_DELIVERY');
  });
});

describe('lifecycle: cancel and extend', () => {
  it('cancel while awaiting → CANCELLED; not once the revoke has started', () => {
    expect(run(tracked(), { type: 'CANCEL', reason: 'user logged in' }).state).toBe('CANCELLED');
    const revoking = run(tracked(), { type: 'STALE' });
    expect(cancelRefusal(revoking)).toMatch(/cannot cancel a guard in state REVOKING/);
    expect(step(revoking, { type: 'CANCEL', reason: 'x' }, NOW).state).toBe('REVOKING');
  });

  it('extend moves the deadline; a past deadline is refused with a reason', () => {
    const g = run(tracked(), { type: 'EXTEND', staleAt: '2026-11-22T11:00:00.000Z' });
    expect(g.staleAt).toBe('2026-11-22T11:00:00.000Z');
    expect(nextAction(g, tracked(), NOW)).toEqual({ kind: 'wait-stale', until: '2026-11-22T11:00:00.000Z' });
    expect(extendRefusal(g, '2026-11-22T09:00:00.000Z', NOW)).toMatch(/not in the future/);
    expect(extendRefusal(g, 'soon', NOW)).toMatch(/not a valid date/);
  });
});

describe('contract: one guard per (agent, message)', () => {
  it('the webhook’s `agent@rbm.goog` and the backend’s bare agent id name the same guard', async () => {
    const { guardWorkflowId } = await import('../../workflows/contract.ts');
    const { parseTrackInput } = await import('../../client/track-input.ts');
    expect(guardWorkflowId('acme@rbm.goog', 'm1')).toBe(guardWorkflowId('acme', 'm1'));
    const tracked = parseTrackInput({ agentId: 'acme@rbm.goog', messageId: 'm1', phone: '+14155550100', staleIn: '1m' });
    expect(tracked.agentId).toBe('acme');
  });
});

describe('lifecycle: a slow SMS provider (rules 3)', () => {
  const at = (ms: number) => new Date(Date.parse(NOW) + ms).toISOString();
  const otp = () => tracked(message({ policy: { graceMs: 1000, maxRevokeRounds: 2, revokeAttempts: 3, fallbackAttempts: 2, onUnknown: 'fallback', lingerMs: 5000 } }));
  const toFallback = (input: GuardInput, rules: 2 | 3 = 3) =>
    [{ type: 'STALE' }, { type: 'REVOKE_RESULT', result: 'REVOKED' }].reduce((g, e) => step(g, e as LifecycleEvent, NOW), initialGuard('wf', input, NOW, rules));
  const lost: LifecycleEvent = { type: 'FALLBACK_RESULT', result: 'RETRYABLE', maybeSent: true, startedAt: NOW, detail: 'timed out' };

  it('after an attempt that may have gone out, the next one waits until the provider has settled (its lookup must see the first SMS)', () => {
    const g3 = step(toFallback(otp()), lost, NOW);
    expect(nextAction(g3, otp(), NOW)).toEqual({ kind: 'wait-retry', until: at(15_000) });
    // Rules 2 (open guards from before) keep their 1 s backoff, as they ran.
    const g2 = step(toFallback(otp(), 2), lost, NOW);
    expect(nextAction(g2, otp(), NOW)).toEqual({ kind: 'wait-retry', until: at(1_000) });
    // An attempt that surely did not go out waits only the backoff.
    const notSent = step(toFallback(otp()), { type: 'FALLBACK_RESULT', result: 'RETRYABLE', maybeSent: false, startedAt: NOW }, NOW);
    expect(nextAction(notSent, otp(), NOW)).toEqual({ kind: 'wait-retry', until: at(1_000) });
  });

  it('a blind resend whose answer is lost too ends FALLBACK_MAYBE_TWICE, not FALLBACK_UNCONFIRMED ("0 or 1" would hide two SMS)', () => {
    let g = step(toFallback(otp()), lost, NOW); // attempt 1 lost
    g = step(g, { type: 'RETRY_DUE' }, at(15_000));
    g = step(g, { type: 'FALLBACK_RESULT', result: 'LOOKUP_FAILED', startedAt: at(15_000) }, at(16_000)); // attempt 2: lookup failed
    expect(g.state).toBe('FALLBACK');
    expect(g.sms.blind).toBe(true);
    expect(nextAction(g, otp(), at(16_000))).toEqual({ kind: 'fallback', lookupSince: null });
    const twice = step(g, { ...lost, startedAt: at(16_000) }, at(26_000)); // the blind resend times out too
    expect(twice.state).toBe('FALLBACK_MAYBE_TWICE');
    expect(twice.timeline.at(-1)?.reason).toMatch(/none, one or two SMS/);
    // Rules 2 recorded the same story as FALLBACK_UNCONFIRMED (kept for its open guards).
    let g2 = step(toFallback(otp(), 2), lost, NOW);
    g2 = step(step(g2, { type: 'RETRY_DUE' }, at(1_000)), { type: 'FALLBACK_RESULT', result: 'LOOKUP_FAILED', startedAt: at(1_000) }, at(2_000));
    expect(step(g2, { ...lost, startedAt: at(2_000) }, at(12_000)).state).toBe('FALLBACK_UNCONFIRMED');
  });

  it('a blind resend after an attempt that may have gone out waits for the provider to settle first', () => {
    const single = tracked(message({ policy: { graceMs: 1000, maxRevokeRounds: 2, revokeAttempts: 3, fallbackAttempts: 1, onUnknown: 'fallback', lingerMs: 5000 } }));
    const g = step(toFallback(single), lost, NOW);
    expect(g.sms.blind).toBe(true);
    expect(nextAction(g, single, NOW)).toEqual({ kind: 'wait-retry', until: at(15_000) });
  });

  it('two of ours found at the provider are two sent: FALLBACK_MAYBE_TWICE, never FALLBACK_SENT', () => {
    let g = step(toFallback(otp()), lost, NOW);
    g = step(g, { type: 'RETRY_DUE' }, at(15_000));
    const two = step(g, { type: 'FALLBACK_RESULT', result: 'FOUND', matches: 2, startedAt: at(15_000) }, at(16_000));
    expect(two.state).toBe('FALLBACK_MAYBE_TWICE');
    expect(two.timeline.at(-1)?.reason).toMatch(/found 2 .*two attempts both went out/);
    const one = step(g, { type: 'FALLBACK_RESULT', result: 'FOUND', matches: 1, startedAt: at(15_000) }, at(16_000));
    expect(one.state).toBe('FALLBACK_SENT');
  });

  it('extend keeps a whole revoke round before a platform TTL (rules 3); rules 2 allowed up to the TTL', () => {
    const ttl = '2026-11-22T11:00:00.000Z';
    const withTtl = tracked(message({ platformExpireAt: ttl }));
    const round = 3 * (30_000 + 20_000); // revokeAttempts × (attempt timeout + longest backoff)
    const justBefore = new Date(Date.parse(ttl) - 1000).toISOString();
    expect(extendRefusal(initialGuard('wf', withTtl, NOW, 3), justBefore, NOW)).toMatch(/less than one revoke round/);
    expect(extendRefusal(initialGuard('wf', withTtl, NOW, 3), new Date(Date.parse(ttl) - round).toISOString(), NOW)).toBeNull();
    expect(extendRefusal(initialGuard('wf', withTtl, NOW, 2), justBefore, NOW)).toBeNull();
  });

  it('rules 1 keeps the first TTL event it heard; later rules let a revoke overrule a failed revoke', () => {
    const both = (rules: 1 | 3) => [ev('TTL_EXPIRATION_REVOKE_FAILED', 'a'), ev('TTL_EXPIRATION_REVOKED', 'b')].reduce((g, e) => step(g, e, NOW), initialGuard('wf', tracked(), NOW, rules));
    expect(both(1).ttl).toBe('REVOKE_FAILED');
    expect(both(3).ttl).toBe('REVOKED');
  });
});

describe('lifecycle: answers that hide a landed revoke (rules 3)', () => {
  const at = (ms: number) => new Date(Date.parse(NOW) + ms).toISOString();
  it('a 4xx on a retry after a DELETE that may have landed is unknown (RECHECK → policy), not REVOKE_ERROR', () => {
    const g = [{ type: 'STALE' }, { type: 'REVOKE_RESULT', result: 'REFUSED', attempt: 2, detail: 'RBM: HTTP 403' }].reduce((x, e) => step(x, e as LifecycleEvent, NOW), initialGuard('wf', tracked(), NOW, 3));
    expect(g.state).toBe('RECHECK');
    expect(g.timeline.at(-1)?.reason).toMatch(/on attempt 2, after a DELETE that may have landed/);
    // The first attempt's 4xx is an operator's error, as before; rules 2 kept REVOKE_ERROR for a retry's too.
    const first = [{ type: 'STALE' }, { type: 'REVOKE_RESULT', result: 'REFUSED', attempt: 1 }].reduce((x, e) => step(x, e as LifecycleEvent, NOW), initialGuard('wf', tracked(), NOW, 3));
    expect(first.state).toBe('REVOKE_ERROR');
    const rules2 = [{ type: 'STALE' }, { type: 'REVOKE_RESULT', result: 'REFUSED', attempt: 2 }].reduce((x, e) => step(x, e as LifecycleEvent, NOW), initialGuard('wf', tracked(), NOW, 2));
    expect(rules2.state).toBe('REVOKE_ERROR');
  });

  it('lingerMs 0 still waits for the platform TTL\u2019s report (and a clock skew): a later TTL_EXPIRATION_REVOKED falls back', () => {
    const ttl = at(60_000);
    const m = message({ platformExpireAt: ttl, policy: { graceMs: 1000, maxRevokeRounds: 2, revokeAttempts: 3, fallbackAttempts: 3, onUnknown: 'fallback', lingerMs: 0 } });
    const g = [{ type: 'STALE' }, { type: 'REVOKE_RESULT', result: 'REFUSED', attempt: 1 }].reduce((x, e) => step(x, e as LifecycleEvent, NOW), initialGuard('wf', tracked(m), NOW, 3));
    expect(g.state).toBe('REVOKE_ERROR');
    expect(nextAction(g, tracked(m), NOW)).toEqual({ kind: 'linger', ms: 0, until: at(120_000) });
    expect(step(g, ev('TTL_EXPIRATION_REVOKED'), at(70_000)).state).toBe('FALLBACK');
    // Rules 2 closed at once: the TTL event was only logged.
    const g2 = [{ type: 'STALE' }, { type: 'REVOKE_RESULT', result: 'REFUSED', attempt: 1 }].reduce((x, e) => step(x, e as LifecycleEvent, NOW), initialGuard('wf', tracked(m), NOW, 2));
    expect(nextAction(g2, tracked(m), NOW)).toEqual({ kind: 'done' });
  });
});
