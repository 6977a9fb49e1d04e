// The Temporal floor the benchmarks hold the guard against (bench/README.md): the least a workflow
// has to do on each of the guard's two paths, with none of the guard's logic. They ride in the same
// bundle as the guard so the benchmark compares like with like; nothing in production starts them.
import { condition, defineSignal, proxyActivities, setHandler, sleep } from '@temporalio/workflow';

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

/** The floor's trivial activities (bench/floor-worker.ts implements them). */
export interface FloorActivities {
  floorStep(step: number): Promise<number>;
}

// The same timeout and retry shape the guard's revoke and SMS activities use.
const { floorStep } = proxyActivities<FloorActivities>({
  startToCloseTimeout: '60s',
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
