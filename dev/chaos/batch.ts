// The chaos run's batch, reproducible from a seed: what a real mix of RBM traffic looks like with
// deadlines scaled from minutes and hours down to seconds. OTPs (AUTHENTICATION) must reach the user
// one way or the other, so they fall back to SMS even when the outcome stays unknown; promotions
// don't. Some messages the guard sends itself (it sets the platform's TTL one revoke round after the
// deadline), some the backend sent — a few with a backend TTL around the deadline (Google's advice),
// which the backend passes to track() too, so the platform may revoke first. The platform-side faults the issue
// lists (429/5xx, hangs, lost responses, races, duplicate/out-of-order/missing events) are drawn by
// the simulator's own random faults; this module only decides when each phone takes its message.
import type { GuardPolicy, MessageTrafficType } from '../../workflows/contract.ts';
import type { DeliveryPlan } from '../sim/rbm-simulator.ts';
import { seededRandom } from '../random.ts';

export type ChaosKind =
  /** AUTHENTICATION, SMS fallback, falls back even when delivery stays unknown. */
  | 'otp'
  /** TRANSACTION the guard sends itself (expireTime = staleAt + one revoke round: the platform's TTL is the safety net). */
  | 'txn-guard-sent'
  /** PROMOTION with an SMS fallback; no fallback when delivery stays unknown. */
  | 'promo-sms'
  /** PROMOTION with no fallback at all: revoked or delivered, never an SMS. */
  | 'promo-rbm-only';

export type DeliveryTiming = 'in-time' | 'near-deadline' | 'never';

export interface ChaosMessage {
  index: number;
  kind: ChaosKind;
  agentId: string;
  messageId: string;
  /** Unique per message: SMS are counted per phone. */
  phone: string;
  trafficType: MessageTrafficType;
  /** When the backend sends and tracks it, in ms after the batch starts. */
  sendAtMs: number;
  staleInMs: number;
  fallbackText: string | null;
  /** Set when the guard sends the RBM message itself. */
  sendText: string | null;
  /** A backend-sent message's own platform TTL, in ms after it was sent (none = no TTL). */
  expireInMs: number | null;
  timing: DeliveryTiming;
  /**
   * The deadline wave (ms after the batch starts): RCS is down for these, so their deadlines all fall
   * in that one second (staleAt = batch start + waveAtMs, not sentAt + staleInMs). null: not in it.
   */
  waveAtMs: number | null;
  /** Only when the phone takes it and what the TTL does; the simulator draws every fault on top. */
  plan: Pick<DeliveryPlan, 'deliverAfterMs'> & Partial<Pick<DeliveryPlan, 'ttlOutcome'>>;
  policy: GuardPolicy;
}

/**
 * The per-message policies of the chaos run: short, so a thousand guards drain in a few minutes,
 * and the same shape as production's defaults (client/track-input.ts) scaled down.
 */
export const CHAOS_POLICY = {
  /** Wait this long for a late DELIVERED after an ambiguous revoke or a 404 (prod: 30 s). */
  graceMs: 2_000,
  /** Stay open this long after the decision to hear a DELIVERED that makes it a double (prod: 10 min). */
  lingerMs: 8_000,
  /** Revoke rounds before the outcome counts as unknown (prod: 3). */
  maxRevokeRounds: 2,
  /** Attempts per round: 429/5xx/timeouts retried with 1 s, 2 s backoff (prod: 5). */
  revokeAttempts: 3,
  /** SMS attempts before FALLBACK_FAILED: backoff 1, 2, 4, 8, 16 s covers a 10 % 5xx rate (prod: 8). */
  fallbackAttempts: 6,
} as const;

export interface BatchOptions {
  n: number;
  seed: number;
  /** Messages are sent evenly over this window (a backend's traffic, not one burst). */
  arrivalWindowMs: number;
  agentId?: string;
  /** Share of the messages sent early enough that join the deadline wave (default 0: none). */
  waveShare?: number;
}

/** The wave's second: after 60 % of the arrivals, plus the shortest OTP deadline. */
export function waveAtMs(arrivalWindowMs: number): number {
  return Math.ceil((0.6 * arrivalWindowMs + 14_000) / 1000) * 1000;
}

export function chaosBatch({ n, seed, arrivalWindowMs, agentId = 'chaos-agent', waveShare = 0 }: BatchOptions): ChaosMessage[] {
  const waveAt = waveAtMs(arrivalWindowMs);
  const random = seededRandom(seed);
  const between = (lo: number, hi: number) => Math.round(lo + random() * (hi - lo));
  const runTag = (seed >>> 0).toString(36);
  const out: ChaosMessage[] = [];
  for (let index = 0; index < n; index++) {
    const k = random();
    const kind: ChaosKind = k < 0.4 ? 'otp' : k < 0.55 ? 'txn-guard-sent' : k < 0.8 ? 'promo-sms' : 'promo-rbm-only';
    const promo = kind === 'promo-sms' || kind === 'promo-rbm-only';
    // An OTP valid 10 minutes → 12–20 s; a promotion valid hours → 15–25 s. The floor stays well
    // above a Temporal outage plus its restart on a busy machine, so a backend retrying track()
    // still tracks before the deadline (track() refuses a deadline in the past).
    const sendAtMs = Math.round((index * arrivalWindowMs) / Math.max(1, n));
    // In the wave, RCS is down: most never arrive, a few just around the deadline (the race).
    const inWave = sendAtMs <= waveAt - 12_000 && random() < waveShare;
    const staleInMs = inWave ? waveAt - sendAtMs : promo ? between(15_000, 25_000) : between(12_000, 20_000);

    const t = random();
    const timing: DeliveryTiming = inWave ? (t < 0.85 ? 'never' : 'near-deadline') : t < 0.5 ? 'in-time' : t < 0.62 ? 'near-deadline' : 'never';
    const deliverAfterMs =
      timing === 'in-time'
        ? between(200, Math.round(staleInMs * 0.85))
        : timing === 'near-deadline'
          ? between(Math.round(staleInMs * 0.9), Math.round(staleInMs * 1.4))
          : null;
    const plan: ChaosMessage['plan'] = { deliverAfterMs };

    let expireInMs: number | null = null;
    if (kind === 'otp' && random() < 0.25) expireInMs = staleInMs + between(500, 2_000);
    // A promotion whose backend set the TTL at the deadline itself: the platform's revoke and the guard's race.
    if (kind === 'promo-sms' && random() < 0.2) expireInMs = staleInMs + between(-300, 300);
    if (kind === 'txn-guard-sent' && random() < 0.25) plan.ttlOutcome = 'revoke-failed';

    out.push({
      index,
      kind,
      agentId,
      messageId: `chaos-${runTag}-${String(index).padStart(5, '0')}`,
      phone: `+1444${String(index).padStart(7, '0')}`,
      trafficType: kind === 'otp' ? 'AUTHENTICATION' : kind === 'txn-guard-sent' ? 'TRANSACTION' : 'PROMOTION',
      sendAtMs,
      staleInMs,
      waveAtMs: inWave ? waveAt : null,
      fallbackText: kind === 'promo-rbm-only' ? null : kind === 'otp' ? `Your code is ${between(100000, 999999)}` : `Message ${index}`,
      sendText: kind === 'txn-guard-sent' ? `Your order ${index} has shipped` : null,
      expireInMs,
      timing,
      plan,
      policy: { ...CHAOS_POLICY, onUnknown: promo ? 'no-fallback' : 'fallback' },
    });
  }
  return out;
}
