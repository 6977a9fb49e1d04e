// The PostgreSQL engine's bad days, each one clear line naming the cause and the fix, with nothing it
// started left running: no `go` for the build, no PostgreSQL, a folder the cluster's user cannot
// reach, a port the Temporal server needs already taken, a PostgreSQL from an earlier run still
// holding the data folder. Real binaries (the installed server, Debian's PostgreSQL).
import { spawnSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { EngineError } from '../../service/engine/process.ts';
import { ensureTemporalServer, startPostgresEngine } from '../../service/engine/postgres.ts';
import { clusterUser, ensureReachable, startPostgresCluster } from '../../service/engine/postgres-cluster.ts';
import { freePort } from '../../service/engine/dev-server.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const dataDir = () => {
  const dir = mkdtempSync(join(tmpdir(), 'rbm-guard-engine-'));
  chmodSync(dir, 0o711);
  return dir;
};
/** Processes (by pid) whose command line names `dir`: what a failed start must not leave behind. */
const runningIn = (dir: string) =>
  spawnSync('ps', ['-eo', 'pid,args'], { encoding: 'utf8' }).stdout.split('\n').filter((l) => l.includes(dir) && !l.includes('ps -eo'));

let held: Server | undefined;
const heldSockets = new Set<Socket>();
afterEach(async () => {
  for (const socket of heldSockets) socket.destroy(); // the engine's readiness probes connected to it
  await new Promise((r) => (held ? held.close(r) : r(undefined)));
  held = undefined;
});

describe('PostgreSQL engine: one clear line, nothing left running', () => {
  it('the build without go says so and how to get it', () => {
    const fake = mkdtempSync(join(tmpdir(), 'rbm-guard-nogo-'));
    mkdirSync(join(fake, 'scripts'));
    mkdirSync(join(fake, 'config/temporal'), { recursive: true });
    cpSync(join(root, 'scripts/install-temporal-server.sh'), join(fake, 'scripts/install-temporal-server.sh'));
    writeFileSync(join(fake, 'config/temporal/versions.env'), readFileSync(join(root, 'config/temporal/versions.env'), 'utf8'));
    const r = spawnSync('/bin/bash', [join(fake, 'scripts/install-temporal-server.sh')], { encoding: 'utf8', env: { PATH: '/usr/bin:/bin' } });
    expect(r.status).toBe(1);
    expect(r.stderr.trim()).toMatch(/^rbm-guard: go not found: the PostgreSQL engine builds the Temporal server 1\.32\.2 from source \(apt-get install golang-go, or https:\/\/go\.dev\/dl; .*\)$/);
    expect(existsSync(join(fake, '.tools'))).toBe(false);
  });

  it('a second install does nothing (the pinned build is cached in .tools/)', async () => {
    const started = Date.now();
    const r = spawnSync('bash', [join(root, 'scripts/install-temporal-server.sh')], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stderr).toBe('');
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(await ensureTemporalServer()).toMatch(/\.tools\/temporal-server-1\.32\.2$/);
  });

  it('no PostgreSQL: names the variable and the package', async () => {
    const previous = process.env.RBM_GUARD_PG_BIN;
    process.env.RBM_GUARD_PG_BIN = '/nonexistent/bin';
    try {
      await expect(startPostgresEngine({ dataDir: dataDir() })).rejects.toThrow(new EngineError("RBM_GUARD_PG_BIN=/nonexistent/bin has no initdb: point it at PostgreSQL's bin folder"));
    } finally {
      if (previous === undefined) delete process.env.RBM_GUARD_PG_BIN;
      else process.env.RBM_GUARD_PG_BIN = previous;
    }
  });

  it.skipIf(process.getuid?.() !== 0)('a folder above the data folder the cluster user cannot pass (as root): names the folder and the fix', async () => {
    const closed = mkdtempSync(join(tmpdir(), 'rbm-guard-closed-')); // mode 700, owned by root: not ours to open
    const dir = join(closed, 'data');
    await expect(startPostgresEngine({ dataDir: dir })).rejects.toThrow(`the PostgreSQL cluster's folder ${dir}/postgres is not reachable by user postgres: ${closed} is mode 700 (chmod o+x ${closed}, or choose another RBM_GUARD_DATA_DIR)`);
  });

  it.skipIf(process.getuid?.() !== 0)('a data folder of ours left mode 700 (a dev-engine run as root) is opened for passing, not refused', () => {
    const lines: string[] = [];
    const dir = mkdtempSync(join(tmpdir(), 'rbm-guard-ours-')); // mode 700, as the dev engine leaves .data
    ensureReachable(join(dir, 'postgres'), dir, clusterUser(), (l) => lines.push(l));
    expect(statSync(dir).mode & 0o777).toBe(0o701); // passable, still not listable by others
    expect(lines).toEqual([`${dir} was mode 700: opened for passing (o+x) so user postgres reaches its cluster folder`]);
  });

  it('the Temporal frontend port already taken: says which, and stops the PostgreSQL it started', { timeout: 120_000 }, async () => {
    held = createServer((socket) => heldSockets.add(socket));
    const port = await new Promise<number>((resolve) => held!.listen(0, '127.0.0.1', () => resolve((held!.address() as { port: number }).port)));
    const dir = dataDir();
    const err = await startPostgresEngine({ dataDir: dir, port }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EngineError);
    expect((err as Error).message).toBe(`Temporal server could not start: a port it needs on 127.0.0.1 is in use (${port}); see ${dir}/temporal-server.log`);
    expect(runningIn(dir)).toEqual([]);
  });

  it('with a UI port: the Web UI server answers on 127.0.0.1 with our namespace and codec endpoint, and stops with the engine', { timeout: 120_000 }, async () => {
    const dir = dataDir();
    const uiPort = await freePort();
    const engine = await startPostgresEngine({ dataDir: dir, uiPort, namespace: 'default', codecEndpoint: 'http://127.0.0.1:1/token-xyz' });
    try {
      expect(engine.uiUrl).toBe(`http://127.0.0.1:${uiPort}`);
      expect((await fetch(engine.uiUrl!)).status).toBe(200);
      const settings = (await (await fetch(`${engine.uiUrl}/api/v1/settings`)).json()) as { DefaultNamespace: string; Codec: { Endpoint: string }; Version: string };
      expect(settings).toMatchObject({ DefaultNamespace: 'default', Codec: { Endpoint: 'http://127.0.0.1:1/token-xyz' }, Version: '2.54.1' });
    } finally {
      await engine.stop();
    }
    expect(runningIn(dir)).toEqual([]);
    await expect(fetch(`http://127.0.0.1:${uiPort}/`)).rejects.toThrow();
  });

  it('a PostgreSQL from an earlier run still holding the folder: names its pid', { timeout: 60_000 }, async () => {
    const dir = dataDir();
    const first = await startPostgresCluster({ dir: join(dir, 'postgres') });
    try {
      const err = await startPostgresCluster({ dir: join(dir, 'postgres') }).catch((e: unknown) => e);
      expect((err as Error).message).toBe(`a PostgreSQL (pid ${first.process.pid}) from an earlier run still holds ${dir}/postgres/data: stop it (kill -INT ${first.process.pid}) and start again`);
    } finally {
      await first.stop();
    }
    expect(runningIn(dir)).toEqual([]);
  });
});
