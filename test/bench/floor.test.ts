// The benchmark's floor workflows (bench/workflows/floor.ts) run from the bench's bundle: the
// timer-vs-signal race ends on the signal, the sleep-then-two-activities one returns both steps.
import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { afterAll, beforeAll, expect, inject, it } from 'vitest';
import { floorActivities } from '../../bench/lib/floor-activities.ts';
import { floorDoneSignal, floorSleepThenTwoActivities, floorTimerOrSignal } from '../../bench/workflows/floor.ts';

let worker: Worker;
let running: Promise<void>;
let nativeConnection: NativeConnection;
let client: Client;
const taskQueue = `floor-${randomUUID()}`;

beforeAll(async () => {
  const address = inject('temporalAddress');
  nativeConnection = await NativeConnection.connect({ address });
  worker = await Worker.create({
    connection: nativeConnection,
    taskQueue,
    workflowBundle: { codePath: inject('benchBundlePath') },
    activities: floorActivities,
  });
  running = worker.run();
  client = new Client({ connection: await Connection.connect({ address }) });
});

afterAll(async () => {
  worker?.shutdown();
  await running;
  await nativeConnection?.close();
  await client?.connection.close();
});

it('floor 1: the signal wins the race against the timer', async () => {
  const handle = await client.workflow.start(floorTimerOrSignal, { workflowId: `floor1-${randomUUID()}`, taskQueue, args: [60_000] });
  await handle.signal(floorDoneSignal);
  expect(await handle.result()).toBe(true);
});

it('floor 1: without the signal the timer ends it', async () => {
  const handle = await client.workflow.start(floorTimerOrSignal, { workflowId: `floor1-${randomUUID()}`, taskQueue, args: [1] });
  expect(await handle.result()).toBe(false);
});

it('floor 2: sleeps, then runs its two activities in turn', async () => {
  const handle = await client.workflow.start(floorSleepThenTwoActivities, { workflowId: `floor2-${randomUUID()}`, taskQueue, args: [Date.now() + 100] });
  expect(await handle.result()).toBe(3);
  const types = (await handle.fetchHistory()).events?.map((e) => e.activityTaskScheduledEventAttributes?.activityType?.name).filter(Boolean);
  expect(types).toEqual(['floorStep', 'floorStep']);
});
