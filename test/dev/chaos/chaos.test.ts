// The chaos run inside `npm test`: 150 messages on the local stack with the platform and SMS
// faults, the worker SIGKILLed three times, the webhook once, Temporal stopped and restarted once,
// then every message checked against the simulator's truth, and the FALLBACK_FAILED path end to
// end (client list, CLI list, metric). `npm run chaos` is the 1,000-message version.
import { expect, it } from 'vitest';
import { formatReport, runChaos } from '../../../dev/chaos/run.ts';

const SEED = Number(process.env.RBM_GUARD_CHAOS_SEED ?? 150_006);

it('150 messages through crashes and faults: nothing lost, no double SMS', { timeout: 240_000 }, async () => {
  const report = await runChaos({ n: 150, seed: SEED, kills: true });
  const text = formatReport(report);
  console.log(text);
  expect(report.processFaults.filter((f) => f.survived).map((f) => f.what).sort()).toEqual([
    'Temporal stop/restart',
    'webhook SIGKILL',
    'worker SIGKILL',
    'worker SIGKILL',
    'worker SIGKILL',
  ]);
  expect(report.check.checked).toBe(150 + report.fallbackFailed.guards);
  expect(report.fallbackFailed.outcomes.FALLBACK_FAILED).toBe(report.fallbackFailed.guards);
  expect(report.violations, text).toEqual([]);
});
