// What "the same message" means when a message id is tracked again: the request, resolved as of the
// moment the guard first got its message, gives exactly the tracked message the guard holds. So a
// retried body with `staleIn: "10m"` and no `sentAt` is the same message (it resolves from the first
// track's sentAt, to the same deadline), while any other phone, text, deadline, traffic type, policy
// or TTL is a different one. GuardClient.track() owns the rule (the HTTP API and the CLI go through
// it); the Python and Go clients port it. The guard's message is read from its history (the start
// input, or the first `track` signal of a guard an early RBM event started), decrypted with the
// client's own codec: nothing extra is stored anywhere.
import { isDeepStrictEqual } from 'node:util';
import type { Client } from '@temporalio/client';
import { decodeFromPayloadsAtIndex } from '@temporalio/common/lib/internal-non-workflow/index.js';
// A CommonJS package whose exports Node's ESM loader cannot list: default import, then destructure.
import proto from '@temporalio/proto';
import { trackSignal, type GuardInput, type TrackedMessage } from '../workflows/contract.ts';
import { GRPC, grpcCode } from './temporal-errors.ts';
import { parseTrackInput } from './track-input.ts';

const { EventType } = proto.temporal.api.enums.v1;

/** When what differs cannot be named (the request is not valid as of the first track). */
export const ANY_DIFFERENCE = 'phone, text, deadline, traffic type, policy or TTL';

/** A TrackedMessage field in the words an error uses (the Python and Go clients use the same). */
const FIELD_WORDS: Record<keyof TrackedMessage, string> = {
  agentId: 'agent',
  messageId: 'message id',
  phone: 'phone',
  staleAt: 'deadline',
  sentAt: 'sent time',
  platformExpireAt: 'TTL',
  trafficType: 'traffic type',
  fallback: 'fallback text',
  send: 'text',
  policy: 'policy',
  priority: 'priority',
};

/** track() on an existing guard whose message is another one, or whose history is gone: nothing changed. */
export class DifferentMessageError extends Error {
  readonly workflowId: string;
  /** What differs, in words (`phone`, `deadline`, …); null when the guard's history is gone (nothing to compare). */
  readonly differences: readonly string[] | null;
  constructor(workflowId: string, differences: readonly string[] | null) {
    super(
      differences
        ? `${workflowId}: a guard for this message id holds a different message (${differences.join(', ')})`
        : `${workflowId}: this message id was guarded before, and that guard's history is gone`,
    );
    this.name = 'DifferentMessageError';
    this.workflowId = workflowId;
    this.differences = differences;
  }
}

export interface HeldMessage {
  message: TrackedMessage;
  /** True when the guard was started with it; false when a `track` signal brought it (event-started guard). */
  fromStart: boolean;
  /** How many `track` signals the history holds (each track of an existing guard sends one). */
  trackSignals: number;
}

/**
 * The message a guard holds, from its history; null if it has none yet or the history is gone. A
 * signal that reaches a guard while its worker runs a workflow task enters the history only when that
 * task completes, so for an event-started guard this re-reads until no task is in flight (the
 * caller's deadline bounds it): the count of `track` signals then includes the caller's own.
 */
export async function heldMessage(client: Client, workflowId: string): Promise<HeldMessage | null> {
  for (let wait = 20; ; wait = Math.min(wait * 2, 200)) {
    const read = await readHistory(client, workflowId);
    if (read.held?.fromStart || !read.taskInFlight) return read.held;
    await new Promise((r) => setTimeout(r, wait));
  }
}

async function readHistory(client: Client, workflowId: string): Promise<{ held: HeldMessage | null; taskInFlight: boolean }> {
  const converter = client.options.loadedDataConverter;
  let held: HeldMessage | null = null;
  let taskInFlight = false;
  let nextPageToken: Uint8Array | undefined;
  do {
    let page;
    try {
      page = await client.workflowService.getWorkflowExecutionHistory({
        namespace: client.options.namespace,
        execution: { workflowId },
        maximumPageSize: 200,
        nextPageToken,
      });
    } catch (err) {
      // Removed after its retention between the start and this read: nothing to compare with.
      if (grpcCode(err) === GRPC.NOT_FOUND) return { held: null, taskInFlight: false };
      throw err;
    }
    for (const event of page.history?.events ?? []) {
      if (event.eventType === EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED) {
        const input = await decodeFromPayloadsAtIndex<GuardInput>(converter, 0, event.workflowExecutionStartedEventAttributes?.input?.payloads);
        // Started with its message: that is all there is to know.
        if (input.message) return { held: { message: input.message, fromStart: true, trackSignals: 0 }, taskInFlight: false };
      } else if (event.eventType === EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED && event.workflowExecutionSignaledEventAttributes?.signalName === trackSignal.name) {
        if (held) held.trackSignals++;
        else held = { message: await decodeFromPayloadsAtIndex<TrackedMessage>(converter, 0, event.workflowExecutionSignaledEventAttributes.input?.payloads), fromStart: false, trackSignals: 1 };
      } else if (event.eventType === EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED) {
        taskInFlight = true;
      } else if (TASK_ENDED.has(event.eventType ?? 0)) {
        taskInFlight = false;
      }
    }
    nextPageToken = page.nextPageToken?.length ? page.nextPageToken : undefined;
  } while (nextPageToken);
  return { held, taskInFlight };
}

const TASK_ENDED = new Set<number>([
  EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
  EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED,
  EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT,
]);

/**
 * What differs between `body` (already valid: track() accepted it), resolved as of the held message's
 * first track, and the held message, in words; empty when it is the same message.
 */
export function messageDifferences(body: unknown, held: TrackedMessage): string[] {
  const asOf = held.sentAt ? new Date(held.sentAt) : new Date(held.staleAt);
  let parsed: TrackedMessage;
  try {
    parsed = parseTrackInput(body, asOf);
  } catch {
    return [ANY_DIFFERENCE]; // valid now, but not as of the first track: not the same request
  }
  // A guard tracked before messages carried a priority holds none: the rest must match.
  if (held.priority === undefined) delete parsed.priority;
  const keys = new Set([...Object.keys(parsed), ...Object.keys(held)] as (keyof TrackedMessage)[]);
  return [...keys].filter((key) => !(key in parsed && key in held && isDeepStrictEqual(parsed[key], held[key]))).map((key) => FIELD_WORDS[key] ?? key);
}

/** True when `body` (already valid: track() accepted it) is the message the guard holds. */
export function isSameMessage(body: unknown, held: TrackedMessage): boolean {
  return messageDifferences(body, held).length === 0;
}
