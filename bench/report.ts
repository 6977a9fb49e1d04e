// Turns a results object into the console tables, bench/results/<stamp>.md and one SVG chart per
// scenario in bench/results/<stamp>/. Also usable on its own to re-render an earlier run:
//   npx tsx bench/report.ts bench/results/<stamp>.json
import { mkdirSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LEGS, STEPS, type HistoryFigures } from './lib/history.ts';
import { engineRuns, type BenchResults } from './lib/results.ts';
import { mode, ratios, stepMedians } from './lib/summary.ts';
import { fmt, fmtSpread, spread, type Spread } from './lib/stats.ts';
import { barChart, cdfPoints, lineChart } from './lib/svg.ts';
import type { PathKind, PathRun } from './scenarios/paths.ts';
import type { WaveRun } from './scenarios/wave.ts';

const NAMES: Record<PathKind, string> = {
  'floor-signal': 'Floor 1: timer vs signal',
  delivered: 'Guard, delivered path',
  'floor-activities': 'Floor 2: sleep + 2 activities',
  revoke: 'Guard, revoke path',
};

const GOAL_RATIO = 0.9;
const GOAL_P99_MS = 500; // issue 13: deadline → SMS p99 < 500 ms at half the saturating rate

function table(head: string[], rows: string[][]): { md: string; text: string } {
  const md = [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number))).join('  ');
  const text = [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
  return { md, text };
}

const s = (runs: PathRun[] | undefined, f: (r: PathRun) => number): Spread => spread((runs ?? []).map(f));

const verdict = (ok: boolean | undefined) => (ok === undefined ? '—' : ok ? 'met' : '**missed**');
const verdictText = (ok: boolean | undefined) => (ok === undefined ? '—' : ok ? 'met' : 'MISSED');

/** WORKFLOW_TASK_SCHEDULED → WFT scheduled, ACTIVITY_TASK_COMPLETED → activity completed, … */
function abbreviate(type: string): string {
  return type
    .replace('WORKFLOW_TASK_', 'WFT ')
    .replace('ACTIVITY_TASK_', 'activity ')
    .replace('WORKFLOW_EXECUTION_', 'workflow ')
    .replace('UPSERT_WORKFLOW_SEARCH_ATTRIBUTES', 'upsert SA')
    .replace('TIMER_', 'timer ')
    .toLowerCase()
    .replace('wft', 'WFT')
    .replace('upsert sa', 'upsert SA');
}

function legMedians(figs: HistoryFigures[]): Record<string, number> | undefined {
  const withLegs = figs.map((f) => f.afterDeadline).filter((x): x is NonNullable<HistoryFigures['afterDeadline']> => Boolean(x));
  if (!withLegs.length) return undefined;
  const out: Record<string, number> = {};
  for (const leg of [...LEGS, 'total'] as const) out[leg] = spread(withLegs.map((l) => l[leg])).median;
  return out;
}

