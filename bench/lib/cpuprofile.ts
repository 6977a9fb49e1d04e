// Summarizes V8 CPU profiles (`node --cpu-prof`, written by the worker and webhook processes when
// the bench runs with --cpu-profile): self time by function and by area, to say where the time goes.

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}
interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

export interface ProfileSummary {
  file: string;
  /** Wall time the profile covers and CPU time sampled in it (ms). */
  wallMs: number;
  busyMs: number;
  /** Self time by area: idle, gc, temporal sdk, workflow sandbox, codec/crypto, http, node internals, app … */
  areas: { area: string; ms: number; share: number }[];
  top: { fn: string; where: string; ms: number; share: number }[];
}

function area(url: string, fn: string): string {
  if (fn === '(idle)') return 'idle';
  if (fn === '(garbage collector)') return 'garbage collection';
  if (fn === '(program)') return 'native (core SDK, V8)';
  if (url.includes('@temporalio/worker')) return 'Temporal SDK worker (JS)';
  if (url.includes('@temporalio/')) return 'Temporal SDK other (JS)';
  if (url.includes('workflow-bundle') || url.includes('/workflows/')) return 'workflow code (sandbox)';
  if (url.includes('protobufjs') || url.includes('long/')) return 'protobuf';
  if (url.includes('codec') || url.includes('crypto')) return 'encryption codec';
  if (url.includes('fastify') || url.includes('undici') || url.includes('node:http') || url.includes('_http')) return 'HTTP';
  if (url.includes('google-auth') || url.includes('gaxios')) return 'google-auth';
  if (url.includes('pino')) return 'logging';
  if (url.includes('node_modules')) return 'other libraries';
  if (url.startsWith('node:') || url === '') return 'node internals';
  return 'rbm-guard code';
}

export function summarizeProfiles(files: { name: string; json: string }[]): ProfileSummary[] {
  const out: ProfileSummary[] = [];
  for (const { name, json } of files) {
    const profile = JSON.parse(json) as Profile;
    const byId = new Map(profile.nodes.map((n) => [n.id, n]));
    const self = new Map<number, number>();
    const samples = profile.samples ?? [];
    const deltas = profile.timeDeltas ?? [];
    for (let i = 0; i < samples.length; i++) {
      const id = samples[i] as number;
      self.set(id, (self.get(id) ?? 0) + (deltas[i] ?? 0) / 1000);
    }
    const areas = new Map<string, number>();
    const fns = new Map<string, { fn: string; where: string; ms: number }>();
    let total = 0;
    for (const [id, ms] of self) {
      const node = byId.get(id);
      if (!node) continue;
      const { functionName, url, lineNumber } = node.callFrame;
      const fn = functionName || '(anonymous)';
      const a = area(url, fn);
      areas.set(a, (areas.get(a) ?? 0) + ms);
      total += ms;
      const where = url ? `${url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*\/work\/main\//, '')}:${lineNumber + 1}` : '';
      const key = `${fn}@${where}`;
      const entry = fns.get(key) ?? { fn, where, ms: 0 };
      entry.ms += ms;
      fns.set(key, entry);
    }
    const idle = areas.get('idle') ?? 0;
    const busy = total - idle;
    out.push({
      file: name,
      wallMs: (profile.endTime - profile.startTime) / 1000,
      busyMs: busy,
      areas: [...areas].map(([a, ms]) => ({ area: a, ms, share: a === 'idle' ? NaN : ms / busy })).sort((x, y) => y.ms - x.ms),
      top: [...fns.values()]
        .filter((f) => f.fn !== '(idle)')
        .sort((x, y) => y.ms - x.ms)
        .slice(0, 15)
        .map((f) => ({ ...f, share: f.ms / busy })),
    });
  }
  return out;
}
