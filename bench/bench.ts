// `npm run bench`: rbm-guard measured beside the Temporal floor, on this machine. Starts the local
// stack (embedded dev server on a SQLite file, RBM simulator, SMS sink, worker, webhook) and runs:
//   1 floor     two minimal workflows (timer vs signal; sleep + two trivial activities)
//   2 delivered guards delivered through the webhook before their deadline      (ratio to floor 1)
//   3 revoke    guards whose deadline passes: revoke 200, SMS accepted          (ratio to floor 2)
//               + deadline → SMS latency, under that saturating load and at half its throughput
//   4 webhook   signed events/s through the adapter beside a direct signal loop (bench/webhook-bench.ts)
//   5 scale     sleeping guards up to each checkpoint (20,000, 100,000): memory and disk asleep, then a
//               deadline wave of 10,000 and a delivered sample; every woken guard's outcome checked
//   6 history   history events per message on each path, from real histories
//   sqlite      the revoke path on each SQLite setting (journal mode, synchronous) + a crash check
// Scenarios 1–3 (+ paced, + history) run on each --engine (the dev server on SQLite, the PostgreSQL
// engine), one stack each; scale runs on PostgreSQL when it is among them. Besides the report, the
// headline figures go to bench/results/summary.json (bench/lib/summary.ts).
// On this 2-core machine the default run took 70 min (2026-12-01): 11 min for the N-sized part on
// both engines, 63 min for scale (100,000 guards fall asleep at ~36/s).
// Each scenario runs --runs times; the report gives the median with min–max. See bench/README.md.
//
// Flags: `npm run bench -- --help`.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import type { EngineName } from '../service/engine/select.ts';
import { pinnedVersions } from '../service/engine/postgres.ts';
import { postgresBinDir } from '../service/engine/postgres-cluster.ts';
import { cpus, totalmem, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { toolArgs } from '../config/args.ts';
import { execFileSync } from 'node:child_process';
import { MultiBar, Presets, type SingleBar } from 'cli-progress';
import { temporalCliPath } from '../service/engine/temporal-binaries.ts';
import { runWebhookBench } from './webhook-bench.ts';
import { startBenchEnv, type BenchEnv, type EnvOptions } from './lib/env.ts';
import { readHistory } from './lib/history.ts';
import { serviceRssMiB, treePssMiB } from './lib/procs.ts';
import { fmt, spread } from './lib/stats.ts';
import { summarizeProfiles } from './lib/cpuprofile.ts';
import { DELIVER_AFTER_MS, PATH_KINDS, runPath, STALE_IN_MS, type PathKind, type PathRun } from './scenarios/paths.ts';
import { runScale } from './scenarios/scale.ts';
import { runWaves } from './scenarios/wave.ts';
import { crashCheck, type CrashCheck } from './scenarios/crash.ts';
import { writeReport } from './report.ts';
import { SQLITE_SETTINGS, type BenchResults, type EngineRun } from './lib/results.ts';
import { summarize } from './lib/summary.ts';

const SCENARIOS = ['floor', 'delivered', 'revoke', 'webhook', 'wave', 'scale', 'history', 'sqlite'] as const;
type Scenario = (typeof SCENARIOS)[number];

const USAGE = `
npm run bench -- [--n 200] [--runs 3] [--concurrency 96] [--engine dev|postgres|both] [--scale 20000,100000]
                 [--wave 10000] [--scale-deliver 2000] [--scale-runs 1] [--only floor,delivered,revoke,webhook,wave,scale,history,sqlite]
                 [--sqlite-pragmas 'journal_mode=WAL;synchronous=NORMAL'] [--guard-worker stack|bench]
                 [--tuning '{"maxCachedWorkflows":1000}'] [--server-dynamic-config k=v,…] [--cpu-profile]
                 [--paced-rate N] [--keep] [--verbose]

rbm-guard measured beside the Temporal floor on this machine (bench/README.md says what each
scenario does and how long the default run takes); writes bench/results/.`;

const { values: flags } = toolArgs('bench', USAGE, {
  n: { type: 'string', default: '200' },
  runs: { type: 'string', default: '3' },
  concurrency: { type: 'string', default: '96' },
  scale: { type: 'string', default: '20000' },
  'scale-deliver': { type: 'string', default: '2000' },
  wave: { type: 'string' },
  'sms-rate': { type: 'string', default: '100' },
  'otp-share': { type: 'string', default: '0.2' },
  engine: { type: 'string', default: 'both' },
  'scale-runs': { type: 'string', default: '1' },
  only: { type: 'string' },
  'sqlite-pragmas': { type: 'string' },
  'guard-worker': { type: 'string', default: 'stack' },
  tuning: { type: 'string' },
  'server-dynamic-config': { type: 'string' },
  'cpu-profile': { type: 'boolean', default: false },
  'paced-rate': { type: 'string' },
  keep: { type: 'boolean', default: false },
  verbose: { type: 'boolean', default: false },
});

function fail(message: string): never {
  console.error(`bench: ${message}`);
  process.exit(2);
}
const int = (name: string, value: string | undefined, min: number, max: number) => {
  const v = Number(value);
  if (!Number.isInteger(v) || v < min || v > max) fail(`--${name} must be a whole number from ${min} to ${max}, not ${value}`);
  return v;
};
const N = int('n', flags.n, 10, 1_000_000);
const RUNS = int('runs', flags.runs, 1, 20);
const CONCURRENCY = int('concurrency', flags.concurrency, 1, 2000);
// Checkpoints of one pile-up: guards are tracked up to each size in turn, the wave last.
const SCALE_SIZES = [...new Set((flags.scale ?? '').split(',').map((v) => int('scale', v.trim(), 100, 1_000_000)))].sort((a, b) => a - b);
const SCALE = SCALE_SIZES[SCALE_SIZES.length - 1] as number;
// The deadline wave: 10,000 deadlines in one second, at most half the sleeping guards.
const WAVE = flags.wave === undefined ? Math.min(10_000, Math.floor(SCALE / 2)) : Math.min(SCALE, int('wave', flags.wave, 1, 1_000_000));
const SMS_RATE = int('sms-rate', flags['sms-rate'], 1, 100_000);
const OTP_SHARE = Number(flags['otp-share']);
if (!(OTP_SHARE > 0 && OTP_SHARE < 1)) fail(`--otp-share must be a fraction between 0 and 1, not ${flags['otp-share']}`);
const SCALE_DELIVER = int('scale-deliver', flags['scale-deliver'], 0, 1_000_000);
const ENGINES: EngineName[] =
  flags.engine === 'both' ? ['dev', 'postgres'] : flags.engine === 'dev' || flags.engine === 'postgres' ? [flags.engine] : fail(`--engine must be dev, postgres or both, not ${flags.engine}`);
const SCALE_ENGINE: EngineName = ENGINES.includes('postgres') ? 'postgres' : 'dev';
const SCALE_RUNS = int('scale-runs', flags['scale-runs'], 1, 20);
const only = new Set<Scenario>(
  (flags.only ?? SCENARIOS.join(','))
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((s) => (SCENARIOS.includes(s as Scenario) ? (s as Scenario) : fail(`--only: unknown scenario ${s} (one of ${SCENARIOS.join(', ')})`))),
);
const guardWorker = flags.tuning || flags['cpu-profile'] ? 'bench' : flags['guard-worker'] === 'bench' ? 'bench' : flags['guard-worker'] === 'stack' ? 'stack' : fail('--guard-worker is stack or bench');
let tuning: Record<string, unknown> | undefined;
try {
  tuning = flags.tuning ? (JSON.parse(flags.tuning) as Record<string, unknown>) : undefined;
} catch {
  fail(`--tuning must be JSON, e.g. '{"maxCachedWorkflows":1000}'`);
}
const sqlitePragmas = flags['sqlite-pragmas'] !== undefined ? flags['sqlite-pragmas'].split(';').map((p) => p.trim()).filter(Boolean) : undefined;

const here = fileURLToPath(new URL('.', import.meta.url));
const stamp = new Date().toISOString().replace(/[:.]/g, '-').replace(/Z$/, 'Z');
const resultsDir = join(here, 'results');
const runDir = join(resultsDir, stamp);
mkdirSync(runDir, { recursive: true });
const workDir = mkdtempSync(join(tmpdir(), 'rbm-guard-bench-'));
// The PostgreSQL cluster runs as its own user (PostgreSQL refuses root): it must get through.
chmodSync(workDir, 0o711);
const log = flags.verbose ? (source: string, line: string) => process.stderr.write(`[${source}] ${line}`) : undefined;

const temporalVersion = (() => {
  try {
    return execFileSync(temporalCliPath() ?? 'temporal', ['--version'], { encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
})();

// Experiments with the dev server's dynamic config (not a default: see bench/README.md) go through a
// wrapper around the CLI, since the stack starts the server itself.
if (flags['server-dynamic-config']) {
  const cli = temporalCliPath();
  if (!cli) fail('Temporal CLI not found: npm run setup:temporal');
  const extra = flags['server-dynamic-config'].split(',').flatMap((kv) => ['--dynamic-config-value', kv.trim()]);
  const wrapper = join(workDir, 'temporal');
  writeFileSync(wrapper, `#!/bin/sh\nexec '${cli}' "$@" ${extra.map((a) => `'${a}'`).join(' ')}\n`);
  chmodSync(wrapper, 0o755);
  process.env.TEMPORAL_CLI_PATH = wrapper;
}

// ---- progress -------------------------------------------------------------------------------------
// Bars on a terminal (stderr); plain lines when the output goes to a file or a pipe.
const tty = Boolean(process.stderr.isTTY);
const bars = new MultiBar(
  { format: ' {label} |{bar}| {value}/{total} {unit} | {rate} | {eta_formatted} left', hideCursor: true, clearOnComplete: true, etaBuffer: 200 },
  Presets.shades_classic,
);
interface Progress {
  tick(v?: number): void;
  set(v: number): void;
  done(): void;
}
function bar(label: string, total: number, unit = 'messages'): Progress {
  if (!tty) return { tick() {}, set() {}, done() {} };
  const started = Date.now();
  let value = 0;
  const payload = () => ({ label: label.padEnd(40), unit, rate: `${((value * 1000) / Math.max(1, Date.now() - started)).toFixed(1)}/s` });
  const b: SingleBar = bars.create(total, 0, payload());
  return {
    tick(v = 1) {
      value += v;
      b.update(value, payload());
    },
    set(v: number) {
      value = v;
      b.update(value, payload());
    },
    done() {
      b.stop();
      bars.remove(b);
    },
  };
}
const say = (line: string) => (tty ? bars.log(`${line}\n`) : console.log(line));

// ---- results -----------------------------------------------------------------------------------

const results: BenchResults = {
  meta: {
    startedAt: new Date().toISOString(),
    machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model ?? '', memGiB: Math.round(totalmem() / 2 ** 30), node: process.version, temporal: temporalVersion },
    flags: { ...flags },
    n: N,
    runs: RUNS,
    concurrency: CONCURRENCY,
    scale: SCALE,
    scaleSizes: SCALE_SIZES,
    scaleWave: WAVE,
    scaleDeliver: SCALE_DELIVER,
    scaleRuns: SCALE_RUNS,
    engines: ENGINES,
    scaleEngine: SCALE_ENGINE,
    // The PostgreSQL engine runs its own pinned server build, not the CLI's dev server.
    postgresServer: ENGINES.includes('postgres') ? `temporal-server ${pinnedVersions().TEMPORAL_SERVER_VERSION} (.tools/), PostgreSQL from ${postgresBinDir()}` : undefined,
    deliverAfterMs: DELIVER_AFTER_MS,
    staleInMs: STALE_IN_MS,
    sqlitePragmas: sqlitePragmas ? sqlitePragmas.join('; ') || '(none: SQLite defaults)' : '(embedded default, service/engine/dev-server.ts)',
    guardWorker,
    tuning: tuning ?? null,
    serverDynamicConfig: flags['server-dynamic-config'] ?? null,
    stacks:
      'one stack per engine for scenarios 1–3 and 6 (floors and guards side by side, interleaved per run; scenario 4 on the first engine); a fresh stack for each scale run; a fresh stack per SQLite setting',
  },
  engines: {},
  webhook: [],
  scale: [],
  sqlite: [],
};

/** The results so far, and their summary (complete: false until the run has finished). */
function save(complete = false) {
  writeFileSync(join(resultsDir, `${stamp}.json`), JSON.stringify(results, null, 1));
  const summary = JSON.stringify(summarize(results, ['npm run bench --', ...process.argv.slice(2)].join(' '), complete), null, 2);
  writeFileSync(join(resultsDir, 'summary.json'), summary);
  writeFileSync(join(resultsDir, `${stamp}.summary.json`), summary);
}

const profileDir = join(runDir, 'profiles');
function envOptions(dataDir: string, engine: EngineName, pragmas = sqlitePragmas): EnvOptions {
  return {
    dataDir,
    engine,
    sqlitePragmas: pragmas,
    guardWorker,
    tuning,
    // Node refuses --cpu-prof in NODE_OPTIONS: profiles come from the bench workers (floor and guards).
    workerNodeArgs: flags['cpu-profile'] ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : undefined,
    log,
  };
}

async function withEnv<T>(name: string, options: EnvOptions, body: (env: BenchEnv) => Promise<T>): Promise<T> {
  const b = bar(`starting ${name}`, 1, 'stack');
  const env = await startBenchEnv(options);
  b.done();
  try {
    return await body(env);
  } finally {
    await env.stop();
    if (!flags.keep) rmSync(options.dataDir, { recursive: true, force: true });
  }
}

// ---- scenario runners -----------------------------------------------------------------------------
const LABEL: Record<PathKind, string> = {
  'floor-signal': 'floor 1: timer vs signal',
  delivered: 'guards, delivered path',
  'floor-activities': 'floor 2: sleep + 2 activities',
  revoke: 'guards, revoke path',
};

async function pathRun(env: BenchEnv, kind: PathKind, run: number, n = N, load: { concurrency?: number; ratePerSecond?: number } = { concurrency: CONCURRENCY }, tag = '') {
  const b = bar(`${LABEL[kind]}${tag} ${run}/${RUNS}`, n);
  const r = await runPath(env, kind, n, load, () => b.tick());
  b.done();
  const extra = r.deadlineToSms ? `, deadline→SMS p50 ${fmt(r.deadlineToSms.p50)} ms p99 ${fmt(r.deadlineToSms.p99)} ms` : '';
  say(`  ${LABEL[kind]}${tag}, run ${run}: ${fmt(r.perSecond, 1)}/s (${r.failures} failed${r.firstError ? `: ${r.firstError}` : ''})${extra}`);
  return r;
}

async function scenarioPaths(env: BenchEnv, er: EngineRun, eng: EngineName) {
  const kinds = PATH_KINDS.filter((k) => (k.startsWith('floor') ? only.has('floor') || only.has(k === 'floor-signal' ? 'delivered' : 'revoke') : only.has(k as Scenario)));
  if (!kinds.length) return;
  say(`Scenarios 1–3 [${eng}]: ${N} messages each, ${CONCURRENCY} in flight, ${RUNS} runs (floor and guard interleaved)`);
  // Warm up: JIT, connections, the server's caches, the workers' bundles.
  const warm = bar('warm-up', kinds.length * 40);
  for (const kind of kinds) await runPath(env, kind, 40, { concurrency: Math.min(CONCURRENCY, 20) }, () => warm.tick());
  warm.done();
  for (let run = 1; run <= RUNS; run++) {
    // Floor and guard side by side, alternating which goes first, so drift favours neither.
    const order = run % 2 ? kinds : [...kinds].reverse();
    for (const kind of order) (er.paths[kind] ??= []).push(await pathRun(env, kind, run, N, { concurrency: CONCURRENCY }, ` [${eng}]`));
    save();
  }
}

async function scenarioPaced(env: BenchEnv, er: EngineRun, eng: EngineName) {
  if (!only.has('revoke') || flags['paced-rate'] === '0') return;
  // Half of what the revoke path itself sustained: a load the system keeps up with, where latency is
  // the system's and not the length of a queue the closed loop built. Sustained = messages ÷ the
  // whole run: the steady-state rate (20–80 % of completions) of a closed loop of 96 catches the
  // burst of deadlines that fall together (PostgreSQL, 100 guards: 40.8/s steady, 12.0/s overall; a
  // paced run at half the steady rate, 20/s, managed 11.1/s and measured its own queue).
  const capacity = spread((er.paths.revoke ?? []).map((r) => r.overallPerSecond)).median;
  const rate = flags['paced-rate'] ? Number(flags['paced-rate']) : Number.isFinite(capacity) ? Math.max(1, Math.round(capacity / 2)) : 5;
  const n = Math.max(60, Math.min(N, Math.round(rate * 15)));
  say(`Scenario 3, paced [${eng}]: deadline → SMS with ${rate} new guards/s (half the revoke path's throughput), ${n} guards, ${RUNS} runs`);
  const pacedRuns: PathRun[] = [];
  er.paced = { ratePerSecond: rate, revoke: pacedRuns };
  for (let run = 1; run <= RUNS; run++) {
    pacedRuns.push(await pathRun(env, 'revoke', run, n, { ratePerSecond: rate }, ` (paced) [${eng}]`));
    save();
  }
}

async function scenarioWebhook(env: BenchEnv) {
  if (!only.has('webhook')) return;
  const events = Math.max(200, Math.min(N * 2, 2000));
  const concurrency = 32; // the simulator's (Pub/Sub-like) push concurrency in scenario 2
  const rounds = 2;
  const warmup = Math.round(events / 2);
  say(`Scenario 4: webhook, ${events} events × ${rounds} rounds per method, concurrency ${concurrency}, adapter as its own process, ${RUNS} runs`);
  for (let run = 1; run <= RUNS; run++) {
    const b = bar(`webhook ${run}/${RUNS}`, events * rounds * 2, 'events');
    const r = await runWebhookBench({ address: env.stack.devServer.address, events, concurrency, guards: 200, rounds, warmup, adapter: 'child', onEvent: () => b.tick() });
    b.done();
    results.webhook.push(r);
    say(`  webhook, run ${run}: adapter ${fmt(r.adapter.eventsPerSecond)} events/s (p50 ${fmt(r.adapter.p50, 1)} ms, p99 ${fmt(r.adapter.p99, 1)} ms), direct ${fmt(r.direct.eventsPerSecond)}/s, ratio ${fmt(r.medianPairRatio, 3)}`);
    save();
  }
}

async function scenarioHistory(env: BenchEnv, er: EngineRun, eng: EngineName) {
  if (!only.has('history')) return;
  say(`Scenario 6 [${eng}]: history events per message, from real histories (20 per path at 4 in flight, plus the loaded runs’ samples)`);
  for (const kind of PATH_KINDS) {
    const b = bar(`histories: ${LABEL[kind]}`, 20);
    const light = await runPath(env, kind, 20, { concurrency: 4 }, () => b.tick(), 20);
    b.done();
    const read = (ids: PathRun['sampleIds']) => Promise.all(ids.map((s) => readHistory(env.stack.client, s.workflowId, s.staleAtMs)));
    const loadedIds = (er.paths[kind] ?? []).flatMap((r) => r.sampleIds).slice(0, 60);
    er.history[kind] = { canonical: await read(light.sampleIds), loaded: await read(loadedIds) };
    // The paced runs' histories: where the deadline → SMS time goes at the load the latency goal is held at.
    if (kind === 'revoke' && er.paced) (er.history[kind] as NonNullable<EngineRun['history']['revoke']>).paced = await read(er.paced.revoke.flatMap((r) => r.sampleIds).slice(0, 60));
  }
  save();
}

async function scenarioScale() {
  if (!only.has('scale')) return;
  for (let run = 1; run <= SCALE_RUNS; run++) await scaleRun(run);
}

async function scaleRun(run: number) {
  say(
    `Scenario 5 [${SCALE_ENGINE}]: sleeping guards up to ${SCALE_SIZES.map((s) => fmt(s)).join(', then ')} (the last ${fmt(WAVE)} with one deadline second: the wave), ` +
      `${CONCURRENCY} tracked at a time; then ${fmt(SCALE_DELIVER)} of the others delivered; run ${run}/${SCALE_RUNS}, a fresh stack`,
  );
  {
    await withEnv(`stack for scale run ${run}`, envOptions(join(workDir, `scale-${run}`), SCALE_ENGINE), async (env) => {
      let b = bar(`scale ${run}/${SCALE_RUNS}: start`, SCALE, 'guards');
      // Without a terminal: a line every 10 % of each phase, with the RSS at that moment.
      let phase = { name: 'start', total: SCALE, next: 0.1 };
      const t0 = Date.now();
      const r = await runScale(env, { sizes: SCALE_SIZES, wave: WAVE, concurrency: CONCURRENCY, deliverSample: SCALE_DELIVER }, {
        phase(name, total) {
          b.done();
          b = bar(`scale ${run}/${SCALE_RUNS}: ${name}`, total, name.startsWith('sleep') || name.startsWith('wait') ? 's' : 'guards');
          phase = { name, total, next: 0.1 };
        },
        checkpoint: (c) => {
          (results.scaleCheckpoints ??= []).push(c);
          save();
          say(
            `  checkpoint: ${fmt(c.guards)} asleep after ${fmt(c.asleepAtSeconds)} s; worker RSS ${fmt(c.rss.worker)} MiB (peak ${fmt(c.rssPeak.worker)}), server ${fmt(c.rss.server)} MiB` +
              (c.postgres ? `; PostgreSQL ${fmt(c.postgres.bytes / 2 ** 20)} MiB, ${fmt(c.postgres.bytesPerGuard)} bytes/guard, PSS ${fmt(c.postgres.pssMiB)} MiB` : ''),
          );
        },
        tick: (v) => {
          b.set(v);
          if (!tty && v >= phase.next * phase.total) {
            phase.next = Math.floor((v / phase.total) * 10 + 1) / 10;
            say(
              `    ${fmt((Date.now() - t0) / 1000)} s  ${phase.name} ${fmt(v)}/${fmt(phase.total)}: ` +
                `worker RSS ${fmt(serviceRssMiB(env.guardWorkerPid()))} MiB, server RSS ${fmt(serviceRssMiB(env.serverPid()))} MiB`,
            );
          }
        },
      });
      b.done();
      results.scale.push(r);
      say(
        `  scale, run ${run}: tracked ${fmt(r.startPerSecond, 1)}/s, asleep ${fmt(r.asleepPerSecond, 1)}/s; ` +
          r.checkpoints
            .map((c) => `at ${fmt(c.guards)} asleep: worker ${fmt(c.rss.worker)} MiB, server ${fmt(c.rss.server)} MiB` + (c.postgres ? `, PostgreSQL ${fmt(c.postgres.bytesPerGuard)} bytes/guard, PSS ${fmt(c.postgres.pssMiB)} MiB` : ''))
            .join('; ') +
          '; ' +
          (r.wave ? `wave of ${fmt(r.wave.guards)}: drained in ${fmt(r.wave.drainSeconds, 1)} s, deadline→SMS p99 ${fmt(r.wave.deadlineToSms.p99)} ms${r.wave.beforeAllAsleep ? ' (before all were asleep)' : ''}; ` : '') +
          `${fmt(r.delivered)} delivered in ${fmt(r.wakeSeconds)} s: ${JSON.stringify(r.outcomes.byOutcome)}, ${r.outcomes.stillOpen} open, ${fmt(r.outcomes.sleeping)} still asleep, ${r.outcomes.smsSends} SMS — ${r.correct ? 'correct' : 'WRONG'}` +
          (r.firstError ? ` (${r.failures} failed: ${r.firstError})` : ''),
      );
      save();
    });
  }
}

async function scenarioWave() {
  if (!only.has('wave')) return;
  say(
    `Waves [${SCALE_ENGINE}]: ${fmt(WAVE)} deadlines in one second, one wave after the other on a fresh stack: the floor, guards (OTPs), ` +
      `${Math.round(OTP_SHARE * 100)} % OTPs among promotions with the SMS provider limited to ${SMS_RATE}/s, guards on two worker processes`,
  );
  await withEnv('stack for the waves', envOptions(join(workDir, 'waves'), SCALE_ENGINE), async (env) => {
    let b = bar('waves', WAVE, 'guards');
    let phase = { name: '', total: 0, next: 0.1 };
    const t0 = Date.now();
    await runWaves(env, { count: WAVE, concurrency: CONCURRENCY, otpShare: OTP_SHARE, smsPerSecond: SMS_RATE }, {
      phase(name, total) {
        b.done();
        b = bar(name, total, name.startsWith('wait') ? 's' : 'guards');
        phase = { name, total, next: 0.1 };
      },
      tick(v) {
        b.set(v);
        if (!tty && v >= phase.next * phase.total) {
          phase.next = Math.floor((v / phase.total) * 10 + 1) / 10;
          say(`    ${fmt((Date.now() - t0) / 1000)} s  ${phase.name} ${fmt(v)}/${fmt(phase.total)}`);
        }
      },
      done(r) {
        (results.waves ??= []).push(r);
        save();
        const types = Object.entries(r.byType ?? {}).map(([t, l]) => `${t} p99 ${fmt(l.p99)} ms`).join(', ');
        say(
          `  ${r.kind} wave of ${fmt(r.count)} on ${r.workers} worker(s): drained in ${fmt(r.drainSeconds, 1)} s = ${fmt(r.perSecond, 1)}/s, deadline→${r.kind === 'floor' ? 'close' : 'SMS'} p50 ${fmt(r.latency.p50)} ms p99 ${fmt(r.latency.p99)} ms` +
            (types ? ` (${types})` : '') +
            (r.pacing ? `; SMS limit ${r.pacing.limitPerS}/s, at most ${r.pacing.maxObservedPerS} in a second, ${r.pacing.status429} × 429` : '') +
            (r.beforeAllAsleep ? ' (some still falling asleep at T)' : '') +
            `; CPU % of a core: server ${r.cpuPercent.server}, worker(s) ${r.cpuPercent.workers}, PostgreSQL ${r.cpuPercent.postgres}, bench ${r.cpuPercent.bench}, machine ${r.cpuPercent.machine} of 200` +
            ` — ${r.correct ? 'correct' : `WRONG: ${r.smsGuards ?? '?'} texted, ${r.smsSends ?? '?'} SMS, ${r.fallbackSent ?? '?'} FALLBACK_SENT`}`,
        );
      },
    });
    b.done();
  });
}

async function scenarioSqlite() {
  if (!only.has('sqlite')) return;
  const n = N;
  say(`SQLite settings: the revoke path on each, ${n} guards, ${RUNS} runs, then a crash check (SIGKILL of the server under load)`);
  for (const [i, setting] of SQLITE_SETTINGS.entries()) {
    const entry = { ...setting, revoke: [] as PathRun[], floor: [] as PathRun[], crash: null as CrashCheck | null };
    results.sqlite.push(entry);
    await withEnv(`stack with ${setting.name}`, envOptions(join(workDir, `sqlite-${i}`), 'dev', setting.pragmas), async (env) => {
      const warm = bar('warm-up', 30);
      await runPath(env, 'revoke', 30, { concurrency: 20 }, () => warm.tick());
      warm.done();
      for (let run = 1; run <= RUNS; run++) {
        entry.revoke.push(await pathRun(env, 'revoke', run, n, { concurrency: CONCURRENCY }, ` [${setting.name}]`));
        save();
      }
      const b = bar(`crash check [${setting.name}]`, 300, 'guards');
      entry.crash = await crashCheck(env, 300, CONCURRENCY, () => b.tick());
      b.done();
      say(`  crash check [${setting.name}]: ${entry.crash.acknowledged} acknowledged before SIGKILL, ${entry.crash.foundAfterRestart} found after restart, ${entry.crash.completedBefore} closed guards checked: ${entry.crash.completedFound} still closed`);
      save();
    });
  }
}

// ---- main -----------------------------------------------------------------------------------------
const t0 = Date.now();
console.log(
  `rbm-guard bench: ${results.meta.machine.cpus} × ${results.meta.machine.cpuModel}, ${results.meta.machine.memGiB} GiB, Node ${process.version}, ${temporalVersion}\n` +
    `  n=${N} runs=${RUNS} concurrency=${CONCURRENCY} engines=${ENGINES.join(',')} scale=${SCALE_SIZES.join(',')}×${SCALE_RUNS} on ${SCALE_ENGINE} only=${[...only].join(',')} guard worker=${guardWorker}` +
    `${tuning ? ` tuning=${JSON.stringify(tuning)}` : ''} sqlite=${results.meta.sqlitePragmas}${flags['server-dynamic-config'] ? ` dynamic-config=${flags['server-dynamic-config']}` : ''}\n` +
    `  results: bench/results/${stamp}.json, report bench/results/${stamp}.md`,
);
let exitCode = 0;
try {
  if (['floor', 'delivered', 'revoke', 'webhook', 'history'].some((s) => only.has(s as Scenario))) {
    for (const [i, eng] of ENGINES.entries()) {
      const er: EngineRun = { paths: {}, history: {} };
      (results.engines ??= {})[eng] = er;
      await withEnv(`the ${eng} stack`, envOptions(join(workDir, `main-${eng}`), eng), async (env) => {
        er.rssIdle = { worker: serviceRssMiB(env.guardWorkerPid()), server: serviceRssMiB(env.serverPid()), postgres: treePssMiB(env.postgresPid()) };
        say(`Stack up [${eng}]: worker RSS ${fmt(er.rssIdle.worker)} MiB, server RSS ${fmt(er.rssIdle.server)} MiB${env.postgresPid() ? `, PostgreSQL PSS ${fmt(er.rssIdle.postgres ?? NaN)} MiB` : ''} (idle)`);
        await scenarioPaths(env, er, eng);
        await scenarioPaced(env, er, eng);
        if (i === 0) await scenarioWebhook(env);
        await scenarioHistory(env, er, eng);
      });
    }
  }
  // Scale last: the longest by far; its checkpoints are saved (and summarized) as they are measured.
  await scenarioSqlite();
  await scenarioWave();
  await scenarioScale();
} catch (err) {
  exitCode = 1;
  say(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
} finally {
  if (tty) bars.stop();
  results.meta.finishedAt = new Date().toISOString();
  results.meta.seconds = (Date.now() - t0) / 1000;
  if (flags['cpu-profile']) {
    try {
      results.profiles = summarizeProfiles(readdirSync(profileDir).filter((f) => f.endsWith('.cpuprofile')).map((f) => ({ name: f, json: readFileSync(join(profileDir, f), 'utf8') })));
    } catch (err) {
      console.error(`cpu profiles: ${String(err)}`);
    }
  }
  // The headline figures, beside the full results (also kept per run as <stamp>.summary.json).
  save(exitCode === 0);
  const report = writeReport(results, { dir: resultsDir, stamp });
  console.log('');
  console.log(report.console);
  console.log(`\nFinished in ${fmt(results.meta.seconds / 60, 1)} min. Results: bench/results/${stamp}.json; report: bench/results/${stamp}.md; summary: bench/results/summary.json`);
  if (!flags.keep) rmSync(workDir, { recursive: true, force: true });
  const failures = Object.values(results.engines ?? {}).flatMap((e) => Object.values(e.paths).flat()).reduce((s, r) => s + (r?.failures ?? 0), 0) + results.scale.filter((r) => !r.correct).length + (results.waves ?? []).filter((r) => !r.correct).length;
  process.exit(exitCode || (failures ? 1 : 0));
}
