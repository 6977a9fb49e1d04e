// One Temporal dev server and one workflow bundle for the whole suite; each test file gets its own
// task queue. Started from the project-local CLI (see worker/temporal-binaries.ts).
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestProject } from 'vitest/node';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { SEARCH_ATTRIBUTE_KEYS } from '../../workflows/contract.ts';
import { executableOption, temporalCliPath } from '../../worker/temporal-binaries.ts';
import { bundleWorkflows } from '../../worker/paths.ts';


let env: TestWorkflowEnvironment | undefined;

export async function setup(project: TestProject): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'rbm-guard-bundle-'));
  const bundlePath = join(dir, 'workflow-bundle.js');
  const benchBundlePath = join(dir, 'bench-workflow-bundle.js');
  const [, , started] = await Promise.all([
    bundleWorkflows(bundlePath),
    bundleWorkflows(benchBundlePath, fileURLToPath(new URL('../../bench/workflows/index.ts', import.meta.url))),
    TestWorkflowEnvironment.createLocal({
      server: {
        executable: executableOption(temporalCliPath()),
        ip: '127.0.0.1',
        searchAttributes: SEARCH_ATTRIBUTE_KEYS,
        extraArgs: ['--log-level', 'error', '--sqlite-pragma', 'journal_mode=WAL'],
      },
    }),
  ]);
  env = started;
  project.provide('temporalAddress', env.address);
  project.provide('workflowBundlePath', bundlePath);
  project.provide('benchBundlePath', benchBundlePath);
}

export async function teardown(): Promise<void> {
  await env?.teardown();
}
