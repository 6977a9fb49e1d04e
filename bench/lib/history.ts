// Reads real workflow histories and turns them into figures: events per message, and where the time
// between the deadline and the last activity went (server queues, worker, activities).
import type { Client } from '@temporalio/client';
import proto from '@temporalio/proto';

const { temporal } = proto;
const ET = temporal.api.enums.v1.EventType;
type HistoryEvent = proto.temporal.api.history.v1.IHistoryEvent;

/** The legs a message's time is spent in, between consecutive history events. */
export const LEGS = ['timer-late', 'wft-queue', 'wft-run', 'activity-queue', 'activity-run', 'other'] as const;
export type Leg = (typeof LEGS)[number];

/**
 * The same time cut along the path's own steps (revoke path and floor 2 alike: a timer, then two
 * activities): deadline → TimerFired; → first activity scheduled (a workflow task); the first
 * activity (the revoke round trip); → second activity scheduled (a workflow task); the second
 * activity (the SMS round trip). The largest names what to work on.
 */
export const STEPS = ['timer-fire', 'wft-1', 'revoke', 'wft-2', 'sms'] as const;
export type Step = (typeof STEPS)[number];

/**
 * Billable Temporal Cloud actions, counted from a history as Temporal Cloud's "Actions" page lists
 * them: a workflow started, a signal, a timer started, each activity attempt (a retry is an attempt),
 * a search-attribute upsert, an update. (Queries bill too but leave no history event; markers and
 * workflow tasks are not actions.) https://docs.temporal.io/cloud/actions
 */
/** The attempt a local activity's marker records (its `data`, plain JSON written by the SDK's core). */
function localActivityAttempt(e: HistoryEvent): number {
  const data = e.markerRecordedEventAttributes?.details?.data?.payloads?.[0]?.data;
  try {
    const attempt = data ? (JSON.parse(Buffer.from(data).toString('utf8')) as { attempt?: unknown }).attempt : undefined;
    return typeof attempt === 'number' && attempt >= 1 ? attempt : 1;
  } catch {
    return 1;
  }
}

export function billableActions(events: HistoryEvent[]): number {
  let n = 0;
  // Every local activity that completed in one workflow task is one action together (their markers
  // name the task's completion). A retried local activity's backoff timer counts as a timer.
  const localActivityTasks = new Set<string>();
  for (const e of events) {
    switch (e.eventType) {
      case ET.EVENT_TYPE_MARKER_RECORDED:
        if (e.markerRecordedEventAttributes?.markerName === 'core_local_activity') {
          localActivityTasks.add(String(e.markerRecordedEventAttributes.workflowTaskCompletedEventId));
          n += localActivityAttempt(e) - 1; // each retry of a local activity is one more
        }
        break;
      case ET.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
      case ET.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
      case ET.EVENT_TYPE_TIMER_STARTED:
      case ET.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
      case ET.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
        n += 1;
        break;
      case ET.EVENT_TYPE_ACTIVITY_TASK_STARTED:
        n += e.activityTaskStartedEventAttributes?.attempt ?? 1; // the started event carries the last attempt
        break;
    }
  }
  return n + localActivityTasks.size;
}

export interface HistoryFigures {
  workflowId: string;
  events: number;
  /** billableActions(): what this message costs in Temporal Cloud actions. */
  actions: number;
  /** Event type names in order (short form, e.g. TIMER_STARTED). */
  types: string[];
  /**
   * From the deadline (staleAt / wakeAt) to the completion of the last activity, split by leg (ms).
   * Undefined when the history has no activity after a deadline.
   */
  afterDeadline?: Record<Leg, number> & { total: number };
  /** The same span by STEPS (ms); undefined without a timer and two activities. */
  steps?: Record<Step, number>;
}

function ms(t: { seconds?: unknown; nanos?: number | null } | null | undefined): number {
  if (!t) return NaN;
  const s = t.seconds as number | { toNumber(): number } | undefined;
  const seconds = typeof s === 'number' ? s : s ? s.toNumber() : 0;
  return seconds * 1000 + (t.nanos ?? 0) / 1e6;
}

