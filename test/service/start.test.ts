// `npm start` and encryption: in production (NODE_ENV=production, or a real Temporal at
// TEMPORAL_ADDRESS) it refuses to start without a configured key, with one line naming the
// variable; next to the embedded dev server it generates a dev key and a codec token in the data
// folder (0600) and hands the UI a codec endpoint that works.
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { loadConfig } from '../../config/index.ts';
import { createLogger } from '../../config/logger.ts';
import { freePort } from '../../service/engine/dev-server.ts';
import { startService } from '../../service/main.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));

/** service/main.ts as `npm start` runs it, with exactly this environment (nothing of ours inherited). */
function npmStart(env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(TEMPORAL_|RBM_|NODE_ENV$)/.test(k)));
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'service/main.ts'], { cwd: root, env: { ...base, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

it.each([
  ['NODE_ENV=production', { NODE_ENV: 'production' }, 'NODE_ENV=production'],
  ['a real Temporal (TEMPORAL_ADDRESS)', { TEMPORAL_ADDRESS: '127.0.0.1:1' }, 'TEMPORAL_ADDRESS is set'],
])('%s without a key: refuses to start, one line naming the variable', async (_name, env, why) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'rbm-guard-start-'));
  const run = await npmStart({ ...env, RBM_GUARD_DATA_DIR: dataDir, RBM_CLIENT_TOKEN: 't' });
  expect(run.code).toBe(2);
  expect(run.stdout).toBe('');
  expect(run.stderr).toBe(
    `rbm-guard: RBM_GUARD_ENCRYPTION_KEYS: required when ${why} (or RBM_GUARD_ENCRYPTION_KEY_FILE): payloads hold phone numbers and message text; create a key with \`npm run keygen -- k1\`\n`,
  );
}, 30_000);

it('a bad key is refused the same way, without echoing it', async () => {
  const run = await npmStart({ TEMPORAL_ADDRESS: '127.0.0.1:1', RBM_GUARD_ENCRYPTION_KEYS: 'k1:c2hvcnQ=' });
  expect(run.code).toBe(2);
  expect(run.stderr).toBe('rbm-guard: RBM_GUARD_ENCRYPTION_KEYS: key "k1" is 5 bytes; AES-256 needs 32 (e.g. `openssl rand -base64 32`)\n');
}, 30_000);

it('next to the embedded dev server: a dev key and codec token in the data folder, and the UI told the codec endpoint', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'rbm-guard-start-'));
  const [devPort, uiPort, codecPort] = [await freePort(), await freePort(), await freePort()];
  const config = loadConfig({
    RBM_GUARD_DATA_DIR: dataDir,
    TEMPORAL_DEV_PORT: String(devPort),
    TEMPORAL_UI_PORT: String(uiPort),
    RBM_GUARD_CODEC_PORT: String(codecPort),
    LOG_LEVEL: 'silent',
  });
  // The codec part with the embedded server and its UI (worker and webhook have their own tests).
  const service = await startService(config, ['codec'], createLogger(config));
  try {
    for (const file of ['encryption-keys', 'codec-token']) expect(statSync(join(dataDir, file)).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(dataDir, 'encryption-keys'), 'utf8')).toMatch(/^dev-[0-9a-f]{8}:[A-Za-z0-9+/]{43}=$/m);
    const token = readFileSync(join(dataDir, 'codec-token'), 'utf8').trim();
    expect(service.codecUrl).toBe(`http://127.0.0.1:${codecPort}`);

    // The UI's own settings carry the endpoint with the token: what its browser code calls.
    const settings = (await (await fetch(`${service.uiUrl}/api/v1/settings`)).json()) as { Codec: { Endpoint: string } };
    expect(settings.Codec.Endpoint).toBe(`http://127.0.0.1:${codecPort}/${token}`);
    const preflight = await fetch(`${settings.Codec.Endpoint}/decode?preserveStorageRefs=true`, {
      method: 'OPTIONS',
      headers: { origin: `http://localhost:${uiPort}`, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type,x-namespace' },
    });
    expect(preflight.status).toBe(204);
    const decode = await fetch(`${settings.Codec.Endpoint}/decode?preserveStorageRefs=true`, {
      method: 'POST',
      headers: { origin: `http://127.0.0.1:${uiPort}`, 'content-type': 'application/json', 'x-namespace': 'default' },
      body: JSON.stringify({ payloads: [] }),
    });
    expect(decode.status).toBe(200);
    expect(await decode.json()).toEqual({ payloads: [] });
    expect((await fetch(`http://127.0.0.1:${codecPort}/decode`, { method: 'POST', body: '{"payloads":[]}', headers: { 'content-type': 'application/json' } })).status).toBe(401);
  } finally {
    await service.stop();
  }
}, 60_000);

it('a malformed variable stops it at start, naming the variable', async () => {
  const run = await npmStart({ WEBHOOK_PORT: 'eighty', RBM_GUARD_DATA_DIR: mkdtempSync(join(tmpdir(), 'rbm-guard-start-')) });
  expect(run.code).toBe(2);
  expect(run.stdout).toBe('');
  expect(run.stderr.trim()).toBe('rbm-guard: WEBHOOK_PORT: expected a port number (0–65535)');
}, 30_000);

it('a second npm start while the first holds the port: one clear line, not a crash', async () => {
  const devPort = await freePort();
  const holder = createServer().listen(devPort, '127.0.0.1');
  await new Promise((resolve) => holder.once('listening', resolve));
  try {
    const run = await npmStart({
      TEMPORAL_DEV_PORT: String(devPort),
      TEMPORAL_UI_PORT: String(await freePort()),
      RBM_GUARD_CODEC_PORT: String(await freePort()),
      WEBHOOK_PORT: String(await freePort()),
      RBM_CLIENT_TOKEN: 't',
      RBM_GUARD_DATA_DIR: mkdtempSync(join(tmpdir(), 'rbm-guard-start-')),
      LOG_LEVEL: 'silent',
    });
    expect(run.code).toBe(1);
    expect(run.stderr.trim()).toBe(
      `rbm-guard could not start: Temporal dev server could not start: port ${devPort} (or the UI port ${run.stderr.match(/UI port (\d+)/)?.[1]}) is already in use — is another rbm-guard running?`,
    );
    expect(run.stderr).not.toMatch(/\n\s+at /); // no stack trace
  } finally {
    holder.close();
  }
}, 60_000);
