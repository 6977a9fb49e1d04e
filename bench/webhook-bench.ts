// Webhook throughput: N signed RBM events through the adapter (real HTTP, signature check, envelope
// parsing, signal-with-start) against the same machine's direct client loop doing the same
// signal-with-start calls to the same guards, at the same concurrency. Prints events/s for both, the
// ratio, and p50/p99 ack latency. Not a test: run it and read the figures.
//
//   npx tsx bench/webhook-bench.ts [--events 1000] [--concurrency 32] [--guards 200] [--rounds 6]
//                                  [--warmup 2000] [--adapter in-process|child]
//
// Without TEMPORAL_ADDRESS it starts its own dev server (in memory, WAL). No worker runs: the
// figure is ingestion (Temporal accepting the signal), which is what the webhook's 200 waits for.
// Rounds run in ABBA order (direct, adapter, adapter, direct, …) so a drift in the server's speed
// over the run does not favour either side.
//
// bench/bench.ts runs the same measurement as its scenario 4 through runWebhookBench().
import { spawn, type ChildProcess } from 'node:child_process';
import { realpathSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { Agent, request } from 'node:http';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { WorkflowIdReusePolicy } from '@temporalio/common';
import { loadConfig } from '../config/index.ts';
import { dataConverter, ephemeralEncryption } from '../client/codec.ts';
import { EVENTS_PATH, rbmSignature } from '../service/webhook/app.ts';
import { startWebhookServer, type WebhookServer } from '../service/webhook/server.ts';
import { eventSignals, GUARD_RULES, guardWorkflowId, SA, WORKFLOW_TYPE, type GuardInput } from '../workflows/contract.ts';
import { startDevServer, type DevServer } from '../service/engine/dev-server.ts';

export interface WebhookBenchOptions {
  /** A running Temporal frontend (host:port). */
  address: string;
  /** Events per round and method. */
  events: number;
  concurrency: number;
  /** Guards the events are spread over. */
  guards: number;
  /** Rounds per method (run in ABBA order). */
  rounds: number;
  /** Unmeasured events per method before the rounds. */
  warmup: number;
  adapter: 'in-process' | 'child';
  /** Called once per measured event (progress bars). */
  onEvent?: () => void;
  /** Where the per-round lines go (default: nowhere). */
  log?: (line: string) => void;
}

export interface WebhookBenchSummary {
  method: 'direct' | 'adapter';
  eventsPerSecond: number;
  p50: number;
  p99: number;
  failures: number;
  cpuMicros: number;
  perRound: number[];
}

export interface WebhookBenchResult {
  direct: WebhookBenchSummary;
  adapter: WebhookBenchSummary;
  /** Adapter events/s over direct events/s, all rounds pooled. */
  ratioAll: number;
  /** Direct time over adapter time for each side-by-side pair of rounds. */
  pairRatios: number[];
  medianPairRatio: number;
}

const AGENT = 'bench-agent';
const ORPHAN_AFTER_MS = 24 * 3_600_000;

interface Run {
  method: 'direct' | 'adapter';
  seconds: number;
  /** This process's CPU time per event (µs): with an in-process adapter, its whole cost plus the HTTP client's. */
  cpuMicrosPerEvent: number;
  latenciesMs: number[];
  failures: number;
}

/** Runs `n` jobs with at most `concurrency` in flight; returns wall time and each job's latency. */
async function drive(n: number, concurrency: number, job: (i: number) => Promise<boolean>, onEvent?: () => void): Promise<Omit<Run, 'method'>> {
  const latenciesMs: number[] = [];
  let next = 0;
  let failures = 0;
  const cpu = process.cpuUsage();
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let i = next++; i < n; i = next++) {
        const t0 = performance.now();
        const ok = await job(i);
        latenciesMs.push(performance.now() - t0);
        if (!ok) failures++;
        onEvent?.();
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  return { seconds, cpuMicrosPerEvent: (used.user + used.system) / n, latenciesMs, failures };
}

interface BenchContext {
  options: WebhookBenchOptions;
  token: string;
  /** Payload encryption as in production: both paths pay for the codec. */
  encryption: ReturnType<typeof ephemeralEncryption>;
  taskQueue: string;
  messageIds: string[];
}

function directSignal(ctx: BenchContext, client: Client, round: string) {
  const { guards } = ctx.options;
  return async (i: number): Promise<boolean> => {
    const messageId = ctx.messageIds[i % guards] as string;
    const input: GuardInput = { agentId: AGENT, messageId, rules: GUARD_RULES, orphanAfterMs: ORPHAN_AFTER_MS };
    // Exactly what the adapter does per event (same options, same deadline).
    await client.withDeadline(Date.now() + 5_000, () =>
      client.workflow.signalWithStart(WORKFLOW_TYPE, {
        workflowId: guardWorkflowId(AGENT, messageId),
        taskQueue: ctx.taskQueue,
        args: [input],
        signal: eventSignals.DELIVERED,
        signalArgs: [{ eventId: `${round}-${i}`, sendTime: new Date().toISOString() }],
        workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
        typedSearchAttributes: [
          { key: SA.agentId, value: AGENT },
          { key: SA.state, value: 'AWAITING_TRACK' },
        ],
      }),
    );
    return true;
  };
}

function adapterPush(ctx: BenchContext, url: URL, agent: Agent, round: string) {
  const { guards } = ctx.options;
  return (i: number): Promise<boolean> => {
    const messageId = ctx.messageIds[i % guards] as string;
    const event = {
      senderPhoneNumber: '+15550000000',
      eventType: 'DELIVERED',
      eventId: `${round}-${i}`,
      messageId,
      sendTime: new Date().toISOString(),
      agentId: AGENT,
    };
    const data = Buffer.from(JSON.stringify(event));
    const body = JSON.stringify({
      message: { data: data.toString('base64'), attributes: {}, messageId: String(i), publishTime: new Date().toISOString() },
      subscription: 'projects/bench/subscriptions/rbm',
    });
    return new Promise((resolve, reject) => {
      const req = request(
        url,
        {
          method: 'POST',
          agent,
          headers: {
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(body),
            'x-goog-signature': rbmSignature(ctx.token, data),
          },
        },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode === 200));
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  };
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

function summarize(runs: Run[], method: Run['method'], eventsPerRound: number): WebhookBenchSummary {
  const mine = runs.filter((r) => r.method === method);
  const events = mine.length * eventsPerRound;
  const seconds = mine.reduce((s, r) => s + r.seconds, 0);
  const latencies = mine.flatMap((r) => r.latenciesMs).sort((a, b) => a - b);
  return {
    method,
    eventsPerSecond: events / seconds,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    failures: mine.reduce((s, r) => s + r.failures, 0),
    cpuMicros: mine.reduce((s, r) => s + r.cpuMicrosPerEvent, 0) / mine.length,
    perRound: mine.map((r) => Math.round(eventsPerRound / r.seconds)),
  };
}

/** The adapter as its own process, the way it runs in production (`npm start -- --only webhook`). */
async function startChildAdapter(ctx: BenchContext, address: string): Promise<{ url: string; stop: () => Promise<void> }> {
  const service = fileURLToPath(new URL('../service/main.ts', import.meta.url));
  const tsx = fileURLToPath(new URL('../node_modules/.bin/tsx', import.meta.url));
  const child: ChildProcess = spawn(tsx, [service, '--only', 'webhook'], {
    env: {
      ...process.env,
      ...ctx.encryption.env,
      TEMPORAL_ADDRESS: address,
      TEMPORAL_TASK_QUEUE: ctx.taskQueue,
      RBM_CLIENT_TOKEN: ctx.token,
      WEBHOOK_HOST: '127.0.0.1',
      WEBHOOK_PORT: '0',
      WEBHOOK_ORPHAN_AFTER_MS: String(ORPHAN_AFTER_MS),
      LOG_LEVEL: 'info',
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await new Promise<string>((resolve, reject) => {
    let buffered = '';
    child.once('exit', (code) => reject(new Error(`adapter exited with ${code}`)));
    child.stdout?.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      const port = /"port":(\d+).*webhook adapter listening/.exec(buffered)?.[1];
      if (port) {
        child.stdout?.removeAllListeners('data');
        child.stdout?.resume();
        resolve(`http://127.0.0.1:${port}`);
      }
    });
  });
  return {
    url,
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

/**
 * The measurement itself, against a running Temporal: starts the adapter (in this process or as a
 * child), warms both paths up, runs the rounds in ABBA order and summarizes them.
 */
export async function runWebhookBench(options: WebhookBenchOptions): Promise<WebhookBenchResult> {
  const { address, events, concurrency, guards, rounds, warmup } = options;
  const log = options.log ?? (() => {});
  const ctx: BenchContext = {
    options,
    token: `bench-${randomUUID()}`,
    encryption: ephemeralEncryption('bench'),
    taskQueue: `webhook-bench-${randomUUID().slice(0, 8)}`,
    messageIds: Array.from({ length: guards }, () => randomUUID()),
  };
  const client = new Client({
    connection: await Connection.connect({ address }),
    dataConverter: dataConverter(ctx.encryption.codec),
  });
  let inProcess: WebhookServer | undefined;
  let child: { url: string; stop: () => Promise<void> } | undefined;
  try {
    if (options.adapter === 'child') {
      child = await startChildAdapter(ctx, address);
    } else {
      const config = loadConfig({
        TEMPORAL_ADDRESS: address,
        TEMPORAL_TASK_QUEUE: ctx.taskQueue,
        RBM_CLIENT_TOKEN: ctx.token,
        WEBHOOK_HOST: '127.0.0.1',
        WEBHOOK_PORT: '0',
        WEBHOOK_ORPHAN_AFTER_MS: String(ORPHAN_AFTER_MS),
        LOG_LEVEL: 'silent',
      });
      inProcess = await startWebhookServer(config, { client });
    }
    const url = new URL(`${child?.url ?? inProcess?.url}${EVENTS_PATH}`);
    const agent = new Agent({ keepAlive: true, maxSockets: concurrency });

    // Start every guard and warm up both paths (connections, JIT, the server's caches) before measuring.
    await drive(guards, concurrency, directSignal(ctx, client, 'warm-start'));
    await drive(warmup, concurrency, directSignal(ctx, client, 'warm-direct'));
    await drive(warmup, concurrency, adapterPush(ctx, url, agent, 'warm-adapter'));

    const runs: Run[] = [];
    const order: Run['method'][] = [];
    for (let r = 0; r < rounds; r++) order.push(...(r % 2 === 0 ? (['direct', 'adapter'] as const) : (['adapter', 'direct'] as const)));
    for (const [i, method] of order.entries()) {
      const round = `r${i}-${method}`;
      const job = method === 'direct' ? directSignal(ctx, client, round) : adapterPush(ctx, url, agent, round);
      const run = { method, ...(await drive(events, concurrency, job, options.onEvent)) };
      runs.push(run);
      log(`  round ${i + 1}/${order.length} ${method.padEnd(7)} ${Math.round(events / run.seconds)} events/s`);
    }
    agent.destroy();

    const direct = summarize(runs, 'direct', events);
    const adapter = summarize(runs, 'adapter', events);
    // Each ABBA block holds one run of each method side by side: their ratio is immune to slow drift
    // in the machine's load (other processes, the server warming up), so its median is the figure.
    const pairRatios = [];
    for (let i = 0; i + 1 < runs.length; i += 2) {
      const [a, b] = [runs[i] as Run, runs[i + 1] as Run];
      const [d, w] = a.method === 'direct' ? [a, b] : [b, a];
      pairRatios.push(d.seconds / w.seconds);
    }
    const sortedRatios = [...pairRatios].sort((x, y) => x - y);
    const medianPairRatio = sortedRatios.length % 2
      ? (sortedRatios[(sortedRatios.length - 1) / 2] as number)
      : ((sortedRatios[sortedRatios.length / 2 - 1] as number) + (sortedRatios[sortedRatios.length / 2] as number)) / 2;
    return { direct, adapter, ratioAll: adapter.eventsPerSecond / direct.eventsPerSecond, pairRatios, medianPairRatio };
  } finally {
    await inProcess?.close();
    await child?.stop();
    await client.connection.close();
  }
}

async function main() {
  const { values: args } = parseArgs({
    options: {
      events: { type: 'string', default: '1000' },
      concurrency: { type: 'string', default: '32' },
      guards: { type: 'string', default: '200' },
      rounds: { type: 'string', default: '6' },
      adapter: { type: 'string', default: 'in-process' },
      warmup: { type: 'string', default: '2000' },
    },
  });
  const options = {
    events: Number(args.events),
    concurrency: Number(args.concurrency),
    guards: Number(args.guards),
    rounds: Number(args.rounds),
    warmup: Number(args.warmup),
    adapter: args.adapter === 'child' ? ('child' as const) : ('in-process' as const),
  };
  let devServer: DevServer | undefined;
  let address = process.env.TEMPORAL_ADDRESS;
  if (!address) {
    devServer = await startDevServer();
    address = devServer.address;
  }
  try {
    console.log(
      `webhook bench: ${options.events} events × ${options.rounds} rounds per method, concurrency ${options.concurrency}, ${options.guards} guards, ` +
        `adapter ${options.adapter}, Temporal ${devServer ? 'dev server (in memory, WAL)' : address}, Node ${process.version}`,
    );
    const { direct, adapter, ratioAll, pairRatios, medianPairRatio } = await runWebhookBench({ ...options, address, log: (line) => console.log(line) });
    const row = (s: WebhookBenchSummary) =>
      `${s.method.padEnd(8)} ${s.eventsPerSecond.toFixed(0).padStart(8)} ${s.p50.toFixed(1).padStart(8)} ${s.p99.toFixed(1).padStart(8)} ${String(s.failures).padStart(8)} ${s.cpuMicros.toFixed(0).padStart(12)}   ${s.perRound.join(', ')}`;
    console.log('');
    console.log('method   events/s  p50 ms   p99 ms   failures  cpu µs/event   events/s per round');
    console.log(row(direct));
    console.log(row(adapter));
    console.log('');
    console.log(`adapter / direct, all rounds       = ${ratioAll.toFixed(3)}`);
    console.log(`adapter / direct, per side-by-side pair = ${pairRatios.map((r) => r.toFixed(3)).join(', ')}; median ${medianPairRatio.toFixed(3)} (goal ≥ 0.9)`);
    if (direct.failures + adapter.failures > 0) process.exitCode = 1;
  } finally {
    await devServer?.stop();
  }
}

function executedDirectly(): boolean {
  const entry = process.argv[1];
  if (!entry) return false;
  try {
    return realpathSync(entry) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (executedDirectly()) await main();
