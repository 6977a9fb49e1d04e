// The guard's state machine as a pure function: (guard, event, now) → guard. Every decision the
// lifecycle makes lives here, so unit tests can drive every transition — including the delivered-
// and-revoked races — without a server. workflows/guard.ts only waits, calls activities and feeds
// their results back in.
import {
  isOutcome,
  type GuardEventType,
  type GuardInput,
  type GuardState,
  type GuardStatus,
  type Outcome,
  type PendingState,
  type TimelineEntry,
  type TrackedMessage,
} from './contract.ts';

export interface Guard {
  workflowId: string;
  agentId: string;
  messageId: string;
  state: GuardState;
  message: TrackedMessage | null;
  staleAt: string | null;
  revokeRounds: number;
  /** A DELIVERED or READ event was seen: delivery wins over any later expiry notice. */
  delivered: boolean;
  /** The platform's own TTL revoke, as its server events reported it. */
  ttl: 'REVOKED' | 'REVOKE_FAILED' | null;
  seenEventIds: string[];
  timeline: TimelineEntry[];
}

export type RevokeOutcome = 'REVOKED' | 'ALREADY_DELIVERED' | 'AMBIGUOUS' | 'CONFIG_ERROR';
export type SendOutcome = 'SENT' | 'NO_RCS' | 'CONFIG_ERROR' | 'AMBIGUOUS';

export type LifecycleEvent =
  | { type: 'TRACKED'; message: TrackedMessage }
  | { type: 'RBM_EVENT'; eventType: GuardEventType; eventId: string }
  | { type: 'SEND_RESULT'; result: SendOutcome; detail?: string }
  | { type: 'STALE' }
  | { type: 'REVOKE_RESULT'; result: RevokeOutcome; detail?: string }
  | { type: 'GRACE_ELAPSED' }
  | { type: 'FALLBACK_RESULT'; result: 'ACCEPTED' | 'FAILED'; detail?: string }
  | { type: 'CANCEL'; reason: string }
  | { type: 'EXTEND'; staleAt: string }
  | { type: 'ORPHAN_WINDOW_ELAPSED' };

/** What the workflow does next in a state: wait (for an event or a timer) or run an activity. */
export type Action =
  | { kind: 'wait-track'; ms: number }
  | { kind: 'send' }
  | { kind: 'wait-stale'; until: string }
  | { kind: 'revoke' }
  | { kind: 'wait-grace'; ms: number }
  | { kind: 'fallback' }
  | { kind: 'linger'; ms: number }
  | { kind: 'done' };

const DEFAULT_ORPHAN_AFTER_MS = 24 * 60 * 60 * 1000;

export function initialGuard(workflowId: string, input: GuardInput, now: string): Guard {
  const guard: Guard = {
    workflowId,
    agentId: input.agentId,
    messageId: input.messageId,
    state: 'AWAITING_TRACK',
    message: null,
    staleAt: null,
    revokeRounds: 0,
    delivered: false,
    ttl: null,
    seenEventIds: [],
    timeline: [],
  };
  if (input.message) return step(guard, { type: 'TRACKED', message: input.message }, now);
  return record(guard, now, 'AWAITING_TRACK', 'STARTED_BY_EVENT', 'an RBM event arrived before the message was tracked');
}

export function nextAction(guard: Guard, input: GuardInput, now: string): Action {
  const policy = guard.message?.policy;
  switch (guard.state) {
    case 'AWAITING_TRACK':
      return { kind: 'wait-track', ms: input.orphanAfterMs ?? DEFAULT_ORPHAN_AFTER_MS };
    case 'SENDING':
      return { kind: 'send' };
    case 'AWAITING_DELIVERY':
      return { kind: 'wait-stale', until: guard.staleAt ?? now };
    case 'REVOKING':
      return { kind: 'revoke' };
    case 'CONFIRMING_DELIVERY':
    case 'RECHECK':
      return { kind: 'wait-grace', ms: policy?.graceMs ?? 0 };
    case 'FALLBACK':
      return { kind: 'fallback' };
    default:
      return LINGERING.has(guard.state) && policy && policy.lingerMs > 0 ? { kind: 'linger', ms: policy.lingerMs } : { kind: 'done' };
  }
}

