// What a guarded message costs in Temporal Cloud actions, read from the recorded rules-2 histories
// with the bench's own counter (bench/lib/history.ts): the cost issue's goals, held in CI.
import { readFileSync } from 'node:fs';
import proto from '@temporalio/proto';
import { expect, it } from 'vitest';
import { billableActions } from '../../bench/lib/history.ts';

const events = (name: string) =>
  (proto.temporal.api.history.v1.History.fromObject(JSON.parse(readFileSync(new URL(`../histories/rules4/${name}.json`, import.meta.url), 'utf8'))).events ?? []);

it('the delivered path costs 4 actions: start, timer, the DELIVERED signal, the outcome upsert', () => {
  expect(billableActions(events('delivered'))).toBe(4);
});

it('the revoke → SMS path costs 5: start, timer, revoke, SMS, the outcome upsert (floor + 1)', () => {
  expect(billableActions(events('revoked'))).toBe(5);
});

it('each activity retry is an action: a revoke answered 503 then 200 costs one more', () => {
  expect(billableActions(events('revoke-5xx'))).toBe(6);
});
