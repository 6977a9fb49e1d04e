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
// Sink:  sms          — every accepted send to the message's own phone number (each phone gets one
//                       message): with Twilio, which ignores idempotency keys, a retried POST counts twice.
// Late records         — the ids of the rbmLateDelivery workflows visibility lists.
// Guard: outcome, close time, and its timeline (one entry per transition; one entry per distinct
//        RBM eventId it heard, whatever the entry's state).
//
// Policy (workflows/lifecycle.ts, issue 10) the invariants follow
// -----------------------------------------------------------------
// - DELIVERED/READ heard before an SMS went out wins: no SMS.
// - A 404 proves delivery only when nothing else explains it; otherwise, like every unknown, the
//   per-message policy decides: onUnknown 'fallback' (OTP, transactions) sends, 'no-fallback'
//   (promotions) ends UNRESOLVED / DELIVERED_UNCONFIRMED / FALLBACK_UNCONFIRMED with no (new) SMS.
// - TTL_EXPIRATION_REVOKED heard in any state without a delivery leads to the fallback.
// - An SMS attempt whose fate is unknown is looked up, never resent blindly; when it cannot be
//   established the outcome says so: FALLBACK_MAYBE_TWICE (resent) or FALLBACK_UNCONFIRMED (not).
// - A DELIVERED heard after an SMS was (or may have been) accepted makes the outcome DOUBLE_DELIVERY;
//   one that reaches the guard after it closed with an SMS outcome is recorded by the webhook as a
//   late-delivery workflow (contract: lateDeliveryWorkflowId, type rbmLateDelivery).
//
// Invariants (issue 10, "Done when")
// ----------------------------------
//   not delivered  exactly one SMS, unless the policy said no fallback and the outcome says so
//                  (REVOKED without a fallback; UNRESOLVED, DELIVERED_UNCONFIRMED or
//                  FALLBACK_UNCONFIRMED for a no-fallback policy — never after the guard heard
//                  TTL_EXPIRATION_REVOKED; FALLBACK_FAILED only when the provider was down past the
//                  budget). Two SMS only as FALLBACK_MAYBE_TWICE (recorded, counted apart).
//   delivered      no SMS, or the double delivery is recorded: the outcome DOUBLE_DELIVERY, or a
//                  late-delivery record for the guard. It must also have been unavoidable: caused
//                  by a revoke answered 200 (the platform's race) or by a policy that falls back on
//                  unknown, with no DELIVERED/READ acknowledged before the guard entered FALLBACK.
//                  When no DELIVERED/READ was ever acknowledged by the webhook (lost events), the
//                  guard could not know: counted as "unheard", apart, not a violation.
//   never two SMS  unrecorded: two only with FALLBACK_MAYBE_TWICE, or DOUBLE_DELIVERY whose timeline
//                  notes the possible second SMS (a FALLBACK_MAYBE_TWICE entry, or a reason saying
//                  "twice" / "may have gone out"); three never.
//   nothing lost   every guard event the webhook acknowledged is in the timeline, unless it came
//                  after the guard closed; a DELIVERED after a guard closed with an SMS outcome has
//                  its late-delivery record (id = lateDeliveryWorkflowId(guard id, eventId)).
import { parseGuardWorkflowId, SMS_OUTCOMES, type Outcome } from '../../workflows/contract.ts';
import { lateDeliveryWorkflowId, lateRecordPrefix } from '../../client/late-records.ts';
import type { MessageTruth } from '../sim/rbm-simulator.ts';
import {
  ackTime,
  classify,
  eventOf,
  type CheckedMessage,
  type CheckInput,
  type CheckResult,
  type GuardRecord,
  type InvariantId,
  type TruthClass,
  type Violation,
} from './checker-model.ts';

export * from './checker-model.ts';

const DELIVERY_NEWS = new Set(['DELIVERED', 'READ']);
const GUARD_EVENTS = ['DELIVERED', 'READ', 'TTL_EXPIRATION_REVOKED', 'TTL_EXPIRATION_REVOKE_FAILED'] as const;
const IMPOSSIBLE_HERE = new Set<string>(['CANCELLED', 'ORPHANED', 'REVOKE_ERROR', 'SEND_ERROR']);

