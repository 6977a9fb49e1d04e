// The chaos run: the whole local stack (Temporal dev server on a SQLite file, RBM simulator, SMS sink,
// worker and webhook as child processes) guarding a batch of messages while the platform misbehaves
// (the fault rates, on the simulator's pessimistic defaults) and the processes die
// (./processes.ts). Then every message is judged against the simulator's and the sink's ground truth
// by ./checker.ts, and the FALLBACK_FAILED path is checked end to end (./fallback-failed.ts).
// `npm run chaos` (./chaos.ts) prints the report (./report.ts); test/dev/chaos/chaos.test.ts runs 150 messages.
import { randomBytes } from 'node:crypto';
import { createWriteStream, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ACTIVITY_ATTEMPT_TIMEOUT_MS,
  guardWorkflowId,
  MAX_RETRY_AFTER_MS,
  MAX_REVOKE_BACKOFF_MS,
  type GuardPolicy,
} from '../../workflows/contract.ts';
import { retryDelayMs } from '../../workflows/guard-state.ts';
import { freePort } from '../../service/engine/dev-server.ts';
import type { RandomFaults } from '../sim/rbm-simulator.ts';
import type { SmsProvider, SmsRandomFaults } from '../sim/sms-sink.ts';
import { startLocalStack, STACK_REQUEST_TIMEOUTS } from '../stack/local-stack.ts';
import { seededRandom } from '../random.ts';
import { CHAOS_POLICY, chaosBatch, waveAtMs, type ChaosMessage } from './batch.ts';

/** Share of the early messages whose deadlines fall in one second: the outage moment, with a worker kill inside it. */
const WAVE_SHARE = 0.35;
import { check, type CheckedMessage } from './checker.ts';
import { collectGuards, collectLateRecords, countOpen, percentiles, trackWithRetry } from './collect.ts';
import { fallbackFailedCheck } from './fallback-failed.ts';
import { inflict, processFaultSchedule, type ProcessFault } from './processes.ts';
import { faultTable, type ChaosReport } from './report.ts';

export { formatReport, type ChaosReport } from './report.ts';
export type { ProcessFault } from './processes.ts';

/** The faults during which Temporal does not answer: track() has to ride them out. */
const TEMPORAL_OUTAGES = new Set<ProcessFault['what']>(['Temporal stop/restart', 'Temporal server SIGKILL', 'PostgreSQL stop/start']);
export type { FallbackFailedCheck } from './fallback-failed.ts';

/** The platform faults. */
export const SIM_FAULT_RATES: Omit<RandomFaults, 'seed'> = {
  revoke429or5xx: 0.2,
  revokeHang: 0.05,
  revokeLostResponse: 0.02,
  raceDelivery: 0.03,
  duplicateEvent: 0.02,
  readBeforeDelivered: 0.02,
  noEvent: 0.01,
  // Of the messages with a platform TTL: its revoke lands just before the guard's first DELETE (404,
  // then TTL_EXPIRATION_REVOKED), or the platform's own TTL revoke fails.
  ttlRacesRevoke: 0.2,
  ttlRevokeFailed: 0.05,
  hangMs: 2_500, // past the worker's RBM_REQUEST_TIMEOUT_MS (1 s in the local stack)
};
/** The SMS provider faults; the lookups only happen with Twilio (the HTTP endpoint is idempotent). */
export const SINK_FAULT_RATES: Omit<SmsRandomFaults, 'seed'> = {
  error5xx: 0.1,
  lostResponse: 0.02,
  lookup5xx: 0.1,
  lookupHang: 0.02,
  // A provider slower than the client: the POST hangs past the client's timeout and the message is
  // created only then, 4 s after the client gave up — after the next attempt's lookup under rules 2
  // (1 s backoff), before it under rules 3 (PROVIDER_SETTLE_MS).
  slowCreate: 0.05,
  slowCreateMs: 6_000,
  hangMs: 3_000, // past the worker's FALLBACK_REQUEST_TIMEOUT_MS (2 s in the local stack)
};

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
  /** The SMS provider the worker uses against the sink: the idempotent HTTP endpoint (default) or Twilio, which is not. */
  provider?: SmsProvider;
}

/** The worker's environment for a fallback provider pointed at the sink. */
function providerEnv(provider: SmsProvider, sinkUrl: string, twilio: { accountSid: string; authToken: string }): Record<string, string> {
  if (provider === 'http') return { FALLBACK_PROVIDER: 'http', FALLBACK_HTTP_URL: `${sinkUrl}/messages` };
  return {
    FALLBACK_PROVIDER: 'twilio',
    TWILIO_API_BASE_URL: sinkUrl,
    TWILIO_ACCOUNT_SID: twilio.accountSid,
    TWILIO_AUTH_TOKEN: twilio.authToken,
    TWILIO_FROM: '+15005550006',
  };
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, Math.max(0, ms)));

