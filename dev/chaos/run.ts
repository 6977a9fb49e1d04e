// The chaos run: the whole local stack (Temporal dev server on a SQLite file, RBM simulator, SMS sink,
// worker and webhook as child processes) guarding a batch of messages while the platform misbehaves
// (the fault rates) and the processes die (worker SIGKILLed three times, the webhook once,
// Temporal stopped and restarted on the same file once). Then every message is judged against the
// simulator's ground truth by ./checker.ts, and the FALLBACK_FAILED path is checked end to end.
// `npm run chaos` (./chaos.ts) prints the report; test/chaos.test.ts runs a 150-message version.
import { createWriteStream, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { GuardStatus } from '../../workflows/contract.ts';
import { ACTIVITY_ATTEMPT_TIMEOUT_MS, guardWorkflowId, SA, WORKFLOW_TYPE, type GuardPolicy, type Outcome } from '../../workflows/contract.ts';
import { ValidationError, type TrackInput } from '../../client/track-input.ts';
import { runCli } from '../../client/cli.ts';
import { freePort } from '../../worker/dev-server.ts';
import type { RandomFaults } from '../sim/rbm-simulator.ts';
import type { SmsRandomFaults } from '../sim/sms-sink.ts';
import { startLocalStack, STACK_REQUEST_TIMEOUTS, type LocalStack } from '../stack/local-stack.ts';
import { seededRandom } from '../random.ts';
import { CHAOS_POLICY, chaosBatch, type ChaosMessage } from './batch.ts';
import { check, INVARIANTS, type CheckedMessage, type CheckResult, type GuardRecord, type Violation } from './checker.ts';

/** The platform faults. */
export const SIM_FAULT_RATES: Omit<RandomFaults, 'seed'> = {
  revoke429or5xx: 0.2,
  revokeHang: 0.05,
  revokeLostResponse: 0.02,
  raceDelivery: 0.03,
  duplicateEvent: 0.02,
  readBeforeDelivered: 0.02,
  noEvent: 0.01,
  hangMs: 2_500, // past the worker's RBM_REQUEST_TIMEOUT_MS (1 s in the local stack)
};
/** The SMS provider faults. */
export const SINK_FAULT_RATES: Omit<SmsRandomFaults, 'seed'> = { error5xx: 0.1, lostResponse: 0.02 };

const RBM_REQUEST_TIMEOUT_MS = STACK_REQUEST_TIMEOUTS.rbmMs;
const FALLBACK_REQUEST_TIMEOUT_MS = STACK_REQUEST_TIMEOUTS.fallbackMs;
/** The workflow's startToCloseTimeout for every activity: what a worker crash mid-activity costs. */
const ACTIVITY_START_TO_CLOSE_MS = ACTIVITY_ATTEMPT_TIMEOUT_MS;

export interface ChaosOptions {
  n: number;
  seed: number;
  /** SIGKILL/restart the worker and webhook and restart Temporal (false: faults only, for debugging). */
  kills?: boolean;
  /** Progress lines (default: none). */
  progress?: (line: string) => void;
  /** Keep the data folder (SQLite file, child logs) even when the run is clean. */
  keepData?: boolean;
}

export interface ProcessFault {
  what: 'worker SIGKILL' | 'webhook SIGKILL' | 'Temporal stop/restart';
  /** ms after the batch started. */
  at: number;
  /** How long it was down (kill → restarted and ready). */
  downMs: number;
  survived: boolean;
  error?: string;
}

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

export interface ChaosReport {
  n: number;
  seed: number;
  policy: typeof CHAOS_POLICY;
  boundMs: number;
  faults: { source: string; kind: string; count: number }[];
  processFaults: ProcessFault[];
  tracking: {
    tracked: number;
    /** track() refused: the deadline passed before Temporal accepted it (an unguarded message). */
    refused: number;
    failedAttempts: number;
    messagesRetried: number;
    /** track() calls in flight while Temporal was down that were accepted once it was back. */
    acrossOutage: number;
    errors: Record<string, number>;
  };
  /** track() accepted → the guard's first workflow task ran (a backlog shows here). */
  guardStartLagMs: { p50: number; p99: number; max: number };
  check: CheckResult;
  fallbackFailed: FallbackFailedCheck;
  /** All violations: the checker's and the FALLBACK_FAILED check's (as invariant 3). */
  violations: Violation[];
  /** First message sent → last guard of the batch closed. */
  drainMs: number;
  /** Everything, stack start to stop. */
  wallMs: number;
  dataDir: string;
  dataKept: boolean;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, Math.max(0, ms)));