export function check(input: CheckInput): CheckResult {
  const violations: Violation[] = [];
  const outcomes: Record<string, number> = {};
  const truthClasses: Record<TruthClass, number> = { delivered: 0, 'delivered-after-revoke-200': 0, revoked: 0, neither: 0, unknown: 0 };
  const doubles: CheckResult['doubles'] = { recorded: 0, recordedLate: 0, unheard: 0, byCause: { 'revoke-200': 0, 'policy-on-unknown': 0 }, withoutSms: 0 };
  const lateRecordIds = input.lateRecords ?? new Set<string>();
  let twiceRecorded = 0;
  let lateRecords = 0;
  let lateEvents = 0;
  let ackedEvents = 0;
  let abandonedPushes = 0;
  const closeDelays: number[] = [];

  for (const m of input.messages) {
    const found: Violation[] = [];
    const violate = (invariant: InvariantId, detail: string) => found.push({ invariant, messageId: m.messageId, workflowId: m.workflowId, detail });
    const g = input.guard(m.workflowId);
    // A message the guard sends itself whose create never landed: the platform never saw it, never delivered it.
    const truth = input.truth(m.messageId) ?? (m.guardSends ? neverCreated(m) : undefined);
    const sms = input.smsTo(m.phone);
    const cls = classify(truth);
    truthClasses[cls] += 1;
    const label = g?.outcome ?? (g ? `open: ${g.state ?? '?'}` : 'no guard');
    outcomes[label] = (outcomes[label] ?? 0) + 1;

    // ---- invariant 1: tracked, closed, completed, in time ----
    const g1 = checkClosed(m, g, truth, input.boundMs, violate);
    if (!g1 || !truth) {
      violations.push(...found);
      continue;
    }
    const closeAt = g1.closeTime;
    closeDelays.push(closeAt - m.staleAt);

    // ---- what the guard heard, from the pushes, its own timeline and the late records ----
    const timeline = g1.timeline;
    const outcome = g1.outcome;
    const fallbackEntry = timeline.find((e) => e.state === 'FALLBACK');
    const fallbackAt = fallbackEntry ? Date.parse(fallbackEntry.at) : undefined;
    const heard = timeline.some((e) => DELIVERY_NEWS.has(e.event));
    const heardBeforeFallback =
      fallbackEntry !== undefined && timeline.slice(0, timeline.indexOf(fallbackEntry)).some((e) => DELIVERY_NEWS.has(e.event));
    const heardTtlRevoked = timeline.some((e) => e.event === 'TTL_EXPIRATION_REVOKED');
    const newsPushes = truth.eventsPushed.filter((p) => DELIVERY_NEWS.has(eventOf(p)?.type ?? ''));
    const newsAcks = newsPushes.map(ackTime).filter((t): t is number => t !== undefined);
    const firstNewsAck = newsAcks.length ? Math.min(...newsAcks) : undefined;
    const recordPrefix = lateRecordPrefix(m.workflowId);
    const records = [...lateRecordIds].filter((id) => id.startsWith(recordPrefix));
    lateRecords += records.length;
    const notesTwice = timeline.some((e) => e.state === 'FALLBACK_MAYBE_TWICE' || /twice|may have gone out/i.test(e.reason));
    const context = () =>
      ` [truth ${cls}${truth.plan.noEvent ? ', no events' : ''}, sms ${sms}, outcome ${outcome}${records.length ? `, ${records.length} late record(s)` : ''}; timeline ${timeline.map((e) => `${e.event}→${e.state}`).join(', ')}]`;

    // ---- invariant 5: acknowledged guard events are in the timeline; late DELIVERED after an SMS is recorded ----
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
      if (type === 'DELIVERED' && SMS_OUTCOMES.includes(outcome)) {
        for (const [eventId, t] of firstAck) {
          if (t >= closeAt && !lateRecordIds.has(lateDeliveryWorkflowId(m.workflowId, eventId))) {
            violate(5, `DELIVERED ${eventId} acknowledged at ${iso(t)}, after the guard closed ${outcome}, has no late-delivery record` + context());
          }
        }
      }
    }

    // ---- outcome ⇔ SMS at the sink, whatever the truth; invariant 4: never two unrecorded ----
    const smsOutcome = SMS_OUTCOMES.includes(outcome) || outcome === 'DOUBLE_DELIVERY';
    if (sms >= 2) {
      const recordedTwice = sms === 2 && (outcome === 'FALLBACK_MAYBE_TWICE' || (outcome === 'DOUBLE_DELIVERY' && notesTwice));
      if (recordedTwice) twiceRecorded += 1;
      else violate(4, `${sms} SMS reached one phone, recorded as ${outcome}` + context());
    }
    if (outcome === 'FALLBACK_SENT' && sms !== 1) violate(sms > 1 ? 4 : 2, `FALLBACK_SENT but ${sms} SMS at the sink` + context());
    if (outcome === 'FALLBACK_MAYBE_TWICE' && sms === 0) violate(1, 'FALLBACK_MAYBE_TWICE (an SMS was accepted) but none at the sink' + context());
    if (outcome === 'DOUBLE_DELIVERY' && sms === 0) {
      if (fallbackEntry === undefined) violate(1, 'DOUBLE_DELIVERY without any SMS attempt' + context());
      else doubles.withoutSms += 1;
    }
    if (!smsOutcome && sms > 0) violate(cls === 'revoked' || cls === 'neither' ? 2 : 3, `${sms} SMS at the sink, but the outcome ${outcome} says none went out` + context());
    if (outcome === 'FALLBACK_FAILED' && !m.expectFallbackFailed) violate(2, 'FALLBACK_FAILED although the SMS provider was never down past the budget' + context());
    if (m.expectFallbackFailed && (outcome !== 'FALLBACK_FAILED' || sms !== 0)) {
      violate(2, 'the SMS provider was down past the retry budget: expected FALLBACK_FAILED with no SMS' + context());
    }

    if (cls === 'delivered' || cls === 'delivered-after-revoke-200') {
      // ---- invariant 3: delivered ----
      if (sms === 0) {
        if (outcome === 'DELIVERED' && !heard) violate(1, 'DELIVERED without any DELIVERED/READ in the timeline' + context());
        if (heard && outcome !== 'DELIVERED' && !(outcome === 'DOUBLE_DELIVERY' && fallbackEntry)) {
          violate(1, `heard the DELIVERED, no SMS went out, yet recorded ${outcome}` + context());
        }
        if (!heard) {
          const ok =
            outcome === 'DELIVERED_UNCONFIRMED' ||
            outcome === 'FALLBACK_UNCONFIRMED' ||
            (outcome === 'UNRESOLVED' && (m.onUnknown === 'no-fallback' || !m.hasFallback)) ||
            (outcome === 'REVOKED' && !m.hasFallback) ||
            (outcome === 'FALLBACK_FAILED' && m.expectFallbackFailed === true);
          if (!ok) violate(1, `delivered, news never heard, no SMS: ${outcome} is not an allowed record` + context());
        }
      } else {
        // Both: the phone has the message and an SMS went out.
        const cause = cls === 'delivered-after-revoke-200' ? 'revoke-200' : m.onUnknown === 'fallback' ? 'policy-on-unknown' : undefined;
        if (!cause) {
          violate(3, 'delivered, no revoke said 200 and the policy does not fall back on unknown, yet an SMS went out' + context());
        } else if (heardBeforeFallback || (firstNewsAck !== undefined && fallbackAt !== undefined && firstNewsAck < fallbackAt)) {
          violate(3, `avoidable double: a DELIVERED/READ was acknowledged at ${iso(firstNewsAck)}, before the guard entered FALLBACK at ${iso(fallbackAt)}` + context());
        } else if (outcome === 'DOUBLE_DELIVERY') {
          doubles.recorded += 1;
          doubles.byCause[cause] += 1;
        } else if (records.length > 0) {
          doubles.recordedLate += 1;
          doubles.byCause[cause] += 1;
        } else if (heard) {
          violate(3, `a double delivery the guard heard of, recorded as ${outcome}` + context());
        } else if (firstNewsAck !== undefined) {
          violate(3, `a double delivery: the DELIVERED was acknowledged at ${iso(firstNewsAck)} after the guard closed ${outcome}, and no late-delivery record exists` + context());
        } else {
          doubles.unheard += 1;
          doubles.byCause[cause] += 1;
        }
      }
    } else {
      // ---- invariant 2: never delivered (revoked, or neither) ----
      if (outcome === 'DELIVERED' || outcome === 'DOUBLE_DELIVERY') {
        violate(1, `recorded ${outcome}, but the phone never got the message` + context());
      }
      const withheldOk = (o: Outcome) =>
        !heardTtlRevoked &&
        (o === 'UNRESOLVED' || o === 'DELIVERED_UNCONFIRMED' || o === 'FALLBACK_UNCONFIRMED');
      if (m.expectFallbackFailed) {
        // checked above
      } else if (!m.hasFallback) {
        if (sms !== 0 || !(outcome === 'REVOKED' || outcome === 'UNRESOLVED' || outcome === 'DELIVERED_UNCONFIRMED')) {
          violate(2, `not delivered, no fallback configured: expected REVOKED (or UNRESOLVED / DELIVERED_UNCONFIRMED) with no SMS` + context());
        }
      } else if (sms === 1 || (sms === 2 && outcome === 'FALLBACK_MAYBE_TWICE')) {
        // texted: the outcome/SMS checks above judged the record
      } else if (sms === 0 && m.onUnknown === 'no-fallback' && withheldOk(outcome)) {
        // the policy withheld it and the outcome says so
      } else if (sms === 0) {
        violate(2, `${cls === 'revoked' ? (truth.ttlRevoked ? 'revoked by its TTL' : 'revoked') : 'neither delivered nor revoked'}, no SMS, outcome ${outcome}${heardTtlRevoked ? ' (after hearing TTL_EXPIRATION_REVOKED)' : ''}` + context());
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
    twiceRecorded,
    lateRecords,
    lateEvents,
    ackedEvents,
    abandonedPushes,
    closeAfterStaleMs: { max: closeDelays.length ? closeDelays[closeDelays.length - 1]! : 0, p50: pct(0.5), p99: pct(0.99) },
  };
}

/** Invariant 1's structural part; returns the closed guard with its outcome, or undefined when there is nothing more to judge. */
function checkClosed(
  m: CheckedMessage,
  g: GuardRecord | undefined,
  truth: MessageTruth | undefined,
  boundMs: number,
  violate: (invariant: InvariantId, detail: string) => void,
): (GuardRecord & { closeTime: number; outcome: Outcome }) | undefined {
  if (!m.tracked) return void violate(1, `never tracked: ${m.trackError ?? 'unknown reason'}`);
  if (!g) return void violate(1, 'tracked, but no guard exists');
  if (g.closeTime === null || g.executionStatus === 'RUNNING') {
    return void violate(1, `still open in ${g.state ?? 'an unknown state'} past its deadline plus ${Math.round(boundMs / 1000)} s`);
  }
  if (g.executionStatus !== 'COMPLETED') violate(1, `the workflow ended ${g.executionStatus}, not COMPLETED`);
  if (g.closeTime - m.staleAt > boundMs) {
    violate(1, `closed ${((g.closeTime - m.staleAt) / 1000).toFixed(1)} s after its deadline (bound ${Math.round(boundMs / 1000)} s)`);
  }
  if (g.outcome && IMPOSSIBLE_HERE.has(g.outcome)) violate(1, `outcome ${g.outcome} is impossible in this run`);
  if (!g.outcome) return void violate(1, `closed without an outcome (state ${g.state ?? '?'})`);
  if (!truth) return void violate(1, 'the platform never saw this message (the guard never sent it, or it was never registered)');
  return { ...g, closeTime: g.closeTime, outcome: g.outcome };
}

function neverCreated(m: CheckedMessage): MessageTruth {
  return {
    agentId: parseGuardWorkflowId(m.workflowId)?.agentId ?? '',
    messageId: m.messageId,
    phone: m.phone,
    origin: 'api',
    sentAt: m.staleAt,
    plan: { deliverAfterMs: null },
    ttlRevoked: false,
    ttlRevokeFailed: false,
    revokeCalls: 0,
    revokeAnswers: [],
    eventsPushed: [],
  };
}

function iso(ms: number | undefined): string {
  return ms === undefined ? '—' : new Date(ms).toISOString();
}
