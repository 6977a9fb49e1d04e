#!/usr/bin/env node
// `node bin/run-ts.js <file.ts> [args…]`: runs one of the project's TypeScript entry points (the npm
// scripts use it) natively where Node strips types, through tsx elsewhere (bin/typescript.js). The
// script sees itself as process.argv[1], as if Node had run it directly.
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { enableTypeScript } from './typescript.js';

const [file, ...args] = process.argv.slice(2);
if (!file) {
  process.stderr.write('usage: node bin/run-ts.js <file.ts> [args…]\n');
  process.exit(2);
}
await enableTypeScript();
const script = resolve(file);
process.argv = [process.argv[0] ?? 'node', script, ...args];
await import(pathToFileURL(script).href);
