// Is a guard asleep (its first workflow task ran, its timer set)? Two probes, because neither is
// enough alone: the task queue's backlog misses tasks the server has not yet handed to matching
// (a smoke run counted 500 fresh guards "asleep" 4 s after tracking them), and describing every
// execution of a 100,000-guard pile is too slow to poll.
import type { Client } from '@temporalio/client';
import proto from '@temporalio/proto';

const { temporal } = proto;

/** Workflow tasks waiting in the task queue (matching's approximate backlog). */
export async function workflowBacklog(client: Client, taskQueue: string, namespace = 'default'): Promise<number> {
  const res = await client.workflowService.describeTaskQueue({
    namespace,
    taskQueue: { name: taskQueue, kind: temporal.api.enums.v1.TaskQueueKind.TASK_QUEUE_KIND_NORMAL },
    taskQueueType: temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
    reportStats: true,
  });
  const count = res.stats?.approximateBacklogCount;
  return typeof count === 'number' ? count : Number(count ?? 0);
}

/** How many of these executions still have a workflow task scheduled or running. */
export async function pendingWorkflowTasks(client: Client, workflowIds: readonly string[], namespace = 'default'): Promise<number> {
  const pending = await Promise.all(
    workflowIds.map((workflowId) => client.workflowService.describeWorkflowExecution({ namespace, execution: { workflowId } }).then((d) => (d.pendingWorkflowTask ? 1 : 0))),
  );
  return pending.reduce<number>((a, b) => a + b, 0);
}
