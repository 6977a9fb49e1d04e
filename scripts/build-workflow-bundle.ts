// `npm run build:workflows`: bundles the workflow code once, for workers that load a prebuilt bundle
// (the Docker image) instead of running webpack at every start.
import { relative } from 'node:path';
import { bundleWorkflows, prebuiltBundlePath } from '../worker/paths.ts';

const started = Date.now();
const { bytes } = await bundleWorkflows(prebuiltBundlePath);
console.log(`workflow bundle: ${relative(process.cwd(), prebuiltBundlePath)} (${Math.round(bytes / 1024)} KiB, ${Date.now() - started} ms)`);
