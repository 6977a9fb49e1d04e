#!/usr/bin/env node
// `npm run build:cli` (also run by postinstall): the operators' CLI as one JavaScript file,
// dist/cli/rbm-guard.mjs, so `rbm-guard` starts without TypeScript and without resolving hundreds of
// modules. dist/cli/inputs.json names the files it was built from: bin/rbm-guard.js runs the
// bundle only while none of them is newer, and the sources otherwise (an edit is never shadowed).
// Plain JavaScript so that it runs on every supported Node before any TypeScript tool is there;
// without esbuild (a production install, --omit=dev) it builds nothing and says so.
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = fileURLToPath(new URL('..', import.meta.url));
const usage = `
npm run build:cli [-- --outdir dist/cli]

Bundles client/cli.ts into <outdir>/rbm-guard.mjs and its chunks (default dist/cli/; an older build's files there are removed),
with <outdir>/inputs.json: the files it was built from.`;

let outdir;
try {
  const { values } = parseArgs({ options: { outdir: { type: 'string' }, help: { type: 'boolean' } } });
  if (values.help) {
    process.stdout.write(`${usage.trim()}\n`);
    process.exit(0);
  }
  outdir = resolve(values.outdir ?? join(root, 'dist', 'cli'));
} catch (err) {
  process.stderr.write(`build:cli: ${err instanceof Error ? err.message.split('. ')[0] : String(err)}; see --help\n`);
  process.exit(2);
}

let esbuild;
try {
  esbuild = await import('esbuild');
} catch {
  process.stdout.write('build:cli: esbuild is not installed (a production install): the CLI runs from its TypeScript sources\n');
  process.exit(0);
}

mkdirSync(outdir, { recursive: true });
// No chunk of an older build stays behind (only this script's own files are removed).
for (const file of readdirSync(outdir)) if (/^(rbm-guard|chunk-[A-Z0-9]+)\.mjs$|^inputs\.json$/.test(file)) rmSync(join(outdir, file));
const outfile = join(outdir, 'rbm-guard.mjs');
const result = await esbuild.build({
  absWorkingDir: root,
  entryPoints: { 'rbm-guard': 'client/cli.ts' },
  outdir,
  outExtension: { '.js': '.mjs' },
  // The CLI imports its commands (and so the Temporal SDK) lazily: `--help` loads only the small
  // first chunk, the rest lives in chunk-*.mjs beside it.
  splitting: true,
  chunkNames: 'chunk-[hash]',
  minify: true,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  metafile: true,
  legalComments: 'none',
  logLevel: 'warning',
  // The SDK and grpc-js are CommonJS: their require() calls need a real require in an ES module.
  banner: { js: "import { createRequire as __rbmCreateRequire } from 'node:module'; const require = __rbmCreateRequire(import.meta.url);" },
});
// Our own sources by path; the packages through the lock file that pins them.
const inputs = Object.keys(result.metafile.inputs)
  .filter((file) => !file.startsWith('node_modules/'))
  .concat('package-lock.json');
writeFileSync(join(outdir, 'inputs.json'), `${JSON.stringify(inputs, null, 1)}\n`);
process.stdout.write(`build:cli: ${relative(root, outfile)} from ${inputs.length} files\n`);
