// The README's examples for a newcomer in each language (curl, Python, Go) run as written against
// `npm start` on the embedded dev server: its own data folder, the dev API key and encryption key
// it generates, and the default task queue. The Python and Go blocks must be their example files.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { freePort } from '../service/engine/dev-server.ts';
import { startRbmSimulator, type RbmSimulator } from '../dev/sim/rbm-simulator.ts';
import { startSmsSink, type SmsSink } from '../dev/sim/sms-sink.ts';

const root = fileURLToPath(new URL('../', import.meta.url));
const readme = readFileSync(join(root, 'README.md'), 'utf8');
const PYTHON = process.env.RBM_GUARD_PYTHON ?? `${root}.tools/py-client/bin/python`;

/** The fenced block after `<!-- example: name -->`. */
function example(name: string): string {
  const m = new RegExp(`<!-- example: ${name.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} -->\\n\`\`\`\\w+\\n([\\s\\S]*?)\`\`\``).exec(readme);
  if (!m) throw new Error(`README has no example "${name}"`);
  return m[1]!;
}

let service: ChildProcess;
let sim: RbmSimulator;
let sink: SmsSink;
let env: Record<string, string>;
let banner = '';

function run(cmd: string, args: string[], cwd = root): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, env: { ...process.env, ...env } });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, out }));
  });
}

beforeAll(async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'rbm-guard-readme-'));
  const [dev, ui, webhook, codec, api] = [await freePort(), await freePort(), await freePort(), await freePort(), await freePort()];
  // npm start's worker needs an RBM agent and an SMS endpoint: the simulator and the sink stand in.
  sim = await startRbmSimulator({ defaultPlan: { deliverAfterMs: null } });
  sink = await startSmsSink();
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(TEMPORAL_|RBM_|NODE_ENV$)/.test(k))) as Record<string, string>;
  service = spawn(process.execPath, ['--import', 'tsx', 'service/main.ts'], {
    cwd: root,
    env: {
      ...base,
      RBM_GUARD_DATA_DIR: dataDir,
      TEMPORAL_DEV_PORT: String(dev),
      TEMPORAL_UI_PORT: String(ui),
      WEBHOOK_PORT: String(webhook),
      RBM_GUARD_CODEC_PORT: String(codec),
      RBM_GUARD_API_PORT: String(api),
      RBM_GUARD_WORKFLOW_BUNDLE: inject('workflowBundlePath'), // the suite's bundle: a faster start, the same code
      GOOGLE_APPLICATION_CREDENTIALS: sim.writeServiceAccountKeyFile(),
      RBM_API_BASE_URL: sim.url,
      RBM_TOKEN_URL: sim.tokenUrl,
      RBM_CLIENT_TOKEN: 'readme-example-token',
      FALLBACK_PROVIDER: 'http',
      FALLBACK_HTTP_URL: `${sink.url}/messages`,
      LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let errors = '';
  service.stderr!.on('data', (d: Buffer) => (errors += d.toString()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`npm start did not come up: ${banner}${errors}`)), 90_000);
    service.stdout!.on('data', (d: Buffer) => {
      banner += d.toString();
      if (banner.includes('Ctrl-C stops it.')) {
        clearTimeout(timer);
        resolve();
      }
    });
    service.once('exit', (code) => reject(new Error(`npm start exited ${code}: ${errors}`)));
  });
  env = { RBM_GUARD_DATA_DIR: dataDir, RBM_GUARD_API_URL: `http://127.0.0.1:${api}`, TEMPORAL_ADDRESS: `127.0.0.1:${dev}` };
}, 120_000);

afterAll(async () => {
  if (service && service.exitCode === null) {
    const exited = new Promise((r) => service.once('exit', r));
    service.kill('SIGTERM');
    await exited;
  }
  await sim?.close();
  await sink?.close();
});

describe('README examples against npm start', () => {
  it('npm start says where the dev API key is, and serves the API', () => {
    expect(banner).toContain(`API key:   in ${join(env.RBM_GUARD_DATA_DIR!, 'api-key')}`);
    expect(banner).toContain(`HTTP API:  ${env.RBM_GUARD_API_URL}/v1/guards`);
  });

  it('curl: tracks a message (201) and reads its guard', async () => {
    const res = await run('bash', ['-euo', 'pipefail', '-c', example('curl')]);
    expect(res.code, res.out).toBe(0);
    const [tracked, status] = res.out.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(tracked).toMatchObject({ created: true, alreadyClosed: false });
    expect(status).toMatchObject({ workflowId: tracked!.workflowId, state: 'AWAITING_DELIVERY', outcome: null });
  }, 30_000);

  it('Python: the README block is the example file, and it runs', async () => {
    const file = 'client/python/examples/track.py';
    expect(example(file)).toBe(readFileSync(join(root, file), 'utf8'));
    const res = await run(PYTHON, [file]);
    expect(res.code, res.out).toBe(0);
    expect(res.out).toMatch(/^rbm-guard\/my-agent\/py-[0-9a-f-]+ AWAITING_DELIVERY \['AWAITING_DELIVERY'\]$/m);
  }, 60_000);

  it('Go: the README block is the example file, and it runs', async () => {
    const file = 'client/go/examples/track/main.go';
    expect(example(file)).toBe(readFileSync(join(root, file), 'utf8'));
    const res = await run('go', ['run', './examples/track'], join(root, 'client/go'));
    expect(res.code, res.out).toBe(0);
    expect(res.out).toMatch(/^rbm-guard\/my-agent\/go-\d+ AWAITING_DELIVERY 1$/m);
  }, 180_000);
});
