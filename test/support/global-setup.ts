// One Temporal dev server and one workflow bundle for the whole suite; each test file gets its own
// task queue. Started from the project-local CLI (see worker/temporal-binaries.ts).
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode } from '@temporalio/worker';
import { SEARCH_ATTRIBUTE_KEYS } from '../../workflows/contract.ts';
import { executableOption, temporalCliPath } from '../../worker/temporal-binaries.ts';
import { workflowsPath } from '../../worker/paths.ts';


let env: TestWorkflowEnvironment | undefined;

export async function setup(project: TestProject): Promise<void> {
  const [bundle, started] = await Promise.all([
    bundleWorkflowCode({ workflowsPath, logger: quietLogger }),
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
  const dir = mkdtempSync(join(tmpdir(), 'rbm-guard-bundle-'));
  const bundlePath = join(dir, 'workflow-bundle.js');
  writeFileSync(bundlePath, bundle.code);
  project.provide('temporalAddress', env.address);
  project.provide('workflowBundlePath', bundlePath);
}

export async function teardown(): Promise<void> {
  await env?.teardown();
}

const quietLogger = {
  log: () => {},
  trace: () => {},
  debug: () => {},
  info: () => {},
  warn: (m: string) => console.warn(m),
  error: (m: string) => console.error(m),
};
