// The chaos run's judge, as a pure module: every guard's record against the simulator's ground
// truth and the SMS sink's record of sends. No I/O, no clocks: the runner collects, this decides.
//
// What each side knows
// --------------------
// Truth (the simulator, per message):
//   D  delivered      — the phone took the message (`deliveredAt`).
//   R  revoked        — a revoke took effect on the platform (`revokedAt`): by our API call, answered
//                       or not (a lost response or a hang still revokes), or by the platform's TTL.
//                       The simulator never does both D and R for one message.
//   P  platform-200   — some revoke call was answered 200 (`revokeAnswers`). With D this is the race
//                       the issue names: the revoke landed as the phone took the message, the platform
//                       said "revoked" and the phone has it anyway (rbm-protocol.md: "don't rely on
//                       200 alone").
//   news              — the DELIVERED/READ pushes for the message, each with the moment the webhook
//                       acknowledged it (answered 200). The webhook answers 200 only once Temporal has
//                       the signal (or the guard was already closed: a late event).
// Sink:  sms          — distinct accepted sends to the message's own phone number (not only distinct
//                       idempotency keys: a second key for the same message would count too).
// Guard: outcome, close time, and its timeline (one entry per transition; one entry per distinct
//        RBM eventId it heard, whatever the entry's state).
//
// Policy (workflows/lifecycle.ts) the invariants follow
// -----------------------------------------------------
// - DELIVERED/READ at any point before the fallback starts wins: no SMS.
// - A revoke answered 200 is believed: the guard falls back.
// - Revoke rounds spent with the outcome unknown: onUnknown 'fallback' (OTP, transactions) sends the
//   SMS anyway, accepting a possible double; 'no-fallback' (promotions) ends UNRESOLVED with no SMS.
// - A DELIVERED heard after the fallback started makes the outcome DOUBLE_DELIVERY; heard after any
//   other decision (404 unconfirmed, unresolved, revoked without fallback) makes it DELIVERED.
// - The guard stays open lingerMs after its decision to hear such news; after that, news is late.
//
// "Unavoidable" double delivery, precisely
// ----------------------------------------
// A message is a double delivery when D and sms ≥ 1. It is unavoidable — the guard acted on all it
// could know — when both hold:
//   (a) the SMS had a sanctioned cause: P (a revoke was answered 200 and the phone got the message
//       anyway), or the guard fell back because its revoke rounds were spent with the outcome unknown
//       and its policy says to fall back (timeline: FALLBACK entered on ROUNDS_SPENT); and
//   (b) no DELIVERED/READ for it was acknowledged by the webhook before the guard entered FALLBACK
//       (the decision's workflow task started at the FALLBACK entry's time; a signal Temporal had
//       accepted before then would have been part of that task), and the timeline shows no delivery
//       news before its FALLBACK entry.
// Anything else with D and an SMS is a violation: (a) fails → invariant 2 (delivered first, SMS
// anyway); (b) fails → invariant 4 (the guard had the news and still sent).
// An unavoidable double is *recorded* as DOUBLE_DELIVERY when the guard heard the news (the timeline
// has a DELIVERED/READ entry, which invariant 5 guarantees for news acknowledged before it closed).
// When the news came only after it closed, or never (the 1 % "no event" fault), the guard cannot
// know: FALLBACK_SENT is then the only possible record, and it is counted apart ("unheard double").
//
// Allowed outcomes for each truth (sms is the count at the sink)
// --------------------------------------------------------------
//   D, guard heard the news     sms 0: DELIVERED.   sms 1: DOUBLE_DELIVERY, if unavoidable.
//   D, guard never heard it     sms 0: DELIVERED_UNCONFIRMED (revoke said 404), UNRESOLVED (policy
//                               no-fallback), REVOKED (no fallback configured, revoke said 200).
//                               sms 1: FALLBACK_SENT, if unavoidable (an unheard double).
//   R (never delivered)         with a fallback: sms 1 and FALLBACK_SENT; or sms 0 and UNRESOLVED when
//                               the policy is no-fallback and the guard never learned of the revoke
//                               (every answer it got was ambiguous); or FALLBACK_FAILED with sms 0 when
//                               the SMS provider was down past the budget (the FALLBACK_FAILED check).
//                               Without a fallback: sms 0, REVOKED (or UNRESOLVED as above).
//   neither D nor R             policy fallback and a fallback: sms 1, FALLBACK_SENT.
//                               otherwise: sms 0, UNRESOLVED.
//   any                         never more than one SMS; CANCELLED, ORPHANED, REVOKE_ERROR and
//                               SEND_ERROR cannot happen in this run.
import type { Outcome, OnUnknown, TimelineEntry } from '../../workflows/contract.ts';
import type { MessageTruth, PushRecord } from '../sim/rbm-simulator.ts';

