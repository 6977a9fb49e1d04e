// The guard's state machine as a pure function: (guard, event, now) → guard. Every decision the
// lifecycle makes lives here, so unit tests (and the exhaustive check) drive every transition —
// including the delivered-and-revoked races — without a server. workflows/guard.ts only waits, calls
// activities and feeds their results back in. docs/architecture.md has the race table.
//
// Four rule sets, each guard on the one its input names: `rules: 1` for guards started before the
// pessimistic rules existed, 2 for the pessimistic rules, 3 for those and a slow SMS provider, 4 (every
// new guard) for a revoke run in the workflow task, whose 404 proves nothing. Where they differ, `v1(g)`,
// `slowProviderRules(g)` and guard-state.ts's `why404ProvesNothing` say so.
import { ERROR_TYPES, GUARD_RULES, PROVIDER_SETTLE_MS, type GuardEventType, type GuardInput, type TrackedMessage } from './contract.ts';
import {
  awaitsTtlReport,
  cancelRefusal,
  extendRefusal,
  fallback,
  lingers,
  ORPHAN_AFTER_MS_DEFAULT,
  record,
  retryDelayMs,
  revoke,
  slowProviderRules,
  v1,
  why404ProvesNothing,
  type Guard,
  type RulesVersion,
} from './guard-state.ts';

export { cancelRefusal, extendRefusal, isPending, outcomeOf, statusOf, type Guard, type RulesVersion } from './guard-state.ts';

export type RevokeOutcome = 'REVOKED' | 'ALREADY_DELIVERED' | 'AMBIGUOUS' | 'REFUSED';
export type SendOutcome = 'SENT' | 'NO_RCS' | 'REFUSED' | 'AMBIGUOUS';
/**
 * One SMS attempt's end. ACCEPTED: this attempt sent it. FOUND: an earlier attempt's SMS, found by the
 * provider lookup. REFUSED: the provider refused it (nothing sent). RETRYABLE: failed; `maybeSent` if the
 * request may have reached the provider. LOOKUP_FAILED: whether an earlier attempt went out could not be
 * established. FAILED: rules 1 only — the SDK's retries were spent.
 */
export type FallbackOutcome = 'ACCEPTED' | 'FOUND' | 'REFUSED' | 'RETRYABLE' | 'LOOKUP_FAILED' | 'FAILED';

/**
 * What an activity's failure means, by its error type (contract.ts ERROR_TYPES): the one table. A
 * failure it does not name (a timeout, a crash, retries spent on 429/5xx) may have happened: AMBIGUOUS
 * for RBM, RETRYABLE with `maybeSent` for the SMS. A refusal is REFUSED throughout: RbmConfigError on
 * the wire, REVOKE_REFUSED / SEND_REFUSED in the timeline, REVOKE_ERROR / SEND_ERROR as the outcome.
 */
export const FAILURE_MEANS = {
  send: { [ERROR_TYPES.rbmConfig]: 'REFUSED', [ERROR_TYPES.rbmNoRcs]: 'NO_RCS' },
  revoke: { [ERROR_TYPES.rbmConfig]: 'REFUSED' },
  sms: { [ERROR_TYPES.fallbackPermanent]: 'REFUSED', [ERROR_TYPES.fallbackLookupFailed]: 'LOOKUP_FAILED', [ERROR_TYPES.fallbackRetryable]: 'RETRYABLE' },
} as const satisfies { send: Record<string, SendOutcome>; revoke: Record<string, RevokeOutcome>; sms: Record<string, FallbackOutcome> };

export function sendFailureMeans(type: string | undefined): SendOutcome {
  return (FAILURE_MEANS.send as Record<string, SendOutcome>)[type ?? ''] ?? 'AMBIGUOUS';
}
export function revokeFailureMeans(type: string | undefined): RevokeOutcome {
  return (FAILURE_MEANS.revoke as Record<string, RevokeOutcome>)[type ?? ''] ?? 'AMBIGUOUS';
}
export function smsFailureMeans(type: string | undefined): FallbackOutcome {
  return (FAILURE_MEANS.sms as Record<string, FallbackOutcome>)[type ?? ''] ?? 'RETRYABLE';
}

