// bench/results/summary.json: figures read from the results, null where a run did not measure them;
// and the deadline → SMS steps cut from a recorded revoke history.
import { readFileSync } from 'node:fs';
import proto from '@temporalio/proto';
import { expect, it } from 'vitest';
import { historyFigures, stepsOf } from '../../bench/lib/history.ts';
import type { BenchResults } from '../../bench/lib/results.ts';
import { summarize } from '../../bench/lib/summary.ts';
import type { PathRun } from '../../bench/scenarios/paths.ts';

type Event = proto.temporal.api.history.v1.IHistoryEvent;
const events = (name: string): Event[] =>
  proto.temporal.api.history.v1.History.fromObject(JSON.parse(readFileSync(new URL(`../histories/rules3/${name}.json`, import.meta.url), 'utf8'))).events ?? [];
const t = (e: Event | undefined) => Number(e?.eventTime?.seconds ?? 0) * 1000 + (e?.eventTime?.nanos ?? 0) / 1e6;

const run = (perSecond: number, p99?: number) =>
  ({ perSecond, n: 10, cpu: { foreign: 1, wall: 10, worker: 0.2, server: 0.5, postgres: 0.3, webhook: 0 }, deadlineToSms: p99 === undefined ? undefined : { p99 } }) as unknown as PathRun;

function results(): BenchResults {
  const revoked = historyFigures('g', events('revoked'));
  const delivered = historyFigures('d', events('delivered'));
  return {
    meta: { startedAt: '2026-12-01T00:00:00Z' },
    engines: {
      dev: {
        paths: { delivered: [run(9), run(8)], 'floor-signal': [run(10), run(10)], revoke: [run(6, 900)], 'floor-activities': [run(8)] },
        paced: { ratePerSecond: 3, revoke: [run(3, 300), run(3, 200), run(3, 250)] },
        history: { revoke: { canonical: [revoked, revoked], loaded: [] }, delivered: { canonical: [delivered], loaded: [] } },
      },
    },
    webhook: [],
    scale: [],
    sqlite: [],
  } as unknown as BenchResults;
}

it('the summary holds what the run measured and null for the rest', () => {
  const s = summarize(results(), 'npm run bench -- --engine dev');
  expect(s.actions).toMatchObject({ delivered: 4, revoke: 5, floor1: null, floor2: null });
  expect(s.ratio.delivered).toEqual({ dev: 0.85, postgres: null });
  expect(s.ratio.revoke).toEqual({ dev: 0.75, postgres: null });
  expect(s.p99DeadlineToSmsMs).toEqual({ dev: 250, postgres: null });
  expect(s.p99DeadlineToSmsSaturatingMs.dev).toBe(900);
  expect(s.othersCpuPercent.dev).toBe(10);
  expect(s.cpuMsPerMessage.dev?.revoke).toEqual({ worker: 20, server: 50, postgres: 30, webhook: 0 });
  expect(s.scale.workerRssMiB).toEqual({ '20000': null, '100000': null });
  expect(s.scale.engine).toBeNull();
});

it('the deadline → SMS steps of a revoke history add up from TimerFired to the SMS completed', () => {
  const ev = events('revoked');
  const fired = ev.find((e) => e.eventType === proto.temporal.api.enums.v1.EventType.EVENT_TYPE_TIMER_FIRED);
  const deadline = t(fired) - 5;
  const steps = stepsOf(ev, deadline);
  expect(steps).toBeDefined();
  const lastDone = ev.filter((e) => e.eventType === proto.temporal.api.enums.v1.EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED).at(-1);
  const sum = Object.values(steps ?? {}).reduce((a, b) => a + b, 0);
  expect(steps?.['timer-fire']).toBeCloseTo(5, 3);
  expect(sum).toBeCloseTo(t(lastDone) - deadline, 3);
  expect(stepsOf(events('delivered'), deadline)).toBeUndefined();
});

it('scale figures come from the checkpoints, those of a run cut short included', () => {
  const cp = (guards: number, worker: number) => ({ guards, asleepAtSeconds: 1, rss: { worker, server: 300 }, rssPeak: { worker, server: 300 }, postgres: { bytes: 1, bytesPerGuard: 30_000, pssMiB: 200 } });
  const cut = { ...results(), meta: { startedAt: '2026-12-01T00:00:00Z', scaleEngine: 'postgres' }, scaleCheckpoints: [cp(20_000, 480)] } as unknown as BenchResults;
  const partial = summarize(cut, 'npm run bench', false);
  expect(partial.complete).toBe(false);
  expect(partial.scale.engine).toBe('postgres');
  expect(partial.scale.workerRssMiB).toEqual({ '20000': 480, '100000': null });
  expect(partial.scale.wave['100000']).toBeNull();

  const wave = { guards: 10_000, at: '', beforeAllAsleep: false, drainSeconds: 600, deadlineToSms: { p99: 590_000 }, smsSends: 10_000 };
  const done = { ...cut, scaleCheckpoints: [cp(20_000, 480), cp(100_000, 500)], scale: [{ engine: 'postgres', guards: 100_000, checkpoints: [cp(20_000, 481), cp(100_000, 502)], wave, correct: true }] } as unknown as BenchResults;
  const s = summarize(done, 'npm run bench');
  expect(s.complete).toBe(true);
  expect(s.scale.workerRssMiB).toEqual({ '20000': 481, '100000': 502 });
  expect(s.scale.postgresBytesPerGuard['100000']).toBe(30_000);
  expect(s.scale.wave['100000']).toMatchObject({ guards: 10_000, drainSeconds: 600, p99DeadlineToSmsMs: 590_000 });
  expect(s.scale.correct).toEqual({ '20000': null, '100000': true });
});
