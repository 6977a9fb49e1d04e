// The PostgreSQL engine (RBM_GUARD_ENGINE=postgres): the engine production runs, on this machine.
// A project-local PostgreSQL cluster (postgres-cluster.ts), both databases created and migrated
// with temporal-sql-tool exactly as docker-compose.yml's schema job does, and the Temporal server
// built into .tools/ (scripts/install-temporal-server.sh) from our committed config/temporal/server.yaml,
// every port on 127.0.0.1 chosen free. Then `rbm-guard setup` (client/setup.ts): namespace and
// search attributes. A failed start stops whatever did start.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setupNamespace } from '../../client/setup.ts';
import { freePort, waitForFrontend } from './dev-server.ts';
import { lastLine, startPostgresCluster, type PostgresCluster } from './postgres-cluster.ts';
import { EngineError, onceExited, stopChild } from './process.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
export const SERVER_CONFIG_FILE = join(root, 'config/temporal/server.yaml');
export const DYNAMIC_CONFIG_FILE = join(root, 'config/temporal/dynamicconfig.yaml');
const VERSIONS_FILE = join(root, 'config/temporal/versions.env');
const INSTALL_SCRIPT = join(root, 'scripts/install-temporal-server.sh');

/** config/temporal/versions.env as a map (the one place the server's version is pinned). */
export function pinnedVersions(): Record<string, string> {
  const entries = readFileSync(VERSIONS_FILE, 'utf8')
    .split('\n')
    .map((l) => /^([A-Z_]+)=(\S+)/.exec(l.trim()))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => [m[1], m[2]] as const);
  return Object.fromEntries(entries);
}

const uiServerBinary = () => `temporal-ui-server-${pinnedVersions().TEMPORAL_UI_SERVER_VERSION}`;

export function serverToolsDir(): string {
  return join(root, '.tools', `temporal-server-${pinnedVersions().TEMPORAL_SERVER_VERSION}`);
}

/** Builds the pinned server on first use (minutes, once); afterwards a no-op. */
export async function ensureTemporalServer(log: (line: string) => void = (l) => process.stderr.write(l)): Promise<string> {
  const dir = serverToolsDir();
  if ([...['temporal-server', 'temporal-sql-tool', 'schema-postgresql'], uiServerBinary()].every((f) => existsSync(join(dir, f)))) return dir;
  const child = spawn('bash', [INSTALL_SCRIPT], { stdio: ['ignore', 'inherit', 'pipe'] });
  let output = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-4000);
    log(chunk.toString());
  });
  const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  if (code !== 0) throw new EngineError(/rbm-guard: (go not found.*)/.exec(output)?.[1] ?? `building the Temporal server failed (bash scripts/install-temporal-server.sh): ${lastLine(output)}`);
  return dir;
}

/** Per database, in order: what compose's temporal-schema job runs too (test/deploy/compose-engine.test.ts). */
export const SCHEMA_STEPS = [['create'], ['setup-schema', '-v', '0.0'], ['update-schema', '-d', '<schema>/postgresql/v12/<db>/versioned']] as const;

/** Creates both databases and brings their schemas to this release's version, as compose's temporal-schema job does. */
export function migrateSchemas(tools: string, db: Pick<PostgresCluster, 'host' | 'port' | 'user' | 'password'>): void {
  const tool = join(tools, 'temporal-sql-tool');
  const base = ['--plugin', 'postgres12', '--ep', db.host, '-p', String(db.port), '-u', db.user];
  const env = { ...process.env, SQL_PASSWORD: db.password };
  for (const [dbName, schema] of [['temporal', 'temporal'], ['temporal_visibility', 'visibility']] as const) {
    const sql = (...args: string[]) => spawnSync(tool, [...base, '--db', dbName, ...args], { env, encoding: 'utf8' });
    const created = sql(...SCHEMA_STEPS[0]);
    const createText = `${created.stdout}${created.stderr}`;
    if (created.status !== 0 && !/already exists/.test(createText)) throw new EngineError(`creating database ${dbName} failed: ${lastLine(createText)}`);
    for (const step of SCHEMA_STEPS.slice(1)) {
      const args = step.map((a) => a.replace('<schema>/postgresql', join(tools, 'schema-postgresql')).replace('<db>', schema));
      const r = sql(...args);
      if (r.status !== 0) {
        const text = `${r.stdout}${r.stderr}`;
        throw new EngineError(`temporal-sql-tool ${args[0]} on ${dbName} failed (schema version mismatch? the server is ${pinnedVersions().TEMPORAL_SERVER_VERSION}): ${lastLine(text)}`);
      }
    }
  }
}

