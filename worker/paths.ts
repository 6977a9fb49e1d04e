import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleWorkflowCode } from '@temporalio/worker';

/** The workflow entry point, bundled by the SDK's webpack build (never imported directly). */
export const workflowsPath = fileURLToPath(new URL('../workflows/index.ts', import.meta.url));

/** Where `npm run build:workflows` writes the prebuilt bundle (dist/ is git-ignored; the image loads it). */
export const prebuiltBundlePath = fileURLToPath(new URL('../dist/workflow-bundle.js', import.meta.url));

/** Bundles an entry point (default: the guard's) into `file` once, for workers that load it instead of bundling. */
export async function bundleWorkflows(file: string, entry: string = workflowsPath): Promise<{ bytes: number }> {
  const { code } = await bundleWorkflowCode({
    workflowsPath: entry,
    logger: { log() {}, trace() {}, debug() {}, info() {}, warn: (m: string) => console.warn(m), error: (m: string) => console.error(m) },
  });
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, code);
  return { bytes: code.length };
}