export const INVARIANTS = {
  1: 'every message reached a terminal outcome, within its deadline plus the bound, that agrees with the truth',
  2: 'a message delivered before any successful revoke got no SMS',
  3: 'a message not delivered got exactly one SMS (none: no fallback, or its policy withheld it)',
  4: 'a double delivery is recorded as one, and only where the truth says it was unavoidable',
  5: 'nothing the webhook answered 200 to was lost',
} as const;
export type InvariantId = keyof typeof INVARIANTS;

export interface CheckedMessage {
  messageId: string;
  workflowId: string;
  phone: string;
  hasFallback: boolean;
  onUnknown: OnUnknown;
  /** Epoch ms. */
  staleAt: number;
  /** track() was accepted (after retries); when not, why. */
  tracked: boolean;
  trackError?: string;
  /** The SMS provider was down past the retry budget for this one: FALLBACK_FAILED is expected. */
  expectFallbackFailed?: boolean;
}

export interface GuardRecord {
  workflowId: string;
  /** Temporal's execution status: COMPLETED, RUNNING, FAILED, TERMINATED, … */
  executionStatus: string;
  /** The guard's state: its outcome once closed, else the pending state visibility shows. */
  state: string | null;
  outcome: Outcome | null;
  /** Epoch ms; null while open. */
  closeTime: number | null;
  /** From the guard's result; empty while open. */
  timeline: TimelineEntry[];
}

export interface CheckInput {
  messages: CheckedMessage[];
  truth: (messageId: string) => MessageTruth | undefined;
  smsTo: (phone: string) => number;
  guard: (workflowId: string) => GuardRecord | undefined;
  /** How long after its deadline a guard may still be open (policy budget + crash allowance). */
  boundMs: number;
}

export interface Violation {
  invariant: InvariantId;
  messageId: string;
  workflowId: string;
  detail: string;
}

export type TruthClass = 'delivered' | 'delivered-after-revoke-200' | 'revoked' | 'neither' | 'unknown';

export interface CheckResult {
  checked: number;
  violations: Violation[];
  outcomes: Record<string, number>;
  truthClasses: Record<TruthClass, number>;
  doubles: {
    /** DOUBLE_DELIVERY outcomes (all unavoidable, or they are violations). */
    recorded: number;
    /** Unavoidable doubles the guard could not hear: news after it closed, or none at all. */
    unheard: number;
    /** …of which the cause was a revoke answered 200 / the policy's fallback on unknown. */
    byCause: { 'revoke-200': number; 'policy-on-unknown': number };
  };
  /** Acknowledged guard events that reached the guard only after it closed (answered 200 as late). */
  lateEvents: number;
  /** Acknowledged guard events, all messages. */
  ackedEvents: number;
  /** Pushes the simulator gave up on (never acknowledged): must be 0 for invariant 5 to mean anything. */
  abandonedPushes: number;
  /** Close time minus deadline, ms, for closed guards. */
  closeAfterStaleMs: { max: number; p50: number; p99: number };
}

