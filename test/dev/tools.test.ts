// Every runnable tool answers --help with its usage (exit 0) and an unknown flag with one line naming
// it (exit 2) — never a stack trace, and nothing started or written first. Run as users run them.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));
const TOOLS: [name: string, file: string, usage: RegExp][] = [
  ['bench', 'bench/bench.ts', /^npm run bench -- \[--n 200\]/],
  ['chaos', 'dev/chaos/chaos.ts', /^npm run chaos -- \[--n 1000\]/],
  ['demo', 'dev/demo/demo.ts', /^npm run demo -- \[--n 200\]/],
  ['contract', 'scripts/generate-contract.ts', /^npm run contract\n/],
  ['keygen', 'scripts/keygen.ts', /^npm run keygen -- \[id\]/],
  ['build:cli', 'scripts/build-cli.js', /^npm run build:cli \[-- --outdir dist\/cli\]\n/],
  ['rbm-guard', 'service/main.ts', /^npm start \[-- --only worker\|webhook\|api\|codec\]/],
];
const run = (file: string, flag: string) =>
  spawnSync(process.execPath, ['bin/run-ts.js', file, flag], { cwd: root, encoding: 'utf8', timeout: 60_000, env: { ...process.env, TEMPORAL_ADDRESS: '127.0.0.1:1' } });

describe.concurrent('runnable tools', () => {
  it.each(TOOLS)('%s: --help prints the usage and exits 0; an unknown flag is one line and exit 2', (name, file, usage) => {
    const help = run(file, '--help');
    expect(help.stderr).toBe('');
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(usage);
    const bad = run(file, '--bogus');
    expect(bad.stdout).toBe('');
    expect(bad.status).toBe(2);
    expect(bad.stderr).toBe(`${name}: Unknown option '--bogus'; see --help\n`);
  });
});
