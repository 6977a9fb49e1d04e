// What operators run beside rbm-guard (ops/): the Prometheus alert rules pass their unit tests
// (`promtool test rules`), and a real Prometheus scrapes a real worker and webhook (on the engine
// RBM_GUARD_ENGINE names) while guards run: both targets up, the guard outcomes counted, every rule
// evaluates without error, and every metric the dashboard and the rules name is one the processes
// export. Needs Debian's `prometheus` package (promtool and prometheus); .ci/run installs it.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { startLocalStack, type LocalStack } from '../../dev/stack/local-stack.ts';
import { freePort } from '../../service/engine/dev-server.ts';
import { stopChild } from '../../service/engine/process.ts';

const ops = fileURLToPath(new URL('../../ops/', import.meta.url));
const rulesFile = join(ops, 'prometheus/rbm-guard-rules.yml');
const dashboard = JSON.parse(readFileSync(join(ops, 'grafana/rbm-guard-dashboard.json'), 'utf8')) as {
  panels: { title: string; targets: { expr: string }[] }[];
};
const present = (bin: string) => spawnSync(bin, ['--version']).status === 0;
if (!present('promtool') || !present('prometheus')) throw new Error("promtool/prometheus not found: apt-get install prometheus (Debian's package ships both)");

/** rbm_* and temporal_* metric names in a PromQL expression. */
const metricsIn = (expr: string) => [...expr.matchAll(/\b((?:rbm|temporal)_[a-z0-9_]+)\b/g)].map((m) => m[1]!);
const dashboardMetrics = [...new Set(dashboard.panels.flatMap((p) => p.targets.flatMap((t) => metricsIn(t.expr))))].sort();
const ruleMetrics = [...new Set(metricsIn(readFileSync(rulesFile, 'utf8').split('\n').filter((l) => /^\s+expr:|^\s{10}/.test(l)).join('\n')))].sort();

describe('Prometheus alert rules', () => {
  it('pass promtool check and their unit tests', () => {
    const check = spawnSync('promtool', ['check', 'rules', rulesFile], { encoding: 'utf8' });
    expect(check.status, check.stdout + check.stderr).toBe(0);
    expect(check.stdout).toContain('SUCCESS: 7 rules found');
    const test = spawnSync('promtool', ['test', 'rules', 'rbm-guard-rules.test.yml'], { cwd: join(ops, 'prometheus'), encoding: 'utf8' });
    expect(test.status, test.stdout + test.stderr).toBe(0);
    expect(test.stdout).toContain('SUCCESS');
  });

  it('a rule test fails when an alert would not fire (the tests can fail)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'rbm-guard-rules-'));
    writeFileSync(join(dir, 'rbm-guard-rules.yml'), readFileSync(rulesFile, 'utf8').replace('{outcome="FALLBACK_FAILED"}[10m])) > 0', '{outcome="FALLBACK_FAILED"}[10m])) > 5'));
    writeFileSync(join(dir, 'rbm-guard-rules.test.yml'), readFileSync(join(ops, 'prometheus/rbm-guard-rules.test.yml'), 'utf8'));
    const test = spawnSync('promtool', ['test', 'rules', 'rbm-guard-rules.test.yml'], { cwd: dir, encoding: 'utf8' });
    expect(test.status).not.toBe(0);
    expect(test.stdout + test.stderr).toMatch(/RbmGuardFallbackFailed/);
  });
});