/** The longest a guard can legitimately stay open after its deadline, crashes included. */
export function guardBoundMs(policy: Omit<GuardPolicy, 'onUnknown'>, workerKills: number, processFaultsDownMs: number): number {
  const backoff = (attempts: number, maxMs: number) => {
    let total = 0;
    for (let i = 0; i < attempts - 1; i++) total += Math.min(maxMs, 1_000 * 2 ** i);
    return total;
  };
  const revokeRound = policy.revokeAttempts * (RBM_REQUEST_TIMEOUT_MS + 1_000) + backoff(policy.revokeAttempts, MAX_REVOKE_BACKOFF_MS);
  const revoke = policy.maxRevokeRounds * (revokeRound + policy.graceMs);
  // Each SMS attempt may first look up an earlier one (Twilio): two requests; between attempts the
  // guard's own delay, a Retry-After up to its cap.
  const fallbackAttempt = 2 * FALLBACK_REQUEST_TIMEOUT_MS + 1_000;
  let fallback = policy.fallbackAttempts * fallbackAttempt;
  for (let attempt = 1; attempt < policy.fallbackAttempts; attempt++) fallback += retryDelayMs(attempt, MAX_RETRY_AFTER_MS);
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
  const provider = options.provider ?? 'http';
  // Fixed before the stack starts: the worker's environment names the sink's Twilio account.
  const twilio = { accountSid: `AC${randomBytes(16).toString('hex')}`, authToken: randomBytes(16).toString('hex') };

  progress(`Starting the local stack: Temporal (SQLite file), RBM simulator, SMS sink (${provider}), worker, webhook…`);
  const stack = await startLocalStack({
    // The sink's pessimistic defaults: Twilio ignores Idempotency-Key; queued SMS have no date_sent yet.
    sink: { twilio },
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
  // The sink's URL is known only now: point the provider at it and restart the worker with it.
  if (provider !== 'http') {
    Object.assign(stack.env, providerEnv(provider, stack.sink.url, twilio));
    await stack.worker.stop();
    await stack.worker.start();
  }

  try {
    stack.sim.setRandomFaults({ seed, ...SIM_FAULT_RATES });
    stack.sink.setRandomFaults({ seed: seed ^ 0x5eed, ...SINK_FAULT_RATES });

    const arrivalWindowMs = Math.max(9_000, n * 60); // ~16 messages a second
    const batch = chaosBatch({ n, seed, arrivalWindowMs, waveShare: WAVE_SHARE });
    const wave = batch.filter((m) => m.waveAtMs !== null).length;
    const maxStaleIn = Math.max(...batch.map((m) => m.staleInMs));
    const random = seededRandom(seed ^ 0xc4a05);

    // ---- process faults, at seeded random moments while guards are deciding ----
    // Kills from the first deadline on (when revokes and SMS are in flight) to the last deadline.
    const minStaleIn = Math.min(...batch.map((m) => m.staleInMs));
    const schedule = kills ? processFaultSchedule(random, minStaleIn, arrivalWindowMs + maxStaleIn + 6_000, arrivalWindowMs, stack.postgres ? 'postgres' : 'dev', wave ? waveAtMs(arrivalWindowMs) : undefined) : [];
    if (wave) progress(`A deadline wave: ${wave} of the ${n} deadlines at ${(waveAtMs(arrivalWindowMs) / 1000).toFixed(0)} s, a worker SIGKILL inside it.`);
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
      const staleAt = m.waveAtMs !== null ? start + m.waveAtMs : sentAt + m.staleInMs;
      const expireTime = m.expireInMs === null ? undefined : new Date(sentAt + m.expireInMs).toISOString();
      if (m.sendText) {
        stack.sim.plan(m.messageId, m.plan); // applied when the guard's send reaches the platform
      } else {
        stack.sim.registerSent({
          agentId: m.agentId,
          messageId: m.messageId,
          phone: m.phone,
          plan: m.plan,
          sentAt,
          expireTime,
        });
      }
      const result = await trackWithRetry(stack, {
        agentId: m.agentId,
        messageId: m.messageId,
        phone: m.phone,
        sentAt: new Date(sentAt), // a track() that only gets through after the deadline is still guarded
        staleAt: new Date(staleAt),
        // The backend tells the guard the TTL it set on the message: the platform may revoke it first.
        ...(expireTime ? { expireTime } : {}),
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
    const lateRecords = await collectLateRecords(stack);
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
      guardSends: m.sendText !== null,
    }));
    for (const [id, g] of ff.guards) guards.set(id, g);
    const result = check({
      messages: [...checked, ...ff.messages],
      truth: (id) => stack.sim.truth(id),
      smsTo: (phone) => stack.sink.distinctSendsTo(phone),
      guard: (id) => guards.get(id),
      lateRecords,
      boundMs,
    });
    const violations = [
      ...result.violations,
      ...ff.report.problems.map((detail) => ({ invariant: 2 as const, messageId: '(FALLBACK_FAILED check)', workflowId: '', detail })),
    ];

    const trackRecords = [...records.values()];
    const report: ChaosReport = {
      n,
      seed,
      provider,
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
          processFaults.some((f) => TEMPORAL_OUTAGES.has(f.what) && r.startedAt < start + f.at + f.downMs && r.trackedAt > start + f.at),
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

