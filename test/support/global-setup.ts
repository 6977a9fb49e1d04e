// One Temporal dev server and one workflow bundle for the whole suite; each test file gets its own
// task queue. Started from the project-local CLI (see service/engine/temporal-binaries.ts).
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestProject } from 'vitest/node';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { SEARCH_ATTRIBUTE_KEYS } from '../../workflows/contract.ts';
import { executableOption, temporalCliPath } from '../../service/engine/temporal-binaries.ts';
import { bundleWorkflows } from '../../worker/paths.ts';
import { startPostgresEngine, type PostgresEngine } from '../../service/engine/postgres.ts';
import { engineFromEnv } from '../../service/engine/select.ts';


let env: TestWorkflowEnvironment | undefined;
let postgres: PostgresEngine | undefined;

/** RBM_GUARD_ENGINE=postgres: the suite runs on the Temporal server on PostgreSQL instead (service/engine/postgres.ts). */
async function startPostgres(): Promise<{ address: string }> {
  const dataDir = mkdtempSync(join(tmpdir(), 'rbm-guard-suite-pg-'));
  chmodSync(dataDir, 0o711); // the cluster's non-root user must get through to its subfolder
  postgres = await startPostgresEngine({ dataDir, log: (source, line) => source === 'install' && process.stderr.write(line) });
  return postgres;
}

/** The Python and Go clients the cross-language tests drive: installed once (scripts/install-clients.sh), so `npm test` needs no other step. */
function ensureClients(): void {
  const root = fileURLToPath(new URL('../../', import.meta.url));
  if (existsSync(join(root, '.tools/py-client/bin/python'))) return;
  process.stderr.write('rbm-guard: installing the Python and Go clients for the cross-language tests (once)…\n');
  execFileSync('bash', [join(root, 'scripts/install-clients.sh')], { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] });
}

export async function setup(project: TestProject): Promise<void> {
  ensureClients();
  const dir = mkdtempSync(join(tmpdir(), 'rbm-guard-bundle-'));
  const bundlePath = join(dir, 'workflow-bundle.js');
  const benchBundlePath = join(dir, 'bench-workflow-bundle.js');
  const [, , started] = await Promise.all([
    bundleWorkflows(bundlePath),
    bundleWorkflows(benchBundlePath, fileURLToPath(new URL('../../bench/workflows/index.ts', import.meta.url))),
    engineFromEnv() === 'postgres' ? startPostgres() : TestWorkflowEnvironment.createLocal({
      server: {
        executable: executableOption(temporalCliPath()),
        ip: '127.0.0.1',
        searchAttributes: SEARCH_ATTRIBUTE_KEYS,
        extraArgs: ['--log-level', 'error', '--sqlite-pragma', 'journal_mode=WAL'],
      },
    }),
  ]);
  if (started instanceof TestWorkflowEnvironment) env = started;
  project.provide('temporalAddress', started.address);
  project.provide('workflowBundlePath', bundlePath);
  project.provide('benchBundlePath', benchBundlePath);
}

export async function teardown(): Promise<void> {
  await env?.teardown();
  await postgres?.stop();
}
