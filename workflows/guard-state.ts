// The guard's state and the small rules lifecycle.ts builds on: recording a transition, what a 404
// cannot prove, when a deadline may move, how long an SMS retry waits, and the status a query returns.
import {
  isOutcome,
  MAX_MESSAGE_LIFETIME_MS,
  MAX_RETRY_AFTER_MS,
  revokeRoundBudgetMs,
  type RulesVersion,
  type GuardState,
  type GuardStatus,
  type Outcome,
  type PendingState,
  type TimelineEntry,
  type TrackedMessage,
} from './contract.ts';

export type { RulesVersion };

export interface Guard {
  rules: RulesVersion;
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
  /** Rules 2: the fixed end of the current window (orphan, grace, linger), set on entering the state. */
  waitUntil: string | null;
  /** An earlier revoke round ended without an answer: its DELETE may have landed. */
  revokeMayHaveLanded: boolean;
  /** The guard's own send ended without an answer: the message may never have been created. */
  sendUncertain: boolean;
  /** Why the last 404 proves nothing (null: nothing else explains it). */
  doubt404: string | null;
  /** The SMS attempts (rules 2: the workflow drives them one at a time). */
  sms: {
    attempts: number;
    /** When the first attempt that may have gone out started: later attempts look it up first. */
    maybeSentSince: string | null;
    /** Waiting until then before the next attempt (nothing in flight). */
    retryAt: string | null;
    /** The policy resent without knowing whether an earlier attempt went out. */
    blind: boolean;
  };
}

export const ORPHAN_AFTER_MS_DEFAULT = 24 * 60 * 60 * 1000;
/** RBM's clocks and ours may disagree by this much when a platform TTL is compared with now. */
const CLOCK_SKEW_MS = 60_000;
const SMS_BACKOFF_MAX_MS = 60_000;

export const v1 = (g: Guard): boolean => g.rules === 1;
/** Rules 3 and later: a slow SMS provider's request may still become a message after we gave up. */
export const slowProviderRules = (g: Guard): boolean => g.rules >= 3;
/** Rules 4: the revoke is a local activity, run again from scratch when a worker crash retries its workflow task. */
export const localRevokeRules = (g: Guard): boolean => g.rules >= 4;

export function record(g: Guard, now: string, state: GuardState, event: string, reason: string): Guard {
  if (!v1(g) && state !== g.state) g.waitUntil = lingers({ ...g, state }) ? lingerEnd(g, now) : null;
  g.state = state;
  g.timeline = [...g.timeline, { at: now, state, event, reason }];
  return g;
}

/**
 * Outcomes after which a late event still changes the story, so the guard stays open a while. Rules 2
 * closes at once after an SMS: a DELIVERED after that is recorded by the webhook (a late-delivery record).
 */
export function lingers(g: Guard): boolean {
  const open: GuardState[] = v1(g)
    ? ['FALLBACK_SENT', 'FALLBACK_FAILED', 'REVOKED', 'UNRESOLVED', 'DELIVERED_UNCONFIRMED', 'REVOKE_ERROR']
    : ['UNRESOLVED', 'DELIVERED_UNCONFIRMED', 'REVOKE_ERROR'];
  return open.includes(g.state);
}

/**
 * lingerMs after the decision — or after the platform TTL, when that is later: its revoke may still be
 * reported (rules 3: a clock skew past the TTL, so even lingerMs 0 hears a TTL_EXPIRATION_REVOKED).
 */
function lingerEnd(g: Guard, now: string): string {
  return new Date(ttlHeardBy(g, now) + (g.message?.policy.lingerMs ?? 0)).toISOString();
}

/** When a platform TTL's revoke has surely been reported (now, when no TTL is set or it is long past). */
function ttlHeardBy(g: Guard, now: string): number {
  const ttl = g.message?.platformExpireAt ? Date.parse(g.message.platformExpireAt) + (slowProviderRules(g) ? CLOCK_SKEW_MS : 0) : NaN;
  return ttl > Date.parse(now) ? ttl : Date.parse(now);
}