export const SERVICE_PORTS = [
  'TEMPORAL_FRONTEND_HTTP_PORT',
  'TEMPORAL_FRONTEND_MEMBERSHIP_PORT',
  'TEMPORAL_HISTORY_PORT',
  'TEMPORAL_HISTORY_MEMBERSHIP_PORT',
  'TEMPORAL_MATCHING_PORT',
  'TEMPORAL_MATCHING_MEMBERSHIP_PORT',
  'TEMPORAL_WORKER_PORT',
  'TEMPORAL_WORKER_MEMBERSHIP_PORT',
] as const;

export interface PostgresEngineOptions {
  /** The data folder: the cluster lives in <dataDir>/postgres, the server's log beside it. */
  dataDir: string;
  /** Frontend gRPC port; default a free one. */
  port?: number;
  namespace?: string;
  retentionDays?: number;
  /** Web UI port (the UI server, config/temporal/ui/rbm-guard.yaml); undefined = no UI. */
  uiPort?: number;
  /** The codec endpoint the UI decrypts payloads through. */
  codecEndpoint?: string;
  log?: (source: string, line: string) => void;
}

export interface PostgresEngine {
  address: string;
  port: number;
  uiUrl: string | null;
  /** The Temporal server's Prometheus endpoint. */
  metricsUrl: string;
  readonly process: ChildProcess;
  postgres: PostgresCluster;
  /** SIGKILL the Temporal server (a crash), no restart. */
  killServer(): Promise<void>;
  /** Starts the Temporal server again (after killServer or stopServer) on the same ports. */
  startServer(): Promise<void>;
  stopServer(): Promise<void>;
  /** Stops the server, then PostgreSQL (fast shutdown). */
  stop(): Promise<void>;
}

