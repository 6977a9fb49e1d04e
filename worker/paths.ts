import { fileURLToPath } from 'node:url';

/** The workflow entry point, bundled by the SDK's webpack build (never imported directly). */
export const workflowsPath = fileURLToPath(new URL('../workflows/index.ts', import.meta.url));
