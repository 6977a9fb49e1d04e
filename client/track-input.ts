// What a backend hands to track(): checked with a schema before anything reaches Temporal, so a
// bad message never starts a guard and every error names its field.
import { z } from 'zod';
import {
  AGENT_ID,
  E164_PATTERN,
  MAX_MESSAGE_LIFETIME_MS,
  MESSAGE_ID,
  MESSAGE_TRAFFIC_TYPES,
  PRIORITY,
  TRAFFIC_PRIORITY,
  normalizeAgentId,
  ON_UNKNOWN,
  parseIsoDateTime,
  revokeRoundBudgetMs,
  type GuardPolicy,
  type MessageTrafficType,
  type TrackedMessage,
} from '../workflows/contract.ts';

/** A sentAt this far ahead of our clock is still accepted: the backend's clock may run ahead. */
export const SENT_AT_SKEW_MS = 60_000;
/**
 * A deadline that passed up to this long ago is guarded at once (revoked now, and the fallback sent):
 * the track was late (a retry across an outage, a call on its way), and the message is still out
 * there. A day: longer than any outage a backend rides out with retries, short enough that a deadline
 * off by a unit (seconds read as milliseconds, a year typed wrong) is refused as the likely mistake.
 */
export const LATE_TRACK_MS = 24 * 60 * 60 * 1000;
/** 10 concatenated GSM-7 segments; longer texts are refused rather than silently cut. */
export const MAX_FALLBACK_TEXT = 1530;
/** RBM's own limit for a text message. */
export const MAX_RBM_TEXT = 3072;
const MAX_LIFETIME_MS = MAX_MESSAGE_LIFETIME_MS;

/** A duration on the wire: a number and a unit (exported to the generated contract). */
export const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/;
export const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** '10m' → 600000. Returns undefined for anything else. */
export function parseDuration(text: string): number | undefined {
  const match = DURATION.exec(text.trim());
  if (!match) return undefined;
  return Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS];
}

const duration = z.union([z.number(), z.string()]).transform((value, ctx) => {
  const ms = typeof value === 'number' ? value : parseDuration(value);
  if (ms === undefined || !Number.isFinite(ms) || ms <= 0) {
    ctx.addIssue({ code: 'custom', message: `not a duration like 90s, 10m or 2h (or positive milliseconds): ${value}` });
    return z.NEVER;
  }
  return ms;
});

const policySchema = z
  .object({
    graceMs: z.number().int().min(0).max(24 * 3_600_000),
    maxRevokeRounds: z.number().int().min(1).max(10),
    revokeAttempts: z.number().int().min(1).max(20),
    fallbackAttempts: z.number().int().min(1).max(50),
    onUnknown: z.enum(ON_UNKNOWN),
    lingerMs: z.number().int().min(0).max(7 * 86_400_000),
  })
  .partial()
  .strict();


/** On the wire a time is an ISO-8601 date-time with a zone (checked, naming the field, when resolved). */
const isoDateTime = z.string().meta({ format: 'date-time' });
/** TypeScript callers may hand a Date where the wire has a date-time string. */
const dateOrIso = z.union([z.date(), isoDateTime]);

