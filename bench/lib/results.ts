// The shape of bench/results/<timestamp>.json, shared by bench.ts (which fills it) and report.ts.
import type { WebhookBenchResult } from '../webhook-bench.ts';
import type { CrashCheck } from '../scenarios/crash.ts';
import type { PathKind, PathRun } from '../scenarios/paths.ts';
import type { ScaleRun } from '../scenarios/scale.ts';
import type { ProfileSummary } from './cpuprofile.ts';
import type { HistoryFigures } from './history.ts';

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
    scaleRuns: number;
    deliverAfterMs: number;
    staleInMs: number;
    sqlitePragmas: string;
    guardWorker: string;
    tuning: Record<string, number> | null;
    serverDynamicConfig: string | null;
    stacks: string;
  };
  paths: Partial<Record<PathKind, PathRun[]>>;
  paced?: { ratePerSecond: number; revoke: PathRun[] };
  webhook: WebhookBenchResult[];
  scale: ScaleRun[];
  history: Partial<Record<PathKind, { canonical: HistoryFigures[]; loaded: HistoryFigures[] }>>;
  sqlite: { name: string; pragmas: string[]; note: string; revoke: PathRun[]; floor: PathRun[]; crash: CrashCheck | null }[];
  profiles?: ProfileSummary[];
}

