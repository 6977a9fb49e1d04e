// What an RBM webhook request is, decided without I/O: the route (URL verification or a Pub/Sub
// push, from X-Goog-Webhook-Type and the body), and what a signed push's data means for the guards.
// The app checks the signature between the two steps; everything here is pure and unit-tested.
import { z } from 'zod';
import {
  agentIdProblem,
  isGuardEventType,
  messageIdProblem,
  normalizeAgentId,
  parseIsoDateTime,
  type GuardEventType,
  type RbmEventSignal,
} from '../../workflows/contract.ts';

/** RBM event types that are acknowledged and ignored: they say nothing about a message's delivery. */
export const IGNORED_EVENT_TYPES = ['IS_TYPING', 'SUBSCRIBE', 'UNSUBSCRIBE'] as const;

/**
 * X-Goog-Webhook-Type (sent since 2026-07; values seen, not documented). A value we don't know, or
 * no header, routes by the body alone; `other` and `none` keep the metric's labels bounded.
 */
export const WEBHOOK_TYPES = ['verification', 'message_callback', 'agent_callback', 'other', 'none'] as const;
export type WebhookType = (typeof WEBHOOK_TYPES)[number];

export function webhookTypeOf(header: string | string[] | undefined): WebhookType {
  const value = (Array.isArray(header) ? header[0] : header)?.trim().toLowerCase();
  if (!value) return 'none';
  return (WEBHOOK_TYPES as readonly string[]).includes(value) && value !== 'other' && value !== 'none' ? (value as WebhookType) : 'other';
}

// ---------------------------------------------------------------------------------------------
// Schemas: the schema is the type.

/**
 * A Pub/Sub push. `messageId`/`publishTime` may come camelCase, snake_case, or both. Only `data`
 * is required: an odd value elsewhere is dropped, never a reason to refuse a signed event.
 */
export const pushEnvelopeSchema = z.object({
  message: z.object({
    data: z.string().min(1, 'message.data is empty'),
    attributes: z.record(z.string(), z.unknown()).optional().catch(undefined),
    messageId: z.string().min(1).optional().catch(undefined),
    message_id: z.string().min(1).optional().catch(undefined),
    publishTime: z.string().optional().catch(undefined),
    publish_time: z.string().optional().catch(undefined),
  }),
  subscription: z.string().optional().catch(undefined),
});
export type PushEnvelope = z.infer<typeof pushEnvelopeSchema>;

/** RBM's URL-verification request. */
export const verificationSchema = z.object({ clientToken: z.string(), secret: z.string() });

const optionalString = z.string().min(1).optional().catch(undefined);
const eventFields = {
  agentId: optionalString,
  eventId: optionalString,
  messageId: optionalString,
  // Shown in the guard's timeline: an RFC 3339 time or nothing (a malformed one is dropped, not the event).
  sendTime: z.string().refine((t) => parseIsoDateTime(t) !== undefined).optional().catch(undefined),
};

/** An event: user events carry `senderPhoneNumber`, server events `phoneNumber`; we never use either. */
export const rbmEventSchema = z.object({ ...eventFields, eventType: z.string().min(1) });
export type RbmEvent = z.infer<typeof rbmEventSchema>;

/** A message the user typed, a file, a location or a suggestion tap: not delivery news. */
export const userMessageSchema = z
  .object({
    ...eventFields,
    text: z.unknown().optional(),
    userFile: z.unknown().optional(),
    location: z.unknown().optional(),
    suggestionResponse: z.unknown().optional(),
  })
  .refine(
    (m) => m.text !== undefined || m.userFile !== undefined || m.location !== undefined || m.suggestionResponse !== undefined,
    'not a user message',
  );

// ---------------------------------------------------------------------------------------------
// Step 1: the route, before the signature check.

export type Route =
  | { kind: 'verification'; clientToken: string; secret: string }
  | { kind: 'push'; envelope: PushEnvelope; data: Buffer }
  /** A 4xx: the request can never succeed as sent (nothing here is signed yet). */
  | { kind: 'invalid'; status: 400; code: string; message: string };

/** The verification request is recognised by its body whatever the header says; the header only adds a check. */
export function routeRequest(body: unknown, webhookType: WebhookType): Route {
  const invalid = (code: string, message: string): Route => ({ kind: 'invalid', status: 400, code, message });
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    return invalid('not_an_object', 'expected a JSON object: a Pub/Sub push or a verification request');
  }
  if (!('message' in body)) {
    const verification = verificationSchema.safeParse(body);
    if (verification.success) return { kind: 'verification', ...verification.data };
    return webhookType === 'verification'
      ? invalid('bad_verification', 'X-Goog-Webhook-Type is verification but the body is not {clientToken, secret}')
      : invalid('no_message', 'expected a Pub/Sub push ({"message":{"data":…}}) or {clientToken, secret}');
  }
  if (webhookType === 'verification') {
    return invalid('bad_verification', 'X-Goog-Webhook-Type is verification but the body is a Pub/Sub push');
  }
  const envelope = pushEnvelopeSchema.safeParse(body);
  if (!envelope.success) return invalid('bad_envelope', `not a Pub/Sub push: ${describeIssue(envelope.error)}`);
  const data = decodeBase64(envelope.data.message.data);
  if (!data) return invalid('data_not_base64', 'message.data is not base64');
  return { kind: 'push', envelope: envelope.data, data };
}

// ---------------------------------------------------------------------------------------------
// Step 2: a signed push's data.

