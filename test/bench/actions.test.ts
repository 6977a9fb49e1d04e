// What a guarded message costs in Temporal Cloud actions, read from the recorded rules-4 histories
// (deferred, the default, and timer-started, RBM_GUARD_DEFER_START=off) with the bench's own counter
// (bench/lib/history.ts): the cost goals, held in CI.
import { readFileSync } from 'node:fs';
import proto from '@temporalio/proto';
import { describe, expect, it } from 'vitest';
import { billableActions } from '../../bench/lib/history.ts';

const events = (name: string, folder = 'rules4') =>
  (proto.temporal.api.history.v1.History.fromObject(JSON.parse(readFileSync(new URL(`../histories/${folder}/${name}.json`, import.meta.url), 'utf8'))).events ?? []);

it('timer-started, the delivered path costs 4 actions: start, timer, the DELIVERED signal, the outcome upsert', () => {
  expect(billableActions(events('delivered'))).toBe(4);
});

it('timer-started, the revoke → SMS path costs 5: start, timer, revoke, SMS, the outcome upsert (floor + 1)', () => {
  expect(billableActions(events('revoked'))).toBe(5);
});

it('each activity retry is an action: a revoke answered 503 then 200 costs one more', () => {
  expect(billableActions(events('revoke-5xx'))).toBe(6);
});

describe('deferred starts (the default, client/deferred-start.ts): no deadline timer', () => {
  const deferred = (name: string) => events(name, 'rules4-deferred');

  it('delivered costs 3: start, the DELIVERED signal-with-start, the outcome upsert', () => {
    expect(billableActions(deferred('delivered'))).toBe(3);
  });

  it('revoke → SMS costs 4: start, revoke, SMS, the outcome upsert', () => {
    expect(billableActions(deferred('revoked'))).toBe(4);
  });

  it('a cancel before the deadline costs 3: start, the update, the outcome upsert', () => {
    expect(billableActions(deferred('cancel'))).toBe(3);
  });

  it('no history of a guard that waits for its deadline starts a timer for it', () => {
    for (const name of ['delivered', 'revoked', 'cancel', 'read-first', 'duplicates']) {
      expect(deferred(name).filter((e) => e.eventType === proto.temporal.api.enums.v1.EventType.EVENT_TYPE_TIMER_STARTED), name).toEqual([]);
    }
  });
});
