// The contract's wire types as zod schemas, for what TypeScript types cannot give: JSON Schema (the
// generated contract, the OpenAPI document) and checks at the HTTP edge. workflows/contract.ts stays
// the one definition: each schema below is checked by tsc to infer exactly the contract's type, so a
// field added there and not here (or the other way round) fails the type check.
import { z } from 'zod';
import {
  ALL_STATES,
  FALLBACK_CHANNELS,
  GUARD_RULES,
  MESSAGE_TRAFFIC_TYPES,
  ON_UNKNOWN,
  OUTCOMES,
  PRIORITY,
  type CancelRequest,
  type ExtendRequest,
  type NewGuardInput,
  type GuardPolicy,
  type GuardStatus,
  type RbmEventSignal,
  type TimelineEntry,
  type TrackedMessage,
} from '../workflows/contract.ts';

const dateTime = z.string().meta({ format: 'date-time' });
export const guardStateSchema = z.enum(ALL_STATES);
export const outcomeSchema = z.enum(OUTCOMES);

export const guardPolicySchema = z.object({
  graceMs: z.number().int().min(0),
  maxRevokeRounds: z.number().int().min(1),
  revokeAttempts: z.number().int().min(1),
  fallbackAttempts: z.number().int().min(1),
  onUnknown: z.enum(ON_UNKNOWN),
  lingerMs: z.number().int().min(0),
});

export const trackedMessageSchema = z.object({
  agentId: z.string().min(1),
  messageId: z.string().min(1),
  phone: z.string(),
  staleAt: dateTime,
  sentAt: dateTime.optional(),
  platformExpireAt: dateTime.nullable().optional(),
  trafficType: z.enum(MESSAGE_TRAFFIC_TYPES),
  fallback: z.object({ channel: z.enum(FALLBACK_CHANNELS), text: z.string() }).nullable(),
  send: z.object({ text: z.string() }).nullable(),
  policy: guardPolicySchema,
  priority: z.number().int().min(PRIORITY.min).max(PRIORITY.max).optional(),
});

export const guardInputSchema = z.object({
  agentId: z.string().min(1),
  messageId: z.string().min(1),
  // Required: a starter that left it out would get rules 1 ("404 means delivered").
  rules: z.literal(GUARD_RULES),
  message: trackedMessageSchema.optional(),
  orphanAfterMs: z.number().int().min(0).optional(),
  deferred: z.boolean().optional(),
});

export const timelineEntrySchema = z.object({ at: dateTime, state: guardStateSchema, event: z.string(), reason: z.string() });

export const guardStatusSchema = z.object({
  workflowId: z.string(),
  agentId: z.string(),
  messageId: z.string(),
  state: guardStateSchema,
  outcome: outcomeSchema.nullable(),
  staleAt: dateTime.nullable(),
  revokeRounds: z.number().int(),
  timeline: z.array(timelineEntrySchema),
});

export const cancelRequestSchema = z.object({ reason: z.string().max(500).optional() });
export const extendRequestSchema = z.object({ staleAt: dateTime });
export const rbmEventSignalSchema = z.object({ eventId: z.string(), sendTime: z.string().optional() });

// ---- the schemas infer exactly the contract's types (checked by tsc, nothing at run time) ----
// Mutual assignability misses an optional field on one side only, so the keys must match too.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? ([keyof A] extends [keyof B] ? ([keyof B] extends [keyof A] ? true : false) : false) : false) : false;
const same = <T extends true>(): T => true as T;
void [
  same<Same<z.infer<typeof guardPolicySchema>, GuardPolicy>>(),
  same<Same<z.infer<typeof trackedMessageSchema>, TrackedMessage>>(),
  same<Same<z.infer<typeof guardInputSchema>, NewGuardInput>>(),
  same<Same<z.infer<typeof timelineEntrySchema>, TimelineEntry>>(),
  same<Same<z.infer<typeof guardStatusSchema>, GuardStatus>>(),
  same<Same<z.infer<typeof cancelRequestSchema>, CancelRequest>>(),
  same<Same<z.infer<typeof extendRequestSchema>, ExtendRequest>>(),
  same<Same<z.infer<typeof rbmEventSignalSchema>, RbmEventSignal>>(),
];

/** JSON Schema (draft 2020-12) of a schema's wire form: what a client in another language sends or reads. */
export function jsonSchemaOf(schema: z.ZodType, io: 'input' | 'output' = 'input'): Record<string, unknown> {
  return z.toJSONSchema(schema, { io, target: 'draft-2020-12' }) as Record<string, unknown>;
}