export type LifecycleEvent =
  | { type: 'TRACKED'; message: TrackedMessage }
  | { type: 'RBM_EVENT'; eventType: GuardEventType; eventId: string; sendTime?: string }
  | { type: 'SEND_RESULT'; result: SendOutcome; detail?: string }
  | { type: 'STALE' }
  | { type: 'REVOKE_RESULT'; result: RevokeOutcome; attempt?: number; detail?: string }
  | { type: 'GRACE_ELAPSED' }
  | {
      type: 'FALLBACK_RESULT';
      result: FallbackOutcome;
      maybeSent?: boolean;
      retryAfterMs?: number;
      startedAt?: string;
      detail?: string;
      /** FOUND: how many of our SMS the lookup found. */
      matches?: number;
    }
  | { type: 'RETRY_DUE' }
  | { type: 'CANCEL'; reason: string }
  | { type: 'EXTEND'; staleAt: string }
  | { type: 'ORPHAN_WINDOW_ELAPSED' };

/** What the workflow does next: wait (for an event or until a time) or run an activity. */
export type Action =
  | { kind: 'wait-track'; ms: number; until?: string }
  | { kind: 'send' }
  | { kind: 'wait-stale'; until: string }
  | { kind: 'revoke' }
  | { kind: 'wait-grace'; ms: number; until?: string }
  | { kind: 'fallback'; lookupSince: string | null }
  | { kind: 'wait-retry'; until: string }
  | { kind: 'linger'; ms: number; until?: string }
  | { kind: 'done' };

export function initialGuard(workflowId: string, input: GuardInput, now: string, rules: RulesVersion = GUARD_RULES): Guard {
  const guard: Guard = {
    rules,
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
    waitUntil: null,
    revokeMayHaveLanded: false,
    sendUncertain: false,
    doubt404: null,
    sms: { attempts: 0, maybeSentSince: null, retryAt: null, blind: false },
  };
  if (input.message) return step(guard, { type: 'TRACKED', message: input.message }, now);
  const g = record(guard, now, 'AWAITING_TRACK', 'STARTED_BY_EVENT', 'an RBM event arrived before the message was tracked');
  g.waitUntil = addMs(now, input.orphanAfterMs ?? ORPHAN_AFTER_MS_DEFAULT);
  return g;
}

export function nextAction(guard: Guard, input: GuardInput, now: string): Action {
  const policy = guard.message?.policy;
  // Rules 1 re-armed its windows in full after every change; rules 2 keeps each window's end fixed.
  const until = v1(guard) ? undefined : (guard.waitUntil ?? now);
  switch (guard.state) {
    case 'AWAITING_TRACK':
      return { kind: 'wait-track', ms: input.orphanAfterMs ?? ORPHAN_AFTER_MS_DEFAULT, until };
    case 'SENDING':
      return { kind: 'send' };
    case 'AWAITING_DELIVERY':
      return { kind: 'wait-stale', until: guard.staleAt ?? now };
    case 'REVOKING':
      return { kind: 'revoke' };
    case 'CONFIRMING_DELIVERY':
    case 'RECHECK':
      return { kind: 'wait-grace', ms: policy?.graceMs ?? 0, until };
    case 'FALLBACK':
      if (guard.sms.retryAt) return { kind: 'wait-retry', until: guard.sms.retryAt };
      return { kind: 'fallback', lookupSince: guard.sms.blind ? null : guard.sms.maybeSentSince };
    default:
      if (!policy || !lingers(guard) || (policy.lingerMs <= 0 && !awaitsTtlReport(guard, now))) return { kind: 'done' };
      return { kind: 'linger', ms: policy.lingerMs, until };
  }
}


