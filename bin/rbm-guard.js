#!/usr/bin/env node
// `npx rbm-guard …`: runs the TypeScript CLI (client/cli.ts) in this same process, so the exit code
// and signals need no relaying through a child process. Node ≥ 22.18 strips the types itself (the
// sources are erasableSyntaxOnly); older Nodes go through tsx's ESM loader, loaded only then. The
// CLI reports its own failures as one line; this catches what happens before it runs (a broken install).
import module from 'node:module';

// Node caches compiled code (and, from 22.18/24, the stripped TypeScript) across runs: a CLI
// started again and again skips recompiling the same files.
module.enableCompileCache?.();
try {
  if (!process.features.typescript) {
    const { register } = await import('tsx/esm/api');
    register();
  }
  const { main } = await import('../client/cli.ts');
  await main();
} catch (err) {
  process.stderr.write(`error: rbm-guard could not start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
}
