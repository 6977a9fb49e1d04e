// The Temporal floor the benchmarks hold the guard against (bench/README.md): the least a workflow
// has to do on each of the guard's two paths, with none of the guard's logic. They ride in the
// bench's own bundle (./index.ts) beside the guard, so the benchmark compares like with like.
import { condition, defineSignal, proxyActivities, setHandler, sleep } from '@temporalio/workflow';
import { ACTIVITY_ATTEMPT_TIMEOUT_MS } from '../../workflows/contract.ts';

/** The delivered path's minimum: the one signal that ends the race. */
export const floorDoneSignal = defineSignal('floorDone');

/** Floor 1 (delivered path): one timer raced against one signal. True if the signal won. */
export async function floorTimerOrSignal(timeoutMs: number): Promise<boolean> {
  let done = false;
  setHandler(floorDoneSignal, () => {
    done = true;
  });
  return condition(() => done, timeoutMs);
}

/** The floor's trivial activities (bench/lib/floor-activities.ts implements them). */
export interface FloorActivities {
  floorStep(step: number): Promise<number>;
}

// The same attempt timeout and retry shape as the guard's revoke activity.
const { floorStep } = proxyActivities<FloorActivities>({
  startToCloseTimeout: ACTIVITY_ATTEMPT_TIMEOUT_MS,
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '20s', maximumAttempts: 5 },
});

/**
 * Floor 2 (revoke path): sleep, then two trivial activities one after the other. It sleeps until an
 * absolute time, as the guard waits for staleAt (and, like the guard, sets no timer once it passed).
 */
export async function floorSleepThenTwoActivities(wakeAtMs: number): Promise<number> {
  const ms = wakeAtMs - Date.now(); // workflow time: deterministic
  if (ms > 0) await sleep(ms);
  const first = await floorStep(1);
  return first + (await floorStep(2));
}