export function step(guard: Guard, event: LifecycleEvent, now: string): Guard {
  const g: Guard = { ...guard };
  switch (event.type) {
    case 'TRACKED':
      return onTracked(g, event.message, now);
    case 'RBM_EVENT':
      return withRbmTime(onRbmEvent(g, event.eventType, event.eventId, now), guard.timeline.length, event.sendTime);
    case 'SEND_RESULT':
      return onSendResult(g, event.result, event.detail, now);
    case 'STALE':
      if (g.state !== 'AWAITING_DELIVERY') return g;
      return revoke(g, now, 'STALE', `staleAt ${g.staleAt} reached without DELIVERED`);
    case 'REVOKE_RESULT':
      return onRevokeResult(g, event.result, event.attempt ?? 1, event.detail, now);
    case 'GRACE_ELAPSED':
      return onGraceElapsed(g, now);
    case 'FALLBACK_RESULT':
      return onFallbackResult(g, event, now);
    case 'RETRY_DUE':
      if (g.state !== 'FALLBACK' || !g.sms.retryAt) return g;
      g.sms = { ...g.sms, retryAt: null };
      return g;
    case 'CANCEL':
      if (cancelRefusal(g)) return g;
      return record(g, now, 'CANCELLED', 'CANCEL', event.reason);
    case 'EXTEND':
      if (extendRefusal(g, event.staleAt, now)) return g;
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
  if (g.ttl === 'REVOKE_FAILED') return grace(record(g, now, 'RECHECK', 'TRACKED', 'tracked after a TTL_EXPIRATION_REVOKE_FAILED'), now);
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
      case 'FALLBACK':
        // Between two SMS attempts nothing is in flight: delivery wins and the pending send is dropped.
        if (!v1(g) && g.sms.retryAt) return smsStoppedByDelivery(g, now, type);
        return record(g, now, state, type, `${type} noted while an SMS attempt is in flight: decided when it ends`);
      case 'FALLBACK_SENT':
      case 'FALLBACK_MAYBE_TWICE':
      case 'FALLBACK_UNCONFIRMED':
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
        // Decided when the running step ends: delivery wins over its result.
        return record(g, now, state, type, `${type} noted while ${state}`);
      default:
        return record(g, now, state, type, `late ${type} after ${state}`);
    }
  }

  if (type === 'TTL_EXPIRATION_REVOKED') {
    // Rules 1 kept the first TTL event it heard; later rules let a revoke overrule a failed revoke.
    if (!g.ttl || (g.ttl === 'REVOKE_FAILED' && !v1(g))) g.ttl = 'REVOKED';
    if (g.delivered) return record(g, now, state, type, 'ignored: DELIVERED wins over a later expiry notice');
    if (v1(g)) {
      if (state === 'AWAITING_DELIVERY' || state === 'RECHECK') return fallback(g, now, type, 'the platform TTL revoked the message');
      return record(g, now, state, type, `noted while ${state}`);
    }
    // Proof the phone does not have it, in every state where no delivery was seen.
    switch (state) {
      case 'AWAITING_DELIVERY':
      case 'RECHECK':
      case 'CONFIRMING_DELIVERY':
      case 'UNRESOLVED':
      case 'DELIVERED_UNCONFIRMED':
      case 'REVOKE_ERROR':
        return fallback(g, now, type, `the platform TTL revoked the message (${state})`);
      default:
        // SENDING, REVOKING, AWAITING_TRACK: decided when the running step ends; FALLBACK already falls back.
        return record(g, now, state, type, `noted while ${state}: the platform TTL revoked the message`);
    }
  }

  // TTL_EXPIRATION_REVOKE_FAILED: delivery is not guaranteed either way.
  if (!g.ttl) g.ttl = 'REVOKE_FAILED';
  if (state === 'AWAITING_DELIVERY' && !g.delivered) {
    return grace(record(g, now, 'RECHECK', type, 'the platform could not revoke at its TTL: wait for DELIVERED, then revoke'), now);
  }
  return record(g, now, state, type, `noted while ${state}`);
}