const DELIVERY_NEWS = new Set(['DELIVERED', 'READ']);
const GUARD_EVENTS = ['DELIVERED', 'READ', 'TTL_EXPIRATION_REVOKED', 'TTL_EXPIRATION_REVOKE_FAILED'] as const;
const IMPOSSIBLE_HERE = new Set<string>(['CANCELLED', 'ORPHANED', 'REVOKE_ERROR', 'SEND_ERROR']);

/** When the webhook acknowledged a push (its last attempt's answer), or undefined. */
export function ackTime(push: PushRecord): number | undefined {
  if (!push.acknowledged) return undefined;
  return push.attempts[push.attempts.length - 1]?.at;
}

function eventOf(push: PushRecord): { type: string; id: string } | undefined {
  const e = push.event as { eventType?: unknown; eventId?: unknown };
  return typeof e.eventType === 'string' && typeof e.eventId === 'string' ? { type: e.eventType, id: e.eventId } : undefined;
}

export function classify(truth: MessageTruth | undefined): TruthClass {
  if (!truth) return 'unknown';
  if (truth.deliveredAt !== undefined) return truth.revokeAnswers.includes(200) ? 'delivered-after-revoke-200' : 'delivered';
  return truth.revokedAt !== undefined ? 'revoked' : 'neither';
}