/** Rules 3: a decided guard still waits for its platform TTL's report, whatever lingerMs says. */
export function awaitsTtlReport(g: Guard, now: string): boolean {
  return slowProviderRules(g) && ttlHeardBy(g, now) > Date.parse(now);
}

export function revoke(g: Guard, now: string, event: string, reason: string): Guard {
  g.revokeRounds += 1;
  return record(g, now, 'REVOKING', event, `${reason} (round ${g.revokeRounds})`);
}

export function fallback(g: Guard, now: string, event: string, reason: string): Guard {
  if (!g.message?.fallback) return record(g, now, 'REVOKED', event, `${reason}; no fallback configured`);
  return record(g, now, 'FALLBACK', event, reason);
}

/**
 * RBM answers 404 both for "already delivered" and for a message that is gone (revoked, expired, never
 * created). Returns what else could explain this one, or null when only delivery does.
 */
export function why404ProvesNothing(g: Guard, attempt: number, now: string): string | null {
  const reasons: string[] = [];
  if (attempt > 1) reasons.push(`an earlier DELETE of this round (attempt ${attempt - 1}) may have landed`);
  else if (localRevokeRules(g)) reasons.push('a local revoke runs again after a worker crash, so a DELETE of this round may have landed');
  if (g.revokeMayHaveLanded) reasons.push('an earlier revoke round may have landed');
  if (g.sendUncertain) reasons.push('the guard’s own send may never have landed');
  if (g.ttl) reasons.push('the platform reported its own TTL');
  const ttl = g.message?.platformExpireAt;
  if (ttl && Date.parse(now) >= Date.parse(ttl) - CLOCK_SKEW_MS) reasons.push(`the platform TTL (${ttl}) may have expired it`);
  return reasons.length ? reasons.join('; ') : null;
}

/** Why this guard cannot be cancelled now, or null when it can. */
export function cancelRefusal(guard: Guard): string | null {
  const cancellable: GuardState[] = ['AWAITING_TRACK', 'AWAITING_DELIVERY', 'RECHECK', 'CONFIRMING_DELIVERY'];
  return cancellable.includes(guard.state)
    ? null
    : `cannot cancel a guard in state ${guard.state}: only a pending deadline can be cancelled`;
}

/** Why this guard's deadline cannot move to staleAt now, or null when it can. */
export function extendRefusal(guard: Guard, staleAt: string, now: string): string | null {
  if (guard.state !== 'AWAITING_DELIVERY') {
    return `cannot extend a guard in state ${guard.state}: only AWAITING_DELIVERY has a deadline to move`;
  }
  const t = Date.parse(staleAt);
  if (Number.isNaN(t)) return `staleAt: not a valid date: ${staleAt}`;
  if (t <= Date.parse(now)) return `staleAt: ${staleAt} is not in the future`;
  const ttl = guard.message?.platformExpireAt;
  if (ttl && t >= Date.parse(ttl)) return `staleAt: ${staleAt} is not before the message's platform TTL ${ttl}: RBM revokes it then`;
  // Rules 3: the guard's own DELETE comes first, a whole revoke round before the platform's TTL.
  const round = guard.message ? revokeRoundBudgetMs(guard.message.policy) : 0;
  if (ttl && slowProviderRules(guard) && t > Date.parse(ttl) - round) {
    return `staleAt: ${staleAt} leaves less than one revoke round (${round / 1000} s) before the message's platform TTL ${ttl}: the guard's own revoke must come first`;
  }
  const sentAt = guard.message?.sentAt;
  if (sentAt && t - Date.parse(sentAt) > MAX_MESSAGE_LIFETIME_MS) {
    return `staleAt: ${staleAt} is more than 15 days after the send (${sentAt}), RBM's own maximum`;
  }
  return null;
}

/** Before SMS attempt n+1: exponential from 1 s, at most 60 s; a Retry-After (capped) when it says longer. */
export function retryDelayMs(attempt: number, retryAfterMs?: number): number {
  const backoff = Math.min(SMS_BACKOFF_MAX_MS, 1000 * 2 ** (attempt - 1));
  return Math.max(backoff, Math.min(MAX_RETRY_AFTER_MS, retryAfterMs ?? 0));
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