const shortName = (e: HistoryEvent) => (ET[e.eventType ?? 0] ?? String(e.eventType)).replace(/^EVENT_TYPE_/, '');

/** Which leg the interval ending at `e` belongs to, given the event before it. */
function legOf(prev: HistoryEvent, e: HistoryEvent): Leg {
  const [p, c] = [prev.eventType, e.eventType];
  if (p === ET.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED && c === ET.EVENT_TYPE_WORKFLOW_TASK_STARTED) return 'wft-queue';
  if (p === ET.EVENT_TYPE_WORKFLOW_TASK_STARTED && c === ET.EVENT_TYPE_WORKFLOW_TASK_COMPLETED) return 'wft-run';
  if (p === ET.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED && c === ET.EVENT_TYPE_ACTIVITY_TASK_STARTED) return 'activity-queue';
  if (p === ET.EVENT_TYPE_ACTIVITY_TASK_STARTED && c === ET.EVENT_TYPE_ACTIVITY_TASK_COMPLETED) return 'activity-run';
  return 'other';
}

export function historyFigures(workflowId: string, events: HistoryEvent[], deadlineMs?: number): HistoryFigures {
  const figures: HistoryFigures = { workflowId, events: events.length, actions: billableActions(events), types: events.map(shortName) };
  if (deadlineMs === undefined) return figures;
  const lastActivityDone = events.map((e) => e.eventType).lastIndexOf(ET.EVENT_TYPE_ACTIVITY_TASK_COMPLETED);
  if (lastActivityDone < 0) return figures;
  const legs = Object.fromEntries(LEGS.map((l) => [l, 0])) as Record<Leg, number>;
  const fired = events.findIndex((e) => e.eventType === ET.EVENT_TYPE_TIMER_FIRED);
  // With a timer, the deadline's own lateness is the timer firing after it; without one (the first
  // workflow task ran after the deadline had passed), it all counts from the deadline onwards.
  const from = fired >= 0 ? fired : 0;
  let cursor = deadlineMs;
  if (fired >= 0) {
    const t = ms(events[fired]?.eventTime);
    legs['timer-late'] = Math.max(0, t - deadlineMs);
    cursor = Math.max(t, deadlineMs);
  }
  for (let i = from + 1; i <= lastActivityDone; i++) {
    const prev = events[i - 1] as HistoryEvent;
    const e = events[i] as HistoryEvent;
    const t = ms(e.eventTime);
    if (t <= cursor) continue;
    legs[legOf(prev, e)] += t - cursor;
    cursor = t;
  }
  const total = ms(events[lastActivityDone]?.eventTime) - deadlineMs;
  figures.afterDeadline = { ...legs, total };
  figures.steps = stepsOf(events, deadlineMs);
  return figures;
}

/** STEPS from a history: undefined unless it has a TimerFired and two completed activities after it. */
export function stepsOf(events: HistoryEvent[], deadlineMs: number): Record<Step, number> | undefined {
  const at = (i: number) => ms(events[i]?.eventTime);
  const fired = events.findIndex((e) => e.eventType === ET.EVENT_TYPE_TIMER_FIRED);
  if (fired < 0) return undefined;
  const after = (type: number, from: number) => events.findIndex((e, i) => i > from && e.eventType === type);
  const s1 = after(ET.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED, fired);
  const c1 = after(ET.EVENT_TYPE_ACTIVITY_TASK_COMPLETED, s1);
  const s2 = after(ET.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED, c1);
  const c2 = after(ET.EVENT_TYPE_ACTIVITY_TASK_COMPLETED, s2);
  if (s1 < 0 || c1 < 0 || s2 < 0 || c2 < 0) return undefined;
  return {
    'timer-fire': Math.max(0, at(fired) - deadlineMs),
    'wft-1': at(s1) - at(fired),
    revoke: at(c1) - at(s1),
    'wft-2': at(s2) - at(c1),
    sms: at(c2) - at(s2),
  };
}

export async function readHistory(client: Client, workflowId: string, deadlineMs?: number): Promise<HistoryFigures> {
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  return historyFigures(workflowId, (history.events ?? []) as HistoryEvent[], deadlineMs);
}
