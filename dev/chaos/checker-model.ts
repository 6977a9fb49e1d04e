// The chaos judge's vocabulary: the invariants, what the runner hands it (messages, guard records,
// truth, SMS counts, late records) and what it returns; and the small readings of the truth it
// shares with the runner's report. Pure: no I/O. The rules themselves are in ./checker.ts.
import type { Outcome, OnUnknown, TimelineEntry } from '../../workflows/contract.ts';
import type { MessageTruth, PushRecord } from '../sim/rbm-simulator.ts';

export const INVARIANTS = {
  1: 'every message reached a terminal outcome, within its deadline plus the bound, that agrees with the truth',
  2: 'a message not delivered got exactly one SMS (none only where the policy said no fallback and the outcome says so)',
  3: 'a delivered message got no SMS, or an unavoidable double delivery that is recorded (outcome or late record)',
  4: 'never two SMS unrecorded (only FALLBACK_MAYBE_TWICE, or DOUBLE_DELIVERY noting it)',
  5: 'nothing the webhook answered 200 to was lost (timeline, or late-delivery record)',
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
  /** The guard sends the RBM message itself (its create may never have landed). */
  guardSends?: boolean;
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
  /** Ids of the late-delivery record workflows (type rbmLateDelivery); default none. */
  lateRecords?: ReadonlySet<string>;
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
    /** Delivered and texted, recorded as the DOUBLE_DELIVERY outcome. */
    recorded: number;
    /** Delivered and texted, recorded by a late-delivery workflow (the DELIVERED came after the guard closed). */
    recordedLate: number;
    /** Delivered and texted, and no DELIVERED/READ ever reached the webhook: the guard could not know. */
    unheard: number;
    /** …all three by cause: a revoke answered 200 / the policy's fallback on unknown. */
    byCause: { 'revoke-200': number; 'policy-on-unknown': number };
    /** DOUBLE_DELIVERY whose SMS only may have gone out (none at the sink). */
    withoutSms: number;
  };
  /** Two SMS to one phone, recorded as such (FALLBACK_MAYBE_TWICE, or DOUBLE_DELIVERY noting it). */
  twiceRecorded: number;
  /** Late-delivery records found for the checked guards. */
  lateRecords: number;
  /** Acknowledged guard events that reached the guard only after it closed (answered 200 as late). */
  lateEvents: number;
  /** Acknowledged guard events, all messages. */
  ackedEvents: number;
  /** Pushes the simulator gave up on (never acknowledged): must be 0 for invariant 5 to mean anything. */
  abandonedPushes: number;
  /** Close time minus deadline, ms, for closed guards. */
  closeAfterStaleMs: { max: number; p50: number; p99: number };
}


/** When the webhook acknowledged a push (its last attempt's answer), or undefined. */
export function ackTime(push: PushRecord): number | undefined {
  if (!push.acknowledged) return undefined;
  return push.attempts[push.attempts.length - 1]?.at;
}

export function eventOf(push: PushRecord): { type: string; id: string } | undefined {
  const e = push.event as { eventType?: unknown; eventId?: unknown };
  return typeof e.eventType === 'string' && typeof e.eventId === 'string' ? { type: e.eventType, id: e.eventId } : undefined;
}

export function classify(truth: MessageTruth | undefined): TruthClass {
  if (!truth) return 'unknown';
  if (truth.deliveredAt !== undefined) return truth.revokeAnswers.includes(200) ? 'delivered-after-revoke-200' : 'delivered';
  return truth.revokedAt !== undefined ? 'revoked' : 'neither';
}