/** Outcomes after which a DELIVERED can still arrive and change the story (double delivery, late confirmation). */
const LINGERING = new Set<GuardState>([
  'FALLBACK_SENT',
  'FALLBACK_FAILED',
  'REVOKED',
  'UNRESOLVED',
  'DELIVERED_UNCONFIRMED',
  'REVOKE_ERROR',
]);

export function canCancel(guard: Guard): string | null {
  const cancellable: GuardState[] = ['AWAITING_TRACK', 'AWAITING_DELIVERY', 'RECHECK', 'CONFIRMING_DELIVERY'];
  return cancellable.includes(guard.state)
    ? null
    : `cannot cancel a guard in state ${guard.state}: only a pending deadline can be cancelled`;
}

export function canExtend(guard: Guard, staleAt: string, now: string): string | null {
  if (guard.state !== 'AWAITING_DELIVERY') {
    return `cannot extend a guard in state ${guard.state}: only AWAITING_DELIVERY has a deadline to move`;
  }
  const t = Date.parse(staleAt);
  if (Number.isNaN(t)) return `staleAt: not a valid date: ${staleAt}`;
  if (t <= Date.parse(now)) return `staleAt: ${staleAt} is not in the future`;
  return null;
}

export function step(guard: Guard, event: LifecycleEvent, now: string): Guard {
  const g: Guard = { ...guard };
  switch (event.type) {
    case 'TRACKED':
      return onTracked(g, event.message, now);
    case 'RBM_EVENT':
      return onRbmEvent(g, event.eventType, event.eventId, now);
    case 'SEND_RESULT':
      return onSendResult(g, event.result, event.detail, now);
    case 'STALE':
      if (g.state !== 'AWAITING_DELIVERY') return g;
      return revoke(g, now, 'STALE', `staleAt ${g.staleAt} reached without DELIVERED`);
    case 'REVOKE_RESULT':
      return onRevokeResult(g, event.result, event.detail, now);
    case 'GRACE_ELAPSED':
      return onGraceElapsed(g, now);
    case 'FALLBACK_RESULT':
      if (g.state !== 'FALLBACK') return g;
      if (event.result === 'ACCEPTED') {
        return g.delivered
          ? record(g, now, 'DOUBLE_DELIVERY', 'FALLBACK_ACCEPTED', 'SMS accepted, but DELIVERED arrived while it was being sent')
          : record(g, now, 'FALLBACK_SENT', 'FALLBACK_ACCEPTED', event.detail ?? 'the SMS provider accepted the fallback');
      }
      return g.delivered
        ? record(g, now, 'DELIVERED', 'FALLBACK_FAILED', 'SMS failed, but DELIVERED arrived meanwhile')
        : record(g, now, 'FALLBACK_FAILED', 'FALLBACK_FAILED', event.detail ?? 'the SMS provider refused the fallback');
    case 'CANCEL':
      if (canCancel(g)) return g;
      return record(g, now, 'CANCELLED', 'CANCEL', event.reason);
    case 'EXTEND':
      if (canExtend(g, event.staleAt, now)) return g;
      g.staleAt = event.staleAt;
      return record(g, now, 'AWAITING_DELIVERY', 'EXTEND', `deadline moved to ${event.staleAt}`);
    case 'ORPHAN_WINDOW_ELAPSED':
      if (g.state !== 'AWAITING_TRACK') return g;
      return record(g, now, 'ORPHANED', 'ORPHAN_WINDOW_ELAPSED', 'RBM events arrived but the message was never tracked');
  }
}

