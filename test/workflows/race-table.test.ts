// docs/architecture.md, "The race table": one deterministic test per row, through the pure
// step()/nextAction(). Rows whose timing matters also have a test on the dev server (named in the
// table). `sms` is what the provider really sent in the row's story; the outcome must account for it.
import { describe, expect, it } from 'vitest';
import type { GuardEventType, GuardInput, Outcome, TrackedMessage } from '../../workflows/contract.ts';
import { initialGuard, nextAction, step, type Guard, type LifecycleEvent } from '../../workflows/lifecycle.ts';

const NOW = '2026-11-22T10:00:00.000Z';
const AFTER_TTL = '2026-11-22T10:30:00.000Z';

function message(o: { promo?: boolean; ttl?: boolean; sends?: boolean } = {}): TrackedMessage {
  return {
    agentId: 'agent',
    messageId: 'm1',
    phone: '+14155550100',
    staleAt: '2026-11-22T10:10:00.000Z',
    sentAt: NOW,
    platformExpireAt: o.ttl ? '2026-11-22T10:20:00.000Z' : null,
    trafficType: o.promo ? 'PROMOTION' : 'AUTHENTICATION',
    fallback: { channel: 'sms', text: 'Your code is 123456' },
    send: o.sends ? { text: 'Your code is 123456' } : null,
    policy: { graceMs: 1000, maxRevokeRounds: 2, revokeAttempts: 3, fallbackAttempts: 3, onUnknown: o.promo ? 'no-fallback' : 'fallback', lingerMs: 5000 },
  };
}

let n = 0;
const ev = (eventType: GuardEventType): LifecycleEvent => ({ type: 'RBM_EVENT', eventType, eventId: `${eventType}-${++n}` });
const dup = (e: LifecycleEvent) => e; // the same eventId again
const STALE: LifecycleEvent = { type: 'STALE' };
const GRACE: LifecycleEvent = { type: 'GRACE_ELAPSED' };
const RETRY: LifecycleEvent = { type: 'RETRY_DUE' };
const revoke = (result: 'REVOKED' | 'ALREADY_DELIVERED' | 'AMBIGUOUS' | 'REFUSED', attempt = 1): LifecycleEvent => ({ type: 'REVOKE_RESULT', result, attempt });
const sms = (result: 'ACCEPTED' | 'FOUND' | 'REFUSED' | 'RETRYABLE' | 'LOOKUP_FAILED', maybeSent?: boolean): LifecycleEvent => ({
  type: 'FALLBACK_RESULT',
  result,
  maybeSent,
  startedAt: NOW,
});

function run(m: TrackedMessage | null, events: LifecycleEvent[], at = NOW): Guard {
  const input: GuardInput = m ? { agentId: 'agent', messageId: 'm1', message: m } : { agentId: 'agent', messageId: 'm1', orphanAfterMs: 1000 };
  return events.reduce((g, e) => step(g, e, at), initialGuard('wf', input, NOW));
}

interface Row {
  id: string;
  story: string;
  m?: TrackedMessage | null;
  events: LifecycleEvent[];
  at?: string;
  outcome: Outcome;
  sms: number;
}

