// bench/results/summary.json: the run's headline figures in one flat-ish object, every one read from
// the results (null where this run did not measure it: never a default, never a figure from elsewhere).
import type { EngineName } from '../../service/engine/select.ts';
import type { PathKind, PathRun } from '../scenarios/paths.ts';
import { STEPS, type HistoryFigures, type Step } from './history.ts';
import { engineRuns, type BenchResults, type EngineRun } from './results.ts';
import { spread, type Spread } from './stats.ts';
import type { ScaleRun } from '../scenarios/scale.ts';
import type { WaveRun } from '../scenarios/wave.ts';

/** Per-run ratios guard/floor (runs are paired by index: they ran side by side). */
export function ratios(guard: PathRun[] | undefined, floor: PathRun[] | undefined): Spread {
  const out: number[] = [];
  for (let i = 0; i < Math.min(guard?.length ?? 0, floor?.length ?? 0); i++) out.push((guard?.[i] as PathRun).perSecond / (floor?.[i] as PathRun).perSecond);
  return spread(out);
}

/** The most frequent value (ties: the smaller); NaN when empty. */
export function mode(values: number[]): number {
  const counts = new Map<number, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  return [...counts].sort((a, b) => b[1] - a[1] || a[0] - b[0])[0]?.[0] ?? NaN;
}

/** Median ms per STEP over the histories that have them, and the largest step. */
export function stepMedians(figs: readonly HistoryFigures[] | undefined): { steps: Record<Step, number>; largest: Step; n: number } | undefined {
  const withSteps = (figs ?? []).map((f) => f.steps).filter((x): x is Record<Step, number> => Boolean(x));
  if (!withSteps.length) return undefined;
  const steps = Object.fromEntries(STEPS.map((k) => [k, spread(withSteps.map((x) => x[k])).median])) as Record<Step, number>;
  const largest = STEPS.reduce((a, b) => (steps[b] > steps[a] ? b : a));
  return { steps, largest, n: withSteps.length };
}

const num = (v: number): number | null => (Number.isFinite(v) ? Math.round(v * 1000) / 1000 : null);
const perEngine = <T>(runs: [EngineName, EngineRun][], f: (r: EngineRun) => T): Record<EngineName, T | null> => {
  const out: Record<EngineName, T | null> = { dev: null, postgres: null };
  for (const [name, run] of runs) out[name] = f(run);
  return out;
};

export interface Summary {
  startedAt: string;
  command: string;
  /** False while the run is going, or when it was cut short. */
  complete: boolean;
  actions: { delivered: number | null; revoke: number | null; floor1: number | null; floor2: number | null; source: string | null };
  ratio: { delivered: Record<EngineName, number | null>; revoke: Record<EngineName, number | null> };
  /** Paced load (half the revoke path's saturating throughput), median of the runs' p99. */
  p99DeadlineToSmsMs: Record<EngineName, number | null>;
  /** The same at the closed loop's saturating load. */
  p99DeadlineToSmsSaturatingMs: Record<EngineName, number | null>;
  /** Deadline → SMS on the revoke path, median ms per step from the paced runs' histories (else the saturating ones'), and the largest step. */
  legs: Record<EngineName, { steps: Record<Step, number>; largest: Step; histories: number } | null>;
  /** CPU ms per message in the saturating runs (median over runs): the sizing section's measured inputs. */
  cpuMsPerMessage: Record<EngineName, Partial<Record<PathKind, { worker: number | null; server: number | null; postgres: number | null; webhook: number | null }>> | null>;
  /** Everything else on the machine during scenarios 1–3: median percent of one core. */
  othersCpuPercent: Record<EngineName, number | null>;
  /** The waves scenario (bench/scenarios/wave.ts): drain rates and deadline → SMS p99 of each wave. */
  wave: {
    guardPerS: number | null;
    floorPerS: number | null;
    /** guard ÷ floor drain rate, same stack, same count, one after the other. */
    guardOverFloor: number | null;
    p99Ms: number | null;
    mixed: { otpP99Ms: number | null; promoP99Ms: number | null };
    twoWorkers: { guardPerS: number | null };
    correct: boolean | null;
  };
  smsPacing: { limitPerS: number | null; maxObservedPerS: number | null; status429: number | null };
  scale: {
    engine: string | null;
    workerRssMiB: Record<string, number | null>;
    serverRssMiB: Record<string, number | null>;
    postgresPssMiB: Record<string, number | null>;
    postgresBytesPerGuard: Record<string, number | null>;
    wave: Record<string, { guards: number; drainSeconds: number | null; p99DeadlineToSmsMs: number | null; beforeAllAsleep: boolean } | null>;
    correct: Record<string, boolean | null>;
  };
}

/** The scale sizes always listed (the two), plus any other size this run measured. */
const SCALE_SIZES = ['20000', '100000'];

