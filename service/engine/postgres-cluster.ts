// A project-local PostgreSQL cluster for the PostgreSQL engine: data under the data folder, one
// free loopback port, TCP only (no Unix socket), password auth for the `temporal` superuser, run
// as a non-root user (initdb refuses root). Started as a child of this process; stopped with a
// fast shutdown (SIGINT: active transactions roll back, everything committed stays).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { freePort } from './dev-server.ts';
import { EngineError, onceExited, stopChild } from './process.ts';

export interface PostgresClusterOptions {
  /** The cluster's own folder (created; owned by the cluster's user). */
  dir: string;
  /**
   * The folder that is ours (RBM_GUARD_DATA_DIR): a folder inside it that the cluster's user cannot
   * pass through is opened for passing (o+x, never listing); one above it is the user's to change.
   * Default: dir's parent.
   */
  ownRoot?: string;
  port?: number;
  log?: (line: string) => void;
}

export interface PostgresCluster {
  host: string;
  port: number;
  user: string;
  password: string;
  dataDir: string;
  readonly process: ChildProcess;
  /** Fast shutdown (SIGINT), then wait for the postmaster to exit. */
  stop(): Promise<void>;
  /** Starts it again on the same data folder and port. */
  start(): Promise<void>;
}

const DB_USER = 'temporal';

/** The PostgreSQL bin folder: RBM_GUARD_PG_BIN, else the newest /usr/lib/postgresql/<n>/bin, else PATH. */
export function postgresBinDir(env: Record<string, string | undefined> = process.env): string {
  const explicit = env.RBM_GUARD_PG_BIN;
  if (explicit) {
    if (!existsSync(join(explicit, 'initdb'))) throw new EngineError(`RBM_GUARD_PG_BIN=${explicit} has no initdb: point it at PostgreSQL's bin folder`);
    return explicit;
  }
  const base = '/usr/lib/postgresql';
  const majors = existsSync(base) ? readdirSync(base).filter((d) => /^\d+$/.test(d)).sort((a, b) => Number(b) - Number(a)) : [];
  for (const major of majors) if (existsSync(join(base, major, 'bin', 'initdb'))) return join(base, major, 'bin');
  for (const dir of (env.PATH ?? '').split(':')) if (dir && existsSync(join(dir, 'initdb'))) return dir;
  throw new EngineError('PostgreSQL not found (no initdb): install it (apt-get install postgresql-15) or set RBM_GUARD_PG_BIN to its bin folder');
}

interface RunAs {
  name: string;
  uid: number;
  gid: number;
}

/** Who runs the cluster: this user, or (as root, which initdb refuses) RBM_GUARD_PG_USER, default `postgres`. */
export function clusterUser(env: Record<string, string | undefined> = process.env): RunAs {
  const uid = process.getuid?.() ?? 0;
  const gid = process.getgid?.() ?? 0;
  if (uid !== 0) return { name: env.USER ?? String(uid), uid, gid };
  const name = env.RBM_GUARD_PG_USER || 'postgres';
  const line = readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.split(':')[0] === name);
  if (!line) throw new EngineError(`running as root, and PostgreSQL refuses root: no user "${name}" to run it as (create it, or set RBM_GUARD_PG_USER)`);
  const [, , u, g] = line.split(':');
  return { name, uid: Number(u), gid: Number(g) };
}

/**
 * Every ancestor of `dir` must let the cluster's user through (x for others, or its own). Ours (at or
 * below `ownRoot`, e.g. a data folder a dev-engine run left mode 700) are opened for passing — o+x
 * lets through without listing, and the secrets inside stay mode 600; anything above is only named.
 */
export function ensureReachable(dir: string, ownRoot: string, user: RunAs, log: (line: string) => void): void {
  if (user.uid === (process.getuid?.() ?? -1)) return;
  const root = resolve(ownRoot);
  for (let d = dirname(resolve(dir)); ; d = dirname(d)) {
    const s = statSync(d);
    const through = s.uid === user.uid ? s.mode & 0o100 : s.gid === user.gid ? s.mode & 0o010 : s.mode & 0o001;
    if (!through && (d === root || d.startsWith(`${root}/`))) {
      chmodSync(d, (s.mode & 0o777) | 0o001);
      log(`${d} was mode ${(s.mode & 0o777).toString(8)}: opened for passing (o+x) so user ${user.name} reaches its cluster folder`);
    } else if (!through) {
      throw new EngineError(`the PostgreSQL cluster's folder ${dir} is not reachable by user ${user.name}: ${d} is mode ${(s.mode & 0o777).toString(8)} (chmod o+x ${d}, or choose another RBM_GUARD_DATA_DIR)`);
    }
    if (d === dirname(d)) return;
  }
}

