// The outcome counter counts each guard run once, however often its workflow tasks report it: a task
// that reached the outcome and then failed (UnhandledCommand, a timeout) runs again and reports again.
import { describe, expect, it } from 'vitest';
import type { MetricCounter, MetricHistogram, MetricMeter, MetricTags } from '@temporalio/common';
import type { WorkflowInfo } from '@temporalio/workflow';
import { guardMetricSinks } from '../../worker/metric-sinks.ts';

/** A meter that keeps what was recorded, by metric name. */
function recordingMeter() {
  const recorded: { name: string; value: number; tags: MetricTags }[] = [];
  const metric = (name: string) => ({
    name,
    unit: undefined,
    description: undefined,
    valueType: 'int' as const,
    kind: 'counter' as const,
    add: (value: number, tags: MetricTags = {}) => void recorded.push({ name, value, tags }),
    record: (value: number, tags: MetricTags = {}) => void recorded.push({ name, value, tags }),
    withTags: () => metric(name),
  });
  const meter = {
    createCounter: (name: string) => metric(name) as unknown as MetricCounter,
    createHistogram: (name: string) => metric(name) as unknown as MetricHistogram,
  } as unknown as MetricMeter;
  return { meter, recorded };
}

const info = (runId: string) => ({ runId, namespace: 'default', taskQueue: 'q', workflowType: 'rbmGuard' }) as WorkflowInfo;

describe('guardMetricSinks', () => {
  it('counts a run\u2019s outcome once when a retried workflow task reports it again; other runs and outcomes count', () => {
    const { meter, recorded } = recordingMeter();
    const { outcome } = guardMetricSinks(meter).guardMetrics;
    expect(outcome.callDuringReplay).toBe(false);
    void outcome.fn(info('run-1'), 'DELIVERED', null);
    void outcome.fn(info('run-1'), 'DELIVERED', null); // the same task, run again after UnhandledCommand
    void outcome.fn(info('run-2'), 'FALLBACK_SENT', 1234);
    void outcome.fn(info('run-2'), 'FALLBACK_SENT', 1234);
    void outcome.fn(info('run-2'), 'DOUBLE_DELIVERY', null); // a later outcome of the same run is news
    const outcomes = recorded.filter((r) => r.name === 'rbm_guard_outcomes');
    expect(outcomes.map((r) => r.tags.outcome)).toEqual(['DELIVERED', 'FALLBACK_SENT', 'DOUBLE_DELIVERY']);
    expect(outcomes[0]!.tags).toMatchObject({ workflowType: 'rbmGuard', taskQueue: 'q', namespace: 'default' });
    expect(recorded.filter((r) => r.name === 'rbm_guard_stale_to_fallback').map((r) => r.value)).toEqual([1234]);
  });
});