describe('a real Prometheus scraping a real worker and webhook', () => {
  let stack: LocalStack | undefined;
  let prometheus: ChildProcess | undefined;
  afterAll(async () => {
    await stopChild(prometheus);
    await stack?.stop();
  });

  it('both targets up, outcomes counted, rules healthy, every dashboard and rule metric exported', { timeout: 180_000 }, async () => {
    const metricsPort = await freePort();
    stack = await startLocalStack({ env: { METRICS_PORT: String(metricsPort) }, encryptionEnv: { RBM_GUARD_ENCRYPTION: 'off' } });
    const webhook = new URL(stack.webhookMetricsUrl);
    const promPort = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'rbm-guard-prometheus-'));
    writeFileSync(
      join(dir, 'prometheus.yml'),
      [
        'global: { scrape_interval: 1s, evaluation_interval: 1s }',
        `rule_files: [${JSON.stringify(rulesFile)}]`,
        'scrape_configs:',
        `  - { job_name: rbm-guard-worker, static_configs: [{ targets: ["127.0.0.1:${metricsPort}"] }] }`,
        `  - { job_name: rbm-guard-webhook, static_configs: [{ targets: ["${webhook.host}"] }] }`,
        // On the PostgreSQL engine, the Temporal server's own metrics too (compose scrapes them as well).
        ...(stack.postgres ? [`  - { job_name: temporal, static_configs: [{ targets: ["${new URL(stack.postgres.metricsUrl).host}"] }] }`] : []),
        '',
      ].join('\n'),
    );
    prometheus = spawn('prometheus', [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${promPort}`], { stdio: 'ignore' });
    const api = async <T>(path: string): Promise<T> => {
      const res = await fetch(`http://127.0.0.1:${promPort}/api/v1/${path}`);
      return ((await res.json()) as { data: T }).data;
    };
    const eventually = async <T>(what: string, probe: () => Promise<T | undefined>): Promise<T> => {
      const deadline = Date.now() + 60_000;
      for (;;) {
        const value = await probe().catch(() => undefined);
        if (value !== undefined) return value;
        if (Date.now() > deadline) throw new Error(`Prometheus: ${what} not seen within 60 s`);
        await new Promise((r) => setTimeout(r, 500));
      }
    };

    // Two guards delivered in time, two revoked and fallen back; one push with a bad signature.
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) {
      const messageId = `ops-${i}-${Date.now()}`;
      const phone = `+1415555020${i}`;
      stack.sim.registerSent({ agentId: 'ops-agent', messageId, phone, plan: { deliverAfterMs: i % 2 ? 200 : null } });
      ids.push((await stack.guards.track({ agentId: 'ops-agent', messageId, phone, staleIn: '1500ms', fallbackText: 'x', trafficType: 'AUTHENTICATION', policy: { graceMs: 500, lingerMs: 0 } })).workflowId);
    }
    await stack.sim.pushEvent({ agentId: 'ops-agent', messageId: 'ops-unsigned', eventType: 'DELIVERED', eventId: 'e-ops', sendTime: new Date().toISOString(), phoneNumber: '+14155550299' } as never, { signature: 'invalid', retry: false });
    for (const id of ids) await stack.client.workflow.getHandle(id).result();

    type Vector = { metric: Record<string, string>; value: [number, string] }[];
    const jobs = ['rbm-guard-webhook', 'rbm-guard-worker', ...(stack.postgres ? ['temporal'] : [])];
    const up = await eventually('every target up', async () => {
      const r = await api<{ result: Vector }>('query?query=up');
      return r.result.length === jobs.length && r.result.every((s) => s.value[1] === '1') ? r.result.map((s) => s.metric.job).sort() : undefined;
    });
    expect(up).toEqual(jobs);
    const outcomes = await eventually('the four outcomes', async () => {
      const r = await api<{ result: Vector }>(`query?query=${encodeURIComponent('sum by (outcome) (rbm_guard_outcomes{workflowType="rbmGuard"})')}`);
      const byOutcome = Object.fromEntries(r.result.map((s) => [s.metric.outcome, Number(s.value[1])]));
      return byOutcome.DELIVERED === 2 && byOutcome.FALLBACK_SENT === 2 ? byOutcome : undefined;
    });
    expect(outcomes).toEqual({ DELIVERED: 2, FALLBACK_SENT: 2 });
    const rejected = await eventually('the bad signature', async () => {
      const r = await api<{ result: Vector }>(`query?query=${encodeURIComponent('sum(rbm_webhook_signatures_rejected_total)')}`);
      return r.result[0] && Number(r.result[0].value[1]) >= 1 ? Number(r.result[0].value[1]) : undefined;
    });
    expect(rejected).toBeGreaterThanOrEqual(1);
    // The worker reports its pollers only once a scrape caught them: look until one did.
    const pollers = await eventually('a workflow-task poller', async () => {
      const r = await api<{ result: Vector }>(`query?query=${encodeURIComponent('temporal_num_pollers{poller_type="workflow_task",task_queue="rbm-guard"}')}`);
      const n = Number(r.result[0]?.value[1]);
      return n > 0 ? n : undefined;
    });
    expect(pollers).toBeGreaterThan(0);

    // Every rule evaluated against the real series without an error.
    const groups = await eventually('rule evaluation', async () => {
      const r = await api<{ groups: { rules: { name: string; health: string; lastError?: string }[] }[] }>('rules');
      const rules = r.groups.flatMap((g) => g.rules);
      return rules.length === 7 && rules.every((x) => x.health !== 'unknown') ? rules : undefined;
    });
    expect(groups.filter((r) => r.health !== 'ok').map((r) => `${r.name}: ${r.lastError}`)).toEqual([]);

    // Names: every sample and every declared (# TYPE) metric of both processes, histograms with their series.
    const texts = await Promise.all([fetch(`http://127.0.0.1:${metricsPort}/metrics`), fetch(stack.webhookMetricsUrl)].map(async (r) => (await r).text()));
    const exported = new Set<string>();
    for (const line of texts.join('\n').split('\n')) {
      const type = /^# TYPE (\S+) (\S+)/.exec(line);
      if (type) {
        exported.add(type[1]!);
        if (type[2] === 'histogram') for (const suffix of ['_bucket', '_count', '_sum']) exported.add(type[1]! + suffix);
      } else if (line && !line.startsWith('#')) exported.add(line.split(/[{ ]/)[0]!);
    }
    expect(dashboardMetrics.length).toBeGreaterThan(10);
    expect(dashboardMetrics.filter((m) => !exported.has(m))).toEqual([]);
    expect(ruleMetrics.filter((m) => !exported.has(m))).toEqual([]);
  });
});