export function summarize(results: BenchResults, command: string, complete = true): Summary {
  const runs = engineRuns(results);
  const hist = (kind: 'delivered' | 'revoke' | 'floor-signal' | 'floor-activities') => {
    for (const [name, run] of runs) {
      const a = (run.history[kind]?.canonical ?? []).map((f) => f.actions);
      if (a.length) return { value: mode(a), name };
    }
    return undefined;
  };
  const a = { delivered: hist('delivered'), revoke: hist('revoke'), floor1: hist('floor-signal'), floor2: hist('floor-activities') };
  const p99 = (r: PathRun[] | undefined) => num(spread((r ?? []).map((x) => x.deadlineToSms?.p99 ?? NaN)).median);
  // Per checkpoint size (memory, disk), and per run's largest size (the wave, the outcomes).
  const bySize = <T>(f: (c: ScaleRun['checkpoints'][number]) => T) => {
    const out: Record<string, T | null> = Object.fromEntries(SCALE_SIZES.map((k) => [k, null]));
    const all = [...(results.scaleCheckpoints ?? []), ...results.scale.flatMap((r) => r.checkpoints ?? [])];
    for (const c of all) out[String(c.guards)] = f(c); // the last one measured wins
    return out;
  };
  const byRun = <T>(f: (r: ScaleRun) => T) => {
    const out: Record<string, T | null> = Object.fromEntries(SCALE_SIZES.map((k) => [k, null]));
    for (const r of results.scale) out[String(r.guards)] = f(r);
    return out;
  };
  const wave = (kind: WaveRun['kind']) => (results.waves ?? []).filter((w) => w.kind === kind).slice(-1)[0];
  const [floorWave, guardWave, mixedWave, twoWave] = [wave('floor'), wave('guard'), wave('mixed'), wave('twoWorkers')];
  return {
    startedAt: results.meta.startedAt,
    command,
    complete,
    actions: {
      delivered: a.delivered?.value ?? null,
      revoke: a.revoke?.value ?? null,
      floor1: a.floor1?.value ?? null,
      floor2: a.floor2?.value ?? null,
      source: a.delivered || a.revoke ? `typical of 20 histories per path at 4 in flight (${a.delivered?.name ?? a.revoke?.name} engine), bench/lib/history.ts billableActions` : null,
    },
    ratio: {
      delivered: perEngine(runs, (r) => num(ratios(r.paths.delivered, r.paths['floor-signal']).median)),
      revoke: perEngine(runs, (r) => num(ratios(r.paths.revoke, r.paths['floor-activities']).median)),
    },
    p99DeadlineToSmsMs: perEngine(runs, (r) => p99(r.paced?.revoke)),
    p99DeadlineToSmsSaturatingMs: perEngine(runs, (r) => p99(r.paths.revoke)),
    legs: perEngine(runs, (r) => {
      const m = stepMedians(r.history.revoke?.paced?.length ? r.history.revoke.paced : r.history.revoke?.loaded);
      return m ? { steps: Object.fromEntries(STEPS.map((k) => [k, Math.round(m.steps[k])])) as Record<Step, number>, largest: m.largest, histories: m.n } : null;
    }),
    cpuMsPerMessage: perEngine(runs, (r) => {
      const out: Partial<Record<PathKind, { worker: number | null; server: number | null; postgres: number | null; webhook: number | null }>> = {};
      for (const [kind, list] of Object.entries(r.paths) as [PathKind, PathRun[]][]) {
        const per = (k: 'worker' | 'server' | 'postgres' | 'webhook') => num(spread(list.map((x) => (1000 * (x.cpu[k] ?? NaN)) / x.n)).median);
        out[kind] = { worker: per('worker'), server: per('server'), postgres: per('postgres'), webhook: per('webhook') };
      }
      return out;
    }),
    othersCpuPercent: perEngine(runs, (r) => {
      const all = Object.values(r.paths).flat();
      return all.length ? num(spread(all.map((x) => (100 * x.cpu.foreign) / x.cpu.wall)).median) : null;
    }),
    wave: {
      guardPerS: num(guardWave?.perSecond ?? NaN),
      floorPerS: num(floorWave?.perSecond ?? NaN),
      guardOverFloor: num((guardWave?.perSecond ?? NaN) / (floorWave?.perSecond ?? NaN)),
      p99Ms: num(guardWave?.latency.p99 ?? NaN),
      mixed: { otpP99Ms: num(mixedWave?.byType?.AUTHENTICATION?.p99 ?? NaN), promoP99Ms: num(mixedWave?.byType?.PROMOTION?.p99 ?? NaN) },
      twoWorkers: { guardPerS: num(twoWave?.perSecond ?? NaN) },
      correct: results.waves?.length ? results.waves.every((w) => w.correct) : null,
    },
    smsPacing: {
      limitPerS: mixedWave?.pacing?.limitPerS ?? null,
      maxObservedPerS: mixedWave?.pacing?.maxObservedPerS ?? null,
      status429: mixedWave?.pacing?.status429 ?? null,
    },
    scale: {
      engine: results.scale[0]?.engine ?? (results.scale.length || results.scaleCheckpoints?.length ? (results.meta.scaleEngine ?? 'dev') : null),
      workerRssMiB: bySize((c) => num(c.rss.worker)),
      serverRssMiB: bySize((c) => num(c.rss.server)),
      postgresPssMiB: bySize((c) => num(c.postgres?.pssMiB ?? NaN)),
      postgresBytesPerGuard: bySize((c) => num(c.postgres?.bytesPerGuard ?? NaN)),
      wave: byRun((r) =>
        r.wave ? { guards: r.wave.guards, drainSeconds: num(r.wave.drainSeconds), p99DeadlineToSmsMs: num(r.wave.deadlineToSms.p99), beforeAllAsleep: r.wave.beforeAllAsleep } : null,
      ),
      correct: byRun((r) => r.correct),
    },
  };
}
