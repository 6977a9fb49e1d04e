// What the HTTP API costs over a direct GuardClient.track(): the same run, one dev server, one
// codec, calls interleaved one at a time (API, direct, API, …), so both see the same server state.
// No worker runs: both measure the start of a guard (validation, encryption, StartWorkflowExecution),
// the API adding HTTP, auth, rate limit and problem handling.
//   npx tsx bench/api-bench.ts [--n 300]
import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { loadConfig } from '../config/index.ts';
import { createLogger } from '../config/logger.ts';
import { dataConverter, ephemeralEncryption } from '../client/codec.ts';
import { GuardClient } from '../client/guard-client.ts';
import { startApiServer } from '../service/api/server.ts';
import { startDevServer } from '../service/engine/dev-server.ts';
import { fmt, latency } from './lib/stats.ts';

const n = Number(process.argv[process.argv.indexOf('--n') + 1] || 300);
const warmup = 30;
const KEY = `bench-${randomUUID()}`;

const server = await startDevServer({ dbFile: join(mkdtempSync(join(tmpdir(), 'rbm-guard-api-bench-')), 'temporal.db') });
const { env, codec } = ephemeralEncryption('bench');
const taskQueue = `api-bench-${randomUUID()}`;
const config = loadConfig({ ...env, TEMPORAL_ADDRESS: server.address, TEMPORAL_TASK_QUEUE: taskQueue, RBM_GUARD_API_KEYS: KEY, RBM_GUARD_API_HOST: '127.0.0.1', RBM_GUARD_API_PORT: '0', RBM_GUARD_API_RATE_LIMIT: '1000000', LOG_LEVEL: 'silent' });
const client = new Client({ connection: await Connection.connect({ address: server.address }), dataConverter: dataConverter(codec) });
const api = await startApiServer(config, { client, logger: createLogger(config) });
const guards = new GuardClient(client, taskQueue);

const body = (i: number) => ({ agentId: 'bench-agent', messageId: `m-${i}-${randomUUID()}`, phone: '+14155550100', staleIn: '10m', fallbackText: 'Your code is 123456', trafficType: 'AUTHENTICATION' });
const viaApi = async (i: number) => {
  const res = await fetch(`${api.url}/v1/guards`, { method: 'POST', headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' }, body: JSON.stringify(body(i)) });
  if (res.status !== 201) throw new Error(`API answered ${res.status}: ${await res.text()}`);
};
const direct = async (i: number) => {
  const r = await guards.track(body(i) as Parameters<GuardClient['track']>[0]);
  if (!r.created) throw new Error('direct track did not start a guard');
};

const samples = { api: [] as number[], direct: [] as number[] };
try {
  for (let i = 0; i < warmup + n; i++) {
    for (const [name, fn] of [['api', viaApi], ['direct', direct]] as const) {
      const t0 = performance.now();
      await fn(i);
      if (i >= warmup) samples[name].push(performance.now() - t0);
    }
  }
  const a = latency(samples.api);
  const d = latency(samples.direct);
  console.log(`POST /v1/guards vs GuardClient.track(), ${n} each after ${warmup} warm-up, interleaved, encrypted, dev server (SQLite)`);
  console.log(`                 p50 ms   p99 ms   mean ms`);
  console.log(`  HTTP API       ${fmt(a.p50, 2).padStart(6)}   ${fmt(a.p99, 2).padStart(6)}   ${fmt(a.mean, 2).padStart(6)}`);
  console.log(`  direct track   ${fmt(d.p50, 2).padStart(6)}   ${fmt(d.p99, 2).padStart(6)}   ${fmt(d.mean, 2).padStart(6)}`);
  console.log(`  ratio API/direct: p50 ${fmt(a.p50 / d.p50, 2)}x, p99 ${fmt(a.p99 / d.p99, 2)}x`);
} finally {
  await api.close();
  await client.connection.close();
  await server.stop();
}
