#!/usr/bin/env node
// `npx rbm-guard …`: runs the TypeScript CLI (client/cli.ts) in this same process, so the exit code
// and signals need no relaying through a child process. Node ≥ 22.18 strips the types itself; older
// Nodes go through tsx (bin/typescript.js). The CLI reports its own failures as one line; this
// catches what happens before it runs (a broken install).
import { enableTypeScript } from './typescript.js';

try {
  await enableTypeScript();
  const { main } = await import('../client/cli.ts');
  await main();
} catch (err) {
  process.stderr.write(`error: rbm-guard could not start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
}
