// The benchmark's own workflow bundle: the guard exactly as production bundles it, beside the floor
// workflows it is measured against. The production bundle (workflows/index.ts) carries no floors.
export { rbmGuard } from '../../workflows/guard.ts';
export { floorSleepThenTwoActivities, floorTimerOrSignal } from './floor.ts';
