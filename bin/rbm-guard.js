#!/usr/bin/env node
// `npx rbm-guard …`: runs the CLI in this same process, so the exit code and signals need no
// relaying through a child process. An install builds the CLI into one JavaScript file
// (scripts/build-cli.js → dist/cli/), which starts several times faster than the sources;
// while any file it was built from is newer (an edit, a checkout), the TypeScript sources run
// instead (bin/typescript.js). The CLI reports its own failures as one line; this catches what
// happens before it runs (a broken install).
import module from 'node:module';
import { readFileSync, statSync } from 'node:fs';

const root = new URL('../', import.meta.url);
const bundle = new URL('dist/cli/rbm-guard.mjs', root);

/** True when dist/cli/rbm-guard.mjs exists and none of the files it was built from changed since. */
function bundleIsFresh() {
  try {
    const built = statSync(bundle).mtimeMs;
    const inputs = JSON.parse(readFileSync(new URL('dist/cli/inputs.json', root), 'utf8'));
    return Array.isArray(inputs) && inputs.length > 0 && inputs.every((file) => statSync(new URL(file, root)).mtimeMs <= built);
  } catch {
    return false;
  }
}

try {
  module.enableCompileCache?.();
  let cli;
  if (bundleIsFresh()) {
    cli = await import(bundle.href);
  } else {
    const { enableTypeScript } = await import('./typescript.js');
    await enableTypeScript();
    cli = await import('../client/cli.ts');
  }
  await cli.main();
} catch (err) {
  process.stderr.write(`error: rbm-guard could not start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
}