function onTracked(g: Guard, message: TrackedMessage, now: string): Guard {
  if (g.state !== 'AWAITING_TRACK') return g; // tracking twice is the same guard
  g.message = message;
  g.staleAt = message.staleAt;
  if (g.delivered) return record(g, now, 'DELIVERED', 'TRACKED', 'tracked after its DELIVERED event had already arrived');
  if (g.ttl === 'REVOKED') return fallback(g, now, 'TRACKED', 'tracked after the platform TTL had already revoked it');
  if (g.ttl === 'REVOKE_FAILED') return record(g, now, 'RECHECK', 'TRACKED', 'tracked after a TTL_EXPIRATION_REVOKE_FAILED');
  if (message.send) return record(g, now, 'SENDING', 'TRACKED', 'the guard sends the RBM message itself');
  return record(g, now, 'AWAITING_DELIVERY', 'TRACKED', `guarding until ${message.staleAt}`);
}

function onRbmEvent(g: Guard, type: GuardEventType, eventId: string, now: string): Guard {
  if (g.seenEventIds.includes(eventId)) return g; // at-least-once delivery: one effect per event
  g.seenEventIds = [...g.seenEventIds, eventId];
  const state = g.state;

  if (type === 'DELIVERED' || type === 'READ') {
    // READ can arrive before DELIVERED; either proves the phone has the message.
    const already = g.delivered;
    g.delivered = true;
    if (already) return record(g, now, state, type, 'delivery already known');
    switch (state) {
      case 'AWAITING_DELIVERY':
      case 'RECHECK':
      case 'CONFIRMING_DELIVERY':
        return record(g, now, 'DELIVERED', type, `${type} before the fallback`);
      case 'FALLBACK_SENT':
        return record(g, now, 'DOUBLE_DELIVERY', type, `${type} after the SMS was accepted: the platform delivered a revoked message`);
      case 'FALLBACK_FAILED':
      case 'REVOKED':
      case 'UNRESOLVED':
      case 'DELIVERED_UNCONFIRMED':
      case 'REVOKE_ERROR':
        return record(g, now, 'DELIVERED', type, `late ${type} confirms delivery`);
      case 'AWAITING_TRACK':
      case 'SENDING':
      case 'REVOKING':
      case 'FALLBACK':
        // Decided when the running step ends: delivery wins over its result.
        return record(g, now, state, type, `${type} noted while ${state}`);
      default:
        return record(g, now, state, type, `late ${type} after ${state}`);
    }
  }

  if (type === 'TTL_EXPIRATION_REVOKED') {
    if (!g.ttl) g.ttl = 'REVOKED';
    if (g.delivered) return record(g, now, state, type, 'ignored: DELIVERED wins over a later expiry notice');
    if (state === 'AWAITING_DELIVERY' || state === 'RECHECK') return fallback(g, now, type, 'the platform TTL revoked the message');
    return record(g, now, state, type, `noted while ${state}`);
  }

  // TTL_EXPIRATION_REVOKE_FAILED: delivery is not guaranteed either way.
  if (!g.ttl) g.ttl = 'REVOKE_FAILED';
  if (state === 'AWAITING_DELIVERY' && !g.delivered) {
    return record(g, now, 'RECHECK', type, 'the platform could not revoke at its TTL: wait for DELIVERED, then revoke');
  }
  return record(g, now, state, type, `noted while ${state}`);
}

function onSendResult(g: Guard, result: SendOutcome, detail: string | undefined, now: string): Guard {
  if (g.state !== 'SENDING') return g;
  // Delivery wins over the send's result: a failed retry of a create that had landed says nothing.
  if (g.delivered) return record(g, now, 'DELIVERED', result === 'SENT' ? 'SENT' : `SEND_${result}`, 'DELIVERED arrived while sending');
  switch (result) {
    case 'SENT':
      return record(g, now, 'AWAITING_DELIVERY', 'SENT', `sent; guarding until ${g.staleAt}`);
    case 'AMBIGUOUS':
      // It may or may not exist on the platform: guard it as sent; the deadline revokes it if needed.
      return record(g, now, 'AWAITING_DELIVERY', 'SEND_UNKNOWN', detail ?? 'send retries spent; guarding as if sent');
    case 'NO_RCS':
      return fallback(g, now, 'SEND_NOT_FOUND', detail ?? 'RBM answered 404: the phone cannot take RCS');
    case 'CONFIG_ERROR':
      return record(g, now, 'SEND_ERROR', 'SEND_REFUSED', detail ?? 'RBM refused the send');
  }
}

