// The chaos run's FALLBACK_FAILED check: the SMS provider down past the retry budget for a few OTPs
// that are never delivered, then the outcome found where operators look — the client library's list,
// the CLI's list, and the worker's metric.
import { guardWorkflowId, WORKFLOW_TYPE } from '../../workflows/contract.ts';
import { runCli } from '../../client/cli.ts';
import type { LocalStack } from '../stack/local-stack.ts';
import type { CheckedMessage, GuardRecord } from './checker.ts';
import { collectGuards, trackWithRetry } from './collect.ts';

export interface FallbackFailedCheck {
  guards: number;
  outcomes: Record<string, number>;
  smsSent: number;
  /** Found by GuardClient.list({ outcome: 'FALLBACK_FAILED' }). */
  listedByClient: number;
  /** Found by `rbm-guard list --outcome FALLBACK_FAILED --json`. */
  listedByCli: number;
  /** rbm_guard_outcomes{outcome="FALLBACK_FAILED"} on the worker's Prometheus endpoint. */
  metric: number | null;
  problems: string[];
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, Math.max(0, ms)));

const FF_POLICY = { graceMs: 500, lingerMs: 1_000, maxRevokeRounds: 1, revokeAttempts: 3, fallbackAttempts: 3, onUnknown: 'fallback' } as const;
const FF_COUNT = 5;

export async function fallbackFailedCheck(
  stack: LocalStack,
  seed: number,
  metricsPort: number,
): Promise<{ report: FallbackFailedCheck; messages: CheckedMessage[]; guards: Map<string, GuardRecord> }> {
  const problems: string[] = [];
  // Only the outage: no random faults, so the revoke lands and the SMS leg is the one that fails.
  stack.sim.setRandomFaults(undefined);
  stack.sink.setRandomFaults(undefined);
  stack.sink.down();
  const tag = (seed >>> 0).toString(36);
  const messages: CheckedMessage[] = [];
  try {
    await Promise.all(
      Array.from({ length: FF_COUNT }, async (_, i) => {
        const agentId = 'chaos-agent';
        const messageId = `chaos-ff-${tag}-${i}`;
        const phone = `+1445${String(i).padStart(7, '0')}`;
        const sentAt = Date.now();
        const staleAt = sentAt + 1_500;
        stack.sim.registerSent({ agentId, messageId, phone, plan: { deliverAfterMs: null }, sentAt });
        const r = await trackWithRetry(stack, {
          agentId,
          messageId,
          phone,
          sentAt: new Date(sentAt),
          staleAt: new Date(staleAt),
          trafficType: 'AUTHENTICATION',
          fallbackText: `Your code is ${100000 + i}`,
          policy: FF_POLICY,
        });
        messages.push({
          messageId,
          workflowId: guardWorkflowId(agentId, messageId),
          phone,
          hasFallback: true,
          onUnknown: 'fallback',
          staleAt,
          tracked: r.tracked,
          trackError: r.error,
          expectFallbackFailed: true,
        });
      }),
    );
    const ids = messages.map((m) => m.workflowId);
    await Promise.all(
      ids.map((id) =>
        Promise.race([
          stack.client.workflow.getHandle(id).result(),
          sleep(90_000).then(() => problems.push(`${id} did not close within 90 s`)),
        ]).catch((err: unknown) => problems.push(`${id}: ${String(err)}`)),
      ),
    );
  } finally {
    stack.sink.up();
  }
  const ids = new Set(messages.map((m) => m.workflowId));
  const query = `WorkflowType = "${WORKFLOW_TYPE}" AND WorkflowId STARTS_WITH "rbm-guard/chaos-agent/chaos-ff-${tag}-"`;
  const guards = await collectGuards(stack, query);
  const outcomes: Record<string, number> = {};
  for (const g of guards.values()) outcomes[g.outcome ?? 'open'] = (outcomes[g.outcome ?? 'open'] ?? 0) + 1;

  // The client library's list, as a dashboard or script would use it (visibility is eventually consistent).
  let listedByClient = 0;
  for (let i = 0; i < 20; i++) {
    const listed = await stack.guards.list({ outcome: 'FALLBACK_FAILED', limit: 100_000 });
    listedByClient = listed.filter((g) => ids.has(g.workflowId)).length;
    if (listedByClient === ids.size) break;
    await sleep(500);
  }
  if (listedByClient !== ids.size) problems.push(`GuardClient.list({ outcome: 'FALLBACK_FAILED' }) found ${listedByClient} of ${ids.size}`);

  // The operator's CLI: `rbm-guard list --outcome FALLBACK_FAILED --json`.
  let out = '';
  let err = '';
  const code = await runCli(['list', '--outcome', 'FALLBACK_FAILED', '--limit', '100000', '--json'], {
    stdout: (t) => void (out += t),
    stderr: (t) => void (err += t),
    env: { ...stack.env, TEMPORAL_ADDRESS: stack.devServer.address, LOG_LEVEL: 'silent' },
  });
  let listedByCli = 0;
  if (code !== 0) problems.push(`rbm-guard list --outcome FALLBACK_FAILED exited ${code}: ${err.trim()}`);
  else {
    const rows = JSON.parse(out) as { workflowId: string; outcome: string | null }[];
    listedByCli = rows.filter((r) => ids.has(r.workflowId) && r.outcome === 'FALLBACK_FAILED').length;
    if (listedByCli !== ids.size) problems.push(`rbm-guard list --outcome FALLBACK_FAILED found ${listedByCli} of ${ids.size}`);
  }

  // The alertable metric, from the worker's Prometheus endpoint.
  let metric: number | null = null;
  try {
    const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`, { signal: AbortSignal.timeout(5_000) })).text();
    metric = 0;
    for (const line of text.split('\n')) {
      const match = /^rbm_guard_outcomes\w*\{([^}]*)\}\s+([\d.e+]+)/.exec(line);
      if (match && /outcome="FALLBACK_FAILED"/.test(match[1]!)) metric += Number(match[2]);
    }
    if (metric < ids.size) problems.push(`metric rbm_guard_outcomes{outcome="FALLBACK_FAILED"} is ${metric}, expected at least ${ids.size}`);
  } catch (e) {
    problems.push(`worker metrics unreadable: ${e instanceof Error ? e.message : String(e)}`);
  }

  const smsSent = messages.reduce((sum, m) => sum + stack.sink.distinctSendsTo(m.phone), 0);
  return { report: { guards: ids.size, outcomes, smsSent, listedByClient, listedByCli, metric, problems }, messages, guards };
}
