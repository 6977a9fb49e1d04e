// `npm run build:workflows`: bundles the workflow code once, for workers that load a prebuilt bundle
// (the Docker image) instead of running webpack at every start.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleWorkflowCode } from '@temporalio/worker';
import { workflowsPath } from '../worker/paths.ts';

/** Where the worker finds the prebuilt bundle (dist/ is git-ignored). Kept in step with worker/main.ts. */
const workflowBundlePath = fileURLToPath(new URL('../dist/workflow-bundle.js', import.meta.url));

const started = Date.now();
const { code } = await bundleWorkflowCode({
  workflowsPath,
  logger: { log() {}, trace() {}, debug() {}, info() {}, warn: (m: string) => console.warn(m), error: (m: string) => console.error(m) },
});
mkdirSync(dirname(workflowBundlePath), { recursive: true });
writeFileSync(workflowBundlePath, code);
console.log(
  `workflow bundle: ${relative(process.cwd(), workflowBundlePath)} (${Math.round(code.length / 1024)} KiB, ${Date.now() - started} ms)`,
);