function onSendResult(g: Guard, result: SendOutcome, detail: string | undefined, now: string): Guard {
  if (g.state !== 'SENDING') return g;
  // Delivery wins over the send's result: a failed retry of a create that had landed says nothing.
  if (g.delivered) return record(g, now, 'DELIVERED', result === 'SENT' ? 'SENT' : `SEND_${result}`, 'DELIVERED arrived while sending');
  if (!v1(g) && g.ttl === 'REVOKED' && result !== 'REFUSED') {
    return fallback(g, now, result === 'SENT' ? 'SENT' : `SEND_${result}`, 'the platform TTL revoked it while the guard was sending');
  }
  switch (result) {
    case 'SENT':
      return record(g, now, 'AWAITING_DELIVERY', 'SENT', `sent; guarding until ${g.staleAt}`);
    case 'AMBIGUOUS':
      // It may or may not exist on the platform: guard it as sent; a 404 at the deadline then proves nothing.
      g.sendUncertain = true;
      return record(g, now, 'AWAITING_DELIVERY', 'SEND_UNKNOWN', detail ?? 'send retries spent; guarding as if sent');
    case 'NO_RCS':
      return fallback(g, now, 'SEND_NOT_FOUND', detail ?? 'RBM answered 404: the phone cannot take RCS');
    case 'REFUSED':
      return record(g, now, 'SEND_ERROR', 'SEND_REFUSED', detail ?? 'RBM refused the send');
  }
}

function onRevokeResult(g: Guard, result: RevokeOutcome, attempt: number, detail: string | undefined, now: string): Guard {
  if (g.state !== 'REVOKING') return g;
  if (g.delivered) return record(g, now, 'DELIVERED', `REVOKE_${result}`, 'DELIVERED arrived while revoking: delivery wins');
  if (!v1(g) && g.ttl === 'REVOKED' && result !== 'REFUSED') {
    return fallback(g, now, `REVOKE_${result}`, 'the platform TTL had revoked the message');
  }
  switch (result) {
    case 'REVOKED':
      return fallback(g, now, 'REVOKED', 'revoke answered 200: removed from the phone’s queue');
    case 'ALREADY_DELIVERED': {
      if (v1(g)) return record(g, now, 'CONFIRMING_DELIVERY', 'REVOKE_404', 'revoke answered 404: already delivered; waiting for the DELIVERED event');
      // A 404 is proof of delivery only when nothing else explains it; either way wait for the DELIVERED.
      g.doubt404 = why404ProvesNothing(g, attempt, now);
      const reason = g.doubt404
        ? `revoke answered 404, which proves nothing here: ${g.doubt404}; waiting for a DELIVERED`
        : 'revoke answered 404: most likely delivered; waiting for the DELIVERED event';
      return grace(record(g, now, 'CONFIRMING_DELIVERY', 'REVOKE_404', reason), now);
    }
    case 'REFUSED':
      // Rules 3: a refusal after a DELETE that may have landed (a retry, or an earlier round without an
      // answer) hides whether the message was revoked: unknown, not an operator's error alone.
      if (slowProviderRules(g) && (attempt > 1 || g.revokeMayHaveLanded)) {
        g.revokeMayHaveLanded = true;
        const why = attempt > 1 ? `on attempt ${attempt}, after a DELETE that may have landed` : 'after an earlier round whose DELETE may have landed';
        return grace(record(g, now, 'RECHECK', 'REVOKE_REFUSED', `${detail ?? 'RBM refused the revoke'} ${why}: outcome unknown`), now);
      }
      return record(g, now, 'REVOKE_ERROR', 'REVOKE_REFUSED', detail ?? 'RBM refused the revoke (400/401/403)');
    case 'AMBIGUOUS':
      if (g.ttl === 'REVOKED') return fallback(g, now, 'REVOKE_UNKNOWN', 'revoke outcome unknown, but the platform TTL had revoked it');
      g.revokeMayHaveLanded = true;
      return grace(record(g, now, 'RECHECK', 'REVOKE_UNKNOWN', detail ?? 'revoke outcome unknown (timeouts or retries spent)'), now);
  }
}

