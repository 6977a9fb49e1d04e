// What "the same message" means for POST /v1/guards on a guard that already exists (200, not 409):
// the request, resolved as of the moment the guard first got its message, gives exactly the tracked
// message the guard holds. So a retried body with `staleIn: "10m"` and no `sentAt` is the same
// message (it resolves from the first track's sentAt, to the same deadline), while any other phone,
// text, deadline, traffic type, policy or TTL is a different one. The guard's message is read from
// its history (the start input, or the first `track` signal of a guard an early RBM event started),
// decrypted with the client's own codec: nothing extra is stored anywhere.
import { isDeepStrictEqual } from 'node:util';
import type { Client } from '@temporalio/client';
import { decodeFromPayloadsAtIndex } from '@temporalio/common/lib/internal-non-workflow/index.js';
// A CommonJS package whose exports Node's ESM loader cannot list: default import, then destructure.
import proto from '@temporalio/proto';
import { trackSignal, type GuardInput, type TrackedMessage } from '../../workflows/contract.ts';
import { parseTrackInput } from '../../client/track-input.ts';

const { EventType } = proto.temporal.api.enums.v1;

export interface HeldMessage {
  message: TrackedMessage;
  /** True when the guard was started with it; false when a `track` signal brought it (event-started guard). */
  fromStart: boolean;
  /** How many `track` signals the history holds (each POST of an existing guard sends one). */
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
    const page = await client.workflowService.getWorkflowExecutionHistory({
      namespace: client.options.namespace,
      execution: { workflowId },
      maximumPageSize: 200,
      nextPageToken,
    });
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

/** True when `body` (already valid: track() accepted it) is the message the guard holds. */
export function isSameMessage(body: unknown, held: TrackedMessage): boolean {
  const asOf = held.sentAt ? new Date(held.sentAt) : new Date(held.staleAt);
  try {
    const parsed = parseTrackInput(body, asOf);
    // A guard tracked before messages carried a priority holds none: the rest must match.
    if (held.priority === undefined) delete parsed.priority;
    return isDeepStrictEqual(parsed, held);
  } catch {
    return false; // valid now, but not as of the first track: not the same request
  }
}