function onRevokeResult(g: Guard, result: RevokeOutcome, detail: string | undefined, now: string): Guard {
  if (g.state !== 'REVOKING') return g;
  if (g.delivered) return record(g, now, 'DELIVERED', `REVOKE_${result}`, 'DELIVERED arrived while revoking: delivery wins');
  switch (result) {
    case 'REVOKED':
      return fallback(g, now, 'REVOKED', 'revoke answered 200: removed from the phone’s queue');
    case 'ALREADY_DELIVERED':
      return record(g, now, 'CONFIRMING_DELIVERY', 'REVOKE_404', 'revoke answered 404: already delivered; waiting for the DELIVERED event');
    case 'CONFIG_ERROR':
      return record(g, now, 'REVOKE_ERROR', 'REVOKE_REFUSED', detail ?? 'RBM refused the revoke (400/401/403)');
    case 'AMBIGUOUS':
      if (g.ttl === 'REVOKED') return fallback(g, now, 'REVOKE_UNKNOWN', 'revoke outcome unknown, but the platform TTL had revoked it');
      return record(g, now, 'RECHECK', 'REVOKE_UNKNOWN', detail ?? 'revoke outcome unknown (timeouts or retries spent)');
  }
}

function onGraceElapsed(g: Guard, now: string): Guard {
  const policy = g.message?.policy;
  if (g.state === 'CONFIRMING_DELIVERY') {
    return record(g, now, 'DELIVERED_UNCONFIRMED', 'GRACE_ELAPSED', 'revoke said delivered, but no DELIVERED event came');
  }
  if (g.state !== 'RECHECK' || !policy) return g;
  if (g.revokeRounds < policy.maxRevokeRounds) {
    return revoke(g, now, 'GRACE_ELAPSED', `no DELIVERED within ${policy.graceMs} ms: revoke again`);
  }
  if (policy.onUnknown === 'fallback' && g.message?.fallback) {
    return fallback(g, now, 'ROUNDS_SPENT', `${g.revokeRounds} revoke rounds spent, outcome unknown; policy: fall back anyway`);
  }
  return record(g, now, 'UNRESOLVED', 'ROUNDS_SPENT', `${g.revokeRounds} revoke rounds spent, outcome unknown; policy: no fallback`);
}

function revoke(g: Guard, now: string, event: string, reason: string): Guard {
  g.revokeRounds += 1;
  return record(g, now, 'REVOKING', event, `${reason} (round ${g.revokeRounds})`);
}

function fallback(g: Guard, now: string, event: string, reason: string): Guard {
  if (!g.message?.fallback) return record(g, now, 'REVOKED', event, `${reason}; no fallback configured`);
  return record(g, now, 'FALLBACK', event, reason);
}

function record(g: Guard, now: string, state: GuardState, event: string, reason: string): Guard {
  g.state = state;
  g.timeline = [...g.timeline, { at: now, state, event, reason }];
  return g;
}

export function outcomeOf(guard: Guard): Outcome | null {
  return isOutcome(guard.state) ? guard.state : null;
}

export function isPending(state: GuardState): state is PendingState {
  return !isOutcome(state);
}

export function statusOf(guard: Guard): GuardStatus {
  return {
    workflowId: guard.workflowId,
    agentId: guard.agentId,
    messageId: guard.messageId,
    state: guard.state,
    outcome: outcomeOf(guard),
    staleAt: guard.staleAt,
    revokeRounds: guard.revokeRounds,
    timeline: guard.timeline,
  };
}