export function writeReport(results: BenchResults, where: { dir: string; stamp: string }): { console: string; markdown: string } {
  const chartDir = join(where.dir, where.stamp);
  mkdirSync(chartDir, { recursive: true });
  const md: string[] = [];
  const txt: string[] = [];
  const both = (title: string, t: { md: string; text: string }, note?: string) => {
    md.push(`### ${title}\n\n${t.md}\n${note ? `\n${note}\n` : ''}`);
    txt.push(`${title}\n${t.text}${note ? `\n${note.replace(/\*\*/g, '').replace(/`/g, '')}` : ''}\n`);
  };
  const chart = (file: string, svg: string, alt: string) => {
    writeFileSync(join(chartDir, file), svg);
    md.push(`![${alt}](${where.stamp}/${file})\n`);
  };
  const { meta } = results;
  md.push(
    `# rbm-guard benchmark, ${meta.startedAt}\n\n` +
      `Machine: ${meta.machine.cpus} × ${meta.machine.cpuModel}, ${meta.machine.memGiB} GiB, Node ${meta.machine.node}, ${meta.machine.temporal}.  \n` +
      `Run: n=${meta.n} per scenario, ${meta.runs} runs, ${meta.concurrency} messages in flight, scale ${(meta.scaleSizes ?? [meta.scale]).join(' → ')} (wave ${meta.scaleWave ?? '—'}, ${meta.scaleDeliver ?? 'all'} delivered) × ${meta.scaleRuns}, ` +
      `delivery ${meta.deliverAfterMs} ms after send, deadline ${meta.staleInMs} ms after track; SQLite ${meta.sqlitePragmas}; ` +
      `engines: ${(meta.engines ?? ['dev']).join(', ')}${meta.postgresServer ? ` (PostgreSQL engine: ${meta.postgresServer})` : ''}; guard worker: ${meta.guardWorker}${meta.tuning ? `, tuning ${JSON.stringify(meta.tuning)}` : ''}${meta.serverDynamicConfig ? `, server dynamic config ${meta.serverDynamicConfig}` : ''}.  \n` +
      `Stacks: ${meta.stacks}. Took ${fmt((meta.seconds ?? NaN) / 60, 1)} min.  \n` +
      `Figures are the median over the runs, with (min–max). How to read them: bench/README.md.\n`,
  );
  const goals: string[][] = [];

  // ---- scenarios 1–3 ----
  for (const [eng, er] of engineRuns(results)) {
    const E = ` [${eng}]`;
    const p = er.paths;
    const paced = er.paced;
    const h = er.history;
    if (Object.keys(p).length) {
      const rDelivered = ratios(p.delivered, p['floor-signal']);
      const rRevoke = ratios(p.revoke, p['floor-activities']);
      const cpuShare = (runs: PathRun[] | undefined) => {
        if (!runs?.length) return '—';
        const f = (k: 'worker' | 'server' | 'postgres' | 'webhook' | 'bench' | 'foreign') => spread(runs.map((r) => (100 * (r.cpu[k] ?? NaN)) / r.cpu.wall)).median;
        return `${fmt(f('server'))} / ${fmt(f('postgres'))} / ${fmt(f('worker'))} / ${fmt(f('webhook'))} / ${fmt(f('bench'))} / ${fmt(f('foreign'))}`;
      };
      const rows = (['floor-signal', 'delivered', 'floor-activities', 'revoke'] as const)
        .filter((k) => p[k]?.length)
        .map((k) => [
          NAMES[k],
          fmtSpread(s(p[k], (r) => r.perSecond), 1),
          k === 'delivered' ? fmtSpread(rDelivered, 3) : k === 'revoke' ? fmtSpread(rRevoke, 3) : '',
          `${fmt(s(p[k], (r) => r.endToEnd.p50).median)} / ${fmt(s(p[k], (r) => r.endToEnd.p99).median)}`,
          fmt(s(p[k], (r) => r.rssPeakMiB.worker).median),
          fmt(s(p[k], (r) => r.rssPeakMiB.server).median),
          cpuShare(p[k]),
          String((p[k] ?? []).reduce((n, r) => n + r.failures, 0)),
        ]);
      both(
        `Scenarios 1–3: completions per second (${meta.concurrency} in flight, ${meta.n} messages per run)` + E,
        table(['workflow', 'completed/s', 'ratio to floor', 'e2e p50 / p99 ms', 'worker RSS MiB', 'server RSS MiB', 'CPU % server/PostgreSQL/worker/webhook/bench/others', 'failed'], rows),
        'completed/s: the steady-state rate, between 20 % and 80 % of the completions (ramp-up and drain left out; whole-run averages are in the JSON). ' +
          'Ratio: each guard run over the floor run beside it, median (min–max) over the runs. CPU: percent of one core during the run (the machine has ' +
          `${meta.machine.cpus}); "others" is everything else running on the machine meanwhile (a noisy neighbour shows there). e2e: start call → workflow closed, including the ${meta.deliverAfterMs} ms delivery delay or the ${meta.staleInMs} ms deadline.`,
      );
      goals.push(['Scenario 2 ≥ 0.9 × floor 1' + E, fmtSpread(rDelivered, 3), verdict(Number.isFinite(rDelivered.median) ? rDelivered.median >= GOAL_RATIO : undefined)]);
      goals.push(['Scenario 3 ≥ 0.9 × floor 2' + E, fmtSpread(rRevoke, 3), verdict(Number.isFinite(rRevoke.median) ? rRevoke.median >= GOAL_RATIO : undefined)]);
      chart(
        `scenario-1-floor-${eng}.svg`,
        barChart('Scenario 1: the Temporal floor', 'workflows completed per second', [
          ...(['floor-signal', 'floor-activities'] as const).filter((k) => p[k]).map((k) => ({ label: NAMES[k], ...s(p[k], (r) => r.perSecond), group: k })),
        ]),
        'Scenario 1 chart',
      );
      chart(
        `scenario-2-delivered-${eng}.svg`,
        barChart('Scenario 2: delivered path vs floor 1', 'completed per second', [
          ...(['floor-signal', 'delivered'] as const).filter((k) => p[k]).map((k) => ({ label: NAMES[k], ...s(p[k], (r) => r.perSecond), group: k })),
        ], `ratio ${fmtSpread(rDelivered, 3)} (goal ≥ ${GOAL_RATIO})`),
        'Scenario 2 chart',
      );

      // Deadline → SMS
      const lat: string[][] = [];
      const latRow = (name: string, runs: PathRun[] | undefined) => {
        const runsWith = (runs ?? []).filter((r) => r.deadlineToSms);
        if (!runsWith.length) return;
        lat.push([
          name,
          fmtSpread(spread(runsWith.map((r) => r.deadlineToSms?.p50 ?? NaN))),
          fmtSpread(spread(runsWith.map((r) => r.deadlineToSms?.p99 ?? NaN))),
          fmtSpread(spread(runsWith.map((r) => r.deadlineToSms?.max ?? NaN))),
          fmtSpread(spread(runsWith.map((r) => r.perSecond)), 1),
        ]);
      };
      latRow(`saturating: ${meta.concurrency} in flight`, p.revoke);
      latRow(`paced: ${paced?.ratePerSecond ?? '—'} new guards/s (half the throughput)`, paced?.revoke);
      if (lat.length) {
        both('Scenario 3: deadline → SMS accepted (ms, from the sink’s timestamps)' + E, table(['load', 'p50', 'p99', 'max', 'guards/s'], lat));
        const paced99 = spread((paced?.revoke ?? []).map((r) => r.deadlineToSms?.p99 ?? NaN)).median;
        const sat99 = spread((p.revoke ?? []).map((r) => r.deadlineToSms?.p99 ?? NaN)).median;
        goals.push(['Deadline → SMS p99 < 500 ms (paced load)' + E, `${fmt(paced99)} ms`, verdict(Number.isFinite(paced99) ? paced99 < GOAL_P99_MS : undefined)]);
        goals.push(['Deadline → SMS p99 < 500 ms (saturating load)' + E, `${fmt(sat99)} ms`, verdict(Number.isFinite(sat99) ? sat99 < GOAL_P99_MS : undefined)]);
        const series = [
          { name: `saturating (${meta.concurrency} in flight)`, points: cdfPoints((p.revoke ?? []).flatMap((r) => r.deadlineToSmsSamples ?? [])) },
          { name: `paced (${paced?.ratePerSecond ?? '—'}/s)`, points: cdfPoints((paced?.revoke ?? []).flatMap((r) => r.deadlineToSmsSamples ?? [])) },
        ].filter((x) => x.points.length);
        chart(
          `scenario-3-revoke-${eng}.svg`,
          lineChart('Scenario 3: deadline → SMS accepted', 'ms after staleAt', '% of guards', series, {
            note: `revoke path ${fmtSpread(s(p.revoke, (r) => r.perSecond), 1)}/s vs floor 2 ${fmtSpread(s(p['floor-activities'], (r) => r.perSecond), 1)}/s: ratio ${fmtSpread(rRevoke, 3)}`,
          }),
          'Scenario 3 chart',
        );
      }
    }

    // Where the time after the deadline goes (histories)
    const legRows: string[][] = [];
    for (const [name, figs] of [
      ['Floor 2, 4 in flight', h['floor-activities']?.canonical],
      ['Guard revoke, 4 in flight', h.revoke?.canonical],
      [`Floor 2, ${meta.concurrency} in flight`, h['floor-activities']?.loaded],
      [`Guard revoke, ${meta.concurrency} in flight`, h.revoke?.loaded],
    ] as const) {
      const legs = figs && legMedians([...figs]);
      if (legs) legRows.push([name, ...[...LEGS, 'total'].map((l) => fmt(legs[l] ?? NaN))]);
    }
    if (legRows.length) {
      both(
        'Where the time from deadline to last activity goes (median ms per leg, from histories)' + E,
        table(['path', ...LEGS, 'total'], legRows),
        'timer-late: TimerFired after the deadline; wft-queue: workflow task scheduled → picked up by the worker; wft-run: picked up → completed (worker + the server persisting it); ' +
          'activity-queue / -run: the same for activities (the last one is the SMS send or floor step 2).',
      );
    }

    // The deadline → SMS path by its own steps (paced runs: the load the latency goal is held at).
    const stepRows: string[][] = [];
    for (const [name, figs] of [
      ['Floor 2, 4 in flight', h['floor-activities']?.canonical],
      ['Guard revoke, 4 in flight', h.revoke?.canonical],
      [`Guard revoke, paced (${paced?.ratePerSecond ?? '—'}/s)`, h.revoke?.paced],
      [`Guard revoke, ${meta.concurrency} in flight`, h.revoke?.loaded],
    ] as const) {
      const m = stepMedians(figs);
      if (m) stepRows.push([name, ...STEPS.map((k) => fmt(m.steps[k])), m.largest, String(m.n)]);
    }
    if (stepRows.length) {
      both(
        'Deadline → SMS by step (median ms, from histories)' + E,
        table(['path', ...STEPS, 'largest', 'histories'], stepRows),
        'timer-fire: deadline → TimerFired; wft-1: → the revoke scheduled (a workflow task); revoke: the RBM revoke round trip (scheduled → completed); ' +
          'wft-2: → the SMS scheduled (a workflow task); sms: the SMS round trip. For floor 2 the two activities stand for revoke and SMS.',
      );
    }
  }

  // ---- scenario 4 ----
  if (results.webhook.length) {
    const w = results.webhook;
    const g = (f: (r: (typeof w)[number]) => number) => spread(w.map(f));
    both(
      'Scenario 4: webhook events into signals (events/s; ack latency ms)',
      table(
        ['method', 'events/s', 'p50 ms', 'p99 ms', 'failures'],
        [
          ['webhook adapter (signed push → signal)', fmtSpread(g((r) => r.adapter.eventsPerSecond)), fmtSpread(g((r) => r.adapter.p50), 1), fmtSpread(g((r) => r.adapter.p99), 1), String(w.reduce((n, r) => n + r.adapter.failures, 0))],
          ['direct client signalWithStart', fmtSpread(g((r) => r.direct.eventsPerSecond)), fmtSpread(g((r) => r.direct.p50), 1), fmtSpread(g((r) => r.direct.p99), 1), String(w.reduce((n, r) => n + r.direct.failures, 0))],
          ['adapter / direct (side-by-side pairs)', fmtSpread(g((r) => r.medianPairRatio), 3), '', '', ''],
        ],
      ),
    );
    chart(
      'scenario-4-webhook.svg',
      barChart('Scenario 4: webhook vs direct signal loop', 'events per second', [
        { label: 'webhook adapter', ...g((r) => r.adapter.eventsPerSecond), group: 'a' },
        { label: 'direct signalWithStart', ...g((r) => r.direct.eventsPerSecond), group: 'd' },
      ], `adapter/direct ${fmtSpread(g((r) => r.medianPairRatio), 3)}; ack p99 ${fmtSpread(g((r) => r.adapter.p99), 1)} ms vs ${fmtSpread(g((r) => r.direct.p99), 1)} ms`),
      'Scenario 4 chart',
    );
  }

  // ---- scenario 5 ----
  for (const r of results.scale) {
    const cps = r.checkpoints ?? [];
    const per = (f: (c: (typeof cps)[number]) => string) => cps.map((c) => `${fmt(c.guards)}: ${f(c)}`).join('; ');
    const w = r.wave;
    both(
      `Scenario 5: ${cps.map((c) => fmt(c.guards)).join(', then ')} sleeping guards [${r.engine ?? 'dev'}]`,
      table(
        ['figure', 'value'],
        [
          ['tracked per second (track() acknowledged)', fmt(r.startPerSecond, 1)],
          ['asleep per second (first workflow task done, timer set)', fmt(r.asleepPerSecond, 1)],
          ['all asleep after (s)', per((c) => fmt(c.asleepAtSeconds))],
          ['worker RSS before; asleep, settled (peak in the window), MiB', `${fmt(r.rssBefore.worker)}; ${per((c) => `${fmt(c.rss.worker)} (${fmt(c.rssPeak.worker)})`)}`],
          ['server RSS before; asleep, settled (peak in the window), MiB', `${fmt(r.rssBefore.server)}; ${per((c) => `${fmt(c.rss.server)} (${fmt(c.rssPeak.server)})`)}`],
          ['PostgreSQL: database size asleep (MiB); per guard (bytes)', cps.some((c) => c.postgres) ? per((c) => (c.postgres ? `${fmt(c.postgres.bytes / 2 ** 20)}; ${fmt(c.postgres.bytesPerGuard)}` : '—')) : '—'],
          ['PostgreSQL PSS before; asleep (MiB, whole cluster)', r.postgresBefore ? `${fmt(r.postgresBefore.pssMiB)}; ${per((c) => fmt(c.postgres?.pssMiB ?? NaN))}` : '—'],
          ['deadline wave: guards with one deadline second', w ? fmt(w.guards) : '—'],
          ['wave: deadline → last SMS (drain, s)', w ? fmt(w.drainSeconds, 1) : '—'],
          ['wave: deadline → SMS p50 / p99 / max (ms)', w ? `${fmt(w.deadlineToSms.p50)} / ${fmt(w.deadlineToSms.p99)} / ${fmt(w.deadlineToSms.max)}` : '—'],
          ['wave began before every guard was asleep', w ? (w.beforeAllAsleep ? 'yes' : 'no') : '—'],
          ['delivered sample: guards woken by DELIVERED; all closed after (s)', `${fmt(r.delivered)}; ${fmt(r.wakeSeconds)}`],
          ['delivered sample closed per second', fmt(r.wakePerSecond, 1)],
          ['outcomes of the woken guards (each one’s result)', Object.entries(r.outcomes.byOutcome).map(([k, v]) => `${k} ${fmt(v)}`).join(', ')],
          ['still asleep at the end (visibility: Running), expected', `${fmt(r.outcomes.sleeping)}, ${fmt(r.guards - (w?.guards ?? 0) - r.delivered)}`],
          ['SMS sent / duplicates', `${fmt(r.outcomes.smsSends)} / ${r.outcomes.duplicateSms}`],
          ['every guard reached the right outcome', r.correct ? 'yes' : 'NO'],
        ],
      ),
    );
  }
  const last = results.scale[results.scale.length - 1];
  if (last) {
    const starting = last.samples.filter((x) => x.count !== undefined);
    chart(
      'scenario-5-scale.svg',
      lineChart('Scenario 5: RSS while guards pile up, sleep and resolve', 'seconds', 'RSS (MiB)', [
        { name: 'worker RSS', points: starting.map((x) => [x.t / 1000, x.worker]) },
        { name: 'server RSS', points: starting.map((x) => [x.t / 1000, x.server]) },
        { name: `guards started / ${fmt(Math.max(1, last.guards / 500))}`, points: starting.map((x) => [x.t / 1000, (x.count ?? 0) / Math.max(1, last.guards / 500)]) },
      ], { note: `${fmt(last.guards)} guards: tracked by ${fmt(last.startSeconds)} s, all asleep by ${fmt(last.asleepSeconds)} s, then the wave and the delivered sample` }),
      'Scenario 5 chart',
    );
  }

  // ---- the waves (bench/scenarios/wave.ts) ----
  const waves = results.waves ?? [];
  if (waves.length) {
    const label: Record<WaveRun['kind'], string> = {
      floor: 'Floor wave: timer + 2 activities',
      guard: 'Guard wave (OTPs)',
      mixed: 'Mixed wave, SMS paced',
      twoWorkers: 'Guard wave, two worker processes',
    };
    const rows = waves.map((w) => [
      label[w.kind],
      fmt(w.count),
      fmt(w.drainSeconds, 1),
      fmt(w.perSecond, 1),
      `${fmt(w.latency.p50)} / ${fmt(w.latency.p99)}`,
      w.byType ? Object.entries(w.byType).map(([t, l]) => `${t} ${fmt(l.p50)} / ${fmt(l.p99)}`).join('; ') : '—',
      `${w.cpuPercent.server} / ${w.cpuPercent.workers} / ${w.cpuPercent.postgres} / ${w.cpuPercent.bench} / ${w.cpuPercent.machine}`,
      w.smsSends === undefined ? '—' : `${fmt(w.smsSends)} / ${fmt(w.smsGuards ?? NaN)}`,
      w.correct ? 'yes' : 'NO',
    ]);
    const mixed = waves.find((w) => w.kind === 'mixed');
    both(
      `The waves: ${fmt(waves[0]?.count ?? NaN)} deadlines in one second, each wave on the same stack`,
      table(['wave', 'count', 'drain s', 'per s', 'T → SMS p50 / p99 ms', 'by type p50 / p99 ms', 'CPU % server/workers/PostgreSQL/bench/machine', 'SMS sent / guards with one', 'right'], rows),
      'T → SMS: from the deadline second to the SMS the sink accepted (floor: to the workflow closed). CPU: percent of one core from T to the drain’s end; the machine has 2 (200 %).' +
        (mixed?.pacing ? ` Pacing: limit ${fmt(mixed.pacing.limitPerS)} SMS/s, at most ${fmt(mixed.pacing.maxObservedPerS)} accepted in one second, ${fmt(mixed.pacing.status429)} answers 429.` : ''),
    );
    const legRows = waves.flatMap((w) =>
      Object.entries(w.legsByType ?? {}).map(([t, l]) => [`${label[w.kind]}: ${t}`, ...LEGS.map((leg) => fmt(l[leg])), fmt(l.total), fmt(l.histories)]),
    );
    if (legRows.length) {
      both(
        'The waves: where T → SMS goes (median ms per leg over a sample of histories per traffic type)',
        table(['wave: traffic type', ...LEGS, 'total', 'histories'], legRows),
        'timer-late: TimerFired after T (the server firing 10,000 timers); wft-queue / activity-queue: waiting for a worker to take the task (where priority orders); wft-run: the workflow task, its local revoke included; activity-run: the SMS.',
      );
    }
    const guard = waves.find((w) => w.kind === 'guard');
    const floor = waves.find((w) => w.kind === 'floor');
    if (guard && floor) goals.push(['Wave: guard ≥ 1.0 × floor wave (drain rate)', fmt(guard.perSecond / floor.perSecond, 3), verdict(guard.perSecond >= floor.perSecond)]);
    if (guard) goals.push(['Wave: ≥ 63 guards/s', fmt(guard.perSecond, 1), verdict(guard.perSecond >= 63)]);
    const otp = mixed?.byType?.AUTHENTICATION;
    if (otp) goals.push(['Mixed wave: OTP deadline → SMS p99 ≤ 60 s', `${fmt(otp.p99)} ms`, verdict(otp.p99 <= 60_000)]);
    if (mixed?.pacing) goals.push(['Mixed wave: SMS held under the provider limit', `${fmt(mixed.pacing.maxObservedPerS)} of ${fmt(mixed.pacing.limitPerS)}/s, ${fmt(mixed.pacing.status429)} × 429`, verdict(mixed.pacing.maxObservedPerS <= mixed.pacing.limitPerS)]);
    goals.push(['Waves: every outcome right', waves.every((w) => w.correct) ? 'yes' : 'no', verdict(waves.every((w) => w.correct))]);
  }

  // ---- scenario 6 ----
  for (const [eng, er] of engineRuns(results)) {
    const E = ` [${eng}]`;
    const h = er.history;
    const histRows: string[][] = [];
    const events = (f?: HistoryFigures[]) => (f?.length ? f.map((x) => x.events) : []);
    const actions = (f?: HistoryFigures[]) => (f?.length ? f.map((x) => x.actions) : []);
    for (const kind of ['floor-signal', 'delivered', 'floor-activities', 'revoke'] as const) {
      const c = events(h[kind]?.canonical);
      const l = events(h[kind]?.loaded);
      if (!c.length) continue;
      const a = actions(h[kind]?.canonical);
      histRows.push([NAMES[kind], fmt(mode(a)), fmt(mode(c)), `${fmt(Math.min(...c))}–${fmt(Math.max(...c))}`, l.length ? `${fmt(Math.min(...l))}–${fmt(Math.max(...l))}` : '—']);
    }
    if (histRows.length) {
      const d = mode(events(h.delivered?.canonical)) - mode(events(h['floor-signal']?.canonical));
      const r = mode(events(h.revoke?.canonical)) - mode(events(h['floor-activities']?.canonical));
      both(
        'Scenario 6: history events per message (real histories)' + E,
        table(['workflow', 'actions (typical)', 'events (typical)', 'range at 4 in flight', `range at ${meta.concurrency} in flight`], histRows),
        `Guard − floor: delivered path ${Number.isFinite(d) ? (d >= 0 ? '+' : '') + d : '—'}, revoke path ${Number.isFinite(r) ? (r >= 0 ? '+' : '') + r : '—'}. ` +
          'Under load a signal can arrive before the first workflow task, so both the floor and the guard skip their timer: the lower end of the range. ' +
          'Actions are counted as Temporal Cloud bills them (bench/lib/history.ts, billableActions: workflow started, signal, timer started, each activity attempt, search-attribute upsert, update).',
      );
      md.push(
        '<details><summary>Event sequences (first history of each, at 4 in flight)</summary>\n\n' +
          (['floor-signal', 'delivered', 'floor-activities', 'revoke'] as const)
            .filter((k) => h[k]?.canonical[0])
            .map((k) => `- ${NAMES[k]}: ${(h[k]?.canonical[0]?.types ?? []).map(abbreviate).join(' → ')}`)
            .join('\n') +
          '\n\n</details>\n',
      );
      if (Number.isFinite(d)) goals.push(['Delivered-path history within 2 events of floor 1' + E, `${d >= 0 ? '+' : ''}${d}`, verdict(d <= 2)]);
      chart(
        `scenario-6-history-${eng}.svg`,
        barChart('Scenario 6: history events per message', 'events (typical, range at 4 in flight)', (['floor-signal', 'delivered', 'floor-activities', 'revoke'] as const)
          .filter((k) => h[k]?.canonical.length)
          .map((k) => {
            const c = events(h[k]?.canonical);
            return { label: NAMES[k], median: mode(c), min: Math.min(...c), max: Math.max(...c), group: k.startsWith('floor') ? 'floor' : 'guard' };
          })),
        'Scenario 6 chart',
      );
    }
  }

  // ---- SQLite ----
  if (results.sqlite.length) {
    const rows = results.sqlite.map((e) => [
      e.name,
      e.pragmas.length ? e.pragmas.join('; ') : '(none)',
      fmtSpread(s(e.revoke, (r) => r.perSecond), 1),
      fmtSpread(s(e.revoke, (r) => r.deadlineToSms?.p50 ?? NaN)),
      fmtSpread(s(e.revoke, (r) => r.deadlineToSms?.p99 ?? NaN)),
      e.crash ? `${e.crash.foundAfterRestart}/${e.crash.acknowledged} acknowledged starts, ${e.crash.completedFound}/${e.crash.completedBefore} closed guards` : '—',
    ]);
    both(
      `SQLite settings of the embedded dev server (revoke path, ${meta.concurrency} in flight; crash = SIGKILL of the server under load, restart on the same file)`,
      table(['setting', 'pragmas', 'revoke guards/s', 'deadline→SMS p50 ms', 'p99 ms', 'still there after the crash'], rows),
      results.sqlite.map((e) => `${e.name}: ${e.note}.`).join(' '),
    );
    chart(
      'sqlite.svg',
      barChart('SQLite settings: revoke path throughput', 'guards completed per second', results.sqlite.map((e) => ({ label: e.name, ...s(e.revoke, (r) => r.perSecond), group: e.name }))),
      'SQLite chart',
    );
  }

  // ---- scale goal (needs two checkpoints) ----
  for (const r of results.scale) {
    // Flat within 10 % from the smallest to the largest checkpoint of the pile-up.
    const cps = r.checkpoints ?? [];
    const [lo, hi] = [cps[0], cps[cps.length - 1]];
    if (lo && hi && hi.guards > lo.guards) {
      const growth = hi.rss.worker / lo.rss.worker - 1;
      goals.push([`Worker RSS flat (within 10 %) from ${fmt(lo.guards)} to ${fmt(hi.guards)} sleeping guards`, `${fmt(lo.rss.worker)} → ${fmt(hi.rss.worker)} MiB (${fmt(100 * growth, 1)} %)`, verdict(Number.isFinite(growth) ? growth <= 0.1 : undefined)]);
    } else if (hi) {
      goals.push([`Worker RSS with ${fmt(hi.guards)} sleeping guards (flat? needs two checkpoints: --scale 20000,100000)`, `${fmt(hi.rss.worker)} MiB`, '—']);
    }
    if (r.wave) goals.push([`Deadline wave of ${fmt(r.wave.guards)} among ${fmt(r.guards)}: every outcome right`, r.correct ? 'yes' : 'no', verdict(r.correct)]);
  }

  // ---- CPU profiles ----
  for (const prof of results.profiles ?? []) {
    both(
      `CPU profile ${prof.file} (${fmt(prof.busyMs / 1000, 1)} s busy of ${fmt(prof.wallMs / 1000, 1)} s)`,
      table(['area / function', 'self ms', 'share of busy'], [
        ...prof.areas.filter((a) => a.area !== 'idle').slice(0, 8).map((a) => [a.area, fmt(a.ms), `${fmt(100 * a.share, 1)} %`]),
        ['—', '', ''],
        ...prof.top.slice(0, 10).map((f) => [`${f.fn} (${f.where})`, fmt(f.ms), `${fmt(100 * f.share, 1)} %`]),
      ]),
    );
  }

  if (goals.length) {
    const t = table(['goal', 'measured', 'verdict'], goals);
    md.splice(1, 0, `### Goals\n\n${t.md}\n`);
    txt.unshift(`Goals\n${table(['goal', 'measured', 'verdict'], goals.map((g) => [g[0] as string, g[1] as string, verdictText(g[2] === '—' ? undefined : g[2] === 'met')])).text}\n`);
  }
  const markdown = md.join('\n');
  writeFileSync(join(where.dir, `${where.stamp}.md`), markdown);
  return { console: txt.join('\n'), markdown };
}

function executedDirectly(): boolean {
  try {
    return Boolean(process.argv[1]) && realpathSync(process.argv[1] as string) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (executedDirectly()) {
  const file = process.argv[2];
  if (!file) {
    console.error('usage: npx tsx bench/report.ts bench/results/<stamp>.json');
    process.exit(2);
  }
  const results = JSON.parse(readFileSync(file, 'utf8')) as BenchResults;
  const { console: text } = writeReport(results, { dir: dirname(file), stamp: basename(file, '.json') });
  console.log(text);
}
