// The floor's trivial activity (bench/workflows/floor.ts): the least an activity can be.
import type { FloorActivities } from '../workflows/floor.ts';

export const floorActivities: FloorActivities = {
  async floorStep(step) {
    return step;
  },
};
