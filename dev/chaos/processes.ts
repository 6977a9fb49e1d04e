// The chaos run's process faults: the worker SIGKILLed three times (the first into the deadline wave,
// while its local revokes run), the webhook once, Temporal stopped and restarted on the same SQLite
// file once, at seeded moments while guards are deciding. On the
// PostgreSQL engine the Temporal server is SIGKILLed instead, and PostgreSQL itself is stopped (fast
// shutdown) and started again once.
import type { LocalStack } from '../stack/local-stack.ts';

export const PROCESS_FAULTS = ['worker SIGKILL', 'webhook SIGKILL', 'Temporal stop/restart', 'Temporal server SIGKILL', 'PostgreSQL stop/start'] as const;

export interface ProcessFault {
  what: (typeof PROCESS_FAULTS)[number];
  /** ms after the batch started. */
  at: number;
  /** How long it was down (kill → restarted and ready). */
  downMs: number;
  survived: boolean;
  error?: string;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, Math.max(0, ms)));

export interface PlannedFault {
  what: ProcessFault['what'];
  at: number;
}

/**
 * Three worker kills and one webhook kill spread over the whole active window, in a seeded order; the
 * Temporal restart always while the backend is still tracking (so track() has to ride it out).
 */
export function processFaultSchedule(
  random: () => number,
  fromMs: number,
  toMs: number,
  trackingUntilMs: number,
  engine: 'dev' | 'postgres' = 'dev',
  /** A deadline wave's second: the first worker kill lands 0.3–1 s into it, while its revokes run. */
  waveAtMs?: number,
): PlannedFault[] {
  const during = () => Math.round(2_000 + random() * 0.6 * Math.max(0, trackingUntilMs - 2_000));
  const temporal = { what: engine === 'postgres' ? ('Temporal server SIGKILL' as const) : ('Temporal stop/restart' as const), at: during() };
  const kinds: ProcessFault['what'][] = ['worker SIGKILL', 'worker SIGKILL', 'worker SIGKILL', 'webhook SIGKILL'];
  if (engine === 'postgres') kinds.push('PostgreSQL stop/start');
  for (let i = kinds.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [kinds[i], kinds[j]] = [kinds[j]!, kinds[i]!];
  }
  const slot = (toMs - fromMs) / kinds.length;
  const kills = kinds.map((what, i) => ({ what, at: Math.round(fromMs + i * slot + random() * slot * 0.6) }));
  const first = kills.find((k) => k.what === 'worker SIGKILL');
  if (first && waveAtMs !== undefined) first.at = waveAtMs + 300 + Math.round(random() * 700);
  return [...kills, temporal].sort((a, b) => a.at - b.at);
}

export async function inflict(stack: LocalStack, what: ProcessFault['what'], at: number, random: () => number, progress: (l: string) => void): Promise<ProcessFault> {
  const began = Date.now();
  const pause = 200 + Math.round(random() * 1_300); // a supervisor restarts it after a moment
  try {
    if (what === 'Temporal stop/restart') {
      await stack.restartTemporal(1_000 + Math.round(random() * 2_000));
    } else if (what === 'Temporal server SIGKILL' || what === 'PostgreSQL stop/start') {
      const engine = stack.postgres;
      if (!engine) throw new Error(`${what} needs the PostgreSQL engine`);
      if (what === 'Temporal server SIGKILL') {
        await engine.killServer();
        await sleep(pause);
        await engine.startServer();
      } else {
        await engine.postgres.stop(); // fast shutdown: the server's connections break mid-write
        await sleep(pause);
        await engine.postgres.start();
      }
    } else {
      const service = what === 'worker SIGKILL' ? stack.worker : stack.webhook;
      await service.kill();
      await sleep(pause);
      await startWithRetry(service);
    }
    const downMs = Date.now() - began;
    progress(`  ${(at / 1000).toFixed(1)} s: ${what} — back after ${(downMs / 1000).toFixed(1)} s`);
    return { what, at, downMs, survived: true };
  } catch (err) {
    const error = err instanceof Error ? err.message : String(err);
    progress(`  ${(at / 1000).toFixed(1)} s: ${what} — did not come back: ${error}`);
    return { what, at, downMs: Date.now() - began, survived: false, error };
  }
}

async function startWithRetry(service: LocalStack['worker']): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await service.start();
      return;
    } catch (err) {
      if (attempt >= 3) throw err;
      await sleep(1_000);
    }
  }
}