export function check(input: CheckInput): CheckResult {
  const violations: Violation[] = [];
  const outcomes: Record<string, number> = {};
  const truthClasses: Record<TruthClass, number> = { delivered: 0, 'delivered-after-revoke-200': 0, revoked: 0, neither: 0, unknown: 0 };
  const doubles: CheckResult['doubles'] = { recorded: 0, unheard: 0, byCause: { 'revoke-200': 0, 'policy-on-unknown': 0 } };
  let lateEvents = 0;
  let ackedEvents = 0;
  let abandonedPushes = 0;
  const closeDelays: number[] = [];

  for (const m of input.messages) {
    const found: Violation[] = [];
    const violate = (invariant: InvariantId, detail: string) => found.push({ invariant, messageId: m.messageId, workflowId: m.workflowId, detail });
    const g = input.guard(m.workflowId);
    const truth = input.truth(m.messageId);
    const sms = input.smsTo(m.phone);
    const cls = classify(truth);
    truthClasses[cls] += 1;
    outcomes[g?.outcome ?? (g ? `open: ${g.state ?? '?'}` : 'no guard')] = (outcomes[g?.outcome ?? (g ? `open: ${g.state ?? '?'}` : 'no guard')] ?? 0) + 1;

    // ---- invariant 1: tracked, closed, completed, in time ----
    if (!m.tracked) {
      violate(1, `never tracked: ${m.trackError ?? 'unknown reason'}`);
      violations.push(...found);
      continue;
    }
    if (!g) {
      violate(1, 'tracked, but no guard exists');
      violations.push(...found);
      continue;
    }
    if (g.closeTime === null || g.executionStatus === 'RUNNING') {
      violate(1, `still open in ${g.state ?? 'an unknown state'} past its deadline plus ${Math.round(input.boundMs / 1000)} s`);
      violations.push(...found);
      continue;
    }
    const closeAt = g.closeTime;
    closeDelays.push(closeAt - m.staleAt);
    if (g.executionStatus !== 'COMPLETED') violate(1, `the workflow ended ${g.executionStatus}, not COMPLETED`);
    if (!g.outcome) violate(1, `closed without an outcome (state ${g.state ?? '?'})`);
    if (closeAt - m.staleAt > input.boundMs) {
      violate(1, `closed ${((closeAt - m.staleAt) / 1000).toFixed(1)} s after its deadline (bound ${Math.round(input.boundMs / 1000)} s)`);
    }
    if (g.outcome && IMPOSSIBLE_HERE.has(g.outcome)) violate(1, `outcome ${g.outcome} is impossible in this run`);
    if (!truth) {
      violate(1, 'the platform never saw this message (the guard never sent it, or it was never registered)');
      violations.push(...found);
      continue;
    }

    // ---- what the guard heard, from the pushes and its own timeline ----
    const timeline = g.timeline;
    const at = (e: TimelineEntry) => Date.parse(e.at);
    const fallbackEntry = timeline.find((e) => e.state === 'FALLBACK');
    const fallbackAt = fallbackEntry ? at(fallbackEntry) : undefined;
    const heard = timeline.some((e) => DELIVERY_NEWS.has(e.event));
    const heardBeforeFallback =
      fallbackEntry !== undefined && timeline.slice(0, timeline.indexOf(fallbackEntry)).some((e) => DELIVERY_NEWS.has(e.event));
    const newsAcks = truth.eventsPushed
      .filter((p) => DELIVERY_NEWS.has(eventOf(p)?.type ?? ''))
      .map(ackTime)
      .filter((t): t is number => t !== undefined);
    const firstNewsAck = newsAcks.length ? Math.min(...newsAcks) : undefined;
    const fellBackOnUnknown = fallbackEntry?.event === 'ROUNDS_SPENT' && m.onUnknown === 'fallback';
    const outcome = g.outcome;
    const context = () =>
      ` [truth ${cls}${truth.plan.noEvent ? ', no events' : ''}, sms ${sms}, outcome ${outcome ?? '—'}; timeline ${timeline.map((e) => `${e.event}→${e.state}`).join(', ')}]`;

    // ---- invariant 5: every acknowledged guard event is in the timeline, unless it came late ----
    for (const type of GUARD_EVENTS) {
      const firstAck = new Map<string, number>();
      for (const p of truth.eventsPushed) {
        const e = eventOf(p);
        const t = ackTime(p);
        if (!e || e.type !== type) continue;
        if (t === undefined) {
          if (p.abandoned) abandonedPushes += 1;
          continue;
        }
        firstAck.set(e.id, Math.min(t, firstAck.get(e.id) ?? Number.POSITIVE_INFINITY));
      }
      ackedEvents += firstAck.size;
      const entries = timeline.filter((e) => e.event === type).length;
      const beforeClose = [...firstAck.values()].filter((t) => t < closeAt).length;
      if (beforeClose > entries) {
        violate(5, `${beforeClose} distinct ${type} event(s) acknowledged before the guard closed, ${entries} in its timeline` + context());
      }
      lateEvents += Math.max(0, firstAck.size - Math.max(entries, beforeClose));
    }

    // ---- outcome ⇔ SMS consistency (whatever the truth) ----
    if (sms > 1) violate(3, `${sms} SMS reached one phone` + context());
    if ((outcome === 'FALLBACK_SENT' || outcome === 'DOUBLE_DELIVERY') && sms !== 1) violate(3, `${outcome} but ${sms} SMS at the sink` + context());
    if (outcome === 'FALLBACK_FAILED' && !m.expectFallbackFailed) violate(3, 'FALLBACK_FAILED although the SMS provider was never down past the budget' + context());
    if (m.expectFallbackFailed && (outcome !== 'FALLBACK_FAILED' || sms !== 0)) {
      violate(3, `the SMS provider was down past the retry budget: expected FALLBACK_FAILED with no SMS` + context());
    }

    if (cls === 'delivered' || cls === 'delivered-after-revoke-200') {
      if (sms === 0) {
        if (outcome === 'DELIVERED' && !heard) violate(1, 'DELIVERED without any DELIVERED/READ in the timeline' + context());
        if (heard && outcome !== 'DELIVERED') violate(1, `heard the DELIVERED, no SMS went out, yet recorded ${outcome}` + context());
        if (!heard) {
          const ok =
            outcome === 'DELIVERED_UNCONFIRMED' ||
            (outcome === 'UNRESOLVED' && m.onUnknown === 'no-fallback') ||
            (outcome === 'REVOKED' && !m.hasFallback) ||
            (outcome === 'FALLBACK_FAILED' && m.expectFallbackFailed === true);
          if (!ok) violate(1, `delivered, news never heard, no SMS: ${outcome} is not an allowed record` + context());
        }
      } else {
        // Both: the phone has the message and an SMS went out.
        const cause = cls === 'delivered-after-revoke-200' ? 'revoke-200' : fellBackOnUnknown ? 'policy-on-unknown' : undefined;
        if (!cause) {
          violate(2, 'delivered before any successful revoke, yet an SMS went out (no revoke said 200, no policy fallback)' + context());
        } else if (heardBeforeFallback || (firstNewsAck !== undefined && fallbackAt !== undefined && firstNewsAck < fallbackAt)) {
          violate(
            4,
            `avoidable double: a DELIVERED/READ was acknowledged at ${iso(firstNewsAck)}, before the guard entered FALLBACK at ${iso(fallbackAt)}` + context(),
          );
        } else if (heard) {
          if (outcome !== 'DOUBLE_DELIVERY') violate(4, `a double delivery the guard heard of, recorded as ${outcome}` + context());
          else {
            doubles.recorded += 1;
            doubles.byCause[cause] += 1;
          }
        } else {
          if (outcome !== 'FALLBACK_SENT') violate(4, `an unheard double recorded as ${outcome}` + context());
          else {
            doubles.unheard += 1;
            doubles.byCause[cause] += 1;
          }
        }
      }
    } else {
      // Never delivered: revoked, or neither.
      if (outcome === 'DELIVERED' || outcome === 'DELIVERED_UNCONFIRMED' || outcome === 'DOUBLE_DELIVERY') {
        violate(1, `recorded ${outcome}, but the phone never got the message` + context());
      }
      const guardFellBack = fallbackEntry !== undefined;
      if (m.expectFallbackFailed) {
        // checked above
      } else if (cls === 'revoked') {
        if (m.hasFallback) {
          const withheld = outcome === 'UNRESOLVED' && m.onUnknown === 'no-fallback' && !guardFellBack;
          if (!(sms === 1 && outcome === 'FALLBACK_SENT') && !(sms === 0 && withheld)) {
            violate(3, `revoked (${truth.ttlRevoked ? 'by its TTL' : 'by our revoke'}) but ${sms} SMS, outcome ${outcome}` + context());
          }
        } else if (!(sms === 0 && (outcome === 'REVOKED' || (outcome === 'UNRESOLVED' && !guardFellBack)))) {
          violate(3, `revoked, no fallback configured: expected REVOKED with no SMS` + context());
        }
      } else if (m.hasFallback && m.onUnknown === 'fallback') {
        if (!(sms === 1 && outcome === 'FALLBACK_SENT')) violate(3, `neither delivered nor revoked, policy falls back: expected one SMS` + context());
      } else if (!(sms === 0 && outcome === 'UNRESOLVED')) {
        violate(3, `neither delivered nor revoked, policy does not fall back: expected UNRESOLVED with no SMS` + context());
      }
    }
    violations.push(...found);
  }

  closeDelays.sort((a, b) => a - b);
  const pct = (p: number) => (closeDelays.length ? closeDelays[Math.min(closeDelays.length - 1, Math.floor(p * closeDelays.length))]! : 0);
  return {
    checked: input.messages.length,
    violations,
    outcomes,
    truthClasses,
    doubles,
    lateEvents,
    ackedEvents,
    abandonedPushes,
    closeAfterStaleMs: { max: closeDelays.length ? closeDelays[closeDelays.length - 1]! : 0, p50: pct(0.5), p99: pct(0.99) },
  };
}

function iso(ms: number | undefined): string {
  return ms === undefined ? '—' : new Date(ms).toISOString();
}