function onGraceElapsed(g: Guard, now: string): Guard {
  const policy = g.message?.policy;
  if (g.state === 'CONFIRMING_DELIVERY') {
    if (v1(g) || !policy) return record(g, now, 'DELIVERED_UNCONFIRMED', 'GRACE_ELAPSED', 'revoke said delivered, but no DELIVERED event came');
    // No DELIVERED followed the 404: delivery is unknown, and the policy decides.
    if (policy.onUnknown === 'fallback' && g.message?.fallback) {
      return fallback(g, now, 'GRACE_ELAPSED', `404 but no DELIVERED within ${policy.graceMs} ms${g.doubt404 ? ` (${g.doubt404})` : ''}; policy: fall back`);
    }
    if (g.doubt404) return record(g, now, 'UNRESOLVED', 'GRACE_ELAPSED', `404 proves nothing (${g.doubt404}) and no DELIVERED came; policy: no fallback`);
    return record(g, now, 'DELIVERED_UNCONFIRMED', 'GRACE_ELAPSED', 'revoke said 404 (delivered), but no DELIVERED event came; policy: no fallback');
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

function onFallbackResult(g: Guard, e: Extract<LifecycleEvent, { type: 'FALLBACK_RESULT' }>, now: string): Guard {
  if (g.state !== 'FALLBACK' || g.sms.retryAt) return g;
  const detail = e.detail;
  if (v1(g) || e.result === 'FAILED') {
    if (e.result === 'ACCEPTED') {
      return g.delivered
        ? record(g, now, 'DOUBLE_DELIVERY', 'FALLBACK_ACCEPTED', 'SMS accepted, but DELIVERED arrived while it was being sent')
        : record(g, now, 'FALLBACK_SENT', 'FALLBACK_ACCEPTED', detail ?? 'the SMS provider accepted the fallback');
    }
    return g.delivered
      ? record(g, now, 'DELIVERED', 'FALLBACK_FAILED', 'SMS failed, but DELIVERED arrived meanwhile')
      : record(g, now, 'FALLBACK_FAILED', 'FALLBACK_FAILED', detail ?? 'the SMS provider refused the fallback');
  }

  const policy = g.message?.policy;
  const attempt = g.sms.attempts + 1;
  const sms = { ...g.sms, attempts: attempt };
  if (e.result === 'RETRYABLE' && e.maybeSent && !sms.maybeSentSince) sms.maybeSentSince = e.startedAt ?? now;
  g.sms = sms;
  const maybeSent = sms.maybeSentSince !== null || sms.blind;

  switch (e.result) {
    case 'ACCEPTED':
    case 'FOUND': {
      const how = e.result === 'FOUND' ? 'an earlier attempt’s SMS was found at the provider' : 'the SMS provider accepted the fallback';
      // Rules 3: two of ours at the provider (two slow attempts both completed) are two sent, and said so.
      if (slowProviderRules(g) && e.result === 'FOUND' && (e.matches ?? 1) >= 2) {
        const twice = `the lookup found ${e.matches} of this guard’s SMS: two attempts both went out`;
        if (g.delivered) return record(g, now, 'DOUBLE_DELIVERY', 'FALLBACK_FOUND', `${twice}, and DELIVERED arrived as well`);
        return record(g, now, 'FALLBACK_MAYBE_TWICE', 'FALLBACK_FOUND', twice);
      }
      if (g.delivered) return record(g, now, 'DOUBLE_DELIVERY', 'FALLBACK_ACCEPTED', `SMS accepted (${how}), but DELIVERED arrived while it was being sent`);
      if (sms.blind && e.result === 'ACCEPTED') {
        return record(g, now, 'FALLBACK_MAYBE_TWICE', 'FALLBACK_ACCEPTED', `${detail ?? how}; sent without knowing whether an earlier attempt went out (policy: resend)`);
      }
      return record(g, now, 'FALLBACK_SENT', e.result === 'FOUND' ? 'FALLBACK_FOUND' : 'FALLBACK_ACCEPTED', detail ?? how);
    }
    case 'REFUSED':
      if (g.delivered) return record(g, now, maybeSent ? 'DOUBLE_DELIVERY' : 'DELIVERED', 'FALLBACK_REFUSED', 'SMS refused, but DELIVERED arrived meanwhile');
      return maybeSent
        ? record(g, now, 'FALLBACK_UNCONFIRMED', 'FALLBACK_REFUSED', `${detail ?? 'refused'}; an earlier attempt may have gone out`)
        : record(g, now, 'FALLBACK_FAILED', 'FALLBACK_REFUSED', detail ?? 'the SMS provider refused the fallback');
    case 'RETRYABLE':
    case 'LOOKUP_FAILED': {
      const what = e.result === 'LOOKUP_FAILED' ? 'could not look up the earlier attempt' : `attempt failed${e.maybeSent ? ' (it may have gone out)' : ''}`;
      if (g.delivered) return smsStoppedByDelivery(g, now, 'DELIVERED');
      const attempts = policy?.fallbackAttempts ?? 1;
      // Rules 3: after an attempt that may have gone out, the provider may still be creating (and not yet
      // listing) its message: the next attempt, whose lookup must see it, waits until it has settled.
      const settle = slowProviderRules(g) && e.result === 'RETRYABLE' && e.maybeSent ? PROVIDER_SETTLE_MS : 0;
      if (attempt < attempts) {
        g.sms = { ...g.sms, retryAt: addMs(now, Math.max(settle, retryDelayMs(attempt, e.retryAfterMs))) };
        return record(g, now, 'FALLBACK', e.result === 'LOOKUP_FAILED' ? 'FALLBACK_LOOKUP_FAILED' : 'FALLBACK_RETRY', `SMS attempt ${attempt}: ${what}: ${detail ?? ''}; next at ${g.sms.retryAt}`);
      }
      if (!maybeSent) return record(g, now, 'FALLBACK_FAILED', 'FALLBACK_FAILED', `${attempts} SMS attempts spent, none sent: ${detail ?? ''}`);
      // Rules 3: the blind resend's own answer was lost too: it and an earlier attempt may both have gone out.
      if (slowProviderRules(g) && sms.blind && e.result === 'RETRYABLE' && e.maybeSent) {
        return record(g, now, 'FALLBACK_MAYBE_TWICE', 'FALLBACK_UNKNOWN', `SMS resend: ${what}; the earlier attempt may have gone out too: none, one or two SMS may have gone out`);
      }
      // Whether an earlier attempt went out cannot be established: the policy decides, and the outcome says so.
      if (policy?.onUnknown === 'fallback' && !sms.blind) {
        // Rules 3: the resend waits until the last attempt's request can no longer become a message.
        g.sms = { ...g.sms, blind: true, retryAt: settle ? addMs(now, settle) : null };
        return record(g, now, 'FALLBACK', 'FALLBACK_UNKNOWN', `SMS attempt ${attempt}: ${what}; whether one went out is unknown; policy: resend once${settle ? ` at ${g.sms.retryAt}` : ''}`);
      }
      return record(g, now, 'FALLBACK_UNCONFIRMED', 'FALLBACK_UNKNOWN', `SMS attempt ${attempt}: ${what}; an SMS may or may not have gone out; policy: do not resend`);
    }
  }
}

/** DELIVERED between SMS attempts: nothing more is sent. */
function smsStoppedByDelivery(g: Guard, now: string, event: string): Guard {
  g.sms = { ...g.sms, retryAt: null };
  if (g.sms.maybeSentSince || g.sms.blind) {
    return record(g, now, 'DOUBLE_DELIVERY', event, 'DELIVERED between SMS attempts, and an earlier attempt may have gone out: no further SMS');
  }
  return record(g, now, 'DELIVERED', event, 'DELIVERED between SMS attempts: the pending SMS is not sent');
}

/**
 * The timeline entry an RBM event added says when RBM says it happened (the phone's DELIVERED can reach
 * us minutes later): the reader sees both times. Decisions use arrival, never this clock.
 */
function withRbmTime(g: Guard, entriesBefore: number, sendTime: string | undefined): Guard {
  const entry = g.timeline[entriesBefore];
  if (!sendTime || !entry || sendTime.length > 40) return g;
  g.timeline = [...g.timeline.slice(0, entriesBefore), { ...entry, reason: `${entry.reason} (RBM sendTime ${sendTime})` }, ...g.timeline.slice(entriesBefore + 1)];
  return g;
}

/** Entering a grace window (RECHECK, CONFIRMING_DELIVERY): its end is fixed now, whatever arrives. */
function grace(g: Guard, now: string): Guard {
  g.waitUntil = addMs(now, g.message?.policy.graceMs ?? 0);
  return g;
}

function addMs(iso: string, ms: number): string {
  return new Date(Date.parse(iso) + ms).toISOString();
}