/** Why a signed event cannot reach a guard: answered 200 (Pub/Sub would retry a 4xx for 7 days) and counted. */
export const UNROUTABLE_REASONS = [
  'data_not_json',
  'data_not_object',
  'unknown_payload',
  'bad_event',
  'unknown_event_type',
  'missing_message_id',
  'bad_message_id',
  'missing_agent_id',
  'bad_agent_id',
  'missing_event_id',
] as const;
export type UnroutableReason = (typeof UNROUTABLE_REASONS)[number];

export type Classified =
  | { kind: 'guard'; eventType: GuardEventType; agentId: string; messageId: string; signal: RbmEventSignal }
  | { kind: 'ignored'; what: string }
  | { kind: 'unroutable'; reason: UnroutableReason; message: string };

export interface ClassifyInput {
  envelope: PushEnvelope;
  /** message.data, base64-decoded (the bytes the signature covers). */
  data: Buffer;
  webhookType: WebhookType;
  /** RBM_AGENT_ID, normalised: the agent of an event that names none. */
  fallbackAgentId?: string;
}

export function classifyEvent({ envelope, data, webhookType, fallbackAgentId }: ClassifyInput): Classified {
  const unroutable = (reason: UnroutableReason, message: string): Classified => ({ kind: 'unroutable', reason, message });
  if (envelope.message.attributes?.type === 'agent_launch_event') return { kind: 'ignored', what: 'AGENT_LAUNCH_EVENT' };
  let decoded: unknown;
  try {
    decoded = JSON.parse(data.toString('utf8'));
  } catch {
    return unroutable('data_not_json', 'message.data does not decode to JSON');
  }
  if (typeof decoded !== 'object' || decoded === null || Array.isArray(decoded)) {
    return unroutable('data_not_object', 'message.data is not a JSON object');
  }
  if (!('eventType' in decoded)) {
    if (userMessageSchema.safeParse(decoded).success) return { kind: 'ignored', what: 'USER_MESSAGE' };
    if ('agentLaunchEvent' in decoded) return { kind: 'ignored', what: 'AGENT_LAUNCH_EVENT' };
    if (webhookType === 'agent_callback') return { kind: 'ignored', what: 'AGENT_CALLBACK' };
    return unroutable('unknown_payload', 'message.data is neither an event nor a user message');
  }
  const parsed = rbmEventSchema.safeParse(decoded);
  if (!parsed.success) return unroutable('bad_event', `bad event: ${describeIssue(parsed.error)}`);
  const event = parsed.data;
  if ((IGNORED_EVENT_TYPES as readonly string[]).includes(event.eventType)) return { kind: 'ignored', what: event.eventType };
  if (!isGuardEventType(event.eventType)) {
    // An agent-level callback we don't know is agent news, not a message's: acknowledged like the others.
    if (webhookType === 'agent_callback') return { kind: 'ignored', what: 'AGENT_CALLBACK' };
    return unroutable('unknown_event_type', `unknown eventType ${JSON.stringify(event.eventType.slice(0, 64))}`);
  }
  const messageId = event.messageId?.trim();
  if (!messageId) return unroutable('missing_message_id', `${event.eventType} without a messageId`);
  const messageIdIssue = messageIdProblem(messageId);
  if (messageIdIssue) return unroutable('bad_message_id', `messageId ${messageIdIssue}`);
  const agentId = event.agentId ? normalizeAgentId(event.agentId) : fallbackAgentId;
  if (!agentId) return unroutable('missing_agent_id', `${event.eventType} without an agentId`);
  const agentIdIssue = agentIdProblem(agentId);
  if (agentIdIssue) return unroutable('bad_agent_id', `agentId: ${agentIdIssue}`);
  // eventId is how the guard drops duplicates. Pub/Sub's own message id is stable across its
  // retries of one push, so it stands in when RBM sent none.
  const pubsubId = envelope.message.messageId ?? envelope.message.message_id;
  const eventId = event.eventId ?? (pubsubId ? `pubsub:${pubsubId}` : undefined);
  if (!eventId) return unroutable('missing_event_id', `${event.eventType} without an eventId`);
  const signal: RbmEventSignal = event.sendTime ? { eventId, sendTime: event.sendTime } : { eventId };
  return { kind: 'guard', eventType: event.eventType, agentId, messageId, signal };
}

/**
 * The agent a push's data names (normalised), read before the signature check: its partner's token
 * is the one that must have signed it (RBM_AGENTS_FILE). Undefined when the data names none.
 */
export function eventAgentId(data: Buffer): string | undefined {
  let decoded: unknown;
  try {
    decoded = JSON.parse(data.toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof decoded !== 'object' || decoded === null || Array.isArray(decoded) || !('agentId' in decoded)) return undefined;
  const { agentId } = decoded;
  return typeof agentId === 'string' && agentId.trim() ? normalizeAgentId(agentId) : undefined;
}

/** Strict base64 (standard or URL-safe alphabet, padding optional); null when it isn't base64. */
export function decodeBase64(value: string): Buffer | null {
  const normalized = value.replace(/-/g, '+').replace(/_/g, '/').replace(/=+$/, '');
  if (!/^[A-Za-z0-9+/]*$/.test(normalized) || normalized.length % 4 === 1) return null;
  const bytes = Buffer.from(normalized, 'base64');
  // Round-trip: rejects stray padding in the middle and non-canonical trailing bits.
  return bytes.toString('base64').replace(/=+$/, '') === normalized ? bytes : null;
}

function describeIssue(error: z.ZodError): string {
  const issue = error.issues[0];
  if (!issue) return 'invalid';
  return issue.path.length ? `${issue.path.join('.')}: ${issue.message}` : issue.message;
}
