// Resident memory of the stack's processes, read from /proc (Linux). The worker and the webhook run
// under tsx, which starts the real node process as its child: a service's RSS is that of the largest
// process in its tree (the node process doing the work), not the small tsx launcher's.
import { readdirSync, readFileSync } from 'node:fs';

function children(pid: number): number[] {
  const out: number[] = [];
  try {
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      const list = readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim();
      if (list) out.push(...list.split(/\s+/).map(Number));
    }
  } catch {
    // gone
  }
  return out;
}

/** The pid and its descendants. */
export function processTree(pid: number): number[] {
  const all = [pid];
  for (let i = 0; i < all.length; i++) all.push(...children(all[i] as number));
  return all;
}

/** VmRSS of one process in MiB; NaN if it is gone. */
export function rssMiB(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kib = /^VmRSS:\s+(\d+)\s+kB/m.exec(status)?.[1];
    return kib ? Number(kib) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** The RSS (MiB) of the largest process in a service's tree: the service itself. */
export function serviceRssMiB(pid: number | undefined): number {
  if (pid === undefined) return NaN;
  let best = NaN;
  for (const p of processTree(pid)) {
    const rss = rssMiB(p);
    if (Number.isFinite(rss) && !(rss <= best)) best = rss;
  }
  return best;
}

/** CPU time (user + system, seconds) of a process tree, from /proc/<pid>/stat. */
export function cpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return NaN;
  let ticks = 0;
  for (const p of processTree(pid)) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15 of the full line)
    } catch {
      // gone
    }
  }
  return ticks / 100; // USER_HZ is 100 on Linux
}

export interface RssSample {
  /** ms since the sampler started */
  t: number;
  worker: number;
  server: number;
  /** Whatever the scenario counts at that moment (e.g. sleeping guards). */
  count?: number;
}

/** Samples the worker's and the server's RSS every intervalMs until stopped. */
export function sampleRss(pids: { worker: () => number | undefined; server: () => number | undefined }, intervalMs = 1000, count?: () => number) {
  const t0 = Date.now();
  const samples: RssSample[] = [];
  const take = () => samples.push({ t: Date.now() - t0, worker: serviceRssMiB(pids.worker()), server: serviceRssMiB(pids.server()), count: count?.() });
  take();
  const timer = setInterval(take, intervalMs);
  return {
    samples,
    stop(): RssSample[] {
      clearInterval(timer);
      take();
      return samples;
    },
  };
}

export function peak(samples: readonly RssSample[], key: 'worker' | 'server'): number {
  const values = samples.map((s) => s[key]).filter(Number.isFinite);
  return values.length ? Math.max(...values) : NaN;
}

/** Busy CPU seconds of the whole machine since boot (all cores), from /proc/stat. */
export function machineBusySeconds(): number {
  try {
    const fields = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').trim().split(/\s+/).slice(1).map(Number);
    const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = fields;
    return (user + nice + system + irq + softirq + steal) / 100;
  } catch {
    return NaN;
  }
}

/**
 * Proportional set size (MiB) of a whole process tree, from /proc/<pid>/smaps_rollup: for
 * PostgreSQL, whose backends share its buffers, the sum of their RSS would count them many times.
 */
export function treePssMiB(pid: number | undefined): number {
  if (pid === undefined) return NaN;
  let kib = 0;
  let seen = 0;
  for (const p of processTree(pid)) {
    try {
      const pss = /^Pss:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${p}/smaps_rollup`, 'utf8'))?.[1];
      if (pss) {
        kib += Number(pss);
        seen++;
      }
    } catch {
      // gone
    }
  }
  return seen ? kib / 1024 : NaN;
}
