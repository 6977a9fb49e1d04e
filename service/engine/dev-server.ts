// The embedded Temporal dev server for `npm start` without TEMPORAL_ADDRESS, the demo, the
// benchmarks and the chaos run: the official CLI, state in a SQLite file (kept across restarts),
// the Web UI on its port, our search attributes registered.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname } from 'node:path';
import { Connection } from '@temporalio/client';
import { SEARCH_ATTRIBUTE_KEYS } from '../../workflows/contract.ts';
import { stopChild } from './process.ts';
import { temporalCliPath } from './temporal-binaries.ts';

export interface DevServerOptions {
  /** SQLite file; undefined = in memory. */
  dbFile?: string;
  port?: number;
  /** Web UI port; undefined = headless. */
  uiPort?: number;
  namespace?: string;
  codecEndpoint?: string;
  /** SQLite pragmas; default DEFAULT_SQLITE_PRAGMAS, [] = SQLite's own defaults (see bench/README.md). */
  sqlitePragmas?: string[];
  log?: (line: string) => void;
}

/**
 * WAL with synchronous=NORMAL: a commit is an append to the WAL, fsynced at checkpoints only. Every
 * committed transaction survives a crash of the server process (the OS holds the written WAL);
 * an OS crash or power loss can lose the last commits before a checkpoint, never corrupt the file.
 * The dev server keeps one SQLite connection, so each fsync stalls all of Temporal: with
 * synchronous=FULL (fsync per commit) it ran ~3–5× slower here (bench/README.md, SQLite settings).
 */
export const DEFAULT_SQLITE_PRAGMAS = ['journal_mode=WAL', 'synchronous=NORMAL'];

export interface DevServer {
  address: string;
  port: number;
  uiUrl: string | null;
  process: ChildProcess;
  stop(): Promise<void>;
}

const TYPE_NAMES: Record<string, string> = { KEYWORD: 'Keyword', DATETIME: 'Datetime', TEXT: 'Text', INT: 'Int', BOOL: 'Bool', DOUBLE: 'Double' };

/** A free TCP port on 127.0.0.1, as the OS hands it out. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** How long a starting dev server may take to answer. */
export const DEV_SERVER_READY_TIMEOUT_MS = 90_000;

export async function startDevServer(options: DevServerOptions = {}): Promise<DevServer> {
  const cli = temporalCliPath();
  if (!cli) throw new Error('Temporal CLI not found: run `npm run setup:temporal` (or set TEMPORAL_CLI_PATH)');
  const port = options.port ?? (await freePort());
  const args = ['server', 'start-dev', '--ip', '127.0.0.1', '--port', String(port), '--log-level', 'error'];
  if (options.dbFile) {
    mkdirSync(dirname(options.dbFile), { recursive: true });
    args.push('--db-filename', options.dbFile);
  }
  for (const pragma of options.sqlitePragmas ?? DEFAULT_SQLITE_PRAGMAS) args.push('--sqlite-pragma', pragma);
  if (options.uiPort !== undefined) args.push('--ui-port', String(options.uiPort), '--ui-disable-news-fetch');
  else args.push('--headless');
  if (options.codecEndpoint) args.push('--ui-codec-endpoint', options.codecEndpoint);
  if (options.namespace && options.namespace !== 'default') args.push('--namespace', options.namespace);
  for (const key of SEARCH_ATTRIBUTE_KEYS) args.push('--search-attribute', `${key.name}=${TYPE_NAMES[key.type] ?? key.type}`);

  const child = spawn(cli, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const collect = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-4000);
    options.log?.(chunk.toString());
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));

  const address = `127.0.0.1:${port}`;
  // Generous: a restart on a large SQLite file, on a loaded machine, has been seen to take over 30 s.
  const ready = waitForServer(address, DEV_SERVER_READY_TIMEOUT_MS);
  let first: 'ready' | 'exited';
  try {
    first = await Promise.race([ready.then(() => 'ready' as const), exited.then(() => 'exited' as const)]);
  } catch (err) {
    child.kill('SIGKILL'); // nothing half-started is left running
    await exited;
    throw err;
  }
  if (first === 'exited') {
    const inUse = /address already in use|bind/i.test(output);
    throw new Error(
      inUse
        ? `Temporal dev server could not start: port ${port} (or the UI port ${options.uiPort}) is already in use — is another rbm-guard running?`
        : `Temporal dev server exited at start:\n${output.trim()}`,
    );
  }

  return {
    address,
    port,
    uiUrl: options.uiPort !== undefined ? `http://127.0.0.1:${options.uiPort}` : null,
    process: child,
    stop: () => stopChild(child, 'SIGTERM', 10_000),
  };
}

async function waitForServer(address: string, timeoutMs: number): Promise<void> {
  try {
    await waitForFrontend(address, timeoutMs);
  } catch (err) {
    throw new Error(`Temporal dev server at ${address} not ready after ${timeoutMs} ms: ${String(err)}`);
  }
}

/** Until a Temporal frontend answers GetSystemInfo (either engine), or the time runs out, or `gone()` says its process died. */
export async function waitForFrontend(address: string, timeoutMs: number, gone: () => boolean = () => false): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const connection = await Connection.connect({ address, connectTimeout: 1000 });
      try {
        await connection.workflowService.getSystemInfo({});
        return;
      } finally {
        await connection.close();
      }
    } catch (err) {
      if (Date.now() > deadline || gone()) throw err;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}
