// The guard's outcome metrics, counted by the worker once per guard run. Workflow code reports
// through a sink (contract.ts: GuardSinks); a workflow task that reached an outcome and then failed
// (UnhandledCommand when a signal lands as the guard completes, a task timeout) runs again and
// reports again, so the worker remembers the runs it counted. Exported beside the SDK's metrics on
// the runtime's Prometheus endpoint, with the tags the workflow meter gave them.
import type { MetricMeter } from '@temporalio/common';
import { Runtime, type InjectedSinks } from '@temporalio/worker';
import type { GuardSinks } from '../workflows/contract.ts';

/**
 * Runs remembered: far more than run at once on a worker (a retried task comes within seconds), and
 * small (about 100 bytes each). A run forgotten and retried much later would count twice: the
 * oldest go first.
 */
const REMEMBERED_RUNS = 50_000;

/** The sinks for Worker.create; `meter` is the runtime's (exported on METRICS_PORT) unless a test reads its own. */
export function guardMetricSinks(meter: MetricMeter = Runtime.instance().metricMeter): InjectedSinks<GuardSinks> {
  const outcomes = meter.createCounter('rbm_guard_outcomes', '1', 'guards reaching each outcome');
  const staleToFallback = meter.createHistogram('rbm_guard_stale_to_fallback', 'int', 'ms', 'staleAt → SMS accepted');
  const counted = new Set<string>();
  return {
    guardMetrics: {
      outcome: {
        fn(info, outcome, staleToFallbackMs) {
          const key = `${info.runId} ${outcome}`;
          if (counted.has(key)) return;
          if (counted.size >= REMEMBERED_RUNS) counted.delete(counted.values().next().value!);
          counted.add(key);
          const tags = { namespace: info.namespace, taskQueue: info.taskQueue, workflowType: info.workflowType };
          outcomes.add(1, { ...tags, outcome });
          if (staleToFallbackMs !== null) staleToFallback.record(staleToFallbackMs, tags);
        },
        callDuringReplay: false,
      },
    },
  };
}