function run(bin: string, args: string[], user: RunAs): { ok: boolean; output: string } {
  const r = spawnSync(bin, args, { uid: user.uid, gid: user.gid, encoding: 'utf8', cwd: '/' });
  return { ok: r.status === 0, output: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? String(r.error) : ''}`.trim() };
}

export async function startPostgresCluster(options: PostgresClusterOptions): Promise<PostgresCluster> {
  const bin = postgresBinDir();
  const user = clusterUser();
  const dir = resolve(options.dir);
  const dataDir = join(dir, 'data');
  const passwordFile = join(dir, 'password');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  ensureReachable(dir, options.ownRoot ?? dirname(dir), user, options.log ?? (() => {}));
  chownSync(dir, user.uid, user.gid);
  chmodSync(dir, 0o700);

  if (!existsSync(join(dataDir, 'PG_VERSION'))) {
    // A fresh cluster: a random password for the one superuser, kept beside the data (mode 600).
    writeFileSync(passwordFile, randomBytes(18).toString('base64url') + '\n', { mode: 0o600 });
    chownSync(passwordFile, user.uid, user.gid);
    const init = run(join(bin, 'initdb'), ['-D', dataDir, '-U', DB_USER, `--pwfile=${passwordFile}`, '--auth=scram-sha-256', '-E', 'UTF8', '--no-locale'], user);
    if (!init.ok) throw new EngineError(`initdb failed for ${dataDir}: ${lastLine(init.output)}`);
  }
  if (!existsSync(passwordFile)) throw new EngineError(`${passwordFile} is missing: the cluster in ${dataDir} was made elsewhere (remove ${dir} to start afresh)`);
  const password = readFileSync(passwordFile, 'utf8').trim();
  const version = readFileSync(join(dataDir, 'PG_VERSION'), 'utf8').trim();
  const binMajor = /(\d+)/.exec(run(join(bin, 'postgres'), ['--version'], user).output)?.[1];
  if (binMajor && binMajor !== version) {
    throw new EngineError(`the cluster in ${dataDir} is PostgreSQL ${version} but ${bin} is ${binMajor}: set RBM_GUARD_PG_BIN to PostgreSQL ${version}'s bin folder, or remove ${dir}`);
  }
  const pidFile = join(dataDir, 'postmaster.pid');
  if (existsSync(pidFile)) {
    const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
    if (pid && alive(pid)) throw new EngineError(`a PostgreSQL (pid ${pid}) from an earlier run still holds ${dataDir}: stop it (kill -INT ${pid}) and start again`);
  }

  const port = options.port ?? (await freePort());
  let child: ChildProcess;
  const start = async () => {
    const args = ['-D', dataDir, '-p', String(port), '-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories=', '-c', 'max_connections=200'];
    const proc = spawn(join(bin, 'postgres'), args, { uid: user.uid, gid: user.gid, cwd: '/', stdio: ['ignore', 'pipe', 'pipe'] });
    child = proc;
    let output = '';
    const ready = new Promise<void>((resolveReady) => {
      const onData = (chunk: Buffer) => {
        const text = chunk.toString();
        output = (output + text).slice(-4000);
        options.log?.(text);
        if (/ready to accept connections/.test(output)) resolveReady();
      };
      proc.stdout?.on('data', onData);
      proc.stderr?.on('data', onData);
    });
    const exited = onceExited(proc);
    const timeout = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 60_000).unref());
    const first = await Promise.race([ready.then(() => 'ready' as const), exited.then(() => 'exited' as const), timeout]);
    if (first === 'ready') return;
    await stopChild(proc, 'SIGINT');
    if (/could not bind|Address already in use/i.test(output)) throw new EngineError(`PostgreSQL could not start: port ${port} on 127.0.0.1 is already in use`);
    throw new EngineError(first === 'timeout' ? `PostgreSQL in ${dataDir} not ready after 60 s: ${lastLine(output)}` : `PostgreSQL exited at start: ${lastLine(output)}`);
  };
  await start();

  return {
    host: '127.0.0.1',
    port,
    user: DB_USER,
    password,
    dataDir,
    get process() {
      return child;
    },
    stop: () => stopChild(child, 'SIGINT', 30_000),
    start,
  };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function lastLine(output: string): string {
  const lines = output.trim().split('\n').map((l) => l.trim()).filter(Boolean);
  return lines.at(-1) ?? '(no output)';
}