const d1 = ev('DELIVERED');
const rows: Row[] = [
  // Delivery before the deadline
  { id: 'R1', story: 'delivered before the deadline', events: [ev('DELIVERED')], outcome: 'DELIVERED', sms: 0 },
  { id: 'R2', story: 'delivered, the event duplicated', events: [d1, dup(d1)], outcome: 'DELIVERED', sms: 0 },
  { id: 'R3', story: 'delivered, READ before DELIVERED', events: [ev('READ'), ev('DELIVERED')], outcome: 'DELIVERED', sms: 0 },
  { id: 'R4', story: 'delivered, the event before track', m: null, events: [ev('DELIVERED'), { type: 'TRACKED', message: message() }], outcome: 'DELIVERED', sms: 0 },
  { id: 'R5', story: 'delivered, the event lost; revoke 404; OTP', events: [STALE, revoke('ALREADY_DELIVERED'), GRACE, sms('ACCEPTED')], outcome: 'FALLBACK_SENT', sms: 1 },
  // Rules 4: the revoke is a local activity, run again after a worker crash, so no 404 proves delivery.
  { id: 'R6', story: 'delivered, the event lost; revoke 404; promotion', m: message({ promo: true }), events: [STALE, revoke('ALREADY_DELIVERED'), GRACE], outcome: 'UNRESOLVED', sms: 0 },
  { id: 'R7', story: 'delivered, the event later than the grace (the guard closed: the webhook records it)', events: [STALE, revoke('ALREADY_DELIVERED'), GRACE, sms('ACCEPTED')], outcome: 'FALLBACK_SENT', sms: 1 },
  // Delivery during the revoke
  { id: 'R8', story: 'delivered during the revoke: 404, then DELIVERED', events: [STALE, revoke('ALREADY_DELIVERED'), ev('DELIVERED')], outcome: 'DELIVERED', sms: 0 },
  { id: 'R9', story: 'DELIVERED arrives while the DELETE is in flight, which answers 200', events: [STALE, ev('DELIVERED'), revoke('REVOKED')], outcome: 'DELIVERED', sms: 0 },
  { id: 'R10', story: 'delivered during a hung revoke: RECHECK, then DELIVERED', events: [STALE, revoke('AMBIGUOUS'), ev('DELIVERED')], outcome: 'DELIVERED', sms: 0 },
  // Never delivered
  { id: 'R11', story: 'revoke 200', events: [STALE, revoke('REVOKED'), sms('ACCEPTED')], outcome: 'FALLBACK_SENT', sms: 1 },
  { id: 'R12', story: 'revoke 5xx, then 200', events: [STALE, revoke('REVOKED', 2), sms('ACCEPTED')], outcome: 'FALLBACK_SENT', sms: 1 },
  { id: 'R13', story: 'revoke 404 after a lost 200 (OTP)', events: [STALE, revoke('ALREADY_DELIVERED', 2), GRACE, sms('ACCEPTED')], outcome: 'FALLBACK_SENT', sms: 1 },
  { id: 'R14', story: 'revoke 404 after a lost 200 (promotion)', m: message({ promo: true }), events: [STALE, revoke('ALREADY_DELIVERED', 2), GRACE], outcome: 'UNRESOLVED', sms: 0 },
  // A worker crash after the local revoke's DELETE landed: the task runs it again (attempt 1) and gets 404.
  { id: 'R43', story: 'the local revoke landed, the worker crashed, the rerun got 404 (OTP)', events: [STALE, revoke('ALREADY_DELIVERED', 1), GRACE, sms('ACCEPTED')], outcome: 'FALLBACK_SENT', sms: 1 },
  { id: 'R15', story: 'revoke hangs, second round 200', events: [STALE, revoke('AMBIGUOUS'), GRACE, revoke('REVOKED'), sms('ACCEPTED')], outcome: 'FALLBACK_SENT', sms: 1 },
  { id: 'R16', story: 'revoke landed, every answer lost; second round 404 (gone)', events: [STALE, revoke('AMBIGUOUS'), GRACE, revoke('ALREADY_DELIVERED'), GRACE, sms('ACCEPTED')], outcome: 'FALLBACK_SENT', sms: 1 },
  { id: 'R17', story: 'revoke hangs every round (OTP)', events: [STALE, revoke('AMBIGUOUS'), GRACE, revoke('AMBIGUOUS'), GRACE, sms('ACCEPTED')], outcome: 'FALLBACK_SENT', sms: 1 },
  { id: 'R18', story: 'revoke hangs every round (promotion)', m: message({ promo: true }), events: [STALE, revoke('AMBIGUOUS'), GRACE, revoke('AMBIGUOUS'), GRACE], outcome: 'UNRESOLVED', sms: 0 },
  { id: 'R19', story: 'revoke refused (403)', events: [STALE, revoke('REFUSED')], outcome: 'REVOKE_ERROR', sms: 0 },
  // The platform's own TTL
  { id: 'R20', story: 'platform TTL revokes before the deadline', m: message({ ttl: true }), events: [ev('TTL_EXPIRATION_REVOKED'), sms('ACCEPTED')], outcome: 'FALLBACK_SENT', sms: 1 },
  { id: 'R21', story: 'TTL revokes while our DELETE is in flight (404)', m: message({ ttl: true }), events: [STALE, ev('TTL_EXPIRATION_REVOKED'), revoke('ALREADY_DELIVERED'), sms('ACCEPTED')], outcome: 'FALLBACK_SENT', sms: 1 },
  { id: 'R22', story: 'TTL revokes, 404, its event in CONFIRMING_DELIVERY', m: message({ ttl: true }), events: [STALE, revoke('ALREADY_DELIVERED'), ev('TTL_EXPIRATION_REVOKED'), sms('ACCEPTED')], outcome: 'FALLBACK_SENT', sms: 1 },
  { id: 'R23', story: 'TTL passed, its event lost, 404 (promotion): the TTL explains it', m: message({ ttl: true, promo: true }), at: AFTER_TTL, events: [STALE, revoke('ALREADY_DELIVERED'), GRACE], outcome: 'UNRESOLVED', sms: 0 },
  { id: 'R24', story: 'TTL revoke reported after UNRESOLVED: reopens for the fallback', m: message({ ttl: true, promo: true }), events: [STALE, revoke('AMBIGUOUS'), GRACE, revoke('AMBIGUOUS'), GRACE, ev('TTL_EXPIRATION_REVOKED'), sms('ACCEPTED')], outcome: 'FALLBACK_SENT', sms: 1 },
  { id: 'R25', story: 'TTL_EXPIRATION_REVOKE_FAILED, then DELIVERED', m: message({ ttl: true }), events: [ev('TTL_EXPIRATION_REVOKE_FAILED'), ev('DELIVERED')], outcome: 'DELIVERED', sms: 0 },
  { id: 'R26', story: 'DELIVERED, then a late TTL_EXPIRATION_REVOKED', m: message({ ttl: true }), events: [ev('DELIVERED'), ev('TTL_EXPIRATION_REVOKED')], outcome: 'DELIVERED', sms: 0 },
  // The SMS leg
  { id: 'R27', story: 'DELIVERED while the SMS is in flight, SMS accepted', events: [STALE, revoke('REVOKED'), ev('DELIVERED'), sms('ACCEPTED')], outcome: 'DOUBLE_DELIVERY', sms: 1 },
  { id: 'R28', story: 'DELIVERED between SMS attempts (nothing in flight)', events: [STALE, revoke('REVOKED'), sms('RETRYABLE', false), ev('DELIVERED')], outcome: 'DELIVERED', sms: 0 },
  { id: 'R29', story: 'Twilio: answer lost, the SMS went out; lookup finds it', events: [STALE, revoke('REVOKED'), sms('RETRYABLE', true), RETRY, sms('FOUND')], outcome: 'FALLBACK_SENT', sms: 1 },
  { id: 'R30', story: 'Twilio: answer lost, nothing went out; lookup finds none, sent once', events: [STALE, revoke('REVOKED'), sms('RETRYABLE', true), RETRY, sms('ACCEPTED')], outcome: 'FALLBACK_SENT', sms: 1 },
  { id: 'R31', story: 'Twilio: answer lost, lookup impossible (OTP): resent, says so', events: [STALE, revoke('REVOKED'), sms('RETRYABLE', true), RETRY, sms('LOOKUP_FAILED'), RETRY, sms('LOOKUP_FAILED'), sms('ACCEPTED')], outcome: 'FALLBACK_MAYBE_TWICE', sms: 2 },
  { id: 'R32', story: 'Twilio: answer lost, lookup impossible (promotion): not resent, says so', m: message({ promo: true }), events: [STALE, revoke('REVOKED'), sms('RETRYABLE', true), RETRY, sms('LOOKUP_FAILED'), RETRY, sms('LOOKUP_FAILED')], outcome: 'FALLBACK_UNCONFIRMED', sms: 1 },
  { id: 'R33', story: 'SMS refused (400)', events: [STALE, revoke('REVOKED'), sms('REFUSED')], outcome: 'FALLBACK_FAILED', sms: 0 },
  { id: 'R34', story: 'SMS answer lost, then refused', events: [STALE, revoke('REVOKED'), sms('RETRYABLE', true), RETRY, sms('REFUSED')], outcome: 'FALLBACK_UNCONFIRMED', sms: 1 },
  { id: 'R35', story: 'SMS provider down past the attempts', events: [STALE, revoke('REVOKED'), sms('RETRYABLE', false), RETRY, sms('RETRYABLE', false), RETRY, sms('RETRYABLE', false)], outcome: 'FALLBACK_FAILED', sms: 0 },
  // The guard sends the message itself
  { id: 'R36', story: 'guard sends; create never landed; 404 at the deadline', m: message({ sends: true }), events: [{ type: 'SEND_RESULT', result: 'AMBIGUOUS' }, STALE, revoke('ALREADY_DELIVERED'), GRACE, sms('ACCEPTED')], outcome: 'FALLBACK_SENT', sms: 1 },
  { id: 'R37', story: 'guard sends; no RCS on the phone (404 at create)', m: message({ sends: true }), events: [{ type: 'SEND_RESULT', result: 'NO_RCS' }, sms('ACCEPTED')], outcome: 'FALLBACK_SENT', sms: 1 },
  // A provider slower than the client (rules 3)
  { id: 'R40', story: 'Twilio slower than the client: its SMS appears after we gave up; found once it settled', events: [STALE, revoke('REVOKED'), sms('RETRYABLE', true), RETRY, { type: 'FALLBACK_RESULT', result: 'FOUND', matches: 1, startedAt: NOW }], outcome: 'FALLBACK_SENT', sms: 1 },
  { id: 'R41', story: 'two slow attempts both became messages: the lookup finds two', events: [STALE, revoke('REVOKED'), sms('RETRYABLE', true), RETRY, { type: 'FALLBACK_RESULT', result: 'FOUND', matches: 2, startedAt: NOW }], outcome: 'FALLBACK_MAYBE_TWICE', sms: 2 },
  { id: 'R42', story: 'answer lost, lookup impossible (OTP), the resend\u2019s answer lost too: says two may have gone out', events: [STALE, revoke('REVOKED'), sms('RETRYABLE', true), RETRY, sms('LOOKUP_FAILED'), RETRY, sms('LOOKUP_FAILED'), sms('RETRYABLE', true)], outcome: 'FALLBACK_MAYBE_TWICE', sms: 2 },
  // The backend
  { id: 'R38', story: 'events for a message never tracked', m: null, events: [ev('DELIVERED'), { type: 'ORPHAN_WINDOW_ELAPSED' }], outcome: 'ORPHANED', sms: 0 },
  { id: 'R39', story: 'cancelled while waiting', events: [{ type: 'CANCEL', reason: 'logged in' }], outcome: 'CANCELLED', sms: 0 },
];

describe('the race table (docs/architecture.md)', () => {
  for (const row of rows) {
    it(`${row.id}: ${row.story} → ${row.outcome}, ${row.sms} SMS`, () => {
      const g = run(row.m === undefined ? message() : row.m, row.events, row.at);
      expect(g.state).toBe(row.outcome);
      const input: GuardInput = { agentId: 'agent', messageId: 'm1', message: g.message ?? undefined };
      expect(['done', 'linger']).toContain(nextAction(g, input, row.at ?? NOW).kind);
    });
  }
  it('has 43 rows, one per line of the table', () => expect(rows).toHaveLength(43));
});
