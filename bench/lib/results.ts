// The shape of bench/results/<timestamp>.json, shared by bench.ts (which fills it) and report.ts.
import type { WaveRun } from '../scenarios/wave.ts';
import type { WebhookBenchResult } from '../webhook-bench.ts';
import type { CrashCheck } from '../scenarios/crash.ts';
import type { PathKind, PathRun } from '../scenarios/paths.ts';
import type { Checkpoint, ScaleRun } from '../scenarios/scale.ts';
import type { ProfileSummary } from './cpuprofile.ts';
import type { HistoryFigures } from './history.ts';
import type { EngineName } from '../../service/engine/select.ts';

/** Scenarios 1–3, the paced latency run and the histories of one engine's stack. */
export interface EngineRun {
  paths: Partial<Record<PathKind, PathRun[]>>;
  paced?: { ratePerSecond: number; revoke: PathRun[] };
  /** canonical: 20 at 4 in flight; loaded: samples of the saturating runs; paced: of the paced runs (revoke). */
  history: Partial<Record<PathKind, { canonical: HistoryFigures[]; loaded: HistoryFigures[]; paced?: HistoryFigures[] }>>;
  /** RSS (MiB) once the stack is up, before any load. */
  rssIdle?: { worker: number; server: number; postgres?: number };
}

/** The SQLite settings the sqlite scenario compares (the first is the embedded default). */
export const SQLITE_SETTINGS: { name: string; pragmas: string[]; note: string }[] = [
  { name: 'WAL + synchronous=NORMAL', pragmas: ['journal_mode=WAL', 'synchronous=NORMAL'], note: 'commit = WAL append, fsync only at checkpoints' },
  { name: 'WAL + synchronous=FULL', pragmas: ['journal_mode=WAL', 'synchronous=FULL'], note: 'fsync of the WAL at every commit' },
  { name: 'rollback journal (SQLite default)', pragmas: [], note: 'journal_mode=DELETE, synchronous=FULL' },
];

// ---- results --------------------------------------------------------------------------------------
export interface BenchResults {
  meta: {
    startedAt: string;
    finishedAt?: string;
    seconds?: number;
    machine: { cpus: number; cpuModel: string; memGiB: number; node: string; temporal: string };
    flags: Record<string, unknown>;
    n: number;
    runs: number;
    concurrency: number;
    scale: number;
    /** Checkpoints of scenario 5's pile-up (the last is `scale`), its wave and its delivered sample. */
    scaleSizes?: number[];
    scaleWave?: number;
    scaleDeliver?: number;
    scaleRuns: number;
    deliverAfterMs: number;
    staleInMs: number;
    sqlitePragmas: string;
    guardWorker: string;
    tuning: Record<string, unknown> | null;
    serverDynamicConfig: string | null;
    stacks: string;
    engines?: EngineName[];
    scaleEngine?: EngineName;
    postgresServer?: string;
  };
  /** Per engine (--engine). Results written before the flag have paths/paced/history at the top (the dev server). */
  engines?: Partial<Record<EngineName, EngineRun>>;
  paths?: EngineRun['paths'];
  paced?: EngineRun['paced'];
  history?: EngineRun['history'];
  webhook: WebhookBenchResult[];
  scale: ScaleRun[];
  /** The waves scenario (bench/scenarios/wave.ts): floor, guard, mixed and paced, two workers. */
  waves?: WaveRun[];
  /** Scenario 5's checkpoints as they were measured (a run cut short keeps them). */
  scaleCheckpoints?: Checkpoint[];
  sqlite: { name: string; pragmas: string[]; note: string; revoke: PathRun[]; floor: PathRun[]; crash: CrashCheck | null }[];
  profiles?: ProfileSummary[];
}


/** The per-engine runs, reading results written before --engine as the dev server's. */
export function engineRuns(results: BenchResults): [EngineName, EngineRun][] {
  if (results.engines) return Object.entries(results.engines) as [EngineName, EngineRun][];
  if (results.paths && Object.keys(results.paths).length) return [['dev', { paths: results.paths, paced: results.paced, history: results.history ?? {} }]];
  return [];
}