export async function startPostgresEngine(options: PostgresEngineOptions): Promise<PostgresEngine> {
  const log = options.log ?? (() => {});
  const tools = await ensureTemporalServer((l) => log('install', l));
  const dataDir = resolve(options.dataDir);
  mkdirSync(dataDir, { recursive: true });
  const postgres = await startPostgresCluster({ dir: join(dataDir, 'postgres'), ownRoot: dataDir, log: (l) => log('postgres', l) });
  let server: ChildProcess | undefined;
  let ui: ChildProcess | undefined;
  try {
    migrateSchemas(tools, postgres);
    const port = options.port ?? (await freePort());
    const metricsPort = await freePort();
    const env: Record<string, string> = {
      TEMPORAL_DB_HOST: postgres.host,
      TEMPORAL_DB_PORT: String(postgres.port),
      TEMPORAL_DB_USER: postgres.user,
      TEMPORAL_DB_PASSWORD: postgres.password,
      BIND_ON_IP: '127.0.0.1',
      TEMPORAL_BROADCAST_ADDRESS: '127.0.0.1',
      TEMPORAL_FRONTEND_PORT: String(port),
      TEMPORAL_METRICS_ADDRESS: `127.0.0.1:${metricsPort}`,
      TEMPORAL_DYNAMIC_CONFIG_FILE: DYNAMIC_CONFIG_FILE,
    };
    for (const name of SERVICE_PORTS) env[name] = String(name.endsWith('MEMBERSHIP_PORT') ? await freeSmallintPort() : await freePort());
    const address = `127.0.0.1:${port}`;
    const logFile = createWriteStream(join(dataDir, 'temporal-server.log'), { flags: 'a' });

    const startServer = async () => {
      const child = spawn(join(tools, 'temporal-server'), ['--config-file', SERVER_CONFIG_FILE, '--allow-no-auth', 'start'], {
        env: { ...process.env, ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      server = child;
      let output = '';
      const collect = (chunk: Buffer) => {
        output = (output + chunk.toString()).slice(-8000);
        logFile.write(chunk);
        log('temporal', chunk.toString());
      };
      child.stdout?.on('data', collect);
      child.stderr?.on('data', collect);
      const exited = onceExited(child).then(() => 'exited' as const);
      const first = await Promise.race([waitForFrontend(address, 60_000, () => child.exitCode !== null || child.signalCode !== null).then(() => 'ready' as const, (e: Error) => e), exited]);
      if (first === 'ready') return;
      await stopChild(child);
      if (/address already in use/i.test(output)) throw new EngineError(`Temporal server could not start: a port it needs on 127.0.0.1 is in use (${/listen tcp [^:]*:(\d+)/.exec(output)?.[1] ?? port}); see ${join(dataDir, 'temporal-server.log')}`);
      throw new EngineError(`Temporal server ${first === 'exited' ? 'exited at start' : 'did not come up within 60 s'}: ${serverLogLine(output)} (full log: ${join(dataDir, 'temporal-server.log')})`);
    };
    await startServer();
    await setupNamespace({ address, namespace: options.namespace ?? 'default', retentionDays: options.retentionDays ?? 30, log: (l) => log('setup', l) });
    const uiUrl = options.uiPort === undefined ? null : `http://127.0.0.1:${options.uiPort}`;
    if (uiUrl) {
      ui = spawn(join(tools, uiServerBinary()), ['--root', join(root, 'config/temporal'), '--config', 'ui', '--env', 'rbm-guard', 'start'], {
        env: { ...process.env, TEMPORAL_ADDRESS: address, TEMPORAL_UI_PORT: String(options.uiPort), TEMPORAL_DEFAULT_NAMESPACE: options.namespace ?? 'default', TEMPORAL_CODEC_ENDPOINT: options.codecEndpoint ?? '' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      await waitForUi(ui, uiUrl, (l) => log('ui', l));
    }

    const stopServer = () => stopChild(server, 'SIGTERM', 20_000);
    return {
      address,
      port,
      uiUrl,
      metricsUrl: `http://127.0.0.1:${metricsPort}/metrics`,
      get process() {
        return server as ChildProcess;
      },
      postgres,
      killServer: () => stopChild(server, 'SIGKILL'),
      startServer,
      stopServer,
      async stop() {
        await stopChild(ui);
        await stopServer();
        await postgres.stop();
        logFile.end();
      },
    };
  } catch (err) {
    await stopChild(ui);
    await stopChild(server);
    await postgres.stop();
    throw err;
  }
}

/**
 * Membership ports go into a smallint column (cluster_membership.rpc_port): the OS's ephemeral
 * ports (32768+) do not fit, so these come from 20000–32767, checked free on 127.0.0.1.
 */
async function freeSmallintPort(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const candidate = 20_000 + Math.floor(Math.random() * 12_768);
    const free = await new Promise<boolean>((resolveFree) => {
      const probe = createServer();
      probe.once('error', () => resolveFree(false));
      probe.listen(candidate, '127.0.0.1', () => probe.close(() => resolveFree(true)));
    });
    if (free) return candidate;
  }
  throw new EngineError('no free port in 20000–32767 on 127.0.0.1 for the Temporal server\'s membership');
}

/** The server's last log line, readable: its JSON `msg: error`, without colour codes. */
function serverLogLine(output: string): string {
  const line = lastLine(output.replace(/\x1b\[[0-9;]*m/g, ''));
  try {
    const entry = JSON.parse(line) as { msg?: string; error?: string };
    if (entry.msg) return entry.error ? `${entry.msg}: ${entry.error}` : entry.msg;
  } catch {
    // not JSON: the line as it is
  }
  return line;
}

/** The UI server answers its page; one line on a port in use or an early exit. */
async function waitForUi(child: ChildProcess, url: string, log: (line: string) => void): Promise<void> {
  let output = '';
  const collect = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-4000);
    log(chunk.toString());
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new EngineError(/address already in use/i.test(output) ? `Temporal UI could not start: ${url} is already in use` : `Temporal UI server exited at start: ${lastLine(output)}`);
    }
    const ok = await fetch(url).then((r) => r.ok, () => false);
    if (ok) return;
    if (Date.now() > deadline) throw new EngineError(`Temporal UI server at ${url} not answering after 30 s: ${lastLine(output)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
