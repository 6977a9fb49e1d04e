// A closed-loop load generator: `concurrency` messages in flight at all times; each slot starts the
// next message as soon as its previous one completed. Concurrency, not a target rate, is the knob,
// so the floor and the guard face exactly the same load shape.

export interface DriveResult {
  /** Wall time from the first job's start to the last job's end. */
  seconds: number;
  /** Per job: ms from its start to its end. */
  latenciesMs: number[];
  /** Per job: ms from the first job's start to this job's end. */
  doneAtMs: number[];
  failures: number;
  firstError?: string;
}

export async function closedLoop(
  n: number,
  concurrency: number,
  job: (i: number) => Promise<boolean>,
  onDone?: (ok: boolean) => void,
): Promise<DriveResult> {
  const latenciesMs: number[] = [];
  const doneAtMs: number[] = [];
  let next = 0;
  let failures = 0;
  let firstError: string | undefined;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: Math.min(concurrency, n) }, async () => {
      for (let i = next++; i < n; i = next++) {
        const t0 = performance.now();
        let ok = false;
        try {
          ok = await job(i);
        } catch (err) {
          firstError ??= err instanceof Error ? err.message : String(err);
        }
        const now = performance.now();
        latenciesMs.push(now - t0);
        doneAtMs.push(now - started);
        if (!ok) failures++;
        onDone?.(ok);
      }
    }),
  );
  return { seconds: (performance.now() - started) / 1000, latenciesMs, doneAtMs, failures, firstError };
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * An open loop: message i starts at i / ratePerSecond seconds, whatever is still in flight. For
 * latency at a given load (a closed loop at saturation measures its own queue, not the system).
 */
export async function paced(
  n: number,
  ratePerSecond: number,
  job: (i: number) => Promise<boolean>,
  onDone?: (ok: boolean) => void,
): Promise<DriveResult> {
  const latenciesMs: number[] = [];
  const doneAtMs: number[] = [];
  let failures = 0;
  let firstError: string | undefined;
  const started = performance.now();
  const runs: Promise<void>[] = [];
  for (let i = 0; i < n; i++) {
    const due = started + (i * 1000) / ratePerSecond;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    runs.push(
      (async () => {
        const t0 = performance.now();
        let ok = false;
        try {
          ok = await job(i);
        } catch (err) {
          firstError ??= err instanceof Error ? err.message : String(err);
        }
        const now = performance.now();
        latenciesMs.push(now - t0);
        doneAtMs.push(now - started);
        if (!ok) failures++;
        onDone?.(ok);
      })(),
    );
  }
  await Promise.all(runs);
  return { seconds: (performance.now() - started) / 1000, latenciesMs, doneAtMs, failures, firstError };
}

/**
 * Completions per second in the steady part of a run: between the 20th and the 80th percentile of
 * completion times. A closed loop ramps up (the first wave is all in flight at once) and drains (the
 * last wave's latency), and a slower path drains longer: the whole run's average would favour the
 * faster one beyond its real throughput.
 */
export function steadyRate(doneAtMs: readonly number[], lo = 0.2, hi = 0.8): number {
  const t = [...doneAtMs].sort((a, b) => a - b);
  if (t.length < 10) return (t.length * 1000) / Math.max(1, t[t.length - 1] ?? 1);
  const a = Math.floor(lo * (t.length - 1));
  const b = Math.floor(hi * (t.length - 1));
  return ((b - a) * 1000) / Math.max(1, (t[b] as number) - (t[a] as number));
}