const trackFields = {
  agentId: z.string().trim().min(1, 'must not be empty').max(AGENT_ID.maxLength).regex(AGENT_ID.pattern, AGENT_ID.rule),
  // A refinement, not .regex(): the rule's \p{…} classes would put a pattern in the JSON Schema that
  // Python's `re` cannot compile; clients read the rule from the contract's messageId instead.
  messageId: z
    .string()
    .trim()
    .min(1, 'must not be empty')
    .max(MESSAGE_ID.maxLength)
    .refine((id) => MESSAGE_ID.pattern.test(id), MESSAGE_ID.rule)
    .meta({ description: `RBM's messageId: ${MESSAGE_ID.rule}` }),
  phone: z.string().regex(E164_PATTERN, 'must be an E.164 number like +14155550100'),
  staleAt: isoDateTime.optional(),
  staleIn: duration.optional(),
  /** When the backend sent the message. staleIn counts from it, and a staleAt already past is
   * accepted when it lies after sentAt: a message tracked late (Temporal was down) is still guarded. */
  sentAt: isoDateTime.optional(),
  /** The RBM message's own expireTime or ttl, when the backend set one: the platform may revoke it first. */
  expireTime: isoDateTime.optional(),
  ttl: duration.optional(),
  trafficType: z.enum(MESSAGE_TRAFFIC_TYPES).default('TRANSACTION'),
  /** Temporal task priority, 1 (first) to 5; default by trafficType (an OTP 1, a promotion 5). */
  priority: z
    .number()
    .int('must be a whole number')
    .min(PRIORITY.min, `at least ${PRIORITY.min} (first)`)
    .max(PRIORITY.max, `at most ${PRIORITY.max} (last)`)
    .optional()
    .meta({ description: `Temporal task priority, ${PRIORITY.min} (first) to ${PRIORITY.max} (last); default by trafficType: ${Object.entries(TRAFFIC_PRIORITY).map(([t, p]) => `${t} ${p}`).join(', ')}` }),
  fallbackText: z.string().min(1, 'must not be empty').max(MAX_FALLBACK_TEXT, `at most ${MAX_FALLBACK_TEXT} characters (10 SMS segments)`).nullable().optional(),
  sendText: z.string().min(1).max(MAX_RBM_TEXT).optional(),
  policy: policySchema.optional(),
};

/** The wire format (HTTP API, the generated contract, other languages): plain JSON, ISO and duration strings. */
export const trackRequestSchema = z.object(trackFields).strict();
export type TrackRequest = z.input<typeof trackRequestSchema>;

/** What TypeScript callers hand to track(): the wire format, with Date objects allowed for its times. */
export const trackInputSchema = z
  .object({ ...trackFields, staleAt: dateOrIso.optional(), sentAt: dateOrIso.optional(), expireTime: dateOrIso.optional() })
  .strict();

export type TrackInput = z.input<typeof trackInputSchema>;

export class ValidationError extends Error {
  readonly issues: { field: string; message: string }[];
  constructor(issues: { field: string; message: string }[]) {
    super(issues.map((i) => `${i.field}: ${i.message}`).join('; '));
    this.name = 'ValidationError';
    this.issues = issues;
  }

  /**
   * zod's issues as fields: `phone`, `policy.graceMs`, under `field` when given; `(input)` for the
   * whole. Any error with zod's issue paths will do (the HTTP API's route schemas report them too).
   */
  static fromZod(error: { issues: readonly { path: readonly PropertyKey[]; message: string }[] }, field?: string): ValidationError {
    return new ValidationError(error.issues.map((i) => ({ field: [field, ...i.path.map(String)].filter(Boolean).join('.') || '(input)', message: i.message })));
  }
}

/** Sane defaults: an OTP or transaction falls back even when delivery stays unknown, a promotion does not. */
export function defaultPolicy(trafficType: MessageTrafficType): GuardPolicy {
  return {
    graceMs: 30_000,
    maxRevokeRounds: 3,
    revokeAttempts: 5,
    fallbackAttempts: 8,
    onUnknown: trafficType === 'PROMOTION' ? 'no-fallback' : 'fallback',
    lingerMs: 10 * 60_000,
  };
}

/** Validates and normalises a track request; throws ValidationError naming each bad field. */
export function parseTrackInput(input: unknown, now: Date = new Date()): TrackedMessage {
  const parsed = trackInputSchema.safeParse(input);
  if (!parsed.success) {
    throw ValidationError.fromZod(parsed.error);
  }
  const v = parsed.data;
  const staleAt = resolveStaleAt(v.staleAt, v.staleIn, v.sentAt, now);
  const sentAt = v.sentAt === undefined ? now : toDate(v.sentAt);
  const policy = { ...defaultPolicy(v.trafficType), ...v.policy };
  const platformExpireAt = v.sendText
    ? guardSendExpiry(v, staleAt, policy)
    : resolvePlatformExpiry(v.expireTime, v.ttl, sentAt);
  return {
    agentId: normalizeAgentId(v.agentId),
    messageId: v.messageId,
    phone: v.phone,
    staleAt: staleAt.toISOString(),
    sentAt: sentAt.toISOString(),
    platformExpireAt: platformExpireAt?.toISOString() ?? null,
    trafficType: v.trafficType,
    fallback: v.fallbackText ? { channel: 'sms', text: v.fallbackText } : null,
    send: v.sendText ? { text: v.sendText } : null,
    policy,
    priority: v.priority ?? TRAFFIC_PRIORITY[v.trafficType],
  };
}