/** The longest a guard can legitimately stay open after its deadline, crashes included. */
export function guardBoundMs(policy: Omit<GuardPolicy, 'onUnknown'>, workerKills: number, processFaultsDownMs: number): number {
  const backoff = (attempts: number, maxMs: number) => {
    let total = 0;
    for (let i = 0; i < attempts - 1; i++) total += Math.min(maxMs, 1_000 * 2 ** i);
    return total;
  };
  const revokeRound = policy.revokeAttempts * (RBM_REQUEST_TIMEOUT_MS + 1_000) + backoff(policy.revokeAttempts, 20_000);
  const revoke = policy.maxRevokeRounds * (revokeRound + policy.graceMs);
  const fallback = policy.fallbackAttempts * (FALLBACK_REQUEST_TIMEOUT_MS + 1_000) + backoff(policy.fallbackAttempts, 60_000);
  // An activity lost to a worker crash costs its startToClose timeout, at most one per kill; plus the
  // outages and restarts, plus slack for a loaded machine.
  return revoke + fallback + policy.lingerMs + workerKills * ACTIVITY_START_TO_CLOSE_MS + processFaultsDownMs + 30_000;
}

export async function runChaos(options: ChaosOptions): Promise<ChaosReport> {
  const { n, seed } = options;
  const kills = options.kills ?? true;
  const progress = options.progress ?? (() => {});
  const t0 = Date.now();
  const dataDir = mkdtempSync(join(tmpdir(), 'rbm-guard-chaos-'));
  const logFile = createWriteStream(join(dataDir, 'stack.log'));
  const log = (source: string, text: string) => {
    for (const line of text.split('\n')) if (line.trim()) logFile.write(`${new Date().toISOString()} [${source}] ${line}\n`);
  };

  const metricsPort = await freePort();

  progress('Starting the local stack: Temporal (SQLite file), RBM simulator, SMS sink, worker, webhook…');
  const stack = await startLocalStack({
    dataDir,
    taskQueue: 'rbm-guard-chaos',
    sim: {
      // Pub/Sub retries unacknowledged pushes for 7 days; here: until the run ends.
      push: { maxAttempts: 10_000, minBackoffMs: 100, maxBackoffMs: 2_000, timeoutMs: 15_000, concurrency: 32 },
    },
    env: {
      METRICS_PORT: String(metricsPort),
      RBM_REQUEST_TIMEOUT_MS: String(RBM_REQUEST_TIMEOUT_MS),
      FALLBACK_REQUEST_TIMEOUT_MS: String(FALLBACK_REQUEST_TIMEOUT_MS),
      WORKER_SHUTDOWN_GRACE_MS: '2000',
      LOG_LEVEL: 'warn',
    },
    log,
  });

  try {
    stack.sim.setRandomFaults({ seed, ...SIM_FAULT_RATES });
    stack.sink.setRandomFaults({ seed: seed ^ 0x5eed, ...SINK_FAULT_RATES });

    const arrivalWindowMs = Math.max(9_000, n * 60); // ~16 messages a second
    const batch = chaosBatch({ n, seed, arrivalWindowMs });
    const maxStaleIn = Math.max(...batch.map((m) => m.staleInMs));
    const random = seededRandom(seed ^ 0xc4a05);

    // ---- process faults, at seeded random moments while guards are deciding ----
    // Kills from the first deadline on (when revokes and SMS are in flight) to the last deadline.
    const minStaleIn = Math.min(...batch.map((m) => m.staleInMs));
    const schedule = kills ? processFaultSchedule(random, minStaleIn, arrivalWindowMs + maxStaleIn + 6_000, arrivalWindowMs) : [];
    const processFaults: ProcessFault[] = [];
    const start = Date.now();
    const scheduler = (async () => {
      for (const planned of schedule) {
        await sleep(start + planned.at - Date.now());
        processFaults.push(await inflict(stack, planned.what, Date.now() - start, random, progress));
      }
    })();

    // ---- the backend: send, then track (retrying while Temporal is down) ----
    const records = new Map<
      string,
      { m: ChaosMessage; staleAt: number; tracked: boolean; startedAt: number; trackedAt: number; error?: string; attempts: number }
    >();
    const trackErrors = new Map<string, number>();
    let trackedCount = 0;
    let lastReport = Date.now();
    const backend = batch.map(async (m) => {
      await sleep(start + m.sendAtMs - Date.now());
      const sentAt = Date.now();
      const staleAt = sentAt + m.staleInMs;
      if (m.sendText) {
        stack.sim.plan(m.messageId, m.plan); // applied when the guard's send reaches the platform
      } else {
        stack.sim.registerSent({
          agentId: m.agentId,
          messageId: m.messageId,
          phone: m.phone,
          plan: m.plan,
          sentAt,
          expireTime: m.expireInMs === null ? undefined : new Date(sentAt + m.expireInMs).toISOString(),
        });
      }
      const result = await trackWithRetry(stack, {
        agentId: m.agentId,
        messageId: m.messageId,
        phone: m.phone,
        sentAt: new Date(sentAt), // a track() that only gets through after the deadline is still guarded
        staleAt: new Date(staleAt),
        trafficType: m.trafficType,
        fallbackText: m.fallbackText,
        ...(m.sendText ? { sendText: m.sendText } : {}),
        policy: m.policy,
      }, trackErrors);
      records.set(m.messageId, { m, staleAt, ...result });
      trackedCount += result.tracked ? 1 : 0;
      if (Date.now() - lastReport > 5_000) {
        lastReport = Date.now();
        progress(`  ${((Date.now() - start) / 1000).toFixed(0)} s: ${trackedCount}/${n} tracked, ${stack.sink.sends.length} SMS so far`);
      }
    });
    await Promise.all(backend);
    progress(`All ${n} messages sent; ${trackedCount} tracked after ${((Date.now() - start) / 1000).toFixed(1)} s.`);
    await scheduler;

    // ---- drain: every guard closes, or the bound runs out ----
    const downMs = processFaults.reduce((sum, f) => sum + f.downMs, 0);
    const boundMs = guardBoundMs(CHAOS_POLICY, processFaults.filter((f) => f.what === 'worker SIGKILL').length, downMs);
    const lastStale = Math.max(...[...records.values()].map((r) => r.staleAt));
    const drainDeadline = lastStale + boundMs;
    let open = Number.POSITIVE_INFINITY;
    for (;;) {
      try {
        open = await countOpen(stack);
      } catch {
        // Temporal busy: ask again
      }
      if (open === 0 || Date.now() > drainDeadline) break;
      if (Date.now() - lastReport > 5_000) {
        lastReport = Date.now();
        progress(`  ${((Date.now() - start) / 1000).toFixed(0)} s: ${open} guards still open, ${stack.sink.sends.length} SMS`);
      }
      await sleep(500);
    }
    // Let in-flight pushes (late events for closed guards) settle, so invariant 5 sees final acks.
    await Promise.race([stack.sim.settled(), sleep(15_000)]);
    progress(open === 0 ? `Drained: every guard closed.` : `Drain bound reached with ${open} guards open.`);

    const guards = await collectGuards(stack);
    const drainMs = Math.max(...[...guards.values()].map((g) => g.closeTime ?? Date.now())) - start;

    // ---- FALLBACK_FAILED: the SMS provider down past the retry budget ----
    progress('FALLBACK_FAILED check: SMS provider down, a few OTPs with no delivery…');
    const ff = await fallbackFailedCheck(stack, seed, metricsPort);

    // ---- judge ----
    const checked: CheckedMessage[] = [...records.values()].map(({ m, staleAt, tracked, error }) => ({
      messageId: m.messageId,
      workflowId: guardWorkflowId(m.agentId, m.messageId),
      phone: m.phone,
      hasFallback: m.fallbackText !== null,
      onUnknown: m.policy.onUnknown,
      staleAt,
      tracked,
      trackError: error,
    }));
    for (const [id, g] of ff.guards) guards.set(id, g);
    const result = check({
      messages: [...checked, ...ff.messages],
      truth: (id) => stack.sim.truth(id),
      smsTo: (phone) => stack.sink.distinctSendsTo(phone),
      guard: (id) => guards.get(id),
      boundMs,
    });
    const violations = [
      ...result.violations,
      ...ff.report.problems.map((detail) => ({ invariant: 3 as const, messageId: '(FALLBACK_FAILED check)', workflowId: '', detail })),
    ];

    const trackRecords = [...records.values()];
    const report: ChaosReport = {
      n,
      seed,
      policy: CHAOS_POLICY,
      boundMs,
      faults: faultTable(stack),
      processFaults,
      tracking: {
        tracked: trackRecords.filter((r) => r.tracked).length,
        refused: trackRecords.filter((r) => !r.tracked).length,
        failedAttempts: trackRecords.reduce((sum, r) => sum + r.attempts - 1, 0),
        messagesRetried: trackRecords.filter((r) => r.attempts > 1).length,
        acrossOutage: trackRecords.filter((r) =>
          processFaults.some((f) => f.what === 'Temporal stop/restart' && r.startedAt < start + f.at + f.downMs && r.trackedAt > start + f.at),
        ).length,
        errors: Object.fromEntries(trackErrors),
      },
      guardStartLagMs: percentiles(
        trackRecords.flatMap((r) => {
          const first = guards.get(guardWorkflowId(r.m.agentId, r.m.messageId))?.timeline.find((e) => e.event === 'TRACKED');
          return r.tracked && first ? [Date.parse(first.at) - r.trackedAt] : [];
        }),
      ),
      check: result,
      fallbackFailed: ff.report,
      violations,
      drainMs,
      wallMs: 0,
      dataDir,
      dataKept: options.keepData === true || violations.length > 0,
    };
    if (violations.length) {
      writeFileSync(join(dataDir, 'violations.json'), JSON.stringify(violations, null, 2));
      writeFileSync(join(dataDir, 'truth.json'), JSON.stringify(stack.sim.allTruth(), null, 2));
      writeFileSync(join(dataDir, 'guards.json'), JSON.stringify([...guards.values()], null, 2));
      writeFileSync(join(dataDir, 'sms.json'), JSON.stringify(stack.sink.sends, null, 2));
    }
    await stack.stop();
    await new Promise<void>((resolve) => logFile.end(() => resolve()));
    if (!report.dataKept) rmSync(dataDir, { recursive: true, force: true });
    report.wallMs = Date.now() - t0;
    return report;
  } catch (err) {
    await stack.stop().catch(() => {});
    logFile.end();
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------

interface PlannedFault {
  what: ProcessFault['what'];
  at: number;
}

/**
 * Three worker kills and one webhook kill spread over the whole active window, in a seeded order; the
 * Temporal restart always while the backend is still tracking (so track() has to ride it out).
 */
function processFaultSchedule(random: () => number, fromMs: number, toMs: number, trackingUntilMs: number): PlannedFault[] {
  const temporal = { what: 'Temporal stop/restart' as const, at: Math.round(2_000 + random() * 0.6 * Math.max(0, trackingUntilMs - 2_000)) };
  const kinds: ProcessFault['what'][] = ['worker SIGKILL', 'worker SIGKILL', 'worker SIGKILL', 'webhook SIGKILL'];
  for (let i = kinds.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [kinds[i], kinds[j]] = [kinds[j]!, kinds[i]!];
  }
  const slot = (toMs - fromMs) / kinds.length;
  const kills = kinds.map((what, i) => ({ what, at: Math.round(fromMs + i * slot + random() * slot * 0.6) }));
  return [...kills, temporal].sort((a, b) => a.at - b.at);
}

async function inflict(stack: LocalStack, what: ProcessFault['what'], at: number, random: () => number, progress: (l: string) => void): Promise<ProcessFault> {
  const began = Date.now();
  const pause = 200 + Math.round(random() * 1_300); // a supervisor restarts it after a moment
  try {
    if (what === 'Temporal stop/restart') {
      await stack.restartTemporal(1_000 + Math.round(random() * 2_000));
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

/** A backend's track(): retried with backoff until Temporal accepts it (or the deadline has passed). */
async function trackWithRetry(
  stack: LocalStack,
  input: TrackInput,
  errors: Map<string, number> = new Map(),
): Promise<{ tracked: boolean; attempts: number; startedAt: number; trackedAt: number; error?: string }> {
  const startedAt = Date.now();
  let delay = 200;
  for (let attempts = 1; ; attempts++) {
    try {
      await stack.client.withDeadline(Date.now() + 10_000, () => stack.guards.track(input));
      return { tracked: true, attempts, startedAt, trackedAt: Date.now() };
    } catch (err) {
      if (err instanceof ValidationError) return { tracked: false, attempts, startedAt, trackedAt: Date.now(), error: err.message };
      const kind = err instanceof Error ? `${err.name}: ${err.message.replace(/\d+/g, 'N').slice(0, 80)}` : String(err);
      errors.set(kind, (errors.get(kind) ?? 0) + 1);
      await sleep(delay * (0.5 + Math.random()));
      delay = Math.min(2_000, delay * 2);
    }
  }
}

async function countOpen(stack: LocalStack): Promise<number> {
  const { count } = await stack.client.withDeadline(Date.now() + 5_000, () =>
    stack.client.workflow.count(`WorkflowType = "${WORKFLOW_TYPE}" AND ExecutionStatus = "Running"`),
  );
  return count;
}

/** Every guard's execution status, close time and (when closed) its final status with the timeline. */
async function collectGuards(stack: LocalStack, query = `WorkflowType = "${WORKFLOW_TYPE}"`): Promise<Map<string, GuardRecord>> {
  const guards = new Map<string, GuardRecord>();
  for await (const wf of stack.client.workflow.list({ query })) {
    const sa = wf.typedSearchAttributes;
    guards.set(wf.workflowId, {
      workflowId: wf.workflowId,
      executionStatus: wf.status.name,
      state: sa.get(SA.state) ?? null,
      outcome: (sa.get(SA.outcome) as Outcome | undefined) ?? null,
      closeTime: wf.closeTime ? wf.closeTime.getTime() : null,
      timeline: [],
    });
  }
  const closed = [...guards.values()].filter((g) => g.closeTime !== null);
  await mapLimit(closed, 16, async (g) => {
    try {
      const status = (await stack.client.workflow.getHandle(g.workflowId).result()) as GuardStatus;
      g.outcome = status.outcome;
      g.state = status.state;
      g.timeline = status.timeline;
    } catch (err) {
      g.outcome = null;
      g.state = `no result: ${err instanceof Error ? err.message : String(err)}`;
    }
  });
  return guards;
}

function percentiles(values: number[]): { p50: number; p99: number; max: number } {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (p: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]! : 0);
  return { p50: at(0.5), p99: at(0.99), max: sorted.length ? sorted[sorted.length - 1]! : 0 };
}

async function mapLimit<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

// ---- FALLBACK_FAILED ----

const FF_POLICY = { graceMs: 500, lingerMs: 1_000, maxRevokeRounds: 1, revokeAttempts: 3, fallbackAttempts: 3, onUnknown: 'fallback' } as const;
const FF_COUNT = 5;

async function fallbackFailedCheck(
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

// ---- the report ----

function faultTable(stack: LocalStack): ChaosReport['faults'] {
  const sim = stack.sim.stats();
  const sink = stack.sink.stats();
  const truth = stack.sim.allTruth();
  const hadEvents = (t: (typeof truth)[number]) => t.deliveredAt !== undefined || t.ttlRevoked || t.ttlRevokeFailed;
  const count = (pred: (t: (typeof truth)[number]) => boolean) => truth.filter(pred).length;
  return [
    { source: 'RBM', kind: 'revoke answered 429/500/503', count: sim.faults.status },
    { source: 'RBM', kind: 'revoke hung past the client timeout', count: sim.faults.hang },
    { source: 'RBM', kind: 'revoke done, response lost', count: sim.faults.lostResponse },
    { source: 'RBM', kind: 'revoke raced a delivery (200 or 404)', count: sim.raceRevokes },
    { source: 'RBM', kind: 'event pushed twice', count: count((t) => t.plan.duplicateEvent === true && hadEvents(t)) },
    { source: 'RBM', kind: 'READ before DELIVERED', count: count((t) => t.plan.readBeforeDelivered === true && t.deliveredAt !== undefined) },
    { source: 'RBM', kind: 'no event at all ("neither")', count: count((t) => t.plan.noEvent === true && hadEvents(t)) },
    { source: 'RBM', kind: 'TTL expired: revoked / revoke failed', count: sim.ttlRevoked + sim.ttlRevokeFailed },
    { source: 'webhook', kind: 'push attempts refused or failed (retried)', count: sim.pushFailedAttempts },
    { source: 'SMS', kind: 'send answered 5xx', count: sink.faultsByKind.status5xx },
    { source: 'SMS', kind: 'send accepted, response lost', count: sink.faultsByKind.lostResponse },
    { source: 'SMS', kind: 'provider down (FALLBACK_FAILED check)', count: sink.faultsByKind.down },
  ];
}

export function formatReport(r: ChaosReport): string {
  const lines: string[] = [];
  lines.push(`Chaos run: ${r.n} messages, seed ${r.seed}`);
  lines.push(
    `Policies: grace ${r.policy.graceMs} ms, linger ${r.policy.lingerMs} ms, ${r.policy.maxRevokeRounds} revoke rounds × ${r.policy.revokeAttempts} attempts, ${r.policy.fallbackAttempts} SMS attempts; OTP/transactions fall back on unknown, promotions don't. Bound after deadline: ${Math.round(r.boundMs / 1000)} s.`,
  );
  lines.push('');
  lines.push(table([['faults injected', 'kind', 'count'], ...r.faults.map((f) => [f.source, f.kind, String(f.count)])]));
  lines.push('');
  const survived = (what: ProcessFault['what']) => {
    const all = r.processFaults.filter((f) => f.what === what);
    return `${all.filter((f) => f.survived).length}/${all.length}`;
  };
  lines.push(
    table([
      ['process faults', 'survived', 'at (s after start)'],
      ...(['worker SIGKILL', 'webhook SIGKILL', 'Temporal stop/restart'] as const).map((what) => [
        what,
        survived(what),
        r.processFaults
          .filter((f) => f.what === what)
          .map((f) => `${(f.at / 1000).toFixed(1)} (down ${(f.downMs / 1000).toFixed(1)})`)
          .join(', ') || '—',
      ]),
      [
        'track() calls riding out the Temporal outage',
        `${r.tracking.acrossOutage} messages`,
        `${r.tracking.messagesRetried} retried after ${r.tracking.failedAttempts} failed attempts; ${r.tracking.refused} refused`,
      ],
    ]),
  );
  lines.push('');
  const outcomes = Object.entries(r.check.outcomes).sort((a, b) => b[1] - a[1]);
  lines.push(table([['outcome', 'guards'], ...outcomes.map(([o, c]) => [o, String(c)])]));
  lines.push('');
  const d = r.check.doubles;
  lines.push(
    table([
      ['figure', 'value'],
      ['truth: delivered / delivered after a revoke said 200 / revoked / neither', `${r.check.truthClasses.delivered} / ${r.check.truthClasses['delivered-after-revoke-200']} / ${r.check.truthClasses.revoked} / ${r.check.truthClasses.neither}`],
      ['double deliveries recorded (unavoidable)', String(d.recorded)],
      ['double deliveries unheard (no DELIVERED before close)', String(d.unheard)],
      ['  …caused by a revoke answered 200 / policy fallback on unknown', `${d.byCause['revoke-200']} / ${d.byCause['policy-on-unknown']}`],
      ['guard events acknowledged / late (after close)', `${r.check.ackedEvents} / ${r.check.lateEvents}`],
      ['pushes abandoned by the platform', String(r.check.abandonedPushes)],
      ['FALLBACK_FAILED check (SMS down): guards / listed by client / by CLI / metric', `${r.fallbackFailed.outcomes.FALLBACK_FAILED ?? 0} of ${r.fallbackFailed.guards} / ${r.fallbackFailed.listedByClient} / ${r.fallbackFailed.listedByCli} / ${r.fallbackFailed.metric ?? 'n/a'}`],
      ['guard start lag (track accepted → first workflow task) p50 / p99 / max', `${(r.guardStartLagMs.p50 / 1000).toFixed(1)} s / ${(r.guardStartLagMs.p99 / 1000).toFixed(1)} s / ${(r.guardStartLagMs.max / 1000).toFixed(1)} s`],
      ['close after deadline p50 / p99 / max', `${(r.check.closeAfterStaleMs.p50 / 1000).toFixed(1)} s / ${(r.check.closeAfterStaleMs.p99 / 1000).toFixed(1)} s / ${(r.check.closeAfterStaleMs.max / 1000).toFixed(1)} s`],
      ['time to drain (first send → last guard closed)', `${(r.drainMs / 1000).toFixed(1)} s`],
      ['wall time', `${(r.wallMs / 1000).toFixed(1)} s`],
    ]),
  );
  lines.push('');
  const byInvariant = ([1, 2, 3, 4, 5] as const).map((i) => [`${i}. ${INVARIANTS[i]}`, String(r.violations.filter((v) => v.invariant === i).length)]);
  lines.push(table([['invariant', 'violations'], ...byInvariant, ['total', String(r.violations.length)]]));
  const trackErrors = Object.entries(r.tracking.errors);
  if (trackErrors.length) {
    lines.push('');
    lines.push('track() attempts that failed and were retried, by error:');
    for (const [kind, count] of trackErrors.sort((x, y) => y[1] - x[1])) lines.push(`  ${count} × ${kind}`);
  }
  if (r.violations.length) {
    lines.push('');
    lines.push(`Violations (first 30 of ${r.violations.length}; all in ${r.dataDir}/violations.json):`);
    for (const v of r.violations.slice(0, 30)) lines.push(`  [${v.invariant}] ${v.workflowId || v.messageId}: ${v.detail}`);
  }
  if (r.dataKept) lines.push(`\nData, logs and truth kept in ${r.dataDir}`);
  return lines.join('\n');
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => (row[i] ?? '').length)));
  const line = (row: string[]) => '| ' + row.map((c, i) => c.padEnd(widths[i]!)).join(' | ') + ' |';
  return [line(rows[0]!), '|' + widths.map((w) => '-'.repeat(w + 2)).join('|') + '|', ...rows.slice(1).map(line)].join('\n');
}
