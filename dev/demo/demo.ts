// `npm run demo`: the whole system on this machine — embedded Temporal with its Web UI, the RBM
// simulator, the SMS sink, the worker and the webhook adapter — guarding a realistic mixed batch.
// Deadlines are scaled to seconds so it finishes in about a minute. `--exit` stops at the end;
// otherwise the UI stays up until Ctrl-C. `--n 200` sets the batch size. Payloads are encrypted with
// the data folder's dev key (generated on the first run, shared with `npm start`) or the configured
// keys; the UI decrypts them through a codec server.
import { rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { SingleBar, Presets } from 'cli-progress';
import { ConfigError, loadConfig } from '../../config/index.ts';
import { keyRingEnv } from '../../client/codec.ts';
import { markdownTable as table } from '../../client/cli/render.ts';
import type { GuardStatus, Outcome } from '../../workflows/contract.ts';
import { startLocalStack } from '../stack/local-stack.ts';
import { demoBatch } from './batch.ts';
import { toolArgs } from '../../config/args.ts';

const USAGE = `
npm run demo -- [--n 200] [--seed 7] [--exit]

Everything local (Temporal with its UI, the RBM simulator, an SMS sink, the worker, the webhook),
then a mixed batch of N messages and the outcome table; the UI stays up until Ctrl-C.
  --n     messages (1-10000, default 200)
  --seed  the batch's random seed (default 7)
  --exit  stop at the end instead of keeping the UI up`;
const { values: flags } = toolArgs('demo', USAGE, { exit: { type: 'boolean', default: false }, n: { type: 'string', default: '200' }, seed: { type: 'string', default: '7' } });
const n = Number(flags.n);
if (!Number.isInteger(n) || n < 1 || n > 10_000) fail(`--n must be a whole number from 1 to 10000, not ${flags.n}`);

let config;
try {
  config = loadConfig();
} catch (err) {
  fail(err instanceof ConfigError ? err.message : String(err));
}

const t0 = Date.now();
const dataDir = resolve(join(config.RBM_GUARD_DATA_DIR, 'demo'));
rmSync(dataDir, { recursive: true, force: true }); // a fresh demo each time
console.log('Starting Temporal (with its Web UI), the RBM simulator, the SMS sink, the worker and the webhook…');
let encryptionEnv: Record<string, string>;
try {
  // The demo runs its own Temporal: a TEMPORAL_ADDRESS in the environment does not apply here.
  encryptionEnv = keyRingEnv({ ...config, TEMPORAL_ADDRESS: undefined });
} catch (err) {
  fail(err instanceof ConfigError ? err.issues.map((i) => `${i.variable}: ${i.message}`).join('; ') : String(err));
}
const stack = await startLocalStack({ dataDir, uiPort: config.TEMPORAL_UI_PORT, taskQueue: 'rbm-guard-demo', encryptionEnv }).catch((err: unknown) =>
  fail(`the demo could not start: ${err instanceof Error ? err.message : String(err)}`),
);

const batch = demoBatch(n, Number(flags.seed));
const started: { workflowId: string; phone: string; staleAt: number; kind: string }[] = [];
let firstGuardMs = 0;
for (const m of batch) {
  stack.sim.registerSent({ agentId: m.agentId, messageId: m.messageId, phone: m.phone, plan: m.plan });
  if (m.revokeFaults.length) stack.sim.injectRevokeFaults(m.messageId, m.revokeFaults);
}
const bar = new SingleBar({ format: ' guards {bar} {value}/{total} closed | {delivered} delivered, {sms} SMS sent | {elapsed}s' }, Presets.shades_classic);
const results: Promise<GuardStatus>[] = [];
const trackStart = Date.now();
// Track as a backend would right after each send: several at once.
const queue = [...batch];
await Promise.all(
  Array.from({ length: 16 }, async () => {
    for (let m = queue.shift(); m; m = queue.shift()) {
      const staleAt = new Date(Date.now() + m.staleInMs);
      const { workflowId } = await stack.guards.track({
        agentId: m.agentId,
        messageId: m.messageId,
        phone: m.phone,
        staleAt,
        trafficType: m.trafficType,
        fallbackText: m.fallbackText,
        policy: { graceMs: 1500, lingerMs: 3000, maxRevokeRounds: 2, revokeAttempts: 3 },
      });
      if (!firstGuardMs) firstGuardMs = Date.now() - t0;
      started.push({ workflowId, phone: m.phone, staleAt: staleAt.getTime(), kind: m.kind });
      results.push(stack.client.workflow.getHandle(workflowId).result() as Promise<GuardStatus>);
    }
  }),
);
console.log(`First guard started ${(firstGuardMs / 1000).toFixed(1)} s after \`npm run demo\`; ${n} guards tracked in ${((Date.now() - trackStart) / 1000).toFixed(1)} s.`);

bar.start(n, 0, { delivered: 0, sms: 0, elapsed: 0 });
let closed = 0;
let delivered = 0;
const tick = setInterval(() => bar.update(closed, { delivered, sms: stack.sink.sends.length, elapsed: Math.round((Date.now() - trackStart) / 1000) }), 250);
const statuses = await Promise.all(
  results.map((p) =>
    p.then((s) => {
      closed += 1;
      if (s.outcome === 'DELIVERED') delivered += 1;
      return s;
    }),
  ),
);
clearInterval(tick);
bar.update(closed, { delivered, sms: stack.sink.sends.length, elapsed: Math.round((Date.now() - trackStart) / 1000) });
bar.stop();

// ---- the outcome table ----
const byOutcome = new Map<Outcome | 'OPEN', number>();
for (const s of statuses) byOutcome.set(s.outcome ?? 'OPEN', (byOutcome.get(s.outcome ?? 'OPEN') ?? 0) + 1);
const latencies = started
  .map((g) => {
    const send = stack.sink.sends.find((s) => s.to === g.phone);
    return send ? send.at - g.staleAt : undefined;
  })
  .filter((v): v is number => v !== undefined)
  .sort((a, b) => a - b);
const pct = (p: number) => (latencies.length ? `${latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))]} ms` : 'n/a');
const doubles = byOutcome.get('DOUBLE_DELIVERY') ?? 0;

console.log('\nOutcomes');
console.log(table([['outcome', 'guards'], ...[...byOutcome.entries()].sort((a, b) => b[1] - a[1]).map(([o, c]) => [o, String(c)])]));
console.log(
  table([
    ['figure', 'value'],
    ['messages guarded', String(n)],
    ['SMS sent (sink, distinct phones)', String(new Set(stack.sink.sends.map((s) => s.to)).size)],
    ['SMS requests incl. retries', String(stack.sink.stats().requests)],
    ['double deliveries', String(doubles)],
    ['deadline → SMS accepted p50', pct(50)],
    ['deadline → SMS accepted p99', pct(99)],
    ['revokes at the simulator', String(stack.sim.stats().revokes)],
    ['webhook pushes acknowledged', String(stack.sim.stats().pushesAcknowledged)],
    ['wall time', `${((Date.now() - t0) / 1000).toFixed(1)} s`],
  ]),
);

const ui = stack.devServer.uiUrl;
if (ui) {
  console.log(`\nTemporal UI: ${ui}/namespaces/default/workflows?query=${encodeURIComponent('WorkflowType="rbmGuard"')}`);
  console.log('A few interesting guards:');
  for (const outcome of ['DOUBLE_DELIVERY', 'FALLBACK_SENT', 'DELIVERED_UNCONFIRMED', 'DELIVERED', 'REVOKED', 'UNRESOLVED'] as const) {
    const s = statuses.find((x) => x.outcome === outcome);
    if (s) console.log(`  ${outcome.padEnd(22)} ${ui}/namespaces/default/workflows/${encodeURIComponent(s.workflowId)}`);
  }
  console.log(`  Filter the list by outcome, e.g.: RbmOutcome="FALLBACK_SENT"`);
  if (stack.codecUrl) console.log(`Payloads are encrypted at rest; the UI decrypts them through the codec server at ${stack.codecUrl}.`);
}

if (flags.exit) {
  await stack.stop();
  process.exit(0);
}
console.log('\nThe UI stays up; Ctrl-C stops everything.');
const stop = async () => {
  await stack.stop();
  process.exit(0);
};
process.once('SIGINT', () => void stop());
process.once('SIGTERM', () => void stop());

function fail(message: string): never {
  console.error(message);
  process.exit(1);
}