/** The backend's own TTL on the message: expireTime, or ttl counted from sentAt. */
function resolvePlatformExpiry(expireTime: Date | string | undefined, ttl: number | undefined, sentAt: Date): Date | null {
  const fail = (field: string, message: string) => new ValidationError([{ field, message }]);
  if (expireTime !== undefined && ttl !== undefined) throw fail('expireTime', 'give expireTime or ttl, not both (RBM takes one)');
  if (ttl !== undefined) {
    if (ttl > MAX_LIFETIME_MS) throw fail('ttl', 'at most 15 days (RBM’s own maximum)');
    return new Date(sentAt.getTime() + ttl);
  }
  if (expireTime === undefined) return null;
  const at = toDate(expireTime);
  if (Number.isNaN(at.getTime())) throw fail('expireTime', `not an ISO-8601 date-time with a zone: ${String(expireTime)}`);
  if (at.getTime() - sentAt.getTime() > MAX_LIFETIME_MS) throw fail('expireTime', 'at most 15 days after sentAt (RBM’s own maximum)');
  return at;
}

/** A message the guard sends itself expires one full revoke round after staleAt (revokeRoundBudgetMs). */
function guardSendExpiry(v: { expireTime?: unknown; ttl?: unknown }, staleAt: Date, policy: GuardPolicy): Date {
  if (v.expireTime !== undefined || v.ttl !== undefined) {
    const field = v.expireTime !== undefined ? 'expireTime' : 'ttl';
    throw new ValidationError([{ field, message: 'not with sendText: the guard sets the TTL of messages it sends itself (staleAt + one revoke round)' }]);
  }
  return new Date(staleAt.getTime() + revokeRoundBudgetMs(policy));
}

function resolveStaleAt(staleAt: Date | string | undefined, staleIn: number | undefined, sentAtInput: Date | string | undefined, now: Date): Date {
  const fail = (field: string, message: string) => new ValidationError([{ field, message }]);
  const sentAt = sentAtInput === undefined ? undefined : toDate(sentAtInput);
  if (sentAt && Number.isNaN(sentAt.getTime())) throw fail('sentAt', `not an ISO-8601 date-time with a zone: ${String(sentAtInput)}`);
  if (sentAt && sentAt.getTime() > now.getTime() + SENT_AT_SKEW_MS) throw fail('sentAt', `${sentAt.toISOString()} is in the future`);
  if (staleAt !== undefined && staleIn !== undefined) throw fail('staleAt', 'give staleAt or staleIn, not both');
  if (staleAt === undefined && staleIn === undefined) throw fail('staleAt', 'required (or staleIn)');
  const from = sentAt ?? now;
  if (staleIn !== undefined) {
    if (staleIn > MAX_LIFETIME_MS) throw fail('staleIn', 'at most 15 days (RBM’s own maximum)');
    return new Date(from.getTime() + staleIn);
  }
  const at = toDate(staleAt as Date | string);
  if (Number.isNaN(at.getTime())) throw fail('staleAt', `not an ISO-8601 date-time with a zone: ${String(staleAt)}`);
  if (at.getTime() - from.getTime() > MAX_LIFETIME_MS) throw fail('staleAt', 'at most 15 days ahead (RBM’s own maximum)');
  if (at.getTime() <= now.getTime()) {
    // A deadline that passed recently is a late track: guarded at once. Far in the past: a mistake.
    if (sentAt && at.getTime() <= sentAt.getTime()) throw fail('staleAt', `${at.toISOString()} is not after sentAt ${sentAt.toISOString()}`);
    if (now.getTime() - at.getTime() > LATE_TRACK_MS) throw fail('staleAt', `${at.toISOString()} is more than 24 h in the past: a clock or unit error?`);
  }
  return at;
}

function toDate(value: Date | string): Date {
  return value instanceof Date ? value : (parseIsoDateTime(value) ?? new Date(NaN));
}
