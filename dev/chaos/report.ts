// The chaos run's report: what was injected, what survived, the outcomes, the figures and the
// violations by invariant, as markdown tables.
import { markdownTable as table } from '../../client/cli/render.ts';
import type { SmsProvider } from '../sim/sms-sink.ts';
import type { LocalStack } from '../stack/local-stack.ts';
import type { CHAOS_POLICY } from './batch.ts';
import { INVARIANTS, type CheckResult, type Violation } from './checker.ts';
import type { FallbackFailedCheck } from './fallback-failed.ts';
import { PROCESS_FAULTS, type ProcessFault } from './processes.ts';

export interface ChaosReport {
  n: number;
  seed: number;
  provider: SmsProvider;
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

export function faultTable(stack: LocalStack): ChaosReport['faults'] {
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
    { source: 'RBM', kind: 'TTL revoke landed just before the first DELETE', count: sim.ttlRaces },
    { source: 'RBM', kind: 'DELETE of a message already revoked or expired (404)', count: sim.revokeOfGone },
    { source: 'webhook', kind: 'push attempts refused or failed (retried)', count: sim.pushFailedAttempts },
    { source: 'SMS', kind: 'send answered 5xx', count: sink.faultsByKind.status5xx },
    { source: 'SMS', kind: 'send accepted, response lost / hung', count: sink.faultsByKind.lostResponse + sink.faultsByKind.hang },
    { source: 'SMS', kind: 'send hung past the client, created after it gave up', count: sink.faultsByKind.slowCreate },
    { source: 'SMS', kind: 'Twilio lookups (list or fetch)', count: sink.lookups },
    { source: 'SMS', kind: '  …of which answered 5xx or hung', count: sink.lookupFaults },
    { source: 'SMS', kind: 'provider down (FALLBACK_FAILED check)', count: sink.faultsByKind.down },
  ];
}

export function formatReport(r: ChaosReport): string {
  const lines: string[] = [];
  lines.push(`Chaos run: ${r.n} messages, seed ${r.seed}, SMS provider ${r.provider}`);
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
      ...PROCESS_FAULTS.filter((what) => r.processFaults.some((f) => f.what === what) || what === 'worker SIGKILL').map((what) => [
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
      ['double deliveries recorded: outcome DOUBLE_DELIVERY / late-delivery record', `${d.recorded} / ${d.recordedLate}`],
      ['double deliveries unheard (no DELIVERED/READ ever reached the webhook)', String(d.unheard)],
      ['  …all of them caused by a revoke answered 200 / policy fallback on unknown', `${d.byCause['revoke-200']} / ${d.byCause['policy-on-unknown']}`],
      ['DOUBLE_DELIVERY with no SMS at the sink (one may have gone out)', String(d.withoutSms)],
      ['two SMS to one phone, recorded (FALLBACK_MAYBE_TWICE / noted)', String(r.check.twiceRecorded)],
      ['late-delivery records (rbmLateDelivery workflows) for these guards', String(r.check.lateRecords)],
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

